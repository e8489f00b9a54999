"""LightGBM: leaf-wise gradient boosting, at the library's defaults unless params say otherwise.

Where depth-wise trees need tuning to find them, LightGBM's defaults (31 leaves, learning rate
0.1, 100 rounds, 20 rows a leaf; what scikit-learn's HistGradientBoosting copies) often fit
well out of the box, so the champion race always has them. Stored in LightGBM's own text
format (lightgbm.txt), no pickle; contributions are LightGBM's exact TreeSHAP
(``pred_contrib``) on the raw (log-odds) scale. Categorical columns are the transformer's
pandas categoricals; the serving path passes their codes, which is what LightGBM maps a
categorical to internally. Training is single-threaded and ``deterministic``, so the same data
and seed give the same model file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field

from scoring.core.io import atomic_path
from scoring.core.settings import StrictModel
from scoring.models.candidate import CandidatePlugin, FitContext, binary_labels, frame_contributions, register

if TYPE_CHECKING:
    import lightgbm as lgb

    from scoring.features.transformer import ApplicationFeatures

MODEL_FILE = "lightgbm.txt"
Array = npt.NDArray[np.float64]


class LightGBMConfig(StrictModel):
    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.1, gt=0.0, le=1.0)
    num_leaves: int = Field(31, ge=2)
    max_depth: int = Field(-1, ge=-1, description="-1: no limit (leaves bound the tree)")
    min_child_samples: int = Field(20, ge=1)
    subsample: float = Field(1.0, gt=0.0, le=1.0)
    colsample_bytree: float = Field(1.0, gt=0.0, le=1.0)
    reg_lambda: float = Field(0.0, ge=0.0)
    reg_alpha: float = Field(0.0, ge=0.0)
    monotone: bool = Field(True, description="apply train.monotone_risk to numeric features")


def positional(matrix: pd.DataFrame) -> pd.DataFrame:
    """The matrix under positional names (f0, f1, ...): LightGBM refuses feature names with JSON
    characters (a file's own column names may have them); the model reads columns by position."""
    return matrix.set_axis([f"f{i}" for i in range(matrix.shape[1])], axis=1)


def _params(settings: LightGBMConfig, seed: int, constraints: list[int] | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": settings.learning_rate,
        "num_leaves": settings.num_leaves,
        "max_depth": settings.max_depth,
        "min_child_samples": settings.min_child_samples,
        "bagging_fraction": settings.subsample,
        "bagging_freq": 1 if settings.subsample < 1.0 else 0,
        "feature_fraction": settings.colsample_bytree,
        "lambda_l2": settings.reg_lambda,
        "lambda_l1": settings.reg_alpha,
        "seed": seed % 2**31,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    if constraints and any(constraints):
        params["monotone_constraints"] = constraints
    return params


@dataclass
class LightGBMEstimator:
    booster: lgb.Booster

    def log_odds(self, matrix: pd.DataFrame) -> Array:
        return np.asarray(self.booster.predict(positional(matrix), raw_score=True), dtype=np.float64)

    def predict_pd(self, matrix: pd.DataFrame) -> Array:
        return np.asarray(self.booster.predict(positional(matrix)), dtype=np.float64)

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        values = np.asarray(self.booster.predict(positional(matrix), pred_contrib=True), dtype=np.float64)
        return frame_contributions(values, matrix)

    def array_path(self, features: ApplicationFeatures) -> LightGBMArrayPath:
        return LightGBMArrayPath(self.booster)

    def save(self, folder: Path) -> None:
        path = folder / MODEL_FILE
        with atomic_path(path) as tmp:
            tmp.write_text(self.booster.model_to_string(), encoding="utf-8")


@dataclass
class LightGBMArrayPath:
    """The booster over the float64 feature array; categorical columns arrive as level codes."""

    booster: lgb.Booster

    def log_odds(self, matrix: Array) -> Array:
        return np.asarray(self.booster.predict(matrix, raw_score=True, num_threads=1), dtype=np.float64)

    def predict_pd(self, matrix: Array) -> Array:
        return np.asarray(self.booster.predict(matrix, num_threads=1), dtype=np.float64)

    def contributions(self, matrix: Array) -> Array:
        return np.asarray(self.booster.predict(matrix, pred_contrib=True, num_threads=1), dtype=np.float64)


class LightGBMPlugin(CandidatePlugin):
    name = "lightgbm"
    settings_type = LightGBMConfig
    files = (MODEL_FILE,)
    contributions_method = "exact TreeSHAP (LightGBM pred_contrib)"
    takes_weights = True

    def fit(
        self,
        settings: LightGBMConfig,
        X: pd.DataFrame,
        y: pd.Series,
        context: FitContext,
        weight: pd.Series | None = None,
    ) -> LightGBMEstimator:
        import lightgbm as lgb

        directions = context.numeric_directions(X) if settings.monotone else {}
        constraints = [directions.get(str(c), 0) for c in X.columns]
        frame = positional(X)
        categorical = [str(c) for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        data = lgb.Dataset(
            frame,
            label=binary_labels(y, "train"),
            weight=None if weight is None else weight.to_numpy(dtype=np.float64),
            categorical_feature=categorical or "auto",
            free_raw_data=True,
            params={"verbosity": -1},
        )
        booster = lgb.train(
            _params(settings, context.seed, constraints), data, num_boost_round=settings.n_estimators
        )
        return LightGBMEstimator(booster)

    def load(self, folder: Path) -> LightGBMEstimator:
        import lightgbm as lgb

        return LightGBMEstimator(lgb.Booster(model_str=(folder / MODEL_FILE).read_text(encoding="utf-8")))


register(LightGBMPlugin())
