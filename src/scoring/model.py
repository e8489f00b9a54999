"""The PD model: the fitted feature transformer plus one estimator, stored without pickle.

Two estimators exist: the XGBoost challenger (a booster in XGBoost's UBJSON format) and the
points scorecard (plain JSON). The pipeline's evaluation, the exported MLflow model and
batch scoring all score through :meth:`PDModel.predict_pd`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from scoring.features import ApplicationFeatures
from scoring.io import atomic_path, write_json

BOOSTER_FILE = "booster.ubj"
SCORECARD_FILE = "scorecard.json"
FEATURES_FILE = "features.json"
CHAMPION_FILE = "champion.json"

ModelKind = Literal["xgboost", "scorecard"]
ESTIMATOR_FILES: dict[str, str] = {"xgboost": BOOSTER_FILE, "scorecard": SCORECARD_FILE}


class Estimator(Protocol):
    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]: ...


@dataclass
class BoosterEstimator:
    """An XGBoost booster predicting the probability of default from the feature matrix."""

    booster: xgb.Booster

    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=1)
        return np.asarray(self.booster.predict(dmatrix), dtype=np.float64)


@dataclass
class PDModel:
    features: ApplicationFeatures
    estimator: Estimator
    kind: ModelKind = "xgboost"

    def feature_matrix(self, applications: pd.DataFrame) -> pd.DataFrame:
        return self.features.transform(applications)

    def predict_pd(self, applications: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Probability of default for raw application records, in input order."""
        return np.asarray(self.estimator.predict_pd(self.feature_matrix(applications)), dtype=np.float64)

    def save(self, directory: str | Path) -> None:
        """The transformer, the estimator's file and champion.json naming which estimator it is."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / FEATURES_FILE, self.features.to_dict())
        save_estimator(self.estimator, directory / ESTIMATOR_FILES[self.kind])
        write_json(directory / CHAMPION_FILE, {"champion": self.kind})

    @classmethod
    def load(cls, directory: str | Path, kind: ModelKind | None = None) -> PDModel:
        """Load the champion (named in champion.json), or the estimator of the given kind."""
        directory = Path(directory)
        if kind is None:
            kind = json.loads((directory / CHAMPION_FILE).read_text(encoding="utf-8"))["champion"]
        spec = json.loads((directory / FEATURES_FILE).read_text(encoding="utf-8"))
        features = ApplicationFeatures.from_dict(spec)
        return cls(features, load_estimator(directory / ESTIMATOR_FILES[kind], kind), kind)


def save_estimator(estimator: Estimator, path: Path) -> None:
    from scoring.scorecard import ScorecardModel

    if isinstance(estimator, BoosterEstimator):
        save_booster(estimator.booster, path)
    elif isinstance(estimator, ScorecardModel):
        write_json(path, estimator.to_dict())
    else:
        raise TypeError(f"cannot save an estimator of type {type(estimator).__name__}")


def load_estimator(path: str | Path, kind: str) -> Estimator:
    if kind == "xgboost":
        return BoosterEstimator(load_booster(path))
    if kind == "scorecard":
        from scoring.scorecard import ScorecardModel

        return ScorecardModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(ESTIMATOR_FILES)}")


def save_booster(booster: xgb.Booster, path: str | Path) -> None:
    """Save in XGBoost's own UBJSON format (no pickle), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # xgboost picks the format from the suffix, so keep it on the temporary name.
        target = tmp.with_suffix(path.suffix)
        booster.save_model(target)
        target.replace(tmp)


def load_booster(path: str | Path) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(Path(path))
    booster.set_param({"nthread": 1})
    return booster
