"""The blend: two candidates' log-odds, weighted (by default the scorecard and the fitted
candidate with the best held-out AUC).

log-odds = w x first part's log-odds + (1 - w) x second part's, PD = sigmoid(log-odds); w is
chosen from the parts' out-of-fold log-odds (the highest AUC; ties go to the larger weight,
the first, simpler part). Stored as blend.json (the parts' names and weights); the parts are
the bundle's own candidates, saved in their folders. Contributions are the parts',
weighted as their log-odds are, so rows still sum to the blend's log-odds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, model_validator

from scoring.core.io import write_json
from scoring.core.settings import StrictModel
from scoring.models.candidate import ArrayPath, CombinerPlugin, FittedModel, register, sigmoid

if TYPE_CHECKING:
    from scoring.features.transformer import ApplicationFeatures

BLEND_FILE = "blend.json"
Array = npt.NDArray[np.float64]


def _default_weights() -> list[float]:
    return [round(0.1 * i, 1) for i in range(11)]


BEST = "best"  # a part chosen at fit time: the fitted candidate with the best held-out AUC


class BlendConfig(StrictModel):
    parts: tuple[str, str] = Field(
        ("scorecard", BEST),
        description="the two candidates blended; 'best' as the second stands for the fitted candidate "
        "(other than the first) with the best held-out AUC, resolved when the weight is chosen",
    )
    weights: list[float] = Field(
        default_factory=_default_weights,
        description="weights of the first part tried on the out-of-fold log-odds (the second gets 1 - w)",
    )

    @model_validator(mode="after")
    def _check(self) -> BlendConfig:
        if self.parts[0] == self.parts[1]:
            raise ValueError(f"parts: {list(self.parts)}: expected two different candidates")
        if self.parts[0] == BEST:
            raise ValueError(f"parts: {list(self.parts)}: only the second part may be {BEST!r}")
        if not self.weights:
            raise ValueError("weights: expected at least one weight, got none")
        bad = [w for w in self.weights if not 0.0 <= w <= 1.0]
        if bad:
            raise ValueError(f"weights: {bad} outside [0, 1]; expected weights of the first part from 0 to 1")
        return self


def blend_log_odds(z_first: npt.ArrayLike, z_second: npt.ArrayLike, weight: float) -> Array:
    """The blend's log-odds: the first part's weighted by ``weight``, the rest the second's."""
    w = float(weight)
    first, second = np.asarray(z_first, dtype=np.float64), np.asarray(z_second, dtype=np.float64)
    return np.asarray(w * first + (1.0 - w) * second, dtype=np.float64)


def best_blend_weight(
    y: npt.ArrayLike, z_first: npt.ArrayLike, z_second: npt.ArrayLike, weights: list[float]
) -> tuple[float, dict[str, float]]:
    """The first part's weight with the highest AUC (ties: the larger, simpler side), and every
    weight's AUC."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(y, dtype=np.float64)
    if not weights:
        raise ValueError("blend weights: expected at least one weight, got none")
    scores = {float(w): float(roc_auc_score(labels, blend_log_odds(z_first, z_second, w))) for w in weights}
    best = max(scores.values())
    weight = max(w for w, a in scores.items() if a >= best - 1e-12)
    return weight, {f"{w:g}": a for w, a in sorted(scores.items())}


@dataclass
class BlendEstimator:
    """Two fitted candidates blended on the log-odds scale, ``weight`` on the first."""

    first: FittedModel
    second: FittedModel
    weight: float
    names: tuple[str, str] = ("scorecard", "xgboost")

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"blend weight: expected a weight in [0, 1], got {self.weight}")

    def parts(self) -> dict[str, FittedModel]:
        """The two candidates blended, by name."""
        return {self.names[0]: self.first, self.names[1]: self.second}

    def log_odds(self, matrix: pd.DataFrame) -> Array:
        return blend_log_odds(self.first.log_odds(matrix), self.second.log_odds(matrix), self.weight)

    def predict_pd(self, matrix: pd.DataFrame) -> Array:
        return sigmoid(self.log_odds(matrix))

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """The parts' contributions weighted as their log-odds are: rows sum to the blend's log-odds."""
        w = self.weight
        first = self.first.contributions(matrix)
        return w * first + (1.0 - w) * self.second.contributions(matrix)[first.columns]

    def array_path(self, features: ApplicationFeatures) -> BlendArrayPath:
        return BlendArrayPath(self.first.array_path(features), self.second.array_path(features), self.weight)

    def to_dict(self) -> dict[str, Any]:
        first, second = self.names
        return {
            "kind": "blend",
            "parts": [first, second],
            "weights": {first: self.weight, second: 1.0 - self.weight},
            "log_odds": f"{self.weight:g} x {first} log-odds + {1.0 - self.weight:g} x {second} log-odds",
        }

    def save(self, folder: Path) -> None:
        write_json(folder / BLEND_FILE, self.to_dict())


@dataclass
class BlendArrayPath:
    first: ArrayPath
    second: ArrayPath
    weight: float

    def log_odds(self, matrix: Array) -> Array:
        return blend_log_odds(self.first.log_odds(matrix), self.second.log_odds(matrix), self.weight)

    def predict_pd(self, matrix: Array) -> Array:
        return sigmoid(self.log_odds(matrix))

    def contributions(self, matrix: Array) -> Array:
        w = self.weight
        return np.asarray(
            w * self.first.contributions(matrix) + (1.0 - w) * self.second.contributions(matrix),
            dtype=np.float64,
        )


def _read_spec(folder: Path) -> dict[str, Any]:
    path = folder / BLEND_FILE
    spec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    parts, weights = spec.get("parts"), spec.get("weights")
    if (
        spec.get("kind") != "blend"
        or not isinstance(parts, list)
        or len(parts) != 2
        or not isinstance(weights, dict)
        or not isinstance(weights.get(parts[0]), (int, float))
    ):
        raise ValueError(
            f"{path}: expected a blend spec with two parts and a numeric weight for each, got {spec}"
        )
    return spec


class BlendPlugin(CombinerPlugin):
    name = "blend"
    settings_type = BlendConfig
    files = (BLEND_FILE,)
    contributions_method = "blend: the parts' contributions, weighted as their log-odds are"

    def parts(self, settings: BlendConfig) -> tuple[str, ...]:
        """The parts that must be fitted candidates listed before the blend ('best' is any)."""
        return tuple(p for p in settings.parts if p != BEST)

    def choose(
        self, settings: BlendConfig, y: Array, parts_log_odds: Mapping[str, Array]
    ) -> tuple[BlendConfig, dict[str, Any]]:
        """The weight (and a 'best' part) from the fitted candidates' held-out log-odds."""
        from sklearn.metrics import roc_auc_score

        first, second = settings.parts
        if second == BEST:
            others = [name for name in parts_log_odds if name != first]
            if not others:
                raise ValueError(f"blend: no fitted candidate besides {first!r} to blend it with")
            auc = {name: float(roc_auc_score(y, parts_log_odds[name])) for name in others}
            second = max(others, key=lambda name: (auc[name], -others.index(name)))  # ties: the earlier
            settings = settings.model_copy(update={"parts": (first, second)})
        weight, by_weight = best_blend_weight(
            y, parts_log_odds[first], parts_log_odds[second], settings.weights
        )
        info = {"parts": [first, second], "weight": weight, "auc_by_weight": by_weight}
        return settings.model_copy(update={"weights": [weight]}), info

    def combine(self, settings: BlendConfig, parts_log_odds: Mapping[str, Array]) -> Array:
        first, second = settings.parts
        return blend_log_odds(parts_log_odds[first], parts_log_odds[second], _settled_weight(settings))

    def build(self, settings: BlendConfig, parts: Mapping[str, FittedModel]) -> BlendEstimator:
        first, second = settings.parts
        return BlendEstimator(parts[first], parts[second], _settled_weight(settings), (first, second))

    def stored_parts(self, folder: Path) -> tuple[str, ...]:
        return tuple(_read_spec(folder)["parts"])

    def load(self, folder: Path, parts: Mapping[str, FittedModel]) -> BlendEstimator:
        spec = _read_spec(folder)
        first, second = spec["parts"]
        return BlendEstimator(parts[first], parts[second], float(spec["weights"][first]), (first, second))


def _settled_weight(settings: BlendConfig) -> float:
    if len(settings.weights) != 1:
        raise ValueError(f"blend: {len(settings.weights)} weights; choose one first (BlendPlugin.choose)")
    return float(settings.weights[0])


register(BlendPlugin())
