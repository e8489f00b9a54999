"""One protocol for every PD candidate, and the registry that names them.

A *candidate* is a way of turning the feature matrix (``scoring.features``) into a probability
of default. Each lives in one module of :mod:`scoring.models.candidates` and registers a
plug-in there, under the name ``train.candidates`` lists it by:

* :class:`CandidatePlugin` fits a model on a frame. ``settle`` fixes, once, whatever the
  training protocol may only learn from the validation split (the early-stopped round count);
  ``fit`` then refits from the settled settings alone, on cross-validation folds and on the
  pooled rows, so every fold trains the model that is exported.
* :class:`CombinerPlugin` builds a candidate from other candidates' log-odds (the blend);
  it chooses its own settings (a weight) from their out-of-fold log-odds.

A fitted candidate (:class:`FittedModel`) gives log-odds and PD, per-feature contributions
on the log-odds scale (rows sum to the log-odds; ``bias`` last), an array path for serving,
and saves itself as JSON / UBJSON / text files, never pickle, into its own folder: the file
names are the plug-in's (``files``), the folder is the model bundle's
(:mod:`scoring.serving.bundle`). Adding a candidate is one module plus its params.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

if TYPE_CHECKING:
    from scoring.features.transformer import ApplicationFeatures


logger = logging.getLogger(__name__)

BIAS_COLUMN = "bias"
Array = npt.NDArray[np.float64]


def binary_labels(y: pd.Series | npt.ArrayLike, name: str) -> Array:
    """The target as 0.0 / 1.0, refusing nulls, other values and a single class."""
    values = pd.to_numeric(pd.Series(np.asarray(y)), errors="coerce")
    if values.isna().any() or not values.isin([0, 1]).all():
        raise ValueError(
            f"{name}: target must be 0 or 1 on every training row; got {sorted(values.unique())[:5]}"
        )
    if values.nunique() < 2:
        raise ValueError(f"{name}: target has a single class ({int(values.iloc[0])}); need both 0 and 1")
    return values.to_numpy(dtype=np.float64)


def sigmoid(log_odds: npt.ArrayLike) -> Array:
    z = np.asarray(log_odds, dtype=np.float64)
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


class ArrayPath(Protocol):
    """A fitted candidate over the feature matrix as a float64 array (the serving path).

    The array is :meth:`scoring.features.transformer.ApplicationFeatures.feature_values`: one
    column per matrix column, categorical columns as level codes (NaN for null or unseen).
    """

    def log_odds(self, matrix: Array) -> Array: ...

    def predict_pd(self, matrix: Array) -> Array:
        """The same PDs as the fitted model's ``predict_pd`` on the matrix frame."""
        ...

    def contributions(self, matrix: Array) -> Array:
        """``(rows, n_columns + 1)``, bias last; rows sum to :meth:`log_odds`."""
        ...


@runtime_checkable
class FittedModel(Protocol):
    """A fitted candidate: what training, evaluation, explanation and serving read."""

    def log_odds(self, matrix: pd.DataFrame) -> Array: ...

    def predict_pd(self, matrix: pd.DataFrame) -> Array: ...

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """One column per matrix column plus ``bias``; rows sum to :meth:`log_odds`."""
        ...

    def array_path(self, features: ApplicationFeatures) -> ArrayPath:
        """The serving path over ``features.feature_values`` (:class:`FrameArrayPath` if no faster one)."""
        ...

    def save(self, folder: Path) -> None:
        """Write the plug-in's ``files`` into ``folder`` (which exists)."""
        ...


@dataclass(frozen=True)
class FitContext:
    """What every candidate's fit shares: the seed and the risk directions params give."""

    seed: int
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]] = field(default_factory=dict)

    def numeric_directions(self, matrix: pd.DataFrame) -> dict[str, int]:
        """+1 / -1 per numeric matrix column with a risk direction (categoricals cannot be constrained)."""
        numeric = {str(c) for c in matrix.columns if not isinstance(matrix[c].dtype, pd.CategoricalDtype)}
        ways = self.monotone_risk.items()
        return {name: 1 if way == "increasing" else -1 for name, way in ways if name in numeric}


class CandidatePlugin:
    """A candidate fitted on the feature matrix. Subclass, set the class attributes, register."""

    name: ClassVar[str]
    settings_type: ClassVar[type[BaseModel]]
    files: ClassVar[tuple[str, ...]]
    contributions_method: ClassVar[str] = "per-feature log-odds contributions"
    # A train section of its own (train.scorecard, train.xgboost); else train.candidate_params.<name>.
    params_section: ClassVar[str | None] = None
    # True: fit and settle take ``weight=`` (one non-negative weight per training row, a Series
    # aligned with X; reject inference's weighted rows). A plug-in without it trains unweighted
    # rows only, and :func:`fit_candidate` refuses it weights.
    takes_weights: ClassVar[bool] = False

    def settle(
        self,
        settings: Any,
        X_train: pd.DataFrame,
        y_train: pd.Series,
        X_valid: pd.DataFrame,
        y_valid: pd.Series,
        context: FitContext,
    ) -> tuple[Any, dict[str, Any]]:
        """Settings that :meth:`fit` reproduces the model from without the validation split,
        and what settling found (reported). Default: the settings as they are."""
        return settings, {}

    def fit(self, settings: Any, X: pd.DataFrame, y: pd.Series, context: FitContext) -> FittedModel:
        raise NotImplementedError

    def load(self, folder: Path) -> FittedModel:
        raise NotImplementedError

    def describe(self, model: FittedModel) -> dict[str, Any]:
        """Figures of a fitted model worth a line in the training summary (none by default)."""
        return {}


class CombinerPlugin:
    """A candidate built from other candidates' log-odds (e.g. their blend)."""

    name: ClassVar[str]
    settings_type: ClassVar[type[BaseModel]]
    files: ClassVar[tuple[str, ...]]
    contributions_method: ClassVar[str] = "the parts' contributions, combined as their log-odds are"
    params_section: ClassVar[str | None] = None

    def parts(self, settings: Any) -> tuple[str, ...]:
        raise NotImplementedError

    def choose(
        self, settings: Any, y: Array, parts_log_odds: Mapping[str, Array]
    ) -> tuple[Any, dict[str, Any]]:
        """Settled settings from the parts' held-out log-odds, and what was found (reported)."""
        raise NotImplementedError

    def combine(self, settings: Any, parts_log_odds: Mapping[str, Array]) -> Array:
        raise NotImplementedError

    def build(self, settings: Any, parts: Mapping[str, FittedModel]) -> FittedModel:
        raise NotImplementedError

    def load(self, folder: Path, parts: Mapping[str, FittedModel]) -> FittedModel:
        raise NotImplementedError

    def stored_parts(self, folder: Path) -> tuple[str, ...]:
        """The part names a saved combiner reads (from its own files)."""
        raise NotImplementedError

    def describe(self, model: FittedModel) -> dict[str, Any]:
        return {}


Plugin = CandidatePlugin | CombinerPlugin

_REGISTRY: dict[str, Plugin] = {}
_DISCOVERED = False
CANDIDATES_PACKAGE = "scoring.models.candidates"


class UnknownCandidateError(ValueError):
    """A candidate name no plug-in is registered under."""


def register(plugin: Plugin) -> Plugin:
    """Add a plug-in under its ``name`` (a module of scoring.models.candidates does this on import)."""
    name = getattr(plugin, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"candidate plug-in {plugin!r}: expected a name that is an identifier, got {name!r}")
    for attribute in ("settings_type", "files"):
        if not hasattr(plugin, attribute):
            raise ValueError(f"candidate plug-in {name!r}: expected a class attribute {attribute!r}")
    existing = _REGISTRY.get(name)
    if existing is not None and type(existing) is not type(plugin):
        raise ValueError(f"candidate {name!r} is registered already (by {type(existing).__qualname__})")
    _REGISTRY[name] = plugin
    return plugin


def unregister(name: str) -> None:
    """Remove a plug-in (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def _discover() -> None:
    """Import every module of scoring.models.candidates once: each registers its plug-in."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    package = importlib.import_module(CANDIDATES_PACKAGE)
    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{CANDIDATES_PACKAGE}.{module.name}")
    _DISCOVERED = True


def registered() -> dict[str, Plugin]:
    _discover()
    return dict(_REGISTRY)


def plugin(name: str) -> Plugin:
    """The plug-in registered as ``name``; an unknown name lists the known ones."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCandidateError(
            f"candidate {name!r} is not registered; expected one of {sorted(_REGISTRY)} "
            f"(a candidate is a module of {CANDIDATES_PACKAGE} that registers a plug-in)"
        ) from None


def frame_contributions(values: Array, matrix: pd.DataFrame) -> pd.DataFrame:
    """Contributions ``(rows, columns + 1)`` as the frame every candidate returns."""
    return pd.DataFrame(values, index=matrix.index, columns=[*map(str, matrix.columns), BIAS_COLUMN])


class FrameArrayPath:
    """The array path of a candidate that has none of its own: the array back into a frame."""

    def __init__(self, model: FittedModel, features: ApplicationFeatures) -> None:
        self.model = model
        self.features = features

    def log_odds(self, matrix: Array) -> Array:
        frame = self.features.frame(matrix, pd.RangeIndex(len(matrix)))
        return np.asarray(self.model.log_odds(frame), dtype=np.float64)

    def predict_pd(self, matrix: Array) -> Array:
        frame = self.features.frame(matrix, pd.RangeIndex(len(matrix)))
        return np.asarray(self.model.predict_pd(frame), dtype=np.float64)

    def contributions(self, matrix: Array) -> Array:
        frame = self.features.frame(matrix, pd.RangeIndex(len(matrix)))
        return np.asarray(self.model.contributions(frame).to_numpy(), dtype=np.float64)


class WeightsNotSupportedError(ValueError):
    """Weighted training rows given to a candidate whose plug-in trains unweighted rows only."""


def _check_weights(plugin: CandidatePlugin, X: pd.DataFrame, weight: pd.Series) -> None:
    if not plugin.takes_weights:
        raise WeightsNotSupportedError(
            f"candidate {plugin.name!r} does not train on weighted rows; expected a candidate whose "
            "plug-in sets takes_weights (scorecard, xgboost, xgboost_defaults, lightgbm), or no "
            "weights (reject_inference.method accepts_only)"
        )
    values = weight.to_numpy(dtype=np.float64)
    if len(values) != len(X) or not np.isfinite(values).all() or (values < 0).any() or not values.any():
        raise ValueError(f"weights: expected {len(X)} finite values >= 0, one per training row, not all 0")


def fit_candidate(
    plugin: CandidatePlugin,
    settings: Any,
    X: pd.DataFrame,
    y: pd.Series,
    context: FitContext,
    weight: pd.Series | None = None,
) -> FittedModel:
    """``plugin.fit``, with the rows' weights when there are any."""
    if weight is None:
        return plugin.fit(settings, X, y, context)
    _check_weights(plugin, X, weight)
    return plugin.fit(settings, X, y, context, weight=weight)  # type: ignore[call-arg]


def settle_candidate(
    plugin: CandidatePlugin,
    settings: Any,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    context: FitContext,
    weight: pd.Series | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``plugin.settle``, with the training rows' weights when there are any."""
    if weight is None:
        return plugin.settle(settings, X_train, y_train, X_valid, y_valid, context)
    _check_weights(plugin, X_train, weight)
    if type(plugin).settle is CandidatePlugin.settle:  # the default settles nothing
        return settings, {}
    return plugin.settle(settings, X_train, y_train, X_valid, y_valid, context, weight=weight)  # type: ignore[call-arg]
