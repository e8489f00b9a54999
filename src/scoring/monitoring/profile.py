"""The reference profile an exported model carries, and stability against it.

At export the champion scores its development rows; the profile freezes what monitoring compares
new months with: per model input, the bins (numeric: the reference deciles' cut points; category:
its levels, the rare ones pooled as ``<other>``) with each bin's share and the share missing; the
same for the score; the grade mix, the approval rate and the mean PD; and the development AUC on
held-out rows. Stored as JSON inside the artifact (``reference_profile.json``), so it is covered
by the manifest and verified with the model.

Population stability: ``PSI = sum((a - e) * ln(a / e))`` over the frozen bins, reference shares
``e`` and the month's shares ``a`` (empty bins floored at :data:`SHARE_FLOOR`); called CSI when
the column is a model input. optbinning's ``ScorecardMonitoring`` computes the same index with
its scorecard's own bins, but needs the fitted optbinning scorecard and the development data at
monitoring time; an exported model has neither, so the frozen bins live here (the arithmetic is
checked against optbinning's in tests/test_monitoring.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.frames import level_codes
from scoring.monitoring.stability import SHARE_FLOOR

PROFILE_VERSION = 1
MISSING = "<missing>"
OTHER = "<other>"
MAX_LEVELS = 50
MIN_LEVEL_SHARE = 0.005


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)


def numeric_bins(values: pd.Series, bins: int) -> dict[str, Any]:
    """Frozen quantile bins of a numeric column: inner cut points, shares per bin, share missing."""
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    observed = x[~np.isnan(x)]
    cuts = np.quantile(observed, np.linspace(0, 1, bins + 1)[1:-1]) if observed.size else np.empty(0)
    edges = [float(c) for c in np.unique(cuts)]
    entry: dict[str, Any] = {"kind": "numeric", "edges": edges}
    counts = _numeric_counts(x, entry)
    # bins: the len(edges) + 1 intervals, then missing
    entry["shares"] = (counts / max(len(x), 1)).tolist()
    return entry


def _numeric_codes(x: np.ndarray, entry: Mapping[str, Any]) -> np.ndarray:
    """Bin of each value (value in (edge[i-1], edge[i]]); the missing bin is the last."""
    edges = np.asarray(entry["edges"], dtype=np.float64)
    return np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, x, side="left"))


def _numeric_counts(x: np.ndarray, entry: Mapping[str, Any]) -> np.ndarray:
    """Counts per frozen bin, the missing bin last."""
    n_bins = len(entry["edges"]) + 2
    return np.bincount(_numeric_codes(x, entry), minlength=n_bins).astype(np.float64)


def _as_text(values: pd.Series) -> pd.Series:
    """Levels as text, missing as None (booleans and numbers held as categories included)."""
    text = values.astype(object)
    return text.where(values.notna(), None).map(lambda v: v if v is None else str(v))


def category_bins(values: pd.Series) -> dict[str, Any]:
    """Frozen levels of a categorical column (rare ones pooled), shares, the missing bin last."""
    text = _as_text(values)
    shares = text.value_counts(normalize=False, dropna=True) / max(len(text), 1)
    kept = [str(level) for level, share in shares.items() if share >= MIN_LEVEL_SHARE][:MAX_LEVELS]
    entry: dict[str, Any] = {"kind": "category", "levels": sorted(kept)}
    entry["shares"] = (_category_counts(values, entry) / max(len(values), 1)).tolist()
    return entry


def _category_codes(values: pd.Series, entry: Mapping[str, Any]) -> np.ndarray:
    """Level of each value; ``<other>`` (unseen or pooled levels) next to last, missing last."""
    levels = list(entry["levels"])
    codes = level_codes(values, levels)
    missing = values.isna().to_numpy()
    return np.where(missing, len(levels) + 1, np.where(codes < 0, len(levels), codes))


def _category_counts(values: pd.Series, entry: Mapping[str, Any]) -> np.ndarray:
    return np.bincount(_category_codes(values, entry), minlength=len(entry["levels"]) + 2).astype(np.float64)


def bin_codes(values: pd.Series, entry: Mapping[str, Any]) -> np.ndarray:
    """The frozen bin of every value (indexes into the entry's shares)."""
    if entry["kind"] == "numeric":
        x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(_numeric_codes(x, entry), dtype=np.int64)
    return np.asarray(_category_codes(values, entry), dtype=np.int64)


def n_bins(entry: Mapping[str, Any]) -> int:
    return len(entry["shares"])


def bin_counts(values: pd.Series, entry: Mapping[str, Any]) -> np.ndarray:
    """Counts of ``values`` in a profile entry's frozen bins (same order as its shares)."""
    return np.bincount(bin_codes(values, entry), minlength=n_bins(entry)).astype(np.float64)


def stability_by_group(
    values: pd.Series, groups: np.ndarray, n_groups: int, entry: Mapping[str, Any]
) -> np.ndarray:
    """PSI of each group's values (``groups``: 0 .. n_groups - 1) against the entry, in one pass."""
    k = n_bins(entry)
    counts = np.bincount(groups * k + bin_codes(values, entry), minlength=n_groups * k).reshape(n_groups, k)
    totals = counts.sum(axis=1, keepdims=True)
    actual = np.maximum(counts / np.maximum(totals, 1), SHARE_FLOOR)
    expected = np.maximum(np.asarray(entry["shares"], dtype=np.float64), SHARE_FLOOR)
    out = np.sum((actual - expected) * np.log(actual / expected), axis=1)
    return np.where(totals[:, 0] > 0, out, np.nan)


def psi_from_shares(expected: Iterable[float], actual: Iterable[float]) -> float:
    e = np.maximum(np.asarray(list(expected), dtype=np.float64), SHARE_FLOOR)
    a = np.maximum(np.asarray(list(actual), dtype=np.float64), SHARE_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def stability_index(values: pd.Series, entry: Mapping[str, Any]) -> float:
    """PSI (CSI for a model input) of ``values`` against a frozen profile entry."""
    counts = bin_counts(values, entry)
    total = counts.sum()
    if total == 0:
        return float("nan")
    return psi_from_shares(entry["shares"], counts / total)


def build_profile(
    raw: pd.DataFrame,
    scored: pd.DataFrame,
    input_columns: Iterable[str],
    date_column: str | None,
    bins: int = 10,
    development_auc: float | None = None,
) -> dict[str, Any]:
    """The reference profile of a model from its development rows.

    ``raw``: the rows as the model reads them (its input columns, the date column when there is
    one); ``scored``: the scorer's output for the same rows, same order (pd, score, grade, decision).
    """
    if len(raw) != len(scored):
        raise ValueError(
            f"profile: {len(raw)} rows of inputs but {len(scored)} scored rows; expected the same rows"
        )
    features: dict[str, Any] = {}
    for column in input_columns:
        values = raw[column]
        features[column] = numeric_bins(values, bins) if _is_numeric(values) else category_bins(values)
    window: dict[str, Any] = {"first_month": None, "last_month": None}
    if date_column is not None and date_column in raw.columns:
        months = pd.to_datetime(raw[date_column]).dt.to_period("M")
        window = {"first_month": str(months.min()), "last_month": str(months.max())}
    grades = scored["grade"].astype(int)
    decisions = scored["decision"].astype(str)
    return {
        "version": PROFILE_VERSION,
        "n_rows": len(raw),
        "window": window,
        "bins": bins,
        "features": features,
        "score": numeric_bins(scored["score"], bins),
        "grade_mix": {str(g): float(s) for g, s in grades.value_counts(normalize=True).sort_index().items()},
        "decision_mix": {
            str(d): float(s) for d, s in decisions.value_counts(normalize=True).sort_index().items()
        },
        "approval_rate": float((decisions == "approve").mean()),
        "mean_pd": float(scored["pd"].mean()),
        "development_auc": development_auc,
    }
