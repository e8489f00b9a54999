"""Collections groundwork: transition matrices and cure rates, the Markov forecast and its
back-test, and the behaviour score's account-month snapshots (features from the past only, the
6-month target)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.collections.behaviour import NO_DELINQUENCY, account_snapshots, car_value
from scoring.collections.roll import (
    PAID_OFF,
    WRITTEN_OFF,
    backtest_forecast,
    fit_chain,
    forecast,
)
from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio
from scoring.monitoring.performance import ROLL_STATES, month_number, transitions

CONFIG = SyntheticDataConfig(n_applications=20_000, months=48, immature_months=12)
SEED = 11


@pytest.fixture(scope="module")
def portfolio() -> tuple[pd.DataFrame, pd.DataFrame]:
    apps, truth = generate_portfolio(CONFIG, SEED)
    return apps, generate_performance(apps, truth, CONFIG, SEED)


def _loan(
    loan_id: str, buckets: list[str], statuses: list[str] | None = None, first: str = "2020-02-01"
) -> pd.DataFrame:
    dpd = {"current": 0, "M1": 15, "M2": 45, "M3": 75, "M4+": 100, "written_off": 190}
    n = len(buckets)
    return pd.DataFrame(
        {
            "loan_id": loan_id,
            "as_of_month": pd.date_range(first, periods=n, freq="MS"),
            "months_on_book": np.arange(1, n + 1),
            "scheduled_payment": 100.0,
            "amount_paid": [0.0 if b not in ("current",) else 100.0 for b in buckets],
            "outstanding_principal": np.linspace(1000, 1000 - 10 * n, n),
            "days_past_due": [dpd[b] for b in buckets],
            "bucket": buckets,
            "status": statuses or ["active"] * n,
        }
    )


def test_chain_rows_are_distributions_and_absorbing_states_stay(portfolio) -> None:
    _, history = portfolio
    chain = fit_chain(transitions(history))
    assert np.allclose(chain.by_count.sum(axis=1), 1.0)
    assert chain.by_count[WRITTEN_OFF, WRITTEN_OFF] == 1.0 and chain.by_count[PAID_OFF, PAID_OFF] == 1.0
    assert chain.by_balance[PAID_OFF].sum() == 0.0  # a paid-off account carries no balance
    # nothing skips a bucket, and cure rates fall with the depth of the delinquency
    for i in range(4):
        assert chain.by_count[i, i + 2 : WRITTEN_OFF].sum() == 0.0
    cures = chain.cure_rates()
    assert cures["M1"] > cures["M2"] > cures["M3"] > 0
    table = chain.table()
    assert list(table.index) == list(ROLL_STATES)


def test_chain_counts_on_a_hand_made_history() -> None:
    history = pd.concat(
        [
            _loan("L1", ["current", "M1", "M2", "current"]),
            _loan("L2", ["current", "M1", "current", "current"]),
            _loan("L3", ["current", "current", "current", "current"], [*["active"] * 3, "prepaid"]),
        ],
        ignore_index=True,
    )
    chain = fit_chain(transitions(history))
    m1 = ROLL_STATES.index("M1")
    assert chain.by_count[m1, ROLL_STATES.index("M2")] == pytest.approx(0.5)
    assert chain.by_count[m1, 0] == pytest.approx(0.5)
    # from current: L1, L2 to M1 once each; current->current 1 (L2), 2 (L3), prepaid 1 (L3)
    assert chain.counts[0].tolist()[: m1 + 1] == [3.0, 2.0] and chain.counts[0, PAID_OFF] == 1.0
    steps = forecast(chain, np.eye(len(ROLL_STATES))[0] * 100, np.eye(len(ROLL_STATES))[0] * 1000, 2)
    assert steps[0]["accounts"].sum() == pytest.approx(100.0)  # accounts are neither made nor lost
    assert steps[1]["accounts"] == pytest.approx(steps[0]["accounts"] @ chain.by_count)


def test_the_forecast_back_test_compares_with_what_happened(portfolio) -> None:
    apps, history = portfolio
    last = int(month_number(history["as_of_month"]).max())
    segment = apps.set_index("application_id")["vehicle_condition"]
    result = backtest_forecast(history, last - 6, months=6, fit_months=12, segment=segment)
    table = result["by_month"]
    assert table["months_ahead"].tolist() == [1, 2, 3, 4, 5, 6]
    assert result["segments"] == ["new", "used"]
    accounts = table[[f"accounts_{s}_forecast" for s in ROLL_STATES]].sum(axis=1)
    assert np.allclose(accounts, result["accounts_on_book"])  # the forecast keeps every account
    actual = table[[f"accounts_{s}_actual" for s in ROLL_STATES]].sum(axis=1)
    assert (actual == result["accounts_on_book"]).all()
    # the 90+ balance six months ahead within 25% of what happened on a 20k-loan book
    assert abs(table["balance_90_error"].iloc[-1]) < 0.25
    with pytest.raises(ValueError, match="after the history's last month"):
        backtest_forecast(history, last - 2, months=6)


def test_car_value_depreciates_by_condition() -> None:
    value = car_value(
        np.array([100.0, 100.0]), np.array(["new", "used"]), np.array([2.0, 2.0]), {"new": 0.2, "used": 0.1}
    )
    assert value.tolist() == pytest.approx([64.0, 81.0])


def test_snapshots_use_the_past_only_and_the_target_looks_six_months_ahead() -> None:
    history = _loan("L1", ["current", "M1", "current", "current", "M1", "M2", "M3", "M4+", "M4+"])
    history = pd.concat([history, _loan("L2", ["current"] * 14)], ignore_index=True)
    apps = pd.DataFrame(
        {
            "application_id": ["L1", "L2"],
            "annual_rate": [0.1, 0.1],
            "term_months": [36, 12],
            "repayment_method": ["equal_installment"] * 2,
            "vehicle_condition": ["new", "used"],
            "loan_amount": [1000.0, 1000.0],
            "vehicle_price": [1500.0, 1500.0],
            "vehicle_age_years": [0.0, 3.0],
            "monthly_income": [1000.0, 1000.0],
        }
    )
    snaps = account_snapshots(history, apps, None, {"new": 0.15, "used": 0.1}, horizon=6)
    l1 = snaps[snaps["loan_id"] == "L1"].set_index("months_on_book")
    # M4+ months are not on book for the score; the rest are
    assert list(l1.index) == [1, 2, 3, 4, 5, 6, 7]
    assert l1.loc[4, "months_since_delinq"] == 2 and l1.loc[1, "months_since_delinq"] == NO_DELINQUENCY
    assert l1.loc[7, "worst_bucket_6m"] == 3 and l1.loc[4, "worst_bucket_6m"] == 1
    assert l1.loc[6, "months_delinquent_12m"] == 3
    assert l1.loc[5, "paid_ratio_3m"] == pytest.approx(200 / 300)
    # M4+ at month 8: within six months of months 2..7, not of month 1
    assert l1.loc[1, "default_6m"] == 0 and l1.loc[2, "default_6m"] == 1 and l1.loc[7, "default_6m"] == 1
    l2 = snaps[snaps["loan_id"] == "L2"].set_index("months_on_book")
    # six months ahead of L2's months 9..14 reach past the history's last month: unknown
    assert l2.loc[8, "default_6m"] == 0 and l2["default_6m"].loc[9:].isna().all()
    assert l2.loc[12, "remaining_term"] == 0
    assert l2.loc[1, "current_ltv"] == pytest.approx(1000 / (1500 * 0.9 ** (3 + 1 / 12)))  # balance 1000


def test_snapshots_on_the_generator_agree_with_its_defaults(portfolio) -> None:
    apps, history = portfolio
    snaps = account_snapshots(history, apps, None, {"new": 0.15, "used": 0.1}, horizon=6)
    assert snaps["bucket"].between(0, 3).all()
    known = snaps.dropna(subset=["default_6m"])
    rates = known.groupby("bucket")["default_6m"].mean()
    assert rates.is_monotonic_increasing and rates.loc[3] > 0.5 > rates.loc[0]
    # the features never look ahead: the bucket is the history's bucket that month
    merged = snaps.merge(history[["loan_id", "as_of_month", "bucket"]], on=["loan_id", "as_of_month"])
    assert (merged["bucket_x"] == merged["bucket_y"].map({"current": 0, "M1": 1, "M2": 2, "M3": 3})).all()


def test_capture_curve_and_orders() -> None:
    from scoring.collections.queue import capture_curve, evaluate_queue, net_exposure

    loss = np.array([0.0, 10.0, 0.0, 90.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert capture_curve(np.array([3, 1, 0, 2, 4, 5, 6, 7, 8, 9]), loss, (0.1, 0.2)) == {
        "top_10%": 0.9,
        "top_20%": 1.0,
    }
    assert net_exposure(np.array([100.0, 100.0]), np.array([50.0, 200.0]), 0.2).tolist() == [60.0, 0.0]
    frame = pd.DataFrame({"outstanding_principal": [100.0, 500.0, 300.0], "days_past_due": [80, 10, 40]})
    result = evaluate_queue(
        frame,
        pd_=np.array([0.9, 0.1, 0.5]),
        exposure=np.array([100.0, 0.0, 300.0]),
        uplift=np.ones(3),
        cost=np.ones(3),
        outcome=np.array([1.0, 0.0, 1.0]),
    )
    assert result["loss"] == 400.0 and result["defaults"] == 2
    # expected loss puts account 2 (0.5 x 300) first: 300 of the 400 lost
    assert result["capture"]["expected_loss"]["top_5%"] == pytest.approx(0.75)
    assert result["capture"]["dpd_then_balance"]["top_5%"] == pytest.approx(0.25)
    assert result["capture"]["balance"]["top_5%"] == 0.0


def test_split_keeps_accounts_whole_and_the_out_of_time_months_last(portfolio) -> None:
    from scoring.collections.queue import split_snapshots

    apps, history = portfolio
    snaps = account_snapshots(history, apps, None, {"new": 0.15, "used": 0.1}, horizon=6)
    split = split_snapshots(snaps, "default_6m", oot_months=6, valid_fraction=0.2, current_share=0.1, seed=3)
    assert not set(split.train["loan_id"]) & set(split.valid["loan_id"])
    assert split.oot["as_of_month"].min() > max(
        split.train["as_of_month"].max(), split.valid["as_of_month"].max()
    )
    assert split.oot["as_of_month"].nunique() == 6
    for part in (split.train, split.valid, split.oot):
        assert part["default_6m"].notna().all()
    delinquent = snaps.dropna(subset=["default_6m"])
    delinquent = delinquent[
        (delinquent["bucket"] > 0) & (delinquent["as_of_month"] < split.oot["as_of_month"].min())
    ]
    assert len(delinquent) == (split.train["bucket"] > 0).sum() + (split.valid["bucket"] > 0).sum()
    # only train is sampled: valid keeps the current months of its accounts
    assert (split.valid["bucket"] == 0).mean() > 0.9 > (split.train["bucket"] == 0).mean()


@pytest.mark.slow
def test_the_behaviour_score_and_the_queue_beat_the_naive_orders(portfolio) -> None:
    from scoring.collections.config import CollectionsConfig
    from scoring.collections.run import behaviour_pd, run_collections

    apps, history = portfolio
    scores = pd.DataFrame({"application_id": apps["application_id"], "pd": 0.05, "score": 600.0})
    result = run_collections(history, apps, scores, CollectionsConfig(), seed=5)
    summary = result.summary
    assert summary["behaviour"]["champion"] in {"scorecard", "xgboost_defaults"}
    assert summary["behaviour"]["oot_auc"] > 0.85
    # calibrated on valid's own mix: the mean PD near the out-of-time default rate
    assert abs(summary["behaviour"]["oot_mean_pd"] - summary["behaviour"]["oot_default_rate"]) < 0.01
    capture = summary["capture_mean"]
    assert capture["queue_top_10%"] > capture["dpd_then_balance_top_10%"]
    assert capture["queue_top_10%"] > capture["balance_top_10%"]
    # the queue: every delinquent account on book in the last month, once, ranked, with reasons
    last = history["as_of_month"].max()
    on_book = history[(history["as_of_month"] == last) & history["bucket"].isin(["M1", "M2", "M3"])]
    on_book = on_book[on_book["status"] == "active"]
    queue = result.queue
    assert sorted(queue["loan_id"]) == sorted(on_book["loan_id"])
    assert queue["rank"].tolist() == list(range(1, len(queue) + 1))
    assert queue["priority"].is_monotonic_decreasing
    assert queue["reason"].str.contains("net exposure").all()
    assert set(queue["action"]) <= set(CollectionsConfig().actions)
    for action, group in queue.groupby("action"):
        assert group["within_capacity"].sum() <= CollectionsConfig().actions[action].capacity
    # the stored PD of a queue row is what the score gives for that account-month
    snaps = account_snapshots(history, apps, scores, CollectionsConfig().depreciation, horizon=6)
    row = snaps[(snaps["loan_id"] == queue["loan_id"].iloc[0]) & (snaps["as_of_month"] == last)]
    assert behaviour_pd(result, row)[0] == pytest.approx(queue["behaviour_pd"].iloc[0])
    assert len(result.forecast_backtest) == 3 * 6
