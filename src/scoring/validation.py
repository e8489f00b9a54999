"""The first validation gate: a great-expectations suite run on the raw application frame.

:func:`build_suite` turns the data contract (:data:`~scoring.contract.AUTO_LOAN_COLUMNS`), the
dataset's column roles (:class:`~scoring.contract.DatasetSpec`) and the ``validate`` section of
params.yaml (:class:`~scoring.config.ValidateConfig`) into a great-expectations 1.x
``ExpectationSuite``. :func:`validate_frame` runs it on a DataFrame through an in-memory
(ephemeral) context and a ``Checkpoint``, optionally building the Data Docs HTML site into a
directory, and condenses GE's result into a :class:`ValidationReport`.
:func:`raise_for_failures` stops the pipeline on any failure; every expectation is critical for now.

Only columns that exist get column expectations: a missing required column fails its
``expect_column_to_exist`` and nothing else, so the report says exactly what is wrong.

great-expectations 1.24 quirks handled here:

* results come back in a different order than the suite's; outcomes are put back in suite order
  through the expectation ids the context assigns;
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
  and progress bars off.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.checkpoint.actions import UpdateDataDocsAction, ValidationAction
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.data_context.ephemeral_data_context import EphemeralDataContext
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)

# from the defining modules: mypy --strict refuses great_expectations.expectations' implicit re-exports
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

from scoring.config import RangeRule, ValidateConfig
from scoring.contract import AUTO_LOAN_COLUMNS, ColumnSpec, DatasetSpec

logger = logging.getLogger(__name__)

# GE logs chatty INFO lines (fluent config loading, docs registration); keep them out of the
# pipeline's log unless someone has set a level for GE's logger explicitly.
_GX_LOGGER = logging.getLogger("great_expectations")
if _GX_LOGGER.level == logging.NOTSET:
    _GX_LOGGER.setLevel(logging.WARNING)

SUITE_NAME = "scoring_validate"
"""Name of the suite, its validation definition and checkpoint; the Data Docs pages carry it."""

DOCS_SITE_NAME = "scoring_validate_site"

STRICTLY_POSITIVE_COLUMNS: frozenset[str] = frozenset({"monthly_income", "vehicle_price", "loan_amount"})
"""Contract columns whose lower bound (0) is exclusive."""

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

    def describe(self) -> str:
        where = f"on column '{self.column}'" if self.column is not None else "on the table"
        text = f"{self.expectation} {where}: expected {self.expected}, observed {self.observed}"
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
            "outcomes": [asdict(o) for o in self.outcomes],
        }


class DataValidationError(ValueError):
    """The frame failed the validation gate; the message lists every failed expectation."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        failures = report.failures()
        lines = [f"  - {o.describe()}" for o in failures]
        super().__init__(
            f"data validation failed: {len(failures)} of {len(report.outcomes)} expectations "
            f"on {report.n_rows} rows:\n" + "\n".join(lines)
        )


def raise_for_failures(report: ValidationReport) -> None:
    """Raise :class:`DataValidationError` when any expectation failed."""
    if report.failures():
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


class _ColumnExpectations:
    """Expectations grouped by column, at most one of each type per column (the first one wins)."""

    def __init__(self) -> None:
        self.by_column: dict[str, dict[str, Expectation]] = {}

    def add(self, column: str, expectation: Expectation) -> None:
        self.by_column.setdefault(column, {}).setdefault(expectation.expectation_type, expectation)


def _not_null(column: str) -> ExpectColumnValuesToNotBeNull:
    return ExpectColumnValuesToNotBeNull(column=column, meta={_EXPECTED: "no null values"})


def _type(column: str, kind: str) -> ExpectColumnValuesToBeInTypeList:
    type_list, text = _TYPE_LISTS[kind]
    return ExpectColumnValuesToBeInTypeList(column=column, type_list=list(type_list), meta={_EXPECTED: text})


def _between(
    column: str, low: float | None, high: float | None, strict_min: bool
) -> ExpectColumnValuesToBeBetween:
    return ExpectColumnValuesToBeBetween(
        column=column,
        min_value=low,
        max_value=high,
        strict_min=strict_min,
        meta={_EXPECTED: _range_text(low, high, strict_min)},
    )


def _in_set(column: str, values: Sequence[Any]) -> ExpectColumnValuesToBeInSet:
    text = "values in {" + ", ".join(str(v) for v in values) + "}"
    return ExpectColumnValuesToBeInSet(column=column, value_set=list(values), meta={_EXPECTED: text})


def _contract_expectations(
    spec: ColumnSpec, dataset: DatasetSpec, config: ValidateConfig
) -> list[Expectation]:
    out: list[Expectation] = []
    if spec.kind in _TYPE_LISTS:
        out.append(_type(spec.name, spec.kind))
    if not spec.nullable:
        out.append(_not_null(spec.name))
    if spec.levels is not None:
        out.append(_in_set(spec.name, spec.levels))
    # the target is checked against {0, 1}; config.ranges replaces the contract's bounds
    bounded = spec.min is not None or spec.max is not None
    if bounded and spec.name != dataset.target_column and spec.name not in config.ranges:
        out.append(_between(spec.name, spec.min, spec.max, spec.name in STRICTLY_POSITIVE_COLUMNS))
    return out


def _config_range(column: str, rule: RangeRule) -> list[Expectation]:
    if rule.min is None and rule.max is None:
        return []
    return [_between(column, rule.min, rule.max, strict_min=False)]


def build_suite(columns: Sequence[str], spec: DatasetSpec, config: ValidateConfig) -> gx.ExpectationSuite:
    """The gate's expectations for a frame with these columns (all critical).

    Existence is expected of every required column; every other expectation is only written for
    columns in ``columns``, so a missing column fails once, by name, and breaks nothing else.
    """
    present = list(dict.fromkeys(str(c) for c in columns))
    present_set = set(present)
    table: list[Expectation] = [
        ExpectColumnToExist(column=name, meta={_EXPECTED: "the column to be present"})
        for name in required_columns(spec)
    ]
    table.append(
        ExpectTableRowCountToBeBetween(
            min_value=config.min_rows, max_value=None, meta={_EXPECTED: f"at least {config.min_rows} rows"}
        )
    )

    grouped = _ColumnExpectations()
    if spec.id_column in present_set:
        grouped.add(spec.id_column, _not_null(spec.id_column))
        grouped.add(
            spec.id_column,
            ExpectColumnValuesToBeUnique(column=spec.id_column, meta={_EXPECTED: "unique values"}),
        )
    if spec.target_column in present_set:
        grouped.add(spec.target_column, _type(spec.target_column, "float"))
        grouped.add(spec.target_column, _in_set(spec.target_column, [0, 1]))
    if spec.date_column is not None and spec.date_column in present_set:
        grouped.add(spec.date_column, _not_null(spec.date_column))
    if spec.follows_auto_loan_contract:
        for column_spec in AUTO_LOAN_COLUMNS:
            if column_spec.name in present_set:
                for expectation in _contract_expectations(column_spec, spec, config):
                    grouped.add(column_spec.name, expectation)
    for column, rule in config.ranges.items():
        if column in present_set:
            for expectation in _config_range(column, rule):
                grouped.add(column, expectation)

    ordered = table + [e for c in present for e in grouped.by_column.get(c, {}).values()]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=ordered)


# --------------------------------------------------------------------------- run


def _ephemeral_context(docs_dir: Path | None) -> EphemeralDataContext:
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


def _examples(result: Mapping[str, Any], ids: pd.Series | None) -> list[str]:
    """Up to MAX_EXAMPLES distinct ids of the offending rows GE reports, else offending values.

    GE reports the positions of the first offending rows (the frame it sees has a default
    RangeIndex); their ids are looked up here. A row whose id is itself null is named by position.
    """
    positions = result.get("partial_unexpected_index_list") or []
    if ids is not None and positions and all(isinstance(p, int) for p in positions):
        values = ids.iloc[list(positions)].tolist()
        texts = (
            f"<null id at row {p}>" if _is_null(v) else _example_text(v)
            for p, v in zip(positions, values, strict=True)
        )
        return _distinct(texts, MAX_EXAMPLES)
    return _distinct(result.get("partial_unexpected_list") or [], MAX_EXAMPLES)


def _error_message(info: Mapping[str, Any] | None) -> str | None:
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
    error = _error_message(evr.exception_info)
    if error is not None:
        return f"error: {error}"
    result: Mapping[str, Any] = evr.result or {}
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


def _outcome(evr: ExpectationValidationResult, ids: pd.Series | None) -> ExpectationOutcome:
    config = evr.expectation_config
    assert config is not None  # always set on results of a suite run
    column = config.kwargs.get("column")
    return ExpectationOutcome(
        expectation=config.type,
        column=None if column is None else str(column),
        success=bool(evr.success),
        observed=_observed(evr, config.type),
        unexpected_examples=_examples(evr.result or {}, ids),
        expected=str((config.meta or {}).get(_EXPECTED, config.type)),
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


def validate_frame(
    df: pd.DataFrame, spec: DatasetSpec, config: ValidateConfig, docs_dir: Path | None = None
) -> ValidationReport:
    """Run the gate on ``df``; with ``docs_dir``, also build the Data Docs site there (index.html).

    Nothing is written anywhere else. Failures are reported, not raised: see :func:`raise_for_failures`.
    """
    started = time.perf_counter()
    columns = [str(c) for c in df.columns]
    suite_template = build_suite(columns, spec, config)
    docs_path = None if docs_dir is None else Path(docs_dir).resolve()
    if docs_path is not None:
        docs_path.mkdir(parents=True, exist_ok=True)

    context = _ephemeral_context(docs_path)
    suite = context.suites.add(suite_template)
    batch_definition = (
        context.data_sources.add_pandas(name="frame")
        .add_dataframe_asset(name="frame")
        .add_batch_definition_whole_dataframe(name="frame")
    )
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=SUITE_NAME, data=batch_definition, suite=suite)
    )
    # Positions, not ids: GE 1.24 builds unexpected_index_column_names rows one `.at` lookup at a time
    # for *every* offending row before truncating (seconds per badly failing column at 100k rows), and
    # fails every column expectation when the frame has a named index. With a default RangeIndex it
    # reports positions cheaply; ids are looked up for the few positions it returns.
    if not _has_default_index(df):
        df = df.reset_index(drop=True)
    ids = df[spec.id_column] if spec.id_column in columns else None
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": _PARTIAL_UNEXPECTED_COUNT,
    }
    actions: list[ValidationAction] = []
    if docs_path is not None:
        actions.append(UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE_NAME]))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=SUITE_NAME, validation_definitions=[definition], actions=actions, result_format=result_format
        )
    )
    checkpoint_result = checkpoint.run(batch_parameters={"dataframe": df})

    (suite_result,) = checkpoint_result.run_results.values()
    position = {e.id: i for i, e in enumerate(suite.expectations)}
    results = sorted(
        suite_result.results,
        key=lambda r: position.get(r.expectation_config.id if r.expectation_config else None, len(position)),
    )
    outcomes = tuple(_outcome(r, ids) for r in results)
    report = ValidationReport(success=all(o.success for o in outcomes), n_rows=len(df), outcomes=outcomes)
    elapsed = time.perf_counter() - started
    logger.info(
        "validated %d rows x %d columns against %d expectations in %.2f s: %s",
        len(df),
        len(columns),
        len(outcomes),
        elapsed,
        "passed" if report.success else f"{len(report.failures())} failed",
    )
    for failure in report.failures():
        logger.warning("validation failure: %s", failure.describe())
    if docs_path is not None:
        logger.info("data docs written to %s", docs_path / "index.html")
    return report
