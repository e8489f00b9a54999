"""Analysts' bin overrides for the scorecard: the file they edit, its checks, and its entries.

Analysts do not take the optimiser's bins blindly: they merge bins that make no business sense,
fix cut points at round numbers, force a trend, and drop or keep a variable. Each such decision
is an entry of the overrides file (``train.scorecard.bins_file``, ``scorecard_bins.yaml`` by
default), under the data source it belongs to (``synthetic`` or ``file``, params
``data.source``), with a free-text reason a reviewer reads::

    synthetic:
      age:
        splits: [23.5, 28.5, 31.5, 37.5]   # fixed cut points: bins are [s_i, s_i+1), right-open
        reason: "..."
      employment_type:
        groups: [[civil_servant, salaried], [retired], [other, self_employed]]
        reason: "..."
      inquiries_6m:
        trend: ascending                   # optbinning's monotonic_trend of the default rate
        reason: "..."
      dealer_id:
        exclude: true
        reason: "..."
    file: {}

``keep: true`` (alone or with splits, groups or a trend) keeps a variable whatever its IV
(optbinning's ``fixed_variables``), ahead of the correlation filter (a variable correlated with
a kept one goes instead) and of the sign rule (one kept against risk is flagged, not removed).
The fit applies the entries through optbinning's own mechanisms
(:func:`scoring.models.scorecard.fit_optbinning_scorecard`): fixed user splits
(``user_splits`` with ``user_splits_fixed``), the trend as the variable's ``monotonic_trend``,
an excluded variable left out of the binning process.

Two checks, both before any training: :func:`parse_bin_overrides` refuses a malformed entry
(unsorted or repeated cut points, a level in two groups, an unknown trend, no reason, an unknown
key) and :func:`check_against_features` refuses entries that do not fit the feature matrix (a
variable that does not exist, cut points outside the training values, groups that miss a level
or name an unknown one, cut points for a categorical variable). Each error names the file, the
variable and the entry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.refusals import CodedError

SOURCES = ("synthetic", "file")
# optbinning's monotonic_trend values (OptimalBinning)
TRENDS = (
    "auto",
    "auto_heuristic",
    "auto_asc_desc",
    "ascending",
    "descending",
    "convex",
    "concave",
    "peak",
    "valley",
    "peak_heuristic",
    "valley_heuristic",
)
_KEYS = ("splits", "groups", "trend", "exclude", "keep", "reason")

REFUSALS: dict[str, str] = {
    # the file and its sections
    "file_missing": "the overrides file does not exist",
    "file_not_yaml": "the overrides file is not YAML",
    "source_unknown": "a data source other than synthetic or file",
    "document_not_a_mapping": "the file is not a mapping of sections",
    "section_unknown": "a section other than synthetic or file",
    "section_not_a_mapping": "a section is not a mapping of variable: entry",
    # one entry, on its own
    "variable_not_named": "an entry without a variable name",
    "entry_not_a_mapping": "an entry is not a mapping",
    "key_unknown": "an entry has a key other than splits, groups, trend, exclude, keep, reason",
    "reason_missing": "an entry without the analyst's reason",
    "flag_not_boolean": "exclude or keep is not true or false",
    "exclude_joined": "exclude joined with another change",
    "ways_joined": "two of splits, groups and trend",
    "nothing_to_override": "an entry that changes nothing",
    "trend_unknown": "a trend optbinning does not know",
    "splits_not_a_list": "splits is not a non-empty list",
    "split_not_a_number": "a cut point is not a finite number",
    "splits_not_increasing": "cut points not in increasing order",
    "groups_not_a_list": "groups is not a non-empty list",
    "group_not_a_list": "a group is not a non-empty list of levels",
    "level_not_text": "a level of a group is not a text value",
    "level_in_two_groups": "a level in two groups",
    # an entry against the training rows
    "variable_excluded": "a variable that train.scorecard.exclude_features leaves out",
    "variable_unknown": "a variable the scorecard does not have",
    "splits_on_categorical": "cut points for a categorical variable",
    "no_values_to_cut": "cut points for a variable without training values",
    "split_out_of_range": "a cut point outside the training values",
    "groups_on_numeric": "groups for a numeric variable",
    "level_unknown": "a level the variable does not have",
    "level_in_no_group": "a level of the training rows in no group",
    "trend_on_categorical": "a trend for a categorical variable",
    # `scoring bins suggest`
    "no_optimiser_bins": "a variable without optimiser bins in the selection evidence",
    "single_bin": "the optimiser made a single bin: nothing to fix",
    "entry_exists": "the variable already has an entry (without --force)",
}
"""Every way an override, its file or ``scoring bins suggest`` is refused: the codes of
:class:`BinOverrideError`."""


class BinOverrideError(CodedError):
    """An overrides entry that is malformed or does not fit the data; names the variable and entry.
    ``code``: one of :data:`REFUSALS`."""

    CODES = REFUSALS


@dataclass(frozen=True)
class BinOverride:
    """One variable's override. Exactly one of ``splits``, ``groups``, ``trend``, ``exclude``,
    or ``keep`` alone; ``keep`` may join splits, groups or a trend."""

    variable: str
    reason: str
    splits: tuple[float, ...] | None = None
    groups: tuple[tuple[str, ...], ...] | None = None
    trend: str | None = None
    exclude: bool = False
    keep: bool = False

    @property
    def kind(self) -> str:
        """splits | groups | trend | exclude | keep: what the entry changes."""
        if self.exclude:
            return "exclude"
        if self.splits is not None:
            return "splits"
        if self.groups is not None:
            return "groups"
        if self.trend is not None:
            return "trend"
        return "keep"

    @property
    def fixes_bins(self) -> bool:
        return self.splits is not None or self.groups is not None

    def entry(self) -> dict[str, Any]:
        """The entry as written in the file, less its reason."""
        out: dict[str, Any] = {}
        if self.splits is not None:
            out["splits"] = list(self.splits)
        if self.groups is not None:
            out["groups"] = [list(g) for g in self.groups]
        if self.trend is not None:
            out["trend"] = self.trend
        if self.exclude:
            out["exclude"] = True
        if self.keep:
            out["keep"] = True
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"variable": self.variable, **self.entry(), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "bin override") -> BinOverride:
        variable = d.get("variable")
        if not isinstance(variable, str) or not variable:
            raise BinOverrideError(
                f"{where}: variable {variable!r}, expected a variable name", "variable_not_named"
            )
        return parse_entry(variable, {k: v for k, v in d.items() if k != "variable"}, where)


def _fail(code: str, where: str, variable: str, entry: str, problem: str) -> BinOverrideError:
    return BinOverrideError(f"{where}: variable {variable!r}, entry {entry}: {problem}", code)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse_entry(variable: str, raw: Any, where: str = "bin override") -> BinOverride:
    """One variable's entry (a mapping from the file), checked on its own."""
    if not isinstance(raw, Mapping):
        raise _fail(
            "entry_not_a_mapping",
            where,
            variable,
            "(the entry)",
            f"{raw!r}, expected a mapping of {list(_KEYS)}",
        )
    unknown = sorted(str(k) for k in raw if k not in _KEYS)
    if unknown:
        raise _fail(
            "key_unknown", where, variable, unknown[0], f"unknown key; expected some of {list(_KEYS)}"
        )
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise _fail(
            "reason_missing", where, variable, "reason", f"{reason!r}; expected the analyst's reason as text"
        )
    for flag in ("exclude", "keep"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise _fail("flag_not_boolean", where, variable, flag, f"{raw[flag]!r}; expected true or false")
    exclude, keep = bool(raw.get("exclude", False)), bool(raw.get("keep", False))
    present = [k for k in ("splits", "groups", "trend") if raw.get(k) is not None]
    if exclude and (present or keep):
        joined = [*present, *(["keep"] if keep else [])]
        raise _fail("exclude_joined", where, variable, "exclude", f"cannot join {joined}")
    if len(present) > 1:
        raise _fail(
            "ways_joined", where, variable, present[1], f"cannot join {present[0]}: give one way to bin it"
        )
    if not (present or exclude or keep):
        raise _fail(
            "nothing_to_override",
            where,
            variable,
            "(the entry)",
            "nothing to override; give splits, groups, trend, exclude or keep",
        )
    splits = groups = trend = None
    if "splits" in present:
        splits = _splits(where, variable, raw["splits"])
    elif "groups" in present:
        groups = _groups(where, variable, raw["groups"])
    elif "trend" in present:
        trend = raw["trend"]
        if trend not in TRENDS:
            raise _fail(
                "trend_unknown",
                where,
                variable,
                "trend",
                f"{trend!r} is not a trend; expected one of {list(TRENDS)}",
            )
    return BinOverride(variable, reason.strip(), splits, groups, trend, exclude, keep)


def _splits(where: str, variable: str, value: Any) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise _fail(
            "splits_not_a_list",
            where,
            variable,
            "splits",
            f"{value!r}; expected a non-empty list of cut points",
        )
    bad = [v for v in value if not _number(v)]
    if bad:
        raise _fail(
            "split_not_a_number", where, variable, "splits", f"cut point {bad[0]!r} is not a finite number"
        )
    points = tuple(float(v) for v in value)
    for low, high in itertools.pairwise(points):
        if not low < high:
            raise _fail(
                "splits_not_increasing",
                where,
                variable,
                "splits",
                f"cut points {list(value)} are not in increasing order ({low:g} then {high:g}); "
                "expected each cut point above the one before",
            )
    return points


def _groups(where: str, variable: str, value: Any) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise _fail(
            "groups_not_a_list",
            where,
            variable,
            "groups",
            f"{value!r}; expected a non-empty list of groups of levels",
        )
    seen: dict[str, int] = {}
    groups: list[tuple[str, ...]] = []
    for number, group in enumerate(value, start=1):
        if not isinstance(group, Sequence) or isinstance(group, str) or not group:
            raise _fail(
                "group_not_a_list",
                where,
                variable,
                f"groups[{number}]",
                f"{group!r}; expected a non-empty list of levels",
            )
        levels = []
        for level in group:
            if isinstance(level, bool) or not isinstance(level, str | int | float):
                raise _fail(
                    "level_not_text",
                    where,
                    variable,
                    f"groups[{number}]",
                    f"level {level!r} is not a text value",
                )
            text = str(level)
            if text in seen:
                raise _fail(
                    "level_in_two_groups",
                    where,
                    variable,
                    f"groups[{number}]",
                    f"level {text!r} is already in group {seen[text]}; a level belongs to one group",
                )
            seen[text] = number
            levels.append(text)
        groups.append(tuple(levels))
    return tuple(groups)


def parse_bin_overrides(document: Any, source: str, where: str = "bin overrides") -> dict[str, BinOverride]:
    """The entries of ``source`` (synthetic | file) in a parsed overrides document, each checked.

    An empty document, or a source with no section, has no overrides. Sections other than
    :data:`SOURCES` are refused, as is every malformed entry, in any section."""
    if source not in SOURCES:
        raise BinOverrideError(
            f"{where}: data source {source!r}; expected one of {list(SOURCES)}", "source_unknown"
        )
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise BinOverrideError(
            f"{where}: {type(document).__name__}; expected sections {list(SOURCES)}", "document_not_a_mapping"
        )
    unknown = sorted(str(k) for k in document if k not in SOURCES)
    if unknown:
        raise BinOverrideError(
            f"{where}: section {unknown[0]!r}; expected sections {list(SOURCES)}", "section_unknown"
        )
    chosen: dict[str, BinOverride] = {}
    for section in SOURCES:
        entries = document.get(section) or {}
        if not isinstance(entries, Mapping):
            raise BinOverrideError(
                f"{where}: section {section!r} is {entries!r}; expected variable: entry",
                "section_not_a_mapping",
            )
        parsed = {
            str(name): parse_entry(str(name), raw, f"{where} {section}") for name, raw in entries.items()
        }
        if section == source:
            chosen = parsed
    return chosen


def load_bin_overrides(path: str | Path | None, source: str) -> dict[str, BinOverride]:
    """The checked entries of ``source`` in the overrides file at ``path`` (None: no file, none)."""
    if path is None:
        return {}
    import yaml

    file = Path(path)
    if not file.is_file():
        raise BinOverrideError(
            f"bin overrides file {file} does not exist (train.scorecard.bins_file)", "file_missing"
        )
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BinOverrideError(f"bin overrides file {file}: not YAML ({error})", "file_not_yaml") from error
    return parse_bin_overrides(document, source, str(file))


# ---------------------------------------------------------------------------- against the data


def _is_categorical(values: pd.Series) -> bool:
    return bool(
        isinstance(values.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(values.dtype)
        or pd.api.types.is_string_dtype(values.dtype)
    )


def _levels(values: pd.Series) -> list[str]:
    if isinstance(values.dtype, pd.CategoricalDtype):
        return [str(c) for c in values.cat.categories]
    return sorted({str(v) for v in values.dropna().unique()})


def check_against_features(
    overrides: Mapping[str, BinOverride],
    X: pd.DataFrame,
    excluded: Sequence[str] = (),
    where: str = "bin overrides",
) -> None:
    """Refuse entries that do not fit the scorecard's candidate variables ``X`` (training rows).

    ``excluded``: variables the config leaves out (``train.scorecard.exclude_features``). Cut
    points must lie inside the training values (``min < cut <= max``: a cut at or below the
    minimum, or above the maximum, leaves a bin that no training row can fill); groups must
    hold every level the training rows show and only known levels.
    """
    for name, override in overrides.items():
        if name in excluded:
            raise _fail(
                "variable_excluded",
                where,
                name,
                override.kind,
                "the variable is excluded by train.scorecard.exclude_features",
            )
        if name not in X.columns:
            raise _fail(
                "variable_unknown",
                where,
                name,
                override.kind,
                f"no such variable; the scorecard's candidate variables are {sorted(map(str, X.columns))}",
            )
        values = X[name]
        categorical = _is_categorical(values)
        if override.splits is not None:
            if categorical:
                raise _fail(
                    "splits_on_categorical",
                    where,
                    name,
                    "splits",
                    "the variable is categorical; give groups of levels",
                )
            x = values.to_numpy(dtype=np.float64, na_value=np.nan)
            x = x[~np.isnan(x)]
            if not len(x):
                raise _fail(
                    "no_values_to_cut", where, name, "splits", "the variable has no training values to cut"
                )
            low, high = float(x.min()), float(x.max())
            outside = [s for s in override.splits if not low < s <= high]
            if outside:
                raise _fail(
                    "split_out_of_range",
                    where,
                    name,
                    "splits",
                    f"cut point {outside[0]:g} is out of range: the training values run from {low:g} to "
                    f"{high:g}, so it would leave an empty bin; expected cut points above {low:g} "
                    f"and at most {high:g}",
                )
        if override.groups is not None:
            if not categorical:
                raise _fail(
                    "groups_on_numeric",
                    where,
                    name,
                    "groups",
                    "the variable is numeric; give splits (cut points)",
                )
            known = set(_levels(values))
            listed = [level for group in override.groups for level in group]
            unknown = [level for level in listed if level not in known]
            if unknown:
                raise _fail(
                    "level_unknown",
                    where,
                    name,
                    "groups",
                    f"level {unknown[0]!r} is not a level of the variable ({sorted(known)})",
                )
            observed = {str(v) for v in values.dropna().unique()}
            left_out = sorted(observed - set(listed))
            if left_out:
                raise _fail(
                    "level_in_no_group",
                    where,
                    name,
                    "groups",
                    f"levels {left_out} are in no group; expected every level in one",
                )
        if override.trend is not None and categorical:
            raise _fail(
                "trend_on_categorical",
                where,
                name,
                "trend",
                "the variable is categorical; a trend applies to numeric variables only",
            )


# ---------------------------------------------------------------------------- editing the file


def suggested_entry(optimiser_bins: Mapping[str, Any], variable: str, reason: str) -> dict[str, Any]:
    """The optimiser's bins of ``variable`` as an overrides entry (from the train stage's
    selection evidence, its ``optimiser_bins``): cut points or groups, and ``reason``."""
    if variable not in optimiser_bins:
        raise BinOverrideError(
            f"variable {variable!r} has no optimiser bins in the selection evidence; expected one of "
            f"{sorted(optimiser_bins)}",
            "no_optimiser_bins",
        )
    bins = optimiser_bins[variable]
    if bins.get("splits") is not None:
        if not bins["splits"]:
            raise BinOverrideError(
                f"variable {variable!r}: the optimiser made a single bin; nothing to fix", "single_bin"
            )
        return {"splits": [float(s) for s in bins["splits"]], "reason": reason}
    return {"groups": [[str(level) for level in g] for g in bins["groups"]], "reason": reason}


def write_entry(
    path: str | Path, source: str, variable: str, entry: Mapping[str, Any], force: bool = False
) -> None:
    """Put ``entry`` under ``source``/``variable`` in the overrides file, keeping its comments
    and other entries (ruamel.yaml's round trip); refuses to replace an entry unless ``force``.
    The file is checked as the train stage checks it before it is written (atomically)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from scoring.core.io import atomic_path

    if source not in SOURCES:
        raise BinOverrideError(f"data source {source!r}; expected one of {list(SOURCES)}", "source_unknown")
    file = Path(path)
    yaml = YAML()
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 100
    document = yaml.load(file.read_text(encoding="utf-8")) if file.is_file() else None
    if document is None:
        document = CommentedMap()
    section = document.get(source)
    if not isinstance(section, Mapping):
        section = document[source] = CommentedMap()
    if variable in section and not force:
        raise BinOverrideError(
            f"{file}: {source}.{variable} already has an entry; edit it, or pass --force to replace it",
            "entry_exists",
        )
    value = CommentedMap()
    for key, item in entry.items():
        if key == "splits":
            seq = CommentedSeq(item)
            seq.fa.set_flow_style()
            value[key] = seq
        elif key == "groups":
            groups = CommentedSeq()
            for group in item:
                inner = CommentedSeq(group)
                inner.fa.set_flow_style()
                groups.append(inner)
            value[key] = groups
        else:
            value[key] = item
    section[variable] = value
    parse_bin_overrides(_plain(document), source, str(file))  # what train will read must parse
    with atomic_path(file) as tmp, tmp.open("w", encoding="utf-8") as handle:
        yaml.dump(document, handle)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
