"""Discrimination metrics against known values."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.reporting.metrics import calibration_table, discrimination_metrics, ks_statistic, roc_points


def test_perfect_and_inverted_ranking() -> None:
    y = np.array([0, 0, 1, 1])
    assert discrimination_metrics(y, [0.1, 0.2, 0.8, 0.9])["auc"] == 1.0
    inverted = discrimination_metrics(y, [0.9, 0.8, 0.2, 0.1])
    assert inverted["auc"] == 0.0 and inverted["gini"] == -1.0


def test_hand_computed_auc_ks_brier() -> None:
    y = np.array([0, 1, 0, 1, 0])
    p = np.array([0.1, 0.4, 0.35, 0.8, 0.2])
    m = discrimination_metrics(y, p)
    # bad/good pairs ordered correctly: (0.4 > 0.1, 0.35, 0.2), (0.8 > all) -> 6/6
    assert m["auc"] == pytest.approx(1.0)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["default_rate"] == pytest.approx(0.4)
    y2 = np.array([0, 1, 0, 1])
    p2 = np.array([0.3, 0.2, 0.1, 0.4])  # pairs: (0.2>0.3 no, 0.2>0.1 yes, 0.4>both) -> 3/4
    assert discrimination_metrics(y2, p2)["auc"] == pytest.approx(0.75)
    assert ks_statistic(y2, p2) == pytest.approx(0.5)


def test_single_class_gives_nan_ranking_but_finite_brier() -> None:
    m = discrimination_metrics([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(m["auc"]) and np.isnan(m["ks"])
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.09) / 3)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        discrimination_metrics([0, 1], [0.5])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        discrimination_metrics([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match=r"PDs must lie in \[0, 1\]"):
        discrimination_metrics([0, 1], [0.5, 1.5])


def test_calibration_table_and_roc_points() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.3, 5000)
    y = (rng.uniform(size=5000) < p).astype(int)
    table = calibration_table(y, p, bins=5)
    assert table["n"].sum() == 5000
    assert (np.diff(table["mean_pd"]) > 0).all()
    assert np.abs(table["mean_pd"] - table["observed_rate"]).max() < 0.04
    roc = roc_points(y, p, max_points=50)
    assert len(roc) <= 50
    assert roc.iloc[0].tolist() == [0.0, 0.0] and roc.iloc[-1].tolist() == [1.0, 1.0]
