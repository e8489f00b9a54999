"""Population stability (PSI) at the gate, and the leakage guards."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import DatasetSpec
from scoring.data.config import DriftConfig, LeakageConfig
from scoring.data.leakage import (
    SuspectedLeakError,
    leakage_report,
    single_feature_auc,
    with_leaky_columns_dropped,
)
from scoring.monitoring.stability import drift_report, flag, psi

RNG = np.random.default_rng(0)


def test_psi_is_near_zero_for_the_same_distribution_and_grows_with_a_shift() -> None:
    a, b = pd.Series(RNG.normal(size=20_000)), pd.Series(RNG.normal(size=20_000))
    assert psi(a, b) < 0.01
    moderate = psi(a, b + 0.4)
    large = psi(a, b + 1.0)
    assert 0.1 < moderate < large and large > 0.25


def test_psi_hand_computed_for_categories() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    new = pd.Series(["a"] * 80 + ["b"] * 20)
    expected = (0.8 - 0.5) * np.log(0.8 / 0.5) + (0.2 - 0.5) * np.log(0.2 / 0.5)
    assert psi(ref, new) == pytest.approx(expected)


def test_psi_sees_a_change_in_missingness() -> None:
    ref = pd.Series(RNG.normal(size=5000))
    new = ref.copy()
    new[:2000] = np.nan
    assert psi(ref, new) > 0.25


def test_flags_follow_the_usual_thresholds() -> None:
    config = DriftConfig()
    assert [flag(v, config) for v in (0.05, 0.1, 0.2, 0.25, 0.6)] == [
        "stable", "moderate", "moderate", "significant", "significant",
    ]  # fmt: skip


def test_drift_report_compares_recent_months_with_the_rest() -> None:
    dates = pd.date_range("2022-01-01", "2023-12-31", freq="D")
    n = len(dates)
    recent = dates >= "2023-07-01"
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "y": RNG.integers(0, 2, n),
            "date": dates,
            "stable": RNG.normal(size=n),
            "shifted": np.where(recent, RNG.normal(2, 1, n), RNG.normal(0, 1, n)),
        }
    )
    spec = DatasetSpec(id_column="id", target_column="y", date_column="date")
    report = drift_report(frame, spec, DriftConfig(recent_months=6))
    assert report["recent_from"] == "2023-07" and report["recent_rows"] == int(recent.sum())
    assert set(report["columns"]) == {"stable", "shifted"}  # ids, target and dates are not features
    assert report["columns"]["stable"]["flag"] == "stable"
    assert report["columns"]["shifted"]["flag"] == "significant"
    assert report["n_significant"] == 1
    no_date = drift_report(frame, DatasetSpec(id_column="id", target_column="y"), DriftConfig())
    assert no_date == {"available": False, "reason": "no application date column"}


def test_post_application_and_truth_columns_are_dropped() -> None:
    spec = DatasetSpec(id_column="id", target_column="y", drop_columns=("notes",))
    config = LeakageConfig(post_application_columns=["recovery_amount", "absent_column"])
    out = with_leaky_columns_dropped(spec, ["id", "y", "notes", "recovery_amount", "true_pd", "x"], config)
    assert out.drop_columns == ("notes", "recovery_amount", "true_pd")
    assert "x" not in out.non_feature_columns


def test_a_feature_that_is_the_outcome_is_flagged_and_can_stop() -> None:
    y = RNG.integers(0, 2, 3000)
    matrix = pd.DataFrame(
        {
            "noise": RNG.normal(size=3000),
            "leak": y + RNG.normal(0, 0.05, 3000),
            "inverted_leak": -y.astype(float),
            "category": pd.Categorical(np.where(y == 1, "bad", "good")),
        }
    )
    aucs = single_feature_auc(matrix, y)
    assert aucs["noise"] < 0.6 and aucs["leak"] > 0.99 and aucs["inverted_leak"] == 1.0
    report = leakage_report(matrix, y, LeakageConfig())
    assert report["suspected_leaks"] == ["category", "inverted_leak", "leak"]
    with pytest.raises(SuspectedLeakError, match=r"category \(AUC 1.000\), inverted_leak"):
        leakage_report(matrix, y, LeakageConfig(stop_on_suspected_leak=True))
