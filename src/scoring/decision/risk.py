"""From PD to decision: calibration, grades, policy and limits for a set of applications.

:func:`fit_risk_layer` fits the calibrator and the master scale on held-out predictions
(out-of-fold over train+valid, or the validation split; see params train.fit_on);
:func:`assess` applies them with the credit policy and the limit rules to any split and
measures the result against outcomes (and the truth, for the synthetic portfolio).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.decision.config import CalibrateConfig
from scoring.decision.grades import MasterScale, fit_master_scale, grade_table, validation_tests
from scoring.decision.limits import (
    BINDING_DTI,
    BINDING_LTV,
    LimitSettings,
    constraint_scope,
    limit_frame,
    limit_values,
    portfolio_view,
)
from scoring.decision.policy import (
    DECLINE,
    KO_LTV_MAX,
    REFER,
    PolicySettings,
    Table,
    decision_values,
    knock_out_codes,
    knock_out_scope,
    max_ltv_for,
)
from scoring.models.calibration import Calibrator, calibration_metrics, fit_calibrator

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RiskLayer:
    calibrator: Calibrator
    scale: MasterScale


@dataclass(frozen=True)
class RuleScope:
    """Which knock-out rules and limit constraints a dataset's columns can run.

    The auto-loan contract's data runs them all; a bring-your-own file runs those whose
    columns it has (after ``data.file.roles`` mapped its names onto the contract's). The
    scope is a function of the columns the model reads, so the pipeline, the exported
    model and every report agree on it. ``None`` in the functions below means every rule.
    """

    knock_outs: tuple[str, ...]
    knock_outs_off: dict[str, tuple[str, ...]]
    constraints: tuple[str, ...]
    constraints_off: dict[str, tuple[str, ...]]

    @classmethod
    def for_columns(cls, columns: Collection[str], policy: PolicySettings) -> RuleScope:
        rules, rules_off = knock_out_scope(columns, policy)
        constraints, constraints_off = constraint_scope(columns)
        return cls(rules, rules_off, constraints, constraints_off)

    @property
    def complete(self) -> bool:
        """Every rule and constraint is in force."""
        return not self.knock_outs_off and not self.constraints_off

    def describe(self) -> list[str]:
        """One line per switched-off rule or constraint, naming the columns it lacks."""
        lines = [
            f"knock-out rule {code} switched off: no column {', '.join(columns)}"
            for code, columns in self.knock_outs_off.items()
        ]
        lines += [
            f"limit constraint {name} switched off: no column {', '.join(columns)}"
            for name, columns in self.constraints_off.items()
        ]
        if BINDING_DTI not in self.constraints and BINDING_LTV not in self.constraints:
            lines.append(
                "no limit is suggested (binding constraint no_data): neither DTI nor LTV can be computed"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "knock_outs_in_force": list(self.knock_outs),
            "knock_outs_switched_off": {k: list(v) for k, v in self.knock_outs_off.items()},
            "limit_constraints_in_force": list(self.constraints),
            "limit_constraints_switched_off": {k: list(v) for k, v in self.constraints_off.items()},
            "notes": self.describe(),
        }


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
    scope: RuleScope | None = None,
) -> pd.DataFrame:
    """Per application: calibrated PD, grade, decision with policy reasons, limit and its constraint.

    ``scope``: the rules and constraints in force (:class:`RuleScope`); ``None`` = all. The frame
    of :func:`risk_values` (one computation of the five steps), on the applications' index.
    """
    values = risk_values(applications, pd_raw, layer, policy, limits, scope)
    index = applications.index
    head = pd.DataFrame(
        {
            "pd": values["pd"],
            "grade": values["grade"],
            "decision": pd.Series(values["decision"], index=index, dtype=str),
            "policy_reasons": pd.Series(values["policy_reasons"], index=index, dtype=str),
        },
        index=index,
    )
    return pd.concat([head, limit_frame(values, index)], axis=1)


def risk_values(
    applications: Table,
    pd_raw: npt.ArrayLike,
    layer: RiskLayer,
    policy: PolicySettings,
    limits: LimitSettings,
    scope: RuleScope | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """The five decision steps as arrays by column, for a DataFrame or arrays by column:
    calibrate, grade, knock-outs and grade cut-offs, limit (:func:`decide_and_limit` frames them).

    Keys: ``pd``, ``grade``, ``decision`` and ``policy_reasons`` (object arrays of text), and
    the limit columns of :func:`scoring.decision.limits.limit_values` (``suggested_limit``,
    ``binding_constraint``, ...). The same values as :func:`decide_and_limit`, without frames:
    the scorer's path.
    """
    pd_cal = layer.calibrator.predict(pd_raw)
    grades = layer.scale.grade(pd_cal)
    rules, constraints = (None, None) if scope is None else (scope.knock_outs, scope.constraints)
    market = _market_ltv(applications, policy, constraints, rules)
    decision, reasons = decision_values(grades, knock_out_codes(applications, policy, market, rules), policy)
    codes = np.where(decision == DECLINE, 2, np.where(decision == REFER, 1, 0))  # positions in DECISIONS
    central = np.asarray(layer.scale.central_pd, dtype=np.float64)
    limit = limit_values(
        applications,
        pd_cal,
        grades,
        codes,
        limits,
        market,
        grade_pd=central,
        coded=True,
        constraints=constraints,
    )
    return {"pd": pd_cal, "grade": grades, "decision": decision, "policy_reasons": reasons, **limit}


def _market_ltv(
    applications: Table,
    policy: PolicySettings,
    constraints: Collection[str] | None,
    rules: Collection[str] | None,
) -> FloatArray | None:
    """The market LTV cap per row, where an LTV rule or constraint is in force to read it."""
    wanted = (constraints is None or BINDING_LTV in constraints) or (rules is None or KO_LTV_MAX in rules)
    return max_ltv_for(applications, policy) if wanted else None


def assess(
    applications: pd.DataFrame,
    pd_raw: npt.ArrayLike,
    y: npt.ArrayLike,
    layer: RiskLayer,
    config: CalibrateConfig,
    policy: PolicySettings,
    limits: LimitSettings,
    true_pd: npt.ArrayLike | None = None,
    scope: RuleScope | None = None,
) -> Assessment:
    """Decisions for every row, the grade table, and the calibration and concentration tests."""
    rows = decide_and_limit(applications, pd_raw, layer, policy, limits, scope)
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
