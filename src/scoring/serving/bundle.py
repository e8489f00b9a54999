"""The model folder: one owner of its layout (paths, save, load, the manifest).

The pipeline's ``models/`` and the exported artifact's file directory share one layout::

    features.json            the fitted feature transformer
    champion.json            which candidate is champion, and why (the train stage's decision)
    candidates/<name>/...    each candidate's own files, named by its plug-in
    candidates/plugins.json  the module that registers each candidate's plug-in
    calibrator.json          PD calibration            (calibrate stage)
    master_scale.json        risk grades               (calibrate stage)
    reasons.json             reason codes              (explain stage; optional)
    run.json                 the MLflow run            (pipeline only)
    policy.json, limits.json, score_scaling.json, dataset.json, model_info.json
                             what the artifact carries so it needs no params.yaml
    manifest.json            SHA-256 of every other file (artifact only; checked at load)

Nobody else spells a file name: stage scripts, export and serving ask the bundle.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoring.core.io import write_json
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import CandidatePlugin, CombinerPlugin, FittedModel, Plugin, plugin, registered
from scoring.models.model import PDModel

FEATURES_FILE = "features.json"
CHAMPION_FILE = "champion.json"
CANDIDATES_DIR = "candidates"
# Which module registers each candidate's plug-in, so that a bundle trained with a plug-in from
# outside scoring.models.candidates loads where that module is importable (the artifact's code).
PLUGINS_FILE = f"{CANDIDATES_DIR}/plugins.json"
CALIBRATOR_FILE = "calibrator.json"
MASTER_SCALE_FILE = "master_scale.json"
REASONS_FILE = "reasons.json"
RUN_FILE = "run.json"
POLICY_FILE = "policy.json"
LIMITS_FILE = "limits.json"
SCALING_FILE = "score_scaling.json"
DATASET_FILE = "dataset.json"
MODEL_INFO_FILE = "model_info.json"
PROFILE_FILE = "reference_profile.json"  # the monitoring reference (scoring.monitoring.profile)
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 3

# What an exported artifact must hold besides its champion's files.
ARTIFACT_FILES = (
    CHAMPION_FILE,
    FEATURES_FILE,
    CALIBRATOR_FILE,
    MASTER_SCALE_FILE,
    POLICY_FILE,
    LIMITS_FILE,
    SCALING_FILE,
    DATASET_FILE,
    MODEL_INFO_FILE,
)


class ArtifactIntegrityError(RuntimeError):
    """A model file is missing, unlisted, or its content differs from the manifest."""


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class ModelBundle:
    """A model folder (``models/`` or an artifact's files), by its root."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    # ------------------------------------------------------------------ paths

    def path(self, name: str) -> Path:
        """A top-level file of the bundle (one of this module's ``*_FILE`` names)."""
        return self.root / name

    def candidate_dir(self, name: str) -> Path:
        return self.root / CANDIDATES_DIR / name

    def read(self, name: str) -> Any:
        return _read_json(self.path(name))

    def write(self, name: str, document: Any) -> Path:
        path = self.path(name)
        write_json(path, document)
        return path

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    # ------------------------------------------------------------------ candidates

    def champion_name(self) -> str:
        return str(self.read(CHAMPION_FILE)["champion"])

    def candidate_names(self) -> list[str]:
        """The candidates trained, in ``train.candidates`` order (champion.json keeps it)."""
        record = self.read(CHAMPION_FILE)
        names = record.get("candidates")
        if isinstance(names, list) and names:
            return [str(n) for n in names]
        folder = self.root / CANDIDATES_DIR
        return (
            sorted(p.name for p in folder.iterdir() if p.is_dir())
            if folder.is_dir()
            else [record["champion"]]
        )

    def save_features(self, features: ApplicationFeatures) -> Path:
        return self.write(FEATURES_FILE, features.to_dict())

    def save_candidates(self, models: Mapping[str, FittedModel]) -> list[Path]:
        """Every candidate in its folder; the candidates folder holds only these afterwards.

        Written into a staging folder beside it and moved into place when complete, so a run
        killed while saving leaves no half-written candidates folder (a leftover staging folder
        is removed by the next save).
        """
        base = self.root / CANDIDATES_DIR
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(f".{CANDIDATES_DIR}.*.partial"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{CANDIDATES_DIR}.", suffix=".partial", dir=self.root))
        staging.chmod(0o755)  # mkdtemp makes 0700; outputs are ordinary folders others may read
        try:
            modules: dict[str, str] = {}
            files: list[str] = []
            for name, model in models.items():
                folder = staging / name
                folder.mkdir()
                model.save(folder)
                found = self._plugin(name)
                expected = sorted(found.files)
                actual = sorted(p.name for p in folder.iterdir())
                if actual != expected:
                    raise RuntimeError(
                        f"candidate {name!r} wrote {actual} into its folder; its plug-in declares {expected}"
                    )
                files.extend(f"{name}/{f}" for f in expected)
                modules[name] = type(found).__module__
            write_json(staging / Path(PLUGINS_FILE).name, modules)
            if base.exists():
                old = base.with_name(f".{CANDIDATES_DIR}.{os.getpid()}.old")
                base.rename(old)
                staging.rename(base)
                shutil.rmtree(old)
            else:
                staging.rename(base)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return [*(base / f for f in files), self.path(PLUGINS_FILE)]

    def plugin_modules(self) -> dict[str, str]:
        """Candidate -> the module registering its plug-in ({} for bundles that predate the record)."""
        if not self.has(PLUGINS_FILE):
            return {}
        return {str(k): str(v) for k, v in self.read(PLUGINS_FILE).items()}

    def _plugin(self, name: str) -> Plugin:
        if name not in registered():
            module = self.plugin_modules().get(name)
            if module is not None:
                importlib.import_module(module)  # registers the plug-in
        return plugin(name)

    def save_model(self, model: PDModel) -> None:
        """One model (and a blend's parts) as the bundle's only candidate and champion: for
        bundles made outside the train stage (tests, benchmarks, a model fitted by hand)."""
        self.save_features(model.features)
        parts = getattr(model.estimator, "parts", None)
        models: dict[str, FittedModel] = dict(parts()) if callable(parts) else {}
        models[model.kind] = model.estimator
        self.save_candidates(models)
        self.write(CHAMPION_FILE, {"champion": model.kind, "candidates": list(models)})

    def load_candidate(self, name: str) -> FittedModel:
        found = self._plugin(name)
        folder = self.candidate_dir(name)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no files for candidate {name!r} in the model folder")
        if isinstance(found, CombinerPlugin):
            parts = {part: self.load_candidate(part) for part in found.stored_parts(folder)}
            return found.load(folder, parts)
        assert isinstance(found, CandidatePlugin)
        return found.load(folder)

    def load_features(self) -> ApplicationFeatures:
        return ApplicationFeatures.from_dict(self.read(FEATURES_FILE))

    def load_model(self, name: str | None = None) -> PDModel:
        """The PD model of candidate ``name`` (default: the champion)."""
        name = name or self.champion_name()
        return PDModel(self.load_features(), self.load_candidate(name), name)

    def candidate_files(self, name: str) -> list[str]:
        """Files (relative to the root) candidate ``name`` reads: its own and its parts'."""
        found = self._plugin(name)
        own = [f"{CANDIDATES_DIR}/{name}/{f}" for f in found.files]
        if isinstance(found, CombinerPlugin):
            for part in found.stored_parts(self.candidate_dir(name)):
                own.extend(self.candidate_files(part))
        return sorted(set(own))

    def model_files(self, name: str | None = None) -> list[str]:
        """Every file :meth:`load_model` reads for ``name`` (default: the champion)."""
        name = name or self.champion_name()
        files = {CHAMPION_FILE, FEATURES_FILE, *self.candidate_files(name)}
        if self.has(PLUGINS_FILE):
            files.add(PLUGINS_FILE)
        return sorted(files)

    def scoring_files(self) -> list[str]:
        """What a scorer reads from the bundle: the champion's files (:meth:`model_files`), the
        calibrator, the master scale and the reason coder when there is one."""
        optional = [REASONS_FILE] if self.has(REASONS_FILE) else []
        return [*self.model_files(), CALIBRATOR_FILE, MASTER_SCALE_FILE, *optional]

    # ------------------------------------------------------------------ copy and manifest

    def copy_files(self, names: Iterable[str], target: ModelBundle) -> None:
        for name in names:
            destination = target.root / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.root / name, destination)

    def files(self) -> list[str]:
        """Every file under the root (relative, posix), the manifest excluded."""
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.relative_to(self.root).as_posix() != MANIFEST_FILE
        )

    def write_manifest(self) -> dict[str, Any]:
        manifest = build_manifest(self.root)
        self.write(MANIFEST_FILE, manifest)
        return manifest

    def verify(self) -> dict[str, Any]:
        """Raise :class:`ArtifactIntegrityError` unless the manifest matches the files exactly."""
        return verify_manifest(self.root)


def content_id(bundle: ModelBundle, names: Iterable[str], documents: Mapping[str, Any]) -> str:
    """A model's content id: the first 12 hex digits of the SHA-256 over the named files' hashes
    and the documents' canonical JSON (sorted keys). What decides the answers, and nothing of when
    or where the model was fitted, so retraining on the same data and params gives the same id."""
    lines = [f"{name} {sha256_of(bundle.path(name))}" for name in sorted(set(names))]
    lines.append(json.dumps(documents, sort_keys=True, separators=(",", ":"), default=str))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()[:12]


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_manifest(directory: str | Path) -> dict[str, Any]:
    """SHA-256 of every file under ``directory``, manifest excluded."""
    bundle = ModelBundle(directory)
    listed = bundle.files()
    return {
        "format": MANIFEST_FORMAT,
        "files": {name: sha256_of(bundle.root / name) for name in listed if name != MANIFEST_FILE},
    }


def verify_manifest(directory: str | Path) -> dict[str, Any]:
    """Raise unless every listed file exists and hashes as recorded, and no other file is there."""
    bundle = ModelBundle(directory)
    manifest_path = bundle.path(MANIFEST_FILE)
    if not manifest_path.is_file():
        raise ArtifactIntegrityError(f"model files in {directory} have no {MANIFEST_FILE}; refusing to load")
    manifest: dict[str, Any] = _read_json(manifest_path)
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactIntegrityError(
            f"manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}; refusing to load"
        )
    listed: dict[str, str] = manifest.get("files", {})
    missing = [name for name in ARTIFACT_FILES if name not in listed]
    if missing:
        raise ArtifactIntegrityError(f"model artifact incomplete: the manifest lists no {missing}")
    for name, digest in sorted(listed.items()):
        path = bundle.root / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"model file '{name}' is missing from {directory}; refusing to load")
        actual = sha256_of(path)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"model file '{name}' was modified: SHA-256 {actual[:12]}..., manifest says "
                f"{digest[:12]}...; refusing to load"
            )
    unlisted = [name for name in bundle.files() if name not in listed]
    if unlisted:
        raise ArtifactIntegrityError(f"model files {unlisted} are not in the manifest; refusing to load")
    try:
        required = bundle.model_files()
    except (OSError, KeyError, ValueError) as exc:
        raise ArtifactIntegrityError(f"model files in {directory}: cannot read the champion: {exc}") from None
    absent = [name for name in required if name not in listed]
    if absent:
        raise ArtifactIntegrityError(
            f"model artifact incomplete: the champion needs {absent}, not in the manifest"
        )
    return manifest
