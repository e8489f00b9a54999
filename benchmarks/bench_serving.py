"""Benchmark: serving the full scoring output, against plain ``booster.predict`` in the same run.

Set-up (in this process): a synthetic portfolio (``--train-rows``, ``--seed``) trains an XGBoost
booster with the repository's ``train.xgboost`` settings (early stopping on a validation part),
the calibrator and master scale are fitted on that part, the reason coder on the training part
(``reasons`` of params.yaml), and the model is exported as the pipeline's export stage does.

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
   (after a warm-up), for the booster and, in process, for the blend of scorecard and booster
   (scorecard weight 0.1) that the default pipeline ships as champion: the library
   ``Scorer.score`` with and without reasons, the loaded MLflow pyfunc model
   (``predict``, schema enforcement included), and HTTP (``mlflow models serve --env-manager local``
   on loopback, one sequential client, request encoding and decoding included).

The machine is shared (see ``load_average``): figures are wall-clock on it.
Results go to benchmarks/results/serving.json (and are printed).

    python benchmarks/bench_serving.py [--rows 100000] [--batch-rows 1000000] [--seed 20261128]
    python benchmarks/bench_serving.py --only latency-in-process   # a quick look while iterating
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serving.json"
# Parts of the benchmark (--only); "latency-in-process" is "latency" without the HTTP server.
PARTS = ("throughput", "batch", "latency", "latency-in-process")


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


BLEND_SCORECARD_WEIGHT = 0.1  # the default pipeline's champion: this blend (README, reports/train.json)


def build_model(root: Path, train_rows: int, seed: int) -> tuple[Path, Path, Path]:
    from scoring.config import load_params
    from scoring.core.contract import SYNTHETIC_SPEC
    from scoring.core.io import write_json
    from scoring.data.synthetic import generate_portfolio
    from scoring.decision.risk import fit_risk_layer
    from scoring.explain.reasons import ReasonCoder
    from scoring.export import export_model
    from scoring.features.transformer import ApplicationFeatures
    from scoring.models.candidates.blend import BlendEstimator
    from scoring.models.candidates.scorecard import train_scorecard
    from scoring.models.candidates.xgboost import BoosterEstimator, train_xgboost
    from scoring.models.model import PDModel
    from scoring.serving.bundle import ModelBundle
    from scoring.serving.scorer import model_info

    params = load_params(REPO / "params.yaml")
    config = params.data.synthetic.model_copy(update={"n_applications": train_rows, "immature_months": 0})
    apps, _ = generate_portfolio(config, seed)
    target = SYNTHETIC_SPEC.target_column
    n_train = int(len(apps) * 0.7)
    train, valid = apps.iloc[:n_train], apps.iloc[n_train:]
    features = ApplicationFeatures(exclude_columns=SYNTHETIC_SPEC.non_feature_columns).fit(train)
    monotone = {k: (1 if v == "increasing" else -1) for k, v in params.train.monotone_risk.items()}
    result = train_xgboost(
        features.transform(train),
        train[target],
        features.transform(valid),
        valid[target],
        params.train.xgboost,
        seed=seed,
        monotone=monotone,
    )
    booster = BoosterEstimator(result.booster)
    card = train_scorecard(
        features.transform(train), train[target], params.train.scorecard, params.train.monotone_risk, seed
    )
    run_id = "bench" + "0" * 27
    exported = []
    for name, model in (
        ("pd_model", PDModel(features, booster)),
        ("pd_model_blend", PDModel(features, BlendEstimator(card, booster, BLEND_SCORECARD_WEIGHT), "blend")),
    ):
        model_dir = root / f"models_{name}"
        ModelBundle(model_dir).save_model(model)
        layer = fit_risk_layer(
            model.predict_pd(valid), valid[target].to_numpy(dtype=float), params.calibrate, seed
        )
        write_json(model_dir / "calibrator.json", layer.calibrator.to_dict())
        write_json(model_dir / "master_scale.json", layer.scale.to_dict())
        write_json(model_dir / "reasons.json", ReasonCoder.fit(model, train, params.reasons).to_dict())
        write_json(model_dir / "run.json", {"run_id": run_id})
        exported.append(
            export_model(
                model_dir, root / name, SYNTHETIC_SPEC, valid, model_info(params, {"run_id": run_id}), params
            )
        )
    return root / "models_pd_model", exported[0], exported[1]


def throughput(model_path: Path, rows: int, seed: int, repeats: int) -> dict[str, Any]:
    import xgboost as xgb

    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio
    from scoring.serving.artifact import files_dir, load_scorer

    scorer = load_scorer(files_dir(model_path))
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=rows, immature_months=0), seed + 1)
    apps = apps.drop(columns="default_12m")
    matrix = scorer.model.feature_matrix(apps)
    booster = scorer.model.estimator.booster  # type: ignore[attr-defined]

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


def latency(
    model_path: Path, n: int, seed: int, http: bool = True, blend_path: Path | None = None
) -> dict[str, Any]:
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
    if blend_path is not None:
        # What the default pipeline ships: the blend reads the scorecard as well as the booster.
        blend = load_scorer(files_dir(blend_path))
        blend_pyfunc = mlflow.pyfunc.load_model(str(blend_path))
        results["blend_scorecard_weight"] = BLEND_SCORECARD_WEIGHT
        results["blend_in_process_scorer_with_reasons"] = timed(lambda r: blend.score(r))
        results["blend_in_process_scorer_without_reasons"] = timed(
            lambda r: blend.score(r, with_reasons=False)
        )
        results["blend_in_process_mlflow_pyfunc_with_reasons"] = timed(lambda r: blend_pyfunc.predict(r))
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-rows", type=int, default=30_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-rows", type=int, default=1_000_000)
    parser.add_argument("--bad-share", type=float, default=0.001)
    parser.add_argument("--chunk-rows", type=int, default=100_000)
    parser.add_argument("--latency-requests", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        choices=PARTS,
        action="append",
        help="run only this part (repeatable; default: all). A partial run prints its figures and "
        "writes --out only when --out is given, so the results file keeps one full run.",
    )
    args = parser.parse_args()
    parts = set(args.only or PARTS)
    partial = not {"throughput", "batch", "latency"} <= parts
    if partial and args.out == RESULTS:
        args.out = None

    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        root = Path(tmp)
        _, model_path, blend_path = build_model(root, args.train_rows, args.seed)
        result: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "date": time.strftime("%Y-%m-%d"),
            "seed": args.seed,
            "train_rows": args.train_rows,
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
            result["latency"] = latency(
                model_path, args.latency_requests, args.seed, http="latency" in parts, blend_path=blend_path
            )
    result["machine"]["load_average_before"] = [round(v, 2) for v in load_before]
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
