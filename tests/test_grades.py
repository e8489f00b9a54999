"""Master scale fitting, grade table, and the Jeffreys / binomial / Hosmer-Lemeshow / Herfindahl tests."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from scipy.stats import beta, binomtest

from scoring.decision.grades import (
    MasterScale,
    MasterScaleSettings,
    ValidationTestSettings,
    fit_master_scale,
    flat_metrics,
    grade_table,
    herfindahl,
    jeffreys_p_value,
    validation_tests,
)


def portfolio(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated PDs ~ Beta(1, 12) and outcomes drawn from them."""
    rng = np.random.default_rng(seed)
    pd_ = rng.beta(1, 12, n)
    return pd_, (rng.random(n) < pd_).astype(float)


@cache
def realistic() -> tuple[np.ndarray, np.ndarray, MasterScale]:
    pd_, y = portfolio(50_000, seed=1)
    return pd_, y, fit_master_scale(pd_, y)


def simple_scale() -> MasterScale:
    return MasterScale(boundaries=(0.02, 0.08), central_pd=(0.01, 0.05, 0.2), method="fixed")


def test_fitted_scale_meets_share_and_monotonicity_constraints() -> None:
    pd_, y, scale = realistic()
    assert scale.n_grades == 10
    assert scale.constraints_met
    assert scale.notes == ()
    table = grade_table(pd_, y, scale)
    assert table["share"].between(0.01, 0.25).all()
    assert np.all(np.diff(table["default_rate"]) > 0)
    assert table["count"].sum() == len(pd_)
    # central PD = mean PD of the fitting rows, inside its grade's range, rising
    np.testing.assert_allclose(table["central_pd"], table["mean_pd"])
    assert (table["pd_low"] < table["central_pd"]).all() and (table["central_pd"] <= table["pd_high"]).all()
    assert list(table["name"]) == [f"G{k}" for k in range(1, 11)]


def test_fitted_scale_holds_on_a_fresh_sample() -> None:
    _, _, scale = realistic()
    pd_, y = portfolio(50_000, seed=2)
    report = validation_tests(pd_, y, scale)
    assert report["default_rates_increasing"]
    assert report["summary"]["jeffreys"]["red"] <= 1
    assert report["portfolio"]["jeffreys_flag"] == "green"


def test_fit_is_deterministic_and_ignores_row_order() -> None:
    pd_, y = portfolio(5_000, seed=3)
    first = fit_master_scale(pd_, y)
    order = np.random.default_rng(0).permutation(len(pd_))
    assert fit_master_scale(pd_[order], y[order]) == first
    assert fit_master_scale(pd_, y) == first


def test_fixed_boundaries_are_used_as_given() -> None:
    pd_, y = portfolio(5_000, seed=4)
    cuts = [0.01, 0.03, 0.06, 0.1, 0.2]
    scale = fit_master_scale(pd_, y, MasterScaleSettings(n_grades=6, boundaries=cuts))
    assert scale.boundaries == tuple(cuts)
    assert scale.method == "fixed"
    grades = scale.grade(pd_)
    np.testing.assert_array_equal(grades, np.searchsorted(cuts, pd_, side="left") + 1)
    for k in range(1, 7):
        assert scale.central_pd[k - 1] == pytest.approx(pd_[grades == k].mean())


def test_fixed_boundaries_with_an_empty_grade_get_the_middle_of_the_range() -> None:
    pd_ = np.array([0.01, 0.02, 0.5])
    scale = fit_master_scale(pd_, [0, 0, 1], MasterScaleSettings(n_grades=3, boundaries=[0.1, 0.4]))
    assert scale.central_pd[1] == pytest.approx(np.sqrt(0.1 * 0.4))
    assert not scale.constraints_met  # shares of 2/3 and 0 are outside [1%, 25%]
    assert any("G2 holds no fitting row" in note for note in scale.notes)


def test_a_pd_on_a_boundary_belongs_to_the_lower_grade() -> None:
    scale = simple_scale()
    np.testing.assert_array_equal(scale.grade([0.0, 0.02, 0.020001, 0.08, 0.5, 1.0]), [1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(scale.assigned_pd([0.0, 0.05, 1.0]), [0.01, 0.05, 0.2])


@settings(max_examples=100, deadline=None)
@given(
    cuts=st.lists(st.floats(1e-6, 1 - 1e-6), min_size=0, max_size=12, unique=True),
    pds=arrays(np.float64, st.integers(1, 50), elements=st.floats(0.0, 1.0)),
)
def test_grades_never_fall_when_pd_rises(cuts: list[float], pds: np.ndarray) -> None:
    boundaries = tuple(sorted(cuts))
    scale = MasterScale(boundaries=boundaries, central_pd=tuple(np.linspace(0, 1, len(boundaries) + 1)))
    grades = scale.grade(np.sort(pds))
    assert np.all(np.diff(grades) >= 0)
    assert grades.min() >= 1 and grades.max() <= scale.n_grades


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(50, 1_500), probe=st.lists(st.floats(0.0, 1.0), min_size=2))
def test_fitted_grades_never_fall_and_fit_rates_rise(seed: int, n: int, probe: list[float]) -> None:
    pd_, y = portfolio(n, seed)
    scale = fit_master_scale(pd_, y, MasterScaleSettings(n_grades=6, min_share=0.05, max_share=0.5))
    assert np.all(np.diff(scale.grade(np.sort(probe))) >= 0)
    table = grade_table(pd_, y, scale)
    assert np.all(np.diff(table["default_rate"]) > 0)
    if scale.constraints_met:
        assert table["share"].between(0.05 - 1e-9, 0.5 + 1e-9).all()


def test_json_round_trip() -> None:
    pd_, _, scale = realistic()
    again = MasterScale.from_dict(json.loads(json.dumps(scale.to_dict(), allow_nan=False)))
    assert again == scale
    np.testing.assert_array_equal(again.grade(pd_), scale.grade(pd_))


def test_grades_are_reduced_when_k_cannot_meet_the_constraints() -> None:
    pd_, y = portfolio(300, seed=5)
    scale = fit_master_scale(pd_, y, MasterScaleSettings(n_grades=10, min_share=0.2))
    assert 4 <= scale.n_grades <= 5  # max_share 0.25 needs 4, min_share 0.2 allows 5
    assert scale.n_grades_requested == 10
    assert scale.constraints_met
    assert any("reduced to" in note for note in scale.notes)
    table = grade_table(pd_, y, scale)
    assert table["share"].between(0.2, 0.25).all()
    assert np.all(np.diff(table["default_rate"]) > 0)


def test_heavy_ties_drop_max_share_and_say_so() -> None:
    # 40% of rows share one PD: no grade boundary can split them
    pd_, y = portfolio(1_000, seed=6)
    pd_[:400] = 0.01
    scale = fit_master_scale(pd_, y)
    assert not scale.constraints_met
    assert any("max_share dropped" in note for note in scale.notes)
    table = grade_table(pd_, y, scale)
    assert table["share"].max() >= 0.4
    assert np.all(np.diff(table["default_rate"]) > 0)


def test_no_defaults_gives_a_single_grade() -> None:
    scale = fit_master_scale(np.linspace(0.01, 0.2, 200), np.zeros(200))
    assert scale.n_grades == 1
    assert not scale.constraints_met


def test_grade_table_by_hand() -> None:
    pd_ = np.array([0.01, 0.015, 0.03, 0.05, 0.07, 0.3])
    y = np.array([0, 0, 0, 1, 0, 1])
    table = grade_table(pd_, y, simple_scale())
    assert list(table["count"]) == [2, 3, 1]
    assert list(table["defaults"]) == [0, 1, 1]
    np.testing.assert_allclose(table["default_rate"], [0, 1 / 3, 1])
    np.testing.assert_allclose(table["mean_pd"], [0.0125, 0.05, 0.3])
    np.testing.assert_allclose(table["expected_defaults"], [0.025, 0.15, 0.3])
    np.testing.assert_allclose(table["expected_defaults_central"], [0.02, 0.15, 0.2])
    np.testing.assert_allclose(table["pd_low"], [0, 0.02, 0.08])
    np.testing.assert_allclose(table["pd_high"], [0.02, 0.08, 1.0])
    unlabelled = grade_table(pd_, None, simple_scale())
    assert unlabelled["defaults"].isna().all()
    assert list(unlabelled["count"]) == [2, 3, 1]


def test_jeffreys_p_value_by_hand() -> None:
    assert jeffreys_p_value(3, 50, 0.02) == pytest.approx(beta(3.5, 47.5).cdf(0.02), rel=1e-12)
    assert jeffreys_p_value(0, 10, 0.05) == pytest.approx(beta(0.5, 10.5).cdf(0.05), rel=1e-12)
    # more defaults for the same PD: lower p-value (evidence of underestimation)
    assert jeffreys_p_value(8, 50, 0.02) < jeffreys_p_value(3, 50, 0.02)


def test_underestimated_grade_is_red_and_calibrated_grade_green() -> None:
    scale = simple_scale()
    # G1 PD 1% with 100 defaults in 1,000 rows; G2 PD 5% with 50 in 1,000; G3 PD 20% with 5 in 100
    pd_ = np.concatenate([np.full(1_000, 0.01), np.full(1_000, 0.05), np.full(100, 0.2)])
    y = np.concatenate([np.arange(1_000) < 100, np.arange(1_000) < 50, np.arange(100) < 5]).astype(float)
    report = validation_tests(pd_, y, scale)
    g1, g2, g3 = report["grades"]
    assert g1["jeffreys_flag"] == "red" and g1["binomial_flag"] == "red"
    assert g2["jeffreys_flag"] == "green" and g2["binomial_flag"] == "green"
    assert g2["jeffreys_p"] == pytest.approx(beta(50.5, 950.5).cdf(0.05))
    assert g2["binomial_p"] == pytest.approx(binomtest(50, 1_000, 0.05, alternative="greater").pvalue)
    # overestimation is not what the one-sided test looks for: 5% observed against 20% is green
    assert g3["jeffreys_flag"] == "green" and g3["jeffreys_p"] > 0.99
    assert report["summary"]["jeffreys"] == {"green": 2, "yellow": 0, "red": 1, "n/a": 0}


def test_yellow_between_the_thresholds() -> None:
    scale = MasterScale(boundaries=(), central_pd=(0.05,))
    # choose D so that the p-value falls between 1% and 5%
    p_values = {d: jeffreys_p_value(d, 1_000, 0.05) for d in range(50, 80)}
    d = next(d for d, p in p_values.items() if 0.01 <= p < 0.05)
    report = validation_tests(np.full(1_000, 0.05), np.arange(1_000) < d, scale)
    assert report["grades"][0]["jeffreys_flag"] == "yellow"
    assert report["portfolio"]["jeffreys_flag"] == "yellow"


def test_grade_pd_central_or_mean() -> None:
    scale = simple_scale()
    pd_ = np.full(200, 0.03)  # all in G2, central PD 0.05
    y = (np.arange(200) < 10).astype(float)
    central = validation_tests(pd_, y, scale)
    mean = validation_tests(pd_, y, scale, ValidationTestSettings(grade_pd="mean"))
    assert central["grades"][1]["pd"] == pytest.approx(0.05)
    assert mean["grades"][1]["pd"] == pytest.approx(0.03)
    assert central["portfolio"]["pd"] == pytest.approx(0.05)
    assert mean["grades"][1]["jeffreys_p"] < central["grades"][1]["jeffreys_p"]


def test_hosmer_lemeshow_high_when_calibrated_low_when_biased() -> None:
    pd_, y, scale = realistic()
    calibrated = validation_tests(pd_, y, scale, ValidationTestSettings(grade_pd="mean"))["hosmer_lemeshow"]
    assert calibrated["df"] == 8
    assert calibrated["p_value"] > 0.05 and calibrated["flag"] == "green"
    biased = validation_tests(pd_ * 0.8, y, scale, ValidationTestSettings(grade_pd="mean"))["hosmer_lemeshow"]
    assert biased["p_value"] < 1e-6 and biased["flag"] == "red"


def test_herfindahl() -> None:
    uniform = herfindahl(np.full(10, 7))
    assert uniform["index"] == pytest.approx(0.1)
    assert uniform["normalised"] == pytest.approx(0.0)
    assert uniform["effective_grades"] == pytest.approx(10)
    concentrated = herfindahl([0, 0, 50, 0])
    assert concentrated["index"] == pytest.approx(1.0) and concentrated["normalised"] == pytest.approx(1.0)
    assert herfindahl([1, 1, 2])["index"] == pytest.approx(0.25 + 0.25 / 4 * 2)
    scale = simple_scale()
    all_in_g2 = validation_tests(np.full(100, 0.05), np.zeros(100), scale)["herfindahl"]
    assert all_in_g2["flag"] == "red"
    _, _, fitted = realistic()
    pd_, y = portfolio(20_000, seed=7)
    assert validation_tests(pd_, y, fitted)["herfindahl"]["flag"] == "green"


def test_report_is_json_ready_with_an_empty_grade() -> None:
    scale = simple_scale()
    report = validation_tests([0.01, 0.015, 0.3], [0, 1, 0], scale)
    text = json.dumps(report, allow_nan=False)
    g2 = json.loads(text)["grades"][1]
    assert g2["n"] == 0 and g2["jeffreys_p"] is None and g2["jeffreys_flag"] == "n/a"
    assert report["summary"]["jeffreys"]["n/a"] == 1
    assert not report["default_rates_increasing"]  # G1 1/2 then G3 0/1
    metrics = flat_metrics(report, prefix="test_")
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["test_jeffreys_green"] == report["summary"]["jeffreys"]["green"]
    assert metrics["test_default_rates_increasing"] == 0.0
    assert "test_G2_jeffreys_p" not in metrics and "test_G1_jeffreys_flag" in metrics


def test_settings_refuse_inconsistent_values() -> None:
    with pytest.raises(ValidationError, match="expected n_grades - 1 = 9"):
        MasterScaleSettings(boundaries=[0.1, 0.2])
    with pytest.raises(ValidationError, match="increase strictly"):
        MasterScaleSettings(n_grades=3, boundaries=[0.2, 0.1])
    with pytest.raises(ValidationError, match="at least 4 grades"):
        MasterScaleSettings(n_grades=3)
    with pytest.raises(ValidationError, match="admit no number of grades"):
        MasterScaleSettings(min_share=0.3, max_share=0.32)
    with pytest.raises(ValidationError, match="red_p"):
        ValidationTestSettings(red_p=0.1, yellow_p=0.05)
    with pytest.raises(ValidationError, match="extra"):
        MasterScaleSettings(grades=5)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"pd must lie in \[0, 1\]"):
        fit_master_scale([0.1, 1.2], [0, 1])
    with pytest.raises(ValueError, match="format"):
        MasterScale.from_dict({"boundaries": [], "central_pd": [0.1]})
    with pytest.raises(ValueError, match="one central PD per grade"):
        MasterScale(boundaries=(0.1,), central_pd=(0.05,))
