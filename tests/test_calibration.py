"""PD calibration: the fitted maps, their JSON form, method choice and the calibration metrics."""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from scoring.models.calibration import (
    CalibrationSettings,
    Calibrator,
    calibration_metrics,
    fit_calibrator,
)


def portfolio(n: int, seed: int, power: float = 0.7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True PD ~ Beta(1, 12), outcomes drawn from it, and a miscalibrated model PD = p ** power."""
    rng = np.random.default_rng(seed)
    true_pd = rng.beta(1, 12, n)
    y = (rng.random(n) < true_pd).astype(float)
    return true_pd**power, y, true_pd


@cache
def fitted(method: str) -> Calibrator:
    raw, y, _ = portfolio(4_000, seed=1)
    return fit_calibrator(raw, y, CalibrationSettings(method=method), seed=0)


PROBE = np.array([0.0, 1e-9, 0.001, 0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 0.999, 1.0])


@pytest.mark.parametrize("method", ["isotonic", "platt", "none"])
def test_json_round_trip_gives_identical_output(method: str) -> None:
    calibrator = fitted(method)
    text = json.dumps(calibrator.to_dict(), allow_nan=False)
    again = Calibrator.from_dict(json.loads(text))
    assert again == calibrator
    probe = np.concatenate([PROBE, np.random.default_rng(5).random(500)])
    np.testing.assert_array_equal(again.predict(probe), calibrator.predict(probe))


def test_isotonic_map_is_sklearns_with_clipping() -> None:
    raw, y, _ = portfolio(4_000, seed=1)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(raw, y)
    probe = np.concatenate([PROBE, np.random.default_rng(2).random(300)])
    np.testing.assert_allclose(fitted("isotonic").predict_uncapped(probe), iso.predict(probe), atol=1e-12)
    # below and above the fitted range the end values hold
    assert fitted("isotonic").predict_uncapped([0.0])[0] == pytest.approx(iso.y_thresholds_[0])
    assert fitted("isotonic").predict_uncapped([1.0])[0] == pytest.approx(iso.y_thresholds_[-1])


def test_platt_is_sigmoid_of_a_logit_plus_b() -> None:
    raw, y, _ = portfolio(4_000, seed=1)
    reference = LogisticRegression(C=np.inf, max_iter=1000).fit(logit(raw)[:, None], y)
    calibrator = fitted("platt")
    assert calibrator.slope == pytest.approx(reference.coef_[0, 0], rel=1e-4)
    assert calibrator.intercept == pytest.approx(reference.intercept_[0], rel=1e-4)
    probe = np.array([0.001, 0.02, 0.1, 0.4])
    expected = 1 / (1 + np.exp(-(calibrator.slope * logit(probe) + calibrator.intercept)))
    np.testing.assert_allclose(calibrator.predict_uncapped(probe), expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_reduces_log_loss_and_bias_on_unseen_rows(method: str) -> None:
    raw, y, true_pd = portfolio(20_000, seed=3)
    fit_rows, test_rows = slice(0, 10_000), slice(10_000, None)
    calibrator = fit_calibrator(raw[fit_rows], y[fit_rows], CalibrationSettings(method=method))
    before = calibration_metrics(raw[test_rows], y[test_rows], true_pd[test_rows])
    after = calibration_metrics(calibrator.predict(raw[test_rows]), y[test_rows], true_pd[test_rows])
    assert before["mean_pd"] > 1.5 * before["default_rate"]  # p ** 0.7 overstates risk
    assert after["log_loss"] < before["log_loss"] - 0.005
    assert after["mae_true"] < 0.5 * before["mae_true"]
    assert after["ece_true"] < 0.25 * before["ece_true"]
    assert abs(after["calibration_in_the_large"]) < 0.01


def test_floor_and_cap_are_applied() -> None:
    raw, y, _ = portfolio(2_000, seed=4)
    setting = CalibrationSettings(method="none", pd_floor=0.01, pd_cap=0.2)
    out = fit_calibrator(raw, y, setting).predict([0.0, 0.005, 0.05, 0.5, 1.0])
    np.testing.assert_array_equal(out, [0.01, 0.01, 0.05, 0.2, 0.2])
    # isotonic: the lowest block of the fit has no defaults, so its rate 0 is floored to 0.03%
    isotonic = fitted("isotonic")
    assert isotonic.predict_uncapped([0.0])[0] == 0.0
    assert isotonic.predict([0.0])[0] == pytest.approx(0.0003)
    assert fitted("platt").predict([1.0])[0] <= 0.9999


@settings(max_examples=60, deadline=None)
@given(
    raw=arrays(np.float64, st.integers(2, 40), elements=st.floats(0.0, 1.0, allow_nan=False)),
    method=st.sampled_from(["isotonic", "platt", "none"]),
)
def test_predict_never_falls_when_raw_pd_rises(raw: np.ndarray, method: str) -> None:
    ordered = np.sort(raw)
    out = fitted(method).predict(ordered)
    assert np.all(np.diff(out) >= 0)
    assert np.all((out >= 0.0003) & (out <= 0.9999))


def test_auto_picks_the_lowest_cross_validated_log_loss() -> None:
    raw, y, _ = portfolio(4_000, seed=1)
    calibrator = fitted("auto")
    losses = calibrator.candidate_log_loss
    assert set(losses) == {"none", "platt", "isotonic"}
    assert calibrator.method == min(losses, key=losses.__getitem__)
    assert calibrator.selection == "auto"
    assert losses["none"] > min(losses.values())  # the raw PDs are clearly off
    # the chosen map is refitted on every row
    again = fit_calibrator(raw, y, CalibrationSettings(method=calibrator.method))
    np.testing.assert_array_equal(again.predict(PROBE), calibrator.predict(PROBE))


def test_auto_picks_isotonic_where_no_sigmoid_fits() -> None:
    # the true PD is a step in the raw PD: monotone, but no a * logit(p) + b can follow it
    rng = np.random.default_rng(7)
    raw = rng.random(6_000)
    true_pd = np.where(raw < 0.5, 0.02, 0.3)
    y = (rng.random(raw.size) < true_pd).astype(float)
    calibrator = fit_calibrator(raw, y, seed=1)
    assert calibrator.method == "isotonic"
    assert calibrator.candidate_log_loss["isotonic"] < calibrator.candidate_log_loss["platt"] - 0.01


def test_auto_keeps_raw_pds_that_are_already_calibrated() -> None:
    rng = np.random.default_rng(8)
    true_pd = rng.beta(1, 12, 6_000)
    y = (rng.random(true_pd.size) < true_pd).astype(float)
    calibrator = fit_calibrator(true_pd, y, CalibrationSettings(auto_candidates=("none", "isotonic")))
    assert calibrator.method == "none"  # isotonic overfits; out of fold it loses


def test_auto_is_deterministic_for_a_seed() -> None:
    raw, y, _ = portfolio(3_000, seed=9)
    first = fit_calibrator(raw, y, seed=11).to_dict()
    assert fit_calibrator(raw, y, seed=11).to_dict() == first


def test_ece_is_near_zero_when_calibrated_and_large_when_biased() -> None:
    rng = np.random.default_rng(10)
    true_pd = rng.beta(1, 12, 100_000)
    y = (rng.random(true_pd.size) < true_pd).astype(float)
    calibrated = calibration_metrics(true_pd, y, true_pd)
    assert calibrated["ece"] < 0.004
    assert calibrated["ece_true"] == 0.0
    assert calibrated["mae_true"] == 0.0
    biased = calibration_metrics(np.minimum(1.5 * true_pd, 1.0), y, true_pd)
    assert biased["ece"] > 0.03
    assert biased["ece_true"] > 0.03
    assert biased["calibration_in_the_large"] > 0.03


def test_ece_and_mae_by_hand() -> None:
    pd_ = np.array([0.1, 0.1, 0.3, 0.3])
    y = np.array([0, 0, 1, 0])
    truth = np.array([0.1, 0.2, 0.3, 0.1])
    out = calibration_metrics(pd_, y, truth, bins=2)
    # bins {0.1, 0.1} (rate 0) and {0.3, 0.3} (rate 0.5): gaps 0.1 and 0.2, equal weights
    assert out["ece"] == pytest.approx(0.15)
    assert out["mce"] == pytest.approx(0.2)
    # against the truth: gaps |0.1 - 0.15| and |0.3 - 0.2|
    assert out["ece_true"] == pytest.approx(0.075)
    assert out["mae_true"] == pytest.approx((0 + 0.1 + 0 + 0.2) / 4)
    assert out["brier"] == pytest.approx((0.01 + 0.01 + 0.49 + 0.09) / 4)
    assert out["log_loss"] == pytest.approx(log_loss(y, pd_))
    json.dumps(out, allow_nan=False)


def test_bad_inputs_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"pd_raw must lie in \[0, 1\]"):
        fit_calibrator([0.1, np.nan, 0.2], [0, 1, 0])
    with pytest.raises(ValueError, match="defaults and non-defaults"):
        fit_calibrator([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="differ in length"):
        calibration_metrics([0.1, 0.2], [0, 1, 1])
    with pytest.raises(ValueError, match="pd_raw must lie"):
        fitted("platt").predict([1.5])
    with pytest.raises(ValidationError, match="pd_floor"):
        CalibrationSettings(pd_floor=0.5, pd_cap=0.4)
    with pytest.raises(ValidationError, match="extra"):
        CalibrationSettings(metod="platt")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="format"):
        Calibrator.from_dict({"method": "none", "pd_floor": 0.0, "pd_cap": 1.0})
    with pytest.raises(ValueError, match="non-decreasing"):
        Calibrator(
            method="isotonic", pd_floor=0.0, pd_cap=1.0, x_thresholds=(0.1, 0.2), y_thresholds=(0.5, 0.1)
        )
    with pytest.raises(ValueError, match="slope"):
        Calibrator(method="platt", pd_floor=0.0, pd_cap=1.0, slope=-1.0)
