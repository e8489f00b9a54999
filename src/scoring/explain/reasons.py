"""Adverse-action reason codes from per-feature log-odds contributions.

Contributions come from the champion estimator's ``contributions`` (exact TreeSHAP for the
booster, coefficient x WoE for the scorecard, their weighted sum for a blend), on the
log-odds scale: for every row, the contributions plus ``bias`` add up to logit(PD).

Baseline (params ``reasons.baseline``)
--------------------------------------
``expected_value`` (the default): a contribution is already measured against the model's
expected log-odds over the training population (TreeSHAP's base value is the cover-weighted
mean margin of the training rows; the scorecard's is the log-odds at WoE 0, the training
population's odds), so a positive contribution means "this feature moves this applicant's
risk above that of the average training applicant". ``training_mean`` additionally
subtracts each feature's mean contribution over the training split (``reference`` at fit);
a reason must then be positive both ways.

Rules
-----
- Correlated features named in ``reasons.groups`` are summed into one group contribution and
  give one reason; every other feature is its own group.
- A group qualifies when its contribution is positive (it raises this applicant's risk) and
  its contribution less the baseline exceeds ``min_contribution``; a group none of whose
  features the model uses (every contribution 0 on the reference rows) never qualifies.
- The qualifying groups are ranked by contribution less the baseline, largest first; ties
  are broken by reason code (ascending), so the output is deterministic. At most
  ``max_reasons`` (<= 4) are returned. With the ``expected_value`` baseline, an applicant
  whose contributions add up to a positive number always gets at least one reason.
- ``reasons.reason_map`` must name every model input feature (itself or through its group),
  and only features and groups: anything else is a :class:`ReasonConfigError` naming it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.explain.config import ReasonEntry, ReasonsConfig

logger = logging.getLogger(__name__)


if TYPE_CHECKING:
    from scoring.models.model import PDModel


REASONS_SPEC_VERSION = 1


MAX_REASON_COLUMNS = 4


BIAS = "bias"


CODE_COLUMNS = [f"reason_code_{i}" for i in range(1, MAX_REASON_COLUMNS + 1)]


TEXT_COLUMNS = [f"reason_text_{i}" for i in range(1, MAX_REASON_COLUMNS + 1)]


class ReasonConfigError(ValueError):
    """The reason map or groups do not fit the model's features."""


@dataclass(frozen=True)
class ReasonGroup:
    """One reason: its code and text, and the model features whose contributions it sums."""

    name: str
    code: str
    text: str
    features: tuple[str, ...]
    used: bool
    baseline: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "code": self.code,
            "text": self.text,
            "features": list(self.features),
            "used": self.used,
            "baseline": self.baseline,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReasonGroup:
        return cls(
            name=str(d["name"]),
            code=str(d["code"]),
            text=str(d["text"]),
            features=tuple(str(f) for f in d["features"]),
            used=bool(d["used"]),
            baseline=float(d["baseline"]),
        )


def resolve_groups(
    features: list[str], config: ReasonsConfig, strict: bool = True
) -> tuple[list[tuple[str, tuple[str, ...]]], dict[str, ReasonEntry]]:
    """(reason key, member features) for every reason, and the reason map that covers them.

    ``strict`` (data in the auto-loan contract's layout): raises :class:`ReasonConfigError`
    for a group member or map key that is neither a model feature nor a contract column or
    derived feature (a typo), and for a contract feature of the model that the map does not
    cover. Contract features this model does not use are left out of the map, and columns
    outside the contract (an extra column of the analyst's file) get generated entries, as
    without ``strict``. Not strict (a bring-your-own dataset, whose features the shipped map
    cannot know): :func:`fit_reason_map` restricts and completes it (logged).
    """
    if strict:
        _check_against_contract(features, config)
    # fit_reason_map leaves only model features and their groups, and covers every feature
    config = fit_reason_map(features, config).config
    grouped = {m: g for g, members in config.groups.items() for m in members}
    order: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for f in features:
        key = grouped.get(f, f)
        if key not in seen:
            seen.add(key)
            order.append((key, tuple(config.groups[key]) if key in config.groups else (f,)))
    return order, dict(config.reason_map)


def _contract_feature_names() -> set[str]:
    from scoring.core.contract import AUTO_LOAN_COLUMNS
    from scoring.features.transformer import DERIVED_FEATURES

    return {c.name for c in AUTO_LOAN_COLUMNS} | {f.name for f in DERIVED_FEATURES}


def _check_against_contract(features: list[str], config: ReasonsConfig) -> None:
    """The strict checks of :func:`resolve_groups`: names must be the contract's, and the
    contract features the model uses must be covered."""
    vocabulary = _contract_feature_names() | set(features)
    for group, members in config.groups.items():
        unknown = [m for m in members if m not in vocabulary]
        if unknown:
            raise ReasonConfigError(
                f"reasons.groups.{group}: {unknown} are not model features; expected names from {features}"
            )
    unknown_keys = [k for k in config.reason_map if k not in vocabulary and k not in config.groups]
    if unknown_keys:
        raise ReasonConfigError(
            f"reasons.reason_map: {unknown_keys} are neither model features nor groups; "
            f"expected names from {features} or groups {sorted(config.groups)}"
        )
    grouped = {m: g for g, members in config.groups.items() for m in members}
    contract = _contract_feature_names()
    unmapped = [f for f in features if f in contract and grouped.get(f, f) not in config.reason_map]
    if unmapped:
        raise ReasonConfigError(
            f"reasons.reason_map: model features {unmapped} have no reason (directly or through "
            "their group); every model feature needs a code and text"
        )


@dataclass(frozen=True)
class FittedReasonMap:
    """The reason map a dataset gets: the configured one, restricted and completed (not strict mode)."""

    config: ReasonsConfig
    generated: tuple[str, ...]
    """features that got a generated entry (no entry of their own or of a group)"""
    left_out: tuple[str, ...]
    """configured entries (and groups) for features this model does not have"""

    def document(self) -> dict[str, Any]:
        """The ``reasons:`` keys to paste into params.yaml and edit: groups and the whole map."""
        return {
            "groups": {g: list(members) for g, members in self.config.groups.items()},
            "reason_map": {k: {"code": v.code, "text": v.text} for k, v in self.config.reason_map.items()},
        }


_CODE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


_WORD_BREAKS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])|[_.\-\s]+")


def readable_name(column: str) -> str:
    """A column name as words: ``NumberOfTimes90DaysLate`` -> "Number of times 90 days late",
    ``BILL_AMT1`` -> "Bill amt 1"."""
    words = [w for w in _WORD_BREAKS.split(column) if w]
    text = " ".join(words).lower() or column
    return text[0].upper() + text[1:]


def fit_reason_map(features: list[str], config: ReasonsConfig) -> FittedReasonMap:
    """The configured reason map restricted to ``features``, with a generated entry for each
    feature it does not cover (directly or through its group).

    A generated entry's code is ``F_`` and the feature's name (characters a code may not hold
    become ``_``; a clash gets a number); its text is the feature's name as words. Group
    members that the model lacks leave their group; a group left with one feature keeps it.
    """
    known = set(features)
    groups = {g: [m for m in members if m in known] for g, members in config.groups.items()}
    groups = {g: members for g, members in groups.items() if members and g not in known}
    reason_map = {k: v for k, v in config.reason_map.items() if k in known or k in groups}
    groups = {g: members for g, members in groups.items() if g in reason_map}
    grouped = {m: g for g, members in groups.items() for m in members}
    codes = {entry.code for entry in reason_map.values()}
    generated = [f for f in features if grouped.get(f, f) not in reason_map]
    for feature in generated:
        base = "F_" + (_CODE_UNSAFE.sub("_", feature).strip("_") or "feature")
        code, n = base, 1
        while code in codes:
            n += 1
            code = f"{base}_{n}"
        codes.add(code)
        reason_map[feature] = ReasonEntry(code=code, text=readable_name(feature))
    left_out = sorted((set(config.reason_map) | set(config.groups)) - set(reason_map) - set(groups))
    if generated or left_out:
        logger.warning(
            "reasons: the reason map does not describe this dataset; generated codes for %s, "
            "entries for absent features left out: %s",
            generated,
            left_out,
        )
    fitted = config.model_copy(update={"groups": groups, "reason_map": reason_map})
    return FittedReasonMap(fitted, tuple(generated), tuple(left_out))


class ReasonCoder:
    """Fitted reason-code generator: JSON-serialisable (:meth:`to_dict` / :meth:`from_dict`)."""

    def __init__(
        self,
        features: list[str],
        groups: list[ReasonGroup],
        max_reasons: int,
        min_contribution: float,
        baseline: str,
    ) -> None:
        if not 1 <= max_reasons <= MAX_REASON_COLUMNS:
            raise ReasonConfigError(f"max_reasons={max_reasons}: expected 1..{MAX_REASON_COLUMNS}")
        self.features = list(features)
        # Sorted by code: the tie-break order of equal contributions.
        self.groups = sorted(groups, key=lambda g: g.code)
        self.max_reasons = int(max_reasons)
        self.min_contribution = float(min_contribution)
        self.baseline = baseline
        index = {f: i for i, f in enumerate(self.features)}
        self._membership = np.zeros((len(self.features), len(self.groups)), dtype=np.float64)
        for j, g in enumerate(self.groups):
            for f in g.features:
                self._membership[index[f], j] = 1.0
        self._baselines = np.array([g.baseline for g in self.groups], dtype=np.float64)
        self._used = np.array([g.used for g in self.groups], dtype=bool)
        self._codes = np.array([g.code for g in self.groups] + [""], dtype=object)
        self._texts = np.array([g.text for g in self.groups] + [""], dtype=object)

    # ------------------------------------------------------------------ fit

    @classmethod
    def fit(
        cls, model: PDModel, reference: pd.DataFrame, config: ReasonsConfig, strict: bool = True
    ) -> ReasonCoder:
        """Resolve the reason map against the model and measure the baseline on ``reference``.

        ``reference`` holds raw applications (the training split); at most
        ``config.reference_rows`` evenly spaced rows of it are explained. ``strict``: see
        :func:`resolve_groups`.
        """
        if len(reference) == 0:
            raise ReasonConfigError("reference: no rows; expected the training split's applications")
        if len(reference) > config.reference_rows:
            rows = np.linspace(0, len(reference) - 1, config.reference_rows).round().astype(np.int64)
            reference = reference.iloc[np.unique(rows)]
        contributions = model.contributions(reference)
        features = [c for c in contributions.columns if c != BIAS]
        resolved, reason_map = resolve_groups(features, config, strict)
        values = contributions[features].to_numpy(dtype=np.float64)
        used = dict(zip(features, np.any(values != 0.0, axis=0), strict=True))
        means = dict(zip(features, values.mean(axis=0), strict=True))
        groups = []
        for key, members in resolved:
            entry = reason_map[key]
            baseline = float(sum(means[m] for m in members)) if config.baseline == "training_mean" else 0.0
            groups.append(
                ReasonGroup(
                    name=key,
                    code=entry.code,
                    text=entry.text,
                    features=members,
                    used=bool(any(used[m] for m in members)),
                    baseline=baseline,
                )
            )
        return cls(features, groups, config.max_reasons, config.min_contribution, config.baseline)

    # ------------------------------------------------------------------ apply

    def group_contributions(self, contributions: pd.DataFrame) -> pd.DataFrame:
        """Per reason (columns named by code, in code order): the summed contribution of its features."""
        values = self._grouped(contributions)
        return pd.DataFrame(values, index=contributions.index, columns=[g.code for g in self.groups])

    def _grouped(self, contributions: pd.DataFrame) -> npt.NDArray[np.float64]:
        columns = list(contributions.columns)
        if columns == [*self.features, BIAS]:  # the usual layout: no column look-ups
            values = contributions.to_numpy(dtype=np.float64)[:, :-1]
        else:
            self._check_columns([c for c in columns if c != BIAS])
            values = contributions[self.features].to_numpy(dtype=np.float64)
        return np.asarray(values @ self._membership, dtype=np.float64)

    def reasons_from_contributions(self, contributions: pd.DataFrame) -> pd.DataFrame:
        """Reason codes and texts from a contributions frame (features, then ``bias``)."""
        codes, texts = self._reason_table(self._grouped(contributions))
        table = np.concatenate([codes, texts], axis=1)
        return pd.DataFrame(
            table, index=contributions.index, columns=CODE_COLUMNS + TEXT_COLUMNS, dtype=object
        )

    def reason_values(
        self, contributions: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        """Codes and texts, each ``(n_rows, 4)`` ("" pads), from a contributions array.

        The array is laid out as the contributions frame of :attr:`features` then ``bias``
        (a candidate's ``array_path(features).contributions``); the same reasons as
        :meth:`reasons_from_contributions` without building frames (the scorer's path).
        """
        values = np.asarray(contributions, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(self.features) + 1:
            raise ReasonConfigError(
                f"contributions of shape {values.shape}: expected (rows, {len(self.features) + 1}), "
                f"the features {self.features} then bias"
            )
        return self._reason_table(np.asarray(values[:, :-1] @ self._membership, dtype=np.float64))

    def _reason_table(
        self, grouped: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        ranks = self.rank(grouped)
        pad = len(self.groups)
        full = np.full((len(ranks), MAX_REASON_COLUMNS), pad, dtype=np.intp)
        full[:, : ranks.shape[1]] = ranks
        return self._codes[full], self._texts[full]

    def rank(self, grouped: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
        """Indices into the groups of each row's reasons, best first; ``len(groups)`` pads.

        Shape ``(n_rows, max_reasons)``.
        """
        excess = grouped - self._baselines
        qualifies = (grouped > 0.0) & (excess > self.min_contribution) & self._used
        key = np.where(qualifies, excess, -np.inf)
        # Stable sort on the negated excess: equal excesses keep code order (the columns' order).
        order = np.argsort(-key, axis=1, kind="stable")[:, : self.max_reasons]
        chosen = np.take_along_axis(qualifies, order, axis=1)
        return np.asarray(np.where(chosen, order, len(self.groups)), dtype=np.intp)

    def reasons(self, model: PDModel, matrix: pd.DataFrame) -> pd.DataFrame:
        """Reason codes and texts for the transformed feature matrix (``model.feature_matrix``).

        Index aligned with ``matrix``; columns reason_code_1..4 then reason_text_1..4, ""
        where an applicant has fewer reasons.
        """
        self._check_columns(list(matrix.columns))
        return self.reasons_from_contributions(model.estimator.contributions(matrix))

    def _check_columns(self, columns: list[str]) -> None:
        if columns != self.features:
            missing = [f for f in self.features if f not in columns]
            extra = [c for c in columns if c not in self.features]
            raise ReasonConfigError(
                f"feature columns do not match the reason coder's: missing {missing}, unexpected "
                f"{extra}; expected {self.features} in that order"
            )

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REASONS_SPEC_VERSION,
            "baseline": self.baseline,
            "max_reasons": self.max_reasons,
            "min_contribution": self.min_contribution,
            "features": list(self.features),
            "groups": [g.to_dict() for g in self.groups],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReasonCoder:
        if d.get("version") != REASONS_SPEC_VERSION:
            raise ReasonConfigError(
                f"reason coder version {d.get('version')!r} is not supported "
                f"(expected {REASONS_SPEC_VERSION})"
            )
        groups = [ReasonGroup.from_dict(g) for g in d["groups"]]
        features = [str(f) for f in d["features"]]
        covered = [f for g in groups for f in g.features]
        if sorted(covered) != sorted(features):
            raise ReasonConfigError(
                f"reason coder: groups cover {sorted(covered)}, features are {sorted(features)}; "
                "expected every feature in exactly one group"
            )
        return cls(features, groups, int(d["max_reasons"]), float(d["min_contribution"]), str(d["baseline"]))
