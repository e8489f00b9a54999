"""From PD to decision: calibration, grades, policy and limits for a set of applications.

:func:`fit_risk_layer` fits the calibrator and the master scale on held-out predictions
(out-of-fold over train+valid, or the validation split; see params train.fit_on);
:func:`assess` applies them with the credit policy and the limit rules to any split and
measures the result against outcomes (and the truth, for the synthetic portfolio).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.calibration import Calibrator, calibration_metrics, fit_calibrator
from scoring.config import CalibrateConfig
from scoring.grades import MasterScale, fit_master_scale, grade_table, validation_tests
from scoring.limits import LimitSettings, limit_values, portfolio_view, suggested_limits
from scoring.policy import (
    DECLINE,
    REFER,
    PolicySettings,
    Table,
    decide,
    decision_values,
    knock_out_codes,
    knock_out_reasons,
    max_ltv_for,
)


@dataclass(frozen=True)
class RiskLayer:
    calibrator: Calibrator
    scale: MasterScale


def fit_risk_layer(pd_raw: npt.ArrayLike, y: npt.ArrayLike, config: CalibrateConfig, seed: int) -> RiskLayer:
    """Calibrator and master scale, both fitted on the same held-out labelled rows."""
    calibrator = fit_calibrator(pd_raw, y, config.calibration, seed)
    scale = fit_master_scale(calibrator.predict(pd_raw), y, config.master_scale)
    return RiskLayer(calibrator, scale)


@dataclass
class Assessment:
    decisions: pd.DataFrame  # per row: pd, grade, decision, policy_reasons, limits...
    grade_table: pd.DataFrame
    report: dict[str, Any]


def decide_and_limit(
    applications: pd.DataFrame,
    pd_raw: npt.ArrayLike,
    layer: RiskLayer,
    policy: PolicySettings,
    limits: LimitSettings,
) -> pd.DataFrame:
    """Per application: calibrated PD, grade, decision with policy reasons, limit and its constraint."""
    pd_cal = layer.calibrator.predict(pd_raw)
    grades = layer.scale.grade(pd_cal)
    decisions = decide(grades, knock_out_reasons(applications, policy), policy)
    central = np.asarray(layer.scale.central_pd, dtype=np.float64)
    limit_frame = suggested_limits(
        applications, pd_cal, grades, decisions, limits, max_ltv_for(applications, policy), grade_pd=central
    )
    out = pd.DataFrame({"pd": pd_cal, "grade": grades}, index=applications.index)
    out = pd.concat(
        [out, decisions.set_index(applications.index), limit_frame.set_index(applications.index)], axis=1
    )
    return out


def risk_values(
    applications: Table,
    pd_raw: npt.ArrayLike,
    layer: RiskLayer,
    policy: PolicySettings,
    limits: LimitSettings,
) -> dict[str, npt.NDArray[Any]]:
    """:func:`decide_and_limit` as arrays by column, for a DataFrame or arrays by column.

    Keys: ``pd``, ``grade``, ``decision`` and ``policy_reasons`` (object arrays of text), and
    the limit columns of :func:`scoring.limits.limit_values` (``suggested_limit``,
    ``binding_constraint``, ...). The same values as :func:`decide_and_limit`, without frames:
    the scorer's path.
    """
    pd_cal = layer.calibrator.predict(pd_raw)
    grades = layer.scale.grade(pd_cal)
    market = max_ltv_for(applications, policy)
    decision, reasons = decision_values(grades, knock_out_codes(applications, policy, market), policy)
    codes = np.where(decision == DECLINE, 2, np.where(decision == REFER, 1, 0))  # positions in DECISIONS
    central = np.asarray(layer.scale.central_pd, dtype=np.float64)
    limit = limit_values(applications, pd_cal, grades, codes, limits, market, grade_pd=central, coded=True)
    return {"pd": pd_cal, "grade": grades, "decision": decision, "policy_reasons": reasons, **limit}


def assess(
    applications: pd.DataFrame,
    pd_raw: npt.ArrayLike,
    y: npt.ArrayLike,
    layer: RiskLayer,
    config: CalibrateConfig,
    policy: PolicySettings,
    limits: LimitSettings,
    true_pd: npt.ArrayLike | None = None,
) -> Assessment:
    """Decisions for every row, the grade table, and the calibration and concentration tests."""
    rows = decide_and_limit(applications, pd_raw, layer, policy, limits)
    labels = np.asarray(y, dtype=np.float64)
    pd_cal = rows["pd"].to_numpy()
    report: dict[str, Any] = {
        "raw": calibration_metrics(np.asarray(pd_raw, dtype=np.float64), labels, true_pd),
        "calibrated": calibration_metrics(pd_cal, labels, true_pd),
        "tests": validation_tests(pd_cal, labels, layer.scale, config.tests),
        "portfolio": portfolio_view(
            rows[["decision", "policy_reasons"]], rows, rows["grade"].to_numpy(), labels
        ),
    }
    return Assessment(rows, grade_table(pd_cal, labels, layer.scale), report)
