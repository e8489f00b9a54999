"""The serving value layer (scoring.serving.inputs) on random values: every value is accepted or
rejected with a message naming its field, never an unexpected exception.

The rules are those a :class:`~scoring.serving.scorer.Scorer` builds (``InputRules.for_model``)
from a fitted feature transformer and the dataset spec; no model is trained. Two rule sets: the
auto-loan contract's (kinds and bounds from the data contract) and a bring-your-own dataset's
(kinds learnt from the training frame, what it showed flagged beyond, and a declared range).

Each value is judged by :func:`accepted`, a plain reading of the module's documented rules, and
the layer must agree with it row by row: the rejection, the reason text, and the cleaned value
the scorer reads. Columns are built as a JSON decoder hands them over (object), as pandas infers
them, and in typed dtypes (nullable integers and floats, booleans, strings, categories).

Defects this found, now fixed, are pinned by the tests at the end (integers beyond float range,
NaN in a Float64 column, durations taken for numbers, booleans among a category column's
levels). Their values are left out of the random strategies.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.core.contract import AUTO_LOAN_BY_NAME, SYNTHETIC_SPEC, DatasetSpec
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.features.transformer import ApplicationFeatures
from scoring.serving.inputs import REJECT_SEPARATOR, FieldRule, InputCheck, InputRules, InputSchemaError

N_BASE = 200
BYO_SPEC = DatasetSpec(
    id_column="ref",
    target_column="bad",
    source="file",
    value_ranges={"utilisation": {"min": 0.0, "max": 1.5}},
)


@functools.cache
def contract_base() -> pd.DataFrame:
    """Applications of the synthetic portfolio: every row passes the contract's rules."""
    applications, _ = generate_portfolio(SyntheticDataConfig(n_applications=N_BASE), seed=5)
    return applications


@functools.cache
def byo_base() -> pd.DataFrame:
    """A bring-your-own training frame: a count (int, never negative), a balance (float, negative
    values and nulls), a flag (bool), an amount (float, never negative), a declared ratio, a
    category with nulls."""
    rng = np.random.default_rng(7)
    n = N_BASE
    balance = rng.normal(0, 1_000, n)
    balance[::10] = np.nan
    return pd.DataFrame(
        {
            "ref": [f"R{i:04d}" for i in range(n)],
            "bad": rng.integers(0, 2, n),
            "n_cards": rng.integers(0, 6, n),
            "balance": balance,
            "has_phone": rng.random(n) < 0.5,
            "amount": rng.uniform(0, 5_000, n),
            "utilisation": rng.uniform(0, 1.2, n),
            "segment": pd.Series([("a", "b", "c", None)[i % 4] for i in range(n)], dtype=object),
        }
    )


@functools.cache
def rule_sets() -> dict[str, tuple[InputRules, pd.DataFrame]]:
    """Rule set name -> (the rules a scorer builds, clean applications they accept)."""
    out: dict[str, tuple[InputRules, pd.DataFrame]] = {}
    for name, spec, frame in (("contract", SYNTHETIC_SPEC, contract_base()), ("byo", BYO_SPEC, byo_base())):
        features = ApplicationFeatures(exclude_columns=spec.non_feature_columns, min_category_count=1)
        out[name] = (InputRules.for_model(features.fit(frame), spec), frame)
    return out


def test_the_rule_sets_are_the_documented_ones() -> None:
    """Guards the fixtures the properties run on: the contract's rules follow the contract (and
    accept its clean applications); the bring-your-own rules are learnt as documented."""
    contract, frame = rule_sets()["contract"]
    assert contract.check(frame).n_rejected == 0
    for rule in contract.fields:
        spec = AUTO_LOAN_BY_NAME[rule.name]
        assert (rule.min, rule.max, rule.required) == (spec.min, spec.max, not spec.nullable)
    kinds = {rule.kind for rule in contract.fields}
    assert kinds == {"int", "float", "bool", "category"}
    byo, frame = rule_sets()["byo"]
    assert byo.check(frame).n_rejected == 0
    # nothing undeclared rejects: a field training always saw filled must be a column (present)
    # and a null in it is flagged; the training range flags, the declared range rejects
    base = byo_base()
    assert {r.name: (r.kind, r.required, r.present, r.min, r.max, r.seen_nulls) for r in byo.fields} == {
        "n_cards": ("int", False, True, None, None, False),
        "balance": ("float", False, False, None, None, True),
        "has_phone": ("bool", False, True, None, None, False),
        "amount": ("float", False, True, None, None, False),
        "utilisation": ("float", False, True, 0.0, 1.5, False),
        "segment": ("category", False, False, None, None, True),
    }
    for rule in byo.fields:
        if rule.kind in ("int", "float"):
            assert (rule.seen_min, rule.seen_max) == (base[rule.name].min(), base[rule.name].max())


# --------------------------------------------------------------------------- the reading of the docs


def is_null(value: Any) -> bool:
    """None, NaN (any float type), pd.NA and pd.NaT."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and bool(np.isnan(value))


def is_number(value: Any) -> bool:
    """An int or float of Python or NumPy; booleans are not numbers."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def accepted(rule: FieldRule, value: Any) -> bool:
    """The module's rules for one value. A null passes an optional field only; a category takes
    any other value (an unseen level is scored as missing); a boolean takes true/false or a number
    equal to 0 or 1; a number must be finite, whole for an int field, and within the bounds (the
    lower one exclusive for the strictly positive fields); text and booleans are not numbers."""
    if is_null(value):
        return not rule.required
    if rule.kind == "category":
        return True
    if rule.kind == "bool":
        return isinstance(value, bool | np.bool_) or (is_number(value) and float(value) in (0.0, 1.0))
    if not is_number(value) or not math.isfinite(float(value)):
        return False
    number = float(value)
    if rule.kind == "int" and not rule.inferred and not number.is_integer():
        return False
    if rule.min is not None and (number <= rule.min if rule.strict_min else number < rule.min):
        return False
    return rule.max is None or number <= rule.max


def flags(rule: FieldRule, value: Any) -> list[str]:
    """What an accepted value of an inferred field is flagged with: a null where training saw
    none, a number outside the range training saw or a fraction in a column of whole numbers."""
    if not rule.inferred or rule.kind == "category":
        return []
    if is_null(value):
        return [] if rule.seen_nulls else ["null_unseen"]
    if rule.kind == "bool":
        return []
    number = float(value)
    out = []
    low, high = rule.seen_min, rule.seen_max
    if (low is not None and number < low) or (high is not None and number > high):
        out.append("out_of_range")
    if rule.kind == "int" and not number.is_integer():
        out.append("not_whole")
    return out


def id_accepted(value: Any) -> bool:
    return not is_null(value) and not (isinstance(value, str) and value == "")


def cleaned(rule: FieldRule, value: Any) -> Any:
    """What the scorer reads for an accepted value: a float (NaN for null), a boolean as 0.0/1.0,
    a category as given (None for null)."""
    if rule.kind == "category":
        return None if is_null(value) else value
    return math.nan if is_null(value) else float(value)


# --------------------------------------------------------------------------- random values

LEVELS = sorted({level for spec in AUTO_LOAN_BY_NAME.values() for level in spec.levels or ()})
NUMBER_TEXTS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        ["", " ", "true", "false", "True", "yes", "nan", "NaN", "None", "null", "inf", "1", "0", "1.0"]
    ),
)
VALUES: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([None, math.nan, pd.NA, pd.NaT, np.float64("nan")]),
    st.booleans(),
    st.sampled_from([np.True_, np.False_]),
    st.integers(-(10**6), 10**6),
    st.integers(-(10**300), 10**300),  # within float range: beyond it, see the tests at the end
    st.integers(-(2**63), 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e4, 1e4).map(np.float32),
    st.sampled_from([0, 1, 0.0, 1.0, -0.0, 0.5, 18, 80, 80.5, 1e15, 1e16 + 1, 5e-324]),
    NUMBER_TEXTS,
    st.text(max_size=6),
    st.sampled_from([*LEVELS, "zzz", "NEW", "Used"]),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from("ab"), st.integers(0, 3), max_size=1),
    st.datetimes().map(pd.Timestamp),
)
DTYPES = ("object", "inferred", "Int64", "Float64", "boolean", "string", "category", "float64", "int64")


def column(values: Sequence[Any], dtype: str, index: pd.Index) -> pd.Series:
    """``values`` as a column of ``dtype`` (object when pandas cannot make that dtype of them).

    Left out (see the tests at the end): a nullable float column holding NaN apart from NA (text "nan"
    cast to Float64), and categories mixing booleans with other values.
    """
    raw = pd.Series(list(values), dtype=object, index=index)
    if dtype == "object":
        return raw
    try:
        if dtype == "inferred":
            return pd.Series(list(values), index=index)
        typed = raw.astype(pd.api.types.pandas_dtype(dtype))
    except (TypeError, ValueError, OverflowError):
        return raw
    if dtype == "Float64" and bool(np.isnan(typed.to_numpy(np.float64, na_value=0.0)).any()):
        return raw
    if dtype == "category" and len({isinstance(v, bool | np.bool_) for v in typed.cat.categories}) > 1:
        return raw
    return typed


def elements(series: pd.Series) -> list[Any]:
    """The values of a column as the layer sees them one by one."""
    return list(series.to_numpy(dtype=object))


def check_without_surprise(rules: InputRules, applications: pd.DataFrame) -> InputCheck:
    """The path of ``Scorer.score_batch``: check, the rejected rows, the kept rows' values, and
    the cleaned frame, none raising."""
    checked = rules.check(applications)
    rejected = checked.rejected_rows(rules.id_column)
    assert rejected["row"].tolist() == np.flatnonzero(checked.rejected).tolist()
    kept = checked.take(~checked.rejected)
    assert {len(v) for v in kept.values()} <= {len(applications) - checked.n_rejected}
    assert len(checked.frame) == len(applications)
    return checked


@st.composite
def damaged_applications(draw: st.DrawFn) -> tuple[str, list[str], pd.DataFrame]:
    """A rule set, 1 to 3 of its fields (the id among them now and then) and 1 to 6 applications
    whose values in those fields are random, each field's column in a random dtype."""
    name = draw(st.sampled_from(["contract", "byo"]))
    rules, base = rule_sets()[name]
    names = [rules.id_column, *(f.name for f in rules.fields)]
    fields = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    n = draw(st.integers(1, 6))
    start = draw(st.integers(0, len(base) - n))
    frame = base.iloc[start : start + n].copy()
    for field in fields:
        values = draw(st.lists(VALUES, min_size=n, max_size=n))
        frame[field] = column(values, draw(st.sampled_from(DTYPES)), frame.index)
    return name, fields, frame


@settings(max_examples=300, deadline=None)
@given(case=damaged_applications())
def test_random_values_are_accepted_or_rejected_by_field(case: tuple[str, list[str], pd.DataFrame]) -> None:
    """Guards the value layer against whatever a caller sends: every row is accepted or rejected
    as the documented rules say, a rejection's reasons name each bad field (in field order) with
    what it expects, and an accepted value is cleaned to what the scorer must read."""
    name, fields, frame = case
    rules, _ = rule_sets()[name]
    by_name = {rule.name: rule for rule in rules.fields}
    checked = check_without_surprise(rules, frame)
    order = [rules.id_column, *by_name]
    for row in range(len(frame)):
        bad: list[str] = []
        for field in sorted(fields, key=order.index):
            value = elements(frame[field])[row]
            ok = id_accepted(value) if field == rules.id_column else accepted(by_name[field], value)
            if not ok:
                bad.append(field)
        assert bool(checked.rejected[row]) == bool(bad), (row, bad, checked.reasons.iloc[row])
        reasons = str(checked.reasons.iloc[row])
        if not bad:
            assert reasons == ""
            continue
        expected = {rules.id_column: "a non-empty id", **{f.name: f.expectation() for f in rules.fields}}
        pattern = re.escape(REJECT_SEPARATOR).join(
            re.escape(f"{field}: got ") + ".+" + re.escape(f", expected {expected[field]}") for field in bad
        )
        assert re.fullmatch(pattern, reasons, flags=re.DOTALL), reasons
    for row in range(len(frame)):  # the flags of the accepted rows, in field order
        if checked.rejected[row]:
            continue
        want_flags = [
            f"{field}:{code}"
            for field in order[1:]
            for code in flags(by_name[field], elements(frame[field])[row])
        ]
        assert checked.flags_of()[row] == ";".join(want_flags), (row, checked.flags_of()[row])
    for field in fields:  # what the scorer reads of the accepted rows
        if field == rules.id_column:
            continue
        values = checked.values[field]
        for row, value in enumerate(elements(frame[field])):
            if checked.rejected[row]:
                continue
            want, got = cleaned(by_name[field], value), values[row]
            if by_name[field].kind == "category":
                assert got is want or got == want, (field, value, got)
            else:
                assert (math.isnan(want) and math.isnan(got)) or got == want, (field, value, got)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_absent_fields_fail_by_name_or_score_as_missing(data: st.DataObject) -> None:
    """Guards the structural layer: dropping required fields raises InputSchemaError naming
    exactly those, in order; dropping only optional ones checks every row clean, with the
    absent fields all null."""
    name = data.draw(st.sampled_from(["contract", "byo"]))
    rules, base = rule_sets()[name]
    names = [rules.id_column, *(f.name for f in rules.fields)]
    dropped = data.draw(st.lists(st.sampled_from(names), max_size=4, unique=True))
    frame = base.head(5).drop(columns=dropped)
    missing = [field for field in rules.required_fields if field in dropped]
    if missing:
        with pytest.raises(InputSchemaError) as excinfo:
            rules.check(frame)
        assert str(excinfo.value).startswith(
            f"missing required fields {missing}: every application needs them"
        )
        return
    checked = check_without_surprise(rules, frame)
    assert checked.n_rejected == 0
    for field in dropped:
        kind = next(f.kind for f in rules.fields if f.name == field)
        values = checked.values[field]
        assert all(v is None for v in values) if kind == "category" else np.isnan(values).all()


# --------------------------------------------------------------------------- known defects


def one_application(field: str, value: Any) -> pd.DataFrame:
    frame = contract_base().head(1).copy()
    frame[field] = pd.Series([value], dtype=object, index=frame.index)
    return frame


def test_an_integer_beyond_float_range_is_rejected_not_a_crash() -> None:
    """A JSON decoder gives an arbitrarily long integer as a Python int; in an object column,
    ``raw[is_number].astype(np.float64)`` raises OverflowError instead of rejecting the row."""
    rules, _ = rule_sets()["contract"]
    checked = rules.check(one_application("age", 10**400))
    assert checked.reasons.iloc[0].startswith("age: got ")


def test_nan_in_a_nullable_float_column_is_a_null() -> None:
    """pandas' Float64 can hold NaN apart from NA (text "nan" cast to Float64): _as_numbers takes
    the nulls of an extension column from ``isna()`` alone, so the NaN fails the finiteness check
    and an optional field rejects it, the message contradicting itself ("got null, expected ... or
    null"). In a float64 column the same NaN is a null."""
    rules, _ = rule_sets()["contract"]
    frame = contract_base().head(1).copy()
    frame["bureau_score"] = pd.Series(["nan"], dtype=object, index=frame.index).astype("Float64")
    assert rules.check(frame.astype({"bureau_score": "float64"})).n_rejected == 0  # float64: a null
    checked = rules.check(frame)
    assert checked.n_rejected == 0, checked.reasons.iloc[0]


def test_booleans_among_categories_are_booleans() -> None:
    """A bool field reads Python booleans only out of text (object or string) columns: in a
    category column whose categories mix booleans with numbers (False, 1), False is rejected
    although 1 is accepted."""
    rules, _ = rule_sets()["contract"]
    frame = contract_base().head(2).copy()
    frame["income_verified"] = pd.Series([False, 1], dtype="category", index=frame.index)
    checked = rules.check(frame)
    assert checked.n_rejected == 0, checked.reasons.tolist()


def test_a_timedelta_is_not_taken_for_a_number() -> None:
    """``np.timedelta64`` subclasses ``np.signedinteger``: in an object column it passes as a
    number (30 days as 30), and its NaT as a null whose cleaned value is -2**63, not NaN (which a
    bounded optional field then rejects as out of range)."""
    rules, _ = rule_sets()["contract"]
    assert rules.check(one_application("age", np.timedelta64(30, "D"))).n_rejected == 1
    optional = rules.check(one_application("bureau_score", np.timedelta64("NaT")))
    assert np.isnan(optional.values["bureau_score"][0])


def test_a_missing_timestamp_in_a_required_field_reads_as_null() -> None:
    """pd.NaT is a null like None and NaN: the message says "got null", not "got NaT"."""
    rules, _ = rule_sets()["contract"]
    checked = rules.check(one_application("age", pd.NaT))
    assert checked.n_rejected == 1
    assert checked.reasons.iloc[0].startswith("age: got null, expected a whole number in 18..80")
