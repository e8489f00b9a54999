"""Discrimination and calibration figures of a PD model on one split."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import ks_2samp, norm, rankdata
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


@dataclass(frozen=True)
class AucEstimate:
    """AUC with its DeLong standard error and a two-sided confidence interval."""

    auc: float
    se: float
    low: float
    high: float
    level: float

    @property
    def gini(self) -> float:
        return 2.0 * self.auc - 1.0


@dataclass(frozen=True)
class AucDifference:
    """Paired DeLong comparison of two scores on the same rows: ``auc_a - auc_b``."""

    difference: float
    se: float
    low: float
    high: float
    p_value: float
    level: float


def _labels_scores(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.shape[1] != y.shape[0]:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} against {s.shape[1]}")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 with no nulls (drop unlabelled rows first)")
    if np.isnan(s).any():
        raise ValueError("scores must not be null")
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        raise ValueError(f"AUC needs both classes; got {n_pos} positives among {len(y)} rows")
    return y, s


def delong_covariance(y_true: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of one or more scores (rows of ``scores``) and the DeLong covariance of the AUCs.

    Higher scores are taken to mean the positive class (default). Ties count one half.
    """
    y, s = _labels_scores(y_true, scores)
    positive = y == 1.0
    x, z = s[:, positive], s[:, ~positive]
    m, n = x.shape[1], z.shape[1]
    tx = rankdata(x, axis=1)
    tz = rankdata(z, axis=1)
    t_all = rankdata(np.concatenate([x, z], axis=1), axis=1)
    aucs = (t_all[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    # Placement values: for a positive, the share of negatives below it; for a negative, the
    # share of positives above it.
    v_pos = (t_all[:, :m] - tx) / n
    v_neg = 1.0 - (t_all[:, m:] - tz) / m
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return np.asarray(aucs, dtype=np.float64), np.asarray(cov, dtype=np.float64)


def delong_ci(y_true: npt.ArrayLike, scores: npt.ArrayLike, level: float = 0.95) -> AucEstimate:
    """AUC of ``scores`` with a DeLong confidence interval (normal, clipped to [0, 1])."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    aucs, cov = delong_covariance(y_true, np.asarray(scores, dtype=np.float64)[np.newaxis, :])
    auc, se = float(aucs[0]), math.sqrt(max(float(cov[0, 0]), 0.0))
    half = float(norm.ppf(0.5 + level / 2.0)) * se
    return AucEstimate(auc=auc, se=se, low=max(0.0, auc - half), high=min(1.0, auc + half), level=level)


def delong_paired(
    y_true: npt.ArrayLike, scores_a: npt.ArrayLike, scores_b: npt.ArrayLike, level: float = 0.95
) -> AucDifference:
    """Paired DeLong test of ``AUC(a) - AUC(b)`` on the same rows, with a confidence interval."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    stacked = np.vstack([np.asarray(scores_a, dtype=np.float64), np.asarray(scores_b, dtype=np.float64)])
    aucs, cov = delong_covariance(y_true, stacked)
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1])
    se = math.sqrt(max(var, 0.0))
    half = float(norm.ppf(0.5 + level / 2.0)) * se
    # A zero standard error means identical rankings up to ties: no evidence of a difference.
    p_value = float(2.0 * norm.sf(abs(diff) / se)) if se > 0 else float(diff == 0)
    return AucDifference(diff, se, diff - half, diff + half, p_value, level)


@dataclass(frozen=True)
class PerformanceRow:
    model: str
    split: str
    n: int
    defaults: int
    auc: AucEstimate
    ks: float
    brier: float
    true_pd_auc: float | None = None


@dataclass(frozen=True)
class Comparison:
    split: str
    model_a: str
    model_b: str
    result: AucDifference


def assess_performance(
    outcomes: Mapping[str, npt.ArrayLike],
    scores: Mapping[str, Mapping[str, npt.ArrayLike]],
    champion: str,
    ceilings: Mapping[str, float] | None = None,
    level: float = 0.95,
) -> tuple[list[PerformanceRow], list[Comparison]]:
    """Per model and split: AUC with its DeLong interval, KS, Brier; the champion against the rest.

    ``outcomes`` maps split -> 0/1 labels; ``scores`` maps model -> split -> PDs on the same
    rows; ``ceilings`` optionally maps split -> the true PD's AUC (synthetic data only).
    """
    if champion not in scores:
        raise ValueError(f"champion {champion!r} has no scores; scored models are {sorted(scores)}")
    rows: list[PerformanceRow] = []
    comparisons: list[Comparison] = []
    for split, labels in outcomes.items():
        y = np.asarray(labels, dtype=np.float64)
        for model, by_split in scores.items():
            if split not in by_split:
                continue
            p = np.asarray(by_split[split], dtype=np.float64)
            rows.append(
                PerformanceRow(
                    model=model,
                    split=split,
                    n=len(y),
                    defaults=int(y.sum()),
                    auc=delong_ci(y, p, level),
                    ks=ks_statistic(y, p),
                    brier=float(np.mean((p - y) ** 2)),
                    true_pd_auc=None if ceilings is None else ceilings.get(split),
                )
            )
        for other, by_split in scores.items():
            if other == champion or split not in by_split or split not in scores[champion]:
                continue
            comparisons.append(
                Comparison(
                    split,
                    champion,
                    other,
                    delong_paired(y, scores[champion][split], by_split[split], level),
                )
            )
    return rows, comparisons
