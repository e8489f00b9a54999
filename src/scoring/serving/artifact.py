"""Files of the exported model, their SHA-256 manifest, and loading them back without pickle.

The exported MLflow model carries one artifact directory (``model_files``) that holds every
file the :class:`~scoring.serving.scorer.Scorer` reads: the champion's files (booster in XGBoost's
UBJSON, scorecard / blend / feature spec as JSON), calibrator.json, master_scale.json,
policy.json, limits.json, score_scaling.json, dataset.json, model_info.json, reasons.json
(when the pipeline fitted reason codes) and manifest.json. The manifest lists each file
with its SHA-256; loading refuses a directory where a listed file is missing or changed, or
where a file is not listed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scoring.serving.scorer import Scorer

MANIFEST_FORMAT = 2
MANIFEST_FILE = "manifest.json"
FILES_ARTIFACT = "model_files"
"""Key of the file directory in the MLflow model's artifacts (and its folder name there)."""

# Files a model directory must have, whatever its champion.
REQUIRED_FILES = (
    "champion.json",
    "features.json",
    "calibrator.json",
    "master_scale.json",
    "policy.json",
    "limits.json",
    "score_scaling.json",
    "dataset.json",
    "model_info.json",
)


class ArtifactIntegrityError(RuntimeError):
    """A model file is missing, unlisted, or its content differs from the manifest."""


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _files_under(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def build_manifest(directory: str | Path, names: Iterable[str] | None = None) -> dict[str, Any]:
    """SHA-256 of every file under ``directory`` (or of ``names`` in it), manifest excluded."""
    directory = Path(directory)
    listed = sorted(names) if names is not None else _files_under(directory)
    return {
        "format": MANIFEST_FORMAT,
        "files": {name: sha256_of(directory / name) for name in listed if name != MANIFEST_FILE},
    }


def verify_manifest(directory: str | Path) -> dict[str, Any]:
    """Raise unless every listed file exists and hashes as recorded, and no other file is there."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactIntegrityError(f"model files in {directory} have no {MANIFEST_FILE}; refusing to load")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactIntegrityError(
            f"manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}; refusing to load"
        )
    listed: dict[str, str] = manifest.get("files", {})
    missing = [name for name in REQUIRED_FILES if name not in listed]
    if missing:
        raise ArtifactIntegrityError(f"model artifact incomplete: the manifest lists no {missing}")
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"model file '{name}' is missing from {directory}; refusing to load")
        actual = sha256_of(path)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"model file '{name}' was modified: SHA-256 {actual[:12]}..., manifest says "
                f"{digest[:12]}...; refusing to load"
            )
    unlisted = [name for name in _files_under(directory) if name not in listed and name != MANIFEST_FILE]
    if unlisted:
        raise ArtifactIntegrityError(f"model files {unlisted} are not in the manifest; refusing to load")
    return manifest


def load_scorer(directory: str | Path) -> Scorer:
    """Verify the manifest, then build the scorer from the JSON and UBJSON files (never pickle)."""
    from scoring.serving.scorer import Scorer

    verify_manifest(directory)
    return Scorer.from_files(directory)


def files_dir(model_path: str | Path) -> Path:
    """The file directory inside an exported MLflow model directory."""
    return Path(model_path) / "artifacts" / FILES_ARTIFACT
