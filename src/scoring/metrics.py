"""Discrimination and calibration figures of a PD model on one split."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score, roc_curve


def _checked(y_true: npt.ArrayLike, pd_: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(pd_, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels and PDs differ in length: {y.shape[0]} against {p.shape[0]}")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 with no nulls (drop unlabelled rows first)")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise ValueError("PDs must lie in [0, 1] with no nulls")
    return y, p


def ks_statistic(y_true: npt.ArrayLike, pd_: npt.ArrayLike) -> float:
    """Kolmogorov-Smirnov distance between the PD distributions of bads and goods."""
    y, p = _checked(y_true, pd_)
    return float(ks_2samp(p[y == 1], p[y == 0]).statistic)


def discrimination_metrics(y_true: npt.ArrayLike, pd_: npt.ArrayLike) -> dict[str, float]:
    """AUC, Gini, KS, Brier score, log loss, observed and predicted default rate, count.

    Ranking figures (AUC, Gini, KS) are NaN when the split holds a single class.
    """
    y, p = _checked(y_true, pd_)
    both = 0 < y.sum() < len(y)
    auc = float(roc_auc_score(y, p)) if both else float("nan")
    return {
        "n": len(y),
        "default_rate": float(y.mean()) if len(y) else float("nan"),
        "mean_pd": float(p.mean()) if len(y) else float("nan"),
        "auc": auc,
        "gini": 2.0 * auc - 1.0,
        "ks": ks_statistic(y, p) if both else float("nan"),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }


def roc_points(y_true: npt.ArrayLike, pd_: npt.ArrayLike, max_points: int = 200) -> pd.DataFrame:
    """ROC curve thinned to at most ``max_points`` points (for plots; AUC uses all rows)."""
    y, p = _checked(y_true, pd_)
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})


def calibration_table(y_true: npt.ArrayLike, pd_: npt.ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Observed default rate against mean PD in PD quantile bins."""
    y, p = _checked(y_true, pd_)
    order = np.argsort(p, kind="stable")
    groups = np.array_split(order, bins)
    rows = [
        {"bin": i + 1, "n": len(g), "mean_pd": float(p[g].mean()), "observed_rate": float(y[g].mean())}
        for i, g in enumerate(groups)
        if len(g)
    ]
    return pd.DataFrame(rows)
