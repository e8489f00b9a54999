"""Leakage guards: columns that cannot be known at application time, and too-good single features."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import TRUE_PD_COLUMN, DatasetSpec
from scoring.data.config import LeakageConfig


class SuspectedLeakError(ValueError):
    """A feature ranks defaults too well on its own, and params say to stop on that."""


def with_leaky_columns_dropped(spec: DatasetSpec, columns: list[str], config: LeakageConfig) -> DatasetSpec:
    """The spec with post-application columns (and any ground-truth column) added to its drops."""
    leaky = [c for c in (*config.post_application_columns, TRUE_PD_COLUMN) if c in columns]
    drops = tuple(dict.fromkeys([*spec.drop_columns, *leaky]))
    return DatasetSpec(**{**spec.__dict__, "drop_columns": drops})


def _encoded(column: pd.Series, y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A column as one number per row: numbers as they are, categories by their default rate."""
    if isinstance(column.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(column.dtype):
        keys = column.astype(object).where(column.notna(), "<missing>").astype(str)
        rates = pd.Series(y, index=column.index).groupby(keys.to_numpy()).mean()
        return np.asarray(keys.map(rates).to_numpy(dtype=np.float64), dtype=np.float64)
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).all():
        return np.zeros(len(values))
    # Missing values rank below every observed one: missingness itself may carry the leak.
    return np.asarray(np.where(np.isnan(values), np.nanmin(values) - 1.0, values), dtype=np.float64)


def single_feature_auc(matrix: pd.DataFrame, y: npt.ArrayLike) -> dict[str, float]:
    """Per feature, the AUC of the feature alone, orientation-free (max of AUC and 1 - AUC)."""
    # Imported here: the validate stage imports this module for the column drops only.
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(y, dtype=np.float64)
    if not 0 < labels.sum() < len(labels):
        return {}
    out: dict[str, float] = {}
    for name in matrix.columns:
        auc = float(roc_auc_score(labels, _encoded(matrix[name], labels)))
        out[str(name)] = round(max(auc, 1.0 - auc), 6)
    return out


def leakage_report(matrix: pd.DataFrame, y: npt.ArrayLike, config: LeakageConfig) -> dict[str, Any]:
    """Single-feature AUCs on train and the features above the threshold (suspected leaks)."""
    aucs = single_feature_auc(matrix, y)
    suspected = sorted(name for name, auc in aucs.items() if auc > config.max_single_feature_auc)
    report = {
        "threshold": config.max_single_feature_auc,
        "suspected_leaks": suspected,
        "n_suspected": len(suspected),
        "max_single_feature_auc": max(aucs.values(), default=None),
        "single_feature_auc": dict(sorted(aucs.items(), key=lambda kv: -kv[1])),
    }
    if suspected and config.stop_on_suspected_leak:
        listed = ", ".join(f"{name} (AUC {aucs[name]:.3f})" for name in suspected)
        raise SuspectedLeakError(
            f"suspected leakage: {listed} rank defaults above {config.max_single_feature_auc} on their own; "
            "drop them (data.file.drop_columns) or list them in validate.leakage.post_application_columns"
        )
    return report
