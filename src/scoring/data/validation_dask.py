"""The validation gate on a Dask DataFrame, with the report the pandas gate gives on the same rows.

great-expectations has no Dask engine. :func:`validate_dask` runs the suite of
:func:`~scoring.data.validation.validate_frame` on every partition in parallel, each partition a
pandas frame validated by the same two-pass :func:`~scoring.data.validation.run_suite`, on whatever
scheduler is active (the workers of the current distributed client when there is one), and puts
the partitions' results back together as GE reports them on the whole frame:

* row-level rules (nulls, ranges, level sets, the rules across columns, the per-value type check
  of an object column): rows, nulls and offending rows are counted over all partitions, the
  offending rows' positions shifted by their partition's offset and their values kept up to GE's
  200; the expectation's own GE ``_validate`` then decides success on the global counts (a
  ``mostly`` rule on the global share, with GE's arithmetic) and builds the result;
* rules across rows, computed globally: the row count (a sum), unique ids (every row whose id
  another row holds offends, as in GE: the partitions send hashes of their ids, and only the rows
  whose hash repeats come back to be compared exactly), both target classes present (distinct
  values, a union over partitions) and the default rate (the target's sum over its count). A
  partition's own result of these is only read for an error;
* rules on the schema (a column exists, a column's dtype): the same on every partition.

A rule that raised on a partition reports that partition's error, the error GE raises on the whole
frame. Every merged result then becomes an outcome through the pandas path's own code
(:func:`~scoring.data.validation.report_from_results`), so the report equals
``validate_frame(frame.compute(), ...)``: same outcomes in the same order, positions global. The
default rate is a sum over partitions, so its observed value may differ from pandas' in the last
bits (the tests allow 1e-12). Where a partition cannot stand for the whole, the first partition
that fails speaks for it: a column whose dtype differs between partitions (``frame.compute()``
would then hold another dtype still) and a mean GE can take but this module cannot sum (dates).
With ``docs_dir``, the Data Docs site is built from the merged result, as the pandas path builds
its own.

:func:`apply_gate_dask` is :func:`~scoring.data.validation.apply_gate` per partition: the same
stops, the same quarantine share rule and summary, the passed and quarantined rows as Dask
DataFrames (lazy; compute them together, or persist the frame first, to read it once).
"""

from __future__ import annotations

import itertools
import logging
import operator
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from great_expectations.constants import MAX_DISTINCT_VALUES, MAX_RESULT_RECORDS
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.expectations.core.expect_column_distinct_values_to_contain_set import (
    ExpectColumnDistinctValuesToContainSet,
)
from great_expectations.expectations.core.expect_column_mean_to_be_between import ExpectColumnMeanToBeBetween
from great_expectations.expectations.core.expect_column_values_to_be_in_type_list import (
    ExpectColumnValuesToBeInTypeList,
)
from great_expectations.expectations.core.expect_column_values_to_be_unique import (
    ExpectColumnValuesToBeUnique,
)
from great_expectations.expectations.core.expect_table_row_count_to_be_between import (
    ExpectTableRowCountToBeBetween,
)
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
)
from great_expectations.expectations.metrics.column_aggregate_metrics.column_distinct_values import (
    _coerce_value_set_to_column_type,
)

from scoring.core.contract import DatasetSpec
from scoring.data.config import ValidateConfig
from scoring.data.validation import (
    COMPLETE_FORMAT,
    QUARANTINE_REASONS,
    SUMMARY_FORMAT,
    ValidationReport,
    add_check_columns,
    as_of_date,
    copy_suite,
    ephemeral_context,
    error_message,
    frame_batch_definition,
    frame_validator,
    ge_frame,
    log_report,
    needs_complete,
    numbered_suite,
    quarantine_plan,
    report_from_results,
    run_suite,
    suite_result,
    write_data_docs,
)

if TYPE_CHECKING:
    import dask.dataframe as dd

logger = logging.getLogger(__name__)

# Rules across rows computed from all partitions here: GE never sees them per partition.
_GLOBAL = (ExpectTableRowCountToBeBetween, ExpectColumnValuesToBeUnique)
# Rules across rows computed here from per-partition statistics; GE still runs them per partition,
# cheaply, so that a rule GE cannot evaluate (a mean of text) reports GE's own error.
_AGGREGATE = (ExpectColumnDistinctValuesToContainSet, ExpectColumnMeanToBeBetween)


_Result = tuple[bool, dict[str, Any], dict[str, Any] | None]
"""An expectation's result on one partition: success, GE's result dict, GE's exception info."""


@dataclass
class _ColumnStats:
    """What the rules across rows need of one column of one partition."""

    distinct: set[Any]  # as GE's pandas metric takes them: set(column.dropna().unique())
    total: Any  # the sum of the non-null values of a numeric or boolean column, else None
    count: int  # non-null values


@dataclass
class _Part:
    """One partition's share of the validation (picklable: it travels from a worker)."""

    n_rows: int
    # per expectation validated on the partition (in suite order): success, result, exception info
    results: list[_Result]
    ids: dict[int, Any]  # local position -> id, for the first offending rows of each result
    stats: dict[str, _ColumnStats]
    id_nulls: int
    id_hashes: npt.NDArray[np.uint64] | None  # of the non-null ids (see _id_hashes)
    meta: dict[str, Any]
    batch_id: str | None


@dataclass
class _Candidates:
    """The rows of one partition that may hold an id another row holds: positions and ids."""

    positions: list[int]  # local, in row order
    values: list[Any]


def _partition_indexes(suite: Any) -> list[int]:
    """Positions in the suite of the expectations GE runs on each partition."""
    return [i for i, e in enumerate(suite.expectations) if not isinstance(e, _GLOBAL)]


def _aggregate_columns(suite: Any) -> list[str]:
    return sorted({str(e.column) for e in suite.expectations if isinstance(e, _AGGREGATE)})


def _column_stats(column: pd.Series) -> _ColumnStats:
    values = column.dropna()
    summable = pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    return _ColumnStats(
        distinct=set(values.unique()),
        total=values.sum() if summable else None,
        count=len(values),
    )


def _validate_partition(
    part: pd.DataFrame, columns: Sequence[str], spec: DatasetSpec, config: ValidateConfig
) -> _Part:
    """Run on a worker: the suite on one partition, with what the global rules need of it."""
    df = add_check_columns(part.reset_index(drop=True), spec, config)
    if [str(c) for c in df.columns] != list(columns):
        raise ValueError(
            f"a partition has columns {[str(c) for c in df.columns]}; expected those of the frame's "
            f"meta, {list(columns)}"
        )
    suite = numbered_suite(columns, spec, config)
    local = copy_suite(suite, _partition_indexes(suite))
    validator = frame_validator(frame_batch_definition(ephemeral_context(None)), ge_frame(df, local))
    result = run_suite(validator, local, config)
    results: list[_Result] = [
        (bool(r.success), dict(r.result or {}), r.exception_info) for r in result.results
    ]
    ids: dict[int, Any] = {}
    if spec.id_column in df.columns:
        id_values = df[spec.id_column]
        for _, outcome, _ in results:
            for p in outcome.get("partial_unexpected_index_list") or []:
                if isinstance(p, int) and p not in ids:
                    ids[p] = id_values.iloc[p]
    meta = dict(result.meta)
    markers = dict(meta.get("batch_markers") or {})
    markers.pop("pandas_data_fingerprint", None)  # of one partition: it would misname the whole
    meta["batch_markers"] = markers
    return _Part(
        n_rows=len(df),
        results=results,
        ids=ids,
        stats={c: _column_stats(df[c]) for c in _aggregate_columns(suite)},
        id_nulls=int(df[spec.id_column].isna().sum()) if spec.id_column in df.columns else 0,
        id_hashes=_id_hashes(df[spec.id_column]) if spec.id_column in df.columns else None,
        meta=meta,
        batch_id=result.batch_id,
    )


def _id_hashes(ids: pd.Series) -> npt.NDArray[np.uint64] | None:
    """Hashes of the non-null ids, equal wherever the ids are; None where pandas cannot promise it.

    Text and integer ids qualify. An object column hashes ``str(value)`` of its distinct values
    (7 and 7.0, one id to GE, hash apart when they sit in different partitions) and floats hash
    their bits (0.0 and -0.0): such ids are all compared on the client instead.
    """
    dtype = ids.dtype
    text = pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype)
    if not (text or pd.api.types.is_integer_dtype(dtype)):
        return None
    return np.asarray(pd.util.hash_pandas_object(ids.dropna(), index=False), dtype=np.uint64)


def _rows_holding(part: pd.DataFrame, id_column: str, hashes: npt.NDArray[np.uint64] | None) -> _Candidates:
    """Run on a worker: the rows whose non-null id has one of these hashes (all of them: None)."""
    values = part[id_column].reset_index(drop=True)
    values = values[values.notna()]
    if hashes is not None:
        values = values[np.isin(pd.util.hash_pandas_object(values, index=False).to_numpy(), hashes)]
    return _Candidates(positions=[int(p) for p in values.index], values=list(values))


def _delayed(function: Any, **options: Any) -> Any:
    """``dask.delayed`` (untyped: called through Any)."""
    from dask.delayed import delayed

    wrap: Any = delayed
    return wrap(function, **options)


def _compute(*collections: Any) -> tuple[Any, ...]:
    """``dask.compute`` on the active scheduler (untyped: called through Any)."""
    from dask import base

    compute: Any = base.compute
    return tuple(compute(*collections))


def _partitions(frame: Any) -> list[Any]:
    """The frame's partitions as delayed objects."""
    return list(frame.to_delayed())


# --------------------------------------------------------------------------- merging


def _evaluate(
    expectation: Expectation, metrics: dict[str, Any], config: ValidateConfig
) -> ExpectationValidationResult:
    """GE's own verdict and result on metrics computed here, in the format the pandas path keeps.

    As :func:`~scoring.data.validation.run_suite` does, a result is built with SUMMARY and, where
    :func:`~scoring.data.validation.needs_complete` says so, again with COMPLETE.
    """

    def validate(runtime_configuration: dict[str, Any]) -> Any:
        if isinstance(expectation, ExpectColumnValuesToBeInTypeList):
            # GE's map version: its own _validate only takes it on a pandas engine (object columns)
            return ColumnMapExpectation._validate(
                expectation, metrics=metrics, runtime_configuration=runtime_configuration
            )
        return expectation._validate(metrics=metrics, runtime_configuration=runtime_configuration)

    def run(result_format: dict[str, Any]) -> ExpectationValidationResult:
        raw = validate({"result_format": dict(result_format)})
        return expectation._build_evr(raw_response=raw)

    evr = run(SUMMARY_FORMAT)
    return run(COMPLETE_FORMAT) if needs_complete(evr, config) else evr


def _as_evr(expectation: Expectation, part: _Result) -> ExpectationValidationResult:
    success, result, exception_info = part
    return ExpectationValidationResult(
        success=success,
        result=result,
        exception_info=exception_info,
        expectation_config=expectation.configuration,
    )


def _first_error(expectation: Expectation, parts: Sequence[_Result]) -> ExpectationValidationResult | None:
    for part in parts:
        if error_message(part[2]) is not None:
            return _as_evr(expectation, part)
    return None


def _is_map_result(result: Mapping[str, Any]) -> bool:
    return "unexpected_count" in result and "element_count" in result


def _map_metrics(
    expectation: Expectation,
    n_rows: int,
    n_null: int | None,
    unexpected_count: int,
    values: list[Any],
    positions: list[int],
) -> dict[str, Any]:
    """The metrics GE's ``_validate`` of a map expectation reads, for the whole frame."""
    name = getattr(expectation, "map_metric", None)
    metrics: dict[str, Any] = {
        "table.row_count": n_rows,
        f"{name}.unexpected_count": unexpected_count,
        f"{name}.unexpected_values": values[:MAX_RESULT_RECORDS],
        f"{name}.unexpected_index_list": positions,
    }
    if isinstance(expectation, ColumnPairMapExpectation):
        metrics[f"{name}.filtered_row_count"] = n_rows - (n_null or 0)
    elif n_null is not None:
        metrics["column_values.nonnull.unexpected_count"] = n_null
    return metrics


def _merge_rows(
    expectation: Expectation,
    parts: Sequence[_Result],
    offsets: Sequence[int],
    config: ValidateConfig,
) -> ExpectationValidationResult:
    """A row-level rule: counts summed, positions shifted, GE's verdict on the totals.

    A partition's COMPLETE result (a quarantine rule with offending rows) gives every offending
    position and the first 200 values; a SUMMARY one its first 20 of each, and, the partitions
    being in row order, their concatenation starts with the whole frame's first 20: all that the
    SUMMARY result of the merged rule shows.
    """
    results = [p[1] for p in parts]
    missing = [r.get("missing_count") for r in results]
    values: list[Any] = []
    positions: list[int] = []
    for result, offset in zip(results, offsets, strict=True):
        complete = "unexpected_index_list" in result
        if len(values) < MAX_RESULT_RECORDS:
            values += list(result.get("unexpected_list" if complete else "partial_unexpected_list") or [])
        listed = result.get("unexpected_index_list" if complete else "partial_unexpected_index_list")
        positions += [offset + int(p) for p in listed or []]
    metrics = _map_metrics(
        expectation,
        n_rows=sum(int(r["element_count"]) for r in results),
        n_null=None if any(m is None for m in missing) else sum(int(m or 0) for m in missing),
        unexpected_count=sum(int(r["unexpected_count"] or 0) for r in results),
        values=values,
        positions=positions,
    )
    return _evaluate(expectation, metrics, config)


def _merge_schema(expectation: Expectation, parts: Sequence[_Result]) -> ExpectationValidationResult:
    """A rule on the schema: each partition says the same; the first failing one, else the first."""
    failing = [p for p in parts if not p[0]]
    return _as_evr(expectation, (failing or list(parts))[0])


def _distinct_result(
    expectation: ExpectColumnDistinctValuesToContainSet, stats: _ColumnStats, config: ValidateConfig
) -> ExpectationValidationResult:
    # GE's pandas metrics column.distinct_values.missing_from_column(.count), on the union
    value_set = list(expectation.value_set or [])
    expected = _coerce_value_set_to_column_type(stats.distinct, value_set)
    missing = expected - stats.distinct
    return _evaluate(
        expectation,
        {
            "column.distinct_values.missing_from_column.count": len(missing),
            "column.distinct_values.missing_from_column": list(missing)[:MAX_DISTINCT_VALUES],
        },
        config,
    )


def _mean_result(
    expectation: ExpectColumnMeanToBeBetween, stats: _ColumnStats, config: ValidateConfig
) -> ExpectationValidationResult:
    mean = np.float64(stats.total) / stats.count if stats.count else np.float64("nan")
    return _evaluate(expectation, {"column.mean": mean}, config)


def _union_stats(parts: Sequence[_Part], column: str) -> _ColumnStats:
    stats = [p.stats[column] for p in parts]
    totals = [s.total for s in stats if s.count]
    summable = all(s.total is not None for s in stats)
    return _ColumnStats(
        distinct=set().union(*(s.distinct for s in stats)),
        total=(sum(totals[1:], totals[0]) if totals else 0) if summable else None,
        count=sum(s.count for s in stats),
    )


# --------------------------------------------------------------------------- validate


def _offsets(lengths: Sequence[int]) -> list[int]:
    return [0, *itertools.accumulate(lengths)][: len(lengths)]


def _duplicates(
    frame: dd.DataFrame, id_column: str, parts: Sequence[_Part], offsets: Sequence[int]
) -> tuple[list[int], list[Any]]:
    """Global positions and ids of the rows whose (non-null) id another row holds, in row order.

    The partitions' id hashes, gathered here, name the few ids that may repeat (none, on a clean
    frame: then there is no second pass); the rows holding them are fetched and checked exactly
    with GE's test, ``duplicated(keep=False)``. Ids without faithful hashes (object or float
    columns) are all fetched and checked here: exact, but the whole id column comes to this process.
    """
    hashes = [p.id_hashes for p in parts]
    repeated: npt.NDArray[np.uint64] | None = None
    if all(h is not None for h in hashes):
        everything = np.sort(np.concatenate([h for h in hashes if h is not None]))
        repeated = np.unique(everything[1:][everything[1:] == everything[:-1]])
        if not len(repeated):
            return [], []
    rows = [_delayed(_rows_holding)(p, id_column, repeated) for p in _partitions(frame)]
    (candidates,) = _compute(rows)
    positions = [offset + p for c, offset in zip(candidates, offsets, strict=True) for p in c.positions]
    values = [v for c in candidates for v in c.values]
    duplicated = pd.Series(values, dtype=object).duplicated(keep=False).to_numpy()
    return (
        [p for p, d in zip(positions, duplicated, strict=True) if d],
        [v for v, d in zip(values, duplicated, strict=True) if d],
    )


def validate_dask(
    frame: dd.DataFrame, spec: DatasetSpec, config: ValidateConfig, docs_dir: Path | None = None
) -> ValidationReport:
    """Run the gate on a Dask DataFrame; the report is ``validate_frame(frame.compute(), ...)``'s.

    The partitions are validated where the active scheduler runs its tasks (the workers of the
    current distributed client, if any); only their results come back. With ``docs_dir``, the
    Data Docs site of the merged result is built there (as :func:`validate_frame` builds it).
    """
    started = time.perf_counter()
    # one extract date for every partition, even across midnight
    config = config.model_copy(update={"as_of_date": as_of_date(config)})
    columns = [str(c) for c in add_check_columns(frame._meta, spec, config).columns]
    suite = numbered_suite(columns, spec, config)
    has_unique = any(isinstance(e, ExpectColumnValuesToBeUnique) for e in suite.expectations)
    tasks = [_delayed(_validate_partition)(part, columns, spec, config) for part in _partitions(frame)]
    parts = list(_compute(tasks)[0])
    lengths = [p.n_rows for p in parts]
    offsets = _offsets(lengths)
    n_rows = sum(lengths)
    ids: dict[int, Any] = {
        offset + p: v for part, offset in zip(parts, offsets, strict=True) for p, v in part.ids.items()
    }
    duplicates = _duplicates(frame, spec.id_column, parts, offsets) if has_unique else ([], [])
    ids.update(zip(*duplicates, strict=True))  # the duplicated ids name their own rows

    local = {i: k for k, i in enumerate(_partition_indexes(suite))}
    results: list[ExpectationValidationResult] = []
    for i, expectation in enumerate(suite.expectations):
        if isinstance(expectation, ExpectTableRowCountToBeBetween):
            results.append(_evaluate(expectation, {"table.row_count": n_rows}, config))
            continue
        if isinstance(expectation, ExpectColumnValuesToBeUnique):
            positions, values = duplicates
            metrics = _map_metrics(
                expectation, n_rows, sum(p.id_nulls for p in parts), len(positions), values, positions
            )
            results.append(_evaluate(expectation, metrics, config))
            continue
        of_parts = [p.results[local[i]] for p in parts]
        error = _first_error(expectation, of_parts)
        if error is not None:
            results.append(error)
        elif isinstance(expectation, ExpectColumnDistinctValuesToContainSet):
            results.append(
                _distinct_result(expectation, _union_stats(parts, str(expectation.column)), config)
            )
        elif isinstance(expectation, ExpectColumnMeanToBeBetween):
            stats = _union_stats(parts, str(expectation.column))
            # a column GE can average but not sum here (dates): the first partition's verdict
            results.append(
                _mean_result(expectation, stats, config)
                if stats.total is not None
                else _merge_schema(expectation, of_parts)
            )
        elif all(_is_map_result(p[1]) for p in of_parts):
            results.append(_merge_rows(expectation, of_parts, offsets, config))
        else:
            results.append(_merge_schema(expectation, of_parts))

    template = ExpectationSuiteValidationResult(
        success=True,
        results=[],
        suite_name=suite.name,
        meta=parts[0].meta if parts else {},
        batch_id=parts[0].batch_id if parts else None,
    )
    merged = suite_result(template, results)
    report = report_from_results(merged.results, n_rows, ids if spec.id_column in columns else None, config)
    docs_path = None if docs_dir is None else Path(docs_dir).resolve()
    if docs_path is not None:
        docs_path.mkdir(parents=True, exist_ok=True)
        write_data_docs(ephemeral_context(docs_path), suite, merged, docs_path, as_of_date(config))
    log_report(report, len(columns), time.perf_counter() - started, docs_path)
    logger.info("validated %d partitions", len(parts))
    return report


# --------------------------------------------------------------------------- gate


@dataclass
class DaskGateResult:
    """:class:`~scoring.data.validation.GateResult` with the rows as (lazy) Dask DataFrames."""

    passed: dd.DataFrame
    quarantine: dd.DataFrame
    summary: dict[str, Any]


def _split_partition(
    part: pd.DataFrame,
    offset: int,
    last: bool,
    n_rows: int,
    held: npt.NDArray[np.int64],
    reasons: npt.NDArray[np.object_],
    reasons_dtype: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run on a worker: the passed and the quarantined rows of a partition starting at ``offset``."""
    end = offset + len(part)
    if end > n_rows or (last and end != n_rows):
        raise ValueError(
            f"the frame has {'more' if end > n_rows else 'fewer'} rows than the report's {n_rows}: "
            "apply the gate to the frame that was validated"
        )
    lo, hi = np.searchsorted(held, [offset, end])
    frame = part.reset_index(drop=True)
    mask = np.zeros(len(frame), dtype=bool)
    mask[held[lo:hi] - offset] = True
    passed = frame.loc[~mask].reset_index(drop=True) if hi > lo else frame  # no copy when none is held
    quarantine = frame.loc[mask].reset_index(drop=True)
    quarantine[QUARANTINE_REASONS] = pd.Series(list(reasons[lo:hi]), dtype=reasons_dtype)
    return passed, quarantine


def apply_gate_dask(frame: dd.DataFrame, report: ValidationReport, config: ValidateConfig) -> DaskGateResult:
    """:func:`~scoring.data.validation.apply_gate` on a Dask DataFrame, partition by partition.

    Raises :class:`~scoring.data.validation.DataValidationError` as ``apply_gate`` does (critical
    failures, too large a quarantine) before anything is computed. ``passed`` and ``quarantine``
    are lazy; computed (and their indexes reset) they are ``apply_gate``'s frames, and the summary
    is its summary. A frame whose rows do not add up to the report's fails when computed.
    """
    import dask.dataframe as dd

    plan = quarantine_plan(report, report.n_rows, config)
    # the reasons column as apply_gate makes it: text, or float64 when nothing is held
    probe = pd.DataFrame(index=range(min(len(plan.held), 1)))
    probe[QUARANTINE_REASONS] = plan.reasons[: len(probe)]
    reasons_dtype = probe[QUARANTINE_REASONS].dtype
    held = _delayed(plan.held, pure=True)
    reasons = _delayed(np.array(plan.reasons, dtype=object), pure=True)

    parts = _partitions(frame)
    offsets: list[Any] = [0]
    for part in parts[:-1]:
        offsets.append(_delayed(operator.add)(offsets[-1], _delayed(len)(part)))

    splits = [
        _delayed(_split_partition, nout=2)(
            part, offset, k == len(parts) - 1, report.n_rows, held, reasons, reasons_dtype
        )
        for k, (part, offset) in enumerate(zip(parts, offsets, strict=True))
    ]
    meta = frame._meta.iloc[:0].reset_index(drop=True)
    passed: dd.DataFrame = dd.from_delayed([s[0] for s in splits], meta=meta, verify_meta=False)
    quarantine: dd.DataFrame = dd.from_delayed(
        [s[1] for s in splits],
        meta=meta.assign(**{QUARANTINE_REASONS: pd.Series([], dtype=reasons_dtype)}),
        verify_meta=False,
    )

    summary = plan.summary(report.n_rows)
    logger.info(
        "gate: %d passed, %d quarantined of %d rows",
        summary["n_passed"],
        summary["n_quarantined"],
        summary["n_input"],
    )
    return DaskGateResult(passed=passed, quarantine=quarantine, summary=summary)
