"""Benchmark (issue 17): the whole pipeline by size, each stage's wall time and memory, on the
dask engine and, where it fits, the pandas engine.

For each size in ``--sizes`` (default 100k, 1M and 10M synthetic applications) the repository is
copied to a fresh folder and ``dvc repro`` runs every stage with params.yaml changed only in:

- ``data.synthetic.n_applications``, and ``block_rows`` = the size / ``--parts`` (default 10), so
  every size has the same number of part files and the same parallelism: 10x the rows means
  10x the rows per part, nothing else (with the default block_rows of 1M, a 1M run would be one
  part on one worker, and its growth to 10M would look better than it is);
- ``data.synthetic.performance_history: false``: the monthly history has about 20 rows per loan
  (200M rows at 10M applications), out of this benchmark's reach; the history stages
  (performance, monitor's performance part, collect) then run on an empty history;
- ``train.fit_on: train`` on both engines (the dask engine's protocol: no fold refits);
- the model held fixed across sizes (``--model fixed``, the default): ``tune.enabled: false`` and
  the challenger with params' settings for exactly ``--rounds`` boosting rounds (default 1000;
  ``early_stopping_rounds: null``). With early stopping and tuning (``--model tuned``, params as
  shipped) the model grows with the data (84 trees at 100k, 961 at 10M) and every stage that
  scores pays for each tree: that growth is the model's, not the engine's, and it is measured
  apart (docs/scale.md). Tuning reads ``tune.max_rows`` rows at any size;
- ``engine``: ``dask`` joins a LocalCluster of ``--workers`` processes x 1 thread that this
  script starts (``dask.scheduler`` set to its address, as for an existing cluster, so the
  workers persist between stages and their memory can be followed); ``pandas`` runs in the
  stage process. The pandas engine runs up to ``--pandas-max`` rows. The cluster is the
  pipeline's own (``scoring.core.cluster.local_cluster``), its workers' ``MALLOC_TRIM_THRESHOLD_``
  from params (``dask.malloc_trim_threshold``) unless ``--malloc-trim-threshold`` says otherwise
  (``unset``, or bytes); recorded in the protocol.

A sampler reads every 0.2 s: the machine's used memory (MemTotal - MemAvailable, less what was
used before the run), the resident memory of the stage's process tree, and of each dask worker;
peaks are kept per stage. Quality: the test AUC of the champion and the ceiling (the AUC of the
true PD on the same rows), from the evaluate stage's metrics.

Growth: each stage's wall time at one size over the previous size (10x more rows). Figures go to
benchmarks/results/scale.json and scale.md, the cost curve to benchmarks/results/scale.png.

    python benchmarks/bench_scale.py [--sizes 100000 1000000 10000000] [--pandas-max 1000000] [--workers 2]
        [--parts 10] [--model fixed|tuned] [--rounds 1000] [--malloc-trim-threshold params|unset|BYTES]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from bench_pipeline import copy_repo as plain_copy_repo
from scoring.core.figures import write_results

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "scale.json"
MIB = 1024.0 * 1024.0
SAMPLE_SECONDS = 0.2


def _copy_repo(dest: Path) -> None:
    """bench_pipeline's fresh copy of the repository, with this checkout's environment linked in."""
    plain_copy_repo(dest)
    (dest / ".venv").symlink_to(REPO / ".venv")


def _used_memory() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = float(value.split()[0]) * 1024.0
    return info["MemTotal"] - info["MemAvailable"]


class Sampler:
    """Peaks of memory per stage, read every SAMPLE_SECONDS in a thread."""

    def __init__(self, worker_pids: list[int]) -> None:
        self.worker_pids = worker_pids
        self.stage = "(start)"
        self.root_pid: int | None = None
        self.baseline = _used_memory()
        self.peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self, pid: int) -> float:
        try:
            return float(psutil.Process(pid).memory_info().rss)
        except psutil.Error:
            return 0.0

    def _tree_rss(self) -> float:
        if self.root_pid is None:
            return 0.0
        try:
            root = psutil.Process(self.root_pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        worker_set = set(self.worker_pids)
        return sum(self._rss(p.pid) for p in procs if p.pid not in worker_set)

    def _loop(self) -> None:
        while not self._stop.is_set():
            peak = self.peaks.setdefault(self.stage, {"machine_used_mib": 0.0, "stage_process_mib": 0.0})
            peak["machine_used_mib"] = max(peak["machine_used_mib"], (_used_memory() - self.baseline) / MIB)
            peak["stage_process_mib"] = max(peak["stage_process_mib"], self._tree_rss() / MIB)
            for number, pid in enumerate(self.worker_pids):
                key = f"worker_{number}_mib"
                peak[key] = max(peak.get(key, 0.0), self._rss(pid) / MIB)
            time.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def protocol(args: argparse.Namespace) -> dict[str, Any]:
    """What the runs hold fixed besides the params' defaults (recorded with every run)."""
    fixed = args.model == "fixed"
    return {
        "parts": args.parts,
        "model": args.model,
        "rounds": args.rounds if fixed else None,
        "worker_malloc_trim_threshold": malloc_trim_threshold(args.malloc_trim_threshold),
    }


def malloc_trim_threshold(choice: str) -> int | None:
    """The workers' MALLOC_TRIM_THRESHOLD_ for ``--malloc-trim-threshold`` (params, unset or bytes;
    None: unset, glibc's adaptive default). Shared with bench_validation.py."""
    if choice == "params":
        from scoring.config import load_params

        return load_params(REPO / "params.yaml").dask.malloc_trim_threshold
    return None if choice == "unset" else int(choice)


def _params(workspace: Path, size: int, engine: str, scheduler: str, setup: dict[str, Any]) -> None:
    path = workspace / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["engine"] = engine
    params["dask"]["scheduler"] = scheduler
    synthetic = params["data"]["synthetic"]
    synthetic["n_applications"] = size
    synthetic["block_rows"] = max(-(-size // setup["parts"]), 1_000)
    synthetic["performance_history"] = False
    params["train"]["fit_on"] = "train"
    if setup["model"] == "fixed":
        params["tune"]["enabled"] = False
        params["train"]["xgboost"]["n_estimators"] = setup["rounds"]
        params["train"]["xgboost"]["early_stopping_rounds"] = None
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def run_pipeline(
    size: int, engine: str, scheduler: str, worker_pids: list[int], setup: dict[str, Any]
) -> dict[str, Any]:
    workspace = Path(tempfile.mkdtemp(prefix=f"bench-scale-{engine}-{size}-"))
    try:
        _copy_repo(workspace)
        _params(workspace, size, engine, scheduler, setup)
        env = dict(os.environ)  # the copy's own MLflow store, as `make run` uses it
        env.pop("VIRTUAL_ENV", None)
        starts: list[tuple[str, float]] = []
        tail: list[str] = []
        phases: list[str] = []  # the stages' own timings of their dask phases (log lines)
        with Sampler(worker_pids) as sampler:
            start = time.perf_counter()
            with subprocess.Popen(
                [str(REPO / ".venv" / "bin" / "dvc"), "repro"],
                cwd=workspace,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ) as proc:
                sampler.root_pid = proc.pid
                assert proc.stdout is not None
                for line in proc.stdout:
                    tail = [*tail[-80:], line]
                    if "dask: " in line:
                        phases.append(f"{sampler.stage}: {line.strip()}")
                    if line.startswith("Running stage '"):
                        name = line.split("'")[1]
                        starts.append((name, time.perf_counter()))
                        sampler.stage = name
                        print(f"  {engine} {size:,}: {name}", file=sys.stderr, flush=True)
                returncode = proc.wait()
            wall = time.perf_counter() - start
        if returncode != 0:
            raise RuntimeError(f"dvc repro failed ({engine}, {size}):\n{''.join(tail)}")
        ends = [t for _, t in starts[1:]] + [start + wall]
        stages = {
            name: {
                "seconds": round(end - begin, 1),
                **{k: round(v, 0) for k, v in sampler.peaks.get(name, {}).items()},
            }
            for (name, begin), end in zip(starts, ends, strict=True)
        }
        metrics = json.loads((workspace / "reports" / "metrics.json").read_text())
        test = metrics.get("test", {})
        return {
            "size": size,
            "engine": engine,
            "wall_seconds": round(wall, 1),
            "stages": stages,
            "peak_machine_used_mib": round(max(p["machine_used_mib"] for p in sampler.peaks.values()), 0),
            "test_auc": test.get("auc"),
            "test_true_pd_auc": test.get("true_pd_auc"),
            "test_auc_gap_to_truth": test.get("auc_gap_to_truth"),
            "champion": metrics.get("champion"),
            "protocol": setup,
            "validation": json.loads((workspace / "reports" / "validation" / "summary.json").read_text()),
            "dask_phases": phases[-100:],
        }
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def growth(runs: list[dict[str, Any]], engine: str) -> dict[str, dict[str, float]]:
    """Each stage's seconds at one size over the previous size."""
    mine = sorted((r for r in runs if r["engine"] == engine), key=lambda r: r["size"])
    out: dict[str, dict[str, float]] = {}
    for small, large in itertools.pairwise(mine):
        key = f"{small['size']}->{large['size']}"
        out[key] = {
            name: round(large["stages"][name]["seconds"] / max(small["stages"][name]["seconds"], 0.1), 2)
            for name in large["stages"]
            if name in small["stages"]
        }
        out[key]["total"] = round(large["wall_seconds"] / small["wall_seconds"], 2)
    return out


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    runs = sorted((r for r in doc["runs"] if r["engine"] == "dask"), key=lambda r: r["size"])
    sizes = [r["size"] for r in runs]
    for name in runs[-1]["stages"]:
        seconds = [r["stages"].get(name, {}).get("seconds", float("nan")) for r in runs]
        ax.plot(sizes, seconds, marker="o", label=name)
    ax.plot(sizes, [r["wall_seconds"] for r in runs], marker="s", color="black", linewidth=2, label="total")
    pandas_runs = sorted((r for r in doc["runs"] if r["engine"] == "pandas"), key=lambda r: r["size"])
    if pandas_runs:
        ax.plot(
            [r["size"] for r in pandas_runs],
            [r["wall_seconds"] for r in pandas_runs],
            marker="s",
            color="grey",
            linestyle="--",
            linewidth=2,
            label="total, pandas engine",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("applications")
    ax.set_ylabel("wall seconds")
    ax.set_title("The pipeline on the dask engine (2 workers x 1 thread), by stage")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})


def acceptance_lines(doc: dict[str, Any]) -> list[str]:
    """Issue 17's figures: the largest run's memory and AUC gap, and the growth to it per stage."""
    dask_runs = sorted((r for r in doc["runs"] if r["engine"] == "dask"), key=lambda r: r["size"])
    if not dask_runs:
        return []
    largest = dask_runs[-1]
    gap = largest["test_auc_gap_to_truth"]
    lines = [
        f"## At {largest['size']:,} applications (dask engine)",
        "",
        f"- peak machine memory: {largest['peak_machine_used_mib'] / 1024:.1f} GiB of "
        f"{doc['machine']['memory_gib']} GiB",
        f"- test AUC {largest['test_auc']:.4f} against the ceiling (the true PD's AUC on the same rows) "
        f"{largest['test_true_pd_auc']:.4f}: gap {gap:.4f} "
        f"({'within' if gap <= 0.005 else 'NOT within'} 0.005)",
    ]
    if len(dask_runs) > 1:
        step = f"{dask_runs[-2]['size']}->{largest['size']}"
        ratios = {k: v for k, v in doc["growth"]["dask"][step].items() if k != "total"}
        worst = max(ratios, key=lambda k: ratios[k])
        lines.append(
            f"- growth {step}: largest stage ratio {ratios[worst]:g} ({worst}; "
            f"{'within' if ratios[worst] <= 12 else 'NOT within'} 12x), whole pipeline "
            f"{doc['growth']['dask'][step]['total']:g}x"
        )
    return lines


def protocol_line(setup: dict[str, Any] | None) -> str:
    if not setup:
        return "block_rows 1M, tuning and early stopping as shipped"
    model = (
        f"the model fixed: no tuning, {setup['rounds']} boosting rounds"
        if setup["model"] == "fixed"
        else "tuning and early stopping as shipped"
    )
    trim = setup.get("worker_malloc_trim_threshold", 65536)  # runs before it was recorded: distributed's
    workers = "unset" if trim is None else f"{trim}"
    return f"{setup['parts']} part files at every size, {model}, workers' MALLOC_TRIM_THRESHOLD_ {workers}"


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# The pipeline by size (benchmarks/bench_scale.py)",
        "",
        f"{doc['date']}, {doc['machine']['cpus']} cores, {doc['machine']['memory_gib']} GiB; dask: "
        f"LocalCluster {doc['workers']} workers x 1 thread; performance history off, train.fit_on: train; "
        f"{protocol_line(doc.get('protocol'))} (see the script).",
        "",
        "| engine | applications | wall s | peak machine memory MiB | test AUC | ceiling | gap |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["runs"]:
        auc, ceiling, gap = r["test_auc"], r["test_true_pd_auc"], r["test_auc_gap_to_truth"]
        lines.append(
            f"| {r['engine']} | {r['size']:,} | {r['wall_seconds']} | {r['peak_machine_used_mib']:,.0f} | "
            f"{auc:.4f} | {ceiling:.4f} | {gap:.4f} |"
        )
    for r in doc["runs"]:
        workers = sorted({k for s in r["stages"].values() for k in s if k.startswith("worker_")})
        lines += [
            "",
            f"## {r['engine']}, {r['size']:,} applications",
            "",
            "| stage | seconds | machine MiB | stage process MiB |" + "".join(f" {w} |" for w in workers),
            "|---|---:|---:|---:|" + "---:|" * len(workers),
        ]
        for name, s in r["stages"].items():
            cells = "".join(f" {s.get(w, 0):,.0f} |" for w in workers)
            lines.append(
                f"| {name} | {s['seconds']} | {s.get('machine_used_mib', 0):,.0f} | "
                f"{s.get('stage_process_mib', 0):,.0f} |{cells}"
            )
    lines += ["", *acceptance_lines(doc)]
    for engine, by_step in doc["growth"].items():
        for step, ratios in by_step.items():
            lines += ["", f"## Growth {step}, {engine} engine (seconds ratio; 10x the rows)", ""]
            lines.append("| " + " | ".join(ratios) + " |")
            lines.append("|" + "---:|" * len(ratios))
            lines.append("| " + " | ".join(f"{v:g}" for v in ratios.values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # largest first by default: a size that fails shows before hours are spent on the smaller ones
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000_000, 1_000_000, 100_000])
    parser.add_argument("--pandas-max", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--parts", type=int, default=10, help="part files per size (block_rows: size / parts)"
    )
    parser.add_argument(
        "--model",
        choices=["fixed", "tuned"],
        default="fixed",
        help="fixed: no tuning, exactly --rounds boosting rounds at every size; tuned: params as shipped",
    )
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument(
        "--malloc-trim-threshold",
        default="params",
        help="the workers' MALLOC_TRIM_THRESHOLD_: params (dask.malloc_trim_threshold in the "
        "repository's params.yaml, what the pipeline's LocalCluster uses), unset, or bytes",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md and .png from the --output JSON"
    )
    args = parser.parse_args()
    if args.render:
        doc = json.loads(args.output.read_text(encoding="utf-8"))
        args.output.with_suffix(".md").write_text(markdown(doc), encoding="utf-8")
        plot(doc, args.output.with_suffix(".png"))
        return

    from distributed import Client

    from scoring.core.cluster import DaskConfig, local_cluster

    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        "workers": args.workers,
        "protocol": protocol(args),
        "runs": [],
    }
    with (
        local_cluster(
            DaskConfig(
                n_workers=args.workers,
                malloc_trim_threshold=malloc_trim_threshold(args.malloc_trim_threshold),
            )
        ) as cluster,
        Client(cluster) as client,
    ):
        worker_pids = list(client.run(os.getpid).values())
        for size in args.sizes:
            client.restart()  # each size starts from fresh workers
            worker_pids = list(client.run(os.getpid).values())
            engines = ["dask", "pandas"] if size <= args.pandas_max else ["dask"]
            for engine in engines:
                scheduler = cluster.scheduler_address if engine == "dask" else ""
                pids = worker_pids if engine == "dask" else []
                run = run_pipeline(size, engine, scheduler, pids, doc["protocol"])
                print(json.dumps(run)[:400], file=sys.stderr, flush=True)
                doc["runs"] = sorted([*doc["runs"], run], key=lambda r: (r["size"], r["engine"]))
            doc["growth"] = {engine: growth(doc["runs"], engine) for engine in ("dask", "pandas")}
            write_results(args.output, doc, markdown(doc))
    plot(doc, args.output.with_suffix(".png"))
    print(markdown(doc))


if __name__ == "__main__":
    main()
