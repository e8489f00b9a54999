"""Population stability: how far a column's distribution moved between two periods.

PSI = sum over bins of (recent share - reference share) * ln(recent share / reference share).
Numeric columns are cut at the reference period's quantiles; categorical columns by level;
missing values are a bin of their own in both, since a change in missingness is a shift too.
Usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a significant one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.data.config import DriftConfig

# Shares of empty bins are floored so the logarithm stays finite; small enough not to
# dominate a real shift.
SHARE_FLOOR = 1e-4


def _shares(counts: pd.Series) -> np.ndarray:
    total = counts.sum()
    shares = counts.to_numpy(dtype=np.float64) / total if total else np.zeros(len(counts))
    return np.maximum(shares, SHARE_FLOOR)


def psi(reference: pd.Series, recent: pd.Series, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference``."""
    if pd.api.types.is_numeric_dtype(reference.dtype) and not pd.api.types.is_bool_dtype(reference.dtype):
        ref = pd.to_numeric(reference).to_numpy(dtype=np.float64, na_value=np.nan)
        new = pd.to_numeric(recent).to_numpy(dtype=np.float64, na_value=np.nan)
        observed = ref[~np.isnan(ref)]
        cuts = np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1]) if observed.size else np.empty(0)
        inner = np.unique(cuts)
        # bin i holds values in (inner[i-1], inner[i]]; missing values are bin -1
        ref_bins = np.where(np.isnan(ref), -1, np.searchsorted(inner, ref, side="left"))
        new_bins = np.where(np.isnan(new), -1, np.searchsorted(inner, new, side="left"))
        labels: list[Any] = [*range(len(inner) + 1), -1]
        ref_counts = pd.Series(ref_bins).value_counts().reindex(labels, fill_value=0)
        new_counts = pd.Series(new_bins).value_counts().reindex(labels, fill_value=0)
    else:
        ref_levels = reference.astype(object).where(reference.notna(), "<missing>").astype(str)
        new_levels = recent.astype(object).where(recent.notna(), "<missing>").astype(str)
        labels = sorted(set(ref_levels) | set(new_levels))
        ref_counts = ref_levels.value_counts().reindex(labels, fill_value=0)
        new_counts = new_levels.value_counts().reindex(labels, fill_value=0)
    expected, actual = _shares(ref_counts), _shares(new_counts)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def flag(value: float, config: DriftConfig) -> str:
    if value >= config.significant:
        return "significant"
    if value >= config.moderate:
        return "moderate"
    return "stable"


def drift_report(frame: pd.DataFrame, spec: DatasetSpec, config: DriftConfig) -> dict[str, Any]:
    """PSI of every candidate feature column, the latest ``recent_months`` against all earlier months.

    Without a date column there is no time to compare over, and the report says so.
    """
    if spec.date_column is None or spec.date_column not in frame.columns or frame.empty:
        return {"available": False, "reason": "no application date column"}
    dates = pd.to_datetime(frame[spec.date_column])
    months = dates.dt.year * 12 + dates.dt.month - 1
    cutoff = int(months.max()) - config.recent_months + 1
    recent = (months >= cutoff).to_numpy()
    if recent.all() or not recent.any():
        return {"available": False, "reason": "all rows fall in one period"}
    columns = [c for c in frame.columns if c not in spec.non_feature_columns]
    per_column: dict[str, dict[str, Any]] = {}
    for column in columns:
        value = psi(frame.loc[~recent, column], frame.loc[recent, column], bins=config.bins)
        per_column[str(column)] = {"psi": round(value, 6), "flag": flag(value, config)}
    flags = [entry["flag"] for entry in per_column.values()]
    return {
        "available": True,
        "reference_rows": int((~recent).sum()),
        "recent_rows": int(recent.sum()),
        "recent_from": f"{cutoff // 12:04d}-{cutoff % 12 + 1:02d}",
        "max_psi": max((e["psi"] for e in per_column.values()), default=0.0),
        "n_moderate": flags.count("moderate"),
        "n_significant": flags.count("significant"),
        "columns": per_column,
    }
