"""The two engines agree (issue 17): the real stage scripts run on the same 50k synthetic
applications with ``engine: pandas`` and with ``engine: dask`` (a LocalCluster of two worker
processes) give the same prepared data, the same gate (counts, reasons, quarantined rows), the
same split and the same fitted features.

The only tolerance is on averages the dask engine adds up partition by partition (a default rate,
a mean): the order of a float sum, 1e-12 relative.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from scoring.core.io import parquet_parts, read_parquet, write_parquet
from scoring.data.split import PARTS

REPO = Path(__file__).resolve().parents[1]
ROWS = 50_000
BLOCK_ROWS = 10_000
SAMPLE_ROWS = 15_000  # below the train split's rows: the features stage reads a sample
ENGINES = ("pandas", "dask")

pytestmark = pytest.mark.slow


def _params(root: Path, engine: str) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["engine"] = engine
    params["dask"]["n_workers"] = 2
    params["sample_rows"] = SAMPLE_ROWS
    synthetic = params["data"]["synthetic"]
    synthetic.update(n_applications=ROWS, block_rows=BLOCK_ROWS, performance_history=False)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _stage(name: str, params: Path, **paths: Path) -> None:
    args = [sys.executable, str(REPO / "pipelines" / f"{name}.py"), "--params", str(params)]
    for key, value in paths.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{name} failed:\n{done.stderr[-3000:]}"


def _damage(prepared: Path) -> None:
    """Bad rows in two partitions (the same in both runs): the gate must find them on each."""
    parts = parquet_parts(prepared)
    for number, rows in ((1, [3, 700, 9_000]), (3, [12])):
        frame = read_parquet(parts[number])
        frame.loc[rows, "monthly_income"] = -5.0
        frame.loc[rows[:1], "employment_type"] = "astronaut"
        # the parts' schema as written (a null-free part's integers stay integers)
        frame = frame.astype({"bureau_score": "Int64", "default_12m": "Int64"})
        write_parquet(parts[number], frame)


def _run(root: Path, engine: str) -> Path:
    params = _params(root, engine)
    data = root / "data"
    _stage(
        "prepare",
        params,
        applications=data / "prepared.parquet",
        dataset=data / "prepared.json",
        truth=data / "truth.parquet",
        performance=data / "history.parquet",
    )
    _damage(data / "prepared.parquet")
    _stage(
        "validate",
        params,
        applications=data / "prepared.parquet",
        dataset=data / "prepared.json",
        out=data / "validated.parquet",
        quarantine=data / "quarantine.parquet",
        out_dataset=data / "validated.json",
        summary=root / "validation_summary.json",
        report=root / "validation_report.json",
        drift=root / "drift.json",
        docs=root / "docs",
        results_page=root / "validation.html",
    )
    _stage(
        "split",
        params,
        applications=data / "validated.parquet",
        dataset=data / "validated.json",
        out_dir=data / "split",
        summary=root / "split.json",
    )
    _stage(
        "features",
        params,
        train=data / "split" / "train.parquet",
        dataset=data / "validated.json",
        out=root / "features.json",
        summary=root / "features_summary.json",
    )
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {engine: _run(tmp_path_factory.mktemp(engine), engine) for engine in ENGINES}


def _close(a: Any, b: Any, path: str = "") -> list[str]:
    """Differences between two JSON values; floats equal to 1e-12 relative."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _close(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _json(root: Path, name: str) -> Any:
    return json.loads((root / name).read_text())


def test_prepare_gives_the_same_parts_on_both_engines(runs: dict[str, Path]) -> None:
    for table in ("prepared.parquet", "truth.parquet"):
        pandas_parts = parquet_parts(runs["pandas"] / "data" / table)
        dask_parts = parquet_parts(runs["dask"] / "data" / table)
        assert len(pandas_parts) == len(dask_parts) == ROWS // BLOCK_ROWS
        for left, right in zip(pandas_parts, dask_parts, strict=True):
            assert left.read_bytes() == right.read_bytes(), f"{table}: {left.name} differs"
    applications = read_parquet(runs["dask"] / "data" / "prepared.parquet")
    assert len(applications) == ROWS and applications["application_id"].is_unique
    assert applications["customer_id"].nunique() < ROWS  # repeat customers exist within blocks


def test_the_gate_agrees_on_counts_reasons_and_rows(runs: dict[str, Path]) -> None:
    pandas_root, dask_root = runs["pandas"], runs["dask"]
    summary = _json(pandas_root, "validation_summary.json")
    assert summary["n_quarantined"] == 4 and summary["warnings"], summary  # the damage was found
    assert _close(summary, _json(dask_root, "validation_summary.json")) == []
    assert (
        _close(_json(pandas_root, "validation_report.json"), _json(dask_root, "validation_report.json")) == []
    )
    for table in ("validated.parquet", "quarantine.parquet"):
        pd.testing.assert_frame_equal(
            read_parquet(pandas_root / "data" / table), read_parquet(dask_root / "data" / table)
        )
    assert _close(_json(pandas_root, "drift.json"), _json(dask_root, "drift.json")) == []
    assert (dask_root / "docs" / "index.html").is_file()


def test_the_split_is_identical(runs: dict[str, Path]) -> None:
    pandas_root, dask_root = runs["pandas"], runs["dask"]
    assert _close(_json(pandas_root, "split.json"), _json(dask_root, "split.json")) == []
    for name in PARTS:
        left = read_parquet(pandas_root / "data" / "split" / f"{name}.parquet")
        right = read_parquet(dask_root / "data" / "split" / f"{name}.parquet")
        pd.testing.assert_frame_equal(left, right, obj=name)


def test_the_features_are_fitted_on_the_same_sample(runs: dict[str, Path]) -> None:
    pandas_root, dask_root = runs["pandas"], runs["dask"]
    assert _json(pandas_root, "features.json") == _json(dask_root, "features.json")
    assert (
        _close(_json(pandas_root, "features_summary.json"), _json(dask_root, "features_summary.json")) == []
    )
    train_rows = len(read_parquet(pandas_root / "data" / "split" / "train.parquet"))
    assert train_rows > SAMPLE_ROWS  # so the sample rule, not every row, was exercised


def test_the_train_stage_runs_on_the_dask_engine(runs: dict[str, Path], tmp_path: Path) -> None:
    """The train stage's script on the dask run's splits (two candidates, tuning off): the
    champion and the models are written, and no accepts-only reference (reject inference off)."""
    root = runs["dask"]
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["train"].update(
        {"candidates": ["scorecard", "xgboost"], "candidate_params": {}, "fit_on": "train"}
    )
    params["train"]["xgboost"]["n_estimators"] = 200
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "tuned.json").write_text(json.dumps({"enabled": False, "best_params": {}}))
    split = root / "data" / "split"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "features.json").write_text(
        (root / "features.json").read_text()
    )  # as dvc.yaml lays it out
    paths = {
        "train": split / "train.parquet",
        "valid": split / "valid.parquet",
        "dataset": root / "data" / "validated.json",
        "features": tmp_path / "models" / "features.json",
        "tuned": tmp_path / "tuned.json",
        "model_dir": tmp_path / "models",
        "scorecard_table": tmp_path / "table.csv",
        "run_info": tmp_path / "run.json",
        "summary": tmp_path / "train.json",
        "calibration_set": tmp_path / "calibration_set.parquet",
        "validation_summary": root / "validation_summary.json",
        "unlabelled": split / "unlabelled.parquet",
        "reference_dir": tmp_path / "accepts_only",
        "selection": tmp_path / "selection.json",
    }
    args = [sys.executable, str(REPO / "pipelines" / "train.py"), "--params", str(tmp_path / "params.yaml")]
    for key, value in paths.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, f"train failed:\n{done.stderr[-3000:]}"
    champion = json.loads((tmp_path / "models" / "champion.json").read_text())
    assert champion["champion"] in ("scorecard", "xgboost") and "reject_inference" not in champion
    assert not json.loads((tmp_path / "accepts_only" / "reference.json").read_text())["fitted"]
    assert (tmp_path / "models" / "candidates" / "xgboost").is_dir()
    selection = json.loads((tmp_path / "selection.json").read_text())
    assert selection["computed"] is False and "dask engine" in selection["why"]
