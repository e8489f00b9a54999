"""Monitoring: the reference profile's frozen bins, PSI/CSI against optbinning, the performance
analytics on hand-made histories, the alert rules, and the synthetic downturn against a stable
simulation (the library on the generator's data, with a model that does not know the cycle)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio, observable_log_odds
from scoring.decision.grades import ValidationTestSettings
from scoring.monitoring import performance as perf
from scoring.monitoring.config import MonitorConfig, Thresholds
from scoring.monitoring.monitor import RULES, run_monitoring
from scoring.monitoring.profile import (
    bin_counts,
    build_profile,
    category_bins,
    numeric_bins,
    stability_by_group,
    stability_index,
)

# ------------------------------------------------------------------ profile and PSI


def test_numeric_bins_freeze_deciles_and_a_missing_bin() -> None:
    values = pd.Series([*range(1, 101), None], dtype="Float64")
    entry = numeric_bins(values, 10)
    assert len(entry["edges"]) == 9
    assert len(entry["shares"]) == 11  # ten intervals and missing
    assert entry["shares"][-1] == pytest.approx(1 / 101)
    assert sum(entry["shares"]) == pytest.approx(1.0)
    # the same data against its own bins: no shift
    assert stability_index(values, entry) == pytest.approx(0.0, abs=1e-12)
    # values beyond the reference range land in the outer bins, not nowhere
    counts = bin_counts(pd.Series([-1e9, 1e9, np.nan]), entry)
    assert counts[0] == 1 and counts[-2] == 1 and counts[-1] == 1


def test_category_bins_pool_rare_and_unseen_levels() -> None:
    reference = pd.Series(["a"] * 600 + ["b"] * 399 + ["rare"] * 1)
    entry = category_bins(reference)
    assert entry["levels"] == ["a", "b"]  # 'rare' is under the minimum share
    counts = bin_counts(pd.Series(["a", "b", "never-seen", None, "rare"]), entry)
    assert counts.tolist() == [1.0, 1.0, 2.0, 1.0]  # a, b, <other>, missing
    moved = pd.Series(["b"] * 700 + ["a"] * 300)
    assert stability_index(moved, entry) > 0.25


def test_boolean_inputs_are_levels() -> None:
    entry = category_bins(pd.Series([True] * 70 + [False] * 30))
    assert entry["levels"] == ["False", "True"]
    assert stability_index(pd.Series([True] * 70 + [False] * 30), entry) == pytest.approx(0.0, abs=1e-12)


def test_grouped_psi_equals_one_group_at_a_time() -> None:
    rng = np.random.default_rng(3)
    reference = pd.Series(rng.normal(size=4000))
    entry = numeric_bins(reference, 10)
    values = pd.Series(np.concatenate([rng.normal(size=1000), rng.normal(0.5, 1.2, size=1000)]))
    groups = np.repeat([0, 1], 1000)
    grouped = stability_by_group(values, groups, 2, entry)
    assert grouped[0] == pytest.approx(stability_index(values[:1000], entry))
    assert grouped[1] == pytest.approx(stability_index(values[1000:], entry))
    assert grouped[1] > grouped[0]


def test_psi_with_frozen_bins_equals_optbinnings_scorecard_monitoring() -> None:
    """The same index optbinning's ScorecardMonitoring gives with its scorecard's own bins."""
    from optbinning import BinningProcess, Scorecard
    from optbinning.scorecard import ScorecardMonitoring
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 5000
    expected = pd.DataFrame({"a": rng.normal(size=n), "b": rng.gamma(2.0, size=n)})
    y_expected = (rng.random(n) < 1 / (1 + np.exp(-(expected["a"] - 1)))).astype(int)
    actual = pd.DataFrame({"a": rng.normal(0.3, 1.1, size=n), "b": rng.gamma(2.3, size=n)})
    y_actual = (rng.random(n) < 1 / (1 + np.exp(-(actual["a"] - 1)))).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        card = Scorecard(binning_process=BinningProcess(["a", "b"]), estimator=LogisticRegression())
        card.fit(expected, y_expected)
        monitoring = ScorecardMonitoring(scorecard=card, psi_method="cart", psi_n_bins=10)
        monitoring.fit(actual, y_actual, expected, y_expected)
        theirs = monitoring.psi_variable_table(style="summary").set_index("Variable")["PSI"]
    for name in ("a", "b"):
        splits = card.binning_process_.get_binned_variable(name).splits
        entry = {"kind": "numeric", "edges": [float(s) for s in splits], "shares": []}
        counts = bin_counts(expected[name], {**entry, "shares": [0.0] * (len(splits) + 2)})
        entry["shares"] = (counts / counts.sum()).tolist()
        assert stability_index(actual[name], entry) == pytest.approx(float(theirs[name]), rel=1e-3)


def test_profile_records_window_mix_and_scores() -> None:
    raw = pd.DataFrame(
        {
            "x": np.arange(100, dtype=float),
            "c": ["u", "v"] * 50,
            "application_date": pd.date_range("2020-01-01", periods=100, freq="D"),
        }
    )
    scored = pd.DataFrame(
        {
            "pd": np.linspace(0.01, 0.2, 100),
            "score": np.linspace(700, 500, 100),
            "grade": np.repeat([1, 2, 3, 4], 25),
            "decision": ["approve"] * 80 + ["decline"] * 20,
        }
    )
    profile = build_profile(raw, scored, ["x", "c"], "application_date", 5, 0.81)
    assert profile["window"] == {"first_month": "2020-01", "last_month": "2020-04"}
    assert profile["approval_rate"] == pytest.approx(0.8)
    assert profile["grade_mix"] == {"1": 0.25, "2": 0.25, "3": 0.25, "4": 0.25}
    assert profile["features"]["c"]["kind"] == "category"
    assert profile["development_auc"] == 0.81
    with pytest.raises(ValueError, match="same rows"):
        build_profile(raw, scored.head(10), ["x"], None)


# ------------------------------------------------------------------ performance analytics


def _loan(loan_id: str, first: str, buckets: list[str], statuses: list[str] | None = None) -> pd.DataFrame:
    dpd = {"current": 0, "M1": 15, "M2": 45, "M3": 75, "M4+": 100, "written_off": 190}
    n = len(buckets)
    return pd.DataFrame(
        {
            "loan_id": loan_id,
            "as_of_month": pd.date_range(first, periods=n, freq="MS"),
            "months_on_book": np.arange(1, n + 1),
            "scheduled_payment": 100.0,
            "amount_paid": 100.0,
            "outstanding_principal": np.linspace(1000, 1000 - 10 * n, n),
            "days_past_due": [dpd[b] for b in buckets],
            "bucket": buckets,
            "status": statuses or ["active"] * n,
        }
    )


def test_outcomes_vintages_and_roll_rates_on_a_hand_made_history() -> None:
    history = pd.concat(
        [
            _loan(
                "L1",
                "2020-02-01",
                ["current", "M1", "M2", "M3", "M4+", "written_off"],
                [*["active"] * 5, "written_off"],
            ),
            _loan("L2", "2020-02-01", ["current", "M1", "current", "current", "current", "current"]),
            _loan("L3", "2020-03-01", ["M1", "M2", "current", "current", "current"]),
        ],
        ignore_index=True,
    )
    outcomes = perf.loan_outcomes(history)
    assert outcomes.loc["L1", ["first_30+", "first_60+", "first_90+"]].tolist() == [3, 4, 5]
    assert outcomes.loc["L2", ["first_30+", "first_90+"]].tolist() == [0, 0]
    assert outcomes.loc["L3", "first_30+"] == 2
    assert bool(outcomes.loc["L1", "ended"]) and not bool(outcomes.loc["L2", "ended"])
    january = 2020 * 12  # cohort of L1 and L2 (first instalment February)
    assert outcomes.loc["L1", "cohort"] == january and outcomes.loc["L3", "cohort"] == january + 1

    last = perf.month_number(history["as_of_month"]).max()
    within_5 = perf.defaulted_within(outcomes, 5, int(last))
    assert within_5.to_dict() == {"L1": 1.0, "L2": 0.0, "L3": 0.0}
    # a cohort younger than the window is not judged, even a loan of it that already defaulted
    assert perf.defaulted_within(outcomes, 12, int(last)).isna().all()

    vintages = perf.vintage_curves(outcomes, int(last), max_mob=6)
    q1 = vintages[vintages["vintage"] == "2020Q1"].set_index("months_on_book")
    assert q1.loc[2, "30+"] == pytest.approx(1 / 3)  # L3 at M2 by month 2
    assert q1.loc[5, "90+"] == pytest.approx(1 / 3)  # L1
    assert q1.loc[6, "n_loans"] == 2  # L3's month 6 is after the history's last month

    rolls = perf.roll_rates(history)
    count = rolls["count"]
    # from M1: L1 rolls to M2, L2 cures, L3 rolls to M2
    assert count.loc["M1", "M2"] == pytest.approx(2 / 3)
    assert count.loc["M1", "current"] == pytest.approx(1 / 3)
    assert count.loc["M4+", "written_off"] == pytest.approx(1.0)
    assert count.sum(axis=1).dropna().round(12).eq(1.0).all()
    forward = rolls["forward_by_month"].set_index("month")
    # into 2020-04: L1 and L3 roll from M1 to M2, L2 cures
    assert forward.loc["2020-04", "M1->M2"] == pytest.approx(2 / 3)
    assert forward.loc["2020-05", "M2->M3"] == pytest.approx(1 / 2)  # L1 rolls, L3 cures


def test_backtest_uses_matured_cohorts_and_flags_underestimated_pd() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    scored = pd.DataFrame(
        {"cohort": np.repeat([100, 101], n // 2), "pd": 0.05, "grade": rng.integers(1, 4, n)},
        index=[f"L{i}" for i in range(n)],
    )
    observed = pd.Series(
        (rng.random(n) < np.where(scored["cohort"] == 100, 0.05, 0.09)).astype(float), index=scored.index
    )
    result = perf.backtest(scored, observed, ValidationTestSettings())
    cohorts = result["cohorts"].set_index("month")
    assert cohorts.loc[100, "flag"] == "green"
    assert cohorts.loc[101, "flag"] == "red"
    assert cohorts.loc[101, "observed_rate"] == pytest.approx(observed[scored["cohort"] == 101].mean())
    assert set(result["grades"]["grade"]) == {1, 2, 3}


# ------------------------------------------------------------------ the rules and the downturn


def _scenario(macro_cycle: bool) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """The generator's portfolio scored by a model that knows everything but the cycle and the
    dealers: observable log-odds, recalibrated to the development months' default rate."""
    config = SyntheticDataConfig(n_applications=100_000, macro_cycle=macro_cycle)
    apps, truth = generate_portfolio(config, 20261128)
    history = generate_performance(apps, truth, config, 20261128)
    log_odds = observable_log_odds(apps)
    month = apps["application_date"].dt.to_period("M")
    development = (month <= pd.Period("2022-06", "M")).to_numpy() & apps["default_12m"].notna().to_numpy()
    rate = float(apps.loc[development, "default_12m"].mean())
    shift = np.log(rate / (1 - rate)) - np.log(
        np.mean(1 / (1 + np.exp(-log_odds[development])))
        / (1 - np.mean(1 / (1 + np.exp(-log_odds[development]))))
    )
    for _ in range(20):  # a few Newton steps to match the mean PD exactly
        p = 1 / (1 + np.exp(-(log_odds[development] + shift)))
        shift -= (p.mean() - rate) / np.mean(p * (1 - p))
    pd_ = 1 / (1 + np.exp(-(log_odds + shift)))
    edges = np.quantile(pd_[development], np.linspace(0, 1, 11)[1:-1])
    grade = np.searchsorted(edges, pd_) + 1
    scored = pd.DataFrame(
        {
            "pd": pd_,
            "score": 600 - 28.85 * np.log(pd_ / (1 - pd_)),
            "grade": grade,
            "decision": np.where(grade <= 8, "approve", "decline"),
        }
    )
    inputs = [
        "bureau_score",
        "monthly_income",
        "vehicle_segment",
        "channel",
        "loan_amount",
        "income_verified",
    ]
    train = development & (np.random.default_rng(0).random(len(apps)) < 0.5)
    profile = build_profile(
        apps.loc[train, [*inputs, "application_date"]].reset_index(drop=True),
        scored[train].reset_index(drop=True),
        inputs,
        "application_date",
        10,
        0.85,
    )
    return pd.concat([apps, scored], axis=1), profile, history


@pytest.fixture(scope="module")
def downturn() -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    return _scenario(macro_cycle=True)


def _monitor(batch: pd.DataFrame, profile: dict, history: pd.DataFrame | None, **overrides: object):
    config = MonitorConfig(**overrides)  # type: ignore[arg-type]
    return run_monitoring(
        batch, profile, config, ValidationTestSettings(), "application_id", "application_date", history
    )


@pytest.mark.slow
def test_the_downturn_raises_red_and_a_stable_simulation_does_not(downturn) -> None:
    batch, profile, history = downturn
    result = _monitor(batch, profile, history)
    backtest = result.alerts["rules"]["backtest"]
    assert result.alerts["overall"] == "red"
    assert backtest["first_red"] == "2022-07"  # the first month after the development window
    assert result.alerts["rules"]["early_delinquency"]["first_fired"] is not None
    judged = result.stability.loc[result.stability["judged"], "label"]
    assert judged.iloc[0] == "2022-07" and judged.iloc[-1] == "2023-12"

    stable = _monitor(*_scenario(macro_cycle=False))
    assert stable.alerts["overall"] != "red", stable.alerts
    assert all(entry["months_red"] == 0 for entry in stable.alerts["rules"].values())
    # the same months are judged in both
    assert stable.lights["label"].tolist() == result.lights["label"].tolist()


def test_every_rule_has_a_light_per_judged_month(downturn) -> None:
    batch, profile, history = downturn
    result = _monitor(batch, profile, history)
    assert list(result.lights.columns) == ["month", "label", *RULES]
    assert set(result.lights[list(RULES)].to_numpy().ravel()) <= {"green", "amber", "red", "n/a"}
    # stability is judged every month; the back-test only where 12 months have passed
    assert (result.lights["score_psi"] != "n/a").all()
    matured = result.lights["label"] <= "2022-12"
    assert (result.lights.loc[~matured, "backtest"] == "n/a").all()
    assert (result.lights.loc[matured, "backtest"] != "n/a").all()


def test_the_shifted_feature_is_named_and_red_needs_the_score_to_move(downturn) -> None:
    batch, profile, _history = downturn
    # every applicant's car an SUV: a large CSI on vehicle_segment the score does not follow
    shifted = batch.assign(vehicle_segment="suv")
    result = _monitor(shifted, profile, None)
    assert (result.stability.loc[result.stability["judged"], "max_csi_feature"] == "vehicle_segment").all()
    assert result.alerts["rules"]["feature_csi"]["light"] == "amber"
    strict = _monitor(shifted, profile, None, feature_csi_red_needs_score_shift=False)
    assert strict.alerts["rules"]["feature_csi"]["light"] == "red"
    assert strict.alerts["rules"]["feature_csi"]["first_red"] == "2022-07"


def test_a_shifted_score_is_red_and_persistent_red_recommends_retraining(downturn) -> None:
    batch, profile, _ = downturn
    scores = batch["score"].where(batch["application_date"] < "2023-03-01", batch["score"] - 60)
    result = _monitor(batch.assign(score=scores), profile, None, retrain_after_red_months=3)
    rule = result.alerts["rules"]["score_psi"]
    assert rule["first_red"] == "2023-03"
    assert rule["months_red"] == 10  # 2023-03 .. 2023-12
    assert result.alerts["retrain"]["recommended"]
    assert result.alerts["retrain"]["since"] == "2023-05"  # the third red month in a row
    calm = _monitor(batch.assign(score=scores), profile, None, score_psi=Thresholds(amber=5.0, red=9.0))
    assert calm.alerts["rules"]["score_psi"]["months_red"] == 0


def test_months_too_small_or_inside_the_development_window_are_not_judged(downturn) -> None:
    batch, profile, _ = downturn
    result = _monitor(batch, profile, None, min_rows_per_month=1900)
    small = result.stability.loc[result.stability["n"] < 1900, "month"]
    assert not set(small) & set(result.lights["month"])
    everything = _monitor(batch, profile, None, window="all")
    assert everything.lights["label"].iloc[0] == "2019-01"


def test_a_batch_without_scores_is_refused_with_the_columns_named(downturn) -> None:
    batch, profile, _ = downturn
    with pytest.raises(ValueError, match="grade"):
        _monitor(batch.drop(columns=["grade"]), profile, None)
