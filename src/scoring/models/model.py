"""The PD model: the fitted feature transformer plus one estimator, stored without pickle.

Three estimators exist: the XGBoost challenger (a booster in XGBoost's UBJSON format), the
points scorecard (plain JSON), and their blend on the log-odds scale (blend.json with the
weight, reading the other two files). The pipeline's evaluation, the exported MLflow model and
batch scoring all score through :meth:`PDModel.predict_pd`, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from scoring.core.io import atomic_path, write_json
from scoring.features.transformer import ApplicationFeatures

if TYPE_CHECKING:
    from scoring.models.scorecard import ScorecardModel, ScorecardValues
    from scoring.models.treeshap import TreeTables

BOOSTER_FILE = "booster.ubj"
SCORECARD_FILE = "scorecard.json"
FEATURES_FILE = "features.json"
CHAMPION_FILE = "champion.json"
BLEND_FILE = "blend.json"

ModelKind = Literal["xgboost", "scorecard", "blend"]
# The file naming each kind of estimator; a blend also reads its parts' files (KIND_FILES).
ESTIMATOR_FILES: dict[str, str] = {"xgboost": BOOSTER_FILE, "scorecard": SCORECARD_FILE, "blend": BLEND_FILE}
KIND_FILES: dict[str, tuple[str, ...]] = {
    "xgboost": (BOOSTER_FILE,),
    "scorecard": (SCORECARD_FILE,),
    "blend": (BLEND_FILE, SCORECARD_FILE, BOOSTER_FILE),
}


class Estimator(Protocol):
    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]: ...

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame: ...


BIAS_COLUMN = "bias"


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
    return xgb.DMatrix(values, feature_names=names, feature_types=types, nthread=1)


@dataclass
class BoosterEstimator:
    """An XGBoost booster predicting the probability of default from the feature matrix."""

    booster: xgb.Booster
    # TreeSHAP tables (scoring.models.treeshap), built from the booster on first use.
    _shap_tables: object = field(default=None, init=False, repr=False, compare=False)

    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(self.booster.predict(prediction_matrix(matrix)), dtype=np.float64)

    def predict_pd_values(
        self, values: npt.NDArray[np.float32], names: list[str], types: list[str]
    ) -> npt.NDArray[np.float64]:
        """:meth:`predict_pd` from the matrix's float32 values (see :func:`values_dmatrix`)."""
        return np.asarray(self.booster.predict(values_dmatrix(values, names, types)), dtype=np.float64)

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP per feature plus ``bias``, on the margin (log-odds) scale.

        Each row sums to the booster's margin, logit(predict_pd). Computed by
        :mod:`scoring.models.treeshap` (per-leaf tables, the same values as XGBoost's
        ``pred_contribs``, which :meth:`reference_contributions` returns).
        """
        from scoring.models.treeshap import tree_shap

        values = tree_shap(self.booster, matrix, tables=self.shap_tables())
        return pd.DataFrame(values, index=matrix.index, columns=[*matrix.columns, BIAS_COLUMN])

    def contribution_values(self, values: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        """:meth:`contributions` as an array ``(n_rows, n_features + 1)`` from the float32 values."""
        from scoring.models.treeshap import tree_shap_tables

        return tree_shap_tables(self.shap_tables(), values)

    def shap_tables(self) -> TreeTables:
        """The booster's TreeSHAP tables, built on first use."""
        from scoring.models.treeshap import TreeTables, build_tables

        if not isinstance(self._shap_tables, TreeTables):
            self._shap_tables = build_tables(self.booster)
        return self._shap_tables

    def reference_contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """XGBoost's own exact TreeSHAP (``pred_contribs``): the reference for the fast path."""
        dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=1)
        values = np.asarray(self.booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
        return pd.DataFrame(values, index=matrix.index, columns=[*matrix.columns, BIAS_COLUMN])


@dataclass
class BlendEstimator:
    """The scorecard and the booster blended on the log-odds scale.

    log-odds = w x scorecard log-odds + (1 - w) x booster margin, PD = sigmoid(log-odds),
    with w = ``scorecard_weight``. Stored as blend.json (the weight and its parts' file
    names) beside scorecard.json and booster.ubj; no pickle.
    """

    scorecard: ScorecardModel
    booster: BoosterEstimator
    scorecard_weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.scorecard_weight <= 1.0:
            raise ValueError(f"scorecard_weight: expected a weight in [0, 1], got {self.scorecard_weight}")

    def log_odds(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        margin = np.asarray(
            self.booster.booster.predict(prediction_matrix(matrix), output_margin=True), dtype=np.float64
        )
        w = self.scorecard_weight
        return np.asarray(w * self.scorecard.log_odds(matrix) + (1.0 - w) * margin, dtype=np.float64)

    def predict_pd(self, matrix: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.asarray(1.0 / (1.0 + np.exp(-self.log_odds(matrix))), dtype=np.float64)

    def predict_pd_values(
        self,
        values: npt.NDArray[np.float32],
        names: list[str],
        types: list[str],
        card: ScorecardValues,
        matrix: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """:meth:`predict_pd` from the feature arrays: the booster reads the float32 ``values``, the
        scorecard the float64 ``matrix`` through ``card`` (:meth:`ScorecardModel.values_path`)."""
        margin = np.asarray(
            self.booster.booster.predict(values_dmatrix(values, names, types), output_margin=True),
            dtype=np.float64,
        )
        w = self.scorecard_weight
        log_odds = np.asarray(w * card.log_odds(matrix) + (1.0 - w) * margin, dtype=np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-log_odds)), dtype=np.float64)

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """The parts' contributions weighted as their log-odds are: rows sum to the blend's log-odds."""
        w = self.scorecard_weight
        card = self.scorecard.contributions(matrix)
        trees = self.booster.contributions(matrix)
        return w * card + (1.0 - w) * trees[card.columns]

    def contribution_values(
        self, values: npt.NDArray[np.float32], card: ScorecardValues, matrix: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """:meth:`contributions` as an array (the matrix's columns, then bias) from the feature
        arrays, as :meth:`predict_pd_values` reads them."""
        w = self.scorecard_weight
        parts = w * card.contributions(matrix) + (1.0 - w) * self.booster.contribution_values(values)
        return np.asarray(parts, dtype=np.float64)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": "blend",
            "scorecard_weight": self.scorecard_weight,
            "xgboost_weight": 1.0 - self.scorecard_weight,
            "parts": {"scorecard": SCORECARD_FILE, "xgboost": BOOSTER_FILE},
            "log_odds": "scorecard_weight * scorecard log-odds + xgboost_weight * booster margin",
        }

    @classmethod
    def load(cls, path: str | Path) -> BlendEstimator:
        """blend.json and the parts it names, from the same directory."""
        from scoring.models.scorecard import ScorecardModel

        path = Path(path)
        spec = json.loads(path.read_text(encoding="utf-8"))
        if spec.get("kind") != "blend" or not isinstance(spec.get("scorecard_weight"), (int, float)):
            raise ValueError(f"{path}: expected a blend spec with a numeric scorecard_weight, got {spec}")
        parts = spec["parts"]
        card_spec = json.loads((path.parent / parts["scorecard"]).read_text(encoding="utf-8"))
        card = ScorecardModel.from_dict(card_spec)
        booster = BoosterEstimator(load_booster(path.parent / parts["xgboost"]))
        return cls(card, booster, float(spec["scorecard_weight"]))


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

    def contributions(self, applications: pd.DataFrame) -> pd.DataFrame:
        """Per-feature log-odds contributions plus ``bias`` for raw applications (rows sum to logit PD)."""
        return self.estimator.contributions(self.feature_matrix(applications))

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
    from scoring.models.scorecard import ScorecardModel

    if isinstance(estimator, BoosterEstimator):
        save_booster(estimator.booster, path)
    elif isinstance(estimator, BlendEstimator):
        # The parts beside blend.json, under the names it gives them.
        save_booster(estimator.booster.booster, path.parent / BOOSTER_FILE)
        write_json(path.parent / SCORECARD_FILE, estimator.scorecard.to_dict())
        write_json(path, estimator.to_dict())
    elif isinstance(estimator, ScorecardModel):
        write_json(path, estimator.to_dict())
    else:
        raise TypeError(f"cannot save an estimator of type {type(estimator).__name__}")


def load_estimator(path: str | Path, kind: str) -> Estimator:
    if kind == "xgboost":
        return BoosterEstimator(load_booster(path))
    if kind == "scorecard":
        from scoring.models.scorecard import ScorecardModel

        return ScorecardModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    if kind == "blend":
        return BlendEstimator.load(path)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(ESTIMATOR_FILES)}")


def champion_files(model_dir: str | Path) -> list[str]:
    """Every file (name in ``model_dir``) that :meth:`PDModel.load` reads for the champion."""
    champion = json.loads((Path(model_dir) / CHAMPION_FILE).read_text(encoding="utf-8"))["champion"]
    if champion not in KIND_FILES:
        raise ValueError(f"{CHAMPION_FILE}: champion {champion!r}; expected one of {sorted(KIND_FILES)}")
    return [CHAMPION_FILE, FEATURES_FILE, *KIND_FILES[champion]]


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
