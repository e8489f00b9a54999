"""The calibrate stage's work: the risk layer on held-out predictions, assessed on test and out-of-time.

:func:`calibrate_champion` fits the PD calibrator and the master scale on the train stage's
held-out champion predictions (:func:`scoring.decision.risk.fit_risk_layer`), then applies them
with the credit policy and the limit rules to each assessed split (:func:`scoring.decision.risk.assess`)
and gathers what the stage writes: the headline metrics, the full report and the grade tables.
It takes frames, models and settings and returns them; reading and writing the files is the
stage script's (``pipelines/calibrate.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from scoring.core.contract import DatasetSpec
from scoring.decision.config import CalibrateConfig
from scoring.decision.grades import flat_metrics
from scoring.decision.limits import LimitSettings, swap_set
from scoring.decision.policy import PolicySettings
from scoring.decision.risk import RiskLayer, RuleScope, assess, fit_risk_layer
from scoring.models.model import PDModel

logger = logging.getLogger(__name__)

ASSESSED = ("test", "oot")
"""The splits the risk layer is assessed on, in this order."""

HEADLINE_CALIBRATION = frozenset({"mean_pd", "default_rate", "ece", "brier", "log_loss"})
"""The calibrated-PD metrics of the assessment that go into the stage's metrics."""


def swap_pair(champion: str, candidates: Sequence[str], auc: Mapping[str, float]) -> tuple[str, str] | None:
    """The two models the swap set compares: the baseline (the first, simplest candidate) and
    the champion, or the best of the others when the baseline is champion; None with one model."""
    baseline = candidates[0]
    if champion != baseline:
        return baseline, champion
    others = [name for name in candidates[1:] if name in auc]
    if not others:
        return None
    return baseline, max(others, key=lambda name: (auc[name], -others.index(name)))


@dataclass
class ChampionCalibration:
    """What the calibrate stage writes.

    ``layer``: the calibrator and master scale (models/calibrator.json, models/master_scale.json);
    ``metrics``: the headline numbers (reports/calibration.json); ``report``: everything
    (reports/calibration_report.json); ``grade_tables``: split -> its grade table
    (reports/grades/grades_<split>.csv), for the assessed splits that have rows.
    """

    layer: RiskLayer
    scope: RuleScope
    metrics: dict[str, Any]
    report: dict[str, Any]
    grade_tables: dict[str, pd.DataFrame]


def calibrate_champion(
    held_out: pd.DataFrame,
    assessed: Mapping[str, pd.DataFrame],
    model: PDModel,
    champion_record: Mapping[str, Any],
    spec: DatasetSpec,
    config: CalibrateConfig,
    policy: PolicySettings,
    limits: LimitSettings,
    seed: int,
    swap_models: tuple[PDModel, PDModel] | None = None,
) -> ChampionCalibration:
    """Fit the risk layer on ``held_out`` and assess it on each frame of ``assessed``.

    ``held_out`` is the train stage's calibration set: the champion's uncalibrated log-odds
    (column ``champion``), ``target`` and ``split`` per row no model that scored it saw.
    ``assessed`` maps split name (:data:`ASSESSED`) -> its applications with outcomes; empty
    frames are skipped. ``model`` is the champion's PD model and ``champion_record`` the train
    stage's record of it (champion.json). ``swap_models`` are the two models of :func:`swap_pair`
    (``model.kind`` names each), compared on the test split; None: no swap set.
    """
    scope = RuleScope.for_columns(spec.role_columns(model.features.input_columns_), policy)
    for line in scope.describe():
        logger.warning("calibrate: %s", line)

    layer = fit_risk_layer(
        expit(held_out["champion"].to_numpy(dtype=np.float64)),
        held_out["target"].to_numpy(dtype=np.float64),
        config,
        seed,
    )
    metrics: dict[str, Any] = {
        "champion": champion_record["champion"],
        "n_grades": len(layer.scale.central_pd),
    }
    report: dict[str, Any] = {
        "calibrator": layer.calibrator.to_dict(),
        "master_scale": layer.scale.to_dict(),
        "fitted_on": {
            "rows": len(held_out),
            "by_split": {str(k): int(v) for k, v in held_out["split"].value_counts().sort_index().items()},
            "source": "out_of_fold" if champion_record.get("fit_on") == "train_valid" else "valid",
        },
        "rule_scope": scope.to_dict(),
    }
    grade_tables: dict[str, pd.DataFrame] = {}
    for name in ASSESSED:
        frame = assessed.get(name)
        if frame is None or frame.empty:
            continue
        y = frame[spec.target_column].to_numpy(dtype=np.float64)
        result = assess(frame, model.predict_pd(frame), y, layer, config, policy, limits, scope=scope)
        grade_tables[name] = result.grade_table
        report[name] = result.report
        calibrated, portfolio = result.report["calibrated"], result.report["portfolio"]
        metrics[name] = {
            "calibration": {k: calibrated[k] for k in calibrated if k in HEADLINE_CALIBRATION},
            "raw_ece": result.report["raw"]["ece"],
            "tests": flat_metrics(result.report["tests"]),
            "approval_rate": portfolio.get("approval_rate"),
            "refer_rate": portfolio.get("refer_rate"),
            "bad_rate_approved": portfolio.get("bad_rate_approved"),
        }
        if name == "test" and swap_models is not None:
            a, b = swap_models
            report["swap_set"] = {
                "a": a.kind,
                "b": b.kind,
                **swap_set(a.predict_pd(frame), b.predict_pd(frame), y, config.swap_set_approval_rate),
            }
    return ChampionCalibration(layer, scope, metrics, report, grade_tables)
