"""Benchmark (issue 17, first part): batch scoring on Dask against the pandas path, by size.

So far only batch scoring runs on the dask engine; this measures it on the pipeline's exported
model (``--model``, default models/pd_model: run `make run` first). For each size in ``--sizes``:
synthetic applications (``generate_portfolio``, the seed of params.yaml, in blocks of 1M rows
with a seed each, application ids renumbered) written once to Parquet, then scored, each step in
a fresh process:

- ``pandas``: ``scoring.serving.batch.score_file`` (chunks of 100,000 rows in one process);
- ``dask``: ``scoring.serving.batch_dask.score_file_dask`` on a LocalCluster of ``--workers``
  worker processes, one thread each (the cluster's start-up is timed apart).

Reported: wall seconds of the scoring (model verified and loaded before the clock), rows per
second, the ratio dask / pandas, the growth from one size to the next, and the peak resident
memory of the scoring process and (dask) of each worker. Figures go to
benchmarks/results/scoring_scale.json and benchmarks/results/scoring_scale.md.

    python benchmarks/bench_scoring_scale.py [--sizes 100000 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scoring_scale.json"
BLOCK = 1_000_000
MIB = 1024.0


def build_input(n: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from scoring.config import load_params
    from scoring.data.synthetic import generate_portfolio

    params = load_params(REPO / "params.yaml")
    writer = None
    done = 0
    try:
        while done < n:
            rows = min(BLOCK, n - done)
            config = params.data.synthetic.model_copy(update={"n_applications": rows})
            apps, _ = generate_portfolio(config, params.seed + done // BLOCK)
            apps = apps.drop(columns=["default_12m"], errors="ignore")
            apps["application_id"] = [f"S{done + i:09d}" for i in range(rows)]
            table = pa.Table.from_pandas(apps, preserve_index=False)
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=100_000)
            done += rows
    finally:
        if writer is not None:
            writer.close()


def child(step: str, model: str, source: str, workers: int) -> dict[str, Any]:
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.integrity import model_digest

    scorer = load_scorer(files_dir(model))
    out = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    result: dict[str, Any] = {}
    if step == "pandas":
        from scoring.serving.batch import score_file

        start = time.perf_counter()
        counts = score_file(scorer, source, out / "s.parquet", out / "r.parquet")
        result["seconds"] = time.perf_counter() - start
    else:
        from scoring.core.cluster import DaskConfig, dask_client
        from scoring.serving.batch_dask import score_file_dask

        start = time.perf_counter()
        with dask_client(DaskConfig(n_workers=workers)) as client:
            result["cluster_start_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            counts = score_file_dask(client, model, model_digest(model), scorer, source, out / "s", out / "r")
            result["seconds"] = time.perf_counter() - start
            peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
            result["worker_peak_rss_mib"] = sorted(round(v / MIB) for v in peaks.values())
    result["rows"] = counts.n_input
    result["scored"] = counts.n_scored
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB)
    return result


def run_child(step: str, model: str, source: Path, workers: int) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", step, "--model", model, "--source", str(source),
         "--workers", str(workers)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Scale benchmark: batch scoring on Dask against pandas (benchmarks/bench_scoring_scale.py)",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['platform']}), load average "
        f"{m['load_average'][0]:.2f} before. Model: `{doc['model']}`; LocalCluster of {doc['workers']} "
        "worker processes, one thread each; input Parquet, row groups of 100,000.",
        "",
        "| rows | pandas s | dask s | dask / pandas | pandas rows/s | dask rows/s | pandas peak MiB "
        "| dask worker peaks MiB | cluster start s |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for size in doc["sizes"]:
        p, d = size["pandas"], size["dask"]
        ratio = d["seconds"] / p["seconds"]
        lines.append(
            f"| {size['rows']:,} | {p['seconds']:.1f} | {d['seconds']:.1f} | {ratio:.2f} "
            f"| {p['rows'] / p['seconds']:,.0f} | {d['rows'] / d['seconds']:,.0f} | {p['peak_rss_mib']:,} "
            f"| {', '.join(str(v) for v in d['worker_peak_rss_mib'])} | {d['cluster_start_seconds']:.1f} |"
        )
    growth = doc.get("growth")
    if growth:
        steps = [
            f"{g['from']:,} -> {g['to']:,}: pandas {g['pandas']:.1f}x, dask {g['dask']:.1f}x" for g in growth
        ]
        lines += ["", "Growth from one size to the next (wall seconds): " + "; ".join(steps) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=str(REPO / "models" / "pd_model"))
    parser.add_argument("--child")
    parser.add_argument("--source")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.source, args.workers)))
        return
    if not (Path(args.model) / "MLmodel").is_file():
        sys.exit(f"{args.model}: no exported model; run `make run` first")
    doc: dict[str, Any] = {
        "machine": {
            "date": time.strftime("%Y-%m-%d"),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "model": os.path.relpath(args.model, REPO),
        "workers": args.workers,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        for n in sorted(args.sizes):
            source = Path(folder) / f"apps_{n}.parquet"
            build_input(n, source)
            entry = {"rows": n, "pandas": run_child("pandas", args.model, source, args.workers)}
            entry["dask"] = run_child("dask", args.model, source, args.workers)
            if entry["pandas"]["scored"] != entry["dask"]["scored"]:
                raise RuntimeError(f"pandas and dask scored different rows: {entry}")
            doc["sizes"].append(entry)
            source.unlink()
            pandas_s, dask_s = entry["pandas"]["seconds"], entry["dask"]["seconds"]
            print(f"{n:,} rows: pandas {pandas_s:.1f} s, dask {dask_s:.1f} s")
    sizes = doc["sizes"]
    doc["growth"] = [
        {
            "from": a["rows"],
            "to": b["rows"],
            "pandas": b["pandas"]["seconds"] / a["pandas"]["seconds"],
            "dask": b["dask"]["seconds"] / a["dask"]["seconds"],
        }
        for a, b in itertools.pairwise(sizes)
    ]
    doc["machine"]["load_average_after"] = list(os.getloadavg())
    from scoring.core.figures import write_results

    text = markdown(doc)
    write_results(RESULTS, doc, text)
    print(text)


if __name__ == "__main__":
    main()
