"""Every rule of the validation gate fires, with its exact message, its severity and rows that reconcile.

The gate (:mod:`scoring.data.validation`) is a great-expectations suite built from the data contract;
the meta of each expectation carries its rule code (``age_out_of_range``, ``ltv_out_of_range``, ...)
and its kind. :data:`CASES` is the damage table: for every rule code of the auto-loan suite, and for
the gate's own ``quarantine_share_exceeded``, a damage of a clean frame that makes that rule fail,
with the message the gate must print and the rows it must name. A rule added to the suite without
a case here fails :func:`test_the_damage_table_covers_every_rule_and_every_kind`.

The clean frame is tests/test_validation.py's ``contract_frame``, copied rather than imported
(mypy would follow the import into that module). A great-expectations run costs a second or
more, so the cases are applied together, four damaged frames in all (:data:`FRAMES`): the report
records every expectation's outcome even when critical ones fail, and the damages of one frame
are chosen so that none hides or triggers another (where a damage necessarily breaks a second
rule, its case says so in ``also``). Each frame's test checks that exactly the expected rules
fail: none missing, none extra.

:func:`test_random_row_damage_is_quarantined_exactly` then damages random rows of a clean frame in
random row-level ways and compares the gate with an independent row-by-row reading of the
contract (:func:`expected_row_reasons`, :func:`expected_critical_rules`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from contract_support import contract_frame
from scoring.core.contract import (
    AUTO_LOAN_COLUMNS,
    STRICTLY_POSITIVE_COLUMNS,
    SYNTHETIC_SPEC,
    ColumnSpec,
)
from scoring.data.config import Severity, ValidateConfig
from scoring.data.validation import (
    DEFAULT_SEVERITY,
    QUARANTINE_REASONS,
    DataValidationError,
    ExpectationOutcome,
    ValidationReport,
    add_check_columns,
    apply_gate,
    build_suite,
    validate_frame,
)

N_ROWS = 600  # 53 quarantined rows stay under the default max_quarantine_share (10%)
AS_OF = dt.date(2030, 6, 30)  # a fixed extract date: every clean row is in the past and matured
CONFIG = ValidateConfig(as_of_date=AS_OF, min_rows=N_ROWS)
MATURITY_CUTOFF = pd.Timestamp("2029-06-30")  # AS_OF less the 12-month outcome window

ID, TARGET, DATE = "application_id", "default_12m", "application_date"
SPEC_ROLES = (SYNTHETIC_SPEC.id_column, SYNTHETIC_SPEC.target_column, SYNTHETIC_SPEC.date_column)
assert SPEC_ROLES == (ID, TARGET, DATE)
ROLE_COLUMNS = {ID, TARGET, DATE}
REQUIRED = tuple(c.name for c in AUTO_LOAN_COLUMNS if not c.nullable and c.name not in ROLE_COLUMNS)
"""Columns with a row-level null rule (``<column>_missing``, quarantine)."""
NULLABLE = tuple(c.name for c in AUTO_LOAN_COLUMNS if c.nullable and c.name not in ROLE_COLUMNS)
"""Columns with a null-share rule (``<column>_too_many_nulls``, critical)."""
BOUNDED: tuple[ColumnSpec, ...] = tuple(
    c for c in AUTO_LOAN_COLUMNS if (c.min is not None or c.max is not None) and c.name not in ROLE_COLUMNS
)
LEVELS: dict[str, tuple[str, ...]] = {c.name: c.levels for c in AUTO_LOAN_COLUMNS if c.levels is not None}
TYPED = tuple(c.name for c in AUTO_LOAN_COLUMNS if c.kind in ("int", "float", "date", "bool"))
TYPE_TEXT = {
    "int": "a numeric dtype",
    "float": "a numeric dtype",
    "date": "a datetime64 dtype (tz-naive)",
    "bool": "a boolean dtype",
}

FrameName = Literal["columns", "critical", "one_class", "rows"]
FRAMES: tuple[FrameName, ...] = ("columns", "critical", "one_class", "rows")
GATE_RULES = {"quarantine_share_exceeded": "quarantine_share_exceeded"}
"""Codes that apply_gate raises itself, beyond the suite's expectations: code -> kind."""


def clean_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` rows that break no rule of the contract; ids APP00000, APP00001, ...

    tests/contract_support.py's frame: row ``i`` is labelled unless ``i % 5 == 0``; a new car
    when ``i`` is even, used when odd; bureau_score, revolving_utilization and
    avg_monthly_spend_6m are null where ``i`` is a multiple of 7, 9 and 11.
    """
    return contract_frame(n, seed)


CLEAN = clean_frame(N_ROWS)


def ident(row: int) -> str:
    return f"APP{row:05d}"


def is_null(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def put(df: pd.DataFrame, row: int, column: str, value: Any) -> None:
    """Set one cell in place, widening the column's dtype where the value needs it.

    A null in an integer column makes it float64 (as a file reader does), a null in a boolean
    column makes it pandas' nullable boolean; a fraction or an infinity in an integer column makes
    it float64.
    """
    dtype = df[column].dtype
    if is_null(value):
        if pd.api.types.is_bool_dtype(dtype):
            df[column] = df[column].astype("boolean")
            value = pd.NA
        elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
            df[column] = df[column].astype("float64")
            value = np.nan
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            value = pd.NaT
        else:
            value = None
    elif isinstance(value, float) and pd.api.types.is_integer_dtype(dtype) and not value.is_integer():
        df[column] = df[column].astype("float64")
    df.loc[row, column] = value


# --------------------------------------------------------------------------- damages

Damage = Callable[[pd.DataFrame], pd.DataFrame]


def edit(row: int, **values: object) -> Damage:
    """Set ``values`` (column -> value) on one row."""

    def damage(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for column, value in values.items():
            put(out, row, column, value)
        return out

    return damage


def nulls(column: str, rows: list[int]) -> Damage:
    def damage(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        for row in rows:
            put(out, row, column, None)
        return out

    return damage


def fill(column: str, rows: list[int], value: Any) -> Damage:
    def damage(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        out.loc[rows, column] = value
        return out

    return damage


def drop_column(column: str) -> Damage:
    return lambda df: df.drop(columns=column)


def drop_last_row(df: pd.DataFrame) -> pd.DataFrame:
    return df.iloc[:-1]


def as_object(column: str) -> Damage:
    """The same values in an object column (as a frame built from JSON records holds them)."""
    return lambda df: df.astype({column: object})


def as_int(column: str) -> Damage:
    """Booleans as 0/1 integers (as a CSV export may write them)."""
    return lambda df: df.astype({column: "int64"})


def relabel(old: float, new: float, keep_first: bool = False) -> Damage:
    """Turn the target's ``old`` values into ``new`` (all of them, or all but the first)."""

    def damage(df: pd.DataFrame) -> pd.DataFrame:
        out = df.copy()
        rows = out.index[out[TARGET] == old]
        out.loc[rows[1:] if keep_first else rows, TARGET] = new
        return out

    return damage


def no_damage(df: pd.DataFrame) -> pd.DataFrame:
    return df


@dataclass(frozen=True)
class Case:
    """How one rule is fired and what the gate must say about it.

    ``message`` is the outcome's exact :meth:`ExpectationOutcome.describe` (``exact``) or its
    beginning, up to what depends on great-expectations' own listing of values (the type rules,
    checked further by :func:`check_type_outcome`). ``rows``: the row positions the damage breaks,
    which a quarantine or warn rule must name exactly. ``also``: rules the damage necessarily
    breaks too, on the same rows.
    """

    rule: str
    frame: FrameName
    severity: Severity
    damage: Damage
    message: str
    rows: tuple[int, ...] = ()
    also: tuple[str, ...] = ()
    exact: bool = True
    any_order: bool = False  # the listed values in any order (GE sorts pairs holding NaN arbitrarily)


def first_ids(where: pd.Series) -> str:
    """The ids of the first five rows where ``where`` holds, as a message's examples list them."""
    rows = np.flatnonzero(where.to_numpy())[:5]
    return ", ".join(ident(int(r)) for r in rows)


# Out of range, one value just past a bound per bounded column: column -> (cells to set, value
# shown, range text). Integer columns show floats: the null of the same frame's missing case made
# them float64, as a file reader does. Price, down payment and loan move together so that no rule
# across the three columns breaks as well; a term outside 1..120 is never an allowed term, so that
# rule breaks too.
OUT_OF_RANGE: dict[str, tuple[dict[str, object], str, str]] = {
    "age": ({"age": 81}, "81.0", "values between 18 and 80"),
    "employment_years": ({"employment_years": 70.5}, "70.5", "values between 0 and 70"),
    "monthly_income": ({"monthly_income": 0.0}, "0.0", "values > 0 and <= 10000000"),
    "residence_years": ({"residence_years": -0.5}, "-0.5", "values between 0 and 100"),
    "dependents": ({"dependents": 9}, "9.0", "values between 0 and 8"),
    "bureau_score": ({"bureau_score": 299.0}, "299.0", "values between 300 and 900"),
    "credit_history_months": ({"credit_history_months": 1001}, "1001.0", "values between 0 and 1000"),
    "open_accounts": ({"open_accounts": -1}, "-1.0", "values between 0 and 200"),
    "delinquencies_24m": ({"delinquencies_24m": 101}, "101.0", "values between 0 and 100"),
    "max_dpd_24m": ({"max_dpd_24m": 3651}, "3651.0", "values between 0 and 3650"),
    "inquiries_6m": ({"inquiries_6m": 201}, "201.0", "values between 0 and 200"),
    "revolving_utilization": ({"revolving_utilization": 20.5}, "20.5", "values between 0 and 20"),
    "existing_monthly_debt": ({"existing_monthly_debt": -0.01}, "-0.01", "values between 0 and 10000000"),
    "avg_monthly_spend_6m": (
        {"avg_monthly_spend_6m": 10_000_001.0}, "10000001.0", "values between 0 and 10000000"
    ),
    "vehicle_price": (
        {"vehicle_price": 60_000_000.0, "down_payment": 10_000_000.0, "loan_amount": 50_000_000.0},
        "60000000.0",
        "values > 0 and <= 50000000",
    ),
    "vehicle_age_years": ({"vehicle_age_years": 50.5}, "50.5", "values between 0 and 50"),
    "down_payment": (
        {"vehicle_price": 10_000.0, "down_payment": -1.0, "loan_amount": 10_001.0},
        "-1.0",
        "values between 0 and 50000000",
    ),
    "loan_amount": (
        {"vehicle_price": 50_000_000.0, "down_payment": 0.0, "loan_amount": 51_000_000.0},
        "51000000.0",
        "values > 0 and <= 50000000",
    ),
    "term_months": ({"term_months": 121}, "121.0", "values between 1 and 120"),
    "annual_rate": ({"annual_rate": 1.01}, "1.01", "values between 0 and 1"),
}  # fmt: skip

# Values exactly on a bound pass (the bounds are inclusive, but for the strictly positive columns'
# 0): set on rows of the rows frame that must then pass the gate.
ON_BOUNDS: dict[str, tuple[object, object]] = {
    "age": (18, 80),
    "employment_years": (0.0, 70.0),
    "residence_years": (0.0, 100.0),
    "dependents": (0, 8),
    "bureau_score": (300.0, 900.0),
    "credit_history_months": (0, 1000),
    "open_accounts": (0, 200),
    "revolving_utilization": (0.0, 20.0),
    "existing_monthly_debt": (0.0, 10_000_000.0),
    "vehicle_age_years": (0.0, 50.0),
    "annual_rate": (0.0, 1.0),
}
NULL_ALSO = {
    # GE's column-pair rule counts a row with one side null as failing.
    "vehicle_price": ("down_payment_not_below_price",),
    "down_payment": ("down_payment_not_below_price",),
    # term.isin(allowed) is false for a null term.
    "term_months": ("term_not_allowed",),
}


def _rows_of_the_rows_frame() -> Iterator[int]:
    """Rows where every rule can be broken alone: labelled, a used car, no optional null."""
    return (i for i in range(N_ROWS) if i % 2 and i % 5 and i % 7 and i % 9 and i % 11)


def _cases() -> dict[str, Case]:
    cases: list[Case] = []
    n = N_ROWS

    # -- frame "columns": every required column missing, and one row short of min_rows
    for name in [c.name for c in AUTO_LOAN_COLUMNS]:
        cases.append(
            Case(
                f"{name}_missing_column",
                "columns",
                "critical",
                drop_column(name),
                f"[{name}_missing_column] expect_column_to_exist on column '{name}': expected the column "
                "to be present, observed column missing",
            )
        )
    cases.append(
        Case(
            "too_few_rows",
            "columns",
            "critical",
            drop_last_row,
            f"[too_few_rows] expect_table_row_count_to_be_between on the table: expected at least {n} rows, "
            f"observed {n - 1}",
        )
    )

    # -- frame "critical": the rules that stop the gate, each on its own rows or columns
    cases += [
        Case(
            "application_id_id_missing",
            "critical",
            "critical",
            edit(407, application_id=None),
            "[application_id_id_missing] expect_column_values_to_not_be_null on column 'application_id': "
            f"expected no null values, observed 1 null of {n} rows; examples: <null id at row 407>",
        ),
        Case(
            "duplicate_id",
            "critical",
            "critical",
            edit(401, application_id=ident(400)),
            "[duplicate_id] expect_column_values_to_be_unique on column 'application_id': expected unique "
            f"values, observed 2 of {n} rows unexpected (values: APP00400); examples: APP00400",
        ),
        Case(
            "default_rate_out_of_bounds",
            "critical",
            "critical",
            relabel(0.0, 1.0, keep_first=True),  # 479 defaults among 480 labelled rows
            "[default_rate_out_of_bounds] expect_column_mean_to_be_between on column 'default_12m': "
            "expected a default rate between 0.001 and 0.6 among labelled rows, "
            f"observed {479 / 480}",
        ),
        Case(  # row 0 is unlabelled: a null date breaks no maturity rule
            "application_date_date_missing",
            "critical",
            "critical",
            edit(0, application_date=None),
            "[application_date_date_missing] expect_column_values_to_not_be_null on column "
            f"'application_date': expected no null values, observed 1 null of {n} rows; examples: APP00000",
        ),
        Case(  # row 5 is unlabelled: a future date breaks no maturity rule
            "future_application_date",
            "critical",
            "critical",
            edit(5, application_date=pd.Timestamp("2030-07-01")),
            "[future_application_date] expect_column_values_to_be_between on column 'application_date': "
            f"expected dates on or before the extract date 2030-06-30, observed 1 of {n} rows unexpected "
            "(values: 2030-07-01 00:00:00); examples: APP00005",
        ),
    ]
    null_rows = [i for i in range(n) if i % 4]  # 450 of 600 rows: beyond the 50% bound
    for name in NULLABLE:
        rows = list(range(n)) if name == "dealer_id" else null_rows  # dealer_id may be 90% null
        where = CLEAN[name].isna() | CLEAN.index.isin(rows)
        share = "90%" if name == "dealer_id" else "50%"
        cases.append(
            Case(
                f"{name}_too_many_nulls",
                "critical",
                "critical",
                nulls(name, rows),
                f"[{name}_too_many_nulls] expect_column_values_to_not_be_null on column '{name}': "
                f"expected at most {share} null values, observed {int(where.sum())} null of {n} rows; "
                f"examples: {first_ids(where)}",
            )
        )
    unseen_rows = list(range(20, 30))  # 10 of 600 rows: beyond the 1% bound
    for name, levels in LEVELS.items():
        cases.append(
            Case(
                f"{name}_unseen_levels",
                "critical",
                "critical",
                fill(name, unseen_rows, "zzz"),
                f"[{name}_unseen_levels] expect_column_values_to_be_in_set on column '{name}': expected at "
                f"least 99% of values in {{{', '.join(levels)}}}, observed 10 of {n} rows unexpected "
                f"(values: zzz); examples: {', '.join(ident(r) for r in unseen_rows[:5])}",
                rows=tuple(unseen_rows),
                also=(f"{name}_unseen_level",),
            )
        )
    for name in TYPED:  # last: the other damages of this frame go into the columns' own dtypes
        kind = next(c.kind for c in AUTO_LOAN_COLUMNS if c.name == name)
        head = (
            f"[{name}_column_type] expect_column_values_to_be_in_type_list on column '{name}': "
            f"expected {TYPE_TEXT[kind]}, observed "
        )
        if kind == "bool":  # Python booleans in an object column pass: 0/1 integers do not
            damage, message, exact = as_int(name), head + "dtype int64", True
        else:  # GE checks an object column's values one by one: Python numbers and dates fail
            damage, message, exact = as_object(name), head, False
        cases.append(Case(f"{name}_column_type", "critical", "critical", damage, message, exact=exact))

    # -- frame "one_class": only defaults of one class, and a value outside 0/1
    cases += [
        Case(
            "single_class",
            "one_class",
            "critical",
            relabel(1.0, 0.0),
            # GE 1.24 gives this expectation no observed value: the message ends "observed None"
            # (see test_single_class_message_names_the_missing_class)
            "[single_class] expect_column_distinct_values_to_contain_set on column 'default_12m': expected "
            "both classes 0 and 1 among labelled rows, observed ",
            exact=False,
        ),
        Case(
            "default_12m_target_not_binary",
            "one_class",
            "critical",
            edit(1, default_12m=2.0),
            "[default_12m_target_not_binary] expect_column_values_to_be_in_set on column 'default_12m': "
            f"expected values in {{0, 1}}, observed 1 of {n} rows unexpected (values: 2.0); "
            "examples: APP00001",
        ),
    ]

    # -- frame "rows": every row-level rule on rows of its own (quarantine), unseen levels (warn)
    free = _rows_of_the_rows_frame()
    by_rule: dict[str, list[int]] = {}  # rows each cross-column rule must name, collateral included

    def quarantine(rule: str, row: int, damage: Damage, message: str, also: tuple[str, ...] = ()) -> None:
        for other in also:
            by_rule.setdefault(other, []).append(row)
        cases.append(Case(rule, "rows", "quarantine", damage, message, rows=(row,), also=also))

    for name in REQUIRED:
        row = next(free)
        quarantine(
            f"{name}_missing",
            row,
            nulls(name, [row]),
            f"[{name}_missing] expect_column_values_to_not_be_null on column '{name}': expected no null "
            f"values, observed 1 null of {n} rows; examples: {ident(row)}",
            also=NULL_ALSO.get(name, ()),
        )
    for name, (cells, shown, text) in OUT_OF_RANGE.items():
        row = next(free)
        quarantine(
            f"{name}_out_of_range",
            row,
            edit(row, **cells),
            f"[{name}_out_of_range] expect_column_values_to_be_between on column '{name}': expected {text}, "
            f"observed 1 of {n} rows unexpected (values: {shown}); examples: {ident(row)}",
            also=("term_not_allowed",) if name == "term_months" else (),
        )
    ltv_row, gap_row, below_row, term_row, maturity_row = (next(free) for _ in range(5))
    price = 10_000.0
    by_rule.setdefault("loan_amount_inconsistent", []).append(ltv_row)
    gap_rows = sorted([gap_row, *by_rule["loan_amount_inconsistent"]])
    below_rows = sorted([below_row, *by_rule["down_payment_not_below_price"]])
    term_rows = sorted([term_row, *by_rule["term_not_allowed"]])
    vp_null, dp_null = by_rule["down_payment_not_below_price"]  # the null price, the null down payment
    pairs = {
        below_row: "[10000.0, 10000.0]",
        vp_null: f"[None, {float(CLEAN['down_payment'].to_numpy()[vp_null])}]",
        dp_null: f"[{float(CLEAN['vehicle_price'].to_numpy()[dp_null])}, None]",
    }
    cases += [
        Case(
            "ltv_out_of_range",
            "rows",
            "quarantine",
            edit(ltv_row, vehicle_price=price, down_payment=0.0, loan_amount=1.5 * price),
            "[ltv_out_of_range] expect_column_values_to_be_between on column 'check__loan_to_value': "
            f"expected loan_amount / vehicle_price in (0, 1.2], observed 1 of {n} rows unexpected "
            f"(values: 1.5); examples: {ident(ltv_row)}",
            rows=(ltv_row,),
            # with a down payment >= 0, a loan above 1.2 x the price is never within 5% of price - down
            also=("loan_amount_inconsistent",),
        ),
        Case(
            "loan_amount_inconsistent",
            "rows",
            "quarantine",
            edit(gap_row, vehicle_price=price, down_payment=2_000.0, loan_amount=9_000.0),  # 10% off
            "[loan_amount_inconsistent] expect_column_values_to_be_between on column "
            "'check__loan_gap_share_of_price': expected loan_amount within 5% of the price of vehicle_price "
            f"- down_payment, observed 2 of {n} rows unexpected (values: 0.1, 0.5); "
            f"examples: {', '.join(ident(r) for r in gap_rows)}",
            rows=(gap_row,),
        ),
        Case(
            "down_payment_not_below_price",
            "rows",
            "quarantine",
            edit(below_row, vehicle_price=price, down_payment=price, loan_amount=100.0),
            "[down_payment_not_below_price] expect_column_pair_values_a_to_be_greater_than_b on column "
            f"'vehicle_price': expected down_payment below vehicle_price, observed 3 of {n} rows unexpected "
            f"(values: {', '.join(pairs[r] for r in below_rows)}); "
            f"examples: {', '.join(ident(r) for r in below_rows)}",
            rows=(below_row,),
            any_order=True,
        ),
        Case(  # a used car: at most 36 months
            "term_not_allowed",
            "rows",
            "quarantine",
            edit(term_row, term_months=48),
            "[term_not_allowed] expect_column_values_to_be_in_set on column "
            "'check__term_allowed_for_condition': expected term_months in [12, 24, 36, 48, 60] for new cars, "
            f"[12, 24, 36] for used cars, observed 3 of {n} rows unexpected (values: False); "
            f"examples: {', '.join(ident(r) for r in term_rows)}",
            rows=(term_row,),
        ),
        Case(  # labelled, but applied for after the cutoff: its 12 months have not passed
            "outcome_before_maturity",
            "rows",
            "quarantine",
            edit(maturity_row, application_date=MATURITY_CUTOFF + pd.Timedelta(days=1)),
            "[outcome_before_maturity] expect_column_values_to_be_in_set on column "
            "'check__outcome_window_ended': expected an outcome only where the 12-month window has ended, "
            f"observed 1 of {n} rows unexpected (values: False); examples: {ident(maturity_row)}",
            rows=(maturity_row,),
        ),
    ]
    for name, levels in LEVELS.items():  # one row each: 1 in 600 is under the 1% bound
        row = next(free)
        cases.append(
            Case(
                f"{name}_unseen_level",
                "rows",
                "warn",
                edit(row, **{name: "zzz"}),
                f"[{name}_unseen_level] expect_column_values_to_be_in_set on column '{name}': "
                f"expected values in {{{', '.join(levels)}}}, observed 1 of {n} rows unexpected "
                f"(values: zzz); examples: {ident(row)}",
                rows=(row,),
            )
        )
    n_held = len({r for c in cases if c.severity == "quarantine" for r in c.rows})
    cases.append(
        Case(  # the rows frame again, through a gate allowing 5% of the rows in quarantine
            "quarantine_share_exceeded",
            "rows",
            "critical",
            no_damage,
            "[quarantine_share_exceeded] quarantine_share on the table: expected at most 5% of rows "
            f"quarantined, observed {n_held} of {n} rows ({n_held / n:.1%}); most frequent reasons: "
            "down_payment_not_below_price (3), term_not_allowed (3), loan_amount_inconsistent (2), "
            "customer_id_missing (1), age_missing (1)",
        )
    )
    table: dict[str, Case] = {}
    for case in cases:
        assert case.rule not in table, f"two cases for {case.rule}"
        table[case.rule] = case
    return table


CASES = _cases()


def on_bound_rows() -> dict[int, dict[str, object]]:
    """Rows of the rows frame (after the damaged ones) set exactly on a bound: they must pass."""
    free = list(_rows_of_the_rows_frame())[len([c for c in CASES.values() if c.rows and c.frame == "rows"]) :]
    out: dict[int, dict[str, object]] = {}
    for k, (name, (low, high)) in enumerate(ON_BOUNDS.items()):
        out.setdefault(free[k], {})[name] = low
        out.setdefault(free[k + len(ON_BOUNDS)], {})[name] = high
    return out


@functools.cache
def damaged(frame: FrameName) -> tuple[pd.DataFrame, ValidationReport]:
    """The clean frame with every damage of ``frame`` applied, and its validation report (cached)."""
    df = CLEAN.copy()
    for case in CASES.values():
        if case.frame == frame:
            df = case.damage(df)
    if frame == "rows":
        for row, cells in on_bound_rows().items():
            df = edit(row, **cells)(df)
    return df, validate_frame(df, SYNTHETIC_SPEC, CONFIG)


def suite_rules() -> dict[str, str]:
    """Rule code -> kind of every expectation the gate writes for a frame with every contract column."""
    columns = [str(c) for c in add_check_columns(CLEAN, SYNTHETIC_SPEC, CONFIG).columns]
    suite = build_suite(columns, SYNTHETIC_SPEC, CONFIG)
    rules = {str((e.meta or {})["rule"]): str((e.meta or {})["kind"]) for e in suite.expectations}
    assert len(rules) == len(suite.expectations), "two expectations share a rule code"
    return rules


# --------------------------------------------------------------------------- the table


def test_the_damage_table_covers_every_rule_and_every_kind() -> None:
    """Guards the table itself: every rule code of the suite (and every rule kind the gate knows)
    has a case, and no case names a rule the suite no longer has. A new rule without a test fails here."""
    rules = {**suite_rules(), **GATE_RULES}
    untested = sorted(set(rules) - set(CASES))
    assert not untested, f"rules of the validation suite that no damage case fires: {untested}"
    stale = sorted(set(CASES) - set(rules))
    assert not stale, f"damage cases for rules the suite does not have: {stale}"
    kinds = {rules[rule] for rule in CASES}
    unfired = sorted(set(DEFAULT_SEVERITY) - kinds)
    assert not unfired, f"rule kinds of DEFAULT_SEVERITY that no case fires: {unfired}"
    assert {case.frame for case in CASES.values()} == set(FRAMES)
    for case in CASES.values():  # the table's severities are the documented defaults
        assert case.severity == DEFAULT_SEVERITY.get(rules[case.rule], "critical"), case.rule


# --------------------------------------------------------------------------- firing


def check_type_outcome(outcome: ExpectationOutcome, df: pd.DataFrame) -> None:
    """The rest of a type rule's message: every non-null value (object column) counted, values of
    the column shown, the first ids as examples."""
    column = str(outcome.column)
    present = df[column].notna()
    rest = outcome.describe().removeprefix(CASES[outcome.rule].message)
    head, _, examples = rest.partition("); examples: ")
    count, _, values = head.partition(" (values: ")
    assert count == f"{int(present.sum())} of {len(df)} rows unexpected", outcome.describe()
    shown = {str(v) for v in df.loc[present, column]}
    assert values and set(values.split(", ")) <= shown, outcome.describe()
    assert examples == first_ids(present), outcome.describe()


def values_in_any_order(text: str) -> str:
    """``text`` with the items of its "(values: ...)" list sorted."""
    head, _, rest = text.partition("(values: ")
    inner, _, tail = rest.partition("); ")
    items = sorted(re.findall(r"\[[^\]]*\]|[^,\s][^,]*", inner))
    return f"{head}(values: {', '.join(items)}); {tail}"


def check_frame(frame: FrameName) -> tuple[pd.DataFrame, ValidationReport, dict[str, ExpectationOutcome]]:
    """Exactly the rules of ``frame``'s cases (and their ``also``) fail, each with its message,
    severity and rows; nothing else fails."""
    df, report = damaged(frame)
    cases = [c for c in CASES.values() if c.frame == frame and c.rule not in GATE_RULES]
    rows: dict[str, set[int]] = {}
    for case in cases:
        for rule in (case.rule, *case.also):
            rows.setdefault(rule, set()).update(case.rows)
    failed = {o.rule: o for o in report.failures()}
    assert sorted(failed) == sorted(rows), "failing rules differ from the damaged ones"
    for case in cases:
        outcome = failed[case.rule]
        text = outcome.describe()
        if case.any_order:
            assert values_in_any_order(text) == values_in_any_order(case.message)
        elif case.exact:
            assert text == case.message
        else:
            assert text.startswith(case.message), text
            if outcome.kind == "column_type":
                check_type_outcome(outcome, df)
        assert outcome.severity == case.severity, case.rule
    for rule, expected in rows.items():
        outcome = failed[rule]
        assert outcome.severity == DEFAULT_SEVERITY[outcome.kind], rule
        if outcome.severity != "critical":
            assert outcome.unexpected_count == len(expected), rule
        if outcome.severity == "quarantine":
            assert set(outcome.positions) == expected, rule
        else:  # a warning or a stop keeps its SUMMARY result: counts and examples, no positions
            assert outcome.positions == (), rule
    return df, report, failed


def check_stops(df: pd.DataFrame, report: ValidationReport) -> None:
    """apply_gate raises on the report, the message listing every critical failure in suite order."""
    with pytest.raises(DataValidationError) as excinfo:
        apply_gate(df, report, CONFIG)
    critical = [o for o in report.outcomes if not o.success and o.severity == "critical"]
    assert list(excinfo.value.failures) == critical
    assert str(excinfo.value) == (
        f"data validation failed: {len(critical)} critical of {len(report.outcomes)} expectations on "
        f"{len(df)} rows:\n" + "\n".join(f"  - {o.describe()}" for o in critical)
    )


def test_missing_columns_and_too_few_rows_stop_naming_each_column() -> None:
    """Guards missing_column (one per required column, all in one frame) and too_few_rows."""
    df, report, failed = check_frame("columns")
    assert len(failed) == len(AUTO_LOAN_COLUMNS) + 1
    check_stops(df, report)


def test_critical_rules_stop_the_gate_each_with_its_message() -> None:
    """Guards the rules that stop the pipeline: ids, dates, types, null shares, unseen-level shares,
    the default rate. Each fails on its own damage with its message; the error lists them all."""
    df, report, failed = check_frame("critical")
    assert all(o.severity == "critical" for o in failed.values() if o.kind != "unseen_level")
    check_stops(df, report)


def test_a_single_class_target_and_a_target_outside_0_1_stop() -> None:
    """Guards single_class and target_not_binary (a frame of their own: they damage the target the
    critical frame's default rate damages)."""
    df, report, _ = check_frame("one_class")
    check_stops(df, report)


def test_row_rules_quarantine_exactly_their_rows_with_their_reasons() -> None:
    """Guards every row-level rule: nulls in required fields, values out of range, the rules across
    columns. Exactly the damaged rows go to quarantine, each with its reasons; rows on a bound and
    rows with one unseen level pass (the latter counted as warnings); the counts reconcile."""
    df, report, _ = check_frame("rows")
    result = apply_gate(df, report, CONFIG)
    reasons: dict[str, set[str]] = {}
    for case in CASES.values():
        if case.frame == "rows" and case.severity == "quarantine":
            for row in case.rows:
                reasons.setdefault(ident(row), set()).update((case.rule, *case.also))
    held = sorted(reasons)
    assert result.quarantine[ID].tolist() == held
    got = dict(zip(result.quarantine[ID], result.quarantine[QUARANTINE_REASONS], strict=True))
    assert {i: set(text.split(";")) for i, text in got.items()} == reasons
    assert result.passed[ID].tolist() == [i for i in df[ID] if i not in reasons]
    assert QUARANTINE_REASONS not in result.passed.columns
    by_reason = Counter(rule for rules in reasons.values() for rule in rules)
    assert result.summary == {
        "n_input": N_ROWS,
        "n_passed": N_ROWS - len(held),
        "n_quarantined": len(held),
        "quarantine_by_reason": dict(sorted(by_reason.items())),
        "warnings": {f"{name}_unseen_level": 1 for name in sorted(LEVELS)},
    }
    assert result.summary["n_input"] == result.summary["n_passed"] + result.summary["n_quarantined"]
    # the rows of the two tables: 53 held (and quarantine_by_reason counts each reason once per row)
    assert len(held) == len(REQUIRED) + len(OUT_OF_RANGE) + 5 == 53


def test_too_many_quarantined_rows_stop_the_gate() -> None:
    """Guards quarantine_share_exceeded: the rows frame's 53 quarantined rows (8.8%) pass the default
    10% bound and stop a gate that allows 5%, with the counts and the most frequent reasons."""
    df, report = damaged("rows")
    strict = CONFIG.model_copy(update={"max_quarantine_share": 0.05})
    with pytest.raises(DataValidationError) as excinfo:
        apply_gate(df, report, strict)
    (failure,) = excinfo.value.failures
    case = CASES["quarantine_share_exceeded"]
    assert (failure.rule, failure.kind, failure.severity) == (case.rule, case.rule, case.severity)
    assert str(excinfo.value) == (
        f"data validation failed: 1 critical of {len(report.outcomes)} expectations on {N_ROWS} rows:\n"
        f"  - {case.message}"
    )
    exactly = CONFIG.model_copy(update={"max_quarantine_share": 53 / N_ROWS})  # the bound is inclusive
    assert apply_gate(df, report, exactly).summary["n_quarantined"] == 53


def test_single_class_message_names_the_missing_class() -> None:
    """great-expectations 1.24 gives expect_column_distinct_values_to_contain_set no observed value
    (its result lists the missing classes in partial_missing_list instead); the gate's message
    names the missing class rather than "observed None"."""
    _, report = damaged("one_class")
    (outcome,) = [o for o in report.failures() if o.rule == "single_class"]
    assert outcome.observed == "no row with 1", outcome.describe()
    assert outcome.describe().endswith(
        "expected both classes 0 and 1 among labelled rows, observed no row with 1"
    )


# --------------------------------------------------------------------------- property

HYP_N = 100  # 10 quarantined rows are the most the default 10% allows; 1 unseen level is 1%, 2 too many
HYP_CLEAN = clean_frame(HYP_N, seed=1)
HYP_CONFIG = ValidateConfig(as_of_date=AS_OF)
QUARANTINE_KINDS = ("null", "out_of_range", "term", "ltv", "down_payment", "loan_gap", "immature")
CRITICAL_KINDS = ("unseen_level", "future_date", "null_id", "null_date")


def _number(value: Any) -> float:
    return math.nan if is_null(value) else float(value)


def expected_row_reasons(df: pd.DataFrame, config: ValidateConfig) -> list[frozenset[str]]:
    """Per row, the row-level rules it breaks: the contract and params read row by row, plainly.

    Nulls are skipped by the range rules; a null in a required field is ``<field>_missing``. The
    rules across columns follow the params' docs: down payment below price (a null on one side is
    not below; GE's pair rule skips a row only when both are null), loan / price in (0, max_ltv]
    and |loan - (price - down)| / price within the tolerance (where price > 0 and the values are
    there), term allowed for the car's condition (a null term is not), and a labelled row's
    application date at least performance_months before the extract date.
    """
    assert config.as_of_date is not None
    cutoff = pd.Timestamp(config.as_of_date) - pd.DateOffset(months=config.performance_months)
    out: list[frozenset[str]] = []
    for _, row in df.iterrows():
        found: set[str] = {f"{name}_missing" for name in REQUIRED if is_null(row[name])}
        for spec in BOUNDED:
            value = _number(row[spec.name])
            if math.isnan(value):
                continue
            assert spec.min is not None and spec.max is not None
            low = value > spec.min if spec.name in STRICTLY_POSITIVE_COLUMNS else value >= spec.min
            if not (low and value <= spec.max):
                found.add(f"{spec.name}_out_of_range")
        price, down, loan = (_number(row[c]) for c in ("vehicle_price", "down_payment", "loan_amount"))
        if not (math.isnan(price) and math.isnan(down)) and not price > down:
            found.add("down_payment_not_below_price")
        if price > 0 and not math.isnan(loan):
            if not 0 < loan / price <= config.max_ltv:
                found.add("ltv_out_of_range")
            if not math.isnan(down) and abs(loan - (price - down)) / price > config.loan_amount_tolerance:
                found.add("loan_amount_inconsistent")
        allowed = config.terms_used if row["vehicle_condition"] == "used" else config.terms_new
        if _number(row["term_months"]) not in allowed:
            found.add("term_not_allowed")
        if not is_null(row[TARGET]) and not row[DATE] <= cutoff:
            found.add("outcome_before_maturity")
        out.append(frozenset(found))
    return out


def expected_unseen_levels(df: pd.DataFrame) -> dict[str, int]:
    """Per category column with levels, how many rows hold a value outside them (a warning each)."""
    counts = {name: int((~df[name].dropna().isin(levels)).sum()) for name, levels in LEVELS.items()}
    return {f"{name}_unseen_level": count for name, count in counts.items() if count}


def expected_critical_rules(df: pd.DataFrame, config: ValidateConfig) -> set[str]:
    """The critical rules the row damages of the property test can break (the target, the ids'
    uniqueness and the null shares are left alone)."""
    assert config.as_of_date is not None
    out: set[str] = set()
    if df[ID].isna().any():
        out.add(f"{ID}_id_missing")
    if df[DATE].isna().any():
        out.add(f"{DATE}_date_missing")
    if (df[DATE] >= pd.Timestamp(config.as_of_date) + pd.Timedelta(days=1)).any():  # a later day
        out.add("future_application_date")
    for name, levels in LEVELS.items():
        values = df[name].dropna()
        if (~values.isin(levels)).mean() > config.max_unseen_level_share:
            out.add(f"{name}_unseen_levels")
    return out


def _outside(spec: ColumnSpec) -> st.SearchStrategy[object]:
    """Values outside a column's bounds: just past them, far past them, or infinite (floats)."""
    assert spec.min is not None and spec.max is not None
    low, high = spec.min, spec.max
    if spec.kind == "int":
        d = st.integers(1, 10**9)
        return st.one_of(d.map(lambda k: int(low) - k), d.map(lambda k: int(high) + k))
    f = st.floats(1e-3, 1e12)
    options: list[st.SearchStrategy[object]] = [
        f.map(lambda x: low - x),
        f.map(lambda x: high + x),
        st.sampled_from([math.inf, -math.inf]),
    ]
    if spec.name in STRICTLY_POSITIVE_COLUMNS:
        options.append(st.just(low))
    return st.one_of(options)


@st.composite
def row_damage(draw: st.DrawFn, row: int, kind: str) -> dict[str, object]:
    """The cells one damage of ``kind`` sets on ``row`` of HYP_CLEAN (column -> value)."""
    price = float(HYP_CLEAN["vehicle_price"].to_numpy()[row])
    down = float(HYP_CLEAN["down_payment"].to_numpy()[row])
    assert HYP_CONFIG.as_of_date is not None
    as_of = pd.Timestamp(HYP_CONFIG.as_of_date)
    if kind == "null":
        return {draw(st.sampled_from(REQUIRED)): None}
    if kind == "out_of_range":
        spec = draw(st.sampled_from(BOUNDED))
        return {spec.name: draw(_outside(spec))}
    if kind == "term":
        used = HYP_CLEAN.at[row, "vehicle_condition"] == "used"
        allowed = HYP_CONFIG.terms_used if used else HYP_CONFIG.terms_new
        return {"term_months": draw(st.integers(1, 120).filter(lambda t: t not in allowed))}
    if kind == "ltv":
        ratio = draw(st.one_of(st.floats(1.25, 5.0), st.floats(-1.0, 0.0)))
        return {"loan_amount": price * ratio}
    if kind == "down_payment":
        return {"down_payment": price * draw(st.floats(1.0, 3.0))}
    if kind == "loan_gap":
        share = draw(st.one_of(st.floats(0.06, 0.15), st.floats(-0.5, -0.06)))
        return {"loan_amount": (price - down) + price * share}
    if kind == "immature":  # after the cutoff, up to the extract date: breaks a rule if labelled
        return {DATE: as_of - pd.DateOffset(months=12) + pd.Timedelta(days=draw(st.integers(1, 365)))}
    if kind == "unseen_level":
        name = draw(st.sampled_from(sorted(LEVELS)))
        text = st.text("abcdefghijklmnopqrstuvwxyz_ ", min_size=1, max_size=10)
        return {name: draw(text.filter(lambda s: s not in LEVELS[name]))}
    if kind == "future_date":
        return {DATE: as_of + pd.Timedelta(days=draw(st.integers(1, 3650)))}
    if kind == "null_id":
        return {ID: None}
    assert kind == "null_date"
    return {DATE: None}


@st.composite
def damage_plans(draw: st.DrawFn) -> list[tuple[int, str, dict[str, object]]]:
    """1 to 12 rows damaged in a row-level way each; now and then one critical damage on top."""
    rows = draw(st.lists(st.integers(0, HYP_N - 1), min_size=1, max_size=12, unique=True))
    plan = []
    for row in rows:
        kind = draw(st.sampled_from(QUARANTINE_KINDS))
        plan.append((row, kind, draw(row_damage(row, kind))))
    if draw(st.integers(0, 3)) == 0:
        row, kind = draw(st.integers(0, HYP_N - 1)), draw(st.sampled_from(CRITICAL_KINDS))
        plan.append((row, kind, draw(row_damage(row, kind))))
    return plan


@settings(max_examples=12, deadline=None)  # a great-expectations run each: ~3 s of CPU
@given(plan=damage_plans())
def test_random_row_damage_is_quarantined_exactly(plan: list[tuple[int, str, dict[str, object]]]) -> None:
    """Guards the gate as a whole against an independent reading of the contract: after random
    row damage, the report names exactly the rows breaking each row-level rule; the gate stops with
    exactly the critical rules broken, or with quarantine_share_exceeded above 10% of the rows, or
    else holds back exactly the broken rows, each with its reasons, and the counts reconcile."""
    df = HYP_CLEAN.copy()
    for row, _, cells in plan:
        df = edit(row, **cells)(df)
    reasons = expected_row_reasons(df, HYP_CONFIG)
    critical = expected_critical_rules(df, HYP_CONFIG)
    report = validate_frame(df, SYNTHETIC_SPEC, HYP_CONFIG)

    rows_by_rule: dict[str, set[int]] = {}
    for row, found in enumerate(reasons):
        for rule in found:
            rows_by_rule.setdefault(rule, set()).add(row)
    quarantine = {o.rule: set(o.positions) for o in report.failures() if o.severity == "quarantine"}
    assert quarantine == rows_by_rule
    assert {o.rule for o in report.failures() if o.severity == "critical"} == critical
    warnings = expected_unseen_levels(df)
    assert {o.rule: o.unexpected_count for o in report.failures() if o.severity == "warn"} == warnings

    held = [row for row, found in enumerate(reasons) if found]
    if critical or len(held) / HYP_N > HYP_CONFIG.max_quarantine_share:
        with pytest.raises(DataValidationError) as excinfo:
            apply_gate(df, report, HYP_CONFIG)
        rules = {f.rule for f in excinfo.value.failures}
        assert rules == (critical or {"quarantine_share_exceeded"})
        event("stopped: critical rule" if critical else "stopped: quarantine share")
        return
    event(f"gate passed, {len(held)} rows quarantined")
    result = apply_gate(df, report, HYP_CONFIG)
    assert result.quarantine[ID].tolist() == [df.at[row, ID] for row in held]
    got = [frozenset(text.split(";")) for text in result.quarantine[QUARANTINE_REASONS]]
    assert got == [reasons[row] for row in held]
    assert result.passed[ID].tolist() == [df.at[row, ID] for row in range(HYP_N) if row not in held]
    summary = result.summary
    assert summary["n_input"] == HYP_N == summary["n_passed"] + summary["n_quarantined"]
    assert summary["n_quarantined"] == len(held)
    assert summary["quarantine_by_reason"] == {rule: len(rows) for rule, rows in sorted(rows_by_rule.items())}
    assert summary["warnings"] == dict(sorted(warnings.items()))
