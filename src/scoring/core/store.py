"""Where the MLflow store is: shared by the training side (runs) and the serving side (the registry)."""

from __future__ import annotations

import os

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""A SQLite file in the working directory (the repo root when DVC runs a stage): nothing to start."""


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)
