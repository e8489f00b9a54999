"""XGBoost candidates: the tuned, early-stopped challenger and XGBoost at its library defaults.

Stored in XGBoost's own UBJSON format (booster.ubj), no pickle. Contributions are exact
path-dependent TreeSHAP (:mod:`scoring.models.treeshap`, equal to XGBoost's ``pred_contribs``)
on the margin (log-odds) scale. Class imbalance is left alone (no ``scale_pos_weight``):
re-weighting distorts the probabilities, and a PD model is judged on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field

from scoring.core.io import atomic_path
from scoring.models.candidate import (
    BIAS_COLUMN,
    CandidatePlugin,
    FitContext,
    binary_labels,
    frame_contributions,
    register,
)
from scoring.models.config import XGBoostConfig

if TYPE_CHECKING:
    import xgboost as xgb

    from scoring.features.transformer import ApplicationFeatures
    from scoring.models.treeshap import TreeTables

logger = logging.getLogger(__name__)

BOOSTER_FILE = "booster.ubj"


class XGBoostDefaultsConfig(XGBoostConfig):
    """XGBoost at its library defaults (``XGBClassifier()``: 100 rounds, eta 0.3, depth 6, ...):
    a candidate no tuning can miss. No early stopping; monotone risk directions still apply."""

    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.3, gt=0.0, le=1.0)
    max_depth: int = Field(6, ge=1, le=16)
    min_child_weight: float = Field(1.0, ge=0.0)
    subsample: float = Field(1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(1.0, gt=0.0, le=1.0)
    max_cat_to_onehot: int = Field(4, ge=1)
    early_stopping_rounds: int | None = Field(None, ge=1)


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


@dataclass(frozen=True)
class TrainResult:
    booster: xgb.Booster
    best_iteration: int
    best_valid_logloss: float
    n_trees: int


def train_xgboost(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: XGBoostConfig,
    seed: int,
    monotone: Mapping[str, int] | None = None,
    weight_train: pd.Series | None = None,
) -> TrainResult:
    """Fit a binary logistic booster; stop when validation log loss stops improving.

    The returned booster is sliced to the best iteration, so every consumer predicts with
    the same trees without having to know about early stopping.
    """
    import xgboost as xgb

    dtrain = xgb.DMatrix(
        X_train, label=binary_labels(y_train, "train"), weight=_weight(weight_train), enable_categorical=True
    )
    dvalid = xgb.DMatrix(X_valid, label=binary_labels(y_valid, "valid"), enable_categorical=True)
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


def train_booster_rounds(
    X: pd.DataFrame,
    y: pd.Series,
    config: XGBoostConfig,
    n_rounds: int,
    seed: int,
    monotone: Mapping[str, int] | None = None,
    weight: pd.Series | None = None,
) -> xgb.Booster:
    """A booster trained for a fixed number of rounds (no validation set to stop on).

    Used where early stopping has already chosen the round count: the folds of the
    cross-validated champion choice, and refits on more data.
    """
    import xgboost as xgb

    if n_rounds < 1:
        raise ValueError(f"n_rounds: expected >= 1, got {n_rounds}")
    dtrain = xgb.DMatrix(X, label=binary_labels(y, "train"), weight=_weight(weight), enable_categorical=True)
    params = booster_params(config, seed, constraints=constraint_string(X.columns, monotone))
    return xgb.train(params, dtrain, num_boost_round=n_rounds, verbose_eval=False)


def _weight(weight: pd.Series | None) -> npt.NDArray[np.float64] | None:
    return None if weight is None else weight.to_numpy(dtype=np.float64)


def prediction_matrix(matrix: pd.DataFrame) -> xgb.DMatrix:
    """The feature matrix as XGBoost data: float32 values, category codes, NaN for missing.

    The codes are those of the matrix's categoricals, i.e. of the fitted transformer's levels,
    which the booster was trained on, so predictions equal those from the DataFrame itself
    (a test checks); XGBoost's own conversion of pandas categoricals costs several
    milliseconds per call, most of a single application's prediction time.
    """
    from scoring.models.treeshap import feature_array

    types = ["c" if isinstance(dtype, pd.CategoricalDtype) else "q" for dtype in matrix.dtypes]
    return values_dmatrix(feature_array(matrix), [str(c) for c in matrix.columns], types)


def values_dmatrix(values: npt.NDArray[np.float32], names: list[str], types: list[str]) -> xgb.DMatrix:
    """:func:`prediction_matrix` from the matrix's float32 values (``feature_array``), names and
    types ("q" numeric, "c" categorical): the scorer's path, without a DataFrame."""
    import xgboost as xgb

    return xgb.DMatrix(values, feature_names=names, feature_types=types, nthread=1)


def booster_log_odds(booster: xgb.Booster, X: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The booster's margin: the log-odds of default, exact (no logit of a rounded probability)."""
    return np.asarray(booster.predict(prediction_matrix(X), output_margin=True), dtype=np.float64)


@dataclass
class BoosterEstimator:
    """An XGBoost booster predicting the probability of default from the feature matrix."""

    booster: xgb.Booster
    # TreeSHAP tables (scoring.models.treeshap), built from the booster on first use.
    _shap_tables: object = field(default=None, init=False, repr=False, compare=False)

    def log_odds(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        return booster_log_odds(self.booster, matrix)

    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(prediction_matrix(matrix)), dtype=np.float64)

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP per feature plus ``bias``, on the margin (log-odds) scale.

        Each row sums to the booster's margin, logit(predict_pd). Computed by
        :mod:`scoring.models.treeshap` (per-leaf tables, the same values as XGBoost's
        ``pred_contribs``, which :meth:`reference_contributions` returns).
        """
        from scoring.models.treeshap import tree_shap

        return frame_contributions(tree_shap(self.booster, matrix, tables=self.shap_tables()), matrix)

    def shap_tables(self) -> TreeTables:
        """The booster's TreeSHAP tables, built on first use."""
        from scoring.models.treeshap import TreeTables, build_tables

        if not isinstance(self._shap_tables, TreeTables):
            self._shap_tables = build_tables(self.booster)
        return self._shap_tables

    def reference_contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """XGBoost's own exact TreeSHAP (``pred_contribs``): the reference for the fast path."""
        import xgboost as xgb

        dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=1)
        values = np.asarray(self.booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
        return pd.DataFrame(values, index=matrix.index, columns=[*matrix.columns, BIAS_COLUMN])

    def array_path(self, features: ApplicationFeatures) -> BoosterArrayPath:
        names = features.matrix_columns
        types = ["c" if name in features.categories_ else "q" for name in names]
        return BoosterArrayPath(self, names, types)

    def save(self, folder: Path) -> None:
        save_booster(self.booster, folder / BOOSTER_FILE)


@dataclass
class BoosterArrayPath:
    """The booster over the float64 feature array: read as float32, as the booster was trained."""

    estimator: BoosterEstimator
    names: list[str]
    types: list[str]

    def log_odds(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        values = np.ascontiguousarray(matrix, dtype=np.float32)
        dmatrix = values_dmatrix(values, self.names, self.types)
        return np.asarray(self.estimator.booster.predict(dmatrix, output_margin=True), dtype=np.float64)

    def predict_pd(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        values = np.ascontiguousarray(matrix, dtype=np.float32)
        dmatrix = values_dmatrix(values, self.names, self.types)
        return np.asarray(self.estimator.booster.predict(dmatrix), dtype=np.float64)

    def contributions(self, matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        from scoring.models.treeshap import tree_shap_tables

        values = np.ascontiguousarray(matrix, dtype=np.float32)
        return tree_shap_tables(self.estimator.shap_tables(), values)


def save_booster(booster: xgb.Booster, path: str | Path) -> None:
    """Save in XGBoost's own UBJSON format (no pickle), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # xgboost picks the format from the suffix, so keep it on the temporary name.
        target = tmp.with_suffix(path.suffix)
        booster.save_model(target)
        target.replace(tmp)


def load_booster(path: str | Path) -> xgb.Booster:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(Path(path))
    booster.set_param({"nthread": 1})
    return booster


class XGBoostPlugin(CandidatePlugin):
    """The challenger: params' (or the tune stage's) settings; early stopping on valid fixes
    its round count once, and every later fit trains that many rounds."""

    name = "xgboost"
    params_section: ClassVar[str | None] = "xgboost"
    settings_type = XGBoostConfig
    files = (BOOSTER_FILE,)
    contributions_method = (
        "exact path-dependent TreeSHAP (scoring.models.treeshap; equal to XGBoost pred_contribs)"
    )
    takes_weights = True

    def settle(
        self,
        settings: XGBoostConfig,
        X_train: pd.DataFrame,
        y_train: pd.Series,
        X_valid: pd.DataFrame,
        y_valid: pd.Series,
        context: FitContext,
        weight: pd.Series | None = None,
    ) -> tuple[XGBoostConfig, dict[str, Any]]:
        if settings.early_stopping_rounds is None:
            return settings, {"n_trees": settings.n_estimators}
        monotone = context.numeric_directions(X_train)
        result = train_xgboost(
            X_train, y_train, X_valid, y_valid, settings, context.seed, monotone, weight_train=weight
        )
        info = {
            "best_iteration": result.best_iteration,
            "n_trees": result.n_trees,
            "valid_logloss": result.best_valid_logloss,
        }
        return settings.model_copy(
            update={"n_estimators": result.n_trees, "early_stopping_rounds": None}
        ), info

    def fit(
        self,
        settings: XGBoostConfig,
        X: pd.DataFrame,
        y: pd.Series,
        context: FitContext,
        weight: pd.Series | None = None,
    ) -> BoosterEstimator:
        monotone = context.numeric_directions(X)
        return BoosterEstimator(
            train_booster_rounds(X, y, settings, settings.n_estimators, context.seed, monotone, weight)
        )

    def load(self, folder: Path) -> BoosterEstimator:
        return BoosterEstimator(load_booster(folder / BOOSTER_FILE))


class XGBoostDefaultsPlugin(XGBoostPlugin):
    name = "xgboost_defaults"
    params_section = None
    settings_type = XGBoostDefaultsConfig
    contributions_method = XGBoostPlugin.contributions_method


register(XGBoostPlugin())
register(XGBoostDefaultsPlugin())
