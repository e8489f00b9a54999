"""Benchmark: monitoring one month of 1,000,000 scored applications and 10,000,000 rows of
performance history, against reading the same files (a ratio), with peak memory.

Inputs (built first, not timed, in a child process of their own):

- the batch: ``--applications`` synthetic applications (``generate_portfolio``, 24 months from
  ``BATCH_START``), every application date moved into one month (the 12th, January 2024; the day
  of the month kept), after the exported model's reference window, so the month is judged. Scored
  with the pipeline's exported model (``--model``, default models/pd_model, verified against its
  manifest: ``load_verified_model``; ``score_for_monitoring``, which keeps the model's inputs beside
  pd, score, grade and decision, as the monitor stage does), written to Parquet;
- the history: the monthly performance of a random subset of the batch's applications, the booked
  loans (``generate_performance``, in chunks of ``CHUNK_LOANS`` loans, each chunk with its own
  seed), from the month after the application month to twelve months on book, so the month's
  cohort has matured for the back-test (90+ within 12 months); loans are added until the history
  holds ``--history-rows`` rows (the last chunk cut at a loan boundary), written to one Parquet file.
  Both files are written as the pipeline writes them (zstd, ``scoring.core.io.write_parquet``).

Timed, each in a fresh process started by a parent that never holds the data (a child's peak
would otherwise count the parent's memory), ``--repeats`` times, the steps interleaved:

- ``read`` (the baseline): both Parquet files read with ``scoring.core.io.read_parquet``
  (``pyarrow.parquet.read_table(...).to_pandas()``, what the monitor stage reads with);
- ``gate``: reading, then the history gate, ``check_history`` against the batch's ids and loan
  amounts (what ``monitor_model`` passes it);
- ``monitor``: reading, the gate, then ``run_monitoring`` (stability by month: score PSI, CSI of
  every input, approval rate, grade mix; back-test, discrimination, early delinquency, vintages,
  roll rates; the lights and alerts); the model's reference profile is loaded before the clock;
- ``stage``: reading, then ``monitor_model`` (verify and load the model, the batch already scored,
  the gate, ``run_monitoring``) and ``write_monitoring`` (the CSV tables, alerts, summary and the
  HTML page) into a temporary folder: the monitor stage without its MLflow run.

Each child imports what its step needs and reads the first 1,000 rows of each file before the
clock starts (pyarrow and pandas load their conversion code on first use; these import seconds are
reported apart), then times its phases. Reported per step: wall seconds (median and fastest of the
repeats), the ratio to the read baseline, the phases (read, gate, monitoring, writing), rows per
second (applications plus history rows over the wall seconds; history rows over the gate's own
seconds), and the peak resident memory of the process (``ru_maxrss`` of the child, imports and
read included), with the resident size after the imports.

``--profile`` runs the ``gate`` and ``monitor`` steps once more under cProfile (not timed) and
writes the functions with the most own time, and the library's functions with the most
cumulative time, into the results.

Results go to benchmarks/results/monitoring.json and benchmarks/results/monitoring.md (and are
printed). The machine is shared: the load average before and after is recorded.

    python benchmarks/bench_monitoring.py [--applications 1000000] [--history-rows 10000000]
                                          [--repeats 1] [--profile]
    python benchmarks/bench_monitoring.py --quick   # 100,000 applications, 1,000,000 history rows
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "monitoring.json"
STEPS = ("read", "gate", "monitor", "stage")
MIB = 1024.0  # ru_maxrss is in KiB on Linux
BATCH_START = "2023-02-01"  # the generator's first month; the batch month is the 12th
BATCH_MONTH_INDEX = 11
MONTHS_ON_BOOK = 12  # observed after the application month (default_months_on_book)
CHUNK_LOANS = 200_000
QUICK = (100_000, 1_000_000)
PROFILE_TOP = 25


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# --------------------------------------------------------------------------- inputs (child)


def build_inputs(
    applications: int, history_rows: int, seed: int, model: Path, out_dir: Path
) -> dict[str, Any]:
    """Write batch.parquet and history.parquet into ``out_dir``; return what was built, with timings."""
    import datetime as dt

    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scoring.core.io import write_parquet
    from scoring.data.config import SyntheticDataConfig
    from scoring.data.performance import generate_performance
    from scoring.data.synthetic import generate_portfolio, month_starts
    from scoring.monitoring.monitor import score_for_monitoring
    from scoring.serving.registry import load_verified_model

    timings: dict[str, float] = {}
    config = SyntheticDataConfig(
        n_applications=applications,
        start_date=dt.date.fromisoformat(BATCH_START),
        months=BATCH_MONTH_INDEX + 1 + MONTHS_ON_BOOK,
        immature_months=0,
    )
    started = time.perf_counter()
    frame, truth = generate_portfolio(config, seed)
    starts = month_starts(config.start_date, config.months)
    month_start = starts[BATCH_MONTH_INDEX]
    days_in_month = int((starts[BATCH_MONTH_INDEX + 1] - month_start).astype(np.int64))
    dates = frame["application_date"].to_numpy().astype("datetime64[D]")
    day = (dates - dates.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) % days_in_month
    frame["application_date"] = (month_start + day.astype("timedelta64[D]")).astype("datetime64[ns]")
    timings["generate_applications_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    scorer, _, digest = load_verified_model(model)
    scored = score_for_monitoring(scorer, frame)
    timings["score_seconds"] = time.perf_counter() - started
    if len(scored.rejected):
        raise RuntimeError(f"the model refused {len(scored.rejected)} generated applications")
    batch_path = out_dir / "batch.parquet"
    started = time.perf_counter()
    write_parquet(batch_path, scored.frame)
    timings["write_batch_seconds"] = time.perf_counter() - started
    del scored

    # the booked loans: a random subset of the applications, in chunks, until history_rows rows
    started = time.perf_counter()
    order = np.random.default_rng([seed, 11]).permutation(len(frame))
    history_path = out_dir / "history.parquet"
    writer: pq.ParquetWriter | None = None
    rows = loans = 0
    reached = False  # the last chunk was cut: rows is history_rows less at most one loan's months
    try:
        for k, first in enumerate(range(0, len(order), CHUNK_LOANS)):
            if reached or rows >= history_rows:
                break
            take = np.sort(order[first : first + CHUNK_LOANS])
            part = generate_performance(
                frame.iloc[take].reset_index(drop=True),
                truth.iloc[take].reset_index(drop=True),
                config,
                seed + 1 + k,
            )
            if rows + len(part) > history_rows:  # cut at a loan boundary (the rows are sorted by loan)
                ids = part["loan_id"].to_numpy()
                ends = np.flatnonzero(np.append(ids[1:] != ids[:-1], True)) + 1
                keep = int(ends[ends <= history_rows - rows].max(initial=0))
                part = part.iloc[:keep]
                reached = True
            table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
            if writer is None:
                writer = pq.ParquetWriter(history_path, table.schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
            rows += len(part)
            loans += int(part["loan_id"].nunique())
    finally:
        if writer is not None:
            writer.close()
    timings["generate_and_write_history_seconds"] = time.perf_counter() - started
    if rows < history_rows and not reached:
        raise RuntimeError(
            f"{applications} applications give only {rows} history rows at {MONTHS_ON_BOOK} months on book; "
            f"expected {history_rows}: ask for more applications or fewer rows"
        )
    return {
        "applications": len(frame),
        "batch_month": str(pd.Timestamp(month_start).to_period("M")),
        "history_rows": rows,
        "history_loans": loans,
        "history_months": f"{pd.Timestamp(starts[BATCH_MONTH_INDEX + 1]):%Y-%m}.."
        f"{pd.Timestamp(starts[BATCH_MONTH_INDEX + MONTHS_ON_BOOK]):%Y-%m}",
        "model_digest": digest,
        "scored_whole_batch": True,
        "batch_file_mib": round(batch_path.stat().st_size / 2**20, 1),
        "history_file_mib": round(history_path.stat().st_size / 2**20, 1),
        "build_peak_rss_mib": round(_maxrss_kib() / MIB),
        **{k: round(v, 1) for k, v in timings.items()},
    }


# --------------------------------------------------------------------------- one step (child)


def _versions() -> dict[str, str]:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    return {"numpy": np.__version__, "pandas": pd.__version__, "pyarrow": pa.__version__}


def run_step(
    step: str, batch_path: Path, history_path: Path, model: Path, profile_out: Path | None
) -> dict[str, Any]:
    import logging

    logging.getLogger("scoring").setLevel(logging.WARNING)
    started = time.perf_counter()
    from scoring.config import load_params
    from scoring.core.io import read_parquet

    if step != "read":
        from scoring.data.history_gate import check_history
    if step in ("monitor", "stage"):
        # imported lazily by the performance rules; here, before the clock
        import scipy.stats  # noqa: F401
        import sklearn.metrics  # noqa: F401

        from scoring.monitor_files import monitor_model, write_monitoring
        from scoring.monitoring.monitor import run_monitoring
        from scoring.reporting import monitoring_page  # noqa: F401
        from scoring.serving.registry import load_verified_model
    params = load_params(REPO / "params.yaml")
    profile = spec = None
    if step == "monitor":  # the reference profile, outside the clock (the stage step loads it timed)
        scorer, profile, _ = load_verified_model(model)
        spec = scorer.spec
    # a first small read, untimed: pyarrow and pandas load their conversion code on first use
    import pyarrow.parquet as pq

    for path in (batch_path, history_path):
        next(pq.ParquetFile(path).iter_batches(batch_size=1000)).to_pandas()
    import_s = time.perf_counter() - started
    after_import = _rss_kib()

    profiler = None
    if profile_out is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    phases: dict[str, float] = {}
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    batch = read_parquet(batch_path)
    history = read_parquet(history_path)
    t1 = time.perf_counter()
    phases["read"] = t1 - t0
    if step in ("gate", "monitor"):
        ids = batch["application_id"].astype(str)
        amounts = batch.set_index(ids)["loan_amount"]
        gate = check_history(history, ids, None, amounts, params.validate_.performance)
        t2 = time.perf_counter()
        phases["gate"] = t2 - t1
        out["history_passed"] = gate.summary["n_passed"]
        out["history_quarantined"] = gate.summary["n_quarantined"]
        if step == "monitor":
            assert profile is not None and spec is not None
            result = run_monitoring(
                batch,
                profile,
                params.monitor,
                params.calibrate.tests,
                spec.id_column,
                spec.date_column,
                gate.passed,
            )
            phases["monitoring"] = time.perf_counter() - t2
            out["overall"] = result.alerts["overall"]
            out["lights"] = result.lights.drop(columns=["month"]).to_dict(orient="records")
    elif step == "stage":
        monitored = monitor_model(model, batch, params, history)
        t2 = time.perf_counter()
        phases["monitor_model"] = t2 - t1
        with tempfile.TemporaryDirectory(prefix="bench-monitoring-out-") as tmp:
            import inspect

            # as pipelines/monitor.py calls it (newer versions take the params, for the page's thresholds)
            extra = {"params": params} if "params" in inspect.signature(write_monitoring).parameters else {}
            paths = write_monitoring(monitored, tmp, model_label=params.export.model_name, **extra)
            phases["write_monitoring"] = time.perf_counter() - t2
            out["page_mib"] = round(paths["page"].stat().st_size / 2**20, 2)
        out["overall"] = monitored.result.alerts["overall"]
        out["history_passed"] = monitored.counts["history"]["n_passed"]
    wall = time.perf_counter() - t0
    if profiler is not None:
        profiler.disable()
        assert profile_out is not None
        profile_out.write_text(json.dumps(_profile_table(profiler)))
    return {
        "step": step,
        "applications": len(batch),
        "history_rows": len(history),
        "import_seconds": round(import_s, 2),
        "wall_seconds": round(wall, 3),
        "phases": {k: round(v, 3) for k, v in phases.items()},
        "after_import_rss_mib": round(after_import / MIB, 1),
        "peak_rss_mib": round(_maxrss_kib() / MIB, 1),
        "versions": _versions(),
        **out,
    }


def _profile_table(profiler: Any) -> dict[str, list[dict[str, Any]]]:
    """The functions with the most own time, and the library's with the most cumulative time."""
    import pstats

    stats = pstats.Stats(profiler)
    entries = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = filename
        for marker in ("/src/scoring/", "/site-packages/"):
            if marker in filename:
                where = filename.split(marker, 1)[1]
                where = ("scoring/" + where) if marker == "/src/scoring/" else where
        entries.append(
            {
                "function": f"{where}:{line}({name})",
                "ncalls": ncalls,
                "tottime": round(tottime, 3),
                "cumtime": round(cumtime, 3),
                "library": "/src/scoring/" in filename,
            }
        )
    by_own = sorted(entries, key=lambda e: -e["tottime"])[:PROFILE_TOP]
    by_cum = sorted((e for e in entries if e["library"]), key=lambda e: -e["cumtime"])[:PROFILE_TOP]
    return {"by_own_time": by_own, "library_by_cumulative_time": by_cum}


# --------------------------------------------------------------------------- parent


def _child(args: list[str], out: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, *args, "--child-out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "MPLBACKEND": "Agg"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_seconds"] = round(time.perf_counter() - started, 1)
    return result


def _machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = next(
        (
            int(x.split()[1])
            for x in Path("/proc/meminfo").read_text().splitlines()
            if x.startswith("MemTotal:")
        ),
        0,
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b > 0 else None


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    base = statistics.median(r["wall_seconds"] for r in runs["read"])
    base_peak = max(r["peak_rss_mib"] for r in runs["read"])
    out: dict[str, dict[str, Any]] = {}
    for step, results in runs.items():
        walls = [r["wall_seconds"] for r in results]
        wall = statistics.median(walls)
        first = results[0]
        n_rows = first["applications"] + first["history_rows"]
        phases = {k: round(statistics.median(r["phases"][k] for r in results), 2) for k in first["phases"]}
        entry: dict[str, Any] = {
            "wall_seconds": round(wall, 2),
            "fastest_wall_seconds": round(min(walls), 2),
            "ratio_to_read": _ratio(wall, base),
            "phases_seconds": phases,
            "rows_per_second": round(n_rows / wall),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
            "peak_over_read_peak_mib": round(max(r["peak_rss_mib"] for r in results) - base_peak, 1),
            "after_import_rss_mib": first["after_import_rss_mib"],
            "import_seconds": first["import_seconds"],
            "process_seconds": first["process_seconds"],
            "runs": len(results),
        }
        if "gate" in phases:
            entry["history_rows_per_gate_second"] = round(first["history_rows"] / phases["gate"])
        for key in ("overall", "history_passed", "history_quarantined", "page_mib", "lights"):
            if key in first:
                entry[key] = first[key]
        out[step] = entry
    return out


def markdown(doc: dict[str, Any]) -> str:
    m, inputs, steps = doc["machine"], doc["inputs"], doc["steps"]
    load = doc["load_average_before"][0], doc["load_average_after"][0]
    lines = [
        "# Monitoring benchmark (benchmarks/bench_monitoring.py)",
        "",
        f"Measured {doc['date']} on {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}, Python {m['python']}, pandas {doc['versions']['pandas']}, "
        f"pyarrow {doc['versions']['pyarrow']}; load average {load[0]} before and {load[1]} after "
        f"(1 min). Each step in a fresh process; median of {doc['repeats']} run(s).",
        "",
        f"Inputs: one application month ({inputs['batch_month']}) of {inputs['applications']:,} applications "
        f"scored with the exported model (the whole batch scored, {inputs['score_seconds']} s), "
        f"{inputs['batch_file_mib']} MiB of Parquet; {inputs['history_rows']:,} rows of performance history "
        f"of {inputs['history_loans']:,} booked loans of that month ({inputs['history_months']}, up to "
        f"{MONTHS_ON_BOOK} months on book), {inputs['history_file_mib']} MiB.",
        "",
        "| step | wall (s) | x read | phases (s) | rows/s | peak RSS (MiB) | over read's peak (MiB) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for step, e in steps.items():
        phases = ", ".join(f"{k} {v}" for k, v in e["phases_seconds"].items())
        lines.append(
            f"| {step} | {e['wall_seconds']} | {e['ratio_to_read']} | {phases} | {e['rows_per_second']:,} | "
            f"{e['peak_rss_mib']:,.0f} | {e['peak_over_read_peak_mib']:,.0f} |"
        )
    lines += [
        "",
        "read: both files with `scoring.core.io.read_parquet` (the baseline); gate: read + `check_history`; "
        "monitor: read + gate + `run_monitoring`; stage: read + `monitor_model` (model verified and loaded, "
        "gate, monitoring) + `write_monitoring` (tables, alerts, page), the monitor stage less MLflow. "
        "rows/s: applications plus history rows over the wall seconds. Imports before the clock: "
        + ", ".join(f"{s} {e['import_seconds']} s" for s, e in steps.items())
        + ".",
    ]
    if "gate" in steps:
        lines.append(
            f"\nThe gate's own work: {steps['gate']['history_rows_per_gate_second']:,} history rows/s; "
            f"{steps['gate'].get('history_quarantined', 0)} rows quarantined."
        )
    if "monitor" in steps and "lights" in steps["monitor"]:
        lights = steps["monitor"]["lights"]
        lines.append(f"\nLights of the month (overall {steps['monitor']['overall']}): {lights}.")
    for step, table in (doc.get("profile") or {}).items():
        lines += ["", f"cProfile, {step} (own time, top 10):", "", "| function | calls | own s | cum s |"]
        lines.append("|---|---:|---:|---:|")
        for e in table["by_own_time"][:10]:
            lines.append(f"| `{e['function']}` | {e['ncalls']} | {e['tottime']} | {e['cumtime']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--applications", type=int)
    parser.add_argument("--history-rows", type=int)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK[0]:,} applications, {QUICK[1]:,} rows")
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "pd_model")
    parser.add_argument("--profile", action="store_true", help="profile the gate and monitor steps too")
    parser.add_argument("--workdir", type=Path, help="where the inputs go (default: a temporary folder)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--step", choices=("build", *STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    default = QUICK if args.quick else (1_000_000, 10_000_000)
    applications = args.applications or default[0]
    history_rows = args.history_rows or default[1]

    if args.step is not None:  # a child
        assert args.workdir is not None and args.child_out is not None
        if args.step == "build":
            result = build_inputs(applications, history_rows, args.seed, args.model, args.workdir)
        else:
            result = run_step(
                args.step,
                args.workdir / "batch.parquet",
                args.workdir / "history.parquet",
                args.model,
                args.profile_out,
            )
        args.child_out.write_text(json.dumps(result))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    workdir.mkdir(parents=True, exist_ok=True)
    common = [
        "--applications",
        str(applications),
        "--history-rows",
        str(history_rows),
        "--seed",
        str(args.seed),
    ]
    common += ["--model", str(args.model), "--workdir", str(workdir)]
    try:
        print(
            f"building {applications:,} applications and {history_rows:,} history rows in {workdir}",
            flush=True,
        )
        inputs = _child([*common, "--step", "build"], workdir / "build.json")
        print(json.dumps(inputs), flush=True)
        _child([*common, "--step", "read"], workdir / "warmup.json")  # the page cache, untimed
        load_before = os.getloadavg()
        runs: dict[str, list[dict[str, Any]]] = {step: [] for step in STEPS}
        for repeat in range(args.repeats):
            for step in STEPS:
                result = _child([*common, "--step", step], workdir / f"{step}-{repeat}.json")
                runs[step].append(result)
                print(
                    f"{step}: {result['wall_seconds']} s {result['phases']}, "
                    f"peak {result['peak_rss_mib']} MiB",
                    flush=True,
                )
        load_after = os.getloadavg()
        profiles: dict[str, Any] = {}
        if args.profile:
            for step in ("gate", "monitor"):
                target = workdir / f"profile-{step}.json"
                _child(
                    [*common, "--step", step, "--profile-out", str(target)], workdir / f"profiled-{step}.json"
                )
                profiles[step] = json.loads(target.read_text())
                top = profiles[step]["by_own_time"][:5]
                print(
                    f"profile {step}: " + "; ".join(f"{e['function']} {e['tottime']} s" for e in top),
                    flush=True,
                )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "versions": runs["read"][0]["versions"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "repeats": args.repeats,
        "quick": args.quick,
        "seed": args.seed,
        "inputs": inputs,
        "steps": summarise(runs),
        "profile": profiles,
    }
    print(json.dumps(doc["steps"], indent=2))
    from scoring.core.figures import write_results

    write_results(args.output, doc, markdown(doc))
    print(f"written to {args.output} and {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
