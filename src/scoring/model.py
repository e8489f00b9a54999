"""The PD model: the fitted feature transformer plus the XGBoost booster, stored without pickle.

The pipeline's evaluation, the exported MLflow model and batch scoring all score through
:meth:`PDModel.predict_pd`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from scoring.features import ApplicationFeatures
from scoring.io import atomic_path, write_json

BOOSTER_FILE = "booster.ubj"
FEATURES_FILE = "features.json"


@dataclass
class PDModel:
    features: ApplicationFeatures
    booster: xgb.Booster

    def feature_matrix(self, applications: pd.DataFrame) -> pd.DataFrame:
        return self.features.transform(applications)

    def predict_pd(self, applications: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Probability of default for raw application records, in input order."""
        matrix = self.feature_matrix(applications)
        dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=1)
        return np.asarray(self.booster.predict(dmatrix), dtype=np.float64)

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(directory / FEATURES_FILE, self.features.to_dict())
        save_booster(self.booster, directory / BOOSTER_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> PDModel:
        directory = Path(directory)
        spec = json.loads((directory / FEATURES_FILE).read_text(encoding="utf-8"))
        return cls(ApplicationFeatures.from_dict(spec), load_booster(directory / BOOSTER_FILE))


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
