"""MLflow at the edge: the experiment's kind and the datasets a training run records, in a real store."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from scoring.tracking import (
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    InputFrame,
    log_input_datasets,
    mlflow_run,
    runs_page_url,
    schema_sample,
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store of the test's own; MLflow's process-wide URI is put back afterwards."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    return uri


def _applications(n: int, seed: int = 3) -> pd.DataFrame:
    """A small frame shaped like a split: id, a category, numbers with gaps, a 0/1 target."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "application_id": [f"A{i:06d}" for i in range(n)],
            "region": rng.choice(["north", "south"], size=n),
            "monthly_income": rng.uniform(1_000, 9_000, size=n),
            "bureau_score": rng.integers(300, 850, size=n).astype("float64"),
            "default_12m": rng.integers(0, 2, size=n),
        }
    )
    frame.loc[n - 5, "bureau_score"] = np.nan  # the only gap: past any leading sample
    return frame


def test_mlflow_run_declares_a_new_experiment_model_training(store: str) -> None:
    with mlflow_run("x", run_name="train") as run:
        pass
    experiment = MlflowClient(tracking_uri=store).get_experiment(run.info.experiment_id)
    assert experiment.name == "x"
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND == "custom_model_development"


def test_mlflow_run_declares_an_existing_experiment_that_lacks_the_kind(store: str) -> None:
    client = MlflowClient(tracking_uri=store)
    experiment_id = client.create_experiment("credit-scoring", tags={"team": "risk"})
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags
    for _ in range(2):  # idempotent: the second start finds the tag and leaves it
        with mlflow_run("credit-scoring") as run:
            assert run.info.experiment_id == experiment_id
    tags = client.get_experiment(experiment_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND and tags["team"] == "risk"


def test_log_input_datasets_records_name_digest_source_rows_and_context(store: str) -> None:
    train, valid = _applications(1_500), _applications(400, seed=4)
    with mlflow_run("x", run_name="train") as run:
        log_input_datasets(
            [
                InputFrame(train, "data/split/train.parquet", "training"),
                InputFrame(valid, "data/split/valid.parquet", "validation"),
            ],
            name="synthetic",
            targets="default_12m",
        )
    inputs = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 2
    by_context = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset for i in inputs}
    assert set(by_context) == {"training", "validation"}
    for context, frame, path in (("training", train, "train"), ("validation", valid, "valid")):
        recorded = by_context[context]
        # what MLflow itself records for the whole frame: the digest and the schema
        reference = mlflow.data.from_pandas(frame, targets="default_12m")
        assert recorded.name == "synthetic"
        assert recorded.digest == reference.digest
        assert json.loads(recorded.source) == {"uri": f"data/split/{path}.parquet"}
        assert json.loads(recorded.profile) == {"num_rows": len(frame), "num_elements": frame.size}
        assert json.loads(recorded.schema) == {"mlflow_colspec": reference.schema.to_dict()}
    columns = json.loads(by_context["training"].schema)["mlflow_colspec"]
    assert {c["name"]: c["required"] for c in columns}["bureau_score"] is False  # the gap is seen


def test_log_input_datasets_names_a_missing_target_column(store: str) -> None:
    with (
        mlflow_run("x"),
        pytest.raises(ValueError, match="expected a target column 'default_12m'"),
    ):
        log_input_datasets(
            [InputFrame(_applications(20).drop(columns="default_12m"), "t.parquet", "training")],
            name="synthetic",
            targets="default_12m",
        )


def test_schema_sample_keeps_the_head_and_a_first_gap_per_column() -> None:
    frame = _applications(2_000)
    frame.loc[[1_200, 1_700], "monthly_income"] = np.nan
    sample = schema_sample(frame, rows=100)
    assert list(sample.index) == [*range(100), 1_200, 1_995]
    assert sample.columns.equals(frame.columns)
    assert schema_sample(frame.head(10), rows=100).equals(frame.head(10))


def test_the_runs_page_url_opens_the_experiment_in_the_model_training_view(store: str) -> None:
    assert runs_page_url("http://127.0.0.1:5000/", "credit-scoring") == "http://127.0.0.1:5000/"  # none yet
    with mlflow_run("credit-scoring") as run:
        experiment_id = run.info.experiment_id
    assert runs_page_url("http://127.0.0.1:5000", "credit-scoring") == (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    )


def test_a_dataset_without_an_inferable_schema_is_recorded_with_a_warning_naming_the_column(
    store: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A column MLflow infers no type for (numbers and text mixed, as a hand-made file may hold)
    costs the record its schema, not the run: the warning names the dataset and the column."""
    frame = _applications(50).astype({"region": object})
    frame.loc[3, "region"] = 7
    with caplog.at_level("WARNING", logger="scoring.tracking"), mlflow_run("x") as run:
        log_input_datasets(
            [InputFrame(frame, "t.parquet", "training")], name="hand-made", targets="default_12m"
        )
    (recorded,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
    assert recorded.dataset.name == "hand-made" and not recorded.dataset.schema
    assert json.loads(recorded.dataset.profile)["num_rows"] == 50  # the rest of the record is there
    (message,) = [r.getMessage() for r in caplog.records if r.name == "scoring.tracking"]
    assert message.startswith(
        "dataset hand-made (t.parquet): recorded without a schema; MLflow infers no type for columns "
        "['region'] (MlflowException: "
    ), message
