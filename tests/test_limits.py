"""Suggested limits, payment inverse, pricing, portfolio and swap-set views: hand cases and properties."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scoring.core.finance import annuity_payment, equal_principal_first_payment, monthly_payment
from scoring.decision.limits import (
    LIMIT_COLUMNS,
    LimitSettings,
    limit_values,
    max_principal_for_payment,
    portfolio_view,
    rate_table,
    suggested_limits,
    swap_set,
)

# one grade: DTI 40%, LTV 80%, at most 500,000, rounded down to 1,000
ONE_GRADE = LimitSettings(dti_cap=(0.4,), ltv_cap=(0.8,), amount_cap=(500_000,), rounding_unit=1_000)

# income 10,000, debt 1,000, DTI cap 0.4: payment capacity 3,000; at 6% over 60 months the annuity
# inverse gives 3,000 * (1 - 1.005^-60) / 0.005 = 155,176.68, and 3,000 / (1/60 + 0.005) = 138,461.54
ANNUITY_MAX = 155_176.6822533929
EQUAL_PRINCIPAL_MAX = 138_461.53846153847


def applicant(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "monthly_income": 10_000.0,
        "existing_monthly_debt": 1_000.0,
        "vehicle_price": 300_000.0,
        "annual_rate": 0.06,
        "term_months": 60,
        "repayment_method": "equal_installment",
    }
    row.update(overrides)
    return row


def limits_for(
    *rows: dict[str, Any],
    limit_settings: LimitSettings = ONE_GRADE,
    pd_values: list[float] | None = None,
    grades: list[int] | None = None,
    decisions: list[str] | None = None,
    market_ltv: float | list[float] = 0.8,
    grade_pd: list[float] | None = None,
) -> pd.DataFrame:
    n = len(rows)
    return suggested_limits(
        pd.DataFrame(list(rows)),
        pd_values if pd_values is not None else [0.02] * n,
        grades if grades is not None else [1] * n,
        decisions if decisions is not None else ["approve"] * n,
        limit_settings,
        market_ltv,
        grade_pd=grade_pd,
    )


# --------------------------------------------------------------------------- hand cases


def test_dti_bound_annuity_case_computed_by_hand() -> None:
    out = limits_for(applicant())
    assert list(out.columns) == list(LIMIT_COLUMNS)
    row = out.iloc[0]
    assert row["max_by_dti"] == pytest.approx(ANNUITY_MAX, rel=1e-12)
    assert row["suggested_limit"] == 155_000.0  # rounded down, not to the nearest
    assert row["binding_constraint"] == "dti"
    assert row["payment_at_limit"] == pytest.approx(float(annuity_payment(155_000, 0.06, 60)))
    assert row["payment_at_limit"] <= 3_000.0
    assert row["max_by_ltv"] == pytest.approx(240_000.0)
    assert row["max_by_grade_cap"] == 500_000.0


def test_dti_bound_equal_principal_case_computed_by_hand() -> None:
    row = limits_for(applicant(repayment_method="equal_principal")).iloc[0]
    assert row["max_by_dti"] == pytest.approx(EQUAL_PRINCIPAL_MAX, rel=1e-12)
    assert row["suggested_limit"] == 138_000.0
    assert row["payment_at_limit"] == pytest.approx(138_000 / 60 + 138_000 * 0.005)


@pytest.mark.parametrize(
    ("unit", "expected"), [(5_000.0, 155_000.0), (100.0, 155_100.0), (1.0, 155_176.0), (0.01, 155_176.68)]
)
def test_limit_is_rounded_down_to_the_unit(unit: float, expected: float) -> None:
    limit_settings = ONE_GRADE.model_copy(update={"rounding_unit": unit})
    assert limits_for(applicant(), limit_settings=limit_settings).iloc[0]["suggested_limit"] == pytest.approx(
        expected, abs=1e-6
    )


def test_ltv_bound_case() -> None:
    row = limits_for(applicant(vehicle_price=150_000.0)).iloc[0]
    assert (row["suggested_limit"], row["binding_constraint"]) == (120_000.0, "ltv")


def test_used_car_gets_the_market_cap_of_70_percent() -> None:
    # the grade allows 80%, the market 70% for a used car: the lower applies
    row = limits_for(applicant(vehicle_price=150_000.0), market_ltv=0.7).iloc[0]
    assert (row["suggested_limit"], row["binding_constraint"]) == (105_000.0, "ltv")


def test_market_cap_binds_only_when_below_the_grade_cap() -> None:
    # market 85% (private new-energy) but the grade allows 80%
    row = limits_for(applicant(vehicle_price=150_000.0), market_ltv=0.85).iloc[0]
    assert row["suggested_limit"] == 120_000.0


def test_a_cap_that_is_whole_in_decimal_is_not_cut_by_binary_rounding() -> None:
    assert 0.7 * 90_000 < 63_000  # 62999.99999999999 in binary
    row = limits_for(applicant(vehicle_price=90_000.0), market_ltv=0.7).iloc[0]
    assert row["suggested_limit"] == 63_000.0


def test_grade_cap_bound_case() -> None:
    capped = ONE_GRADE.model_copy(update={"amount_cap": (100_000.0,)})
    row = limits_for(applicant(), limit_settings=capped).iloc[0]
    assert (row["suggested_limit"], row["binding_constraint"]) == (100_000.0, "grade_cap")


def test_declined_gets_zero_and_no_rate_referred_gets_a_limit() -> None:
    out = limits_for(applicant(), applicant(), decisions=["decline", "refer"])
    assert out["suggested_limit"].tolist() == [0.0, 155_000.0]
    assert out["binding_constraint"].tolist() == ["declined", "dti"]
    assert out["expected_loss"].iloc[0] == 0.0
    assert out["payment_at_limit"].iloc[0] == 0.0
    assert np.isnan(out["suggested_rate"].iloc[0])
    assert np.isfinite(out["suggested_rate"].iloc[1])


def test_decisions_can_be_the_frame_from_decide() -> None:
    decided = pd.DataFrame({"decision": ["decline"], "policy_reasons": ["KO_AGE_MIN"]})
    out = suggested_limits(pd.DataFrame([applicant()]), [0.02], [1], decided, ONE_GRADE, 0.8)
    assert out["binding_constraint"].tolist() == ["declined"]


def test_debt_beyond_the_dti_cap_leaves_no_capacity() -> None:
    out = limits_for(applicant(existing_monthly_debt=4_000.0), applicant(existing_monthly_debt=5_000.0))
    assert out["suggested_limit"].tolist() == [0.0, 0.0]
    assert out["binding_constraint"].tolist() == ["no_capacity", "no_capacity"]
    assert out["payment_at_limit"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "overrides",
    [
        {"monthly_income": np.nan},
        {"existing_monthly_debt": None},
        {"annual_rate": np.nan},
        {"term_months": 0},
        {"repayment_method": None},
        {"repayment_method": "balloon"},  # a level outside the contract counts as missing here
        {"vehicle_price": 0.0},
    ],
)
def test_unusable_inputs_give_zero_with_missing_data(overrides: dict[str, Any]) -> None:
    out = limits_for(applicant(**overrides), applicant())
    assert out["suggested_limit"].tolist() == [0.0, 155_000.0]
    assert out["binding_constraint"].tolist() == ["missing_data", "dti"]


def test_expected_loss_is_pd_times_lgd_times_limit() -> None:
    out = limits_for(applicant(), applicant(vehicle_price=150_000.0), pd_values=[0.02, 0.10])
    assert out["expected_loss"].tolist() == pytest.approx([0.02 * 0.45 * 155_000, 0.10 * 0.45 * 120_000])


def test_suggested_rate_uses_row_pd_or_the_grade_central_pd() -> None:
    two_grades = LimitSettings(dti_cap=(0.4, 0.4), ltv_cap=(0.8, 0.8), amount_cap=(500_000, 500_000))
    rows = (applicant(), applicant(), applicant())
    by_row = limits_for(*rows, limit_settings=two_grades, pd_values=[0.01, 0.03, 0.05], grades=[1, 2, 2])
    # funding 3% + pd * 45% + margin 2%
    assert by_row["suggested_rate"].tolist() == pytest.approx([0.0545, 0.0635, 0.0725])
    by_grade = limits_for(
        *rows,
        limit_settings=two_grades,
        pd_values=[0.01, 0.03, 0.05],
        grades=[1, 2, 2],
        grade_pd=[0.01, 0.04],
    )
    assert by_grade["suggested_rate"].tolist() == pytest.approx([0.0545, 0.068, 0.068])
    # expected loss stays on the row's own PD
    assert by_grade["expected_loss"].tolist() == pytest.approx(by_row["expected_loss"].tolist())


def test_rate_table_per_grade() -> None:
    table = rate_table(LimitSettings(), [0.002, 0.004, 0.007, 0.012, 0.02, 0.035, 0.06, 0.1, 0.18, 0.35])
    assert table["grade"].tolist() == list(range(1, 11))
    assert table["suggested_rate"].iloc[-1] == pytest.approx(0.03 + 0.35 * 0.45 + 0.02)
    assert table["expected_loss_rate"].is_monotonic_increasing


def test_index_is_kept() -> None:
    rows = pd.DataFrame([applicant(), applicant()], index=["x", "y"])
    out = suggested_limits(rows, [0.02, 0.02], [1, 1], ["approve", "approve"], ONE_GRADE, [0.8, 0.7])
    assert out.index.tolist() == ["x", "y"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grades": [2]}, "grades"),  # ONE_GRADE has one grade
        ({"pd_values": [1.5]}, "pd"),
        ({"pd_values": [np.nan]}, "pd"),
        ({"decisions": ["maybe"]}, "maybe"),
        ({"grade_pd": [0.01, 0.02]}, "grade_pd"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        limits_for(applicant(), **kwargs)


def test_missing_column_is_named() -> None:
    with pytest.raises(ValueError, match="existing_monthly_debt"):
        suggested_limits(
            pd.DataFrame([applicant()]).drop(columns="existing_monthly_debt"),
            [0.02],
            [1],
            ["approve"],
            ONE_GRADE,
            0.8,
        )


# --------------------------------------------------------------------------- payment inverse


def test_inverse_hand_cases_and_zero_rate() -> None:
    out = max_principal_for_payment(
        [3_000.0, 3_000.0, 500.0, 500.0],
        [0.06, 0.06, 0.0, 0.0],
        60,
        [
            "equal_installment",
            "equal_principal",
            "equal_installment",
            "equal_principal",
        ],
    )
    assert out == pytest.approx([ANNUITY_MAX, EQUAL_PRINCIPAL_MAX, 30_000.0, 30_000.0], rel=1e-12)


def test_inverse_scalar_and_missing_and_unknown_methods() -> None:
    assert float(max_principal_for_payment(3_000.0, 0.06, 60, "equal_installment")) == pytest.approx(
        ANNUITY_MAX
    )
    out = max_principal_for_payment([3_000.0, 3_000.0], 0.06, 60, ["equal_principal", None])
    assert out[0] == pytest.approx(EQUAL_PRINCIPAL_MAX)
    assert np.isnan(out[1])
    with pytest.raises(ValueError, match="balloon"):
        max_principal_for_payment(3_000.0, 0.06, 60, "balloon")


# --------------------------------------------------------------------------- settings


def test_default_settings_are_ten_grades_json_serialisable_and_strict() -> None:
    defaults = LimitSettings()
    assert defaults.n_grades == 10
    dumped = json.loads(json.dumps(defaults.model_dump()))
    assert LimitSettings.model_validate(dumped) == defaults
    with pytest.raises(ValidationError, match="lgdd"):
        LimitSettings.model_validate({"lgdd": 0.4})


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"dti_cap": [0.4, 0.45], "ltv_cap": [0.8, 0.8], "amount_cap": [1e5, 1e5]}, "dti_cap: grade 2"),
        ({"dti_cap": [0.4, 0.4], "ltv_cap": [0.8, 0.8], "amount_cap": [1e5, 2e5]}, "amount_cap: grade 2"),
        ({"dti_cap": [0.4], "ltv_cap": [0.8, 0.8], "amount_cap": [1e5, 1e5]}, "one entry per grade"),
        ({"dti_cap": [1.4], "ltv_cap": [0.8], "amount_cap": [1e5]}, "dti_cap"),
        ({"rounding_unit": 0}, "rounding_unit"),
    ],
)
def test_inconsistent_limit_settings_are_refused(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        LimitSettings.model_validate(values)


# --------------------------------------------------------------------------- portfolio view and swap set


def test_portfolio_view_hand_example() -> None:
    decisions = pd.DataFrame(
        {
            "decision": ["approve", "approve", "refer", "decline", "approve"],
            "policy_reasons": ["", "", "GRADE_REFER", "KO_AGE_MIN;KO_LTV_MAX", ""],
        }
    )
    limits = pd.DataFrame(
        {
            "suggested_limit": [100_000.0, 50_000.0, 20_000.0, 0.0, 30_000.0],
            "expected_loss": [10.0, 20.0, 5.0, 0.0, 7.0],
        }
    )
    view = portfolio_view(decisions, limits, [1, 1, 2, 3, 2], y=[0, 1, 0, 1, None])
    json.dumps(view, allow_nan=False)
    assert view["n"] == 5
    assert view["approval_rate"] == pytest.approx(0.6)
    assert view["refer_rate"] == pytest.approx(0.2)
    assert view["bad_rate_approved"] == pytest.approx(0.5)  # 1 bad of 2 labelled approved rows
    assert view["approved_outcomes"] == {"count": 3, "labelled": 2, "bads": 1, "bad_rate": 0.5}
    assert view["exposure"] == {"approved": 180_000.0, "referred": 20_000.0}
    assert view["expected_loss"] == {"approved": 37.0, "referred": 5.0}
    assert view["reason_counts"] == {"GRADE_REFER": 1, "KO_AGE_MIN": 1, "KO_LTV_MAX": 1}
    grade1, grade2, grade3 = view["by_grade"]
    assert grade1 == {
        "grade": 1,
        "count": 2,
        "approved": 2,
        "referred": 0,
        "declined": 0,
        "limit_mean": 75_000.0,
        "limit_median": 75_000.0,
        "limit_p90": 95_000.0,
    }
    assert (grade2["count"], grade2["approved"], grade2["referred"], grade2["limit_mean"]) == (
        2,
        1,
        1,
        25_000.0,
    )
    assert (grade3["declined"], grade3["limit_mean"]) == (1, None)  # no offered limit in grade 3


def test_portfolio_view_without_outcomes_has_no_bad_rate() -> None:
    limits = pd.DataFrame({"suggested_limit": [1.0], "expected_loss": [0.0]})
    assert "bad_rate_approved" not in portfolio_view(["approve"], limits, [1])


def test_swap_set_hand_example() -> None:
    pd_a = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]  # A approves rows 0, 1, 2
    pd_b = [0.01, 0.05, 0.02, 0.03, 0.06, 0.04]  # B approves rows 0, 2, 3
    y = [0, 1, 0, 0, 1, np.nan]
    out = swap_set(pd_a, pd_b, y, approval_rate=0.5)
    json.dumps(out, allow_nan=False)
    assert out["n_approved"] == 3
    assert out["both_approve"] == {"count": 2, "labelled": 2, "bads": 0, "bad_rate": 0.0}
    assert out["only_a"] == {"count": 1, "labelled": 1, "bads": 1, "bad_rate": 1.0}  # A's swap-in is bad
    assert out["only_b"] == {"count": 1, "labelled": 1, "bads": 0, "bad_rate": 0.0}
    assert out["both_decline"] == {"count": 2, "labelled": 1, "bads": 1, "bad_rate": 1.0}
    assert out["a_approves"]["bad_rate"] == pytest.approx(1 / 3)
    assert out["b_approves"]["bad_rate"] == 0.0


def test_swap_set_breaks_pd_ties_by_row_order() -> None:
    out = swap_set([0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1], [0, 0, 1, 1], approval_rate=0.5)
    assert out["both_approve"]["count"] == 2
    assert out["both_approve"]["bads"] == 0


def test_swap_set_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="approval_rate"):
        swap_set([0.1], [0.1], [0], approval_rate=1.5)
    with pytest.raises(ValueError, match="pd_b"):
        swap_set([0.1, 0.2], [0.1], [0, 1], approval_rate=0.5)
    with pytest.raises(ValueError, match="y"):
        swap_set([0.1], [0.1], [2], approval_rate=0.5)


@settings(max_examples=200, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.sampled_from([0.0, 1.0, np.nan])),
        min_size=1,
        max_size=40,
    ),
    approval_rate=st.floats(0, 1),
)
def test_swap_set_cells_add_up(data: list[tuple[float, float, float]], approval_rate: float) -> None:
    pd_a, pd_b, y = (list(column) for column in zip(*data, strict=True))
    out = swap_set(pd_a, pd_b, y, approval_rate)
    cells = [out[k] for k in ("both_approve", "only_a", "only_b", "both_decline")]
    assert sum(c["count"] for c in cells) == len(data)
    assert sum(c["labelled"] for c in cells) == sum(not np.isnan(v) for v in y)
    assert sum(c["bads"] for c in cells) == sum(v == 1.0 for v in y)
    assert out["both_approve"]["count"] + out["only_a"]["count"] == out["n_approved"]
    assert out["both_approve"]["count"] + out["only_b"]["count"] == out["n_approved"]
    assert out["only_a"]["count"] == out["only_b"]["count"]
    # A approves the n_approved lowest PDs: nothing A declines has a lower PD than what it approves
    a = np.asarray(pd_a)
    order = np.argsort(a, kind="stable")
    k = out["n_approved"]
    if 0 < k < len(a):
        assert a[order[:k]].max() <= a[order[k:]].min()


# --------------------------------------------------------------------------- properties

_applicant = st.fixed_dictionaries(
    {
        "monthly_income": st.floats(1_000, 200_000),
        "existing_monthly_debt": st.one_of(st.just(0.0), st.floats(0, 60_000)),
        "vehicle_price": st.floats(20_000, 3_000_000),
        "annual_rate": st.one_of(st.just(0.0), st.floats(1e-4, 0.3)),
        "term_months": st.integers(1, 84),
        "repayment_method": st.sampled_from(["equal_installment", "equal_principal"]),
    }
)
_market = st.sampled_from([0.70, 0.75, 0.80, 0.85])


@st.composite
def _limit_settings(draw: st.DrawFn) -> LimitSettings:
    """Random valid tables: 1..10 grades, each cap non-increasing in the grade."""
    k = draw(st.integers(1, 10))

    def table(low: float, high: float) -> tuple[float, ...]:
        values = draw(st.lists(st.floats(low, high), min_size=k, max_size=k))
        return tuple(sorted(values, reverse=True))

    return LimitSettings(
        dti_cap=table(0.05, 1.0),
        ltv_cap=table(0.05, 1.0),
        amount_cap=table(0.0, 3_000_000.0),
        rounding_unit=draw(st.sampled_from([0.01, 1.0, 100.0, 1_000.0, 5_000.0])),
    )


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def _capacity(rows: pd.DataFrame, caps: np.ndarray) -> np.ndarray:
    return np.asarray(caps * rows["monthly_income"] - rows["existing_monthly_debt"], dtype=np.float64)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_applicant, min_size=1, max_size=10), data=st.data(), limit_settings=_limit_settings())
def test_limit_respects_every_cap_and_is_the_largest_such_multiple(
    rows: list[dict[str, Any]], data: st.DataObject, limit_settings: LimitSettings
) -> None:
    n = len(rows)
    grades = data.draw(st.lists(st.integers(1, limit_settings.n_grades), min_size=n, max_size=n))
    market = np.asarray(data.draw(st.lists(_market, min_size=n, max_size=n)))
    frame = _frame(rows)
    out = suggested_limits(frame, [0.05] * n, grades, ["approve"] * n, limit_settings, market)
    limit = out["suggested_limit"].to_numpy()
    index = np.asarray(grades) - 1
    unit = limit_settings.rounding_unit
    slack = 1e-9 * unit + 1e-9 * limit  # the documented rounding slack, plus float noise

    ltv_cap = (
        np.minimum(np.asarray(limit_settings.ltv_cap)[index], market) * frame["vehicle_price"].to_numpy()
    )
    grade_cap = np.asarray(limit_settings.amount_cap)[index]
    capacity = _capacity(frame, np.asarray(limit_settings.dti_cap)[index])
    assert (limit >= 0).all()
    assert (limit <= ltv_cap + slack).all()
    assert (limit <= grade_cap + slack).all()
    multiples = limit / unit
    assert np.allclose(multiples, np.round(multiples), rtol=0, atol=1e-6)

    has_limit = limit > 0
    payment = out["payment_at_limit"].to_numpy()
    # within the rounding slack: at most 1e-9 of a unit of principal, at most 2x that in payment
    assert (payment[has_limit] <= capacity[has_limit] * (1 + 1e-9) + 2e-9 * unit).all()
    assert (payment[~has_limit] == 0).all()
    assert out.loc[capacity <= 0, "binding_constraint"].eq("no_capacity").all()

    # the largest: one more unit would break the binding bound
    tightest = out[["max_by_dti", "max_by_ltv", "max_by_grade_cap"]].min(axis=1).to_numpy()
    fine = capacity > 0
    assert (limit[fine] + unit > tightest[fine] * (1 - 1e-12)).all()
    binding_bound = out.loc[fine, "binding_constraint"].map(
        {"dti": "max_by_dti", "ltv": "max_by_ltv", "grade_cap": "max_by_grade_cap"}
    )
    for position, column in zip(np.flatnonzero(fine), binding_bound, strict=True):
        assert out.iloc[position][column] == pytest.approx(tightest[position], rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(_applicant, min_size=1, max_size=10),
    pds=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    limit_settings=_limit_settings(),
)
def test_a_higher_pd_never_gets_a_higher_limit(
    rows: list[dict[str, Any]], pds: tuple[float, float], limit_settings: LimitSettings
) -> None:
    # the limit depends on PD through the grade; a stand-in master scale, monotone like the real one
    k = limit_settings.n_grades
    boundaries = np.linspace(0, 1, k + 1)[1:-1]
    low, high = sorted(pds)
    n = len(rows)
    frame = _frame(rows)

    def limits_at(p: float) -> np.ndarray:
        grade = int(np.searchsorted(boundaries, p, side="right")) + 1
        out = suggested_limits(frame, [p] * n, [grade] * n, ["approve"] * n, limit_settings, 0.8)
        return out["suggested_limit"].to_numpy()

    assert (limits_at(high) <= limits_at(low)).all()


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(_applicant, min_size=1, max_size=10),
    raise_by=st.floats(0, 100_000),
    limit_settings=_limit_settings(),
    data=st.data(),
)
def test_a_higher_income_never_lowers_the_limit(
    rows: list[dict[str, Any]], raise_by: float, limit_settings: LimitSettings, data: st.DataObject
) -> None:
    n = len(rows)
    grades = data.draw(st.lists(st.integers(1, limit_settings.n_grades), min_size=n, max_size=n))
    before = _frame(rows)
    after = before.assign(monthly_income=before["monthly_income"] + raise_by)
    args = ([0.05] * n, grades, ["approve"] * n, limit_settings, 0.8)
    low = suggested_limits(before, *args)["suggested_limit"].to_numpy()
    high = suggested_limits(after, *args)["suggested_limit"].to_numpy()
    assert (high >= low).all()


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_applicant, min_size=1, max_size=10), limit_settings=_limit_settings())
def test_equal_principal_limit_never_exceeds_the_annuity_limit(
    rows: list[dict[str, Any]], limit_settings: LimitSettings
) -> None:
    frame = _frame(rows)
    n = len(rows)
    args = ([0.05] * n, [limit_settings.n_grades] * n, ["approve"] * n, limit_settings, 0.8)
    annuity = suggested_limits(frame.assign(repayment_method="equal_installment"), *args)
    principal = suggested_limits(frame.assign(repayment_method="equal_principal"), *args)
    assert (principal["suggested_limit"] <= annuity["suggested_limit"]).all()
    assert (principal["max_by_dti"] <= annuity["max_by_dti"] * (1 + 1e-12)).all()


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(_applicant, min_size=1, max_size=10))
def test_payment_at_limit_matches_the_closed_forms(rows: list[dict[str, Any]]) -> None:
    frame = _frame(rows)
    n = len(rows)
    out = suggested_limits(frame, [0.05] * n, [1] * n, ["approve"] * n, LimitSettings(), 0.85)
    for row, limit, payment in zip(rows, out["suggested_limit"], out["payment_at_limit"], strict=True):
        r, term = row["annual_rate"] / 12, row["term_months"]
        if limit == 0:
            expected = 0.0
        elif row["repayment_method"] == "equal_principal":
            expected = limit / term + limit * r
        elif r == 0:
            expected = limit / term
        else:
            expected = limit * r / (1 - (1 + r) ** -term)
        assert payment == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    principal=st.floats(0, 1e7),
    annual_rate=st.one_of(st.just(0.0), st.floats(1e-6, 0.5)),
    term=st.integers(1, 120),
    method=st.sampled_from(["equal_installment", "equal_principal"]),
)
def test_max_principal_inverts_monthly_payment(
    principal: float, annual_rate: float, term: int, method: str
) -> None:
    payment = monthly_payment(principal, annual_rate, term, np.array(method, dtype=object))
    back = float(max_principal_for_payment(payment, annual_rate, term, method))
    assert back == pytest.approx(principal, rel=1e-9, abs=1e-6)
    # and the inverse of each closed form separately
    if method == "equal_principal":
        assert float(equal_principal_first_payment(back, annual_rate, term)) == pytest.approx(
            float(payment), rel=1e-9
        )
    else:
        assert float(annuity_payment(back, annual_rate, term)) == pytest.approx(float(payment), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    payment=st.floats(1, 1e6),
    annual_rate=st.floats(0, 0.5),
    term=st.integers(1, 120),
)
def test_first_equal_principal_payment_is_never_below_the_annuity(
    payment: float, annual_rate: float, term: int
) -> None:
    principal = max_principal_for_payment(
        [payment, payment], annual_rate, term, ["equal_principal", "equal_installment"]
    )
    assert principal[0] <= principal[1] * (1 + 1e-12)


# --------------------------------------------------------------------------- arrays by column


def test_limit_values_from_arrays_and_decision_codes_equal_the_frame() -> None:
    rows = [
        applicant(),
        applicant(repayment_method="equal_principal", annual_rate=0.0),
        applicant(monthly_income=np.nan),
        applicant(existing_monthly_debt=9_000.0),
        applicant(repayment_method=None),
        applicant(vehicle_price=50_000.0),
    ]
    settings = LimitSettings()
    grades, decisions = [1, 3, 5, 2, 10, 4], ["approve", "refer", "approve", "approve", "decline", "refer"]
    pds, market = [0.01, 0.03, 0.05, 0.02, 0.4, 0.04], [0.8, 0.7, 0.8, 0.85, 0.8, 0.7]
    expected = limits_for(
        *rows, limit_settings=settings, pd_values=pds, grades=grades, decisions=decisions, market_ltv=market
    )
    table = pd.DataFrame(rows)
    arrays = {
        name: table[name].to_numpy(dtype=object if name == "repayment_method" else np.float64)
        for name in table.columns
    }
    codes = np.array([["approve", "refer", "decline"].index(d) for d in decisions], dtype=np.int64)
    values = limit_values(arrays, pds, grades, codes, settings, market, coded=True)
    assert list(values) == list(LIMIT_COLUMNS)
    for column in LIMIT_COLUMNS:
        np.testing.assert_array_equal(values[column], expected[column].to_numpy(), err_msg=column)
    assert values["binding_constraint"].dtype == object
