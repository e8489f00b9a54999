"""Files of the exported model, their SHA-256 manifest, and loading them back without pickle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.contract import DatasetSpec
from scoring.features import ApplicationFeatures
from scoring.model import PDModel, load_estimator

MANIFEST_FORMAT = 1

# Artifact keys, as MLflow names them in the model directory and in context.artifacts.
ESTIMATOR = "estimator"  # the champion: booster.ubj (XGBoost) or scorecard.json
CHAMPION = "champion"  # which estimator it is, and why it was chosen
FEATURES = "features"
DATASET = "dataset"
MODEL_INFO = "model_info"
MANIFEST = "manifest"
HASHED_ARTIFACTS = (ESTIMATOR, CHAMPION, FEATURES, DATASET, MODEL_INFO)


class ArtifactIntegrityError(RuntimeError):
    """A model file is missing or its content differs from the manifest."""


def sha256_of(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_manifest(files: Mapping[str, str | Path]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "files": {key: {"name": Path(p).name, "sha256": sha256_of(p)} for key, p in sorted(files.items())},
    }


def verify_manifest(manifest: Mapping[str, Any], files: Mapping[str, str]) -> None:
    """Raise unless every listed file exists and hashes to the recorded digest."""
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ArtifactIntegrityError(
            f"manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}"
        )
    listed = manifest.get("files", {})
    missing = [k for k in HASHED_ARTIFACTS if k not in listed or k not in files]
    if missing:
        raise ArtifactIntegrityError(
            f"model artifact incomplete: no {missing} in the manifest or model directory"
        )
    for key in HASHED_ARTIFACTS:
        path = Path(files[key])
        if not path.is_file():
            raise ArtifactIntegrityError(f"model file '{key}' missing: {path}")
        actual = sha256_of(path)
        if actual != listed[key]["sha256"]:
            raise ArtifactIntegrityError(
                f"model file '{key}' ({path.name}) was modified: SHA-256 {actual[:12]}..., "
                f"manifest says {listed[key]['sha256'][:12]}...; refusing to load"
            )


@dataclass
class LoadedArtifact:
    model: PDModel
    spec: DatasetSpec
    info: dict[str, Any]

    def score(self, applications: pd.DataFrame) -> pd.DataFrame:
        """Per application: its id, the PD and the model version."""
        if self.spec.id_column not in applications.columns:
            raise ValueError(
                f"input has no '{self.spec.id_column}' column; every application needs its id to be scored"
            )
        pd_values = self.model.predict_pd(applications)
        return pd.DataFrame(
            {
                "application_id": applications[self.spec.id_column].astype(str).to_numpy(),
                "pd": pd_values.astype(np.float64),
                "model_version": str(self.info.get("model_version", "")),
            }
        )


def load_artifact(files: Mapping[str, str]) -> LoadedArtifact:
    """Verify the manifest, then read the JSON and UBJSON files (never pickle)."""
    manifest = json.loads(Path(files[MANIFEST]).read_text(encoding="utf-8"))
    verify_manifest(manifest, files)
    features = ApplicationFeatures.from_dict(json.loads(Path(files[FEATURES]).read_text(encoding="utf-8")))
    spec = DatasetSpec.from_json(Path(files[DATASET]).read_text(encoding="utf-8"))
    info = json.loads(Path(files[MODEL_INFO]).read_text(encoding="utf-8"))
    kind = json.loads(Path(files[CHAMPION]).read_text(encoding="utf-8"))["champion"]
    return LoadedArtifact(PDModel(features, load_estimator(files[ESTIMATOR], kind), kind), spec, info)
