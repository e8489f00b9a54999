"""MLflow at the edge: where runs go, and what every training run records.

By default runs go to a SQLite store, ``mlflow.db`` in the working directory (the repo
root when DVC runs a stage): nothing to start. ``MLFLOW_TRACKING_URI`` points elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def git_commit(cwd: str | Path = ".") -> str | None:
    """The commit the code was run from, with '-dirty' when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if dirty else "")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}, for MLflow params and metrics."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def mlflow_run(experiment: str, run_id: str | None = None, run_name: str | None = None) -> Iterator[Any]:
    """Start (or resume, given ``run_id``) a run in the configured store."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    if run_id is None:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_id=run_id, run_name=run_name) as run:
        yield run


def log_metrics(metrics: Mapping[str, Any], prefix: str = "") -> None:
    """Log the finite numeric leaves of a nested mapping."""
    import math

    import mlflow

    flat = {
        k: float(v)
        for k, v in flatten(metrics, prefix).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }
    mlflow.log_metrics(flat)
