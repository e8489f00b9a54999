"""Benchmark: serving the full scoring output, against plain ``booster.predict`` in the same run.

What is measured is the model ``make run`` exports (``--model``, default models/pd_model of
this checkout: run ``make run`` first), the champion as shipped, whatever candidate it is;
its kind, digest and path are recorded beside the figures.

Measured:

1. **Batch throughput** on ``--rows`` fresh applications (best of ``--repeats``, one thread,
   as the exported model runs):
   - ``booster_predict``: ``booster.predict(DMatrix(feature_matrix))`` on the already transformed
     feature matrix of the same rows (the baseline: the model's raw PD and nothing else);
   - ``full_without_reasons``: ``Scorer.score(raw, with_reasons=False)``: value checks, features,
     PD, calibration, grade, policy, limit, score, from raw applications;
   - ``full_with_reasons``: the same with the four reason codes and texts.
   Ratios are against ``booster_predict``; the issue's target is <= 3 without reasons.
   ``feature_transform`` (raw -> matrix) and ``reasons_only`` are reported to show where time goes.
2. **1M-row batch scoring**: ``--batch-rows`` applications (``--bad-share`` of them made
   impossible) written to Parquet, then ``scoring score`` in a fresh process (``--chunk-rows``
   per chunk, reasons on); its peak resident memory (``wait4`` rusage of that process), its wall
   time, and the reconciliation read back from the output files (scored + rejected == input).
   For scale: the in-memory size of the whole input frame, the same run on a fifth of the rows
   (bounded memory: the peak should not grow with the file), and the resident size of a process
   that only imports the package and MLflow and loads the model.
3. **Single-application latency**, p50 and p99 over ``--latency-requests`` calls of one row each
   (after a warm-up), of the shipped model: the library ``Scorer.score`` with and without
   reasons, the loaded MLflow pyfunc model
   (``predict``, schema enforcement included), and HTTP (``mlflow models serve --env-manager local``
   on loopback, one sequential client, request encoding and decoding included).

4. **HTTP load** (``load``): a bounded closed-loop load test of ``mlflow models serve`` on loopback,
   for each ``--load-workers`` count of server workers (default 1 and 2) and each
   ``--load-connections`` style (``keep-alive``: one ``http.client`` connection per client, reused;
   ``new``: a connection per request, as urllib or curl): 1, 8 and 32 concurrent clients (threads,
   no retries), sending ``--load-requests`` requests each of single applications and of batches of
   100 rows; a ``--load-bad-share`` of them is bad (an impossible value, text in a numeric field,
   or truncated JSON; a bad batch has one bad row). Per configuration: errors (connection errors,
   timeouts, 5xx), lost requests (sent but never answered), status-code counts, whether every
   bad payload got a 4xx and every good one a 200 with one prediction per row, throughput
   (answered requests/s, rows/s of the 200 answers) against the single-client configuration of
   the same server, and p50/p99 latency (send to last byte read) of the good requests, and of
   all. The acceptance is 0 errors and 0 lost requests at 32 clients, every bad payload 4xx.
   The clients run on the same machine as the server (they take CPU from it).

The machine is shared (see ``load_average``): figures are wall-clock on it.
Results go to benchmarks/results/serving.json with their provenance (and are printed); the load
section also to benchmarks/results/serving_load.md as a table. A partial run (``--only``) only
prints, unless ``--out`` names another file: the results file always holds one full run.

    python benchmarks/bench_serving.py [--model models/pd_model] [--rows 100000] [--batch-rows 1000000]
    python benchmarks/bench_serving.py --only latency-in-process   # a quick look while iterating
    python benchmarks/bench_serving.py --only load [--load-workers 1 2] [--load-requests 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serving.json"
LOAD_RESULTS_MD = REPO / "benchmarks" / "results" / "serving_load.md"
# Parts of the benchmark (--only); "latency-in-process" is "latency" without the HTTP server.
PARTS = ("throughput", "batch", "latency", "latency-in-process", "load")
LOAD_CLIENTS = (1, 8, 32)
# keep-alive: one connection per client, reused; new: a connection per request (as urllib, curl)
LOAD_CONNECTIONS = ("keep-alive", "new")
LOAD_PAYLOADS = {"single": 1, "batch_100": 100}  # rows per request
BAD_KINDS = ("invalid_value", "wrong_type", "malformed_json")


def _best(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _percentiles(times: list[float]) -> dict[str, float]:
    ms = np.asarray(times) * 1e3
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "n": len(times),
    }


def shipped_model(path: Path) -> dict[str, Any]:
    """What is being measured: the exported model's kind, digest and path, its files verified
    against its manifest as every load does."""
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.integrity import ModelIntegrityError, verify_model_dir

    try:
        verified = verify_model_dir(path)
    except ModelIntegrityError as exc:
        raise SystemExit(f"--model {path}: expected an exported model (run `make run` first): {exc}") from exc
    scorer = load_scorer(files_dir(path))
    return {
        "path": os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path),
        "kind": scorer.model.kind,
        "digest": verified.digest,
        "trees": _booster_of(scorer.model.estimator).num_boosted_rounds(),
    }


def _booster_of(estimator: Any) -> Any:
    """The XGBoost booster inside the champion (itself, or a blend's part): the baseline's model."""
    if hasattr(estimator, "booster"):
        return estimator.booster
    for part in getattr(estimator, "parts", dict)().values():
        if hasattr(part, "booster"):
            return part.booster
    raise SystemExit(
        f"expected a champion with an XGBoost booster for the baseline, got {type(estimator).__name__}"
    )


def throughput(model_path: Path, rows: int, seed: int, repeats: int) -> dict[str, Any]:
    import xgboost as xgb

    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio
    from scoring.serving.artifact import files_dir, load_scorer

    scorer = load_scorer(files_dir(model_path))
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=rows, immature_months=0), seed + 1)
    apps = apps.drop(columns="default_12m")
    matrix = scorer.model.feature_matrix(apps)
    booster = _booster_of(scorer.model.estimator)

    def plain() -> None:
        booster.predict(xgb.DMatrix(matrix, enable_categorical=True, nthread=1))

    timings = {
        "booster_predict": _best(plain, repeats),
        "feature_transform": _best(lambda: scorer.model.feature_matrix(apps), repeats),
        "reasons_only": _best(lambda: scorer.reasons.reasons(scorer.model, matrix), repeats),  # type: ignore[union-attr]
        "full_without_reasons": _best(lambda: scorer.score(apps, with_reasons=False), repeats),
        "full_with_reasons": _best(lambda: scorer.score(apps), repeats),
    }
    base = timings["booster_predict"]
    return {
        "rows": rows,
        "trees": int(booster.num_boosted_rounds()),
        "repeats": repeats,
        "seconds": {k: round(v, 4) for k, v in timings.items()},
        "rows_per_second": {k: round(rows / v) for k, v in timings.items()},
        "ratio_to_booster_predict": {
            k: round(v / base, 3) for k, v in timings.items() if k != "booster_predict"
        },
        "target_ratio_without_reasons": 3.0,
    }


def _summary_line(stderr: str) -> str:
    import re

    found = re.search(r"input [\d,]+ = scored [\d,]+ \+ rejected [\d,]+", " ".join(stderr.split()))
    return found.group(0) if found else ""


def _peak_rss_mb(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``; its peak resident memory (MiB, wait4 rusage), wall seconds and stderr."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if status != 0:
        raise RuntimeError(f"{command[:3]} failed ({status}): {stderr[-3000:]}")
    return usage.ru_maxrss / 1024, wall, stderr  # Linux: ru_maxrss in KiB


def batch_scoring(
    model_path: Path, root: Path, rows: int, bad_share: float, chunk_rows: int, seed: int
) -> dict[str, Any]:
    """The CLI on ``rows`` applications, on a fifth of them (same chunk size), and a load-only baseline."""
    full = _batch_once(model_path, root, rows, bad_share, chunk_rows, seed)
    fifth = _batch_once(model_path, root, rows // 5, bad_share, chunk_rows, seed)
    load_only = (
        "import scoring.cli, mlflow; from scoring.serving.artifact import files_dir, load_scorer; "
        f"load_scorer(files_dir(r'{model_path}'))"
    )
    baseline_mb, _, _ = _peak_rss_mb([sys.executable, "-c", load_only])
    return {
        **full,
        "peak_rss_mb_on_a_fifth_of_the_rows": fifth["peak_rss_mb"],
        "rows_of_that_run": fifth["rows"],
        "that_run_reconciles": fifth["reconciles"],
        "rss_mb_after_imports_and_model_load": round(baseline_mb, 1),
    }


def _batch_once(
    model_path: Path, root: Path, rows: int, bad_share: float, chunk_rows: int, seed: int
) -> dict[str, Any]:
    source = root / "batch.parquet"
    make = f"""
import sys, numpy as np, pandas as pd
from scoring.data.config import SyntheticDataConfig
from scoring.core.io import write_parquet
from scoring.data.synthetic import generate_portfolio
apps, _ = generate_portfolio(SyntheticDataConfig(n_applications={rows}, immature_months=0), {seed + 2})
apps = apps.drop(columns="default_12m")
n_bad = int({rows} * {bad_share})
bad = np.linspace(0, {rows} - 1, n_bad).astype(np.int64) if n_bad else np.array([], dtype=np.int64)
apps["age"] = apps["age"].astype("float64")
apps.loc[bad, "age"] = 150.0
print(int(apps.memory_usage(deep=True).sum()), n_bad)
write_parquet(r"{source}", apps)
"""
    made = subprocess.run([sys.executable, "-c", make], capture_output=True, text=True, check=True)
    frame_bytes, n_bad = (int(v) for v in made.stdout.split())
    out, rejected = root / "scores.parquet", root / "rejected.parquet"
    command = [
        str(Path(sys.executable).parent / "scoring"),
        "score",
        "--model",
        str(model_path),
        "--input",
        str(source),
        "--output",
        str(out),
        "--rejected",
        str(rejected),
        "--chunk-rows",
        str(chunk_rows),
    ]
    peak_mb, wall, stderr = _peak_rss_mb(command)
    import pyarrow.parquet as pq

    n_scored = pq.ParquetFile(out).metadata.num_rows
    n_rejected = pq.ParquetFile(rejected).metadata.num_rows
    return {
        "rows": rows,
        "chunk_rows": chunk_rows,
        "bad_rows_injected": n_bad,
        "scored": int(n_scored),
        "rejected": int(n_rejected),
        "reconciles": bool(n_scored + n_rejected == rows and n_rejected == n_bad),
        "cli_summary": _summary_line(stderr),
        "wall_seconds": round(wall, 2),
        "rows_per_second": round(rows / wall),
        "peak_rss_mb": round(peak_mb, 1),
        "whole_input_frame_mb": round(frame_bytes / 2**20, 1),
        "input_file_mb": round(source.stat().st_size / 2**20, 1),
        "reasons": True,
    }


def latency(model_path: Path, n: int, seed: int, http: bool = True) -> dict[str, Any]:
    import mlflow.pyfunc

    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.http import dataframe_split, post_json, start_server, stop_server

    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=max(n, 100), immature_months=0), seed + 3)
    scorer = load_scorer(files_dir(model_path))
    # what a caller sends: the id and the model's inputs (extra columns make MLflow log a warning per call)
    apps = apps[[scorer.rules.id_column, *scorer.model.features.input_columns_]]
    rows = [apps.iloc[[i % len(apps)]] for i in range(n)]
    pyfunc = mlflow.pyfunc.load_model(str(model_path))
    results: dict[str, Any] = {}

    def timed(fn: Any) -> dict[str, float]:
        for row in rows[:10]:
            fn(row)
        times = []
        for row in rows:
            start = time.perf_counter()
            fn(row)
            times.append(time.perf_counter() - start)
        return _percentiles(times)

    results["in_process_scorer_with_reasons"] = timed(lambda r: scorer.score(r))
    results["in_process_scorer_without_reasons"] = timed(lambda r: scorer.score(r, with_reasons=False))
    results["in_process_mlflow_pyfunc_with_reasons"] = timed(lambda r: pyfunc.predict(r))
    results["target_in_process_p50_ms"] = 10.0
    if not http:
        return results
    bodies = {id(r): dataframe_split(r) for r in rows}
    start = time.perf_counter()
    process, url = start_server(model_path)
    startup = time.perf_counter() - start
    try:

        def call(r: pd.DataFrame) -> None:
            status, answer = post_json(url, bodies[id(r)])
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {answer}")

        results["http_mlflow_serve_with_reasons"] = timed(call)
    finally:
        stop_server(process)
    results["http_server_startup_seconds"] = round(startup, 1)
    return results


def _load_payloads(
    model_path: Path, n_requests: int, rows_per_request: int, bad_share: float, seed: int
) -> list[tuple[bytes, int, str]]:
    """``n_requests`` request bodies of ``rows_per_request`` fresh applications each: (body, rows, kind).

    ``kind`` is "good" or one of BAD_KINDS; the bad requests (``bad_share`` of them, spread
    evenly, the kinds in turn) carry one bad row (age 150 or "forty") or are cut off mid-JSON.
    """
    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.http import dataframe_split

    scorer = load_scorer(files_dir(model_path))
    pool_rows = max(min(n_requests * rows_per_request, 20_000), 100)
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=pool_rows, immature_months=0), seed + 4)
    split = dataframe_split(apps[[scorer.rules.id_column, *scorer.model.features.input_columns_]])
    columns, data = split["dataframe_split"]["columns"], split["dataframe_split"]["data"]
    age = columns.index("age")
    n_bad = round(n_requests * bad_share)
    bad_at = {
        int(i): BAD_KINDS[k % len(BAD_KINDS)] for k, i in enumerate(np.linspace(0, n_requests - 1, n_bad))
    }
    payloads = []
    for i in range(n_requests):
        first = (i * rows_per_request) % (pool_rows - rows_per_request + 1)
        rows = [list(row) for row in data[first : first + rows_per_request]]
        kind = bad_at.get(i, "good")
        if kind in ("invalid_value", "wrong_type"):
            rows[len(rows) // 2][age] = 150 if kind == "invalid_value" else "forty"
        body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()
        if kind == "malformed_json":
            body = body[: len(body) // 2]
        payloads.append((body, rows_per_request, kind))
    return payloads


def _post(
    host: str,
    port: int,
    body: bytes,
    timeout: float,
    local: threading.local,
    opened: list[http.client.HTTPConnection],
    keep_alive: bool,
) -> dict[str, Any]:
    """One POST /invocations on this thread's connection (kept or new); never retried."""
    conn = getattr(local, "conn", None)
    sent = False
    start = time.perf_counter()  # a new connection's set-up is part of the request's time
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        opened.append(conn)
    headers = {"Content-Type": "application/json"}
    if not keep_alive:
        headers["Connection"] = "close"
    try:
        conn.request("POST", "/invocations", body=body, headers=headers)
        sent = True
        response = conn.getresponse()
        answer = response.read()
        if not keep_alive:
            conn.close()
            local.conn = None
        return {
            "sent": True,
            "status": response.status,
            "seconds": time.perf_counter() - start,
            "answer": answer,
        }
    except TimeoutError:
        error = "timeout"
    except (OSError, http.client.HTTPException):
        error = "connection_error"
    conn.close()
    local.conn = None
    return {"sent": sent, "status": None, "error": error}


def _load_config(
    host: str,
    port: int,
    payloads: list[tuple[bytes, int, str]],
    clients: int,
    timeout: float,
    keep_alive: bool = True,
) -> dict[str, Any]:
    """``clients`` closed-loop clients working through ``payloads``; the figures of that run."""
    local, opened = threading.local(), list[http.client.HTTPConnection]()

    def call(payload: tuple[bytes, int, str]) -> dict[str, Any]:
        return _post(host, port, payload[0], timeout, local, opened, keep_alive)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        outcomes = list(pool.map(call, payloads))
    wall = time.perf_counter() - start
    for conn in opened:
        conn.close()

    statuses: dict[str, int] = {}
    good_times, all_times = [], []
    counts = dict.fromkeys(
        ("connection_errors", "timeouts", "http_5xx", "lost", "good_not_200", "bad_not_4xx", "wrong_answers"),
        0,
    )
    rows_scored = 0
    for (_, rows, kind), out in zip(payloads, outcomes, strict=True):
        status = out["status"]
        if status is None:
            counts["timeouts" if out["error"] == "timeout" else "connection_errors"] += 1
            counts["lost"] += int(out["sent"])
            counts["good_not_200" if kind == "good" else "bad_not_4xx"] += 1
            continue
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        all_times.append(out["seconds"])
        counts["http_5xx"] += int(status >= 500)
        if kind == "good":
            if status != 200:
                counts["good_not_200"] += 1
                continue
            good_times.append(out["seconds"])
            if len(json.loads(out["answer"])["predictions"]) == rows:
                rows_scored += rows
            else:
                counts["wrong_answers"] += 1
        elif not 400 <= status < 500:
            counts["bad_not_4xx"] += 1
    answered = len(all_times)
    n_bad = sum(kind != "good" for _, _, kind in payloads)
    return {
        "clients": clients,
        "connection": "keep-alive" if keep_alive else "new",
        "requests": len(payloads),
        "bad_requests": n_bad,
        "bad_by_kind": {k: sum(kind == k for _, _, kind in payloads) for k in BAD_KINDS},
        "sent": sum(bool(out["sent"]) for out in outcomes),
        "answered": answered,
        "status_counts": dict(sorted(statuses.items())),
        "errors": counts["connection_errors"] + counts["timeouts"] + counts["http_5xx"],
        **counts,
        "every_bad_payload_4xx": counts["bad_not_4xx"] == 0,
        "every_good_payload_200": counts["good_not_200"] == 0 and counts["wrong_answers"] == 0,
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(answered / wall, 1),
        "rows_per_second": round(rows_scored / wall, 1),
        "latency_good": _percentiles(good_times) if good_times else None,
        "latency_all": _percentiles(all_times) if all_times else None,
    }


def _group_rss_mb(pgid: int) -> float | None:
    """Resident memory of every process in the process group ``pgid`` (the server and its workers)."""
    total_kb, found = 0, False
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            status = (proc / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kb += int(line.split()[1])
                found = True
    return round(total_kb / 1024, 1) if found else None


def _serve_and_load(
    model_path: Path,
    root: Path,
    workers: int,
    payloads: dict[str, list[tuple[bytes, int, str]]],
    connections: list[str],
    timeout: float,
) -> dict[str, Any]:
    """Start ``mlflow models serve --workers N``, warm it up, run every configuration on it."""
    from scoring.serving.http import free_port, serve_command, server_env, stop_server, wait_until_ready

    host = "127.0.0.1"
    port = free_port(host)
    # The server's log goes to a file: a pipe nobody reads would fill up and block it under load.
    log_path = root / f"serve_workers_{workers}.log"
    start = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(model_path, host, port, workers=workers),
            env=server_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_until_ready(f"http://{host}:{port}", process, timeout=240.0)
            # /ping answers once one worker is up; the others may still be loading the model
            deadline = time.monotonic() + 240.0
            while log_path.read_text(errors="replace").count("Application startup complete") < workers:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"not all {workers} workers started")
                time.sleep(0.25)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{log_path.read_text(errors='replace')[-3000:]}") from exc
        startup = time.perf_counter() - start
        # warm-up (not counted): enough concurrent requests to reach every worker
        for rows in payloads.values():
            warm = [p for p in rows if p[2] == "good"][: 8 * workers]
            _load_config(host, port, warm, 4 * workers, timeout)
        configs: list[dict[str, Any]] = []
        for connection in connections:
            for name, rows in payloads.items():
                base: dict[str, Any] = {}
                for clients in LOAD_CLIENTS:
                    run = {
                        "workers": workers,
                        "payload": name,
                        **_load_config(host, port, rows, clients, timeout, connection == "keep-alive"),
                    }
                    base = base or run  # the single-client configuration (LOAD_CLIENTS[0])
                    run["throughput_ratio_to_1_client"] = (
                        round(run["requests_per_second"] / base["requests_per_second"], 2)
                        if base["requests_per_second"]
                        else None
                    )
                    configs.append(run)
                    print(
                        f"load workers={workers} {connection} {name} clients={clients}: "
                        f"{run['requests_per_second']} req/s, {run['rows_per_second']} rows/s, "
                        f"errors {run['errors']}, lost {run['lost']}, statuses {run['status_counts']}, "
                        f"p50/p99 {(run['latency_good'] or {}).get('p50_ms')}/"
                        f"{(run['latency_good'] or {}).get('p99_ms')} ms",
                        flush=True,
                    )
        rss = _group_rss_mb(process.pid)
        alive = process.poll() is None
    finally:
        stop_server(process)
    return {
        "workers": workers,
        "startup_seconds": round(startup, 1),
        "server_rss_mb_after_load": rss,
        "server_alive_after_load": alive,
        "server_log_bytes": log_path.stat().st_size,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "configs": configs,
    }


def load_test(
    model_path: Path,
    root: Path,
    n_requests: int,
    bad_share: float,
    workers_list: list[int],
    connections: list[str],
    timeout: float,
    seed: int,
) -> dict[str, Any]:
    load_before = os.getloadavg()
    started = time.perf_counter()
    payloads = {
        name: _load_payloads(model_path, n_requests, rows, bad_share, seed)
        for name, rows in LOAD_PAYLOADS.items()
    }
    servers = {
        str(w): _serve_and_load(model_path, root, w, payloads, connections, timeout) for w in workers_list
    }
    every = [run for server in servers.values() for run in server["configs"]]

    def key(run: dict[str, Any]) -> tuple[str, str, int]:
        return run["connection"], run["payload"], run["clients"]

    first = {key(run): run for run in servers[str(workers_list[0])]["configs"]}
    for run in every:
        if run["workers"] != workers_list[0]:
            base = first[key(run)]["requests_per_second"]
            run[f"throughput_ratio_to_{workers_list[0]}_worker"] = (
                round(run["requests_per_second"] / base, 2) if base else None
            )
    top = LOAD_CLIENTS[-1]
    at_top = [run for run in every if run["clients"] == top]
    acceptance = {
        f"errors_at_{top}_clients": sum(run["errors"] for run in at_top),
        f"lost_at_{top}_clients": sum(run["lost"] for run in at_top),
        "every_bad_payload_4xx": all(run["every_bad_payload_4xx"] for run in every),
        "every_good_payload_200": all(run["every_good_payload_200"] for run in every),
        "servers_alive_after_load": all(server["server_alive_after_load"] for server in servers.values()),
    }
    acceptance["passed"] = (
        acceptance[f"errors_at_{top}_clients"] == 0
        and acceptance[f"lost_at_{top}_clients"] == 0
        and all(v for k, v in acceptance.items() if k.startswith(("every", "servers")))
    )
    return {
        "date": time.strftime("%Y-%m-%d"),
        "command": "python benchmarks/bench_serving.py " + " ".join(sys.argv[1:]),
        "cpus": os.cpu_count(),
        "model": "booster (pd_model), reasons on",
        "requests_per_configuration": n_requests,
        "bad_share": bad_share,
        "rows_per_request": dict(LOAD_PAYLOADS),
        "clients": list(LOAD_CLIENTS),
        "connections": list(connections),
        "client": "one thread per client, closed loop, http.client, no retries; keep-alive: one "
        "connection per client, reused; new: a new connection per request; clients and server "
        "share the machine",
        "request_timeout_seconds": timeout,
        "servers": servers,
        "acceptance": acceptance,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }


def load_markdown(load: dict[str, Any]) -> str:
    """The load section as a readable table."""
    workers = list(load["servers"])
    ratio_key = f"throughput_ratio_to_{workers[0]}_worker"
    lines = [
        "# HTTP load test (`benchmarks/bench_serving.py --only load`)",
        "",
        f"{load['date']}, {load['cpus']} cores shared by clients and server, load average "
        f"{load['load_average_before'][0]} before and {load['load_average_after'][0]} after; "
        f"`mlflow models serve --env-manager local` on loopback, {load['model']}. "
        f"{load['requests_per_configuration']} requests per configuration, "
        f"{load['bad_share']:.0%} of them bad ({', '.join(BAD_KINDS)}); {load['client']}. "
        "Throughput counts answered requests and the rows of the 200 answers; latency (send to "
        "last byte) is over the good requests. x1 client: throughput against 1 client on the "
        f"same server; x{workers[0]} worker: against the same configuration with {workers[0]} worker.",
        "",
        "| workers | connection | payload | clients | statuses | errors | lost | bad 4xx | good 200 "
        f"| req/s | rows/s | x1 client | x{workers[0]} worker | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for server in load["servers"].values():
        for run in server["configs"]:
            statuses = ", ".join(f"{k}: {v}" for k, v in run["status_counts"].items())
            latency = run["latency_good"] or {}
            n_good = run["requests"] - run["bad_requests"]
            lines.append(
                f"| {run['workers']} | {run['connection']} | {run['payload']} | {run['clients']} "
                f"| {statuses} | {run['errors']} | {run['lost']} "
                f"| {run['bad_requests'] - run['bad_not_4xx']}/{run['bad_requests']} "
                f"| {n_good - run['good_not_200'] - run['wrong_answers']}/{n_good} "
                f"| {run['requests_per_second']:,.1f} | {run['rows_per_second']:,.0f} "
                f"| {run['throughput_ratio_to_1_client']} | {run.get(ratio_key) or '-'} "
                f"| {latency.get('p50_ms', '-')} | {latency.get('p99_ms', '-')} |"
            )
    lines += [
        "",
        "| workers | server start s | server RSS MiB after the load | alive after |",
        "|---|---|---|---|",
    ]
    for w, server in load["servers"].items():
        lines.append(
            f"| {w} | {server['startup_seconds']} | {server['server_rss_mb_after_load']} "
            f"| {server['server_alive_after_load']} |"
        )
    acc = load["acceptance"]
    lines += ["", "Acceptance: " + ", ".join(f"{k} = {v}" for k, v in acc.items()) + ".", ""]
    return "\n".join(lines)


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures README and docs quote, one key each (what is missing was not measured)."""
    out: dict[str, Any] = {}
    latency = result.get("latency", {})
    for key, name in (
        ("in_process_scorer_with_reasons", "in_process_p50_ms"),
        ("in_process_scorer_without_reasons", "in_process_without_reasons_p50_ms"),
        ("in_process_mlflow_pyfunc_with_reasons", "mlflow_pyfunc_p50_ms"),
        ("http_mlflow_serve_with_reasons", "http_p50_ms"),
    ):
        if key in latency:
            out[name] = latency[key]["p50_ms"]
    load = result.get("load")
    if load:
        one = [
            c
            for c in load["servers"][str(min(map(int, load["servers"])))]["configs"]
            if c["payload"] == "single"
        ]
        rates = [c["requests_per_second"] for c in one]
        out["load_one_worker_single_requests_per_second"] = {"min": min(rates), "max": max(rates)}
        out["load_acceptance"] = load["acceptance"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=REPO / "models" / "pd_model", help="the exported model (make run's)"
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--bad-share", type=float, default=0.001)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--load-requests", type=int, default=200, help="requests per load configuration")
    parser.add_argument("--load-bad-share", type=float, default=0.1)
    parser.add_argument(
        "--load-workers",
        type=int,
        nargs="+",
        default=[1, 2],
        help="server worker counts to load (first: baseline)",
    )
    parser.add_argument(
        "--load-connections", choices=LOAD_CONNECTIONS, nargs="+", default=list(LOAD_CONNECTIONS)
    )
    parser.add_argument(
        "--load-timeout", type=float, default=30.0, help="client timeout per request, seconds"
    )
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only this part (repeatable; default: all). A partial run prints its figures and "
        "writes --out only when --out is given, so the results file keeps one full run; a partial "
        "run with load still writes its load section into the results file (the rest kept).",
    )
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    partial = not {"throughput", "batch", "latency", "load"} <= parts
    if partial and args.out == RESULTS:
        args.out = None

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        model_path = args.model.resolve()
        result: dict[str, Any] = {
            "model": shipped_model(model_path),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "date": time.strftime("%Y-%m-%d"),
            "seed": args.seed,
            "command": "python benchmarks/bench_serving.py " + " ".join(sys.argv[1:]),
        }
        if "throughput" in parts:
            result["throughput"] = throughput(model_path, args.rows, args.seed, args.repeats)
            print(json.dumps(result["throughput"], indent=2), flush=True)
        if "batch" in parts:
            result["batch_1m"] = batch_scoring(
                model_path, root, args.batch_rows, args.bad_share, args.chunk_rows, args.seed
            )
            print(json.dumps(result["batch_1m"], indent=2), flush=True)
        if "latency" in parts or "latency-in-process" in parts:
            result["latency"] = latency(model_path, args.latency_requests, args.seed, http="latency" in parts)
        if "load" in parts:
            result["load"] = load_test(
                model_path,
                root,
                args.load_requests,
                args.load_bad_share,
                args.load_workers,
                args.load_connections,
                args.load_timeout,
                args.seed,
            )
    result["summary"] = summary(result)
    result["machine"]["load_average_before"] = [round(v, 2) for v in load_before]
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    if args.out is not None:
        from scoring.core.figures import provenance_line, write_results
        from scoring.core.io import write_text

        record = write_results(args.out, result)
        if "load" in result:
            page = LOAD_RESULTS_MD if args.out == RESULTS else args.out.with_suffix(".load.md")
            write_text(page, load_markdown(result["load"]) + "\n" + provenance_line(record) + "\n")
    print(json.dumps(result, indent=2))
    if "load" in result:
        print(load_markdown(result["load"]))


if __name__ == "__main__":
    main()
