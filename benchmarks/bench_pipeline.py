"""Benchmark: generator throughput and the cost of `dvc repro` at the default size.

Each figure stands beside a baseline measured in the same run:
- generating N applications, against reading the same N applications back from Parquet
  (what storing the data instead of generating it would cost);
- the whole pipeline (`dvc repro --force` in a fresh copy of the repository, with each
  stage's wall time), against fitting the same XGBoost model on the same training split in
  one bare process (the irreducible core of the pipeline), so the ratio is the pipeline's
  overhead.

- each stage's start-up: a fresh `pipelines/stage <name> --help` (the interpreter, the stage
  script's top-level imports and argparse, then exit before any work), against `python -c pass`
  with the same interpreter; beside it, the stage's wall time in the `dvc repro` above, so the
  share of each stage spent starting up is shown.

Results go to benchmarks/results/pipeline.json and benchmarks/results/pipeline.md (and are printed).

    python benchmarks/bench_pipeline.py [--generator-rows 1000000] [--skip-pipeline]
    python benchmarks/bench_pipeline.py --startup-only   # start-up figures only, a few seconds a stage

``--startup-only`` keeps the other figures of the last full run in pipeline.json and replaces the
start-up ones; the stage wall times beside them are then that run's.
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
RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"
RESULTS_MD = RESULTS.with_suffix(".md")
# Packages that each cost about a second or more to import (great_expectations ~9 s on this
# machine); the start-up table lists the ones a stage's top-level imports load.
HEAVY_PACKAGES = (
    "great_expectations",
    "optbinning",
    "mlflow",
    "matplotlib",
    "sklearn",
    "scipy",
    "xgboost",
    "optuna",
    "shap",
    "numba",
    "lightgbm",
)


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


def copy_repo(dest: Path) -> None:
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


def stage_timings(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict[str, float]]:
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
from scoring.models.candidates.xgboost import train_xgboost
params = load_params("params.yaml")
features = ApplicationFeatures.from_dict(json.load(open("models/features.json")))
train, valid = read_parquet("data/split/train.parquet"), read_parquet("data/split/valid.parquet")
y = "default_12m"
train_xgboost(features.transform(train), train[y], features.transform(valid), valid[y],
              params.train.xgboost, params.seed)
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


# The default data's figures that README and docs quote, read from the same run's reports into
# benchmarks/results/default_data.json (the reports folder itself is a DVC output, not in git).
DEFAULT_DATA_REPORTS = {
    "metrics": "reports/metrics.json",
    "split": "reports/split.json",
    "train": "reports/train.json",
    "calibration": "reports/calibration.json",
    "whatif": "reports/whatif.json",
    "whatif_detail": "reports/whatif/detail.json",
    "fairness": "reports/fairness.json",
    "monitoring": "reports/monitoring/summary.json",
    "monitoring_alerts": "reports/monitoring/alerts.json",
    "collections": "reports/collections.json",
    "tuned_xgboost": "models/tuned_xgboost.json",
    "champion": "models/champion.json",
}
DEFAULT_DATA = RESULTS.with_name("default_data.json")
# The what-if scenarios docs/whatif.md and README quote (whatif.scenario keys), each decided
# again by the whatif stage in the same copy after the pipeline ran.
WHATIF_SCENARIOS = {
    "rate_plus_2_points": {"rate_shift": 0.02},
    "max_ltv_minus_10_points": {"max_ltv_shift": -0.1},
}


def whatif_scenarios(copy: Path, env: dict[str, str]) -> dict[str, Any]:
    """reports/whatif.json (and its detail by grade) of each scenario, params put back after."""
    import yaml

    params_path = copy / "params.yaml"
    original = params_path.read_text(encoding="utf-8")
    dvc = str(Path(sys.executable).parent / "dvc")
    out: dict[str, Any] = {}
    try:
        for name, changes in WHATIF_SCENARIOS.items():
            params = yaml.safe_load(original)
            params["whatif"]["scenario"].update(changes)
            params_path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
            _timed([dvc, "repro", "whatif"], copy, env)
            summary = json.loads((copy / "reports/whatif.json").read_text())
            # The change as a share of today's figure, for the amounts (volume, loss, profit).
            summary["relative_change"] = {
                key: summary["changed"][key] / summary["current"][key] - 1.0
                for key in ("booked_volume", "interest_income", "expected_loss", "expected_profit")
                if summary["current"].get(key)
            }
            out[name] = {
                "scenario": changes,
                "summary": summary,
                "detail": json.loads((copy / "reports/whatif/detail.json").read_text()),
            }
    finally:
        params_path.write_text(original, encoding="utf-8")
    return out


def bench_pipeline() -> dict[str, Any]:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        copy = Path(tmp)
        copy_repo(copy)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(PATH=f"{bin_dir}{os.pathsep}{env['PATH']}", PYTHONPATH=str(copy / "src"))
        # Runs first, so the largest-child RSS seen so far is that of the heaviest stage.
        load_before = os.getloadavg()
        repro_s, stage_s = stage_timings([str(bin_dir / "dvc"), "repro", "--force"], copy, env)
        load_after = os.getloadavg()
        repro_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        noop_s, _ = _timed([str(bin_dir / "dvc"), "repro"], copy, env)
        core_s, core_out = _timed([sys.executable, "-c", CORE_FIT], copy, env)
        core_peak = int(core_out.split()[-1]) / 1024
        metrics = json.loads((copy / "reports" / "metrics.json").read_text())
        n = json.loads((copy / "reports" / "split.json").read_text())["n_input"]
        reports = {name: json.loads((copy / path).read_text()) for name, path in DEFAULT_DATA_REPORTS.items()}
        reports["whatif_scenarios"] = whatif_scenarios(copy, env)
    return {
        "reports": reports,
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


def _stage_names() -> list[str]:
    """The stages of dvc.yaml, in its order."""
    import yaml

    return list(yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


# Run in a fresh process: the heavy packages that a stage's top-level imports load, with the
# stage run as `--help` (argparse exits before the stage does any work). argv: script, packages.
LOADED_BY_HELP = """
import json, runpy, sys
script, packages = sys.argv[1], set(sys.argv[2:])
sys.argv = [script, "--help"]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    assert exc.code in (None, 0), exc.code
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & packages)))
"""


def _machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    if "--help" in cmd and not proc.stdout.startswith("usage:"):
        raise RuntimeError(f"{cmd}: expected argparse's usage, then an exit before any work:\n{proc.stdout}")
    return wall


def _median_wall(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median and minimum wall seconds of `runs` fresh processes, after one untimed warm-up
    (which compiles the bytecode and fills the page cache)."""
    _wall(cmd, env)
    walls = [_wall(cmd, env) for _ in range(runs)]
    return statistics.median(walls), min(walls)


def bench_startup(runs: int) -> dict[str, object]:
    """Per stage: wall seconds from process start to the end of the stage script's top-level
    imports (`pipelines/stage <name> --help`), against `python -c pass`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    # The settings run_stage makes, set before the imports here as `make` exports them.
    env.update(SCORING_PYTHON=sys.executable, MPLBACKEND="Agg", GX_ANALYTICS_ENABLED="false")
    load_before = os.getloadavg()
    baseline, baseline_min = _median_wall([sys.executable, "-c", "pass"], env, runs)
    stages: dict[str, dict[str, object]] = {}
    total = 0.0
    for name in _stage_names():
        median, fastest = _median_wall([str(REPO / "pipelines" / "stage"), name, "--help"], env, runs)
        script = str(REPO / "pipelines" / f"{name}.py")
        probe = [sys.executable, "-c", LOADED_BY_HELP, script, *HEAVY_PACKAGES]
        out = subprocess.run(probe, cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout
        loaded = json.loads(out.splitlines()[-1])  # after argparse's usage
        stages[name] = {
            "startup_seconds": round(median, 3),
            "startup_min_seconds": round(fastest, 3),
            "ratio_to_python_pass": round(median / baseline, 1),
            "heavy_packages_loaded": loaded,
        }
        total += median
        print(f"start-up {name:10s} {median:6.2f} s  {', '.join(loaded) or '-'}", flush=True)
    load_after = os.getloadavg()
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "runs_per_command": runs,
        "baseline_python_pass_seconds": round(baseline, 3),
        "baseline_python_pass_min_seconds": round(baseline_min, 3),
        "stages": stages,
        "total_startup_seconds": round(total, 2),
        "total_startup_over_baseline_seconds": round(total - baseline * len(stages), 2),
        "load_average_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
    }


def startup_markdown(results: dict[str, Any]) -> str:
    """The start-up figures as a markdown table, beside each stage's wall time in `dvc repro`."""
    startup = results["startup"]
    machine = startup["machine"]
    pipeline = results.get("pipeline") or {}
    stage_wall: dict[str, float] = pipeline.get("stage_seconds", {})
    load = startup["load_average_before_after"]
    lines = [
        "# Pipeline benchmark: stage start-up (benchmarks/bench_pipeline.py)",
        "",
        f"Measured {startup['date']} on {machine['cpus']} CPUs ({machine['platform']}, Python "
        f"{machine['python']}), load average {load[0]} before and {load[1]} after.",
        "",
        "Start-up: wall seconds of a fresh `pipelines/stage <name> --help`: the interpreter, the stage "
        "script's top-level imports and argparse, which exits before any work. Median of "
        f"{startup['runs_per_command']} runs after one warm-up. Baseline in the same run: `python -c pass`, "
        f"same interpreter, {startup['baseline_python_pass_seconds']:.3f} s. Heavy packages: those of "
        f"{', '.join(HEAVY_PACKAGES)} that the top-level imports load.",
    ]
    if stage_wall:
        lines += [
            "",
            f"Stage wall: the stage's seconds in `dvc repro --force` ({pipeline['applications']} "
            f"applications, run {results.get('date')}), start-up included; share: start-up / stage wall.",
        ]
    lines += [
        "",
        "| stage | start-up (s) | x `python -c pass` | stage wall (s) | share | heavy packages at start-up |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in startup["stages"].items():
        wall = stage_wall.get(name)
        share = f"{100 * row['startup_seconds'] / wall:.0f}%" if wall else "-"
        heavy = ", ".join(row["heavy_packages_loaded"]) or "-"
        lines.append(
            f"| {name} | {row['startup_seconds']:.2f} | {row['ratio_to_python_pass']:.1f} | "
            f"{wall if wall is not None else '-'} | {share} | {heavy} |"
        )
    total = startup["total_startup_seconds"]
    total_wall = round(sum(stage_wall.values()), 1) if stage_wall else None
    total_share = f"{100 * total / total_wall:.0f}%" if total_wall else "-"
    lines.append(f"| **all** | {total:.2f} | | {total_wall or '-'} | {total_share} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument(
        "--startup-only",
        action="store_true",
        help="measure the stages' start-up only; pipeline.json keeps the last full run's other figures",
    )
    parser.add_argument("--startup-runs", type=int, default=3, help="timed runs of each start-up command")
    args = parser.parse_args()

    if args.startup_only:
        results: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        results["startup"] = bench_startup(args.startup_runs)
        _write(results)
        return

    results = {"machine": _machine(), "date": time.strftime("%Y-%m-%d")}
    # The pipeline goes first: a child's peak RSS counts the parent's memory at fork time, so
    # it must be measured before this process holds a million generated rows.
    if not args.skip_pipeline:
        results["pipeline"] = bench_pipeline()
        reports = results["pipeline"].pop("reports")
        print(json.dumps(results["pipeline"], indent=2), flush=True)
        from scoring.core.figures import write_results

        write_results(DEFAULT_DATA, {"source": "the reports of the dvc repro --force above", **reports})
    # Before the generator too: this process then holds no generated rows.
    results["startup"] = bench_startup(args.startup_runs)
    results["generator"] = bench_generator(args.generator_rows, args.seed)
    print(json.dumps(results["generator"], indent=2))
    _write(results)


def _write(results: dict[str, Any]) -> None:
    from scoring.core.figures import write_results

    results.pop("provenance", None)
    write_results(RESULTS, results, startup_markdown(results))
    print(f"written to {RESULTS.relative_to(REPO)} and {RESULTS_MD.relative_to(REPO)}")


if __name__ == "__main__":
    main()
