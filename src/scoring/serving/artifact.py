"""The exported model's file directory inside the MLflow model, and loading it without pickle.

The exported MLflow model carries one artifact directory (``model_files``), a model bundle
(:mod:`scoring.serving.bundle`): the champion's files (and its parts', for a blend), the
feature spec, calibrator, master scale, policy, limits, score scaling, dataset spec, model
info, reason codes when the pipeline fitted them, and manifest.json with the SHA-256 of each.
Loading refuses a directory where a listed file is missing or changed, or where a file is
not listed.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scoring.serving.bundle import ArtifactIntegrityError, ModelBundle

if TYPE_CHECKING:
    from scoring.serving.scorer import Scorer

__all__ = ["FILES_ARTIFACT", "ArtifactIntegrityError", "files_dir", "load_scorer", "model_root"]

FILES_ARTIFACT = "model_files"
"""Key of the file directory in the MLflow model's artifacts (and its folder name there)."""


def load_scorer(directory: str | Path) -> Scorer:
    """Verify the manifest, then build the scorer from the JSON and UBJSON files (never pickle)."""
    from scoring.serving.scorer import Scorer

    ModelBundle(directory).verify()
    return Scorer.from_files(directory)


def files_dir(model_path: str | Path) -> Path:
    """The file directory inside an exported MLflow model directory."""
    return Path(model_path) / "artifacts" / FILES_ARTIFACT


def model_root(files: str | Path) -> Path:
    """The exported MLflow model directory that holds the file directory ``files``."""
    return Path(files).parents[1]
