"""The PD model: the fitted feature transformer plus one fitted candidate.

The pipeline's evaluation, the exported MLflow model and batch scoring all score raw
applications through :meth:`PDModel.predict_pd`, so they cannot drift apart. Where its files
live is the model bundle's business (:mod:`scoring.serving.bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import BIAS_COLUMN, FittedModel

__all__ = ["BIAS_COLUMN", "PDModel"]


@dataclass
class PDModel:
    features: ApplicationFeatures
    estimator: FittedModel
    kind: str = "xgboost"  # the candidate's name in train.candidates

    def feature_matrix(self, applications: pd.DataFrame) -> pd.DataFrame:
        return self.features.transform(applications)

    def log_odds(self, applications: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(self.estimator.log_odds(self.feature_matrix(applications)), dtype=np.float64)

    def predict_pd(self, applications: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Probability of default for raw application records, in input order."""
        return np.asarray(self.estimator.predict_pd(self.feature_matrix(applications)), dtype=np.float64)

    def contributions(self, applications: pd.DataFrame) -> pd.DataFrame:
        """Per-feature log-odds contributions plus ``bias`` for raw applications (rows sum to logit PD)."""
        return self.estimator.contributions(self.feature_matrix(applications))
