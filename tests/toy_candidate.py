"""A candidate plug-in from outside the package, for tests/test_candidates.py: a logistic
regression on the numeric features (missing as 0), fitted by Newton steps in NumPy and stored
as JSON. It registers itself on import, as a module of scoring.models.candidates does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from scoring.core.settings import StrictModel
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import (
    CandidatePlugin,
    FitContext,
    FrameArrayPath,
    binary_labels,
    frame_contributions,
    register,
    sigmoid,
)

NAME = "toy_linear"
FILE = "toy.json"


class ToyConfig(StrictModel):
    ridge: float = Field(1.0, gt=0.0)
    steps: int = Field(8, ge=1)


def _numeric(matrix: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return np.nan_to_num(matrix[columns].to_numpy(dtype=np.float64), nan=0.0)


@dataclass
class ToyModel:
    columns: list[str]  # every matrix column, in order
    used: list[str]  # the numeric ones, with a weight each
    mean: list[float]
    scale: list[float]
    weights: list[float]
    intercept: float

    def _terms(self, matrix: pd.DataFrame) -> np.ndarray:
        x = (_numeric(matrix, self.used) - np.asarray(self.mean)) / np.asarray(self.scale)
        return x * np.asarray(self.weights)

    def log_odds(self, matrix: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.intercept + self._terms(matrix).sum(axis=1), dtype=np.float64)

    def predict_pd(self, matrix: pd.DataFrame) -> np.ndarray:
        return sigmoid(self.log_odds(matrix))

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        values = np.zeros((len(matrix), len(matrix.columns) + 1))
        positions = [list(map(str, matrix.columns)).index(c) for c in self.used]
        values[:, positions] = self._terms(matrix)
        values[:, -1] = self.intercept
        return frame_contributions(values, matrix)

    def array_path(self, features: ApplicationFeatures) -> FrameArrayPath:
        return FrameArrayPath(self, features)

    def save(self, folder: Path) -> None:
        (folder / FILE).write_text(json.dumps(self.__dict__, sort_keys=True), encoding="utf-8")


class ToyPlugin(CandidatePlugin):
    name = NAME
    settings_type = ToyConfig
    files = (FILE,)
    contributions_method = "weight x standardised value (toy)"

    def fit(self, settings: ToyConfig, X: pd.DataFrame, y: pd.Series, context: FitContext) -> ToyModel:
        used = [str(c) for c in X.columns if not isinstance(X[c].dtype, pd.CategoricalDtype)]
        raw = _numeric(X, used)
        mean, scale = raw.mean(axis=0), raw.std(axis=0) + 1e-9
        x = np.column_stack([np.ones(len(raw)), (raw - mean) / scale])
        target = binary_labels(y, "train")
        beta = np.zeros(x.shape[1])
        penalty = settings.ridge * np.eye(x.shape[1])
        penalty[0, 0] = 0.0
        for _ in range(settings.steps):
            p = sigmoid(x @ beta)
            gradient = x.T @ (p - target) + penalty @ beta
            hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
            beta -= np.linalg.solve(hessian, gradient)
        return ToyModel(
            [str(c) for c in X.columns],
            used,
            mean.tolist(),
            scale.tolist(),
            beta[1:].tolist(),
            float(beta[0]),
        )

    def load(self, folder: Path) -> ToyModel:
        data: dict[str, Any] = json.loads((folder / FILE).read_text(encoding="utf-8"))
        return ToyModel(**data)


register(ToyPlugin())
