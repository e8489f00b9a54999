"""The first validation gate: a great-expectations suite run on the raw application frame.

:func:`build_suite` turns the data contract (:data:`~scoring.core.contract.AUTO_LOAN_COLUMNS`), the
dataset's column roles (:class:`~scoring.core.contract.DatasetSpec`) and the ``validate`` section of
params.yaml (:class:`~scoring.config.ValidateConfig`) into a great-expectations 1.x
``ExpectationSuite``. :func:`validate_frame` runs it on a DataFrame through an in-memory
(ephemeral) context, optionally building the Data Docs HTML site into a directory, and condenses
GE's result into a :class:`ValidationReport`. :mod:`scoring.data.validation_dask` runs the same
suite on the partitions of a Dask DataFrame and merges their results into the same report.

The suite runs in two passes (:func:`run_suite`): all of it with result format SUMMARY, then only
the quarantine rules that failed or found offending rows again with COMPLETE, whose results
replace the first ones: the gate holds back every row such a rule names, so it needs all their
positions. Every other rule's report reads what SUMMARY already has: the counts, the first 20
offending rows (examples) and the values among them. COMPLETE on the whole suite costs about
twice as much on a million rows: it collects every offending row of every expectation, and the
null-share rules that pass (a column may be up to a share null) name every null row: on the
benchmark's million rows, 800 thousand positions that nothing reads. The merged result is
stored and rendered to the Data Docs site by :func:`write_data_docs`, as a checkpoint's
``UpdateDataDocsAction`` would. Neither pass asks for GE's ``unexpected_index_query`` (a
``df.filter(items=[...])`` text listing every offending row, about a sixth of the run on a
million rows, read by nothing here), so the Data Docs no longer print it.
:func:`raise_for_failures` stops the pipeline on any failure; every expectation is critical for now.

Only columns that exist get column expectations: a missing required column fails its
``expect_column_to_exist`` and nothing else, so the report says exactly what is wrong.

great-expectations 1.24 quirks handled here:

* results come back in a different order than the suite's; outcomes are put back in suite order
  through the expectation ids, set from their positions by :func:`numbered_suite`;
* ``expect_column_values_to_be_in_type_list`` compares pandas extension dtypes by equality with a
  default-constructed instance, so pandas 3's ``str`` dtype (``StringDtype(na_value=nan)``),
  ``category`` and tz-aware datetimes never match any type name. Type expectations are therefore
  only written for numeric, datetime and boolean columns; string and category columns are
  covered by their level sets instead;
* ``unexpected_index_column_names`` (ids of the offending rows) looks each offending row up with
  ``DataFrame.at`` before cutting the list to its first 20 (about 4 s per column that fails on
  every one of 100k rows), makes every column expectation raise when the frame has a named index
  or lacks that column. GE is asked for row positions instead (the frame gets a default
  RangeIndex) and the ids of those few rows are looked up here;
* the ephemeral context's default docs site lives in a fresh temporary directory; the context is
  built here from an explicit config with the one site under ``docs_dir`` (or none), analytics
  off (GE 1.24 reads only the config flag: ``GX_ANALYTICS_ENABLED`` is not consulted anywhere)
  and progress bars off;
* a checkpoint stores every result in the context's store (serialising it: half a second for this
  suite on any frame) and checks that its definitions are fresh; the suite is run through a
  ``Validator`` instead (what ``ValidationDefinition.run`` and ``Batch.validate`` use), one for
  both passes: GE loads the batch once per validator, and loading fingerprints the whole frame;
* a suite refuses expectations that belong to another suite, and ``copy.copy`` of an expectation
  deep-copies its whole suite with it (about 10 ms an expectation): the second pass's suite is
  built from shallow copies (:func:`copy_suite`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import great_expectations as gx
import numpy as np
import numpy.typing as npt
import pandas as pd
from great_expectations.constants import DATAFRAME_REPLACEMENT_STR
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.core.run_identifier import RunIdentifier
from great_expectations.data_context.data_context.ephemeral_data_context import EphemeralDataContext
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
    ValidationResultIdentifier,
)

# from the defining modules: mypy --strict refuses great_expectations.expectations' implicit re-exports
from great_expectations.expectations.core.expect_column_distinct_values_to_contain_set import (
    ExpectColumnDistinctValuesToContainSet,
)
from great_expectations.expectations.core.expect_column_mean_to_be_between import ExpectColumnMeanToBeBetween
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_to_exist import ExpectColumnToExist
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_be_in_set import ExpectColumnValuesToBeInSet
from great_expectations.expectations.core.expect_column_values_to_be_in_type_list import (
    ExpectColumnValuesToBeInTypeList,
)
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.core.expect_table_row_count_to_be_between import (
    ExpectTableRowCountToBeBetween,
)
from great_expectations.expectations.expectation import Expectation
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
from great_expectations.validator.v1_validator import Validator
from great_expectations.validator.validation_statistics import calc_validation_statistics

from scoring.core.contract import AUTO_LOAN_COLUMNS, ColumnSpec, DatasetSpec, declared_bounds
from scoring.core.io import write_text
from scoring.data.config import Severity, ValidateConfig

logger = logging.getLogger(__name__)

# GE logs chatty INFO lines (fluent config loading, docs registration); keep them out of the
# pipeline's log unless someone has set a level for GE's logger explicitly.
_GX_LOGGER = logging.getLogger("great_expectations")
if _GX_LOGGER.level == logging.NOTSET:
    _GX_LOGGER.setLevel(logging.WARNING)

SUITE_NAME = "scoring_validate"
"""Name of the suite, its validation definition and checkpoint; the Data Docs pages carry it."""

DOCS_SITE_NAME = "scoring_validate_site"

MAX_EXAMPLES = 5
_PARTIAL_UNEXPECTED_COUNT = 20  # rows GE reports per failing expectation; examples are taken from these

NUMERIC_DTYPES: tuple[str, ...] = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
    "Float32Dtype", "Float64Dtype",
)  # fmt: skip
DATETIME_DTYPES: tuple[str, ...] = ("datetime64[s]", "datetime64[ms]", "datetime64[us]", "datetime64[ns]")
BOOL_DTYPES: tuple[str, ...] = ("bool", "BooleanDtype")

_TYPE_LISTS: dict[str, tuple[tuple[str, ...], str]] = {
    "int": (NUMERIC_DTYPES, "a numeric dtype"),
    "float": (NUMERIC_DTYPES, "a numeric dtype"),
    "date": (DATETIME_DTYPES, "a datetime64 dtype (tz-naive)"),
    "bool": (BOOL_DTYPES, "a boolean dtype"),
}

_EXPECTED = "expected"  # key of each expectation's meta holding the human text of what it expects


# --------------------------------------------------------------------------- report


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, reduced to what a person needs to act on it."""

    expectation: str
    column: str | None
    success: bool
    observed: object
    unexpected_examples: list[str]
    expected: str
    rule: str = ""
    kind: str = ""
    severity: Severity = "critical"
    unexpected_count: int = 0
    # Positions (0-based rows) of every offending row, for quarantine; not part of the summary.
    positions: tuple[int, ...] = field(default=(), repr=False, compare=False)

    def describe(self) -> str:
        where = f"on column '{self.column}'" if self.column is not None else "on the table"
        text = f"[{self.rule}] {self.expectation} {where}: expected {self.expected}, observed {self.observed}"
        if self.unexpected_examples:
            text += "; examples: " + ", ".join(self.unexpected_examples)
        return text


@dataclass(frozen=True)
class ValidationReport:
    success: bool
    n_rows: int
    outcomes: tuple[ExpectationOutcome, ...]

    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.success)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (for a DVC metrics or summary file)."""
        return {
            "success": self.success,
            "n_rows": self.n_rows,
            "n_expectations": len(self.outcomes),
            "n_failures": len(self.failures()),
            "outcomes": [{k: v for k, v in asdict(o).items() if k != "positions"} for o in self.outcomes],
        }

    def critical_failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(o for o in self.failures() if o.severity == "critical")


class DataValidationError(ValueError):
    """The frame failed the validation gate critically; the message lists each critical failure."""

    def __init__(
        self, report: ValidationReport, failures: Sequence[ExpectationOutcome] | None = None
    ) -> None:
        self.report = report
        self.failures = tuple(failures if failures is not None else report.critical_failures())
        lines = [f"  - {o.describe()}" for o in self.failures]
        super().__init__(
            f"data validation failed: {len(self.failures)} critical of {len(report.outcomes)} expectations "
            f"on {report.n_rows} rows:\n" + "\n".join(lines)
        )


def raise_for_failures(report: ValidationReport) -> None:
    """Raise :class:`DataValidationError` when any critical expectation failed."""
    if report.critical_failures():
        raise DataValidationError(report)


# --------------------------------------------------------------------------- suite


def required_columns(spec: DatasetSpec) -> tuple[str, ...]:
    """Columns the frame must have: the role columns, plus every contract column when it applies."""
    names: list[str] = [spec.id_column, spec.target_column]
    names += [c for c in (spec.date_column, spec.customer_column) if c is not None]
    if spec.follows_auto_loan_contract:
        names += [c.name for c in AUTO_LOAN_COLUMNS]
    return tuple(dict.fromkeys(names))


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range_text(low: float | None, high: float | None, strict_min: bool) -> str:
    low_op = ">" if strict_min else ">="
    if low is not None and high is not None:
        if strict_min:
            return f"values > {_fmt_number(low)} and <= {_fmt_number(high)}"
        return f"values between {_fmt_number(low)} and {_fmt_number(high)}"
    if low is not None:
        return f"values {low_op} {_fmt_number(low)}"
    return f"values <= {_fmt_number(high)}" if high is not None else "any value"


# Rule kinds and their default severity. A kind marked structural cannot be downgraded: the
# later stages cannot run on a frame that fails it.
DEFAULT_SEVERITY: dict[str, Severity] = {
    "missing_column": "critical",
    "too_few_rows": "critical",
    "column_type": "critical",
    "id_missing": "critical",
    "duplicate_id": "critical",
    "target_not_binary": "critical",
    "single_class": "critical",
    "default_rate_out_of_bounds": "critical",
    "date_missing": "critical",
    "future_application_date": "critical",
    "too_many_nulls": "critical",
    "unseen_levels": "critical",
    "unseen_level": "warn",
    "missing": "quarantine",
    "out_of_range": "quarantine",
    "term_not_allowed": "quarantine",
    "ltv_out_of_range": "quarantine",
    "down_payment_not_below_price": "quarantine",
    "loan_amount_inconsistent": "quarantine",
    "outcome_before_maturity": "quarantine",
}
STRUCTURAL_KINDS = frozenset(
    {"missing_column", "too_few_rows", "column_type", "id_missing", "target_not_binary"}
)

# Helper columns computed before validation for rules across columns; GE checks them like any
# other column, so their results show in the Data Docs under these names.
CHECK_LTV = "check__loan_to_value"
CHECK_LOAN_GAP = "check__loan_gap_share_of_price"
CHECK_TERM = "check__term_allowed_for_condition"
CHECK_MATURED = "check__outcome_window_ended"


def _meta(expected: str, rule: str, kind: str) -> dict[str, str]:
    return {_EXPECTED: expected, "rule": rule, "kind": kind}


class _Rules:
    """Expectations in order, each tagged with its rule code and kind."""

    def __init__(self) -> None:
        self.expectations: list[Expectation] = []

    def add(self, expectation: Expectation) -> None:
        self.expectations.append(expectation)


def _code(column: str | None, kind: str) -> str:
    return kind if column is None else f"{column}_{kind}"


def _not_null(
    column: str, kind: str = "missing", mostly: float | None = None
) -> ExpectColumnValuesToNotBeNull:
    text = "no null values" if mostly is None else f"at most {1 - mostly:.0%} null values"
    extra: dict[str, Any] = {} if mostly is None else {"mostly": mostly}
    return ExpectColumnValuesToNotBeNull(column=column, meta=_meta(text, _code(column, kind), kind), **extra)


def _type(column: str, kind: str) -> ExpectColumnValuesToBeInTypeList:
    type_list, text = _TYPE_LISTS[kind]
    return ExpectColumnValuesToBeInTypeList(
        column=column,
        type_list=list(type_list),
        meta=_meta(text, _code(column, "column_type"), "column_type"),
    )


def _between(
    column: str,
    low: float | None,
    high: float | dt.datetime | None,
    strict_min: bool = False,
    kind: str = "out_of_range",
    text: str | None = None,
    rule: str | None = None,
) -> ExpectColumnValuesToBeBetween:
    if text is None:
        assert not isinstance(high, dt.datetime), "a date bound needs its own text"
        text = _range_text(low, high, strict_min)
    return ExpectColumnValuesToBeBetween(
        column=column,
        min_value=low,
        max_value=high,
        strict_min=strict_min,
        meta=_meta(text, rule or _code(column, kind), kind),
    )


def _in_set(
    column: str,
    values: Sequence[Any],
    kind: str,
    mostly: float | None = None,
    text: str | None = None,
    rule: str | None = None,
) -> ExpectColumnValuesToBeInSet:
    if text is None:
        text = "values in {" + ", ".join(str(v) for v in values) + "}"
        if mostly is not None:
            text = f"at least {mostly:.0%} of {text}"
    extra: dict[str, Any] = {} if mostly is None else {"mostly": mostly}
    return ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), meta=_meta(text, rule or _code(column, kind), kind), **extra
    )


def as_of_date(config: ValidateConfig) -> dt.date:
    """The extract date: configured, or today (dates after it are in the future)."""
    return config.as_of_date or dt.date.today()


def _maturity_cutoff(config: ValidateConfig) -> pd.Timestamp:
    return pd.Timestamp(as_of_date(config)) - pd.DateOffset(months=config.performance_months)


def add_check_columns(df: pd.DataFrame, spec: DatasetSpec, config: ValidateConfig) -> pd.DataFrame:
    """The frame plus the helper columns of the rules across columns (where their sources exist)."""
    checks: dict[str, Any] = {}
    cols = set(df.columns)

    def numeric(name: str) -> pd.Series:
        return pd.to_numeric(df[name], errors="coerce")

    if {"loan_amount", "vehicle_price"} <= cols:
        price = numeric("vehicle_price").where(lambda p: p > 0)
        checks[CHECK_LTV] = numeric("loan_amount") / price
        if "down_payment" in cols:
            gap = (numeric("loan_amount") - (price - numeric("down_payment"))).abs() / price
            checks[CHECK_LOAN_GAP] = gap
    if {"term_months", "vehicle_condition"} <= cols:
        term = numeric("term_months")
        used = df["vehicle_condition"].astype(object) == "used"
        allowed = term.isin(config.terms_new).where(~used, term.isin(config.terms_used))
        checks[CHECK_TERM] = allowed.astype(bool)
    if spec.date_column is not None and spec.date_column in cols and spec.target_column in cols:
        dates = pd.to_datetime(df[spec.date_column], errors="coerce")
        labelled = df[spec.target_column].notna()
        checks[CHECK_MATURED] = (~labelled | (dates <= _maturity_cutoff(config))).astype(bool)
    return df.assign(**checks) if checks else df


def _contract_rules(spec: ColumnSpec, dataset: DatasetSpec, config: ValidateConfig) -> list[Expectation]:
    out: list[Expectation] = []
    if spec.name in {dataset.id_column, dataset.target_column, dataset.date_column}:
        return out  # their rules, types included, follow from their roles
    if spec.kind in _TYPE_LISTS:
        out.append(_type(spec.name, spec.kind))
    if not spec.nullable:
        out.append(_not_null(spec.name))
    else:
        share = config.max_null_share.get(spec.name, config.default_max_null_share)
        out.append(_not_null(spec.name, kind="too_many_nulls", mostly=max(1.0 - share, 1e-9)))
    if spec.levels is not None:
        # Unseen levels are scored as missing; a few are reported (warn), too many stop the gate.
        out.append(_in_set(spec.name, spec.levels, kind="unseen_level"))
        mostly = 1.0 - config.max_unseen_level_share
        if mostly < 1.0:
            out.append(_in_set(spec.name, spec.levels, kind="unseen_levels", mostly=mostly))
    bounds = declared_bounds(spec.name, dataset, declared_ranges(config))
    if bounds is not None and bounds.source == "contract":  # declared ranges are added below
        out.append(_between(spec.name, bounds.min, bounds.max, bounds.strict_min))
    return out


def declared_ranges(config: ValidateConfig) -> dict[str, dict[str, float | None]]:
    """``validate.ranges`` as :func:`scoring.core.contract.declared_bounds` reads them."""
    return {column: {"min": rule.min, "max": rule.max} for column, rule in config.ranges.items()}


def build_suite(columns: Sequence[str], spec: DatasetSpec, config: ValidateConfig) -> gx.ExpectationSuite:
    """The gate's expectations for a frame with these columns (helper check columns included).

    Existence is expected of every required column; every other expectation is only written for
    columns in ``columns``, so a missing column fails once, by name, and breaks nothing else.
    Each expectation's ``meta`` carries its rule code (the quarantine reason) and kind.
    """
    present = set(str(c) for c in columns)
    rules = _Rules()
    for name in required_columns(spec):
        rules.add(
            ExpectColumnToExist(
                column=name,
                meta=_meta("the column to be present", _code(name, "missing_column"), "missing_column"),
            )
        )
    rules.add(
        ExpectTableRowCountToBeBetween(
            min_value=config.min_rows,
            max_value=None,
            meta=_meta(f"at least {config.min_rows} rows", "too_few_rows", "too_few_rows"),
        )
    )
    if spec.id_column in present:
        rules.add(_not_null(spec.id_column, kind="id_missing"))
        rules.add(
            ExpectColumnValuesToBeUnique(
                column=spec.id_column, meta=_meta("unique values", "duplicate_id", "duplicate_id")
            )
        )
    if spec.target_column in present:
        target = spec.target_column
        rules.add(_type(target, "float"))
        rules.add(_in_set(target, [0, 1], kind="target_not_binary"))
        rules.add(
            ExpectColumnDistinctValuesToContainSet(
                column=target,
                value_set=[0, 1],
                meta=_meta("both classes 0 and 1 among labelled rows", "single_class", "single_class"),
            )
        )
        bounds = config.default_rate
        rules.add(
            ExpectColumnMeanToBeBetween(
                column=target,
                min_value=bounds.min,
                max_value=bounds.max,
                meta=_meta(
                    f"a default rate between {bounds.min:g} and {bounds.max:g} among labelled rows",
                    "default_rate_out_of_bounds",
                    "default_rate_out_of_bounds",
                ),
            )
        )
    if spec.date_column is not None and spec.date_column in present:
        rules.add(_type(spec.date_column, "date"))
        rules.add(_not_null(spec.date_column, kind="date_missing"))
        as_of = as_of_date(config)
        rules.add(
            _between(
                spec.date_column,
                None,
                dt.datetime.combine(as_of, dt.time.max),
                kind="future_application_date",
                rule="future_application_date",
                text=f"dates on or before the extract date {as_of.isoformat()}",
            )
        )
    if spec.follows_auto_loan_contract:
        for column_spec in AUTO_LOAN_COLUMNS:
            if column_spec.name in present:
                for expectation in _contract_rules(column_spec, spec, config):
                    rules.add(expectation)
    else:
        for column in sorted(
            present - set(spec.non_feature_columns) - {CHECK_LTV, CHECK_LOAN_GAP, CHECK_TERM, CHECK_MATURED}
        ):
            share = config.max_null_share.get(column, config.default_max_null_share)
            rules.add(_not_null(column, kind="too_many_nulls", mostly=max(1.0 - share, 1e-9)))
    ranges = declared_ranges(config)
    for column in config.ranges:
        declared = declared_bounds(column, spec, ranges)
        if column in present and declared is not None:
            rules.add(_between(column, declared.min, declared.max, declared.strict_min))
    if {"vehicle_price", "down_payment"} <= present:
        rules.add(
            ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="vehicle_price",
                column_B="down_payment",
                or_equal=False,
                meta=_meta(
                    "down_payment below vehicle_price",
                    "down_payment_not_below_price",
                    "down_payment_not_below_price",
                ),
            )
        )
    if CHECK_LTV in present:
        rules.add(
            _between(
                CHECK_LTV,
                0,
                config.max_ltv,
                strict_min=True,
                kind="ltv_out_of_range",
                rule="ltv_out_of_range",
                text=f"loan_amount / vehicle_price in (0, {config.max_ltv:g}]",
            )
        )
    if CHECK_LOAN_GAP in present:
        rules.add(
            _between(
                CHECK_LOAN_GAP,
                None,
                config.loan_amount_tolerance,
                kind="loan_amount_inconsistent",
                rule="loan_amount_inconsistent",
                text=f"loan_amount within {config.loan_amount_tolerance:.0%} of the price "
                "of vehicle_price - down_payment",
            )
        )
    if CHECK_TERM in present:
        rules.add(
            _in_set(
                CHECK_TERM,
                [True],
                kind="term_not_allowed",
                rule="term_not_allowed",
                text=f"term_months in {config.terms_new} for new cars, {config.terms_used} for used cars",
            )
        )
    if CHECK_MATURED in present:
        rules.add(
            _in_set(
                CHECK_MATURED,
                [True],
                kind="outcome_before_maturity",
                rule="outcome_before_maturity",
                text=f"an outcome only where the {config.performance_months}-month window has ended",
            )
        )
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=rules.expectations)


# --------------------------------------------------------------------------- run


def ephemeral_context(docs_dir: Path | None) -> EphemeralDataContext:
    """An in-memory context: nothing on disk but the Data Docs site, if one is asked for."""
    sites: dict[str, Any] = {}
    if docs_dir is not None:
        sites[DOCS_SITE_NAME] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _plain(value: Any) -> Any:
    """A JSON-serialisable version of a value from a GE result (numpy scalars, NaN, containers)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    return str(value)


def _is_null(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _example_text(value: Any) -> str:
    return "<null>" if _is_null(value) else str(_plain(value))


def _distinct(values: Iterable[Any], limit: int) -> list[str]:
    out: list[str] = []
    for value in values:
        text = _example_text(value)
        if text not in out:
            out.append(text)
            if len(out) == limit:
                break
    return out


IdLookup = pd.Series | Mapping[int, Any] | None
"""The id column (a Series in row order), or the ids of the rows a result names keyed by position."""


def _examples(result: Mapping[str, Any], ids: IdLookup) -> list[str]:
    """Up to MAX_EXAMPLES distinct ids of the offending rows GE reports, else offending values.

    GE reports the positions of the first offending rows (the frame it sees has a default
    RangeIndex); their ids are looked up here. A row whose id is itself null is named by position.
    """
    positions = result.get("partial_unexpected_index_list") or []
    if ids is not None and positions and all(isinstance(p, int) for p in positions):
        if isinstance(ids, pd.Series):
            values = ids.iloc[list(positions)].tolist()
        else:
            values = [ids[p] for p in positions]
        texts = (
            f"<null id at row {p}>" if _is_null(v) else _example_text(v)
            for p, v in zip(positions, values, strict=True)
        )
        return _distinct(texts, MAX_EXAMPLES)
    return _distinct(result.get("partial_unexpected_list") or [], MAX_EXAMPLES)


def error_message(info: Mapping[str, Any] | None) -> str | None:
    """GE's exception info is either flat or keyed by the metric that raised."""
    if not info:
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _observed(evr: ExpectationValidationResult, expectation_type: str) -> object:
    error = error_message(evr.exception_info)
    if error is not None:
        return f"error: {error}"
    result: Mapping[str, Any] = evr.result or {}
    missing = result.get("details", {}).get("partial_missing_list") or result.get("partial_missing_list")
    if result.get("observed_value") is None and missing:
        # expect_column_distinct_values_to_contain_set (GE 1.24) reports no observed value, only
        # the expected values it did not find
        return "no row with " + " and none with ".join(str(_plain(v)) for v in missing)
    if "observed_value" in result:
        observed = _plain(result["observed_value"])
        is_type = expectation_type == "expect_column_values_to_be_in_type_list"
        return f"dtype {observed}" if is_type else observed
    if "unexpected_count" in result:
        count, total = int(result["unexpected_count"]), int(result.get("element_count") or 0)
        if expectation_type == "expect_column_values_to_not_be_null":
            return f"{count} null of {total} rows"
        text = f"{count} of {total} rows unexpected"
        values = _distinct((c["value"] for c in result.get("partial_unexpected_counts") or []), MAX_EXAMPLES)
        return f"{text} (values: {', '.join(values)})" if values else text
    if expectation_type == "expect_column_to_exist":
        return "column present" if evr.success else "column missing"
    return _plain(dict(result)) if result else None


def severity_of(kind: str, rule: str, config: ValidateConfig) -> Severity:
    """A rule's severity: the default of its kind, unless params override the code or the kind."""
    default = DEFAULT_SEVERITY.get(kind, "critical")
    if kind in STRUCTURAL_KINDS:
        return default
    return config.severity.get(rule, config.severity.get(kind, default))


def _kind_and_rule(expectation: ExpectationConfiguration) -> tuple[str, str]:
    """The rule's kind and code, from the meta :func:`build_suite` gives each expectation."""
    meta = expectation.meta or {}
    return str(meta.get("kind", "")), str(meta.get("rule", expectation.type))


def rule_severity(evr: ExpectationValidationResult, config: ValidateConfig) -> Severity:
    """The severity of the rule ``evr`` is a result of."""
    expectation = evr.expectation_config
    assert expectation is not None  # always set on results of a suite run
    return severity_of(*_kind_and_rule(expectation), config)


def _outcome(evr: ExpectationValidationResult, ids: IdLookup, config: ValidateConfig) -> ExpectationOutcome:
    expectation = evr.expectation_config
    assert expectation is not None  # always set on results of a suite run
    column = expectation.kwargs.get("column", expectation.kwargs.get("column_A"))
    meta = expectation.meta or {}
    kind, rule = _kind_and_rule(expectation)
    result: Mapping[str, Any] = evr.result or {}
    errored = error_message(evr.exception_info) is not None
    positions = result.get("unexpected_index_list") or []
    severity = severity_of(kind, rule, config)
    if severity == "quarantine" and not evr.success and (errored or not positions):
        # A row-level rule that could not name its rows (it raised, or is an aggregate)
        # cannot quarantine anything: it stops the pipeline instead.
        severity = "critical"
    return ExpectationOutcome(
        expectation=expectation.type,
        column=None if column is None else str(column),
        success=bool(evr.success),
        observed=_observed(evr, expectation.type),
        unexpected_examples=_examples(result, ids),
        expected=str(meta.get(_EXPECTED, expectation.type)),
        rule=rule,
        kind=kind,
        severity=severity,
        unexpected_count=int(result.get("unexpected_count") or 0),
        positions=tuple(int(p) for p in positions if isinstance(p, int | np.integer)),
    )


def _has_default_index(df: pd.DataFrame) -> bool:
    index = df.index
    return (
        isinstance(index, pd.RangeIndex)
        and index.name is None
        and index.start == 0
        and index.step == 1
        and index.stop == len(df)
    )


# Both passes ask for positions only: the query string GE 1.24 otherwise builds from every offending
# row's index (``df.filter(items=[...])``, a list as long as the column's failures) is never read here.
SUMMARY_FORMAT: dict[str, Any] = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": _PARTIAL_UNEXPECTED_COUNT,
    "return_unexpected_index_query": False,
}
COMPLETE_FORMAT: dict[str, Any] = {**SUMMARY_FORMAT, "result_format": "COMPLETE"}


def numbered_suite(columns: Sequence[str], spec: DatasetSpec, config: ValidateConfig) -> gx.ExpectationSuite:
    """:func:`build_suite`, each expectation with an id made from its position in the suite.

    GE returns results in its own order; the ids put them back in the suite's, and are the same
    wherever the suite is built (in this process or in a Dask worker).
    """
    suite = build_suite(columns, spec, config)
    for number, expectation in enumerate(suite.expectations):
        expectation.id = str(uuid.UUID(int=number + 1))
    return suite


def frame_batch_definition(context: EphemeralDataContext) -> BatchDefinition[Any]:
    """A whole-dataframe batch definition in ``context``; its batches are frames passed at run time."""
    return (
        context.data_sources.add_pandas(name="frame")
        .add_dataframe_asset(name="frame")
        .add_batch_definition_whole_dataframe(name="frame")
    )


def _in_suite_order(
    suite: gx.ExpectationSuite, results: Iterable[ExpectationValidationResult]
) -> list[ExpectationValidationResult]:
    position = {e.id: i for i, e in enumerate(suite.expectations)}
    return sorted(
        results,
        key=lambda r: position.get(r.expectation_config.id if r.expectation_config else None, len(position)),
    )


def needs_complete(evr: ExpectationValidationResult, config: ValidateConfig) -> bool:
    """Whether the report needs the COMPLETE result where ``evr`` is the SUMMARY one.

    Only a quarantine rule that failed or found offending rows does: the gate holds back every row
    it names, and only COMPLETE lists every offending row's position (a quarantine rule that
    passes with offending rows has a ``mostly``: on Dask its partitions' positions may still add up
    to a failure). Every other result reads the same either way in what the report shows, the
    counts and the first 20 offending rows (SUMMARY's examples and counted values).
    """
    result = evr.result or {}
    if evr.success and not result.get("unexpected_count"):
        return False
    return rule_severity(evr, config) == "quarantine"


def copy_suite(suite: gx.ExpectationSuite, which: Sequence[int]) -> gx.ExpectationSuite:
    """A suite of copies of some of ``suite``'s expectations, keeping their ids.

    A suite refuses another suite's expectations (any with an id): copies lose the id, and get it
    back once they are in the new suite. Shallow copies (their kwargs and meta are shared, and
    never changed): GE's ``copy.copy`` deep-copies the expectation's suite with it, about 10 ms
    per expectation of this suite.
    """
    copied = gx.ExpectationSuite(
        name=suite.name, expectations=[suite.expectations[i].copy(update={"id": None}) for i in which]
    )
    for expectation, i in zip(copied.expectations, which, strict=True):
        expectation.id = suite.expectations[i].id
    return copied


# The rules whose verdict and reported values are the same whatever the dtype holding a text
# column's values (isnull, isin, duplicated and the column list read values, not the dtype).
_DTYPE_BLIND_RULES = (
    ExpectColumnToExist,
    ExpectColumnValuesToNotBeNull,
    ExpectColumnValuesToBeInSet,
    ExpectColumnValuesToBeUnique,
)


def _rule_columns(expectation: Expectation) -> list[str]:
    names = [getattr(expectation, key, None) for key in ("column", "column_A", "column_B")]
    names += list(getattr(expectation, "column_list", None) or [])
    return [str(name) for name in names if name is not None]


def ge_frame(df: pd.DataFrame, suite: gx.ExpectationSuite) -> pd.DataFrame:
    """The frame GE validates: ``df`` with its text columns dictionary-encoded where no rule can tell.

    GE's pandas engine filters the *whole* frame once per column metric (``df[df[c].notnull()]``:
    about 60 times per run of this suite), and hashes the whole frame when it loads the batch.
    Taking rows of an Arrow string column copies its characters; taking rows of a categorical
    takes its integer codes. On the synthetic portfolio this cuts GE's time by about a third. Only
    text columns (pandas' string dtype) that no rule but those in ``_DTYPE_BLIND_RULES`` reads are
    encoded: a type check or a range on a text column sees the column as it came. Rows, their
    order and the index are unchanged, so positions GE reports are positions in ``df``.
    """
    dtype_read = {
        name
        for expectation in suite.expectations
        if not isinstance(expectation, _DTYPE_BLIND_RULES)
        for name in _rule_columns(expectation)
    }
    encode = [
        name
        for name in df.columns
        if str(name) not in dtype_read
        and pd.api.types.is_string_dtype(df[name].dtype)
        and not pd.api.types.is_object_dtype(df[name].dtype)
    ]
    if not encode:
        return df
    view = df.copy(deep=False)
    for name in encode:
        view[name] = df[name].astype("category")
    return view


def frame_validator(definition: BatchDefinition[Any], df: pd.DataFrame) -> Validator:
    """A validator of ``df`` through ``definition`` (see :func:`frame_batch_definition`).

    One validator for both passes of :func:`run_suite`: GE loads the batch once per validator, and
    loading fingerprints the whole frame (``hash_pandas_object``, about a second per million rows).
    """
    return Validator(
        batch_definition=definition, batch_parameters={"dataframe": df}, result_format=SUMMARY_FORMAT
    )


def run_suite(
    validator: Validator, suite: gx.ExpectationSuite, config: ValidateConfig
) -> ExpectationSuiteValidationResult:
    """Validate in two passes; the results, in suite order.

    The whole suite runs with SUMMARY (COMPLETE costs about twice as much on a million rows: it
    collects every offending row of every expectation); then the results that
    :func:`needs_complete` names (the quarantine rules with offending rows) run again with
    COMPLETE, and replace the first ones: theirs are those of one COMPLETE run.
    """
    validator.result_format = SUMMARY_FORMAT
    first = validator.validate_expectation_suite(suite)
    results = _in_suite_order(suite, first.results)
    again = [i for i, r in enumerate(results) if needs_complete(r, config)]
    if again:
        subset = copy_suite(suite, again)
        validator.result_format = COMPLETE_FORMAT
        second = _in_suite_order(subset, validator.validate_expectation_suite(subset).results)
        for i, result in zip(again, second, strict=True):
            results[i] = result
    return suite_result(first, results)


def suite_result(
    template: ExpectationSuiteValidationResult, results: Sequence[ExpectationValidationResult]
) -> ExpectationSuiteValidationResult:
    """A suite result of ``results``, with their statistics, and ``template``'s name, meta and batch."""
    statistics = calc_validation_statistics(list(results))
    return ExpectationSuiteValidationResult(
        success=statistics.success,
        results=list(results),
        suite_name=template.suite_name,
        statistics={
            "evaluated_expectations": statistics.evaluated_expectations,
            "successful_expectations": statistics.successful_expectations,
            "unsuccessful_expectations": statistics.unsuccessful_expectations,
            "success_percent": statistics.success_percent,
        },
        meta=dict(template.meta),
        batch_id=template.batch_id,
    )


def report_from_results(
    results: Sequence[ExpectationValidationResult], n_rows: int, ids: IdLookup, config: ValidateConfig
) -> ValidationReport:
    """The report of a suite's results (in suite order) on ``n_rows`` rows."""
    outcomes = tuple(_outcome(r, ids, config) for r in results)
    return ValidationReport(
        success=not any(o.severity == "critical" for o in outcomes if not o.success),
        n_rows=n_rows,
        outcomes=outcomes,
    )


GE_STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
"""How GE writes a time into a path or an address."""
GE_CACHE_BUSTER = re.compile(r"(\?d=)\d{8}T\d{6}\.\d+Z")
"""The render time GE appends to its images' addresses (``logo-long.png?d=...``)."""
GE_RANDOM_ID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\b")
"""A random (version 4) uuid, which GE's renderer uses for element ids; the suite's own
expectation ids are numbered (version 0) and never match."""


def write_data_docs(
    context: EphemeralDataContext,
    suite: gx.ExpectationSuite,
    result: ExpectationSuiteValidationResult,
    docs_dir: Path,
    as_of: dt.date,
) -> None:
    """Store ``result`` in ``context`` and build its Data Docs site (the one under ``docs_dir``).

    What a checkpoint with an ``UpdateDataDocsAction`` does, but for a result put together here (two
    passes merged, or partitions merged), which no checkpoint run produces.

    The site is a DVC output, so the same data and params must give the same bytes: the run is
    named and stamped after the extract it validates (run name ``extract-<as_of>``, run time
    ``as_of`` at midnight UTC), not the wall clock, and so are GE's batch load time and the
    cache-busting stamps GE puts on its logo's address. When the stage ran is in its log.
    """
    stamp = dt.datetime.combine(as_of, dt.time(), tzinfo=dt.UTC)
    run_id = RunIdentifier(run_name=f"extract-{as_of.isoformat()}", run_time=stamp)
    meta = cast(dict[str, Any], result.meta)  # as ValidationDefinition.run fills it (a datetime, not str)
    meta.update(
        run_id=run_id,
        validation_time=run_id.run_time,
        batch_parameters={"dataframe": DATAFRAME_REPLACEMENT_STR},
    )
    markers = meta.get("batch_markers")
    if isinstance(markers, dict) and "ge_load_time" in markers:
        markers["ge_load_time"] = stamp.strftime(GE_STAMP_FORMAT)
    suite_id = ExpectationSuiteIdentifier(name=suite.name)
    context.suites.add(copy_suite(suite, range(len(suite.expectations))))
    key = ValidationResultIdentifier(
        expectation_suite_identifier=suite_id, run_id=run_id, batch_identifier=result.batch_id
    )
    context.validation_results_store.store_validation_results(
        suite_validation_result=result,
        suite_validation_result_identifier=key,
        expectation_suite_identifier=suite_id,
    )
    identifiers: list[Any] = [key, suite_id]  # as UpdateDataDocsAction passes them
    context.build_data_docs(site_names=[DOCS_SITE_NAME], resource_identifiers=identifiers)
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        pinned = GE_CACHE_BUSTER.sub(lambda m: m.group(1) + stamp.strftime(GE_STAMP_FORMAT), text)
        pinned = _numbered_ids(pinned)
        if pinned != text:
            write_text(page, pinned)


def _numbered_ids(html: str) -> str:
    """The element ids GE draws at random (uuid4) for its collapsible blocks, numbered in order of
    appearance instead: the same on every build, each id still paired with its links."""
    numbered: dict[str, str] = {}

    def number(match: re.Match[str]) -> str:
        return numbered.setdefault(match.group(0), str(uuid.UUID(int=len(numbered) + 1, version=4)))

    return GE_RANDOM_ID.sub(number, html)


def log_report(report: ValidationReport, n_columns: int, seconds: float, docs_path: Path | None) -> None:
    logger.info(
        "validated %d rows x %d columns against %d expectations in %.2f s: %s",
        report.n_rows,
        n_columns,
        len(report.outcomes),
        seconds,
        "passed" if report.success else f"{len(report.failures())} failed",
    )
    for failure in report.failures():
        logger.warning("validation failure: %s", failure.describe())
    if docs_path is not None:
        logger.info("data docs written to %s", docs_path / "index.html")


def validate_frame(
    df: pd.DataFrame, spec: DatasetSpec, config: ValidateConfig, docs_dir: Path | None = None
) -> ValidationReport:
    """Run the gate on ``df``; with ``docs_dir``, also build the Data Docs site there (index.html).

    Nothing is written anywhere else. Failures are reported, not raised: see :func:`raise_for_failures`.
    """
    started = time.perf_counter()
    df = add_check_columns(df, spec, config)
    columns = [str(c) for c in df.columns]
    suite = numbered_suite(columns, spec, config)
    docs_path = None if docs_dir is None else Path(docs_dir).resolve()
    if docs_path is not None:
        docs_path.mkdir(parents=True, exist_ok=True)
    # Positions, not ids: GE 1.24 builds unexpected_index_column_names rows one `.at` lookup at a time
    # for *every* offending row before truncating (seconds per badly failing column at 100k rows), and
    # fails every column expectation when the frame has a named index. With a default RangeIndex it
    # reports positions cheaply; ids are looked up for the few positions it returns.
    if not _has_default_index(df):
        df = df.reset_index(drop=True)
    ids = df[spec.id_column] if spec.id_column in columns else None
    context = ephemeral_context(docs_path)
    result = run_suite(frame_validator(frame_batch_definition(context), ge_frame(df, suite)), suite, config)
    report = report_from_results(result.results, len(df), ids, config)
    if docs_path is not None:
        write_data_docs(context, suite, result, docs_path, as_of_date(config))
    log_report(report, len(columns), time.perf_counter() - started, docs_path)
    return report


# --------------------------------------------------------------------------- gate

QUARANTINE_REASONS = "quarantine_reasons"


@dataclass
class GateResult:
    """The rows that go on, the rows held back with their reasons, and the reconciliation."""

    passed: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]


@dataclass(frozen=True)
class QuarantinePlan:
    """Which rows the gate holds back and why, read from a report's positions."""

    held: npt.NDArray[np.int64]  # sorted positions of the rows held back
    reasons: list[str]  # for each held row, its failed rules joined by ';' (in suite order)
    by_reason: dict[str, int]  # rows per quarantine rule
    warnings: dict[str, int]  # offending rows per failed warn rule

    def summary(self, n_input: int) -> dict[str, Any]:
        """The gate's reconciliation of ``n_input`` rows."""
        return {
            "n_input": n_input,
            "n_passed": n_input - len(self.held),
            "n_quarantined": len(self.held),
            "quarantine_by_reason": dict(sorted(self.by_reason.items())),
            "warnings": dict(sorted(self.warnings.items())),
        }


def quarantine_plan(report: ValidationReport, n_rows: int, config: ValidateConfig) -> QuarantinePlan:
    """The rows to hold back from ``n_rows``; raises as :func:`apply_gate` does (critical, share)."""
    raise_for_failures(report)
    reasons: dict[int, list[str]] = {}
    by_reason: dict[str, int] = {}
    for outcome in report.failures():
        if outcome.severity != "quarantine":
            continue
        by_reason[outcome.rule] = len(outcome.positions)
        for position in outcome.positions:
            reasons.setdefault(position, []).append(outcome.rule)
    held = np.array(sorted(reasons), dtype=np.int64)
    share = len(held) / n_rows if n_rows else 0.0
    if share > config.max_quarantine_share:
        top = sorted(by_reason.items(), key=lambda kv: -kv[1])[:5]
        outcome = ExpectationOutcome(
            expectation="quarantine_share",
            column=None,
            success=False,
            observed=f"{len(held)} of {n_rows} rows ({share:.1%}); most frequent reasons: "
            + ", ".join(f"{rule} ({count})" for rule, count in top),
            unexpected_examples=[],
            expected=f"at most {config.max_quarantine_share:.0%} of rows quarantined",
            rule="quarantine_share_exceeded",
            kind="quarantine_share_exceeded",
        )
        raise DataValidationError(report, [outcome])
    warnings = {o.rule: o.unexpected_count for o in report.failures() if o.severity == "warn"}
    return QuarantinePlan(
        held=held,
        reasons=[";".join(reasons[int(p)]) for p in held],
        by_reason=by_reason,
        warnings=warnings,
    )


def apply_gate(df: pd.DataFrame, report: ValidationReport, config: ValidateConfig) -> GateResult:
    """Stop on critical failures; move rows failing quarantine rules aside, one reason per rule.

    Raises :class:`DataValidationError` on any critical failure, and when the quarantine would
    hold more than ``config.max_quarantine_share`` of the rows (a file that is mostly bad is
    broken, not noisy). Every input row ends up in ``passed`` or ``quarantine``, never both.
    """
    frame = df.reset_index(drop=True)
    plan = quarantine_plan(report, len(frame), config)
    mask = np.zeros(len(frame), dtype=bool)
    mask[plan.held] = True
    quarantine = frame.loc[mask].copy()
    quarantine[QUARANTINE_REASONS] = plan.reasons
    passed = frame.loc[~mask].reset_index(drop=True)
    summary = plan.summary(len(frame))
    if len(passed) + len(quarantine) != len(frame) or len(passed) != summary["n_passed"]:
        raise AssertionError(f"validation lost rows: {summary}")
    logger.info("gate: %d passed, %d quarantined of %d rows", len(passed), len(quarantine), len(frame))
    return GateResult(passed=passed, quarantine=quarantine.reset_index(drop=True), summary=summary)


def results_redirect(docs_dir: Path, page_dir: Path) -> str:
    """A small HTML page that opens the latest validation result of the Data Docs in ``docs_dir``.

    The Data Docs index lists its results with scripts loaded from the internet, so offline it
    shows an empty table; the result pages themselves are plain HTML and open anywhere.
    """
    pages = sorted((docs_dir / "validations").rglob("*.html"), key=lambda p: p.stat().st_mtime)
    if not pages:
        return "<!doctype html><p>No validation results yet.</p>\n"
    href = Path(os.path.relpath(pages[-1].resolve(), page_dir.resolve())).as_posix()
    return (
        "<!doctype html><meta charset='utf-8'><title>Validation results</title>"
        f"<meta http-equiv='refresh' content='0; url={href}'>"
        f"<p>The latest validation result: <a href='{href}'>{href}</a></p>\n"
    )
