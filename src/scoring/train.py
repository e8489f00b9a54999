"""Training: the XGBoost challenger, the scorecard baseline, and the choice of champion."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xgboost as xgb

from scoring.config import ChampionConfig, ScorecardConfig, XGBoostConfig

if TYPE_CHECKING:
    from scoring.scorecard import ScorecardModel

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


def with_tuned_parameters(base: XGBoostConfig, tuned: Mapping[str, object]) -> tuple[XGBoostConfig, bool]:
    """The challenger's settings: params, overridden by the tune stage's best parameters if any."""
    best = tuned.get("best_params") or {}
    if not isinstance(best, Mapping) or not best:
        return base, False
    unknown = sorted(set(best) - set(XGBoostConfig.model_fields))
    if unknown:
        raise ValueError(f"tuned parameters {unknown} are not XGBoost settings; rerun the tune stage")
    return base.model_copy(update=dict(best)), True


def monotone_constraints(
    matrix: pd.DataFrame, monotone_risk: Mapping[str, Literal["increasing", "decreasing"]]
) -> dict[str, int]:
    """XGBoost's constraint per numeric feature of the matrix that params give a risk direction."""
    numeric = {c for c in matrix.columns if not isinstance(matrix[c].dtype, pd.CategoricalDtype)}
    return {name: 1 if way == "increasing" else -1 for name, way in monotone_risk.items() if name in numeric}


def constraint_string(columns: Iterable[object], monotone: Mapping[str, int] | None) -> str | None:
    """XGBoost's monotone_constraints in column order ("(1,0,-1)"); None when there are none."""
    if not monotone:
        return None
    # Categorical features cannot be constrained and get 0.
    return "(" + ",".join(str(monotone.get(str(c), 0)) for c in columns) + ")"


def booster_params(
    config: XGBoostConfig, seed: int, nthread: int | None = None, constraints: str | None = None
) -> dict[str, Any]:
    """The booster parameters of the challenger; tuning trials use the same, so they tune this model."""
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss"],
        "tree_method": "hist",
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "reg_lambda": config.reg_lambda,
        "reg_alpha": config.reg_alpha,
        "max_cat_to_onehot": config.max_cat_to_onehot,
        "nthread": config.n_jobs if nthread is None else nthread,
        "seed": seed,
    }
    if constraints is not None:
        params["monotone_constraints"] = constraints
    return params


def train_xgboost(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: XGBoostConfig,
    seed: int,
    monotone: Mapping[str, int] | None = None,
) -> TrainResult:
    """Fit a binary logistic booster; stop when validation log loss stops improving.

    Class imbalance is left alone (no ``scale_pos_weight``): re-weighting distorts the
    probabilities, and a PD model is judged on them, not only on ranking.
    The returned booster is sliced to the best iteration, so every consumer predicts with
    the same trees without having to know about early stopping.
    """
    dtrain = xgb.DMatrix(X_train, label=_labels(y_train, "train"), enable_categorical=True)
    dvalid = xgb.DMatrix(X_valid, label=_labels(y_valid, "valid"), enable_categorical=True)
    params = booster_params(config, seed, constraints=constraint_string(X_train.columns, monotone))
    params["eval_metric"] = ["auc", "logloss"]  # early stopping watches the last one
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


def train_scorecard(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    config: ScorecardConfig,
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]],
    seed: int,
) -> ScorecardModel:
    """The points scorecard on the same feature matrix as the challenger."""
    from scoring.scorecard import ScorecardSettings, fit_scorecard

    candidates = X_train.drop(columns=[c for c in config.exclude_features if c in X_train.columns])
    trends = {
        name: "ascending" if way == "increasing" else "descending"
        for name, way in monotone_risk.items()
        if name in candidates.columns and not isinstance(candidates[name].dtype, pd.CategoricalDtype)
    }
    settings = ScorecardSettings(
        pdo=config.pdo,
        base_score=config.base_score,
        base_odds=config.base_odds,
        min_iv=config.min_iv,
        max_n_bins=config.max_n_bins,
        min_bin_size=config.min_bin_size,
        monotonic_trends=trends,
        C=config.C,
        max_features=config.max_features,
        max_n_prebins=config.max_n_prebins,
    )
    labels = pd.Series(_labels(y_train, "train"), index=candidates.index)
    return fit_scorecard(candidates, labels, settings, seed)


@dataclass(frozen=True)
class ChampionDecision:
    champion: Literal["xgboost", "scorecard"]
    reason: str
    valid_auc: dict[str, float]


def choose_champion(valid_auc: Mapping[str, float], config: ChampionConfig) -> ChampionDecision:
    """The challenger wins only by a margin on validation; otherwise the simpler scorecard does."""
    challenger, baseline = valid_auc["xgboost"], valid_auc["scorecard"]
    gain = challenger - baseline
    if gain >= config.min_auc_gain:
        champion: Literal["xgboost", "scorecard"] = "xgboost"
        reason = f"xgboost gains {gain:+.4f} validation AUC over the scorecard (>= {config.min_auc_gain})"
    else:
        champion = "scorecard"
        reason = (
            f"xgboost gains {gain:+.4f} validation AUC over the scorecard, less than the "
            f"{config.min_auc_gain} required: the simpler scorecard stays champion"
        )
    logger.info("champion: %s (%s)", champion, reason)
    return ChampionDecision(champion, reason, dict(valid_auc))
