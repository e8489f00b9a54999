"""SHAP plots (matplotlib): imported only where plots are drawn."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.explain.reasons import BIAS
from scoring.explain.summary import global_importance


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _value_colours(values: pd.Series) -> npt.NDArray[np.float64]:
    """Feature values as percentile ranks in [0, 1] (NaN for missing or categorical)."""
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        return np.full(len(values), np.nan)
    numeric = values.astype(np.float64)
    return np.asarray(numeric.rank(pct=True).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def plot_beeswarm(
    contributions: pd.DataFrame, matrix: pd.DataFrame, max_features: int = 15, seed: int = 0
) -> Any:
    """Per top feature, one dot per row at its contribution, coloured by the feature's value rank."""
    plt = _pyplot()
    top = [d["feature"] for d in global_importance(contributions)[:max_features]]
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(top) + 1.5))
    rng = np.random.default_rng(seed)
    scatter = None
    for row, feature in enumerate(reversed(top)):
        x = contributions[feature].to_numpy(dtype=np.float64)
        colour = _value_colours(matrix[feature])
        y = row + rng.uniform(-0.3, 0.3, len(x))
        known = ~np.isnan(colour)
        ax.scatter(x[~known], y[~known], s=4, c="0.6", alpha=0.5, linewidths=0)
        scatter = ax.scatter(
            x[known], y[known], s=4, c=colour[known], cmap="coolwarm", vmin=0, vmax=1, alpha=0.6, linewidths=0
        )
    ax.set_yticks(range(len(top)), list(reversed(top)))
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel("contribution to log-odds of default (positive raises risk)")
    ax.set_title("Feature contributions (TreeSHAP / WoE terms), test split")
    if scatter is not None:
        bar = fig.colorbar(scatter, ax=ax, fraction=0.03, pad=0.01)
        bar.set_label("feature value (rank; grey = missing or categorical)")
    fig.tight_layout()
    return fig


def plot_dependence(contributions: pd.DataFrame, matrix: pd.DataFrame, feature: str) -> Any:
    """A feature's contribution against its value (numeric) or per level (categorical)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    values = matrix[feature]
    y = contributions[feature].to_numpy(dtype=np.float64)
    if isinstance(values.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(values.dtype):
        levels = values.astype(object).where(values.notna(), "(missing)").astype(str)
        order = levels.groupby(levels).size().sort_values(ascending=False).index[:30]
        data = [y[(levels == level).to_numpy()] for level in order]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(order) + 1), list(order), rotation=60, fontsize=7)
    else:
        x = values.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = np.isnan(x)
        ax.scatter(x[~missing], y[~missing], s=4, alpha=0.4, linewidths=0)
        if missing.any():
            note = f"{missing.sum()} rows missing (mean contribution {y[missing].mean():+.3f})"
            ax.set_title(note, fontsize=8)
        if np.nanmin(x) > 0 and np.nanmax(x) / max(np.nanmin(x[x > 0]), 1e-12) > 1e3:
            ax.set_xscale("log")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    ax.set_xlabel(feature)
    ax.set_ylabel("contribution to log-odds")
    fig.suptitle(f"Dependence: {feature}")
    fig.tight_layout()
    return fig


def plot_waterfall(
    contributions: pd.Series, title: str, max_features: int = 10, reasons: list[str] | None = None
) -> Any:
    """One applicant: from the base value (``bias``) through the largest contributions to logit(PD)."""
    plt = _pyplot()
    bias = float(contributions[BIAS])
    values = contributions.drop(BIAS)
    order = values.abs().sort_values(ascending=False, kind="stable").index
    shown = list(order[:max_features])
    rest = float(values[list(order[max_features:])].sum())
    labels = [*shown] + ([f"{len(order) - max_features} other features"] if len(order) > max_features else [])
    steps = [float(values[f]) for f in shown] + ([rest] if len(order) > max_features else [])
    fig, ax = plt.subplots(figsize=(7.5, 0.4 * len(steps) + 2.2))
    start = bias
    for i, step in enumerate(steps):
        y = len(steps) - i
        ax.barh(y, step, left=start, color="#c0392b" if step > 0 else "#2874a6", height=0.7)
        side = "left" if step >= 0 else "right"
        ax.text(start + step, y, f" {step:+.3f} ", va="center", ha=side, fontsize=7)
        start += step
    path = np.cumsum([bias, *steps])
    low, high = float(path.min()), float(path.max())
    pad = 0.2 * max(high - low, 0.1)
    ax.set_xlim(low - pad, high + pad)
    ax.set_yticks(range(len(steps), 0, -1), labels, fontsize=8)
    ax.axvline(bias, color="0.5", linestyle=":", linewidth=0.8)
    ax.axvline(start, color="0.2", linestyle="--", linewidth=0.8)
    p = 1.0 / (1.0 + np.exp(-start))
    ax.set_xlabel(f"log-odds of default: base {bias:+.3f} -> {start:+.3f} (model PD {p:.2%})")
    subtitle = f"\nreasons: {', '.join(reasons)}" if reasons else ""
    ax.set_title(title + subtitle, fontsize=9)
    fig.tight_layout()
    return fig
