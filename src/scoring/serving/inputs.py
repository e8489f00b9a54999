"""Checks on raw applications before scoring: one message per field that names field, value and expectation.

Two layers guard the exported model. The MLflow signature names the fields (a required field
that is absent fails there) and types the text fields; this module is the value layer that
every path goes through (the pipeline, the loaded artifact, ``scoring score`` and HTTP):

* **Kinds and bounds** come from the data contract (:data:`scoring.core.contract.AUTO_LOAN_COLUMNS`)
  for the auto-loan dataset; for a bring-your-own dataset, from what training showed of each
  column (the fitted feature spec's ``input_profile``: categorical, boolean, whole numbers
  where the column was an integer column, a lower bound of 0 where training saw no negative
  value, required where training saw no null, no upper bound). Bounds declared in params
  (``validate.ranges``, carried by the dataset spec) replace either, as in the gate.
* **Numbers.** A numeric field takes a number (any integer or float dtype, or JSON number).
  For an *int* field an integral float is accepted (``45.0`` is 45: CSV readers and JSON
  encoders produce it for nullable integer columns); ``45.5`` is rejected. Text (``"45"``)
  and booleans are rejected in a numeric field. Values outside the contract's bounds are
  rejected (``monthly_income``, ``vehicle_price`` and ``loan_amount`` must be above 0).
* **Booleans** take true/false or 1/0 (also 1.0/0.0); anything else, text included, is rejected
  (``"false"`` is never read as true).
* **Categories** take text (numbers are read as their text, 3.0 as "3"). A level the model never
  saw in training, or outside the contract's levels, is *not* rejected: it is scored as missing
  (the booster's learned default branch, the scorecard's unseen bin), and a policy rule that
  needs the field declines with ``KO_DATA_MISSING`` (see :mod:`scoring.decision.policy`).
* **Missing values.** A null in a required field (not nullable in the contract) rejects the row.
  An optional field (nullable in the contract: bureau_score, revolving_utilization,
  avg_monthly_spend_6m, dealer_id) may be null or absent altogether: an absent optional column
  is added as all-null and scored as missing.
* **The id** must be present and non-null; it is returned as text.
* Columns the model does not use are ignored.

A required field absent from the whole input is a structural error (:class:`InputSchemaError`):
no row can be scored. Row-level problems reject only their rows; callers decide what a rejection
means (the batch command writes them to a side file, the pyfunc model refuses the request).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import AUTO_LOAN_BY_NAME, STRICTLY_POSITIVE_COLUMNS, DatasetSpec, declared_bounds
from scoring.features.transformer import ApplicationFeatures

FieldKind = Literal["id", "int", "float", "bool", "category"]

# The contract's lower bound 0 is exclusive for these, as in the validation gate.
STRICTLY_POSITIVE = STRICTLY_POSITIVE_COLUMNS

REJECT_SEPARATOR = "; "
FLAG_SEPARATOR = ";"
_EXAMPLES = 5

FLAG_CODES: dict[str, str] = {
    "out_of_range": "a value outside the range training saw (scored as it is)",
    "null_unseen": "a null where training saw none (scored as missing)",
    "not_whole": "a fraction in a column that held whole numbers in training (scored as it is)",
}
"""The flags of an inferred field: what training did not show, scored all the same."""


def count_flags(flags: Iterable[Any]) -> dict[str, int]:
    """``field:code`` -> the rows that carry it, from per-row ``input_flags`` ('' or null: none),
    in sorted order."""
    counts: dict[str, int] = {}
    for text in flags:
        if isinstance(text, str) and text:
            for flag in text.split(FLAG_SEPARATOR):
                counts[flag] = counts.get(flag, 0) + 1
    return dict(sorted(counts.items()))


class InputSchemaError(ValueError):
    """The input as a whole cannot be scored (a required field is absent)."""


class InputRejected(ValueError):
    """Some applications failed the value checks; ``check`` holds the per-row messages."""

    def __init__(self, check: InputCheck) -> None:
        self.check = check
        super().__init__(check.summary())


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class FieldRule:
    """One input field's rule.

    ``kind``, ``required`` and the bounds reject: they are declared (the data contract, the
    dataset's ``validate.ranges``) or a kind no model can score (text in a number). A field
    *inferred* from training (a bring-your-own column nobody declared) rejects only what cannot
    be scored; what training did not show is scored and flagged (:data:`FLAG_CODES`): a value
    outside ``seen_min..seen_max``, a null where ``seen_nulls`` is false, a fraction in a
    column that held whole numbers.
    """

    name: str
    kind: FieldKind
    required: bool
    min: float | None = None
    max: float | None = None
    strict_min: bool = False
    present: bool = False
    """The column must be in the input (an inferred field training always saw filled: another
    file's columns then fail by name), though a null in it is scored as missing."""
    inferred: bool = False
    seen_min: float | None = None
    seen_max: float | None = None
    seen_nulls: bool = True

    def expectation(self) -> str:
        what = {
            "id": "a non-empty id",
            "int": "a whole number",
            "float": "a number",
            "bool": "true or false",
            "category": "a category (text)",
        }["float" if self.inferred and self.kind == "int" else self.kind]  # a fraction is flagged
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else _number_text(self.min)
            high = "" if self.max is None else _number_text(self.max)
            if self.min is not None and self.max is not None and not self.strict_min:
                what += f" in {low}..{high}"
            else:
                parts = []
                if self.min is not None:
                    parts.append(f"{'>' if self.strict_min else '>='} {low}")
                if self.max is not None:
                    parts.append(f"<= {high}")
                what += " " + " and ".join(parts)
        if self.kind != "id":
            what += "" if self.required else " or null"
        return what

    def seen(self) -> str:
        """What training showed of an inferred field (scored beyond it, flagged): '' otherwise."""
        if not self.inferred:
            return ""
        parts = []
        if self.seen_min is not None and self.seen_max is not None:
            parts.append(f"{_number_text(self.seen_min)}..{_number_text(self.seen_max)}")
        if not self.seen_nulls:
            parts.append("never null")
        return "training saw " + ", ".join(parts) if parts else ""


def _shown(value: Any) -> str:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass
class InputCheck:
    """The outcome of :meth:`InputRules.check` on a frame of applications.

    ``values`` holds, by name, the id and every model field as one NumPy array each (the
    scorer reads these, not a DataFrame): the id's raw values; numbers as float64 (NaN for
    null and for what was rejected); booleans as float64 0/1 (NaN for null); categories as an
    object array of their raw values (None for any null). An absent optional field is all null.
    """

    source: pd.DataFrame  # the input as given
    rules: InputRules
    values: dict[str, npt.NDArray[Any]]
    rejected: npt.NDArray[np.bool_]
    reasons: pd.Series  # per row: '' or the field messages joined with '; '
    id_is_text: bool  # the id column holds text (object or string dtype)
    flags: npt.NDArray[np.object_] | None = None
    """Per row: '' or what training did not show, as ``field:code`` joined with ';' (codes in
    :data:`FLAG_CODES`); None when no row has a flag."""

    @property
    def n_rejected(self) -> int:
        return int(self.rejected.sum())

    def flags_of(self, rows: npt.NDArray[np.bool_] | None = None) -> npt.NDArray[np.object_]:
        """The flags of the rows where ``rows`` is true (every row when None), '' where none."""
        n = len(self.rejected) if rows is None else int(np.count_nonzero(rows))
        if self.flags is None:
            return np.full(n, "", dtype=object)
        return self.flags if rows is None else self.flags[rows]

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The input as a DataFrame with the checked fields cleaned: numbers as float64,
        booleans as pandas booleans, text categories as objects, absent optional fields as null.
        Built on first use (scoring reads :attr:`values`)."""
        index = self.source.index
        columns: dict[str, pd.Series] = {name: self.source[name] for name in self.source.columns}
        for rule in self.rules.fields:
            if rule.name not in columns:
                columns[rule.name] = (
                    pd.Series(None, index=index, dtype=object)
                    if rule.kind == "category"
                    else pd.Series(np.nan, index=index, dtype=np.float64)
                )
                continue
            series = columns[rule.name]
            if rule.kind == "category":
                if isinstance(series.dtype, pd.StringDtype):
                    columns[rule.name] = series.astype(object)
            elif rule.kind == "bool":
                if not pd.api.types.is_bool_dtype(series.dtype):
                    values = pd.Series(self.values[rule.name], index=index)
                    columns[rule.name] = values.map({0.0: False, 1.0: True}).astype("boolean")
            elif series.dtype != np.float64:
                columns[rule.name] = pd.Series(self.values[rule.name], index=index, dtype=np.float64)
        return pd.DataFrame(columns, index=index, copy=False)

    def take(self, rows: npt.NDArray[np.bool_]) -> dict[str, npt.NDArray[Any]]:
        """:attr:`values` of the rows where ``rows`` is true."""
        return {name: values[rows] for name, values in self.values.items()}

    def rejected_rows(self, id_column: str) -> pd.DataFrame:
        """The rejected input rows with their id, position and reasons."""
        rows = np.flatnonzero(self.rejected)
        out = pd.DataFrame(
            {
                "row": rows.astype(np.int64),
                id_column: self.frame[id_column].iloc[rows].map(id_text).to_numpy(dtype=object)
                if id_column in self.frame.columns
                else None,
                "reject_reasons": self.reasons.iloc[rows].to_numpy(dtype=object),
            }
        )
        return out

    def summary(self, limit: int = _EXAMPLES) -> str:
        rows = np.flatnonzero(self.rejected)
        shown = [f"row {i}: {self.reasons.iloc[i]}" for i in rows[:limit]]
        more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
        return f"{len(rows)} of {len(self.rejected)} applications rejected: " + " | ".join(shown) + more


def id_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class InputRules:
    """The value layer for one model: the id and each raw input field with its rule."""

    id_column: str
    fields: tuple[FieldRule, ...]

    @classmethod
    def for_model(cls, features: ApplicationFeatures, spec: DatasetSpec) -> InputRules:
        """The rules of a fitted model's inputs: the contract's kinds and nullability where the
        dataset follows it, what training showed of any other field (:func:`_learnt_rule`), and
        the bounds of :func:`scoring.core.contract.declared_bounds`, the gate's own."""
        rules: list[FieldRule] = []
        categorical = set(features.categories_)
        profiles = features.input_profile_
        for name in features.input_columns_:
            contract = AUTO_LOAN_BY_NAME.get(name) if spec.follows_auto_loan_contract else None
            if contract is not None:
                kind: FieldKind = {"int": "int", "float": "float", "bool": "bool"}.get(
                    contract.kind, "category"
                )  # type: ignore[assignment]
                rule = FieldRule(name, kind, required=not contract.nullable)
            elif name in categorical:
                rule = FieldRule(name, "category", required=False)
            else:
                rule = _learnt_rule(name, profiles.get(name))
            bounds = declared_bounds(name, spec)
            if rule.kind in ("int", "float"):
                rule = replace(
                    rule,
                    min=None if bounds is None else bounds.min,
                    max=None if bounds is None else bounds.max,
                    strict_min=bounds is not None and bounds.strict_min,
                )
            rules.append(rule)
        return cls(spec.id_column, tuple(rules))

    @property
    def required_fields(self) -> list[str]:
        """The fields every input must have as columns (a null is refused only where ``required``)."""
        return [self.id_column, *(f.name for f in self.fields if f.required or f.present)]

    def describe(self) -> dict[str, str]:
        """Field -> what it must hold (and, for an inferred one, what training saw); for
        documentation and error pages."""
        return {
            self.id_column: "a non-empty id",
            **{f.name: f.expectation() + (f" ({f.seen()})" if f.seen() else "") for f in self.fields},
        }

    def check(self, applications: pd.DataFrame) -> InputCheck:
        """Per-row value checks; raises :class:`InputSchemaError` when a required field is absent."""
        missing = [name for name in self.required_fields if name not in applications.columns]
        if missing:
            raise InputSchemaError(
                f"missing required fields {missing}: every application needs them "
                f"({'; '.join(f'{m}: {self.describe()[m]}' for m in missing)})"
            )
        n = len(applications)
        values: dict[str, npt.NDArray[Any]] = {}
        messages: list[tuple[npt.NDArray[np.bool_], str, pd.Series, str]] = []
        flagged: list[tuple[npt.NDArray[np.bool_], str]] = []

        ids = applications[self.id_column]
        raw_ids = ids.to_numpy(dtype=object)
        bad_id = np.asarray(pd.isna(raw_ids), dtype=bool)
        present = ~bad_id
        bad_id[present] = np.asarray(raw_ids[present] == "", dtype=bool)  # an empty id
        values[self.id_column] = raw_ids
        messages.append((bad_id, self.id_column, ids, "a non-empty id"))

        for rule in self.fields:
            if rule.name not in applications.columns:
                # an absent optional field: all null (required ones were refused above)
                values[rule.name] = (
                    np.full(n, None, dtype=object) if rule.kind == "category" else np.full(n, np.nan)
                )
                continue
            series = applications[rule.name]
            bad, values[rule.name] = _check_field(rule, series)
            if bad.any():
                messages.append((bad, rule.name, series, rule.expectation()))
            if rule.inferred:
                for code, rows in _flags(rule, values[rule.name], bad):
                    flagged.append((rows, f"{rule.name}:{code}"))

        rejected = np.zeros(n, dtype=bool)
        for bad, *_ in messages:
            rejected |= bad
        reasons = np.full(n, "", dtype=object)
        if rejected.any():
            for bad, name, series, expectation in messages:
                for i in np.flatnonzero(bad):
                    text = f"{name}: got {_shown(series.iloc[i])}, expected {expectation}"
                    reasons[i] = text if not reasons[i] else reasons[i] + REJECT_SEPARATOR + text
        flags = None
        if flagged:
            flags = np.full(n, "", dtype=object)
            for rows, flag in flagged:
                for i in np.flatnonzero(rows):
                    flags[i] = flag if not flags[i] else flags[i] + FLAG_SEPARATOR + flag
        return InputCheck(
            applications,
            self,
            values,
            rejected,
            pd.Series(reasons, index=applications.index, dtype=object),
            is_text(ids),
            flags,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id_column": self.id_column,
            "fields": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    "required": f.required,
                    "min": f.min,
                    "max": f.max,
                    "strict_min": f.strict_min,
                    "present": f.present,
                    "inferred": f.inferred,
                    "seen_min": f.seen_min,
                    "seen_max": f.seen_max,
                    "seen_nulls": f.seen_nulls,
                    "expected": f.expectation(),
                    "seen": f.seen(),
                }
                for f in self.fields
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputRules:
        fields: Sequence[Mapping[str, Any]] = data["fields"]
        return cls(
            str(data["id_column"]),
            tuple(
                FieldRule(
                    str(f["name"]),
                    f["kind"],
                    bool(f["required"]),
                    f.get("min"),
                    f.get("max"),
                    bool(f.get("strict_min", False)),
                    bool(f.get("present", False)),
                    bool(f.get("inferred", False)),
                    f.get("seen_min"),
                    f.get("seen_max"),
                    bool(f.get("seen_nulls", True)),
                )
                for f in fields
            ),
        )


def _learnt_rule(name: str, profile: Mapping[str, Any] | None) -> FieldRule:
    """The rule of a numeric field nobody declared, from what training showed of it.

    Only what the model cannot score is rejected: text or a boolean in a number, a non-boolean
    in a boolean field. What training did not show is scored and flagged: a value outside the
    range it saw (a ratio that is rarely negative, a new maximum of an amount), a null where it
    saw none (the booster's default branch, the scorecard's Missing bin), a fraction in a column
    that held whole numbers. A field training always saw filled must be present as a column,
    so an input with another file's columns fails by name. Bounds that should reject are
    declared (``validate.ranges``), and the gate checks the same ones.
    """
    if profile is None:
        return FieldRule(name, "float", required=False, inferred=True)
    kind: FieldKind = profile.get("kind", "float")
    filled = profile.get("has_nulls") is False
    if kind == "bool":
        return FieldRule(name, kind, required=False, present=filled, inferred=True, seen_nulls=not filled)
    low, high = profile.get("min"), profile.get("max")
    return FieldRule(
        name,
        kind,
        required=False,
        present=filled,
        inferred=True,
        seen_min=None if low is None else float(low),
        seen_max=None if high is None else float(high),
        seen_nulls=not filled,
    )


def _flags(
    rule: FieldRule, values: npt.NDArray[Any], bad: npt.NDArray[np.bool_]
) -> list[tuple[str, npt.NDArray[np.bool_]]]:
    """What training did not show of an inferred field, per code: the rows (not rejected) with it."""
    out: list[tuple[str, npt.NDArray[np.bool_]]] = []
    numbers = np.asarray(values, dtype=np.float64)
    null = np.isnan(numbers)
    if not rule.seen_nulls:
        out.append(("null_unseen", null & ~bad))
    if rule.kind == "bool":
        return [(code, rows) for code, rows in out if rows.any()]
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(numbers), dtype=bool)
        if rule.seen_min is not None:
            outside |= numbers < rule.seen_min
        if rule.seen_max is not None:
            outside |= numbers > rule.seen_max
        out.append(("out_of_range", outside & ~bad))
        if rule.kind == "int":
            out.append(("not_whole", np.isfinite(numbers) & (numbers != np.round(numbers)) & ~bad))
    return [(code, rows) for code, rows in out if rows.any()]


def is_text(series: pd.Series) -> bool:
    return bool(pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype))


def _as_numbers(
    series: pd.Series, raw: npt.NDArray[Any] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Float values, a mask of entries that are present but not numbers (text, booleans), and
    the nulls. ``raw``: the column as an object array, when the caller has it."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        present = series.notna().to_numpy(dtype=bool)
        return np.full(len(series), np.nan), present, ~present
    if dtype == np.float64:
        values = series.to_numpy()
        return values, np.zeros(len(values), dtype=bool), np.isnan(values)
    if pd.api.types.is_numeric_dtype(dtype):
        if isinstance(dtype, np.dtype):  # NumPy integers and floats: no nulls but NaN
            values = np.asarray(series.to_numpy(), dtype=np.float64)
            null = np.isnan(values) if dtype.kind == "f" else np.zeros(len(values), dtype=bool)
        else:  # nullable extension types know their nulls; Float64 may also hold NaN apart from NA
            values = np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
            null = series.isna().to_numpy(dtype=bool) | np.isnan(values)
        return values, np.zeros(len(values), dtype=bool), null
    # object: numbers mixed with nulls (JSON) pass; text and booleans do not
    if raw is None:
        raw = series.to_numpy(dtype=object)
    # np.timedelta64 subclasses np.integer, but a duration is not a number (its NaT is not a null)
    is_number = np.fromiter(
        (
            isinstance(v, int | float | np.integer | np.floating)
            and not isinstance(v, bool | np.bool_ | np.timedelta64)
            for v in raw
        ),
        dtype=bool,
        count=len(raw),
    )
    null = np.asarray(pd.isna(raw), dtype=bool) & ~np.fromiter(
        (isinstance(v, np.timedelta64) for v in raw), dtype=bool, count=len(raw)
    )
    values = np.full(len(raw), np.nan)
    if is_number.any():
        numbers = raw[is_number]
        try:
            values[is_number] = numbers.astype(np.float64)
        except OverflowError:  # a JSON integer beyond float range: not a number this model reads
            converted = np.array([_to_float_or_nan(v) for v in numbers], dtype=np.float64)
            values[is_number] = converted
            too_big = np.zeros(len(raw), dtype=bool)
            too_big[np.flatnonzero(is_number)[np.isnan(converted)]] = True
            is_number &= ~too_big
    return values, ~null & ~is_number, null


def _to_float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        return float("nan")


def _check_field(rule: FieldRule, series: pd.Series) -> tuple[npt.NDArray[np.bool_], npt.NDArray[Any]]:
    """Rows that fail ``rule`` and the field's cleaned values (see :class:`InputCheck`)."""
    if rule.kind == "category":
        raw = series.to_numpy(dtype=object)
        null = np.asarray(pd.isna(raw), dtype=bool)
        if null.any():
            raw = raw.copy()  # to_numpy may return the column's own (read-only) array
            raw[null] = None
        bad = null if rule.required else np.zeros(len(series), dtype=bool)
        return bad, raw
    if rule.kind == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            values = (
                np.asarray(series.to_numpy(), dtype=np.float64)  # NumPy booleans: never null
                if isinstance(series.dtype, np.dtype)
                else np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
            )
            bad = np.isnan(values) if rule.required else np.zeros(len(series), dtype=bool)
            return bad, values
        # Python booleans may come in a text column or among a category column's levels
        mixed = is_text(series) or isinstance(series.dtype, pd.CategoricalDtype)
        text = series.to_numpy(dtype=object) if mixed else None
        values, not_number, null = _as_numbers(series, text)
        if text is not None:
            flags = np.fromiter((isinstance(v, bool | np.bool_) for v in text), dtype=bool, count=len(text))
            values[flags] = text[flags].astype(np.float64)
            not_number &= ~flags
        with np.errstate(invalid="ignore"):
            bad = not_number | (~null & ~np.isin(values, (0.0, 1.0)))
        if rule.required:
            bad |= null
        # what is not 0/1 (rejected) is null, as the boolean column of InputCheck.frame reads it
        return bad, np.where((values == 0.0) | (values == 1.0), values, np.nan)
    values, not_number, null = _as_numbers(series)
    with np.errstate(invalid="ignore"):
        bad = not_number | (~null & ~np.isfinite(values) & ~not_number)
        if rule.kind == "int" and not rule.inferred:  # an inferred one is flagged (not_whole)
            bad |= np.isfinite(values) & (values != np.round(values))
        if rule.min is not None:
            bad |= (values <= rule.min) if rule.strict_min else (values < rule.min)
        if rule.max is not None:
            bad |= values > rule.max
    if rule.required:
        bad |= null
    return np.asarray(bad, dtype=bool), values
