"""Scorecard baseline: optimal binning, weight of evidence, logistic regression, points.

:func:`fit_scorecard` bins every candidate feature with optbinning's ``BinningProcess``
(monotonic trends where the domain says so, ``auto_asc_desc`` elsewhere), keeps the features
whose information value reaches ``min_iv``, fits a logistic regression on their WoE and
scales it to points. The result is a :class:`ScorecardModel`: plain data (split points,
category groups, WoE and points per bin) that scores with numpy and pandas only and
serialises to JSON (:meth:`ScorecardModel.to_dict` / :meth:`ScorecardModel.from_dict`), so the
exported model carries it without pickle.

Conventions, the same as optbinning's (checked against optbinning at every fit):

- WoE of a bin is ``ln(share of goods / share of bads)``: positive means safer than average.
  A bin holding only goods or only bads, and an empty bin, has WoE 0.
- Numeric bins are right-open: with split points ``s_1 < ... < s_k`` the bins are
  ``(-inf, s_1), [s_1, s_2), ..., [s_k, inf)``; a value equal to a split point falls in the
  bin above it (``np.digitize(x, splits, right=False)`` in optbinning).
- Missing values (NaN, None) get the feature's own ``Missing`` bin, with the WoE observed for
  missing values in training (0 when training had none).
- Categorical bins are groups of the levels seen in training. **Unseen-category rule:** a
  non-missing level that is in no group gets the WoE of the overall training default rate,
  which is 0 (up to rounding): a neutral WoE, so the feature adds only its share of the
  intercept and offset, ``(offset - factor * intercept) / n`` points. This is what
  optbinning's ``predict_proba`` does (``cat_unknown=None`` with ``metric_missing=
  "empirical"``); the exact value it uses is read from optbinning at fit and stored as the
  feature's ``Unseen`` bin, so this scorer matches it to the last bit. (optbinning's own
  ``Scorecard.score`` disagrees with its ``predict_proba`` here: it gives unseen levels the
  Missing row's points. We follow ``predict_proba``, so score and PD stay consistent.)
  In the pipeline, :mod:`scoring.features` already turns levels unseen at *its* fit, and rare
  ones, into NaN, which lands in the Missing bin; the Unseen bin only takes levels the
  feature transformer knows but the scorecard's training rows never showed.

Points scaling (higher score = lower risk)::

    factor = pdo / ln 2
    offset = base_score - factor * ln(base_odds)
    score  = offset + factor * ln(odds good:bad) = offset - factor * logit(PD)
    points of bin b of feature j = (offset - factor * intercept) / n - factor * coef_j * woe_jb

so the points of a row's bins add up to its score, and ``PD = 1 / (1 + exp((score - offset) /
factor))`` inverts it exactly.

Solver choices, for speed and determinism: CART pre-binning into at most ``max_n_prebins``
(20) pre-bins of at least 5% of the rows, then optbinning's constraint-programming solver
(``cp``: OR-Tools CP-SAT, one worker, fixed seed), one feature at a time (``n_jobs=1``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.io import write_json
from scoring.models.scorecard_bins import TRENDS, BinOverride, BinOverrideError

if TYPE_CHECKING:
    from scoring.features.transformer import ApplicationFeatures

logger = logging.getLogger(__name__)

SCORECARD_SPEC_VERSION = 1
SCORECARD_FILE = "scorecard.json"
MISSING_BIN = "Missing"
UNSEEN_BIN = "Unseen"
UNSEEN_CATEGORY_RULE = "overall_event_rate_woe"
MONOTONIC_TRENDS = TRENDS  # optbinning's monotonic_trend values
DEFAULT_NUMERIC_TREND = "auto_asc_desc"
# The JSON scorer must reproduce optbinning's probabilities to this precision; checked at fit.
PD_TOLERANCE = 1e-9
# Stored points must agree with WoE, coefficients and scaling to this precision; checked at load.
POINTS_TOLERANCE = 1e-6
_SOLVER_TIME_LIMIT_S = 60
_UNSEEN_PROBE = "\x00unseen level\x00"

NumericFeatures = npt.NDArray[np.float64]


class ScorecardError(ValueError):
    """Bad settings or data for the scorecard, or a stored scorecard that is inconsistent."""


# ---------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ScorecardSettings:
    """How the scorecard is binned, selected, fitted and scaled.

    Parameters
    ----------
    pdo
        Points to double the odds (good:bad).
    base_score
        Score at which the good:bad odds equal ``base_odds``.
    base_odds
        Good:bad odds at ``base_score``.
    min_iv
        Features whose information value is below this are dropped.
    max_n_bins
        Most bins per feature (the Missing bin not counted).
    min_bin_size
        Least share of the rows in any bin.
    monotonic_trends
        Feature -> optbinning ``monotonic_trend`` of the default rate as the value rises, e.g.
        ``{"bureau_score": "descending", "payment_to_income": "ascending"}``. Numeric features
        not listed get ``"auto_asc_desc"``; names not among the features are ignored (the
        same settings serve datasets with other columns); categorical features cannot be
        listed (their bins are ordered by default rate).
    C
        Inverse regularisation strength of the logistic regression.
    max_features
        Keep at most this many features, the highest IV first (after ``min_iv``).
    max_n_prebins
        Most pre-bins (CART) per numeric feature before the optimal merge.
    max_correlation
        None: no correlation filter. Else, of the features the IV rule keeps, in falling IV order,
        each whose WoE correlates with a stronger kept one's beyond this (|r| >, on the fit rows)
        is dropped before the regression (:func:`correlation_drops`), and before ``max_features``
        takes the highest IVs of the rest.
    overrides
        Feature -> the analyst's :class:`~scoring.models.scorecard_bins.BinOverride` (fixed cut
        points or category groups, a trend, exclude, keep), applied through optbinning's own
        user splits, monotonic trend and fixed variables. A trend here replaces
        ``monotonic_trends``; fixed bins are taken as given (no trend, bin-size or bin-count
        constraint on them).
    consistent_signs
        The sign rule (on by default): no characteristic keeps a coefficient against risk. With
        WoE = ln(goods / bads), every coefficient of the default's log-odds must be <= 0, so a
        safer bin always earns more points; a positive one (collinearity left in the fit turns
        it) is removed, the largest first, and the regression refitted until none is left
        (:func:`fit_sign_consistent`). An analyst's ``keep`` override keeps its variable: the
        scorecard then records it as kept against the rule, and every page shows it.
    """

    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0
    min_iv: float = 0.02
    max_n_bins: int = 6
    min_bin_size: float = 0.05
    monotonic_trends: Mapping[str, str] = field(default_factory=dict)
    C: float = 1.0
    max_features: int | None = None
    max_n_prebins: int = 20
    max_correlation: float | None = None
    overrides: Mapping[str, BinOverride] = field(default_factory=dict)
    consistent_signs: bool = True

    def __post_init__(self) -> None:
        checks: list[tuple[str, Any, bool, str]] = [
            ("pdo", self.pdo, _finite(self.pdo) and self.pdo > 0, "a positive number"),
            ("base_score", self.base_score, _finite(self.base_score), "a finite number"),
            ("base_odds", self.base_odds, _finite(self.base_odds) and self.base_odds > 0, "> 0"),
            ("min_iv", self.min_iv, _finite(self.min_iv) and self.min_iv >= 0, ">= 0"),
            ("max_n_bins", self.max_n_bins, _int(self.max_n_bins) and self.max_n_bins >= 2, "an int >= 2"),
            (
                "min_bin_size",
                self.min_bin_size,
                _finite(self.min_bin_size) and 0 < self.min_bin_size <= 0.5,
                "in (0, 0.5]",
            ),
            ("C", self.C, _finite(self.C) and self.C > 0, "> 0"),
            (
                "max_features",
                self.max_features,
                self.max_features is None or (_int(self.max_features) and self.max_features >= 1),
                "None or an int >= 1",
            ),
            (
                "max_n_prebins",
                self.max_n_prebins,
                _int(self.max_n_prebins) and self.max_n_prebins >= 2,
                "an int >= 2",
            ),
            (
                "max_correlation",
                self.max_correlation,
                self.max_correlation is None
                or (_finite(self.max_correlation) and 0 < self.max_correlation <= 1),
                "None or in (0, 1]",
            ),
        ]
        checks.append(
            (
                "consistent_signs",
                self.consistent_signs,
                isinstance(self.consistent_signs, bool),
                "true or false",
            )
        )
        for name, value, ok, expected in checks:
            if not ok:
                raise ScorecardError(f"scorecard setting {name}={value!r}: expected {expected}")
        for feature, trend in self.monotonic_trends.items():
            if trend not in MONOTONIC_TRENDS:
                raise ScorecardError(
                    f"scorecard setting monotonic_trends[{feature!r}]={trend!r}: expected one of "
                    f"{list(MONOTONIC_TRENDS)}"
                )
        for feature, override in self.overrides.items():
            if not isinstance(override, BinOverride) or override.variable != feature:
                raise ScorecardError(
                    f"scorecard setting overrides[{feature!r}]: expected that feature's BinOverride"
                )

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pdo": float(self.pdo),
            "base_score": float(self.base_score),
            "base_odds": float(self.base_odds),
            "min_iv": float(self.min_iv),
            "max_n_bins": int(self.max_n_bins),
            "min_bin_size": float(self.min_bin_size),
            "monotonic_trends": {str(k): str(v) for k, v in sorted(self.monotonic_trends.items())},
            "C": float(self.C),
            "max_features": None if self.max_features is None else int(self.max_features),
            "max_n_prebins": int(self.max_n_prebins),
        }
        # absent when unused: the files of a scorecard without them keep their bytes
        if self.max_correlation is not None:
            out["max_correlation"] = float(self.max_correlation)
        out["consistent_signs"] = bool(self.consistent_signs)
        if self.overrides:
            out["overrides"] = [self.overrides[name].to_dict() for name in sorted(self.overrides)]
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorecardSettings:
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise ScorecardError(f"unknown scorecard settings {unknown}; allowed: {sorted(allowed)}")
        values: dict[str, Any] = {k: dict(v) if k == "monotonic_trends" else v for k, v in d.items()}
        if "overrides" in values:
            try:
                parsed = [
                    BinOverride.from_dict(o, "scorecard settings overrides") for o in values["overrides"]
                ]
            except BinOverrideError as error:
                raise ScorecardError(str(error)) from error
            values["overrides"] = {o.variable: o for o in parsed}
        return cls(**values)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------------------------- the sign rule


@dataclass(frozen=True)
class SignRemoval:
    """A characteristic the sign rule removed: its coefficient against risk in the fit it was
    removed from, the kept characteristic its WoE correlates with most (the collinearity that
    turned it) and the scorecard's AUC on the fit rows before and after its removal."""

    variable: str
    coefficient: float
    collinear_with: str | None
    r: float | None
    auc_before: float
    auc_after: float

    @property
    def auc_cost(self) -> float:
        return self.auc_before - self.auc_after

    def to_dict(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "coefficient": self.coefficient,
            "collinear_with": self.collinear_with,
            "r": self.r,
            "auc_before": self.auc_before,
            "auc_after": self.auc_after,
            "auc_cost": self.auc_cost,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SignRemoval:
        return cls(
            str(d["variable"]),
            float(d["coefficient"]),
            None if d.get("collinear_with") is None else str(d["collinear_with"]),
            None if d.get("r") is None else float(d["r"]),
            float(d["auc_before"]),
            float(d["auc_after"]),
        )


@dataclass(frozen=True)
class SignRule:
    """What the sign rule did in a fit: the characteristics it removed, in order, and those an
    analyst's ``keep`` override held against it (their coefficients stay > 0, flagged)."""

    applied: bool = False
    removed: tuple[SignRemoval, ...] = ()
    kept_against: tuple[str, ...] = ()
    auc_on: str = "the scorecard's fit rows"

    def to_dict(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "removed": [r.to_dict() for r in self.removed],
            "kept_against": list(self.kept_against),
            "auc_on": self.auc_on,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SignRule:
        return cls(
            bool(d.get("applied", False)),
            tuple(SignRemoval.from_dict(r) for r in d.get("removed", ())),
            tuple(str(v) for v in d.get("kept_against", ())),
            str(d.get("auc_on", "the scorecard's fit rows")),
        )


# ---------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ScorecardBin:
    """One bin of one feature: training counts, WoE, IV contribution and points."""

    label: str
    count: int
    n_event: int
    woe: float
    iv: float
    points: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "count": self.count,
            "n_event": self.n_event,
            "woe": self.woe,
            "iv": self.iv,
            "points": self.points,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorecardBin:
        return cls(
            label=str(d["label"]),
            count=int(d["count"]),
            n_event=int(d["n_event"]),
            woe=float(d["woe"]),
            iv=float(d["iv"]),
            points=float(d["points"]),
        )


@dataclass(frozen=True)
class FeatureCard:
    """The scorecard of one feature.

    ``kind`` is ``"numeric"`` (``splits``: increasing split points, bins right-open, one more
    bin than splits) or ``"categorical"`` (``groups``: the levels of each bin). ``missing`` is
    the Missing bin; ``unseen`` (categorical features only) scores non-missing levels that
    are in no group.
    """

    name: str
    kind: str
    coefficient: float
    bins: tuple[ScorecardBin, ...]
    missing: ScorecardBin
    splits: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    unseen: ScorecardBin | None = None

    def bin_index(self, values: pd.Series) -> npt.NDArray[np.intp]:
        """Index of each value's bin in :meth:`all_bins`: the bins, then Missing, then Unseen."""
        n_bins = len(self.bins)
        if self.kind == "numeric":
            x = _as_float(values, self.name)
            # side="right" puts a value equal to a split point in the bin above it: right-open
            # bins, exactly optbinning's np.digitize(x, splits, right=False).
            index = np.searchsorted(np.asarray(self.splits, dtype=np.float64), x, side="right")
            return np.asarray(np.where(np.isnan(x), n_bins, index), dtype=np.intp)
        lookup = {level: i for i, group in enumerate(self.groups) for level in group}
        if isinstance(values.dtype, pd.CategoricalDtype):
            # One look-up per category instead of per row; code -1 (missing) takes the last entry.
            per_category = [lookup.get(str(c), n_bins + 1) for c in values.cat.categories]
            table = np.array([*per_category, n_bins], dtype=np.intp)
            return np.asarray(table[values.cat.codes.to_numpy()], dtype=np.intp)
        levels = _as_levels(values)
        mapped = levels.map(lookup).to_numpy(dtype=np.float64, na_value=np.nan)
        index = np.where(levels.isna().to_numpy(), n_bins, np.where(np.isnan(mapped), n_bins + 1, mapped))
        return np.asarray(index, dtype=np.intp)

    def all_bins(self) -> tuple[ScorecardBin, ...]:
        """The bins, the Missing bin and (categorical) the Unseen bin, in :meth:`bin_index` order."""
        return (*self.bins, self.missing, *(() if self.unseen is None else (self.unseen,)))

    def points_against_risk(self) -> list[tuple[str, str]]:
        """Pairs of bins (with training rows; Missing included) whose points run against their
        event rates: ``(riskier, safer)`` where the riskier bin earns more points. Empty when
        the points follow risk, as they do with a coefficient <= 0 and no pure bin (one with
        no defaults, or only defaults, has WoE 0 by convention)."""
        held = [b for b in self.all_bins() if b.count]
        rates = [b.n_event / b.count for b in held]
        return [
            (risky.label, safe.label)
            for risky, rate in zip(held, rates, strict=True)
            for safe, other in zip(held, rates, strict=True)
            if rate > other and risky.points > safe.points + POINTS_TOLERANCE
        ]

    def woe(self, values: pd.Series) -> NumericFeatures:
        table = np.array([b.woe for b in self.all_bins()], dtype=np.float64)
        return table[self.bin_index(values)]

    def points(self, values: pd.Series) -> NumericFeatures:
        table = np.array([b.points for b in self.all_bins()], dtype=np.float64)
        return table[self.bin_index(values)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "coefficient": self.coefficient,
            "bins": [b.to_dict() for b in self.bins],
            "missing": self.missing.to_dict(),
        }
        if self.kind == "numeric":
            out["splits"] = list(self.splits)
        else:
            out["groups"] = [list(g) for g in self.groups]
            out["unseen"] = None if self.unseen is None else self.unseen.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureCard:
        kind = d.get("kind")
        name = str(d.get("name"))
        if kind not in ("numeric", "categorical"):
            raise ScorecardError(
                f"scorecard feature {name!r}: kind {kind!r}, expected numeric or categorical"
            )
        unseen = d.get("unseen")
        card = cls(
            name=name,
            kind=str(kind),
            coefficient=float(d["coefficient"]),
            bins=tuple(ScorecardBin.from_dict(b) for b in d["bins"]),
            missing=ScorecardBin.from_dict(d["missing"]),
            splits=tuple(float(s) for s in d.get("splits", ())),
            groups=tuple(tuple(str(level) for level in g) for g in d.get("groups", ())),
            unseen=None if unseen is None else ScorecardBin.from_dict(unseen),
        )
        card._check_shape()
        return card

    def _check_shape(self) -> None:
        where = f"scorecard feature {self.name!r}"
        if self.kind == "numeric":
            splits = np.asarray(self.splits, dtype=np.float64)
            if not np.all(np.isfinite(splits)) or np.any(np.diff(splits) <= 0):
                raise ScorecardError(f"{where}: split points must be finite and increasing")
            if len(self.bins) != len(self.splits) + 1:
                raise ScorecardError(
                    f"{where}: {len(self.splits)} split points need {len(self.splits) + 1} bins, "
                    f"got {len(self.bins)}"
                )
            if self.unseen is not None or self.groups:
                raise ScorecardError(f"{where}: a numeric feature has no category groups or Unseen bin")
        else:
            if len(self.bins) != len(self.groups):
                raise ScorecardError(
                    f"{where}: {len(self.groups)} category groups need as many bins, got {len(self.bins)}"
                )
            levels = [level for g in self.groups for level in g]
            if len(levels) != len(set(levels)):
                raise ScorecardError(f"{where}: a level appears in two groups")
            if self.unseen is None or self.splits:
                raise ScorecardError(
                    f"{where}: a categorical feature needs an Unseen bin and no split points"
                )


@dataclass(frozen=True)
class ScorecardValues:
    """The scorecard over the feature matrix as one float64 array, for the serving path.

    The array is :meth:`scoring.features.ApplicationFeatures.feature_values`: one column per
    name in ``columns``, numbers as they are, categorical columns as the code of the fitted
    level (NaN for null or unseen). Built once per scorecard and column layout by
    :meth:`ScorecardModel.values_path`, it gives :meth:`ScorecardModel.log_odds` and
    :meth:`ScorecardModel.contributions` bit for bit, without a DataFrame (whose per-call cost
    is most of a one-row score).
    """

    columns: tuple[str, ...]
    intercept: float
    positions: tuple[int, ...]  # column of each selected feature, in the scorecard's order
    splits: tuple[npt.NDArray[np.float64] | None, ...]  # numeric features' split points
    code_bins: tuple[npt.NDArray[np.intp] | None, ...]  # categorical: bin per level code, then missing
    missing_bins: tuple[int, ...]  # index of the Missing bin (numeric features)
    contribution_tables: tuple[NumericFeatures, ...]  # coefficient x WoE per bin (all_bins order)

    def _bins(self, k: int, matrix: NumericFeatures) -> npt.NDArray[np.intp]:
        x = matrix[:, self.positions[k]]
        splits, code_bins = self.splits[k], self.code_bins[k]
        if splits is not None:
            index = np.searchsorted(splits, x, side="right")  # as FeatureCard.bin_index
            return np.asarray(np.where(np.isnan(x), self.missing_bins[k], index), dtype=np.intp)
        assert code_bins is not None
        codes = np.where(np.isnan(x), len(code_bins) - 1, x).astype(np.intp)
        return np.asarray(code_bins[codes], dtype=np.intp)

    def _check(self, matrix: NumericFeatures) -> None:
        if matrix.ndim != 2 or matrix.shape[1] != len(self.columns):
            raise ScorecardError(
                f"feature values of shape {matrix.shape}: expected (rows, {len(self.columns)}) "
                f"for the columns {list(self.columns)}"
            )

    def log_odds(self, matrix: NumericFeatures) -> NumericFeatures:
        """:meth:`ScorecardModel.log_odds` of the rows of ``matrix``."""
        self._check(matrix)
        total = np.full(len(matrix), self.intercept, dtype=np.float64)
        for k, table in enumerate(self.contribution_tables):
            total += table[self._bins(k, matrix)]
        return total

    def predict_pd(self, matrix: NumericFeatures) -> NumericFeatures:
        """:meth:`ScorecardModel.predict_pd` of the rows of ``matrix``."""
        return _sigmoid(self.log_odds(matrix))

    def contributions(self, matrix: NumericFeatures) -> NumericFeatures:
        """:meth:`ScorecardModel.contributions` as an array ``(rows, len(columns) + 1)``, bias last."""
        self._check(matrix)
        out = np.zeros((len(matrix), len(self.columns) + 1), dtype=np.float64)
        for k, table in enumerate(self.contribution_tables):
            out[:, self.positions[k]] = table[self._bins(k, matrix)]
        out[:, -1] = self.intercept
        return out


class ScorecardModel:
    """JSON-serialisable fitted scorecard.

    Per selected feature: its bins (numeric split points or category groups), the WoE and
    points of each bin including the Missing bin (and, for categoricals, the Unseen bin), and
    the logistic coefficient; plus the intercept and the points scaling, so that
    points -> log-odds -> PD is exact. Scoring needs numpy and pandas only.

    Attributes
    ----------
    selected_features
        The features in the scorecard, in model order.
    information_value
        IV of every candidate feature, selected or not (for the selection report).
    """

    def __init__(
        self,
        settings: ScorecardSettings,
        intercept: float,
        features: tuple[FeatureCard, ...],
        information_value: Mapping[str, float],
        sign_rule: SignRule | None = None,
    ) -> None:
        if not features:
            raise ScorecardError("a scorecard needs at least one feature")
        self.settings = settings
        self.intercept = float(intercept)
        self.features = tuple(features)
        self.information_value = {str(k): float(v) for k, v in information_value.items()}
        self.selected_features = [f.name for f in self.features]
        self.sign_rule = sign_rule if sign_rule is not None else SignRule()

    def against_risk(self) -> list[str]:
        """The characteristics whose coefficient runs against risk (> 0: a riskier bin earns more
        points): none unless an analyst's ``keep`` override kept one against the sign rule."""
        return [f.name for f in self.features if f.coefficient > 0]

    # ------------------------------------------------------------------ scaling

    @property
    def factor(self) -> float:
        return self.settings.factor

    @property
    def offset(self) -> float:
        return self.settings.offset

    def _neutral_points(self) -> float:
        """Points of a bin with WoE 0: the intercept and offset shared equally by the features."""
        return (self.offset - self.factor * self.intercept) / len(self.features)

    def score_to_pd(self, score: npt.ArrayLike) -> NumericFeatures:
        """Invert the scaling: PD = 1 / (1 + exp((score - offset) / factor))."""
        return _sigmoid((self.offset - np.asarray(score, dtype=np.float64)) / self.factor)

    # ------------------------------------------------------------------ scoring

    def _check_columns(self, X: pd.DataFrame) -> None:
        if not isinstance(X, pd.DataFrame):
            raise ScorecardError(f"expected a pandas DataFrame of features, got {type(X).__name__}")
        missing = [f for f in self.selected_features if f not in X.columns]
        if missing:
            raise ScorecardError(f"missing feature columns {missing}; the scorecard uses them")

    def points(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points of each selected feature for each row (columns = selected features)."""
        self._check_columns(X)
        return pd.DataFrame(
            {f.name: f.points(X[f.name]) for f in self.features}, index=X.index, dtype=np.float64
        )

    def score(self, X: pd.DataFrame) -> NumericFeatures:
        """Total points per row; higher means lower risk."""
        return np.asarray(self.points(X).to_numpy().sum(axis=1), dtype=np.float64)

    def log_odds(self, X: pd.DataFrame) -> NumericFeatures:
        """Log-odds of default: intercept + sum of coefficient x WoE (the logistic regression)."""
        self._check_columns(X)
        total = np.full(len(X), self.intercept, dtype=np.float64)
        for f in self.features:
            total += f.coefficient * f.woe(X[f.name])
        return total

    def predict_pd(self, X: pd.DataFrame) -> NumericFeatures:
        """Probability of default (class 1) per row."""
        return _sigmoid(self.log_odds(X))

    def values_path(self, columns: Sequence[str], categories: Mapping[str, Sequence[str]]) -> ScorecardValues:
        """The scorecard over feature arrays laid out as ``columns`` (see :class:`ScorecardValues`).

        ``categories`` holds the fitted levels of each categorical column (a code indexes them);
        every other column is numeric. Cached per layout.
        """
        key = (tuple(columns), tuple((name, tuple(levels)) for name, levels in sorted(categories.items())))
        cache: dict[Any, ScorecardValues] = self.__dict__.setdefault("_values_paths", {})
        if key in cache:
            return cache[key]
        names = [str(c) for c in columns]
        missing = [f.name for f in self.features if f.name not in names]
        if missing:
            raise ScorecardError(f"missing feature columns {missing}; the scorecard uses them")
        positions: list[int] = []
        splits: list[npt.NDArray[np.float64] | None] = []
        code_bins: list[npt.NDArray[np.intp] | None] = []
        missing_bins: list[int] = []
        tables: list[NumericFeatures] = []
        for f in self.features:
            positions.append(names.index(f.name))
            n_bins = len(f.bins)
            missing_bins.append(n_bins)
            # The same products as FeatureCard.woe times the coefficient, so sums match exactly.
            tables.append(f.coefficient * np.array([b.woe for b in f.all_bins()], dtype=np.float64))
            if f.kind == "numeric":
                if f.name in categories:
                    raise ScorecardError(
                        f"feature {f.name!r}: categorical in the matrix, numeric in the scorecard"
                    )
                splits.append(np.asarray(f.splits, dtype=np.float64))
                code_bins.append(None)
            else:
                if f.name not in categories:
                    raise ScorecardError(
                        f"feature {f.name!r}: numeric in the matrix, categorical in the scorecard"
                    )
                lookup = {level: i for i, group in enumerate(f.groups) for level in group}
                per_code = [lookup.get(str(level), n_bins + 1) for level in categories[f.name]]
                splits.append(None)
                code_bins.append(np.array([*per_code, n_bins], dtype=np.intp))
        path = ScorecardValues(
            columns=tuple(names),
            intercept=self.intercept,
            positions=tuple(positions),
            splits=tuple(splits),
            code_bins=tuple(code_bins),
            missing_bins=tuple(missing_bins),
            contribution_tables=tuple(tables),
        )
        cache[key] = path
        return path

    def array_path(self, features: ApplicationFeatures) -> ScorecardValues:
        """The serving path over ``features.feature_values`` (the candidate protocol's name)."""
        return self.values_path(features.matrix_columns, features.categories_)

    def save(self, folder: Path) -> None:
        """scorecard.json in ``folder`` (plain JSON, no pickle)."""
        write_json(folder / SCORECARD_FILE, self.to_dict())

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Log-odds contribution of every column of ``X`` plus ``bias``: rows sum to :meth:`log_odds`.

        A selected feature contributes ``coefficient x WoE`` of its bin (positive raises the
        PD; 0 at the training population's average odds, where WoE is 0); a column the
        scorecard did not select contributes 0; ``bias`` is the intercept. Columns: those of
        ``X`` in order, then ``bias`` (the contract every estimator shares).
        """
        self._check_columns(X)
        zeros = np.zeros(len(X), dtype=np.float64)
        columns: dict[str, npt.NDArray[np.float64]] = {str(c): zeros for c in X.columns}
        for f in self.features:
            columns[f.name] = f.coefficient * f.woe(X[f.name])
        columns["bias"] = np.full(len(X), self.intercept, dtype=np.float64)
        return pd.DataFrame(columns, index=X.index)  # built once: a column at a time is slow

    def points_contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Points per selected feature relative to a neutral bin (WoE 0), plus ``base`` points.

        ``points of the bin - neutral points = -factor x log-odds contribution``, so a feature
        that costs points raises the PD; ``base`` is ``offset - factor x intercept``, and each
        row sums to :meth:`score`. For reviewers reading the scorecard in points.
        """
        logit = self.contributions(X)[self.selected_features]
        out = -self.factor * logit
        out["base"] = self.offset - self.factor * self.intercept
        return out

    # ------------------------------------------------------------------ reporting

    def table(self) -> pd.DataFrame:
        """The scorecard table: per selected feature, its bins, then Missing, then (categorical) Unseen.

        ``count`` and ``event_rate`` are training figures (``event_rate`` NaN for an empty bin);
        ``iv`` is the bin's share of the feature's information value.
        """
        rows: list[dict[str, Any]] = []
        for f in self.features:
            for b in f.all_bins():
                rows.append(
                    {
                        "variable": f.name,
                        "bin": b.label,
                        "count": b.count,
                        "event_rate": b.n_event / b.count if b.count else np.nan,
                        "woe": b.woe,
                        "iv": b.iv,
                        "points": b.points,
                    }
                )
        table = pd.DataFrame(rows, columns=["variable", "bin", "count", "event_rate", "woe", "iv", "points"])
        return table.astype({"count": np.int64, "event_rate": np.float64, "woe": np.float64})

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only; :meth:`from_dict` rebuilds an identical scorer."""
        return {
            "version": SCORECARD_SPEC_VERSION,
            "settings": self.settings.to_dict(),
            "scaling": {"factor": self.factor, "offset": self.offset},
            "intercept": self.intercept,
            "unseen_category_rule": UNSEEN_CATEGORY_RULE,
            "selected_features": list(self.selected_features),
            "features": [f.to_dict() for f in self.features],
            "information_value": dict(self.information_value),
            "sign_rule": self.sign_rule.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ScorecardModel:
        if d.get("version") != SCORECARD_SPEC_VERSION:
            raise ScorecardError(
                f"scorecard spec version {d.get('version')!r} is not supported "
                f"(expected {SCORECARD_SPEC_VERSION})"
            )
        if d.get("unseen_category_rule") != UNSEEN_CATEGORY_RULE:
            raise ScorecardError(
                f"scorecard unseen_category_rule {d.get('unseen_category_rule')!r}: "
                f"expected {UNSEEN_CATEGORY_RULE!r}"
            )
        model = cls(
            settings=ScorecardSettings.from_dict(d["settings"]),
            intercept=float(d["intercept"]),
            features=tuple(FeatureCard.from_dict(f) for f in d["features"]),
            information_value=d["information_value"],
            sign_rule=SignRule.from_dict(d.get("sign_rule", {})),
        )
        if list(d["selected_features"]) != model.selected_features:
            raise ScorecardError(
                f"scorecard selected_features {d['selected_features']} do not match its features "
                f"{model.selected_features}"
            )
        model._check_points()
        return model

    def _check_points(self) -> None:
        """Stored points must follow from WoE, coefficient, intercept and scaling."""
        neutral = self._neutral_points()
        for f in self.features:
            for b in f.all_bins():
                expected = neutral - self.factor * f.coefficient * b.woe
                if not abs(b.points - expected) <= POINTS_TOLERANCE * max(1.0, abs(expected)):
                    raise ScorecardError(
                        f"scorecard feature {f.name!r} bin {b.label!r}: points {b.points} do not match "
                        f"WoE {b.woe}, coefficient {f.coefficient} and the scaling (expected {expected})"
                    )

    # ------------------------------------------------------------------ from optbinning

    @classmethod
    def from_optbinning(
        cls, scorecard: Any, settings: ScorecardSettings, sign_rule: SignRule | None = None
    ) -> ScorecardModel:
        """Read a fitted optbinning ``Scorecard`` (built by :func:`fit_optbinning_scorecard`).

        WoE values are read through optbinning's own transform (one probe value per bin), so
        they are bit-identical to what its ``predict_proba`` uses.
        """
        process = scorecard.binning_process_
        estimator = scorecard.estimator_
        selected = [str(name) for name in process.get_support(names=True)]
        coefficients = np.asarray(estimator.coef_, dtype=np.float64).ravel()
        intercept = float(np.asarray(estimator.intercept_, dtype=np.float64).ravel()[0])
        if len(coefficients) != len(selected):
            raise ScorecardError(
                f"optbinning scorecard has {len(coefficients)} coefficients for {len(selected)} features"
            )
        information_value = _information_values(process)
        factor = settings.factor
        neutral = (settings.offset - factor * intercept) / len(selected)
        with quiet_optbinning():
            cards = [
                _feature_card(name, process.get_binned_variable(name), float(coefficient), neutral, factor)
                for name, coefficient in zip(selected, coefficients, strict=True)
            ]
        return cls(settings, intercept, tuple(cards), information_value, sign_rule)


def _information_values(process: Any) -> dict[str, float]:
    return {
        str(name): float(process.get_binned_variable(name).binning_table.iv)
        for name in process.variable_names
    }


@contextlib.contextmanager
def quiet_optbinning() -> Iterator[None]:
    """Silence optbinning's own warnings while fitting, applying or reading its binnings.

    optbinning's table code trips pandas deprecation warnings (not ours to fix), and it warns
    when no variable is selected. Wrap calls into optbinning with it, here and in
    :mod:`scoring.models.scorecard_selection`.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"optbinning\.")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"optbinning\.")
        warnings.filterwarnings("ignore", message="No variables were selected", category=UserWarning)
        yield


def _feature_card(name: str, optb: Any, coefficient: float, neutral: float, factor: float) -> FeatureCard:
    built = optb.binning_table.build(add_totals=False)
    counts = built["Count"].to_numpy(dtype=np.int64)
    events = built["Event"].to_numpy(dtype=np.int64)
    ivs = built["IV"].to_numpy(dtype=np.float64)
    labels = [str(label) for label in built["Bin"]]
    # Rows: the bins, then "Special" (no special codes are declared, so it is always empty), then "Missing".
    if labels[-2:] != ["Special", MISSING_BIN] or counts[-2] != 0:
        raise ScorecardError(
            f"feature {name!r}: unexpected optbinning table layout {labels[-2:]} (special count {counts[-2]})"
        )
    n_bins = len(labels) - 2

    if optb.dtype == "numerical":
        splits = tuple(float(s) for s in np.asarray(optb.splits, dtype=np.float64))
        probes: npt.NDArray[Any] = np.array([-np.inf, *splits, np.nan], dtype=np.float64)
        groups: tuple[tuple[str, ...], ...] = ()
        bin_labels = interval_labels(splits)
        kind = "numeric"
    else:
        groups = tuple(tuple(str(level) for level in group) for group in optb.splits)
        if any(not g for g in groups):
            raise ScorecardError(f"feature {name!r}: optbinning returned an empty category group")
        # One level per group, missing, and a level no group holds (optbinning's cat_unknown).
        probes = np.array([g[0] for g in groups] + [np.nan, _UNSEEN_PROBE], dtype=object)
        splits = ()
        bin_labels = [", ".join(g) for g in groups]
        kind = "categorical"
    if len(bin_labels) != n_bins:
        raise ScorecardError(f"feature {name!r}: {len(bin_labels)} bins read, optbinning table has {n_bins}")

    woe = np.asarray(optb.transform(probes, metric="woe", metric_missing="empirical"), dtype=np.float64)

    def make_bin(label: str, row: int, value: float) -> ScorecardBin:
        return ScorecardBin(
            label=label,
            count=int(counts[row]),
            n_event=int(events[row]),
            woe=float(value),
            iv=float(ivs[row]),
            points=float(neutral - factor * coefficient * value),
        )

    bins = tuple(make_bin(bin_labels[i], i, woe[i]) for i in range(n_bins))
    missing = make_bin(MISSING_BIN, -1, woe[n_bins])
    unseen = None
    if kind == "categorical":
        unseen_woe = float(woe[n_bins + 1])
        unseen = ScorecardBin(
            UNSEEN_BIN, 0, 0, unseen_woe, 0.0, float(neutral - factor * coefficient * unseen_woe)
        )
    return FeatureCard(name, kind, coefficient, bins, missing, splits, groups, unseen)


def interval_labels(splits: tuple[float, ...]) -> list[str]:
    """Bin labels for a numeric variable's split points: ``(-inf, a)``, ``[a, b)``, ... ``[z, inf)``.

    Points are written with the fewest digits (6, then 10, then repr) that keep every label
    distinct. The scorecard's bins and the bin tables of
    :func:`scoring.models.scorecard_selection.binning_tables` share it, so their labels match.
    """
    for fmt in (".6g", ".10g", "r"):
        text = [format(s, fmt) if fmt != "r" else repr(s) for s in splits]
        if len(set(text)) == len(text):
            break
    edges = ["-inf", *text, "inf"]
    return [f"{'(' if i == 0 else '['}{edges[i]}, {edges[i + 1]})" for i in range(len(edges) - 1)]


# ---------------------------------------------------------------------------------- fitting


def _as_float(values: pd.Series, name: str) -> NumericFeatures:
    if isinstance(values.dtype, pd.CategoricalDtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    ):
        raise ScorecardError(
            f"feature {name!r}: dtype {values.dtype}, expected numeric (it was numeric at fit)"
        )
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _as_levels(values: pd.Series) -> pd.Series:
    """Category levels as str objects, missing as NaN (optbinning's categorical input)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        levels = np.array([str(c) for c in values.cat.categories] + [np.nan], dtype=object)
        codes = values.cat.codes.to_numpy()  # -1 for missing indexes the trailing NaN
        return pd.Series(levels[codes], index=values.index, dtype=object)
    as_object = values.astype(object)
    missing = as_object.isna().to_numpy()
    text = np.array([np.nan if m else str(v) for v, m in zip(as_object, missing, strict=True)], dtype=object)
    return pd.Series(text, index=values.index, dtype=object)


def _is_categorical(values: pd.Series) -> bool:
    return bool(
        isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
    )


def _binning_frame(X: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The frame optbinning fits on: float64 numeric columns, object str/NaN categoricals."""
    columns: dict[str, Any] = {}
    categorical: list[str] = []
    for name in X.columns:
        values = X[name]
        if not isinstance(name, str):
            raise ScorecardError(f"feature names must be strings, got {name!r}")
        if _is_categorical(values):
            columns[name] = _as_levels(values).to_numpy(dtype=object)
            categorical.append(name)
        elif pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
            columns[name] = _as_float(values, name)
        else:
            raise ScorecardError(f"feature {name!r}: dtype {values.dtype} is neither numeric nor categorical")
    return pd.DataFrame(columns, index=X.index), categorical


def _labels(y: pd.Series | npt.ArrayLike, n_rows: int) -> npt.NDArray[np.int64]:
    values = pd.to_numeric(pd.Series(np.asarray(y)), errors="coerce")
    if len(values) != n_rows:
        raise ScorecardError(f"target has {len(values)} values for {n_rows} feature rows")
    if values.isna().any() or not values.isin([0, 1]).all():
        raise ScorecardError(
            f"target must be 0 or 1 on every training row; got {sorted(values.dropna().unique())[:5]}"
        )
    if values.nunique() < 2:
        raise ScorecardError("target has a single class; need both 0 (good) and 1 (default)")
    return values.to_numpy(dtype=np.int64)


def _trend_params(
    frame: pd.DataFrame, categorical: list[str], settings: ScorecardSettings
) -> dict[str, dict[str, Any]]:
    declared = dict(settings.monotonic_trends)
    wrong = sorted(set(declared) & set(categorical))
    if wrong:
        raise ScorecardError(
            f"monotonic_trends names categorical features {wrong}; a trend applies to numeric features only"
        )
    absent = sorted(set(declared) - set(frame.columns))
    if absent:
        logger.info("scorecard: monotonic trends for %s ignored (not among the features)", absent)
    params: dict[str, dict[str, Any]] = {}
    for name in frame.columns:
        fit: dict[str, Any] = {"solver": "cp", "time_limit": _SOLVER_TIME_LIMIT_S}
        if name not in categorical:
            fit["monotonic_trend"] = declared.get(name, DEFAULT_NUMERIC_TREND)
        override = settings.overrides.get(str(name))
        if override is not None:
            fit.update(_override_params(override, name in categorical))
        params[name] = fit
    return params


def _override_params(override: BinOverride, categorical: bool) -> dict[str, Any]:
    """optbinning's fit parameters for an analyst's override of one variable."""
    if override.trend is not None:
        if categorical:
            raise ScorecardError(
                f"bin override of {override.variable!r}: a trend applies to numeric variables only"
            )
        return {"monotonic_trend": override.trend}
    bins = override.splits if override.splits is not None else override.groups
    if bins is None:
        return {}
    if (override.splits is not None) == categorical:
        expected = "groups of levels" if categorical else "cut points"
        raise ScorecardError(f"bin override of {override.variable!r}: expected {expected} for this variable")
    # Fixed user splits are the bins: no trend, size or count constraint may merge or refuse them.
    user_splits: list[Any] = (
        [list(group) for group in override.groups or ()] if categorical else list(override.splits or ())
    )
    return {
        "user_splits": user_splits,
        "user_splits_fixed": [True] * len(bins),
        "monotonic_trend": None,
        "max_n_bins": None,
        "min_bin_size": None,
    }


def _check_fixed_bins(process: Any, overrides: Mapping[str, BinOverride]) -> None:
    """The fitted bins of every variable with fixed cut points or groups are exactly those given."""
    for name, override in overrides.items():
        if not override.fixes_bins or name not in process.variable_names:
            continue
        optb = process.get_binned_variable(name)
        if override.splits is not None:
            fitted: Any = tuple(float(s) for s in np.asarray(optb.splits, dtype=np.float64))
            wanted: Any = override.splits
        else:
            fitted = sorted(sorted(str(level) for level in group) for group in optb.splits)
            wanted = sorted(sorted(group) for group in override.groups or ())
        if fitted != wanted:
            raise ScorecardError(
                f"bin override of {name!r}: optbinning fitted bins {fitted}, not the fixed {wanted} "
                f"(status {optb.status}); check that every bin holds training rows"
            )


def _fit_frame(X: pd.DataFrame, settings: ScorecardSettings) -> tuple[pd.DataFrame, list[str]]:
    """The frame the binning fits on: features missing on every row and excluded ones left out."""
    frame, categorical = _binning_frame(X)
    empty = [c for c in frame.columns if frame[c].isna().all()]
    if empty:
        logger.warning("scorecard: features %s are missing on every row and are left out", empty)
        frame = frame.drop(columns=empty)
        categorical = [c for c in categorical if c not in empty]
    unknown = sorted(set(settings.overrides) - set(frame.columns) - set(empty))
    if unknown:
        raise ScorecardError(
            f"bin overrides name {unknown}, which are not among the features {list(frame.columns)}"
        )
    excluded = [name for name, o in settings.overrides.items() if o.exclude and name in frame.columns]
    if excluded:
        frame = frame.drop(columns=excluded)
        categorical = [c for c in categorical if c not in excluded]
    if frame.shape[1] == 0:
        raise ScorecardError("every feature is missing on every row or excluded")
    return frame, categorical


def _binning_process(frame: pd.DataFrame, categorical: list[str], settings: ScorecardSettings) -> Any:
    """optbinning's BinningProcess (unfitted) of the frame's features under ``settings``."""
    from optbinning import BinningProcess

    criteria: dict[str, Any] = {"min": settings.min_iv}
    if settings.max_features is not None:
        criteria.update({"strategy": "highest", "top": settings.max_features})
    return BinningProcess(
        variable_names=list(frame.columns),
        max_n_prebins=settings.max_n_prebins,
        max_n_bins=settings.max_n_bins,
        min_bin_size=settings.min_bin_size,
        selection_criteria={"iv": criteria},
        categorical_variables=categorical,
        binning_fit_params=_trend_params(frame, categorical, settings),
        fixed_variables=[name for name, o in settings.overrides.items() if o.keep and name in frame.columns]
        or None,
        n_jobs=1,
    )


def correlation_drops(
    woe: pd.DataFrame,
    information_value: Mapping[str, float],
    threshold: float,
    held: Collection[str] = (),
) -> dict[str, tuple[str, float]]:
    """The features a correlation filter drops: going down the IV ranking, each feature whose WoE
    correlates with an already kept (stronger) one's beyond ``threshold`` (|r| >) goes; maps it to
    that stronger feature and r (the first such in IV order). ``held``: features an analyst's
    ``keep`` holds, never dropped and ranked first, so a feature correlated with one goes."""
    order = sorted(
        woe.columns,
        key=lambda name: (str(name) not in held, -information_value.get(str(name), 0.0), str(name)),
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.nan_to_num(woe[order].corr().to_numpy(dtype=np.float64))
    position = {str(name): i for i, name in enumerate(order)}
    kept: list[str] = []
    dropped: dict[str, tuple[str, float]] = {}
    for name in map(str, order):
        row = corr[position[name]]
        stronger = (
            None if name in held else next((k for k in kept if abs(row[position[k]]) > threshold), None)
        )
        if stronger is None:
            kept.append(name)
        else:
            dropped[name] = (stronger, float(row[position[stronger]]))
    return dropped


def held_variables(settings: ScorecardSettings) -> frozenset[str]:
    """The variables an analyst's ``keep`` override holds in the scorecard whatever their IV, the
    correlation filter and the sign rule."""
    return frozenset(name for name, o in settings.overrides.items() if o.keep)


def _woe_of_kept(process: Any, frame: pd.DataFrame, kept: list[str]) -> pd.DataFrame:
    """The WoE of the kept features on the rows of ``frame`` (optbinning's transform)."""
    values = process.transform(frame, metric="woe", metric_special="empirical", metric_missing="empirical")
    woe = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=kept)
    return woe[kept]


def correlation_woe(process: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """The WoE of the features a fitted BinningProcess keeps (its IV rule) on ``frame``."""
    kept = [str(name) for name in process.get_support(names=True)]
    with quiet_optbinning():
        return _woe_of_kept(process, frame, kept)


def _correlated_features(
    frame: pd.DataFrame,
    categorical: list[str],
    labels: npt.NDArray[np.int64],
    settings: ScorecardSettings,
    sample_weight: npt.NDArray[np.float64] | None,
) -> dict[str, tuple[str, float]]:
    """:func:`correlation_drops` among the features the IV rule keeps, down the whole IV ranking:
    ``max_features`` applies after it (capping first and filtering the top k would let the cap
    pull in, from below k, a feature correlated with a kept one that the filter never saw)."""
    assert settings.max_correlation is not None
    process = _binning_process(frame, categorical, replace(settings, max_features=None))
    with quiet_optbinning():
        process.fit(frame, labels, sample_weight=sample_weight)
        kept = [str(name) for name in process.get_support(names=True)]
        woe = _woe_of_kept(process, frame, kept)
    dropped = correlation_drops(
        woe, _information_values(process), settings.max_correlation, held_variables(settings)
    )
    if dropped:
        logger.info(
            "scorecard: %d features dropped for |r| > %s with a stronger one: %s",
            len(dropped),
            settings.max_correlation,
            {name: f"{other} ({r:+.2f})" for name, (other, r) in dropped.items()},
        )
    return dropped


def fit_binning_process(
    X: pd.DataFrame, y: pd.Series | npt.ArrayLike, settings: ScorecardSettings
) -> tuple[Any, pd.DataFrame]:
    """optbinning's BinningProcess of the features of ``X`` under ``settings`` (the scorecard's
    own binning and IV selection, without the regression), fitted; and the frame it was fitted
    on (:func:`optbinning_frame` less the features missing on every row or excluded)."""
    labels = _labels(y, len(X))
    frame, categorical = _fit_frame(X, settings)
    process = _binning_process(frame, categorical, settings)
    with quiet_optbinning():
        process.fit(frame, labels)
    _check_fixed_bins(process, settings.overrides)
    return process, frame


def fit_optbinning_scorecard(
    X: pd.DataFrame,
    y: pd.Series | npt.ArrayLike,
    settings: ScorecardSettings,
    seed: int,
    weight: npt.ArrayLike | None = None,
) -> Any:
    """Fit optbinning's ``Scorecard`` (BinningProcess + LogisticRegression) on the feature matrix.

    Returns the fitted ``optbinning.Scorecard``, fitted with ``metric_missing="empirical"``
    (missing values score with their own bin's WoE), under the sign rule when
    ``settings.consistent_signs`` (:func:`fit_sign_consistent`, which also says what the rule
    removed). Score it on :func:`optbinning_frame` of the input. Most callers want
    :func:`fit_scorecard`. ``weight``: one non-negative weight per row, for the binning and the
    regression alike (optbinning's ``sample_weight``).
    """
    return fit_sign_consistent(X, y, settings, seed, weight)[0]


def fit_sign_consistent(
    X: pd.DataFrame,
    y: pd.Series | npt.ArrayLike,
    settings: ScorecardSettings,
    seed: int,
    weight: npt.ArrayLike | None = None,
) -> tuple[Any, SignRule]:
    """:func:`fit_optbinning_scorecard` and what its sign rule did.

    While a characteristic has a coefficient > 0 (against risk: WoE grows with safety, so the
    default's log-odds must not), the one with the largest such coefficient is removed and the
    scorecard refitted without it, its binning unchanged (optbinning bins each variable on its
    own). Each removal records the kept characteristic its WoE correlates with most and the
    AUC on the fit rows before and after. A characteristic an analyst's ``keep`` override holds
    is never removed; it is listed in :attr:`SignRule.kept_against` when it ends against risk.
    """
    if not isinstance(X, pd.DataFrame):
        raise ScorecardError(f"expected a pandas DataFrame of features, got {type(X).__name__}")
    if X.shape[1] == 0 or len(X) == 0:
        raise ScorecardError(f"feature matrix is empty ({X.shape[0]} rows, {X.shape[1]} columns)")
    if isinstance(y, pd.Series) and not y.index.equals(X.index):
        raise ScorecardError("target and feature rows carry different indexes; align them before fitting")
    labels = _labels(y, len(X))
    frame, categorical = _fit_frame(X, settings)
    sample_weight = None if weight is None else _weights(weight, len(frame))
    scorecard = _fit_one(labels, frame, categorical, settings, seed, sample_weight)
    if not settings.consistent_signs:
        return scorecard, SignRule()
    held = held_variables(settings)
    removed: list[SignRemoval] = []
    while True:
        process = scorecard.binning_process_
        selected = [str(name) for name in process.get_support(names=True)]
        coefficients = np.asarray(scorecard.estimator_.coef_, dtype=np.float64).ravel()
        against = {
            n: float(c) for n, c in zip(selected, coefficients, strict=True) if c > 0 and n not in held
        }
        if not against or len(selected) < 2:
            break
        worst = max(against, key=lambda name: (against[name], name))
        with quiet_optbinning():
            woe = _woe_of_kept(process, frame, selected)
        partner, r = _most_correlated(woe, worst)
        before = _fit_auc(scorecard, frame, labels, sample_weight)
        frame = frame.drop(columns=[worst])
        categorical = [c for c in categorical if c != worst]
        scorecard = _fit_one(labels, frame, categorical, settings, seed, sample_weight)
        after = _fit_auc(scorecard, frame, labels, sample_weight)
        removal = SignRemoval(worst, against[worst], partner, r, before, after)
        logger.info(
            "scorecard: %s removed by the sign rule (coefficient %+.4f against risk; WoE r %s with %s); "
            "AUC on the fit rows %.4f -> %.4f",
            worst,
            removal.coefficient,
            "n/a" if r is None else f"{r:+.2f}",
            partner,
            removal.auc_before,
            removal.auc_after,
        )
        removed.append(removal)
    final = scorecard.binning_process_.get_support(names=True)
    coefficients = np.asarray(scorecard.estimator_.coef_, dtype=np.float64).ravel()
    kept_against = tuple(str(n) for n, c in zip(final, coefficients, strict=True) if c > 0)
    if kept_against:
        logger.warning(
            "scorecard: %s kept against the sign rule by an analyst's keep override: a riskier bin "
            "earns more points (flagged in the report, the workbook and `scoring bins show`)",
            list(kept_against),
        )
    return scorecard, SignRule(True, tuple(removed), kept_against)


def _most_correlated(woe: pd.DataFrame, name: str) -> tuple[str | None, float | None]:
    """The other column of ``woe`` whose values correlate with ``name``'s most (|r|), and r."""
    others = [c for c in woe.columns if c != name]
    if not others:
        return None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        r = woe[others].corrwith(woe[name]).fillna(0.0)
    partner = str(r.abs().idxmax())
    return partner, float(r[partner])


def _fit_auc(
    scorecard: Any, frame: pd.DataFrame, labels: npt.NDArray[np.int64], weight: npt.NDArray[np.float64] | None
) -> float:
    from sklearn.metrics import roc_auc_score

    with quiet_optbinning():
        pd_ = scorecard.predict_proba(frame)[:, 1]
    return float(roc_auc_score(labels, pd_, sample_weight=weight))


def _fit_one(
    labels: npt.NDArray[np.int64],
    frame: pd.DataFrame,
    categorical: list[str],
    settings: ScorecardSettings,
    seed: int,
    sample_weight: npt.NDArray[np.float64] | None,
) -> Any:
    """One optbinning ``Scorecard`` fit on ``frame`` (:func:`fit_optbinning_scorecard`'s checks)."""
    # Imported here: scoring with ScorecardModel needs numpy and pandas only, and optbinning
    # takes seconds to import.
    from optbinning import Scorecard
    from sklearn.linear_model import LogisticRegression

    if settings.max_correlation is not None:
        dropped = _correlated_features(frame, categorical, labels, settings, sample_weight)
        frame = frame.drop(columns=list(dropped))
        categorical = [c for c in categorical if c not in dropped]
    process = _binning_process(frame, categorical, settings)
    # lbfgs is deterministic; the seed is passed for estimators that are not.
    estimator = LogisticRegression(C=settings.C, max_iter=1000, tol=1e-8, random_state=seed)
    scorecard = Scorecard(
        binning_process=process,
        estimator=estimator,
        scaling_method="pdo_odds",
        scaling_method_params={
            "pdo": settings.pdo,
            "odds": settings.base_odds,
            "scorecard_points": settings.base_score,
        },
        intercept_based=False,
        rounding=False,
    )
    try:
        with quiet_optbinning():
            scorecard.fit(
                frame,
                labels,
                sample_weight=sample_weight,
                metric_special="empirical",
                metric_missing="empirical",
            )
    except ValueError as error:
        fitted = getattr(scorecard, "binning_process_", None)
        if fitted is not None and getattr(fitted, "_is_fitted", False) and not fitted.get_support().any():
            ivs = {n: round(v, 4) for n, v in _information_values(fitted).items()}
            raise ScorecardError(
                f"no feature reaches min_iv={settings.min_iv}; information values: {ivs}"
            ) from error
        raise
    process = scorecard.binning_process_
    _check_fixed_bins(process, settings.overrides)
    unsolved = {
        str(name): process.get_binned_variable(name).status
        for name in process.variable_names
        if process.get_binned_variable(name).status != "OPTIMAL"
    }
    if unsolved:
        # A solver stopped by its time limit may not give the same bins on a rerun.
        logger.warning("scorecard: binning not proven optimal for %s", unsolved)
    return scorecard


def optbinning_frame(X: pd.DataFrame) -> pd.DataFrame:
    """The feature matrix as optbinning takes it (categoricals as str objects with NaN)."""
    return _binning_frame(X)[0]


def _weights(weight: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.float64]:
    values = np.asarray(weight, dtype=np.float64)
    if values.shape != (n_rows,) or not np.isfinite(values).all() or (values < 0).any():
        raise ScorecardError(f"weights: expected {n_rows} finite values >= 0, one per row")
    return values


def fit_scorecard(
    X: pd.DataFrame,
    y: pd.Series | npt.ArrayLike,
    settings: ScorecardSettings,
    seed: int,
    weight: npt.ArrayLike | None = None,
) -> ScorecardModel:
    """Fit the scorecard baseline on the feature matrix (output of ApplicationFeatures).

    ``y`` is 1 for default (bad) and 0 for good. Raises :class:`ScorecardError` when the data
    or settings are unusable, or when no feature reaches ``min_iv``. Before returning, the
    JSON scorer is checked against optbinning's ``predict_proba`` on the training rows and
    on probe rows (every split point and the value just below it, every level, a missing and
    an unseen value): any difference above 1e-9 is an error, not a silent mis-score.
    """
    started = time.perf_counter()
    scorecard, sign_rule = fit_sign_consistent(X, y, settings, seed, weight)
    model = ScorecardModel.from_optbinning(scorecard, settings, sign_rule)
    frame = optbinning_frame(X)
    _check_against_optbinning(model, scorecard, frame, "training rows")
    _check_against_optbinning(model, scorecard, _probe_frame(model, frame), "probe rows")
    logger.info(
        "scorecard: %d of %d features selected (min_iv=%s), %d bins, fitted in %.1f s",
        len(model.selected_features),
        len(model.information_value),
        settings.min_iv,
        sum(len(f.bins) + 1 for f in model.features),
        time.perf_counter() - started,
    )
    return model


def _probe_frame(model: ScorecardModel, frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that put every selected feature on its edge cases; other columns missing."""
    probes: dict[str, list[Any]] = {}
    for f in model.features:
        if f.kind == "numeric":
            below = [float(np.nextafter(s, -np.inf)) for s in f.splits]
            probes[f.name] = [*f.splits, *below, np.nan, -np.inf, np.inf]
        else:
            probes[f.name] = [*(level for g in f.groups for level in g), np.nan, _UNSEEN_PROBE]
    n = max(len(v) for v in probes.values())
    columns: dict[str, Any] = {}
    for name in frame.columns:
        values = probes.get(name, [np.nan])
        values = [values[i % len(values)] for i in range(n)]
        columns[name] = np.array(values, dtype=np.float64 if frame[name].dtype == np.float64 else object)
    return pd.DataFrame(columns)


def _check_against_optbinning(model: ScorecardModel, scorecard: Any, frame: pd.DataFrame, what: str) -> None:
    ours = model.predict_pd(frame)
    with quiet_optbinning():
        theirs = np.asarray(scorecard.predict_proba(frame)[:, 1], dtype=np.float64)
    gap = float(np.max(np.abs(ours - theirs))) if len(ours) else 0.0
    if not gap <= PD_TOLERANCE:
        raise ScorecardError(
            f"the JSON scorecard differs from optbinning's predict_proba on {what} by {gap:.3g} "
            f"(tolerance {PD_TOLERANCE}); the optbinning version may have changed its conventions"
        )
    logger.debug("scorecard: matches optbinning on %s (max gap %.2g)", what, gap)


def _sigmoid(z: npt.ArrayLike) -> NumericFeatures:
    """1 / (1 + exp(-z)) without overflow warnings."""
    z = np.asarray(z, dtype=np.float64)
    return np.asarray(np.exp(-np.logaddexp(0.0, -z)), dtype=np.float64)
