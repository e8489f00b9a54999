"""Benchmark: generator throughput and the cost of `dvc repro` at the default size.

Each figure stands beside a baseline measured in the same run:
- generating N applications, against reading the same N applications back from Parquet
  (what storing the data instead of generating it would cost);
- the whole pipeline (`dvc repro --force` in a fresh copy of the repository, with each
  stage's wall time), against fitting the same XGBoost model on the same training split in
  one bare process (the irreducible core of the pipeline), so the ratio is the pipeline's
  overhead.

Results go to benchmarks/results/pipeline.json (and are printed).

    python benchmarks/bench_pipeline.py [--generator-rows 1000000] [--skip-pipeline]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"


def bench_generator(n: int, seed: int) -> dict[str, float]:
    import pandas as pd

    from scoring.core.io import write_parquet
    from scoring.data.config import SyntheticDataConfig
    from scoring.data.synthetic import generate_portfolio

    config = SyntheticDataConfig(n_applications=n)
    start = time.perf_counter()
    applications, _ = generate_portfolio(config, seed)
    generate_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "applications.parquet"
        write_parquet(path, applications)
        start = time.perf_counter()
        back = pd.read_parquet(path)
        read_s = time.perf_counter() - start
    assert len(back) == n
    return {
        "rows": n,
        "generate_seconds": round(generate_s, 3),
        "generate_rows_per_second": round(n / generate_s),
        "baseline_read_parquet_seconds": round(read_s, 3),
        "ratio_generate_to_read": round(generate_s / read_s, 2),
    }


def _copy_repo(dest: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for cmd in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-q", "-m", "bench"]):
        subprocess.run(cmd, cwd=dest, check=True)


def _timed_stages(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Wall seconds of a `dvc repro` and of each stage it ran (from one "Running stage" line to the next)."""
    starts: list[tuple[str, float]] = []
    tail: list[str] = []
    start = time.perf_counter()
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail = [*tail[-50:], line]
            if line.startswith("Running stage '"):
                starts.append((line.split("'")[1], time.perf_counter()))
        returncode = proc.wait()
    wall = time.perf_counter() - start
    if returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{''.join(tail)}")
    ends = [t for _, t in starts[1:]] + [start + wall]
    return wall, {name: round(end - begin, 1) for (name, begin), end in zip(starts, ends, strict=True)}


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout. The first call's peak RSS is read by the caller from RUSAGE_CHILDREN."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, proc.stdout


CORE_FIT = """
import json, sys
from scoring.config import load_params
from scoring.features.transformer import ApplicationFeatures
from scoring.core.io import read_parquet
from scoring.models.training import train_xgboost
params = load_params("params.yaml")
features = ApplicationFeatures.from_dict(json.load(open("models/features.json")))
train, valid = read_parquet("data/split/train.parquet"), read_parquet("data/split/valid.parquet")
y = "default_12m"
train_xgboost(features.transform(train), train[y], features.transform(valid), valid[y],
              params.train.xgboost, params.seed)
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_pipeline() -> dict[str, object]:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        copy = Path(tmp)
        _copy_repo(copy)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(copy / "src"))
        # Runs first, so the largest-child RSS seen so far is that of the heaviest stage.
        load_before = os.getloadavg()
        repro_s, stage_s = _timed_stages([str(bin_dir / "dvc"), "repro", "--force"], copy, env)
        load_after = os.getloadavg()
        repro_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        noop_s, _ = _timed([str(bin_dir / "dvc"), "repro"], copy, env)
        core_s, core_out = _timed([sys.executable, "-c", CORE_FIT], copy, env)
        core_peak = int(core_out.split()[-1]) / 1024
        metrics = json.loads((copy / "reports" / "metrics.json").read_text())
        n = json.loads((copy / "reports" / "split.json").read_text())["n_input"]
    return {
        "applications": n,
        "dvc_repro_seconds": round(repro_s, 1),
        "dvc_repro_peak_rss_mib": round(repro_peak),
        "stage_seconds": stage_s,
        # issue 4's budget: tuning plus training at the default size, under 4 minutes on 2 cores
        "tune_plus_train_seconds": round(stage_s.get("tune", 0.0) + stage_s.get("train", 0.0), 1),
        "tune_plus_train_target_seconds": 240,
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "second_dvc_repro_seconds": round(noop_s, 1),
        "baseline_bare_xgboost_fit_seconds": round(core_s, 1),
        "baseline_bare_xgboost_fit_peak_rss_mib": round(core_peak),
        "ratio_pipeline_to_bare_fit": round(repro_s / core_s, 2),
        "test_auc": metrics["test"]["auc"],
        "test_true_pd_auc": metrics["test"].get("true_pd_auc"),
        "oot_auc": metrics["oot"]["auc"] if "oot" in metrics else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()

    results: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    # The pipeline goes first: a child's peak RSS counts the parent's memory at fork time, so
    # it must be measured before this process holds a million generated rows.
    if not args.skip_pipeline:
        results["pipeline"] = bench_pipeline()
        print(json.dumps(results["pipeline"], indent=2), flush=True)
    results["generator"] = bench_generator(args.generator_rows, args.seed)
    print(json.dumps(results["generator"], indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
