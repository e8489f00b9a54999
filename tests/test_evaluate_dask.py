"""The evaluate stage on the dask engine: on a real LocalCluster, the stage script's metrics equal
the pandas engine's and its predictions folder holds the pandas engine's rows, row for row.

The inputs are small: the committed golden blend model folder (three candidates: scorecard,
xgboost and their blend, the champion) and a synthetic portfolio split as the split stage does,
each split a dataset folder of several part files (one of them empty, and one split empty
throughout), so partitions, empty parts and split order all count.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import runpy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring.config import Params, load_params
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import read_parquet, write_dataset
from scoring.data.config import SplitConfig, SyntheticDataConfig
from scoring.data.split import PARTS, split_applications
from scoring.data.synthetic import generate_portfolio
from scoring.reporting.evaluation import PLOTTED_PARTS, TRUTH_COLUMNS, truth_lookup
from scoring.reporting.evaluation_dask import (
    WorkerBundle,
    evaluate_candidates_dask,
    write_predictions_dask,
)
from scoring.serving.bundle import ArtifactIntegrityError
from scoring.stages import Stage

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden"
RUN_ID = "0123456789abcdef0123456789abcdef"
PARTS_PER_SPLIT = 3
EMPTY_SPLIT = "excluded"
TOLERANCE = 1e-9

# one xdist worker builds the module's fixtures (the cluster, both engines' runs) for every test
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("evaluate_dask")]


def _build_inputs(root: Path) -> Path:
    """The evaluate stage's inputs under ``root``: models/, split/, truth, dataset.json, run.json."""
    shutil.copytree(GOLDEN / "blend", root / "models")
    apps, truth = generate_portfolio(
        SyntheticDataConfig(n_applications=2500, months=30, immature_months=3), seed=11
    )
    parts = split_applications(apps, SYNTHETIC_SPEC, SplitConfig(), seed=11).parts
    for name in PARTS:
        frame = parts[name]
        if name == EMPTY_SPLIT:
            frames = [frame.iloc[:0]]
        else:
            frames = [frame.iloc[rows].reset_index(drop=True) for rows in np.array_split(
                np.arange(len(frame)), PARTS_PER_SPLIT)]  # fmt: skip
            frames.insert(1, frame.iloc[:0])  # an empty part file among the others
        write_dataset(root / "split" / f"{name}.parquet", frames)
    write_dataset(root / "truth.parquet", truth)
    (root / "dataset.json").write_text(SYNTHETIC_SPEC.to_json())
    (root / "run.json").write_text(json.dumps({"run_id": RUN_ID}))
    return root


def _stage(inputs: Path, out: Path, params: Params) -> Stage:
    args = argparse.Namespace(
        model_dir=str(inputs / "models"),
        split_dir=str(inputs / "split"),
        dataset=str(inputs / "dataset.json"),
        truth=str(inputs / "truth.parquet"),
        run_info=str(inputs / "run.json"),
        metrics=str(out / "metrics.json"),
        plots_dir=str(out / "plots"),
        figures_dir=str(out / "figures"),
        scores=str(out / "predictions.parquet"),
    )
    return Stage(args, params, "evaluate")


def _run_stage(stage: Stage) -> dict[str, Any]:
    """The stage script's own outputs (everything but the MLflow run); the metrics it wrote."""
    script = runpy.run_path(str(ROOT / "pipelines" / "evaluate.py"), run_name="evaluate_stage")
    _, result = script["evaluate"](stage)
    script["write_plots"](stage, result)
    metrics: dict[str, Any] = json.loads(stage.path("metrics").read_text())
    return metrics


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build_inputs(tmp_path_factory.mktemp("evaluate_inputs"))


@pytest.fixture(scope="module")
def params() -> Params:
    return load_params(GOLDEN / "params.yaml")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def pandas_out(inputs: Path, params: Params, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate_pandas")
    _run_stage(_stage(inputs, out, params))
    return out


@pytest.fixture(scope="module")
def dask_out(inputs: Path, params: Params, client: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluate_dask")
    stage = _stage(inputs, out, params.model_copy(update={"engine": "dask"}))
    assert stage.on_dask
    _run_stage(stage)  # on the module's cluster (its client is the default one)
    return out


def _assert_close(ours: Any, theirs: Any, where: str = "metrics") -> None:
    """Equal structure and values; floats within TOLERANCE (None where the pandas engine has None)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and sorted(ours) == sorted(theirs), where
        for key in theirs:
            _assert_close(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _assert_close(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(ours, bool):
        assert isinstance(ours, float | int), where
        assert math.isclose(ours, theirs, rel_tol=0.0, abs_tol=TOLERANCE), f"{where}: {ours} != {theirs}"
    else:
        assert ours == theirs, f"{where}: {ours!r} != {theirs!r}"


def test_dask_metrics_equal_the_pandas_engine_metrics(pandas_out: Path, dask_out: Path) -> None:
    theirs = json.loads((pandas_out / "metrics.json").read_text())
    ours = json.loads((dask_out / "metrics.json").read_text())
    # what is compared: every candidate on every labelled split, the truth ceiling, calibration
    assert theirs["champion"] == "blend"
    assert sorted(theirs["models"]) == ["blend", "scorecard", "xgboost"]
    assert sorted(theirs["models"]["scorecard"]) == ["oot", "test", "train", "valid"]
    assert theirs["test"]["true_pd_auc"] > 0.5 and theirs["test"]["auc"] > 0.5
    assert sorted(theirs["calibrated"]) == sorted(PLOTTED_PARTS)
    assert "mae_true" in theirs["calibrated"]["oot"]
    assert theirs["models"]["scorecard"]["test"]["auc"] != theirs["models"]["xgboost"]["test"]["auc"]
    _assert_close(ours, theirs)
    for name in PLOTTED_PARTS:
        for kind in ("roc", "calibration"):
            pd.testing.assert_frame_equal(
                pd.read_csv(dask_out / "plots" / f"{kind}_{name}.csv"),
                pd.read_csv(pandas_out / "plots" / f"{kind}_{name}.csv"),
                check_exact=False,
                rtol=0.0,
                atol=TOLERANCE,
            )
    assert sorted(p.name for p in (dask_out / "figures").iterdir()) == ["calibration.png", "roc.png"]


def test_dask_predictions_equal_the_pandas_engine_predictions_row_for_row(
    inputs: Path, pandas_out: Path, dask_out: Path
) -> None:
    theirs_path, ours_path = pandas_out / "predictions.parquet", dask_out / "predictions.parquet"
    assert theirs_path.is_file()  # the pandas engine's file is unchanged: one Parquet file
    # a dataset folder: one part per non-empty part file of the splits
    non_empty = sum(PARTS_PER_SPLIT for name in PARTS if name != EMPTY_SPLIT)
    assert sorted(p.name for p in ours_path.iterdir()) == [f"part-{k:05d}.parquet" for k in range(non_empty)]
    theirs, ours = read_parquet(theirs_path), read_parquet(ours_path)
    n_rows = sum(len(read_parquet(inputs / "split" / f"{name}.parquet")) for name in PARTS)
    assert len(theirs) == n_rows and theirs["split"].nunique() == len(PARTS) - 1
    assert theirs["default_12m"].isna().any() and theirs["reason_code_1"].ne("").any()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=0.0, atol=1e-12)


def test_workers_refuse_model_files_other_than_the_client_read(
    inputs: Path, params: Params, client: Any, tmp_path: Path
) -> None:
    splits = {name: inputs / "split" / f"{name}.parquet" for name in PARTS}
    source = WorkerBundle.of(inputs / "models", params, SYNTHETIC_SPEC, {"model_version": "x"})
    other = dataclasses.replace(source, digest="0" * 64)
    with pytest.raises(ArtifactIntegrityError, match=r"expected 0{64} \(the files the evaluation read\)"):
        evaluate_candidates_dask(other, splits)
    with pytest.raises(ArtifactIntegrityError, match=r"expected 0{64}"):
        write_predictions_dask(other, splits, tmp_path / "predictions.parquet")
    assert not list(tmp_path.iterdir())  # nothing written, nothing partial left


def test_dask_evaluation_refuses_a_truth_file_without_every_id(
    inputs: Path, params: Params, client: Any
) -> None:
    splits = {name: inputs / "split" / f"{name}.parquet" for name in PARTS}
    source = WorkerBundle.of(inputs / "models", params, SYNTHETIC_SPEC, {"model_version": "x"})
    truth = read_parquet(inputs / "truth.parquet", columns=list(TRUTH_COLUMNS))
    train_ids = set(read_parquet(splits["train"])["application_id"].astype(str))
    lookup = truth_lookup(truth[~truth["application_id"].isin(sorted(train_ids)[:3])])
    with pytest.raises(ValueError, match=r"truth file lacks 3 ids of split 'train'"):
        evaluate_candidates_dask(source, splits, lookup)
