"""Fair-lending screening (issue 19, item 3): approval rates, AIR, equalized odds, reason codes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.reporting.config import FairnessConfig, GroupSpec
from scoring.reporting.fairness import (
    fairness_report,
    group_labels,
    reason_codes_check,
)

SEED = 7


def _frame(counts: dict[str, tuple[int, int, int]]) -> tuple[pd.DataFrame, list[str]]:
    """Applications of one categorical column ``g`` and their decisions: per group
    (approve, refer, decline) counts."""
    groups: list[str] = []
    decisions: list[str] = []
    for group, (approve, refer, decline) in counts.items():
        for decision, k in (("approve", approve), ("refer", refer), ("decline", decline)):
            groups += [group] * k
            decisions += [decision] * k
    return pd.DataFrame({"g": groups}), decisions


def _config(**kwargs: object) -> FairnessConfig:
    return FairnessConfig.model_validate({"groups": {"grp": {"column": "g"}}, **kwargs})


def _unlabelled(n: int) -> np.ndarray:
    return np.full(n, np.nan)


# ------------------------------------------------------------------ config


def test_default_config_screens_age_bands_marital_status_and_region():
    config = FairnessConfig()
    assert list(config.groups) == ["age_band", "marital_status", "region"]
    assert config.groups["age_band"] == GroupSpec(column="age", bands=[18, 25, 35, 50, 65, 120])
    assert config.groups["marital_status"].bands is None
    assert config.splits == ["test", "oot"]
    assert (config.air_threshold, config.min_group_size, config.reference) == (0.8, 30, "most_favoured")


@pytest.mark.parametrize(
    ("bands", "expected"),
    [
        ([18, 35, 25], "strictly increasing"),
        ([18, 18, 25], "strictly increasing"),
        ([18], "at least 2 edges"),
    ],
)
def test_bad_bands_are_errors_naming_the_field(bands, expected):
    with pytest.raises(ValidationError, match=rf"(?s)groups\.age_band\.bands.*{expected}"):
        FairnessConfig.model_validate({"groups": {"age_band": {"column": "age", "bands": bands}}})


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"air_treshold": 0.8}, "air_treshold"),
        ({"groups": {"age_band": {"colum": "age"}}}, r"groups\.age_band\.colum"),
        ({"reference": "overall"}, "reference"),
        ({"air_threshold": 1.5}, "air_threshold"),
        ({"groups": {}}, "groups"),
        ({"splits": ["test", "test"]}, "splits"),
    ],
)
def test_bad_config_is_an_error_naming_the_field(params, field):
    with pytest.raises(ValidationError, match=field):
        FairnessConfig.model_validate(params)


# ------------------------------------------------------------------ group labels


def test_bands_are_right_open_with_outer_and_missing_labels():
    ages = pd.Series([17, 18, 24, 25, 34.5, 49.99, 64, 65, 119, 120, 130, np.nan, None])
    labels = group_labels(pd.DataFrame({"age": ages}), FairnessConfig().groups["age_band"], "age_band")
    assert labels.tolist() == [
        "<18",
        "18-24",
        "18-24",
        "25-34",
        "25-34",
        "35-49",
        "50-64",
        "65-119",
        "65-119",
        ">=120",
        ">=120",
        "missing",
        "missing",
    ]


def test_bands_on_a_nullable_integer_column_and_fractional_edges():
    frame = pd.DataFrame({"age": pd.array([30, None, 70], dtype="Int64"), "ratio": [0.2, 0.5, 1.0]})
    assert group_labels(frame, GroupSpec(column="age", bands=[18, 65]), "a").tolist() == [
        "18-64",
        "missing",
        ">=65",
    ]
    assert group_labels(frame, GroupSpec(column="ratio", bands=[0, 0.5, 1]), "r").tolist() == [
        "[0, 0.5)",
        "[0.5, 1)",
        ">=1",
    ]


def test_categories_keep_their_values_and_missing_ones_are_labelled():
    frame = pd.DataFrame({"m": ["single", None, "married", np.nan], "k": [3.0, 1.0, np.nan, 3.0]})
    frame.index = [10, 11, 12, 13]
    labels = group_labels(frame, GroupSpec(column="m"), "marital")
    assert labels.tolist() == ["single", "missing", "married", "missing"]
    assert labels.index.tolist() == [10, 11, 12, 13]
    assert labels.name == "marital"
    assert group_labels(frame, GroupSpec(column="k"), "k").tolist() == ["3", "1", "missing", "3"]


def test_absent_column_names_the_group_the_column_and_what_is_expected():
    frame = pd.DataFrame({"age": [30]})
    with pytest.raises(ValueError, match=r"group 'marital'.*column 'marital_status'.*expected a column"):
        group_labels(frame, GroupSpec(column="marital_status"), "marital")
    with pytest.raises(ValueError, match=r"group 'age_band'.*'dob'.*expected a column of numbers"):
        fairness_report(
            frame,
            ["approve"],
            [0],
            FairnessConfig.model_validate({"groups": {"age_band": {"column": "dob", "bands": [18, 65]}}}),
        )


def test_banding_a_text_column_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"group 'age_band'.*'age'.*expected a numeric column"):
        group_labels(
            pd.DataFrame({"age": ["young", "old"]}), GroupSpec(column="age", bands=[18, 65]), "age_band"
        )


# ------------------------------------------------------------------ AIR and flags


def test_four_fifths_rule_flags_a_group_approved_at_two_thirds_of_the_best_rate():
    # b: 60 approved, 30 referred, 10 declined: counting referrals would give it 0.9 too
    frame, decisions = _frame({"a": (90, 0, 10), "b": (60, 30, 10)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    grp = report["variables"]["grp"]
    assert grp["reference_group"] == "a"
    assert report["reference_groups"] == {"grp": "a"}
    assert grp["groups"]["a"]["approval_rate"] == pytest.approx(0.9)
    assert grp["groups"]["b"]["approval_rate"] == pytest.approx(0.6)
    assert grp["groups"]["a"]["air"] == pytest.approx(1.0)
    assert grp["groups"]["b"]["air"] == pytest.approx(0.6 / 0.9)
    assert grp["groups"]["b"]["n"] == 100 and grp["groups"]["b"]["n_approved"] == 60
    assert grp["groups"]["b"]["flagged"] and not grp["groups"]["a"]["flagged"]
    assert [(f["variable"], f["group"]) for f in report["flagged"]] == [("grp", "b")]
    assert report["air_threshold"] == 0.8
    assert report["approval_rate"] == pytest.approx(0.75)


def test_a_group_at_eight_ninths_or_exactly_four_fifths_is_not_flagged():
    frame, decisions = _frame({"a": (90, 0, 10), "b": (80, 10, 10)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    assert report["variables"]["grp"]["groups"]["b"]["air"] == pytest.approx(0.8 / 0.9)
    assert report["flagged"] == []
    # AIR exactly at the threshold: the rule flags below it only
    frame, decisions = _frame({"a": (50, 0, 0), "b": (40, 0, 10)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    assert report["variables"]["grp"]["groups"]["b"]["air"] == 0.8
    assert report["flagged"] == []
    # a stricter threshold flags it
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config(air_threshold=0.9))
    assert [f["group"] for f in report["flagged"]] == ["b"]


def test_small_groups_are_reported_but_neither_flagged_nor_the_reference():
    # c is approved more often than a but is too small to be the reference; d is approved
    # rarely but too small to flag
    frame, decisions = _frame({"a": (90, 0, 10), "b": (60, 0, 40), "c": (5, 0, 0), "d": (1, 0, 9)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    groups = report["variables"]["grp"]["groups"]
    assert report["variables"]["grp"]["reference_group"] == "a"
    assert groups["c"]["air"] == pytest.approx(1.0 / 0.9) and groups["c"]["small"]
    assert groups["d"]["air"] == pytest.approx(0.1 / 0.9)
    assert groups["d"]["small"] and not groups["d"]["flagged"]
    assert [f["group"] for f in report["flagged"]] == ["b"]
    # with a lower minimum, d is big enough to flag and c becomes the reference
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config(min_group_size=5))
    assert report["variables"]["grp"]["reference_group"] == "c"
    assert [f["group"] for f in report["flagged"]] == ["b", "d"]


def test_no_group_big_enough_leaves_air_undefined_and_nothing_flagged():
    frame, decisions = _frame({"a": (9, 0, 1), "b": (1, 0, 9)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    grp = report["variables"]["grp"]
    assert grp["reference_group"] is None
    assert all(row["air"] is None and not row["flagged"] for row in grp["groups"].values())
    assert report["flagged"] == []


def test_a_single_group_has_air_one():
    frame, decisions = _frame({"only": (30, 10, 10)})
    y = np.r_[np.zeros(25), np.ones(5), np.zeros(10), np.ones(10)]
    report = fairness_report(frame, decisions, y, _config(min_group_size=10))
    grp = report["variables"]["grp"]
    assert grp["groups"]["only"]["air"] == 1.0
    assert grp["equalized_odds_difference"] == 0.0
    assert report["flagged"] == []


def test_missing_group_values_form_their_own_group_last():
    frame = pd.DataFrame({"g": ["b", None, "a", "b", np.nan]})
    report = fairness_report(
        frame, ["approve", "decline", "approve", "refer", "approve"], _unlabelled(5), _config()
    )
    groups = report["variables"]["grp"]["groups"]
    assert list(groups) == ["a", "b", "missing"]
    assert groups["missing"]["n"] == 2 and groups["missing"]["approval_rate"] == 0.5


# ------------------------------------------------------------------ error rates and equalized odds


def test_equalized_odds_difference_matches_a_hand_computed_example():
    # a: 4 good (3 approved), 2 bad (1 approved), 2 unlabelled (approved)  -> TPR 0.75, FPR 0.5
    # b: 5 good (5 approved), 4 bad (0 approved), 2 unlabelled (declined) -> TPR 1.0,  FPR 0.0
    # TPR gap 0.25, FPR gap 0.5 -> equalized odds difference 0.5
    g = ["a"] * 8 + ["b"] * 11
    y = [0, 0, 0, 0, 1, 1, np.nan, np.nan] + [0] * 5 + [1] * 4 + [np.nan, np.nan]
    d = ["approve", "approve", "approve", "decline", "approve", "refer", "approve", "approve"]
    d += ["approve"] * 5 + ["decline", "refer", "decline", "decline"] + ["decline", "decline"]
    report = fairness_report(pd.DataFrame({"g": g}), d, y, _config(min_group_size=1))
    grp = report["variables"]["grp"]
    a, b = grp["groups"]["a"], grp["groups"]["b"]
    assert (a["n_labelled"], a["n_good"], a["n_bad"]) == (6, 4, 2)
    assert a["true_positive_rate"] == pytest.approx(0.75) and a["false_positive_rate"] == pytest.approx(0.5)
    assert b["true_positive_rate"] == pytest.approx(1.0) and b["false_positive_rate"] == pytest.approx(0.0)
    assert grp["equalized_odds_difference"] == pytest.approx(0.5)
    assert grp["equalized_odds_groups"] == ["a", "b"]
    # the approval rate counts the unlabelled rows too
    assert a["approval_rate"] == pytest.approx(6 / 8) and b["approval_rate"] == pytest.approx(5 / 11)
    assert report["n_labelled"] == 15


def test_equalized_odds_leaves_out_groups_with_too_few_good_or_bad_customers():
    # a: 2 good (2 approved), 2 bad (0 approved); b: 2 good (0 approved), 2 bad (2 approved);
    # c: 3 good (3 approved), 1 bad (1 approved): too few bad customers at min_group_size 2
    g = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    y = [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1]
    d = ["approve", "approve", "decline", "decline", "decline", "refer", "approve", "approve"]
    d += ["approve"] * 4
    report = fairness_report(pd.DataFrame({"g": g}), d, y, _config(min_group_size=2))
    grp = report["variables"]["grp"]
    assert grp["equalized_odds_groups"] == ["a", "b"]
    assert grp["equalized_odds_difference"] == pytest.approx(1.0)
    assert grp["groups"]["c"]["false_positive_rate"] == pytest.approx(1.0)  # reported, with its count
    assert grp["groups"]["c"]["n_bad"] == 1
    report = fairness_report(pd.DataFrame({"g": g}), d, y, _config(min_group_size=3))
    assert report["variables"]["grp"]["equalized_odds_groups"] == []
    assert report["variables"]["grp"]["equalized_odds_difference"] is None


def test_groups_without_labelled_rows_or_without_bad_customers_have_undefined_rates():
    g = ["a"] * 4 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2
    y = [0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, np.nan, np.nan]
    d = ["approve", "approve", "decline", "decline", "approve", "decline", "approve", "decline"]
    d += ["approve", "approve", "decline", "approve", "decline"]
    report = fairness_report(
        pd.DataFrame({"g": g}), d, pd.Series(y, dtype="Float64"), _config(min_group_size=1)
    )
    grp = report["variables"]["grp"]
    c, unlabelled = grp["groups"]["c"], grp["groups"]["d"]
    assert c["true_positive_rate"] == pytest.approx(2 / 3)
    assert c["false_positive_rate"] is None  # no bad customers: fairlearn's 0 would be invented
    assert unlabelled["n_labelled"] == 0
    assert unlabelled["true_positive_rate"] is None and unlabelled["false_positive_rate"] is None
    assert unlabelled["approval_rate"] == 0.5
    # a: TPR 0.5, FPR 0.5; b: TPR 1.0, FPR 0.0; c and d are left out of the gap
    assert grp["equalized_odds_groups"] == ["a", "b"]
    assert grp["equalized_odds_difference"] == pytest.approx(0.5)


def test_no_labelled_rows_at_all_leaves_the_error_rates_undefined():
    frame, decisions = _frame({"a": (20, 5, 5), "b": (10, 10, 10)})
    report = fairness_report(frame, decisions, _unlabelled(len(frame)), _config())
    grp = report["variables"]["grp"]
    assert grp["equalized_odds_difference"] is None and grp["equalized_odds_groups"] == []
    assert all(row["true_positive_rate"] is None for row in grp["groups"].values())
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    ("decisions", "y", "match"),
    [
        (["approve", "accept"], [0, 1], r"decisions: values \['accept'\]"),
        (["approve", None], [0, 1], r"decisions: 1 missing \(first at position 1\)"),
        (["approve"], [0, 1], r"decisions: 1 values for 2"),
        (["approve", "decline"], [0, 2], r"y_true: values \[2\.0\]"),
        (["approve", "decline"], ["good", "bad"], "y_true: values that are not numbers"),
    ],
)
def test_bad_decisions_or_outcomes_are_errors_naming_them(decisions, y, match):
    with pytest.raises(ValueError, match=match):
        fairness_report(pd.DataFrame({"g": ["a", "b"]}), decisions, y, _config())


# ------------------------------------------------------------------ the synthetic portfolio


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    applications, _ = generate_portfolio(
        SyntheticDataConfig(n_applications=5000, performance_history=False), SEED
    )
    return applications


def test_report_on_the_synthetic_portfolio_covers_every_variable_and_group(portfolio):
    config = FairnessConfig()
    rng = np.random.default_rng(SEED)
    decisions = rng.choice(["approve", "refer", "decline"], size=len(portfolio), p=[0.6, 0.1, 0.3])
    y = portfolio["default_12m"]
    assert y.isna().any() and y.notna().any()
    report = fairness_report(portfolio, pd.Series(decisions), y, config)
    json.dumps(report, allow_nan=False)
    assert list(report["variables"]) == list(config.groups)
    assert report["n"] == len(portfolio) and report["n_labelled"] == int(y.notna().sum())
    approved = pd.Series(decisions == "approve", index=portfolio.index)
    for name, spec in config.groups.items():
        labels = group_labels(portfolio, spec, name)
        variable = report["variables"][name]
        assert set(variable["groups"]) == set(labels.unique())
        assert sum(row["n"] for row in variable["groups"].values()) == len(portfolio)
        expected = approved.groupby(labels).mean()
        for group, row in variable["groups"].items():
            assert row["approval_rate"] == pytest.approx(expected[group])
            assert row["flagged"] == (row["n"] >= 30 and row["air"] < 0.8)
        # the gap counts only groups with 30 good and 30 bad customers
        for group in variable["equalized_odds_groups"]:
            assert variable["groups"][group]["n_good"] >= 30 and variable["groups"][group]["n_bad"] >= 30
        eod = variable["equalized_odds_difference"]
        assert (eod is None) == (variable["equalized_odds_groups"] == [])
        # random decisions: the big groups' rates are close, the gap small but not zero
        assert eod is None or 0.0 < eod < 0.25
    # 5000 applications, about 6% of the labelled ones bad: the big age bands and marital
    # statuses have 30 bad customers, no region does
    assert report["variables"]["age_band"]["equalized_odds_groups"] == ["18-24", "25-34", "35-49"]
    assert report["variables"]["marital_status"]["equalized_odds_groups"] == ["married", "single"]
    assert report["variables"]["region"]["equalized_odds_difference"] is None
    assert set(portfolio["marital_status"]) == set(report["variables"]["marital_status"]["groups"])
    assert set(portfolio["region"]) == set(report["variables"]["region"]["groups"])
    ages = report["variables"]["age_band"]["groups"]
    assert set(ages) <= {"<18", "18-24", "25-34", "35-49", "50-64", "65-119", ">=120", "missing"}
    assert {"18-24", "25-34", "35-49", "50-64"} <= set(ages)


# ------------------------------------------------------------------ reason codes


GROUPS = {
    "credit_bureau": ["bureau_score", "thin_file"],
    "age_profile": ["age", "age_at_maturity"],
    "affordability": ["debt_to_income", "payment_to_income"],
}


def test_reason_codes_naming_only_scored_factors_pass_and_protected_ones_are_listed():
    reason_map = ["credit_bureau", "age_profile", "marital_status", "loan_amount"]
    model = ["bureau_score", "age_at_maturity", "marital_status", "loan_amount", "region_code"]
    result = reason_codes_check(reason_map, GROUPS, model, ["age", "marital_status", "region"])
    assert result["ok"] is True
    assert result["not_scored"] == []
    assert result["protected"] == [
        {"reason": "age_profile", "columns": ["age"]},
        {"reason": "marital_status", "columns": ["marital_status"]},
    ]


def test_reason_codes_for_factors_the_model_does_not_score_fail():
    reason_map = ["credit_bureau", "affordability", "employment_type", "age_profile"]
    model = ["bureau_score", "loan_amount"]
    result = reason_codes_check(reason_map, GROUPS, model, ["age"])
    assert result["ok"] is False
    assert result["not_scored"] == ["affordability", "age_profile", "employment_type"]
    # listed for review whether scored or not
    assert result["protected"] == [{"reason": "age_profile", "columns": ["age"]}]


def test_reason_codes_on_a_feature_derived_from_a_protected_column():
    result = reason_codes_check(
        ["age_at_maturity", "loan_amount"],
        {},
        ["age_at_maturity", "loan_amount"],
        ["age"],
        derived_sources={"age_at_maturity": ("age", "term_months")},
    )
    assert result == {
        "ok": True,
        "not_scored": [],
        "protected": [{"reason": "age_at_maturity", "columns": ["age"]}],
    }
    assert reason_codes_check(["age_at_maturity"], {}, ["age_at_maturity"], ["age"])["protected"] == []
