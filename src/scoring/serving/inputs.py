"""Checks on raw applications before scoring: one message per field that names field, value and expectation.

Two layers guard the exported model. The MLflow signature names the fields (a required field
that is absent fails there) and types the text fields; this module is the value layer that
every path goes through (the pipeline, the loaded artifact, ``scoring score`` and HTTP):

* **Kinds and bounds** come from the data contract (:data:`scoring.contract.AUTO_LOAN_COLUMNS`)
  for the auto-loan dataset; for a bring-your-own dataset, from the fitted feature spec
  (numeric or categorical, every field optional, no bounds).
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
  needs the field declines with ``KO_DATA_MISSING`` (see :mod:`scoring.policy`).
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.contract import AUTO_LOAN_BY_NAME, STRICTLY_POSITIVE_COLUMNS, DatasetSpec
from scoring.features import ApplicationFeatures

FieldKind = Literal["id", "int", "float", "bool", "category"]

# The contract's lower bound 0 is exclusive for these, as in the validation gate.
STRICTLY_POSITIVE = STRICTLY_POSITIVE_COLUMNS

REJECT_SEPARATOR = "; "
_EXAMPLES = 5


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
    name: str
    kind: FieldKind
    required: bool
    min: float | None = None
    max: float | None = None
    strict_min: bool = False

    def expectation(self) -> str:
        what = {
            "id": "a non-empty id",
            "int": "a whole number",
            "float": "a number",
            "bool": "true or false",
            "category": "a category (text)",
        }[self.kind]
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


def _shown(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return "null"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass
class InputCheck:
    """The outcome of :meth:`InputRules.check` on a frame of applications."""

    frame: pd.DataFrame  # the input, numeric fields as float64, absent optional fields added as null
    rejected: npt.NDArray[np.bool_]
    reasons: pd.Series  # per row: '' or the field messages joined with '; '

    @property
    def n_rejected(self) -> int:
        return int(self.rejected.sum())

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
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
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
        rules: list[FieldRule] = []
        categorical = set(features.categories_)
        for name in features.input_columns_:
            contract = AUTO_LOAN_BY_NAME.get(name) if spec.follows_auto_loan_contract else None
            if contract is not None:
                kind: FieldKind = {"int": "int", "float": "float", "bool": "bool"}.get(
                    contract.kind, "category"
                )  # type: ignore[assignment]
                rules.append(
                    FieldRule(
                        name,
                        kind,
                        required=not contract.nullable,
                        min=contract.min,
                        max=contract.max,
                        strict_min=name in STRICTLY_POSITIVE,
                    )
                )
            else:
                rules.append(FieldRule(name, "category" if name in categorical else "float", required=False))
        return cls(spec.id_column, tuple(rules))

    @property
    def required_fields(self) -> list[str]:
        return [self.id_column, *(f.name for f in self.fields if f.required)]

    def describe(self) -> dict[str, str]:
        """Field -> what it must hold; for documentation and error pages."""
        return {
            self.id_column: "a non-empty id",
            **{f.name: f.expectation() for f in self.fields},
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
        columns: dict[str, pd.Series] = {name: applications[name] for name in applications.columns}
        messages: list[tuple[npt.NDArray[np.bool_], str, pd.Series, str]] = []

        ids = applications[self.id_column]
        bad_id = ids.isna().to_numpy(dtype=bool) | (ids.astype(str).str.len() == 0).to_numpy(dtype=bool)
        messages.append((bad_id, self.id_column, ids, "a non-empty id"))

        for rule in self.fields:
            if rule.name not in columns:
                # an absent optional field: all null (required ones were refused above)
                columns[rule.name] = (
                    pd.Series(None, index=applications.index, dtype=object)
                    if rule.kind == "category"
                    else pd.Series(np.nan, index=applications.index, dtype=np.float64)
                )
                continue
            series = applications[rule.name]
            bad, cleaned = _check_field(rule, series)
            if cleaned is not None:
                columns[rule.name] = cleaned
            if bad.any():
                messages.append((bad, rule.name, series, rule.expectation()))
        # One construction rather than a column insert per cleaned field (costly on one row).
        work = pd.DataFrame(columns, index=applications.index, copy=False)

        rejected = np.zeros(n, dtype=bool)
        for bad, *_ in messages:
            rejected |= bad
        reasons = np.full(n, "", dtype=object)
        if rejected.any():
            for bad, name, series, expectation in messages:
                for i in np.flatnonzero(bad):
                    text = f"{name}: got {_shown(series.iloc[i])}, expected {expectation}"
                    reasons[i] = text if not reasons[i] else reasons[i] + REJECT_SEPARATOR + text
        return InputCheck(work, rejected, pd.Series(reasons, index=applications.index, dtype=object))

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
                    "expected": f.expectation(),
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
                )
                for f in fields
            ),
        )


def is_text(series: pd.Series) -> bool:
    return bool(pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype))


def _as_numbers(series: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Float values and a mask of entries that are present but not numbers (text, booleans)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        values = np.full(len(series), np.nan)
        return values, series.notna().to_numpy(dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), np.zeros(len(series), dtype=bool)
    # object: numbers mixed with nulls (JSON) pass; text and booleans do not
    raw = series.to_numpy(dtype=object)
    is_number = np.fromiter(
        (
            isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_)
            for v in raw
        ),
        dtype=bool,
        count=len(raw),
    )
    present = series.notna().to_numpy(dtype=bool)
    values = np.full(len(raw), np.nan)
    if is_number.any():
        values[is_number] = raw[is_number].astype(np.float64)
    return values, present & ~is_number


def _check_field(rule: FieldRule, series: pd.Series) -> tuple[npt.NDArray[np.bool_], pd.Series | None]:
    null = series.isna().to_numpy(dtype=bool)
    if rule.kind == "category":
        bad = null if rule.required else np.zeros(len(series), dtype=bool)
        # Arrow-backed strings as plain objects, once: the feature, policy and limit code
        # downstream would otherwise convert them again on each access.
        return bad, (series.astype(object) if isinstance(series.dtype, pd.StringDtype) else None)
    if rule.kind == "bool":
        if pd.api.types.is_bool_dtype(series.dtype):
            bad = null if rule.required else np.zeros(len(series), dtype=bool)
            return bad, None
        values, not_number = _as_numbers(series)
        if is_text(series):
            raw = series.to_numpy(dtype=object)
            flags = np.fromiter((isinstance(v, bool | np.bool_) for v in raw), dtype=bool, count=len(raw))
            values[flags] = raw[flags].astype(np.float64)
            not_number &= ~flags
        with np.errstate(invalid="ignore"):
            bad = not_number | (~null & ~np.isin(values, (0.0, 1.0)))
        if rule.required:
            bad |= null
        cleaned = pd.Series(values, index=series.index).map({0.0: False, 1.0: True}).astype("boolean")
        return bad, cleaned
    values, not_number = _as_numbers(series)
    with np.errstate(invalid="ignore"):
        bad = not_number | (~null & ~np.isfinite(values) & ~not_number)
        if rule.kind == "int":
            bad |= np.isfinite(values) & (values != np.round(values))
        if rule.min is not None:
            bad |= (values <= rule.min) if rule.strict_min else (values < rule.min)
        if rule.max is not None:
            bad |= values > rule.max
    if rule.required:
        bad |= null
    if series.dtype == np.float64:
        return np.asarray(bad, dtype=bool), None
    return np.asarray(bad, dtype=bool), pd.Series(values, index=series.index, dtype=np.float64)
