"""Benchmark: the validation gate on a million synthetic rows (pandas and Dask), against plain pandas.

What is measured, for each of three variants, in its own fresh process:

- ``ge``: the real gate, ``scoring.data.validation.validate_frame`` (the great-expectations 1.24 suite
  built by ``build_suite``, run in two passes: SUMMARY, then COMPLETE for the expectations that failed
  or found offending rows; no Data Docs) followed by ``apply_gate``;
- ``dask``: ``scoring.data.validation_dask.validate_dask`` and ``apply_gate_dask`` on the pipeline's
  LocalCluster (``scoring.core.cluster.local_cluster``) of 2 worker processes x 1 thread, the
  workers' ``MALLOC_TRIM_THRESHOLD_`` from params (``--malloc-trim-threshold``), the frame cut
  into ``--dask-partitions`` partitions (2 by default, one per worker: 500,000 rows each on a
  million, then again with 4: 250,000 rows each) and already in the workers' memory
  (``from_pandas`` then ``persist``; neither that nor the cluster's start is timed); the gate's
  passed and quarantined rows are persisted on the workers inside the timing. The import of
  great-expectations (this process and the workers) is timed apart, as for ``ge``. The workers'
  peak memory is reported beside this process's;
- ``pandas``: the same rules written here as vectorised pandas/numpy (same expectations in the
  same order, same null handling and ``mostly`` arithmetic, same severities), with the same gate:
  stop on a critical failure, otherwise move the rows failing quarantine rules aside with one
  reason per rule, and count the warnings.

Each child generates the synthetic portfolio (``--rows`` applications, ``--seed``), injects
``--bad-share`` of bad rows deterministically (negative income, age 150, down payment above the
price, loan amount 0, a 72-month term, a missing employment_years, an unseen employment type;
spread round-robin over those kinds), turns the nullable integer columns into float64 (as they
come back from Parquet), and then measures:

- wall seconds of the gate itself (validate + gate), ``--repeat`` times (3) in the same process,
  the run of median time reported (all are listed: the machine may be shared); the import of
  great-expectations is timed apart (``import_seconds``) and is not in the gate's figure;
- peak memory: the process's high-water mark is reset after data generation (``/proc/self/clear_refs``,
  so the generator's own peak does not hide the gate's), the resident size at that point is the
  baseline, and ``ru_maxrss`` at the end is the peak of the import + gate phase. Reported: the
  baseline, the absolute peak, and the increment (peak - baseline, the gate's own cost, the
  framework's import included).

The children run one after the other, started with ``subprocess`` from a parent that never holds
the data (a child's peak could otherwise include its parent's memory). The parent then checks that
the variants agree (plain pandas and dask each against great-expectations): the same outcome for
every rule (success, unexpected count, severity, in the same order), the same quarantined ids with
the same reasons, the same passed ids and the same summary. A disagreement is printed and the
script exits with status 1: it is a bug in one of them.

Results go to benchmarks/results/validation.json and validation.md (and are printed).

    python benchmarks/bench_validation.py [--rows 1000000] [--seed 20261128] [--bad-share 0.005]
        [--dask-partitions 2 4] [--malloc-trim-threshold params|unset|BYTES] [--repeat 3]
        [--before-two-pass-seconds S]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the parent process stays small: pandas and numpy are imported by the children only
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from scoring.core.contract import DatasetSpec
    from scoring.data.config import ValidateConfig

    BoolArray = npt.NDArray[np.bool_]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "validation.json"
VARIANTS = ("ge", "pandas", "dask")
MIB = 1024.0  # ru_maxrss and /proc/self/status are in KiB
ACCEPTANCE_SECONDS = 60.0
DASK_TARGET_RATIO = 4.0  # the gate on Dask at most 4x the plain-pandas rules on the same rows

# --------------------------------------------------------------------------- memory


def _status_kib(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else 0


def _reset_peak() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); True when it took effect."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") <= _status_kib("VmRSS") + 1024


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --------------------------------------------------------------------------- data

BAD_KINDS: tuple[str, ...] = (
    "negative_income",
    "age_150",
    "down_payment_above_price",
    "zero_loan_amount",
    "term_72_months",
    "missing_employment_years",
    "unseen_employment_type",
)


def make_frame(rows: int, seed: int, bad_share: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """The synthetic portfolio with bad rows injected, nullable ints as float64 (as read from Parquet)."""
    import numpy as np
    import pandas as pd

    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio

    df, truth = generate_portfolio(SyntheticDataConfig(n_applications=rows), seed)
    del truth
    for name in df.columns:
        if isinstance(df[name].dtype, pd.api.extensions.ExtensionDtype) and df[name].dtype.kind in "iu":
            df[name] = df[name].astype("float64")

    rng = np.random.default_rng([seed, 7])
    n_bad = round(rows * bad_share)
    positions = np.sort(rng.choice(rows, size=n_bad, replace=False))
    injected: dict[str, int] = {}
    for k, kind in enumerate(BAD_KINDS):
        at = positions[k :: len(BAD_KINDS)]
        injected[kind] = len(at)

        def col(name: str) -> int:
            return int(df.columns.get_loc(name))  # type: ignore[arg-type]

        if kind == "negative_income":
            df.iloc[at, col("monthly_income")] = -df["monthly_income"].to_numpy()[at]
        elif kind == "age_150":
            df.iloc[at, col("age")] = 150
        elif kind == "down_payment_above_price":
            df.iloc[at, col("down_payment")] = (df["vehicle_price"].to_numpy()[at] * 1.1).round(2)
        elif kind == "zero_loan_amount":
            df.iloc[at, col("loan_amount")] = 0.0
        elif kind == "term_72_months":
            df.iloc[at, col("term_months")] = 72
        elif kind == "missing_employment_years":
            df.iloc[at, col("employment_years")] = np.nan
        elif kind == "unseen_employment_type":
            df.iloc[at, col("employment_type")] = "freelancer"
    return df, injected


# --------------------------------------------------------------------------- the rules in plain pandas

# Mirrors scoring.data.validation (not imported here: that would load great-expectations).
NUMERIC_DTYPE_NAMES = frozenset(
    {
        *(f"int{b}" for b in (8, 16, 32, 64)),
        *(f"uint{b}" for b in (8, 16, 32, 64)),
        "float16",
        "float32",
        "float64",
        *(f"Int{b}Dtype" for b in (8, 16, 32, 64)),
        *(f"UInt{b}Dtype" for b in (8, 16, 32, 64)),
        "Float32Dtype",
        "Float64Dtype",
    }
)
TYPE_NAMES: dict[str, frozenset[str]] = {
    "int": NUMERIC_DTYPE_NAMES,
    "float": NUMERIC_DTYPE_NAMES,
    "date": frozenset(f"datetime64[{u}]" for u in ("s", "ms", "us", "ns")),
    "bool": frozenset({"bool", "BooleanDtype"}),
}
STRICTLY_POSITIVE = frozenset({"monthly_income", "vehicle_price", "loan_amount"})
DEFAULT_SEVERITY: dict[str, str] = {
    **dict.fromkeys(
        (
            "missing_column",
            "too_few_rows",
            "column_type",
            "id_missing",
            "duplicate_id",
            "target_not_binary",
            "single_class",
            "default_rate_out_of_bounds",
            "date_missing",
            "future_application_date",
            "too_many_nulls",
            "unseen_levels",
        ),
        "critical",
    ),
    "unseen_level": "warn",
    **dict.fromkeys(
        (
            "missing",
            "out_of_range",
            "term_not_allowed",
            "ltv_out_of_range",
            "down_payment_not_below_price",
            "loan_amount_inconsistent",
            "outcome_before_maturity",
        ),
        "quarantine",
    ),
}
STRUCTURAL = frozenset({"missing_column", "too_few_rows", "column_type", "id_missing", "target_not_binary"})
MAX_EXAMPLES, PARTIAL_COUNT = 5, 20


@dataclass
class RuleResult:
    rule: str
    kind: str
    success: bool
    unexpected_count: int
    severity: str
    mask: BoolArray | None = field(default=None, repr=False)  # offending rows of a row-level rule
    examples: list[str] = field(default_factory=list)


class PandasSuite:
    """The gate's expectations, in build_suite's order, evaluated with pandas/numpy."""

    def __init__(self, df: pd.DataFrame, spec: DatasetSpec, config: ValidateConfig) -> None:
        self.df, self.spec, self.config, self.n = df, spec, config, len(df)
        self.ids = df[spec.id_column].to_numpy() if spec.id_column in df.columns else None
        self.results: list[RuleResult] = []
        self.checks: dict[str, pd.Series] = {}

    def _severity(self, kind: str, rule: str) -> str:
        default = DEFAULT_SEVERITY.get(kind, "critical")
        if kind in STRUCTURAL:
            return default
        return str(self.config.severity.get(rule, self.config.severity.get(kind, default)))

    def add(self, rule: str, kind: str, success: bool, count: int = 0, mask: BoolArray | None = None) -> None:
        import numpy as np

        severity = self._severity(kind, rule)
        if severity == "quarantine" and not success and (mask is None or count == 0):
            severity = "critical"  # a row-level rule that cannot name its rows stops the gate
        examples: list[str] = []
        if not success and mask is not None and self.ids is not None:
            first = np.flatnonzero(mask)[:PARTIAL_COUNT]
            examples = list(dict.fromkeys(str(v) for v in self.ids[first]))[:MAX_EXAMPLES]
        self.results.append(RuleResult(rule, kind, bool(success), int(count), severity, mask, examples))

    def column_map(
        self, rule: str, kind: str, values: pd.Series, bad: BoolArray, mostly: float = 1.0
    ) -> None:
        """A per-row rule: nulls are not judged; success when the judged rows pass at least ``mostly``."""
        null = values.isna().to_numpy()
        unexpected = bad & ~null
        count, judged = int(unexpected.sum()), self.n - int(null.sum())
        self.add(rule, kind, judged == 0 or (judged - count) / judged >= mostly, count, unexpected)

    def not_null(self, column: str, kind: str, mostly: float = 1.0) -> None:
        null = self.df[column].isna().to_numpy()
        count = int(null.sum())
        self.add(_code(column, kind), kind, self.n == 0 or (self.n - count) / self.n >= mostly, count, null)

    def in_set(
        self, column: str, values: Sequence[Any], kind: str, mostly: float = 1.0, rule: str | None = None
    ) -> None:
        series = self.df[column]
        bad = ~series.isin(list(values)).to_numpy()
        self.column_map(rule or _code(column, kind), kind, series, bad, mostly)

    def between(
        self,
        values: pd.Series,
        low: Any,
        high: Any,
        strict_min: bool = False,
        *,
        rule: str,
        kind: str = "out_of_range",
    ) -> None:
        import numpy as np

        bad = np.zeros(self.n, dtype=bool)
        if low is not None:
            bad |= (values <= low if strict_min else values < low).to_numpy(dtype=bool)
        if high is not None:
            bad |= (values > high).to_numpy(dtype=bool)
        self.column_map(rule, kind, values, bad)

    def column_type(self, column: str, kind: str) -> None:
        import numpy as np

        dtype = self.df[column].dtype
        names = TYPE_NAMES[kind]
        if isinstance(dtype, np.dtype):
            ok = dtype.name in names
        else:  # an extension dtype matches when it is the default instance of a listed class
            ok = type(dtype).__name__ in names and dtype == type(dtype)()
        self.add(_code(column, "column_type"), "column_type", ok)

    # ----------------------------------------------------------------- the suite

    def run(self) -> list[RuleResult]:
        import datetime as dt

        import pandas as pd

        from scoring.core.contract import AUTO_LOAN_COLUMNS

        df, spec, config, present = self.df, self.spec, self.config, set(self.df.columns)
        self.checks = self._check_columns()
        required = [spec.id_column, spec.target_column]
        required += [c for c in (spec.date_column, spec.customer_column) if c is not None]
        if spec.follows_auto_loan_contract:
            required += [c.name for c in AUTO_LOAN_COLUMNS]
        for name in dict.fromkeys(required):
            self.add(_code(name, "missing_column"), "missing_column", name in present)
        self.add("too_few_rows", "too_few_rows", self.n >= config.min_rows)
        if spec.id_column in present:
            self.not_null(spec.id_column, "id_missing")
            ids = df[spec.id_column]
            dup = ids.duplicated(keep=False).to_numpy()
            self.column_map("duplicate_id", "duplicate_id", ids, dup)
        if spec.target_column in present:
            target = df[spec.target_column]
            self.column_type(spec.target_column, "float")
            self.in_set(spec.target_column, [0, 1], "target_not_binary")
            distinct = set(pd.unique(target.dropna()).tolist())
            self.add("single_class", "single_class", {0, 1} <= distinct)
            mean = float(target.mean())
            bounds = config.default_rate
            ok = bounds.min <= mean <= bounds.max
            self.add("default_rate_out_of_bounds", "default_rate_out_of_bounds", ok)
        if spec.date_column is not None and spec.date_column in present:
            self.column_type(spec.date_column, "date")
            self.not_null(spec.date_column, "date_missing")
            as_of = config.as_of_date or dt.date.today()
            latest = pd.Timestamp(dt.datetime.combine(as_of, dt.time.max))
            self.between(
                df[spec.date_column],
                None,
                latest,
                rule="future_application_date",
                kind="future_application_date",
            )
        if spec.follows_auto_loan_contract:
            roles = {spec.id_column, spec.target_column, spec.date_column}
            for cs in AUTO_LOAN_COLUMNS:
                if cs.name not in present or cs.name in roles:
                    continue
                if cs.kind in TYPE_NAMES:
                    self.column_type(cs.name, cs.kind)
                if not cs.nullable:
                    self.not_null(cs.name, "missing")
                else:
                    share = config.max_null_share.get(cs.name, config.default_max_null_share)
                    self.not_null(cs.name, "too_many_nulls", mostly=max(1.0 - share, 1e-9))
                if cs.levels is not None:
                    self.in_set(cs.name, cs.levels, "unseen_level")
                    mostly = 1.0 - config.max_unseen_level_share
                    if mostly < 1.0:
                        self.in_set(cs.name, cs.levels, "unseen_levels", mostly=mostly)
                if (cs.min is not None or cs.max is not None) and cs.name not in config.ranges:
                    self.between(
                        df[cs.name],
                        cs.min,
                        cs.max,
                        cs.name in STRICTLY_POSITIVE,
                        rule=_code(cs.name, "out_of_range"),
                    )
        else:
            raise NotImplementedError("the benchmark covers the auto-loan contract only")
        for column, bound in config.ranges.items():
            if column in present and (bound.min is not None or bound.max is not None):
                self.between(df[column], bound.min, bound.max, rule=_code(column, "out_of_range"))
        if {"vehicle_price", "down_payment"} <= present:
            a, b = df["vehicle_price"], df["down_payment"]
            considered = ~(a.isna() & b.isna()).to_numpy()
            bad = considered & ~(a > b).to_numpy(dtype=bool)
            count, judged = int(bad.sum()), int(considered.sum())
            kind = "down_payment_not_below_price"
            self.add(kind, kind, judged == 0 or count == 0, count, bad)
        checks = self.checks
        if "ltv" in checks:
            self.between(
                checks["ltv"], 0, config.max_ltv, True, rule="ltv_out_of_range", kind="ltv_out_of_range"
            )
        if "gap" in checks:
            kind = "loan_amount_inconsistent"
            self.between(checks["gap"], None, config.loan_amount_tolerance, rule=kind, kind=kind)
        for name, kind in (("term", "term_not_allowed"), ("matured", "outcome_before_maturity")):
            if name in checks:
                allowed = checks[name]
                self.column_map(kind, kind, allowed, ~allowed.to_numpy(dtype=bool))
        return self.results

    def _check_columns(self) -> dict[str, pd.Series]:
        """The rules across columns, as series (the frame itself is not copied)."""
        import datetime as dt

        import pandas as pd

        df, spec, config, cols = self.df, self.spec, self.config, set(self.df.columns)
        out: dict[str, pd.Series] = {}
        if {"loan_amount", "vehicle_price"} <= cols:
            price = df["vehicle_price"].where(df["vehicle_price"] > 0)
            out["ltv"] = df["loan_amount"] / price
            if "down_payment" in cols:
                out["gap"] = (df["loan_amount"] - (price - df["down_payment"])).abs() / price
        if {"term_months", "vehicle_condition"} <= cols:
            term = df["term_months"]
            used = (df["vehicle_condition"] == "used").fillna(False).to_numpy(dtype=bool)
            allowed = term.isin(config.terms_used).to_numpy() & used
            allowed |= term.isin(config.terms_new).to_numpy() & ~used
            out["term"] = pd.Series(allowed, index=df.index)
        if spec.date_column is not None and spec.date_column in cols and spec.target_column in cols:
            as_of = pd.Timestamp(config.as_of_date or dt.date.today())
            cutoff = as_of - pd.DateOffset(months=config.performance_months)
            labelled = df[spec.target_column].notna().to_numpy()
            out["matured"] = pd.Series(
                ~labelled | (df[spec.date_column] <= cutoff).to_numpy(), index=df.index
            )
        return out


def _code(column: str, kind: str) -> str:
    return f"{column}_{kind}"


class PandasGateError(ValueError):
    pass


@dataclass
class PandasGate:
    passed: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]


def pandas_gate(df: pd.DataFrame, results: list[RuleResult], config: ValidateConfig) -> PandasGate:
    """apply_gate's contract: stop on critical failures, quarantine with one reason per failed rule."""
    import numpy as np

    failures = [r for r in results if not r.success]
    critical = [r.rule for r in failures if r.severity == "critical"]
    if critical:
        raise PandasGateError(f"critical failures: {critical}")
    frame = df.reset_index(drop=True)
    quarantine_rules = [r for r in failures if r.severity == "quarantine" and r.mask is not None]
    held_mask = np.zeros(len(frame), dtype=bool)
    for r in quarantine_rules:
        assert r.mask is not None
        held_mask |= r.mask
    held = np.flatnonzero(held_mask)
    share = len(held) / len(frame) if len(frame) else 0.0
    if share > config.max_quarantine_share:
        raise PandasGateError(f"{len(held)} of {len(frame)} rows would be quarantined ({share:.1%})")
    reasons = np.full(len(held), "", dtype=object)
    for r in quarantine_rules:
        assert r.mask is not None
        hit = r.mask[held]
        reasons[hit] = np.where(reasons[hit] == "", r.rule, reasons[hit] + ";" + r.rule)
    quarantine = frame.loc[held_mask].copy()
    quarantine["quarantine_reasons"] = reasons
    passed = frame.loc[~held_mask].reset_index(drop=True)
    summary: dict[str, Any] = {
        "n_input": len(frame),
        "n_passed": len(passed),
        "n_quarantined": len(quarantine),
        "quarantine_by_reason": dict(sorted((r.rule, r.unexpected_count) for r in quarantine_rules)),
        "warnings": dict(sorted((r.rule, r.unexpected_count) for r in failures if r.severity == "warn")),
    }
    return PandasGate(passed, quarantine.reset_index(drop=True), summary)


# --------------------------------------------------------------------------- one variant (child process)


def _import_gate() -> None:
    import scoring.data.validation_dask  # noqa: F401  (great-expectations and the gate, on a worker)


def _worker_peak_kib() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_variant(
    variant: str,
    rows: int,
    seed: int,
    bad_share: float,
    dask_partitions: int = 4,
    malloc_trim_threshold: str = "params",
    repeat: int = 3,
) -> dict[str, Any]:
    logging.getLogger("scoring").setLevel(logging.ERROR)  # the failures are the point, not news
    from scoring.core.contract import SYNTHETIC_SPEC
    from scoring.data.config import ValidateConfig

    df, injected = make_frame(rows, seed, bad_share)
    config, spec = ValidateConfig(), SYNTHETIC_SPEC
    extra: dict[str, Any] = {}
    if variant == "dask":
        # Outside every timing: the cluster, and the frame moved into the workers' memory. The
        # frame keeps its pandas dtypes (no conversion of text to pyarrow strings), so the three
        # variants validate the very same values.
        import dask
        import dask.dataframe as dd
        from distributed import Client, wait

        from bench_scale import malloc_trim_threshold as resolve_trim
        from scoring.core.cluster import DaskConfig, local_cluster

        dask.config.set({"dataframe.convert-string": False})
        trim = resolve_trim(malloc_trim_threshold)
        extra["worker_malloc_trim_threshold"] = trim
        started = time.perf_counter()
        # the pipeline's LocalCluster (scoring.core.cluster), of 2 workers x 1 thread
        cluster = local_cluster(DaskConfig(n_workers=2, threads_per_worker=1, malloc_trim_threshold=trim))
        client = Client(cluster)
        extra["cluster_start_seconds"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        frame = dd.from_pandas(df, npartitions=dask_partitions).persist()
        wait(frame)
        extra["load_into_workers_seconds"] = round(time.perf_counter() - started, 3)
        extra["partitions"] = frame.npartitions
        extra["partition_rows"] = [int(n) for n in frame.map_partitions(len).compute()]
    gc.collect()
    generation_peak = _maxrss_kib()
    reset = _reset_peak()
    baseline = _status_kib("VmRSS")

    started = time.perf_counter()
    if variant == "ge":
        from scoring.data.validation import DataValidationError, apply_gate, validate_frame
    if variant == "dask":
        from scoring.data.validation import DataValidationError
        from scoring.data.validation_dask import apply_gate_dask, validate_dask

        client.run(_import_gate)  # the workers import great-expectations too, in parallel
    import_s = time.perf_counter() - started
    after_import = _status_kib("VmRSS")

    timings: list[tuple[float, float]] = []  # (checks, gate) seconds of each run
    for _ in range(repeat):
        error: str | None = None
        started = time.perf_counter()
        rules: list[tuple[str, str, bool, int, str]]
        examples: dict[str, list[str]]
        if variant == "ge":
            report = validate_frame(df, spec, config)
            checked = time.perf_counter()
            try:
                gate = apply_gate(df, report, config)
                passed, quarantine, summary = gate.passed, gate.quarantine, gate.summary
            except DataValidationError as exc:
                error = str(exc)
            rules = [(o.rule, o.kind, o.success, o.unexpected_count, o.severity) for o in report.outcomes]
            examples = {o.rule: o.unexpected_examples for o in report.outcomes if not o.success}
        elif variant == "dask":
            report = validate_dask(frame, spec, config)
            checked = time.perf_counter()
            try:
                dgate = apply_gate_dask(frame, report, config)
                # the gate's rows materialised where the data lives, as apply_gate's are in its process
                passed_d, quarantine_d = client.persist([dgate.passed, dgate.quarantine])
                wait([passed_d, quarantine_d])
                summary = dgate.summary
            except DataValidationError as exc:
                error = str(exc)
            rules = [(o.rule, o.kind, o.success, o.unexpected_count, o.severity) for o in report.outcomes]
            examples = {o.rule: o.unexpected_examples for o in report.outcomes if not o.success}
        else:
            results = PandasSuite(df, spec, config).run()
            checked = time.perf_counter()
            try:
                pgate = pandas_gate(df, results, config)
                passed, quarantine, summary = pgate.passed, pgate.quarantine, pgate.summary
            except PandasGateError as exc:
                error = str(exc)
            rules = [(r.rule, r.kind, r.success, r.unexpected_count, r.severity) for r in results]
            examples = {r.rule: r.examples for r in results if not r.success}
        ended = time.perf_counter()
        timings.append((checked - started, ended - checked))
    peak = _maxrss_kib()
    # the run of median wall time (runs differ on a shared machine; the first also warms caches)
    check_s, gate_s = sorted(timings, key=sum)[len(timings) // 2]
    if variant == "dask":
        extra["worker_peak_rss_mib"] = sorted(
            round(k / MIB, 1) for k in client.run(_worker_peak_kib).values()
        )
        if error is None:  # fetched after the timing, for the comparison with the other variants
            passed, quarantine = (f.compute().reset_index(drop=True) for f in (passed_d, quarantine_d))

    out: dict[str, Any] = {
        "variant": variant,
        "rows": len(df),
        "bad_rows_injected": sum(injected.values()),
        "bad_rows_by_kind": injected,
        "n_expectations": len(rules),
        "import_seconds": round(import_s, 3),
        "check_seconds": round(check_s, 3),
        "gate_seconds": round(gate_s, 3),
        "wall_seconds": round(check_s + gate_s, 3),
        "wall_seconds_runs": [round(c + g, 3) for c, g in timings],
        "baseline_rss_mib": round(baseline / MIB, 1),
        "after_import_rss_mib": round(after_import / MIB, 1),
        "peak_rss_mib": round(peak / MIB, 1),
        "peak_increment_mib": round((peak - baseline) / MIB, 1),
        "data_generation_peak_rss_mib": round(generation_peak / MIB, 1),
        "peak_reset_after_generation": reset,
        "gate_error": error,
        "rules": rules,
        "examples": examples,
        **extra,
    }
    if error is None:
        id_col = spec.id_column
        out["summary"] = summary
        out["quarantine"] = list(
            zip(quarantine[id_col].astype(str), quarantine["quarantine_reasons"].astype(str), strict=True)
        )
        out["passed_ids_sha256"] = hashlib.sha256("\n".join(passed[id_col].astype(str)).encode()).hexdigest()
        out["passed_columns"] = [str(c) for c in passed.columns]
    if variant == "dask":
        client.close()
        cluster.close()
    return out


# --------------------------------------------------------------------------- parent


def _run_child(variant: str, args: argparse.Namespace, dask_partitions: int = 4) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        out = Path(tmp) / f"{variant}.json"
        cmd = [sys.executable, __file__, "--variant", variant, "--child-out", str(out)]
        cmd += ["--rows", str(args.rows), "--seed", str(args.seed), "--bad-share", str(args.bad_share)]
        cmd += ["--dask-partitions", str(dask_partitions)]
        cmd += ["--malloc-trim-threshold", args.malloc_trim_threshold]
        cmd += ["--repeat", str(args.repeat)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        started = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"variant {variant} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
        result: dict[str, Any] = json.loads(out.read_text())
        result["process_seconds"] = round(time.perf_counter() - started, 1)
        return result


def compare(ge: dict[str, Any], pd_: dict[str, Any], other: str = "pandas") -> list[str]:
    """Differences between the ge variant's decisions and another's (empty when they agree)."""
    diffs: list[str] = []
    if len(ge["rules"]) != len(pd_["rules"]):
        diffs.append(f"number of rules: ge {len(ge['rules'])}, {other} {len(pd_['rules'])}")
    for i, (a, b) in enumerate(zip(ge["rules"], pd_["rules"], strict=False)):
        if list(a) != list(b):
            diffs.append(f"rule #{i}: ge {a} != {other} {b}")
    if (ge["gate_error"] is None) != (pd_["gate_error"] is None):
        diffs.append(f"gate decision: ge error={ge['gate_error']!r}, {other} error={pd_['gate_error']!r}")
    if ge["gate_error"] is None and pd_["gate_error"] is None:
        for key in ("summary", "passed_ids_sha256", "passed_columns"):
            if ge[key] != pd_[key]:
                diffs.append(f"{key}: ge {ge[key]} != {other} {pd_[key]}")
        qa = {tuple(x) for x in ge["quarantine"]}
        qb = {tuple(x) for x in pd_["quarantine"]}
        if ge["quarantine"] != pd_["quarantine"]:
            diffs.append(
                f"quarantine: {len(qa)} rows (ge) vs {len(qb)} ({other}); only ge: {sorted(qa - qb)[:5]}; "
                f"only {other}: {sorted(qb - qa)[:5]}"
            )
    return diffs


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--bad-share", type=float, default=0.005)
    parser.add_argument(
        "--dask-partitions",
        type=int,
        nargs="+",
        default=[2, 4],
        help="partitions of the dask variant, one run each (default 2, one per worker, then 4); "
        "the first is the main figure",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per variant; the run of median wall time is reported",
    )
    parser.add_argument(
        "--malloc-trim-threshold",
        default="params",
        help="the dask workers' MALLOC_TRIM_THRESHOLD_: params (dask.malloc_trim_threshold in the "
        "repository's params.yaml, what the pipeline's LocalCluster uses), unset, or bytes "
        "(distributed's own default is 65536)",
    )
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON; the .md beside it")
    parser.add_argument(
        "--before-two-pass-seconds",
        type=float,
        help="wall seconds of the previous one-pass validate_frame on the same rows, measured apart",
    )
    args = parser.parse_args()

    if args.variant is not None:  # a child: measure one variant, write its result, exit
        result = run_variant(
            args.variant,
            args.rows,
            args.seed,
            args.bad_share,
            args.dask_partitions[0],
            args.malloc_trim_threshold,
            args.repeat,
        )
        args.child_out.write_text(json.dumps(result))
        return

    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}", flush=True)
    runs = {}
    for variant in VARIANTS:
        runs[variant] = _run_child(variant, args, args.dask_partitions[0])
        print(
            f"{variant}: {runs[variant]['wall_seconds']} s, peak {runs[variant]['peak_rss_mib']} MiB",
            flush=True,
        )
    other_dask = []
    for partitions in args.dask_partitions[1:]:
        other_dask.append(_run_child("dask", args, partitions))
        print(f"dask, {partitions} partitions: {other_dask[-1]['wall_seconds']} s", flush=True)
    load_after = os.getloadavg()
    ge, pdv, dsk = runs["ge"], runs["pandas"], runs["dask"]
    diffs = compare(ge, pdv)
    dask_diffs = compare(ge, dsk, "dask")
    examples_agree = ge["examples"] == pdv["examples"]
    dask_examples_agree = ge["examples"] == dsk["examples"]

    keys = (
        "wall_seconds",
        "wall_seconds_runs",
        "check_seconds",
        "gate_seconds",
        "import_seconds",
        "baseline_rss_mib",
        "after_import_rss_mib",
        "peak_rss_mib",
        "peak_increment_mib",
        "data_generation_peak_rss_mib",
        "peak_reset_after_generation",
        "process_seconds",
        "n_expectations",
    )
    dask_keys = (
        "worker_malloc_trim_threshold",
        "partitions",
        "partition_rows",
        "cluster_start_seconds",
        "load_into_workers_seconds",
        "worker_peak_rss_mib",
    )
    summary = ge.get("summary") or {}
    dask_ratio = _ratio(dsk["wall_seconds"], pdv["wall_seconds"])
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
        },
        "date": time.strftime("%Y-%m-%d"),
        "rows": ge["rows"],
        "seed": args.seed,
        "bad_share": args.bad_share,
        "bad_rows_injected": ge["bad_rows_injected"],
        "bad_rows_by_kind": ge["bad_rows_by_kind"],
        "n_expectations": ge["n_expectations"],
        "gate": {
            k: summary.get(k) for k in ("n_passed", "n_quarantined", "quarantine_by_reason", "warnings")
        },
        "great_expectations": {k: ge[k] for k in keys},
        "plain_pandas": {k: pdv[k] for k in keys},
        "dask": {
            **{k: dsk[k] for k in keys},
            **{k: dsk[k] for k in dask_keys},
            "data": "in the workers' memory (from_pandas, persisted) before the timing",
            "cluster": "LocalCluster, 2 worker processes x 1 thread",
        },
        "dask_other_partitionings": [
            {
                "partitions": run["partitions"],
                "partition_rows": run["partition_rows"],
                "wall_seconds": run["wall_seconds"],
                "check_seconds": run["check_seconds"],
                "gate_seconds": run["gate_seconds"],
                "ratio_to_plain_pandas": _ratio(run["wall_seconds"], pdv["wall_seconds"]),
                "agrees_with_ge": not compare(ge, run, "dask"),
            }
            for run in other_dask
        ],
        "ratio_ge_to_pandas": {
            "wall_seconds": _ratio(ge["wall_seconds"], pdv["wall_seconds"]),
            "wall_seconds_with_import": _ratio(
                ge["wall_seconds"] + ge["import_seconds"], pdv["wall_seconds"] + pdv["import_seconds"]
            ),
            "peak_increment_mib": _ratio(ge["peak_increment_mib"], pdv["peak_increment_mib"]),
            "peak_rss_mib": _ratio(ge["peak_rss_mib"], pdv["peak_rss_mib"]),
        },
        "ratio_dask_to_pandas": {
            "wall_seconds": dask_ratio,
            "wall_seconds_with_import": _ratio(
                dsk["wall_seconds"] + dsk["import_seconds"], pdv["wall_seconds"] + pdv["import_seconds"]
            ),
        },
        "acceptance": {
            "gate_under_60_seconds": ge["wall_seconds"] < ACCEPTANCE_SECONDS,
            "gate_with_import_under_60_seconds": ge["wall_seconds"] + ge["import_seconds"]
            < ACCEPTANCE_SECONDS,
            "dask_gate_at_most_4x_plain_pandas": dask_ratio is not None and dask_ratio <= DASK_TARGET_RATIO,
        },
        "variants_agree": not diffs
        and not dask_diffs
        and not any(compare(ge, r, "dask") for r in other_dask),
        "differences": diffs,
        "dask_differences": dask_diffs,
        "failure_examples_agree": examples_agree,
        "dask_failure_examples_agree": dask_examples_agree,
    }
    if args.before_two_pass_seconds is not None:
        results["great_expectations_before_two_pass"] = {
            "wall_seconds": args.before_two_pass_seconds,
            "note": "validate + gate with the previous validate_frame (one COMPLETE pass through a "
            "checkpoint), measured separately on the same rows",
        }

    rows = [
        ("wall s (validate + gate)", "wall_seconds"),
        ("  of which checks", "check_seconds"),
        ("  of which gate", "gate_seconds"),
        ("import s", "import_seconds"),
        ("baseline RSS MiB", "baseline_rss_mib"),
        ("peak RSS MiB", "peak_rss_mib"),
        ("peak increment MiB", "peak_increment_mib"),
        ("expectations", "n_expectations"),
    ]
    print(
        f"\n{ge['rows']:,} rows, {ge['bad_rows_injected']:,} bad rows injected, "
        f"{summary.get('n_quarantined')} quarantined, warnings {summary.get('warnings')}"
    )
    print(f"{'':28}{'great-expectations':>20}{'plain pandas':>15}{'ratio':>8}{'dask':>10}{'ratio':>8}")
    for label, key in rows:
        a, b, c = ge[key], pdv[key], dsk[key]
        numeric = key != "n_expectations"
        ratio = _ratio(float(a), float(b)) if numeric else None
        dratio = _ratio(float(c), float(b)) if numeric else None
        ratios = ["" if r is None else r for r in (ratio, dratio)]
        print(f"{label:28}{a:>20}{b:>15}{ratios[0]:>8}{c:>10}{ratios[1]:>8}")
    print(f"dask: {dsk['partitions']} partitions {dsk['partition_rows']}, ", end="")
    print(f"worker peaks {dsk['worker_peak_rss_mib']} MiB")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cpus)")
    print(
        f"variants agree: {not diffs and not dask_diffs}; failure examples agree: {examples_agree}, "
        f"dask {dask_examples_agree}"
    )

    from scoring.core.figures import write_results

    markdown = args.output.with_suffix(".md")
    write_results(args.output, results, render_markdown(results))
    for path in (args.output, markdown):
        print(f"written to {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    if diffs or dask_diffs:
        print("DISAGREEMENT between the variants:", *diffs, *dask_diffs, sep="\n  ", file=sys.stderr)
        sys.exit(1)


def render_markdown(results: dict[str, Any]) -> str:
    """benchmarks/results/validation.md: the figures of validation.json, as a table."""
    ge, pdv, dsk = results["great_expectations"], results["plain_pandas"], results["dask"]
    machine = results["machine"]
    met = "met" if results["acceptance"]["dask_gate_at_most_4x_plain_pandas"] else "not met"
    trim = dsk["worker_malloc_trim_threshold"]
    trim = "unset, glibc's adaptive default" if trim is None else f"{trim}"
    lines = [
        "# Validation benchmark: the gate on great-expectations, plain pandas and Dask "
        "(benchmarks/bench_validation.py)",
        "",
        f"Measured {results['date']} on {machine['cpus']} CPUs ({machine['platform']}), load average "
        f"{machine['load_average_before'][0]} before, {machine['load_average_after'][0]} after. "
        f"{results['rows']:,} synthetic rows (seed {results['seed']}), "
        f"{results['bad_rows_injected']:,} bad rows injected; {results['n_expectations']} expectations; "
        f"{results['gate']['n_quarantined']:,} rows quarantined.",
        "",
        "- great-expectations: `validate_frame` (two passes: the suite with SUMMARY, then COMPLETE for the "
        "expectations that failed or found offending rows) + `apply_gate`, one process.",
        "- plain pandas: the same rules written in vectorised pandas in the benchmark, same gate.",
        f"- dask: `validate_dask` + `apply_gate_dask` (the gate's rows persisted on the workers) on a "
        f"{dsk['cluster']} (workers' MALLOC_TRIM_THRESHOLD_ {trim}), "
        f"{dsk['partitions']} partitions of {dsk['partition_rows'][0]:,} rows, data "
        f"{dsk['data']}. Cluster start ({dsk['cluster_start_seconds']} s) and loading "
        f"({dsk['load_into_workers_seconds']} s) are not timed; the import of great-expectations (in the "
        "client and the workers) is timed apart, as for great-expectations.",
        "",
        f"Each figure is the run of median wall time of {len(ge['wall_seconds_runs'])} in one process "
        f"(great-expectations {ge['wall_seconds_runs']}, plain pandas {pdv['wall_seconds_runs']}, dask "
        f"{dsk['wall_seconds_runs']} s).",
        "",
        "| | great-expectations | plain pandas | dask | dask / plain pandas |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in (
        ("wall s (validate + gate)", "wall_seconds"),
        ("of which checks", "check_seconds"),
        ("of which gate", "gate_seconds"),
        ("import s", "import_seconds"),
        ("peak RSS MiB (this process)", "peak_rss_mib"),
    ):
        ratio = _ratio(float(dsk[key]), float(pdv[key]))
        lines.append(f"| {label} | {ge[key]} | {pdv[key]} | {dsk[key]} | {'' if ratio is None else ratio} |")
    lines.append(
        f"| dask workers' peak RSS MiB | | | {', '.join(str(x) for x in dsk['worker_peak_rss_mib'])} | |"
    )
    lines += [
        "",
        f"great-expectations / plain pandas: {results['ratio_ge_to_pandas']['wall_seconds']}x. "
        f"dask / plain pandas: {results['ratio_dask_to_pandas']['wall_seconds']}x (target at most "
        f"{DASK_TARGET_RATIO:g}x: {met}).",
    ]
    for run in results["dask_other_partitionings"]:
        lines.append(
            f"With {run['partitions']} partitions of {run['partition_rows'][0]:,} rows, dask took "
            f"{run['wall_seconds']} s (checks {run['check_seconds']}, gate {run['gate_seconds']}): "
            f"{run['ratio_to_plain_pandas']}x plain pandas; agrees with great-expectations: "
            f"{run['agrees_with_ge']}."
        )
    before = results.get("great_expectations_before_two_pass")
    if before:
        lines.append(
            f"Before the two passes, great-expectations took {before['wall_seconds']} s ({before['note']})."
        )
    agree = "agree" if results["variants_agree"] else "DISAGREE"
    lines += [
        "",
        f"The three variants {agree}: every rule's outcome, count and severity in order, the quarantined "
        "ids with their reasons, the passed ids and the summary (failure examples: plain pandas "
        f"{results['failure_examples_agree']}, dask {results['dask_failure_examples_agree']}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
