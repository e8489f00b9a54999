"""Credit policy: each knock-out code on its own case, market LTV caps, missing values, grade cut-offs."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from scoring.decision.policy import (
    GRADE_DECLINE,
    GRADE_REFER,
    KNOCK_OUT_CODES,
    DecisionSettings,
    KnockOutSettings,
    MarketLtvCaps,
    PolicySettings,
    decide,
    decision_values,
    knock_out_codes,
    knock_out_reasons,
    level_codes,
    max_ltv_for,
)

DEFAULTS = PolicySettings()


def applicant(**overrides: Any) -> dict[str, Any]:
    """An applicant who passes every default knock-out rule (new private conventional car at 80%)."""
    row: dict[str, Any] = {
        "age": 35,
        "employment_type": "salaried",
        "income_verified": True,
        "monthly_income": 10_000.0,
        "existing_monthly_debt": 1_000.0,
        "vehicle_price": 100_000.0,
        "vehicle_condition": "new",
        "vehicle_segment": "economy",
        "vehicle_use": "private",
        "down_payment": 20_000.0,
        "loan_amount": 81_000.0,  # 1% financed fees: the default rule looks at price - down payment
        "term_months": 60,
        "annual_rate": 0.06,
        "repayment_method": "equal_installment",
        "delinquencies_24m": 0,
        "max_dpd_24m": 0,
        "bureau_score": 700,
    }
    row.update(overrides)
    return row


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def reasons(settings: PolicySettings | KnockOutSettings = DEFAULTS, **overrides: Any) -> str:
    return str(knock_out_reasons(frame(applicant(**overrides)), settings).iloc[0])


# --------------------------------------------------------------------------- knock-outs


def test_clean_applicant_has_no_knock_out() -> None:
    assert reasons() == ""


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"age": 17}, "KO_AGE_MIN"),
        ({"age": 66, "term_months": 12}, "KO_AGE_MAX"),
        ({"age": 66, "term_months": 60}, "KO_AGE_MAX;KO_AGE_MATURITY"),
        ({"monthly_income": 2_999.0}, "KO_INCOME_MIN"),
        ({"employment_type": "self_employed", "income_verified": False}, "KO_INCOME_PROOF"),
        ({"down_payment": 19_900.0}, "KO_LTV_MAX"),  # 80.1% of the price on a private conventional car
        ({"vehicle_condition": "used", "term_months": 36, "down_payment": 29_000.0}, "KO_LTV_MAX"),
        ({"vehicle_condition": "used", "term_months": 48, "down_payment": 30_000.0}, "KO_TERM_MAX"),
        ({"term_months": 72}, "KO_TERM_MAX"),
        ({"max_dpd_24m": 90, "delinquencies_24m": 1}, "KO_DPD_SEVERE"),
        ({"delinquencies_24m": 4, "max_dpd_24m": 30}, "KO_DELINQ_COUNT"),
        (
            {"age": 17, "monthly_income": 1_000.0, "max_dpd_24m": 120},
            "KO_AGE_MIN;KO_INCOME_MIN;KO_DPD_SEVERE",
        ),
    ],
)
def test_each_knock_out_fires_on_its_case(overrides: dict[str, Any], expected: str) -> None:
    assert reasons(**overrides) == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {"age": 18},
        {"age": 65, "term_months": 60},  # 70 at maturity: the limit itself
        {"monthly_income": 3_000.0},
        {"employment_type": "self_employed", "income_verified": True},
        {"employment_type": "salaried", "income_verified": False},  # proof is asked of the self-employed only
        {"down_payment": 20_000.0, "loan_amount": 82_000.0},  # fees are not part of the market's loan share
        {"vehicle_condition": "used", "term_months": 36, "down_payment": 30_000.0},
        {"vehicle_segment": "electric", "down_payment": 15_000.0},  # private new-energy: 85%
        {"max_dpd_24m": 60, "delinquencies_24m": 3},
    ],
)
def test_knock_outs_stay_silent_at_their_boundaries(overrides: dict[str, Any]) -> None:
    assert reasons(**overrides) == ""


def test_age_at_maturity_fires_alone_when_the_application_age_passes() -> None:
    ko = KnockOutSettings(max_age_at_application=65, max_age_at_maturity=68)
    assert reasons(ko, age=64, term_months=60) == "KO_AGE_MATURITY"  # 69 at maturity
    assert reasons(ko, age=64, term_months=48) == ""  # 68


def test_commercial_new_energy_cap_is_lower_than_private() -> None:
    electric = {"vehicle_segment": "electric", "down_payment": 15_000.0}
    assert reasons(**electric) == ""
    assert reasons(**electric, vehicle_use="commercial") == "KO_LTV_MAX"  # 85% > 75%


def test_ltv_on_loan_amount_counts_the_fees() -> None:
    ko = KnockOutSettings(ltv_basis="loan_amount")
    assert reasons(ko, loan_amount=81_000.0) == "KO_LTV_MAX"
    assert reasons(ko, loan_amount=80_000.0) == ""


def test_self_employed_with_unknown_proof_counts_as_unverified() -> None:
    rows = frame(
        applicant(employment_type="self_employed"),
        applicant(employment_type="self_employed"),
        applicant(employment_type="self_employed"),
    )
    rows["income_verified"] = pd.array([True, pd.NA, False], dtype="boolean")
    assert knock_out_reasons(rows, DEFAULTS).tolist() == ["", "KO_INCOME_PROOF", "KO_INCOME_PROOF"]


def test_income_proof_rule_follows_its_employment_list() -> None:
    ko = KnockOutSettings(income_proof_required_for=("self_employed", "other"))
    assert reasons(ko, employment_type="other", income_verified=False) == "KO_INCOME_PROOF"
    none_required = KnockOutSettings(income_proof_required_for=())
    assert reasons(none_required, employment_type="self_employed", income_verified=False) == ""


def test_missing_required_field_declines_with_data_missing_only() -> None:
    assert reasons(age=None) == "KO_DATA_MISSING"  # and not KO_AGE_MIN / KO_AGE_MATURITY
    assert reasons(monthly_income=np.nan) == "KO_DATA_MISSING"
    assert reasons(vehicle_condition=None, term_months=48) == "KO_DATA_MISSING"  # no KO_TERM_MAX guess
    assert reasons(employment_type="freelancer") == "KO_DATA_MISSING"  # a level outside the contract
    assert reasons(vehicle_price="n/a") == "KO_DATA_MISSING"


def test_missing_bureau_fields_are_a_thin_file_not_a_knock_out() -> None:
    rows = frame(applicant(), applicant())
    rows["delinquencies_24m"] = pd.array([pd.NA, 5], dtype="Int64")
    rows["max_dpd_24m"] = pd.array([pd.NA, 30], dtype="Int64")
    assert knock_out_reasons(rows, DEFAULTS).tolist() == ["", "KO_DELINQ_COUNT"]


def test_missing_column_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"missing columns \['max_dpd_24m'\]"):
        knock_out_reasons(frame(applicant()).drop(columns="max_dpd_24m"), DEFAULTS)


def test_knock_outs_keep_the_index_and_accept_categoricals() -> None:
    rows = frame(applicant(age=17), applicant(), applicant(vehicle_condition="used", term_months=48))
    rows.index = pd.Index(["a", "b", "c"])
    as_categories = rows.astype(
        {c: "category" for c in ("employment_type", "vehicle_condition", "vehicle_use")}
    )
    expected = ["KO_AGE_MIN", "", "KO_LTV_MAX;KO_TERM_MAX"]
    for data in (rows, as_categories):
        out = knock_out_reasons(data, DEFAULTS)
        assert out.index.tolist() == ["a", "b", "c"]
        assert out.tolist() == expected


def test_empty_frame_gives_empty_reasons() -> None:
    assert knock_out_reasons(frame(applicant()).iloc[:0], DEFAULTS).empty


# --------------------------------------------------------------------------- market caps


def test_market_caps_by_product() -> None:
    rows = frame(
        applicant(),
        applicant(vehicle_use="commercial"),
        applicant(vehicle_segment="electric"),
        applicant(vehicle_segment="electric", vehicle_use="commercial"),
        applicant(vehicle_condition="used", vehicle_segment="electric"),  # used: 70% whatever the segment
        applicant(vehicle_condition="used", vehicle_segment="luxury", vehicle_use="commercial"),
    )
    assert max_ltv_for(rows, DEFAULTS) == pytest.approx([0.80, 0.70, 0.85, 0.75, 0.70, 0.70])


def test_market_cap_of_an_incomplete_record_is_the_lowest_it_could_have() -> None:
    rows = frame(
        applicant(vehicle_condition=None, vehicle_segment="electric"),  # used 70% or new NE 85%
        applicant(vehicle_segment=None),  # new private: conventional 80% or NE 85%
        applicant(vehicle_use="rental", vehicle_segment="electric"),  # unknown use: 85% or 75%
    )
    assert max_ltv_for(rows, DEFAULTS) == pytest.approx([0.70, 0.80, 0.75])


def test_market_caps_come_from_params() -> None:
    # the 2024 notice: lenders may set the private-car share themselves
    loosened = KnockOutSettings(max_ltv=MarketLtvCaps(private_conventional=0.9, private_new_energy=0.95))
    assert max_ltv_for(frame(applicant()), loosened) == pytest.approx([0.9])
    assert reasons(loosened, down_payment=12_000.0) == ""
    assert reasons(down_payment=12_000.0) == "KO_LTV_MAX"


# --------------------------------------------------------------------------- decisions


def test_decisions_by_grade_cut_offs() -> None:
    grades = np.array([1, 6, 7, 8, 9, 10, 1])
    knock_outs = pd.Series(["", "", "", "", "", "", "KO_AGE_MIN;KO_LTV_MAX"], index=list("abcdefg"))
    out = decide(grades, knock_outs, DEFAULTS)
    assert out.index.tolist() == list("abcdefg")
    assert out["decision"].tolist() == [
        "approve",
        "approve",
        "refer",
        "refer",
        "decline",
        "decline",
        "decline",
    ]
    assert out["policy_reasons"].tolist() == [
        "",
        "",
        GRADE_REFER,
        GRADE_REFER,
        GRADE_DECLINE,
        GRADE_DECLINE,
        "KO_AGE_MIN;KO_LTV_MAX",
    ]


def test_cut_offs_come_from_settings() -> None:
    tight = DecisionSettings(approve_max_grade=2, refer_max_grade=2)
    out = decide([2, 3], pd.Series(["", ""]), tight)
    assert out["decision"].tolist() == ["approve", "decline"]


def test_null_knock_out_counts_as_none() -> None:
    out = decide([1], pd.Series([None], dtype=object), DEFAULTS)
    assert out["decision"].tolist() == ["approve"]


@pytest.mark.parametrize("grades", [[0], [1.5], [np.nan]])
def test_invalid_grades_are_rejected(grades: list[float]) -> None:
    with pytest.raises(ValueError, match="grades"):
        decide(grades, pd.Series([""]), DEFAULTS)


def test_grades_and_knock_outs_must_align() -> None:
    with pytest.raises(ValueError, match="same"):
        decide([1, 2], pd.Series([""]), DEFAULTS)


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_through_json_and_refuse_unknown_keys() -> None:
    dumped = json.loads(json.dumps(DEFAULTS.model_dump()))
    assert PolicySettings.model_validate(dumped) == DEFAULTS
    assert dumped["knock_outs"]["max_ltv"]["used"] == 0.70
    with pytest.raises(ValidationError, match="max_ltvv"):
        PolicySettings.model_validate({"knock_outs": {"max_ltvv": {}}})


@pytest.mark.parametrize(
    ("model", "values", "match"),
    [
        (DecisionSettings, {"approve_max_grade": 5, "refer_max_grade": 4}, "refer_max_grade"),
        (KnockOutSettings, {"min_age": 30, "max_age_at_application": 25}, "min_age"),
        (KnockOutSettings, {"income_proof_required_for": ["gig"]}, "gig"),
        (MarketLtvCaps, {"used": 1.2}, "used"),
        (MarketLtvCaps, {"new_energy_segments": ["hydrogen"]}, "hydrogen"),
    ],
)
def test_inconsistent_settings_are_refused(model: Any, values: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        model.model_validate(values)


def test_level_codes_maps_nulls_and_unknowns_to_minus_one() -> None:
    codes = level_codes(pd.Series(["b", None, "z", "a", np.nan]), ("a", "b"))
    assert codes.tolist() == [1, -1, -1, 0, -1]


# --------------------------------------------------------------------------- properties

_row = st.fixed_dictionaries(
    {
        "age": st.integers(16, 85),
        "employment_type": st.sampled_from(["salaried", "self_employed", "retired", "other"]),
        "income_verified": st.booleans(),
        "monthly_income": st.floats(500, 50_000),
        "vehicle_price": st.floats(20_000, 500_000),
        "down_share": st.floats(0.0, 0.6),
        "vehicle_condition": st.sampled_from(["new", "used"]),
        "vehicle_segment": st.sampled_from(["economy", "suv", "electric"]),
        "vehicle_use": st.sampled_from(["private", "commercial"]),
        "term_months": st.sampled_from([12, 24, 36, 48, 60, 72]),
        "delinquencies_24m": st.integers(0, 6),
        "max_dpd_24m": st.sampled_from([0, 30, 60, 90, 120]),
    }
)


def _rows(draws: list[dict[str, Any]]) -> pd.DataFrame:
    rows = pd.DataFrame(draws)
    rows["down_payment"] = rows.pop("down_share") * rows["vehicle_price"]
    rows["loan_amount"] = rows["vehicle_price"] - rows["down_payment"]
    return rows


@settings(max_examples=200, deadline=None)
@given(draws=st.lists(_row, min_size=1, max_size=8))
def test_reason_codes_are_known_and_in_canonical_order(draws: list[dict[str, Any]]) -> None:
    rows = _rows(draws)
    out = knock_out_reasons(rows, DEFAULTS)
    share = (rows["vehicle_price"] - rows["down_payment"]) / rows["vehicle_price"]
    for codes, ltv, cap in zip(out, share, max_ltv_for(rows, DEFAULTS), strict=True):
        parts = codes.split(";") if codes else []
        assert parts == [c for c in KNOCK_OUT_CODES if c in parts]  # known, once each, in order
        assert ("KO_LTV_MAX" in parts) == (ltv > cap + 1e-9)


@settings(max_examples=200, deadline=None)
@given(draws=st.lists(_row, min_size=1, max_size=8), tighten=st.floats(0.0, 0.2))
def test_a_stricter_policy_never_lets_a_declined_applicant_through(
    draws: list[dict[str, Any]], tighten: float
) -> None:
    rows = _rows(draws)
    loose = KnockOutSettings()
    strict = KnockOutSettings(
        min_age=18 + int(10 * tighten),
        max_age_at_application=65 - int(10 * tighten),
        max_age_at_maturity=70 - int(10 * tighten),
        min_monthly_income=3_000 * (1 + tighten),
        income_proof_required_for=("self_employed", "other"),
        max_ltv=MarketLtvCaps(
            **{
                k: getattr(loose.max_ltv, k) - tighten
                for k in ("private_conventional", "private_new_energy", "used")
            }
        ),
        max_term_months_new=60 - int(60 * tighten),
        severe_dpd_days=90 - int(300 * tighten),
        max_delinquencies_24m=3 - int(10 * tighten),
    )
    before = knock_out_reasons(rows, loose).ne("").to_numpy()
    after = knock_out_reasons(rows, strict).ne("").to_numpy()
    assert not (before & ~after).any()


@settings(max_examples=200, deadline=None)
@given(
    grades=st.lists(st.integers(1, 12), min_size=2, max_size=20),
    cut=st.integers(0, 12),
    gap=st.integers(0, 4),
)
def test_a_worse_grade_never_gets_a_better_decision(grades: list[int], cut: int, gap: int) -> None:
    rank = {"approve": 0, "refer": 1, "decline": 2}
    ordered = sorted(grades)
    out = decide(
        ordered,
        pd.Series([""] * len(ordered)),
        DecisionSettings(approve_max_grade=cut, refer_max_grade=cut + gap),
    )
    ranks = [rank[d] for d in out["decision"]]
    assert ranks == sorted(ranks)


# --------------------------------------------------------------------------- arrays by column


def test_knock_outs_and_decisions_from_arrays_equal_those_from_the_frame() -> None:
    rows = frame(
        applicant(),
        applicant(age=17, monthly_income=2_000.0),
        applicant(employment_type="self_employed", income_verified=None),
        applicant(employment_type="self_employed", income_verified=False),
        applicant(vehicle_segment=None, max_dpd_24m=None, delinquencies_24m=None),
        applicant(vehicle_condition="used", term_months=48, down_payment=25_000.0),
        applicant(vehicle_use="spaceship", max_dpd_24m=120, delinquencies_24m=5),
    )
    # what the scorer hands over: numbers as float64, booleans as 0/1/NaN, categories as objects
    arrays = {
        name: rows[name].to_numpy(dtype=object)
        if not pd.api.types.is_numeric_dtype(rows[name].dtype) and name != "income_verified"
        else rows[name].to_numpy(dtype=np.float64, na_value=np.nan)
        for name in rows.columns
    }
    assert np.isnan(arrays["income_verified"][2])
    expected = knock_out_reasons(rows, DEFAULTS)
    codes = knock_out_codes(arrays, DEFAULTS)
    assert codes.dtype == object and codes.tolist() == expected.tolist()
    assert codes.tolist() == knock_out_codes(arrays, DEFAULTS, max_ltv_for(arrays, DEFAULTS)).tolist()
    np.testing.assert_array_equal(max_ltv_for(arrays, DEFAULTS), max_ltv_for(rows, DEFAULTS))
    grades = np.array([1, 7, 9, 2, 3, 4, 10], dtype=np.int64)
    decided = decide(grades, expected, DEFAULTS)
    decision, reasons_ = decision_values(grades, codes, DEFAULTS)
    assert decision.tolist() == decided["decision"].tolist()
    assert reasons_.tolist() == decided["policy_reasons"].tolist()
    # booleans that are not 0/1 go the frame's way: refused
    with pytest.raises(ValueError, match="income_verified: expected booleans"):
        knock_out_codes({**arrays, "income_verified": np.array([0.5] * len(rows))}, DEFAULTS)
