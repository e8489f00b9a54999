"""Score every split with the trained model and measure it, against the truth where there is one."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.core.contract import TRUE_PD_COLUMN, DatasetSpec
from scoring.data.split import LABELLED_PARTS
from scoring.models.model import PDModel
from scoring.reporting.metrics import calibration_table, discrimination_metrics, roc_points

logger = logging.getLogger(__name__)

PLOTTED_PARTS = ("test", "oot")


@dataclass
class EvaluationResult:
    metrics: dict[str, dict[str, Any]]
    scores: pd.DataFrame
    roc: dict[str, pd.DataFrame]
    calibration: dict[str, pd.DataFrame]


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evaluate_model(
    model: PDModel,
    parts: dict[str, pd.DataFrame],
    spec: DatasetSpec,
    truth: pd.DataFrame | None = None,
    calibration_bins: int = 10,
) -> EvaluationResult:
    """Metrics per labelled split; PDs for every row of every split.

    With a truth file (synthetic data), each split also gets the AUC and Brier score of the
    true default probability on the same rows: the ceiling any model could reach.
    """
    truth_map: pd.Series | None = None
    if truth is not None and len(truth):
        truth_map = truth.set_index("application_id")[TRUE_PD_COLUMN]

    metrics: dict[str, dict[str, Any]] = {}
    score_frames = []
    roc: dict[str, pd.DataFrame] = {}
    calibration: dict[str, pd.DataFrame] = {}
    for name, frame in parts.items():
        if frame.empty:
            continue
        pd_values = model.predict_pd(frame)
        score_frames.append(
            pd.DataFrame({spec.id_column: frame[spec.id_column].to_numpy(), "split": name, "pd": pd_values})
        )
        if name not in LABELLED_PARTS:
            continue
        y = pd.to_numeric(frame[spec.target_column]).to_numpy(dtype=np.float64)
        entry: dict[str, Any] = discrimination_metrics(y, pd_values)
        if truth_map is not None:
            true_pd = truth_map.reindex(frame[spec.id_column].astype(str)).to_numpy(dtype=np.float64)
            if np.isnan(true_pd).any():
                raise ValueError(f"truth file lacks {int(np.isnan(true_pd).sum())} ids of split '{name}'")
            ceiling = float(roc_auc_score(y, true_pd)) if 0 < y.sum() < len(y) else float("nan")
            entry["true_pd_auc"] = ceiling
            entry["auc_gap_to_truth"] = ceiling - entry["auc"]
            entry["true_pd_brier"] = float(brier_score_loss(y, true_pd))
        metrics[name] = {k: _clean(v) for k, v in entry.items()}
        if name in PLOTTED_PARTS:
            roc[name] = roc_points(y, pd_values)
            calibration[name] = calibration_table(y, pd_values, bins=calibration_bins)
        logger.info("%s: AUC %.4f on %d rows", name, entry["auc"], len(frame))
    scores = pd.concat(score_frames, ignore_index=True) if score_frames else pd.DataFrame()
    return EvaluationResult(metrics=metrics, scores=scores, roc=roc, calibration=calibration)


def plot_curves(result: EvaluationResult) -> dict[str, Any]:
    """ROC and calibration figures for the plotted splits (matplotlib Figures, keyed by name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, points in result.roc.items():
        auc = result.metrics[name]["auc"]
        ax.plot(points["fpr"], points["tpr"], label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    figures["roc"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for name, table in result.calibration.items():
        ax.plot(table["mean_pd"], table["observed_rate"], marker="o", label=name)
        top = max(top, float(table["mean_pd"].max()), float(table["observed_rate"].max()))
    ax.plot([0, top], [0, top], linestyle=":", color="grey")
    ax.set(xlabel="mean predicted PD", ylabel="observed default rate", title="Calibration (PD deciles)")
    ax.legend(loc="upper left")
    figures["calibration"] = fig
    return figures
