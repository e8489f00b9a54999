"""`scoring monitor`: a real exported model (with its reference profile), raw or scored batches,
a performance history through its gate, the exit status a scheduler acts on, and MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from scoring.cli import app
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio
from scoring.export import export_model
from scoring.monitor_files import RED_EXIT_CODE
from scoring.serving.bundle import PROFILE_FILE
from serving_support import REPO, RUN_ID, build_model_dir, repo_params

runner = CliRunner()


@pytest.fixture(scope="module")
def monitored_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, Path]:
    """A model exported with a reference profile of its development rows, and params that judge
    every month of at least 50 rows."""
    root = tmp_path_factory.mktemp("monitor_cli")
    model_dir, _raw = build_model_dir(root / "models")
    reference, _ = generate_portfolio(
        SyntheticDataConfig(n_applications=4000, months=24, immature_months=0), 5
    )
    info = {"model_name": "test", "model_version": RUN_ID[:12]}
    export_model(
        model_dir,
        root / "pd_model",
        SYNTHETIC_SPEC,
        reference.tail(600),
        info,
        repo_params(),
        reference.head(2400),
    )
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["monitor"]["min_rows_per_month"] = 50
    params["monitor"]["window"] = "all"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root / "pd_model", reference, root / "params.yaml"


def _two_months(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows as two application months of 800 (large enough that sampling noise stays
    below the PSI thresholds), after the development window."""
    out = frame.drop(columns="default_12m").reset_index(drop=True)
    out["application_date"] = pd.to_datetime(["2021-01-15"] * 800 + ["2021-02-15"] * (len(out) - 800))
    return out


def _invoke(model: Path, batch: Path, params: Path, out: Path, *extra: str):
    return runner.invoke(
        app,
        ["monitor", "--model", str(model), "--batch", str(batch), "--params", str(params), "--output-dir",
         str(out), "--no-mlflow", *extra],
    )  # fmt: skip


def test_the_profile_travels_inside_the_verified_artifact(monitored_model) -> None:
    model, reference, _ = monitored_model
    profile = json.loads((model / "artifacts/model_files" / PROFILE_FILE).read_text())
    manifest = json.loads((model / "manifest.json").read_text())
    assert any(PROFILE_FILE in name for name in json.dumps(manifest).split('"'))
    last = reference.head(2400)["application_date"].max()
    assert profile["window"] == {"first_month": "2019-01", "last_month": f"{last:%Y-%m}"}
    assert 0.5 < profile["development_auc"] < 1.0
    assert set(profile["features"]) >= {"bureau_score", "vehicle_segment", "monthly_income"}


def test_a_stable_batch_exits_zero_and_a_shifted_one_exits_red(monitored_model, tmp_path: Path) -> None:
    model, reference, params = monitored_model
    stable = tmp_path / "stable.parquet"
    _two_months(reference.tail(1600)).to_parquet(stable)
    result = _invoke(model, stable, params, tmp_path / "stable")
    assert result.exit_code == 0, result.output
    assert "batch 1,600 = scored 1,600 + rejected 0" in result.output
    alerts = json.loads((tmp_path / "stable/alerts.json").read_text())
    assert alerts["rules"]["score_psi"]["months_red"] == 0

    shifted = _two_months(reference.tail(1600))
    late = shifted["application_date"] >= "2021-02-01"
    shifted.loc[late, "bureau_score"] = (shifted.loc[late, "bureau_score"] - 150).clip(lower=300)
    shifted.loc[late, "existing_monthly_debt"] *= 3
    shifted.loc[shifted.index[:3], "age"] = 12  # three rows the model refuses, reported, not lost
    path = tmp_path / "shifted.parquet"
    shifted.to_parquet(path)
    result = _invoke(model, path, params, tmp_path / "shifted")
    assert result.exit_code == RED_EXIT_CODE, result.output
    assert "batch 1,600 = scored 1,597 + rejected 3" in result.output
    alerts = json.loads((tmp_path / "shifted/alerts.json").read_text())
    assert alerts["overall"] == "red"
    assert alerts["rules"]["score_psi"]["first_red"] == "2021-02"
    assert alerts["rules"]["score_psi"]["months_red"] == 1
    page = (tmp_path / "shifted/index.html").read_text()
    assert "score_psi" in page


def test_an_already_scored_batch_is_not_scored_again(monitored_model, tmp_path: Path) -> None:
    model, reference, params = monitored_model
    batch = _two_months(reference.tail(1600))
    batch = batch.assign(pd=0.5, score=400.0, grade=1, decision="approve")  # not what the model says
    path = tmp_path / "scored.parquet"
    batch.to_parquet(path)
    result = _invoke(model, path, params, tmp_path / "out")
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    assert summary["scored_here"] is False
    assert result.exit_code == RED_EXIT_CODE  # a score of 400 for everyone is far from the reference


def test_the_performance_history_goes_through_its_gate(monitored_model, tmp_path: Path) -> None:
    model, _, params = monitored_model
    config = SyntheticDataConfig(n_applications=4000, months=24, immature_months=0)
    apps, truth = generate_portfolio(config, 5)
    history = generate_performance(apps, truth, config, 5)
    batch = tmp_path / "batch.parquet"
    apps.tail(1600).drop(columns="default_12m").to_parquet(batch)
    in_batch = history[history["loan_id"].isin(apps["application_id"].tail(1600))]
    longest = in_batch["loan_id"].value_counts().index[0]  # a loan with many months
    broken = history.drop(index=history.index[history["loan_id"] == longest][2:3])
    hist_path = tmp_path / "history.csv"
    broken.to_csv(hist_path, index=False)
    result = _invoke(model, batch, params, tmp_path / "out", "--performance", str(hist_path))
    assert result.exit_code in (0, RED_EXIT_CODE), result.output
    summary = json.loads((tmp_path / "out/summary.json").read_text())
    gate = summary["history"]
    # rows of loans outside the batch are out of scope; the loan with a missing month is held back
    outside = (~broken["loan_id"].isin(apps["application_id"].tail(1600))).sum()
    assert gate["n_rows_outside_batch"] == outside > 0
    assert gate["quarantine_by_reason"] == {"month_gap": 1}
    assert gate["n_loans_quarantined"] == 1
    assert gate["n_file_rows"] == outside + gate["n_passed"] + gate["n_quarantined"] == len(broken)
    assert (tmp_path / "out/vintages.csv").is_file() and (tmp_path / "out/roll_rates_count.csv").is_file()


def test_bad_input_is_one_clear_error(monitored_model, tmp_path: Path) -> None:
    model, reference, params = monitored_model
    batch = tmp_path / "batch.parquet"
    reference.tail(100).to_parquet(batch)
    history = tmp_path / "history.csv"
    pd.DataFrame({"loan_id": ["A1"], "as_of_month": ["2020-01-01"]}).to_csv(history, index=False)
    result = _invoke(model, batch, params, tmp_path / "out", "--performance", str(history))
    assert result.exit_code == 1
    assert "missing columns" in result.output and "months_on_book" in result.output
    assert "Traceback" not in result.output
    result = _invoke(tmp_path / "nowhere", batch, params, tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output
