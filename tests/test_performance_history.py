"""The synthetic monthly performance history and its gate: behaviour rules, contract, reason codes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import BUCKETS, LOAN_STATUSES, PERFORMANCE_COLUMNS, TERMINAL_STATUSES
from scoring.data.config import HistoryGateConfig, SyntheticDataConfig
from scoring.data.history_gate import (
    LOAN_QUARANTINED,
    QUARANTINE_REASONS,
    RULES,
    HistoryGateResult,
    HistoryInputError,
    check_history,
)
from scoring.data.performance import empty_history, generate_performance
from scoring.data.synthetic import generate_portfolio, macro_effect

SEED = 20261203
CONFIG = SyntheticDataConfig(n_applications=8000)
DEFAULTED = ("M4+", "written_off")
EPISODE = ("M1", "M2", "M3")
TAG = "_row"  # an extra column carried through the gate, to follow rows


def _month_number(dates: pd.Series) -> pd.Series:
    dates = pd.to_datetime(dates)
    return dates.dt.year * 12 + dates.dt.month


def _last_month_number(config: SyntheticDataConfig) -> int:
    last = pd.Timestamp(config.start_date) + pd.DateOffset(months=config.months - 1)
    return last.year * 12 + last.month


@pytest.fixture(scope="module")
def portfolio() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_portfolio(CONFIG, SEED)


@pytest.fixture(scope="module")
def apps(portfolio: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return portfolio[0]


@pytest.fixture(scope="module")
def truth(portfolio: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return portfolio[1]


@pytest.fixture(scope="module")
def history(apps: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    return generate_performance(apps, truth, CONFIG, SEED)


@pytest.fixture(scope="module")
def loans(history: pd.DataFrame, apps: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per loan: what the history shows next to what the applications and truth say."""
    h = history
    defaulted = h["bucket"].isin(DEFAULTED)
    first_default = h.loc[defaulted].groupby("loan_id")["months_on_book"].min()
    grouped = h.groupby("loan_id")
    out = pd.DataFrame(
        {
            "n_rows": grouped.size(),
            "max_mob": grouped["months_on_book"].max(),
            "first_default_mob": first_default,
            "ever_delinquent": h["bucket"].ne("current").groupby(h["loan_id"]).any(),
        }
    )
    info = apps.set_index("application_id")[["default_12m", "application_date", "term_months"]]
    out = out.join(info, how="left").join(truth.set_index("application_id")["outcome_12m"], how="left")
    out["default_within_12"] = out["first_default_mob"].le(12)
    return out


# ------------------------------------------------------------------ the 12-month outcome


def test_labelled_default_equals_m4_plus_within_twelve_months_on_book(
    loans: pd.DataFrame, apps: pd.DataFrame
) -> None:
    labelled = apps.loc[apps["default_12m"].notna(), "application_id"]
    assert len(labelled) > 0.5 * len(apps)
    # every labelled application is a booked loan observed for at least 12 months (or until it ended)
    assert set(labelled) <= set(loans.index)
    view = loans.loc[labelled]
    got = view["default_within_12"].astype(int).to_numpy()
    expected = view["default_12m"].astype(int).to_numpy()
    mismatched = view.index[got != expected]
    assert len(mismatched) == 0, f"{len(mismatched)} labelled loans disagree, e.g. {list(mismatched[:5])}"
    assert expected.sum() > 100  # both classes present in numbers


def test_outcome_zero_loans_never_reach_m4_plus_within_twelve_months(loans: pd.DataFrame) -> None:
    good = loans[loans["outcome_12m"] == 0]
    assert not good["default_within_12"].any()
    # and a drawn default shows up as M4+ by month 12 wherever month 12 is observed
    bad_observed = loans[(loans["outcome_12m"] == 1) & (loans["max_mob"] >= 12)]
    assert len(bad_observed) > 100
    assert bad_observed["default_within_12"].all()
    # immature drawn defaults that are observed long enough reach M4+ at 4..12, never earlier
    assert loans["first_default_mob"].dropna().min() >= 4


def test_drawn_defaults_cannot_prepay_or_close_before_they_default(
    history: pd.DataFrame, loans: pd.DataFrame
) -> None:
    bad = loans.index[loans["outcome_12m"] == 1]
    ended = history[history["loan_id"].isin(bad) & history["status"].isin(("prepaid", "closed"))]
    first_default = loans["first_default_mob"].reindex(ended["loan_id"]).to_numpy()
    early_end = ended[~(first_default < ended["months_on_book"].to_numpy())]
    assert early_end.empty, early_end.head()


# ------------------------------------------------------------------ determinism


def test_same_seed_same_history_other_seed_differs(
    history: pd.DataFrame, apps: pd.DataFrame, truth: pd.DataFrame
) -> None:
    again = generate_performance(apps, truth, CONFIG, SEED)
    pd.testing.assert_frame_equal(history, again)
    other = generate_performance(apps, truth, CONFIG, SEED + 1)
    assert list(other.columns) == list(history.columns)
    assert not other.equals(history)
    # not only a reshuffle of the same paths: the delinquent loan-months differ
    assert set(other.loc[other["bucket"] != "current", "loan_id"]) != set(
        history.loc[history["bucket"] != "current", "loan_id"]
    )


def test_generating_the_history_leaves_the_applications_alone(
    portfolio: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    apps, truth = generate_portfolio(CONFIG, SEED)
    apps_before, truth_before = apps.copy(deep=True), truth.copy(deep=True)
    generate_performance(apps, truth, CONFIG, SEED)
    pd.testing.assert_frame_equal(apps, apps_before)
    pd.testing.assert_frame_equal(truth, truth_before)
    # and the portfolio a seed gives is the same whether or not a history was generated from it
    pd.testing.assert_frame_equal(generate_portfolio(CONFIG, SEED)[0], portfolio[0])
    pd.testing.assert_frame_equal(generate_portfolio(CONFIG, SEED)[1], portfolio[1])


# ------------------------------------------------------------------ contract


def test_columns_types_and_order(history: pd.DataFrame) -> None:
    assert list(history.columns) == [c.name for c in PERFORMANCE_COLUMNS]
    assert pd.api.types.is_datetime64_any_dtype(history["as_of_month"])
    for column in ("months_on_book", "days_past_due"):
        assert pd.api.types.is_integer_dtype(history[column])
    assert set(history["bucket"]) == set(BUCKETS)
    assert set(history["status"]) == set(LOAN_STATUSES)
    assert not history.isna().any().any()
    assert (history["as_of_month"].dt.day == 1).all()
    for column in ("scheduled_payment", "amount_paid", "outstanding_principal", "days_past_due"):
        assert (history[column] >= 0).all(), column
    # sorted by loan, then month
    key = list(zip(history["loan_id"], history["months_on_book"], strict=True))
    assert key == sorted(key)


def test_months_are_consecutive_from_the_month_after_the_application(
    history: pd.DataFrame, apps: pd.DataFrame
) -> None:
    month = _month_number(history["as_of_month"])
    same_loan = history["loan_id"].eq(history["loan_id"].shift())
    assert (month.diff()[same_loan] == 1).all()
    assert (history["months_on_book"].diff()[same_loan] == 1).all()
    first = history.loc[~same_loan]
    assert (first["months_on_book"] == 1).all()
    applied = _month_number(apps.set_index("application_id")["application_date"])
    assert (
        _month_number(first["as_of_month"]).to_numpy() == applied.reindex(first["loan_id"]).to_numpy() + 1
    ).all()


def test_history_stops_at_the_extract_month_and_at_the_loans_end(
    history: pd.DataFrame, apps: pd.DataFrame
) -> None:
    last = _last_month_number(CONFIG)
    month = _month_number(history["as_of_month"])
    assert month.max() == last
    # every application before the last month is a booked loan with a history; the last month's are not yet
    applied = _month_number(apps["application_date"])
    assert set(history["loan_id"]) == set(apps.loc[applied < last, "application_id"])
    last_rows = history.groupby("loan_id").tail(1)
    still_active = last_rows["status"] == "active"
    assert (_month_number(last_rows.loc[still_active, "as_of_month"]) == last).all()
    # a terminal status is the loan's last row, once
    terminal = history["status"].isin(TERMINAL_STATUSES)
    assert terminal.sum() == (~still_active).sum()
    assert history.index[terminal].isin(last_rows.index).all()


def test_no_month_after_the_last_application_month_with_a_short_window() -> None:
    config = SyntheticDataConfig(n_applications=500, months=24, immature_months=6)
    apps, truth = generate_portfolio(config, SEED)
    h = generate_performance(apps, truth, config, SEED)
    assert _month_number(h["as_of_month"]).max() == _last_month_number(config)


def test_bucket_follows_days_past_due_and_status(history: pd.DataFrame) -> None:
    dpd, bucket = history["days_past_due"], history["bucket"]
    bounds = {"current": (0, 0), "M1": (1, 30), "M2": (31, 60), "M3": (61, 90), "M4+": (91, 10_000)}
    for name, (low, high) in bounds.items():
        rows = bucket == name
        assert rows.any(), name
        assert dpd[rows].between(low, high).all(), name
    written_off = bucket == "written_off"
    assert (dpd[written_off] > 90).all()
    # bucket written_off exactly for the loans that ended written off or repossessed
    ended_bad = history["status"].isin(("written_off", "repossessed"))
    assert (written_off == ended_bad).all()
    assert (history["status"] == "repossessed").any()
    # written-off balances stay on the books; paid-off loans owe nothing
    assert (history.loc[written_off, "outstanding_principal"] > 0).all()
    paid_off = history["status"].isin(("prepaid", "closed"))
    assert (history.loc[paid_off, "outstanding_principal"] == 0).all()
    assert (history.loc[paid_off, "bucket"] == "current").all()


def test_bucket_rises_at_most_one_step_and_balances_never_rise(
    history: pd.DataFrame, apps: pd.DataFrame
) -> None:
    rank = history["bucket"].map({b: i for i, b in enumerate(BUCKETS)})
    same_loan = history["loan_id"].eq(history["loan_id"].shift())
    assert (rank.diff()[same_loan] <= 1).all()
    assert (rank[~same_loan] <= 1).all()
    assert (history["outstanding_principal"].diff()[same_loan] <= 0).all()
    amount = apps.set_index("application_id")["loan_amount"].reindex(history.loc[~same_loan, "loan_id"])
    assert (history.loc[~same_loan, "outstanding_principal"].to_numpy() <= amount.to_numpy()).all()


def test_scheduled_payment_by_repayment_method(history: pd.DataFrame, apps: pd.DataFrame) -> None:
    info = apps.set_index("application_id")[["repayment_method", "term_months"]]
    method = info["repayment_method"].astype(str).reindex(history["loan_id"]).to_numpy()
    term = info["term_months"].reindex(history["loan_id"]).to_numpy()
    in_term = history["months_on_book"].to_numpy() <= term
    scheduled = history["scheduled_payment"]
    assert (scheduled[in_term] > 0).all()
    assert (scheduled[~in_term] == 0).all()
    assert (~in_term).any()  # some loans run past their term in arrears
    for name in ("equal_installment", "equal_principal"):
        rows = history.loc[in_term & (method == name)]
        assert rows["loan_id"].nunique() > 50, name
        step = rows["scheduled_payment"].diff()[rows["loan_id"].eq(rows["loan_id"].shift())]
        if name == "equal_installment":
            assert (step.abs() <= 0.011).all()
        else:
            assert (step < 0).all()


def test_paths_cure_roll_back_and_default_late(history: pd.DataFrame, loans: pd.DataFrame) -> None:
    rank = history["bucket"].map({b: i for i, b in enumerate(BUCKETS)})
    previous = rank.shift()
    same_loan = history["loan_id"].eq(history["loan_id"].shift())
    cures = same_loan & previous.between(1, 3) & (rank == 0)
    roll_backs = same_loan & (previous >= 2) & (rank >= 1) & (rank < previous) & (previous <= 4)
    assert cures.sum() > 50
    assert roll_backs.sum() > 10
    assert (same_loan & (previous == 4) & (rank == 0)).any()  # a defaulted loan that cures
    # most delinquency episodes do not end in default
    delinquent = loans[loans["ever_delinquent"]]
    assert delinquent["first_default_mob"].isna().mean() > 0.5
    # later defaults: outcome 0 loans that reach M4+ after their first year, within the term
    late = loans[loans["first_default_mob"] > 12]
    assert len(late) > 5
    assert (late["outcome_12m"] == 0).all()
    assert (late["first_default_mob"] <= late["term_months"]).all()
    assert loans["max_mob"].max() > 24


def test_the_macro_cycle_raises_delinquency_in_the_downturn(apps: pd.DataFrame, truth: pd.DataFrame) -> None:
    # the same applications and truth, the history's own cycle switched off
    flat = CONFIG.model_copy(update={"macro_cycle": False})
    on = generate_performance(apps, truth, CONFIG, SEED)
    off = generate_performance(apps, truth, flat, SEED)
    first = _month_number(pd.Series([pd.Timestamp(CONFIG.start_date)])).iloc[0]
    effect = macro_effect(np.arange(CONFIG.months), CONFIG.months)
    downturn = first + np.flatnonzero(effect > 0.8 * effect.max())
    calm = first + np.flatnonzero(effect == 0)
    calm = calm[calm < downturn.min()]

    def in_months(h: pd.DataFrame, months: np.ndarray) -> pd.DataFrame:
        return h[_month_number(h["as_of_month"]).isin(months)]

    def share_of_loans_reaching_m1(h: pd.DataFrame, months: np.ndarray) -> float:
        rows = in_months(h, months)
        return float(rows["bucket"].ne("current").groupby(rows["loan_id"]).any().mean())

    def share_of_months_in_an_episode(h: pd.DataFrame, months: np.ndarray) -> float:
        return float(in_months(h, months)["bucket"].isin(EPISODE).mean())

    assert share_of_loans_reaching_m1(on, downturn) > 1.08 * share_of_loans_reaching_m1(off, downturn)
    assert share_of_months_in_an_episode(on, downturn) > 1.1 * share_of_months_in_an_episode(off, downturn)
    # before the downturn the cycle adds nothing
    assert share_of_loans_reaching_m1(on, calm) == pytest.approx(
        share_of_loans_reaching_m1(off, calm), rel=0.1
    )


# ------------------------------------------------------------------ the gate on a generated history


def _gate(
    frame: pd.DataFrame, apps: pd.DataFrame, unpassed: tuple[str, ...] = (), **kwargs: object
) -> HistoryGateResult:
    ids = apps["application_id"].astype(str)
    return check_history(
        frame,
        ids,
        passed_application_ids=ids[~ids.isin(unpassed)],
        loan_amounts=apps.set_index("application_id")["loan_amount"],
        **kwargs,  # type: ignore[arg-type]
    )


def test_gate_passes_a_generated_history_whole(history: pd.DataFrame, apps: pd.DataFrame) -> None:
    result = _gate(history, apps)
    bad = result.quarantine.get(QUARANTINE_REASONS, pd.Series(dtype=str)).value_counts().head(5)
    assert result.summary["n_quarantined"] == 0, f"quarantined: {bad.to_dict()} {result.summary['examples']}"
    assert result.quarantine.empty
    pd.testing.assert_frame_equal(result.passed, history.reset_index(drop=True))
    assert result.summary["n_loans_passed"] == history["loan_id"].nunique()
    assert result.summary["quarantine_by_reason"] == {}


def test_gate_passes_the_empty_history() -> None:
    empty = empty_history()
    assert list(empty.columns) == [c.name for c in PERFORMANCE_COLUMNS]
    result = check_history(empty, ["A1"])
    assert result.summary["n_input"] == result.summary["n_passed"] == 0
    assert result.quarantine.empty


# ------------------------------------------------------------------ the gate on broken input
#
# Each breakage takes the tagged history and the row labels of one clean loan (all current, active,
# ten months or more, sorted by month), breaks it and returns the new frame, the tags of the rows
# that must carry the reason code, and an application id to leave out of the passed ones (if any).

Breakage = Callable[[pd.DataFrame, pd.Index], tuple[pd.DataFrame, list[int], tuple[str, ...]]]


def _month_gap(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    return f.drop(index=rows[4]), [int(rows[5])], ()


def _duplicate(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    copy = f.loc[[rows[3]]].copy()
    new = int(f.index.max()) + 1
    copy.index = [new]
    copy[TAG] = new
    return (
        pd.concat([f, copy]).sort_values(["loan_id", "as_of_month"], kind="stable"),
        [int(rows[3]), new],
        (),
    )


def _bucket_skip(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], ["bucket", "days_past_due"]] = ["M3", 75]
    return f, [int(rows[4])], ()


def _first_month_m2(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[0], ["bucket", "days_past_due"]] = ["M2", 40]
    return f, [int(rows[0])], ()


def _balance_rise(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "outstanding_principal"] = f.loc[rows[3], "outstanding_principal"] + 5000.0
    return f, [int(rows[4])], ()


def _paid_too_much(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "amount_paid"] = 3 * f.loc[rows[3], "outstanding_principal"] + 1000.0
    return f, [int(rows[4])], ()


def _unknown_loan(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows, "loan_id"] = "NOT-AN-APPLICATION"
    return f, [int(r) for r in rows], ()


def _unpassed(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    return f, [int(r) for r in rows], (str(f.loc[rows[0], "loan_id"]),)


def _row_after_closed(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[5], "status"] = "closed"
    return f, [int(r) for r in rows[6:]], ()


def _dpd_mismatch(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "days_past_due"] = 45
    return f, [int(rows[4])], ()


def _dpd_text(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f["days_past_due"] = f["days_past_due"].astype(object)
    f.loc[rows[4], "days_past_due"] = "ten"
    return f, [int(rows[4])], ()


def _mob_off(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "months_on_book"] += 1
    return f, [int(rows[4])], ()


def _bad_bucket(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "bucket"] = "M9"
    return f, [int(rows[4])], ()


def _bad_status(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "status"] = "paused"
    return f, [int(rows[4])], ()


def _negative_paid(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "amount_paid"] = -5.0
    return f, [int(rows[4])], ()


def _missing_balance(f: pd.DataFrame, rows: pd.Index) -> tuple[pd.DataFrame, list[int], tuple[str, ...]]:
    f.loc[rows[4], "outstanding_principal"] = np.nan
    return f, [int(rows[4])], ()


BREAKAGES: dict[str, Breakage] = {
    "month_gap": _month_gap,
    "duplicate_loan_month": _duplicate,
    "bucket_skip": _bucket_skip,
    "bucket_skip@first": _first_month_m2,
    "balance_rise": _balance_rise,
    "paid_more_than_owed": _paid_too_much,
    "loan_not_in_applications": _unknown_loan,
    "application_quarantined": _unpassed,
    "row_after_loan_ended": _row_after_closed,
    "bucket_does_not_match_dpd": _dpd_mismatch,
    "days_past_due_not_a_number": _dpd_text,
    "months_on_book_inconsistent": _mob_off,
    "bucket_not_allowed": _bad_bucket,
    "status_not_allowed": _bad_status,
    "amount_paid_out_of_range": _negative_paid,
    "outstanding_principal_missing": _missing_balance,
}


@pytest.fixture(scope="module")
def tagged(history: pd.DataFrame) -> pd.DataFrame:
    frame = history.copy()
    frame[TAG] = np.arange(len(frame))
    return frame


@pytest.fixture(scope="module")
def clean_loans(tagged: pd.DataFrame) -> list[str]:
    by_loan = tagged.groupby("loan_id")
    clean = (by_loan["bucket"].agg(lambda b: (b == "current").all())) & (
        by_loan["status"].agg(lambda s: (s == "active").all())
    )
    long_enough = by_loan.size() >= 10
    return list(clean.index[clean & long_enough][: len(BREAKAGES)])


def _break(
    tagged: pd.DataFrame, loan_ids: list[str], names: list[str]
) -> tuple[pd.DataFrame, dict[str, set[int]], set[str], tuple[str, ...]]:
    frame = tagged.copy()
    broken: dict[str, set[int]] = {}
    unpassed: tuple[str, ...] = ()
    for loan_id, name in zip(loan_ids, names, strict=True):
        rows = frame.index[frame["loan_id"] == loan_id]
        frame, tags, left_out = BREAKAGES[name](frame, rows)
        code = name.split("@")[0]
        broken[code] = broken.get(code, set()) | set(tags)
        unpassed += left_out
    loans_hit = set(frame.loc[frame[TAG].isin(set().union(*broken.values())), "loan_id"])
    return frame, broken, loans_hit, unpassed


def _reasons(quarantine: pd.DataFrame) -> pd.Series:
    return pd.Series(
        [set(r.split(";")) for r in quarantine[QUARANTINE_REASONS]],
        index=quarantine[TAG].to_numpy(),
        dtype=object,
    )


def _assert_reconciles(result: HistoryGateResult, frame: pd.DataFrame, loans_hit: set[str]) -> None:
    s = result.summary
    assert s["n_input"] == len(frame) == s["n_passed"] + s["n_quarantined"]
    assert len(result.passed) == s["n_passed"] and len(result.quarantine) == s["n_quarantined"]
    assert s["n_loans_input"] == frame["loan_id"].nunique() == s["n_loans_passed"] + s["n_loans_quarantined"]
    assert s["n_loans_quarantined"] == len(loans_hit)
    passed_tags, held_tags = set(result.passed[TAG]), set(result.quarantine[TAG])
    assert not passed_tags & held_tags
    assert passed_tags | held_tags == set(frame[TAG])
    # whole loans: every row of a hit loan held, no row of another loan held
    assert set(result.quarantine["loan_id"]) == loans_hit
    assert held_tags == set(frame.loc[frame["loan_id"].isin(loans_hit), TAG])
    assert not set(result.passed["loan_id"]) & loans_hit
    assert s["rows_held_with_their_loan"] == int(
        (result.quarantine[QUARANTINE_REASONS] == LOAN_QUARANTINED).sum()
    )


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_gate_flags_exactly_the_broken_rows(
    name: str, tagged: pd.DataFrame, clean_loans: list[str], apps: pd.DataFrame
) -> None:
    code = name.split("@")[0]
    frame, broken, loans_hit, unpassed = _break(tagged, clean_loans[:1], [name])
    result = _gate(frame, apps, unpassed)
    reasons = _reasons(result.quarantine)
    flagged = {int(tag) for tag, codes in reasons.items() if code in codes}
    assert flagged == broken[code]
    for tag, codes in reasons.items():
        assert codes == ({code} if tag in broken[code] else {LOAN_QUARANTINED}), (tag, codes)
    assert result.summary["quarantine_by_reason"] == {code: len(broken[code])}
    assert result.summary["examples"][code]
    _assert_reconciles(result, frame, loans_hit)


def test_gate_with_every_breakage_at_once_reconciles(
    tagged: pd.DataFrame, clean_loans: list[str], apps: pd.DataFrame
) -> None:
    names = list(BREAKAGES)
    assert len(clean_loans) == len(BREAKAGES)
    frame, broken, loans_hit, unpassed = _break(tagged, clean_loans[: len(names)], names)
    assert len(loans_hit) == len(names)
    result = _gate(frame, apps, unpassed)
    reasons = _reasons(result.quarantine)
    for code, tags in broken.items():
        assert {int(tag) for tag, codes in reasons.items() if code in codes} == tags, code
    all_broken = set().union(*broken.values())
    assert all(codes == {LOAN_QUARANTINED} for tag, codes in reasons.items() if tag not in all_broken)
    assert result.summary["quarantine_by_reason"] == {code: len(tags) for code, tags in broken.items()}
    _assert_reconciles(result, frame, loans_hit)
    # every code used is a documented rule
    templates = [t.split(":")[0] for t in RULES.values()]
    for code in broken:
        assert any(
            code == t or (t.startswith("{column}") and code.endswith(t[len("{column}") :])) for t in templates
        )


def test_gate_checks_the_first_opening_balance_against_the_loan_amount(
    tagged: pd.DataFrame, clean_loans: list[str], apps: pd.DataFrame
) -> None:
    frame = tagged.copy()
    loan_id = clean_loans[0]
    first = frame.index[frame["loan_id"] == loan_id][0]
    amount = float(apps.set_index("application_id").loc[loan_id, "loan_amount"])
    frame.loc[first, "amount_paid"] = amount * 1.5
    result = _gate(frame, apps)
    assert result.summary["quarantine_by_reason"] == {"paid_more_than_owed": 1}
    # without loan amounts the first month has no opening balance to compare with
    unchecked = check_history(frame, apps["application_id"].astype(str))
    assert unchecked.summary["n_quarantined"] == 0


# ------------------------------------------------------------------ unusable input stops the stage


@pytest.mark.parametrize("column", [c.name for c in PERFORMANCE_COLUMNS])
def test_missing_column_is_an_input_error_naming_it(
    column: str, history: pd.DataFrame, apps: pd.DataFrame
) -> None:
    with pytest.raises(HistoryInputError, match=column):
        check_history(history.head(200).drop(columns=column), apps["application_id"])


def test_too_many_bad_rows_is_an_input_error(tagged: pd.DataFrame, apps: pd.DataFrame) -> None:
    frame = tagged.head(5000).copy()
    loan_ids = frame["loan_id"].unique()
    bad_loans = loan_ids[: len(loan_ids) // 4]
    bad = frame["loan_id"].isin(bad_loans)
    frame.loc[bad, "amount_paid"] = -1.0
    share = bad.sum() / len(frame)
    assert 0.1 < share < 0.5
    with pytest.raises(HistoryInputError) as raised:
        _gate(frame, apps)
    message = str(raised.value)
    assert f"{share:.1%}" in message
    assert "amount_paid_out_of_range" in message
    assert "10%" in message
    # a looser limit lets the same file through, its bad loans held back
    result = _gate(frame, apps, config=HistoryGateConfig(max_quarantine_share=0.5))
    assert result.summary["n_quarantined"] == int(bad.sum())
    assert result.summary["quarantine_by_reason"] == {"amount_paid_out_of_range": int(bad.sum())}
    # exactly at the limit still passes
    at_limit = _gate(frame, apps, config=HistoryGateConfig(max_quarantine_share=float(share)))
    assert at_limit.summary["n_quarantined"] == int(bad.sum())
