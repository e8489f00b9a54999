"""Bad input, one case a test: the exact outcome (stop with which message, or quarantine with which
reason) and rows that reconcile. Runs the real readers, the great-expectations gate and the stage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import DataReadError, read_table
from scoring.data.config import FileDataConfig, SyntheticDataConfig, ValidateConfig
from scoring.data.prepare import prepare_file
from scoring.data.synthetic import generate_portfolio
from scoring.data.validation import (
    QUARANTINE_REASONS,
    DataValidationError,
    GateResult,
    apply_gate,
    validate_frame,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = ValidateConfig()


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    applications, _ = generate_portfolio(SyntheticDataConfig(n_applications=2000), seed=11)
    # As read back from a file: nullable integers become floats.
    return applications.astype({"bureau_score": "float64", "default_12m": "float64"})


def gate(frame: pd.DataFrame, config: ValidateConfig = CONFIG) -> GateResult:
    return apply_gate(frame, validate_frame(frame, SYNTHETIC_SPEC, config), config)


def stops_with(frame: pd.DataFrame, rule: str, config: ValidateConfig = CONFIG) -> str:
    with pytest.raises(DataValidationError) as excinfo:
        gate(frame, config)
    assert [f.rule for f in excinfo.value.failures] == [rule]
    return str(excinfo.value)


def reconciles(result: GateResult, n_input: int) -> None:
    assert len(result.passed) + len(result.quarantine) == n_input
    assert result.summary["n_passed"] + result.summary["n_quarantined"] == n_input
    both = set(result.passed["application_id"]) & set(result.quarantine["application_id"])
    assert not both


def test_all_null_column_stops_naming_the_column(portfolio: pd.DataFrame) -> None:
    message = stops_with(portfolio.assign(bureau_score=np.nan), "bureau_score_too_many_nulls")
    assert (
        "column 'bureau_score': expected at most 50% null values, observed 2000 null of 2000 rows" in message
    )


def test_all_null_required_column_stops_on_quarantine_share(portfolio: pd.DataFrame) -> None:
    message = stops_with(portfolio.assign(monthly_income=np.nan), "quarantine_share_exceeded")
    assert "2000 of 2000 rows (100.0%)" in message and "monthly_income_missing (2000)" in message


def test_missing_required_column_stops(portfolio: pd.DataFrame) -> None:
    message = stops_with(portfolio.drop(columns="vehicle_price"), "vehicle_price_missing_column")
    assert "column 'vehicle_price': expected the column to be present, observed column missing" in message


def test_string_in_numeric_column_stops(portfolio: pd.DataFrame, tmp_path: Path) -> None:
    frame = portfolio.copy()
    frame["age"] = frame["age"].astype(object)
    frame.loc[5, "age"] = "forty"
    path = tmp_path / "apps.csv"
    frame.to_csv(path, index=False)
    declared = FileDataConfig(
        path=path,
        id_column="application_id",
        target_column="default_12m",
        date_column="application_date",
        customer_column="customer_id",
    )
    prepared = prepare_file(declared)
    assert prepared.spec.follows_auto_loan_contract  # every contract column is there
    with pytest.raises(DataValidationError) as excinfo:
        validate_and_gate = validate_frame(prepared.applications, prepared.spec, CONFIG)
        apply_gate(prepared.applications, validate_and_gate, CONFIG)
    # the type rule names the problem; the range rule on the same column cannot run on text
    assert [f.rule for f in excinfo.value.failures] == ["age_column_type", "age_out_of_range"]
    assert {f.column for f in excinfo.value.failures} == {"age"}
    assert "column 'age': expected a numeric dtype, observed dtype" in str(excinfo.value)


def test_negative_income_is_quarantined(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[[10, 20], "monthly_income"] = -500.0
    result = gate(frame)
    reconciles(result, len(frame))
    assert result.quarantine["application_id"].tolist() == frame.loc[[10, 20], "application_id"].tolist()
    assert set(result.quarantine[QUARANTINE_REASONS]) == {"monthly_income_out_of_range"}
    assert result.summary["quarantine_by_reason"] == {"monthly_income_out_of_range": 2}


def test_duplicated_ids_stop_naming_the_id(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[7, "application_id"] = frame.loc[6, "application_id"]
    message = stops_with(frame, "duplicate_id")
    assert f"examples: {frame.loc[6, 'application_id']}" in message


def test_duplicated_ids_can_be_quarantined_instead(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[7, "application_id"] = frame.loc[6, "application_id"]
    result = gate(frame, ValidateConfig(severity={"duplicate_id": "quarantine"}))
    reconciles(result, len(frame))
    assert len(result.quarantine) == 2 and set(result.quarantine[QUARANTINE_REASONS]) == {"duplicate_id"}


def test_target_outside_zero_one_stops(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    labelled = frame.index[frame["default_12m"].notna()][:3]
    frame.loc[labelled, "default_12m"] = 2.0
    message = stops_with(frame, "default_12m_target_not_binary")
    assert "expected values in {0, 1}, observed 3 of 2000 rows unexpected (values: 2.0)" in message


def test_single_class_target_stops(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[frame["default_12m"].notna(), "default_12m"] = 0.0
    with pytest.raises(DataValidationError) as excinfo:
        gate(frame)
    rules = {f.rule for f in excinfo.value.failures}
    assert rules == {"single_class", "default_rate_out_of_bounds"}
    assert "expected both classes 0 and 1 among labelled rows" in str(excinfo.value)


def test_empty_file_stops_at_reading(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataReadError, match=r"empty.csv: the file is empty \(expected a header row"):
        prepare_file(FileDataConfig(path=path))


def test_truncated_csv_stops_at_reading(portfolio: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    text = portfolio.head(50).to_csv(index=False)
    path.write_text(text[: len(text) - 200])  # the export stopped in the middle of the last row
    with pytest.raises(DataReadError, match=r"looks truncated: its last line has \d+ of 35 fields"):
        read_table(path)


def test_corrupt_parquet_stops_at_reading(portfolio: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "apps.parquet"
    portfolio.head(50).to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataReadError, match=r"apps.parquet: not a readable Parquet file"):
        read_table(path)


def test_future_dates_stop(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[3, "application_date"] = pd.Timestamp("2031-05-01")
    config = ValidateConfig(as_of_date="2030-01-01")  # type: ignore[arg-type]
    message = stops_with(frame, "future_application_date", config)
    assert "expected dates on or before the extract date 2030-01-01" in message
    assert f"examples: {frame.loc[3, 'application_id']}" in message


def test_a_few_unseen_levels_pass_with_a_warning(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[[1, 2], "vehicle_segment"] = "hovercraft"
    result = gate(frame)
    assert len(result.passed) == len(frame) and result.quarantine.empty
    assert result.summary["warnings"] == {"vehicle_segment_unseen_level": 2}


def test_many_unseen_levels_stop(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[:99, "vehicle_segment"] = "hovercraft"  # 5% of rows, above the 1% bound
    message = stops_with(frame, "vehicle_segment_unseen_levels")
    assert "observed 100 of 2000 rows unexpected (values: hovercraft)" in message


def test_extreme_outliers_are_quarantined(portfolio: pd.DataFrame) -> None:
    frame = portfolio.copy()
    frame.loc[4, "monthly_income"] = 1e12
    frame.loc[8, "vehicle_price"] = 9e9
    result = gate(frame)
    reconciles(result, len(frame))
    reasons = dict(
        zip(result.quarantine["application_id"], result.quarantine[QUARANTINE_REASONS], strict=True)
    )
    assert reasons[frame.loc[4, "application_id"]] == "monthly_income_out_of_range"
    assert reasons[frame.loc[8, "application_id"]].startswith("vehicle_price_out_of_range")


def test_validate_stage_exits_nonzero_with_the_message(portfolio: pd.DataFrame, tmp_path: Path) -> None:
    frame = portfolio.drop(columns="annual_rate")
    apps = tmp_path / "applications.parquet"
    frame.to_parquet(apps)
    dataset = tmp_path / "dataset.json"
    dataset.write_text(SYNTHETIC_SPEC.to_json())
    out = {name: str(tmp_path / name) for name in ("ok.parquet", "q.parquet", "d.json", "s.json", "r.json")}
    args = [
        sys.executable, str(REPO / "pipelines" / "validate.py"), "--params", str(REPO / "params.yaml"),
        "--applications", str(apps), "--dataset", str(dataset), "--out", out["ok.parquet"],
        "--quarantine", out["q.parquet"], "--out-dataset", out["d.json"], "--summary", out["s.json"],
        "--report", out["r.json"], "--drift", str(tmp_path / "drift.json"), "--docs", str(tmp_path / "docs"),
        "--results-page", str(tmp_path / "index.html"),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert "error: data validation failed: 1 critical" in proc.stderr
    assert "[annual_rate_missing_column]" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not Path(out["ok.parquet"]).exists()


def test_readme_examples_stop_and_pass_as_documented() -> None:
    """The committed example files behave as README says (and are what make-examples writes)."""
    from scoring.data.examples import BAD_ROW_DAMAGE, BAD_ROWS, BROKEN, example_frames

    examples = REPO / "data" / "examples"
    fresh = example_frames()
    for name in (BROKEN, BAD_ROWS):
        committed = pd.read_csv(examples / name)
        assert len(committed) == len(fresh[name]) and list(committed.columns) == list(fresh[name].columns)

    broken = prepare_file(FileDataConfig(path=examples / BROKEN))
    assert broken.spec.follows_auto_loan_contract  # the contract is recognised despite the gap
    with pytest.raises(DataValidationError) as excinfo:
        apply_gate(broken.applications, validate_frame(broken.applications, broken.spec, CONFIG), CONFIG)
    assert {f.rule for f in excinfo.value.failures} == {"annual_rate_missing_column", "duplicate_id"}

    bad = prepare_file(FileDataConfig(path=examples / BAD_ROWS))
    result = apply_gate(bad.applications, validate_frame(bad.applications, bad.spec, CONFIG), CONFIG)
    reconciles(result, len(bad.applications))
    assert len(result.quarantine) == sum(count for _, _, count in BAD_ROW_DAMAGE)
    assert result.summary["quarantine_by_reason"] == {
        "age_out_of_range": 5,
        "monthly_income_out_of_range": 6,
        "term_not_allowed": 4,
    }
