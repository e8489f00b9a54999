"""The validation gate on Dask (scoring.data.validation_dask) on a real LocalCluster: the report
merged from the partitions, and the gate applied partition by partition, equal the pandas path's
(validate_frame, apply_gate) on the same rows, bad rows spread over the partitions, with rules
whose verdict on the whole frame differs from their verdict on a partition."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from scoring.config import load_params
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.data.config import ValidateConfig
from scoring.data.synthetic import generate_portfolio
from scoring.data.validation import (
    MAX_EXAMPLES,
    QUARANTINE_REASONS,
    DataValidationError,
    ValidationReport,
    apply_gate,
    validate_frame,
)
from scoring.data.validation_dask import apply_gate_dask, validate_dask

pytestmark = [
    pytest.mark.slow,  # a LocalCluster and nine great-expectations runs: about 45 s on 2 cores
    pytest.mark.filterwarnings("ignore:Sending large graph:UserWarning"),  # persisting the test frames
]

REPO = Path(__file__).resolve().parents[1]
N_ROWS = 50_000
N_PARTITIONS = 5
PART = N_ROWS // N_PARTITIONS  # from_pandas cuts a RangeIndex into equal parts
# one row in each of the five partitions, away from their edges
SPREAD = [123, PART + 4_567, 2 * PART + 8_901, 3 * PART + 2_345, 4 * PART + 9_876]


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def config() -> ValidateConfig:
    return load_params(REPO / "params.yaml").validate_


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    synthetic = load_params(REPO / "params.yaml").data.synthetic
    applications, _ = generate_portfolio(synthetic.model_copy(update={"n_applications": N_ROWS}), seed=17)
    return applications


def partitioned(frame: pd.DataFrame) -> tuple[dd.DataFrame, pd.DataFrame]:
    """The frame in partitions held by the workers, and the rows the pandas path gets: ``.compute()``."""
    parts = dd.from_pandas(frame, npartitions=N_PARTITIONS).persist()
    assert parts.npartitions == N_PARTITIONS
    assert list(parts.divisions[1:-1]) == [PART * k for k in range(1, N_PARTITIONS)]
    return parts, parts.compute()


def assert_same_report(ours: ValidationReport, theirs: ValidationReport) -> None:
    """Outcome for outcome: every field, positions included; floats to 1e-12 (sums in another order)."""
    assert (ours.success, ours.n_rows) == (theirs.success, theirs.n_rows)
    assert [(o.rule, o.column) for o in ours.outcomes] == [(o.rule, o.column) for o in theirs.outcomes]
    for a, b in zip(ours.outcomes, theirs.outcomes, strict=True):
        fields_a, fields_b = asdict(a), asdict(b)
        observed_a, observed_b = fields_a.pop("observed"), fields_b.pop("observed")
        if isinstance(observed_a, float) and isinstance(observed_b, float):
            assert math.isclose(observed_a, observed_b, rel_tol=0.0, abs_tol=1e-12), a.rule
        else:
            assert observed_a == observed_b, a.rule
        assert fields_a == fields_b, a.rule  # positions, examples, counts, severity, success
    assert ours.to_dict().keys() == theirs.to_dict().keys()


def rule(report: ValidationReport, code: str) -> tuple[bool, int, tuple[int, ...]]:
    (outcome,) = [o for o in report.outcomes if o.rule == code]
    return outcome.success, outcome.unexpected_count, outcome.positions


def test_clean_portfolio_gives_the_pandas_report_gate_and_data_docs(
    client: Client, portfolio: pd.DataFrame, config: ValidateConfig, tmp_path: Path
) -> None:
    frame, rows = partitioned(portfolio)
    ours = validate_dask(frame, SYNTHETIC_SPEC, config, docs_dir=tmp_path / "docs")
    theirs = validate_frame(rows, SYNTHETIC_SPEC, config)
    assert_same_report(ours, theirs)
    assert ours.success and not ours.failures() and ours.n_rows == N_ROWS
    # the nullable columns' null-share rules pass with offending rows in every partition: counted
    # over all of them; no positions kept (no quarantine rule: the gate reads none, and the second,
    # COMPLETE pass that lists them all is not run), the examples the frame's first null rows
    success, count, positions = rule(ours, "bureau_score_too_many_nulls")
    nulls = np.flatnonzero(rows["bureau_score"].isna().to_numpy())
    assert success and count == len(nulls) and nulls.max() > 4 * PART and positions == ()
    (outcome,) = [o for o in ours.outcomes if o.rule == "bureau_score_too_many_nulls"]
    assert outcome.unexpected_examples == [str(v) for v in rows["application_id"].iloc[nulls[:MAX_EXAMPLES]]]

    gate = apply_gate_dask(frame, ours, config)
    passed, quarantine = dask.compute(gate.passed, gate.quarantine)
    expected = apply_gate(rows, theirs, config)
    pd.testing.assert_frame_equal(passed.reset_index(drop=True), expected.passed)
    pd.testing.assert_frame_equal(quarantine.reset_index(drop=True), expected.quarantine)
    assert gate.summary == expected.summary and gate.summary["n_passed"] == N_ROWS

    docs = tmp_path / "docs"
    (page,) = (docs / "validations" / "scoring_validate").rglob("*.html")
    assert page.relative_to(docs).as_posix() in (docs / "index.html").read_text(encoding="utf-8")
    text = " ".join(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")).split())
    n = len(ours.outcomes)
    assert f"Evaluated Expectations {n} Successful Expectations {n}" in text


def test_bad_rows_over_all_partitions_are_quarantined_as_on_pandas(
    client: Client, portfolio: pd.DataFrame, config: ValidateConfig
) -> None:
    bad = portfolio.copy()
    bad.loc[SPREAD[:3], "monthly_income"] = -100.0
    bad.loc[SPREAD[2:], "age"] = 150  # the third row breaks two rules: two reasons
    bad.loc[[SPREAD[1], SPREAD[3]], "vehicle_segment"] = "hovercraft"  # unseen level: a warning
    bad.loc[[SPREAD[0], SPREAD[4]], "employment_years"] = np.nan  # a required value
    bad.loc[SPREAD[4] + 1, "application_id"] = bad.loc[SPREAD[0] + 1, "application_id"]
    # the null share of bureau_score is 100% on one partition, under its 50% bound on the whole
    bad.loc[PART : 2 * PART - 1, "bureau_score"] = pd.NA
    config = config.model_copy(update={"severity": {"duplicate_id": "quarantine"}})
    frame, rows = partitioned(bad)
    assert (
        rows["bureau_score"].iloc[PART : 2 * PART].isna().all() and rows["bureau_score"].isna().mean() < 0.5
    )

    ours = validate_dask(frame, SYNTHETIC_SPEC, config)
    theirs = validate_frame(rows, SYNTHETIC_SPEC, config)
    assert_same_report(ours, theirs)
    assert ours.success
    assert [o.rule for o in ours.failures()] == [
        "duplicate_id",
        "age_out_of_range",
        "employment_years_missing",
        "monthly_income_out_of_range",
        "vehicle_segment_unseen_level",
    ]
    assert rule(ours, "duplicate_id")[2] == (SPREAD[0] + 1, SPREAD[4] + 1)  # both rows, across partitions
    assert rule(ours, "age_out_of_range")[2] == tuple(SPREAD[2:])
    assert rule(ours, "bureau_score_too_many_nulls")[0]
    # a warning keeps its SUMMARY result: its first offending rows, in later partitions, named
    (unseen,) = [o for o in ours.outcomes if o.rule == "vehicle_segment_unseen_level"]
    assert unseen.unexpected_examples == [str(rows.loc[i, "application_id"]) for i in (SPREAD[1], SPREAD[3])]

    gate = apply_gate_dask(frame, ours, config)
    passed, quarantine = dask.compute(gate.passed, gate.quarantine)
    expected = apply_gate(rows, theirs, config)
    pd.testing.assert_frame_equal(passed.reset_index(drop=True), expected.passed)
    pd.testing.assert_frame_equal(quarantine.reset_index(drop=True), expected.quarantine)
    assert gate.summary == expected.summary
    assert gate.summary["n_quarantined"] == len(quarantine) == 7
    assert gate.summary["n_passed"] + gate.summary["n_quarantined"] == N_ROWS == len(passed) + len(quarantine)
    assert gate.summary["warnings"] == {"vehicle_segment_unseen_level": 2}
    reasons = dict(zip(quarantine["application_id"], quarantine[QUARANTINE_REASONS], strict=True))
    assert reasons[rows.loc[SPREAD[2], "application_id"]] == "age_out_of_range;monthly_income_out_of_range"


def test_critical_failures_seen_only_on_the_whole_frame_stop_both_paths_alike(
    client: Client, portfolio: pd.DataFrame, config: ValidateConfig
) -> None:
    bad = portfolio.copy()
    bad.loc[SPREAD[3], "application_id"] = bad.loc[SPREAD[1], "application_id"]  # unique on each partition
    # bureau_score null on just over half of the rows: under its 50% bound on two partitions
    nulls = np.r_[0 : int(0.56 * PART), PART : 2 * PART, 2 * PART : int(2.7 * PART)]
    bad.loc[nulls, "bureau_score"] = pd.NA
    bad.loc[bad["default_12m"].notna(), "default_12m"] = 0  # no default anywhere
    frame, rows = partitioned(bad)
    shares = rows["bureau_score"].isna().groupby(np.arange(N_ROWS) // PART).mean()
    assert rows["bureau_score"].isna().mean() > 0.5 and (shares < 0.5).sum() >= 2

    ours = validate_dask(frame, SYNTHETIC_SPEC, config)
    theirs = validate_frame(rows, SYNTHETIC_SPEC, config)
    assert_same_report(ours, theirs)
    assert not ours.success
    assert [o.rule for o in ours.critical_failures()] == [
        "duplicate_id",
        "single_class",
        "default_rate_out_of_bounds",
        "bureau_score_too_many_nulls",
    ]
    # critical here (no quarantine rule): its count and examples, no positions (nothing reads them)
    assert rule(ours, "duplicate_id")[1:] == (2, ())
    (duplicate,) = [o for o in ours.outcomes if o.rule == "duplicate_id"]
    assert duplicate.unexpected_examples == [str(rows.loc[SPREAD[1], "application_id"])]
    with pytest.raises(DataValidationError) as pandas_error:
        apply_gate(rows, theirs, config)
    with pytest.raises(DataValidationError) as dask_error:
        apply_gate_dask(frame, ours, config)
    assert str(dask_error.value) == str(pandas_error.value)
    assert "examples: " + str(rows.loc[SPREAD[1], "application_id"]) in str(dask_error.value)


def test_both_classes_over_the_partitions_and_the_default_rate_are_global(
    client: Client, portfolio: pd.DataFrame, config: ValidateConfig
) -> None:
    bad = portfolio.copy()
    bad.loc[bad["default_12m"].notna(), "default_12m"] = 0
    bad.loc[SPREAD[2], "default_12m"] = 1  # one default: both classes, a default rate far too low
    frame, rows = partitioned(bad)
    ours = validate_dask(frame, SYNTHETIC_SPEC, config)
    theirs = validate_frame(rows, SYNTHETIC_SPEC, config)
    assert_same_report(ours, theirs)
    # four partitions hold a single class; the frame holds both
    assert [o.rule for o in ours.failures()] == ["default_rate_out_of_bounds"]
    (rate,) = [o.observed for o in ours.outcomes if o.rule == "default_rate_out_of_bounds"]
    assert isinstance(rate, float) and 0 < rate < config.default_rate.min


def test_the_gate_refuses_rows_that_are_not_the_validated_ones(
    client: Client, portfolio: pd.DataFrame, config: ValidateConfig
) -> None:
    frame = dd.from_pandas(portfolio.head(PART), npartitions=2).persist()
    report = validate_dask(frame, SYNTHETIC_SPEC, config)
    assert report.success and report.n_rows == PART
    shorter = apply_gate_dask(frame.partitions[:1], report, config)
    with pytest.raises(ValueError, match=r"fewer rows than the report's 10000"):
        shorter.passed.compute()
    longer = apply_gate_dask(dd.concat([frame, frame.partitions[0]]), report, config)
    with pytest.raises(ValueError, match=r"more rows than the report's 10000"):
        longer.quarantine.compute()
