"""Training the gradient-boosted challenger with early stopping on the validation split."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb

from scoring.config import XGBoostConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    booster: xgb.Booster
    best_iteration: int
    best_valid_logloss: float
    n_trees: int


def _labels(y: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(y, errors="coerce")
    if values.isna().any() or not values.isin([0, 1]).all():
        raise ValueError(
            f"{name}: target must be 0 or 1 on every training row; got {sorted(values.unique())[:5]}"
        )
    if values.nunique() < 2:
        raise ValueError(f"{name}: target has a single class ({int(values.iloc[0])}); need both 0 and 1")
    return values.to_numpy(dtype=np.float64)


def train_xgboost(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: XGBoostConfig,
    seed: int,
) -> TrainResult:
    """Fit a binary logistic booster; stop when validation log loss stops improving.

    Class imbalance is left alone (no ``scale_pos_weight``): re-weighting distorts the
    probabilities, and a PD model is judged on them, not only on ranking.
    The returned booster is sliced to the best iteration, so every consumer predicts with
    the same trees without having to know about early stopping.
    """
    dtrain = xgb.DMatrix(X_train, label=_labels(y_train, "train"), enable_categorical=True)
    dvalid = xgb.DMatrix(X_valid, label=_labels(y_valid, "valid"), enable_categorical=True)
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["auc", "logloss"],
        "tree_method": "hist",
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "reg_lambda": config.reg_lambda,
        "reg_alpha": config.reg_alpha,
        "max_cat_to_onehot": config.max_cat_to_onehot,
        "nthread": config.n_jobs,
        "seed": seed,
    }
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=config.n_estimators,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=config.early_stopping_rounds,
        evals_result=history,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    sliced = booster[: best + 1]
    logloss = history["valid"]["logloss"][best]
    logger.info("xgboost: best iteration %d of %d, valid logloss %.5f", best, config.n_estimators, logloss)
    return TrainResult(
        booster=sliced, best_iteration=best, best_valid_logloss=float(logloss), n_trees=best + 1
    )
