"""MLflow at the edge: where runs go, and what every training run records.

By default runs go to a SQLite store, ``mlflow.db`` in the working directory (the repo
root when DVC runs a stage): nothing to start. ``MLFLOW_TRACKING_URI`` points elsewhere.
The experiment is declared a model-training one (:func:`declare_model_training`), and each
training run records the rows it was fitted on as MLflow datasets (:func:`log_input_datasets`).
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.core.store import tracking_uri

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.entities import Experiment

logger = logging.getLogger(__name__)

# MLflow 3 keeps an experiment's kind in this tag: its UI's kind selector writes it, with
# "genai_development" or "custom_model_development" (shown as "Machine learning"). The 3.17 UI
# also has a sidebar switch, GenAI or Machine learning, remembered per browser (and set by the
# URL's ?workflowType=machine_learning), which picks the pages it opens an experiment on.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"

# MLflow infers a dataset's schema value by value (about 5 s on 100k rows of the portfolio);
# a dataset record's schema is read from this many leading rows, plus a missing value per column.
SCHEMA_SAMPLE_ROWS = 1_000


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
        declare_model_training(mlflow.set_experiment(experiment))
    with mlflow.start_run(run_id=run_id, run_name=run_name) as run:
        yield run


def runs_page_url(base_url: str, experiment: str) -> str:
    """The UI page of ``experiment``'s runs in the model-training view, or the UI's home page
    while the experiment does not exist yet.

    MLflow 3.17's UI opens an experiment in the view its sidebar switch last showed (GenAI by
    default, remembered per browser); ``?workflowType=machine_learning`` sets the switch.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    found = mlflow.get_experiment_by_name(experiment)
    base = base_url.rstrip("/")
    if found is None:
        return f"{base}/"
    return f"{base}/#/experiments/{found.experiment_id}/runs?workflowType=machine_learning"


def declare_model_training(experiment: Experiment) -> None:
    """Tag the experiment as classic model training (a no-op when it already is).

    MLflow 3 treats an experiment of no declared kind as a GenAI one (traces, judges,
    prompts). Checked on every run start, so experiments made before this tag get it too.
    """
    from mlflow import MlflowClient

    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING_KIND:
        MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)


def schema_sample(frame: pd.DataFrame, rows: int = SCHEMA_SAMPLE_ROWS) -> pd.DataFrame:
    """The first ``rows`` rows and, per column with a missing value, the first row missing it.

    MLflow's schema marks a column optional when any of its values is missing: with one such
    row per column the sample's schema has the whole frame's optional columns (the types come
    from the column dtypes, which the sample shares).
    """
    missing = frame.isna().to_numpy()
    has_missing = missing.any(axis=0)
    first_missing = missing.argmax(axis=0)[has_missing]
    positions = sorted(set(range(min(rows, len(frame)))) | {int(i) for i in first_missing})
    return frame.iloc[positions]


def _pandas_dataset(frame: pd.DataFrame, name: str, source: str, targets: str) -> PandasDataset:
    """``mlflow.data.from_pandas``: MLflow's digest and row count, the schema from a sample."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.types import Schema
    from mlflow.types.utils import _infer_schema  # what PandasDataset.schema calls on the whole frame

    def uninferable(sample: pd.DataFrame) -> list[str]:
        """The columns MLflow infers no type for, each tried alone."""
        failing = []
        for column in sample.columns:
            try:
                _infer_schema(sample[[column]])
            except Exception:  # any failure: the column is named
                failing.append(str(column))
        return failing

    class SampledSchemaDataset(PandasDataset):
        @cached_property
        def schema(self) -> Schema | None:
            sample = schema_sample(self.df)
            try:
                return _infer_schema(sample)
            except Exception as error:
                # The record is metadata: the run goes on without the schema, as MLflow's own
                # PandasDataset.schema does, but says so and why, rather than at debug level.
                logger.warning(
                    "dataset %s (%s): recorded without a schema; MLflow infers no type for columns %s "
                    "(%s: %s)",
                    self.name,
                    source,
                    uninferable(sample),
                    type(error).__name__,
                    " ".join(str(error).split())[:300],
                )
                return None

    if targets not in frame.columns:
        raise ValueError(f"dataset {name}: expected a target column {targets!r}, got {list(frame.columns)}")
    with warnings.catch_warnings():
        # MLflow registers the local file source twice and warns it "can be interpreted in
        # multiple ways"; its integer-column hint is about model signatures, not data records.
        warnings.filterwarnings("ignore", message=".*interpreted in multiple ways", category=UserWarning)
        warnings.filterwarnings("ignore", message="Hint: Inferred schema", category=UserWarning)
        dataset = SampledSchemaDataset(frame, resolve_dataset_source(source), targets=targets, name=name)
        dataset.schema  # noqa: B018 - inferred now, inside the filter, rather than when logged
    return dataset


@dataclass(frozen=True)
class InputFrame:
    """Rows a run read: the frame, where it was read from, and what the run did with it."""

    frame: pd.DataFrame
    source: str  # a path or URI: the split file
    context: str  # "training", "validation", ...


def log_input_datasets(inputs: Sequence[InputFrame], name: str, targets: str) -> None:
    """Record frames as the active run's input datasets.

    ``name`` says what the data is (the dataset spec's source: "synthetic", or the file it was
    read from). MLflow stores each frame's digest, schema and row count with its source; its
    runs table shows name, digest and context in the Dataset column.
    """
    import mlflow

    if not inputs:
        return  # mlflow.log_inputs refuses empty lists
    mlflow.log_inputs(
        datasets=[_pandas_dataset(i.frame, name, i.source, targets) for i in inputs],
        contexts=[i.context for i in inputs],
        tags_list=[None] * len(inputs),  # one entry per dataset, or log_inputs refuses the call
    )


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
