"""Regenerate every results file README and docs quote, then rewrite and check the quoted figures.

`make figures` runs this (after `make run`, which the serving and collections benchmarks read).
Each results file comes from one command below; its time on the 2-core machine is stated, and
the long ones run only in the sets that name them:

    python benchmarks/figures.py                 # the quick set, about 35 minutes
    python benchmarks/figures.py --set all       # and the long ones, about 2 h 30 min more
    python benchmarks/figures.py --set scale     # the 10M-row scale runs alone, about 3 h
    python benchmarks/figures.py --only serving  # one results file (repeatable)

Every results file records its provenance (commit, clean tree, params digest, machine, date,
command); run this on a clean checkout, or the figures check fails on the dirty provenance.
Then ``scoring figures update`` rewrites each bound figure from its source at the page's
precision, and ``scoring figures check`` lists what is still wrong (exit 1).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    name: str
    command: tuple[str, ...]
    writes: tuple[str, ...]  # results files, relative to the repository
    minutes: float  # on the 2-core machine the figures were made on
    sets: tuple[str, ...] = ("quick", "all")


JOBS = (
    Job(
        "pipeline",
        ("benchmarks/bench_pipeline.py",),
        ("benchmarks/results/pipeline.json", "benchmarks/results/default_data.json"),
        8,
    ),
    Job("serving", ("benchmarks/bench_serving.py",), ("benchmarks/results/serving.json",), 8),
    Job(
        "collections",
        ("benchmarks/bench_collections.py", "--repeats", "3"),
        ("benchmarks/results/collections.json",),
        2,
    ),
    Job(
        "validation",
        ("benchmarks/bench_validation.py", "--repeat", "5"),
        ("benchmarks/results/validation.json",),
        5,
    ),
    Job(
        "explanations",
        ("benchmarks/bench_explanations.py", "--n", "100000"),
        ("benchmarks/results/explanations.json",),
        4,
    ),
    Job("truth_join", ("benchmarks/bench_truth_join.py",), ("benchmarks/results/truth_join.json",), 2),
    Job(
        "reject_inference",
        ("benchmarks/bench_reject_inference.py",),
        ("benchmarks/results/reject_inference.json",),
        7,
    ),
    Job("quality", ("benchmarks/quality.py",), ("benchmarks/results/quality.json",), 20, ("all",)),
    Job("byo", ("benchmarks/byo.py",), ("benchmarks/results/byo.json",), 20, ("all",)),
    Job(
        "scorecard_size",
        ("benchmarks/scorecard_size.py",),
        ("benchmarks/results/scorecard_size.json",),
        12,
        ("all",),
    ),
    Job(
        "monitoring_scenarios",
        ("benchmarks/monitoring_scenarios.py",),
        ("benchmarks/results/monitoring_scenarios.json",),
        8,
        ("all",),
    ),
    Job(
        "monitoring",
        ("benchmarks/bench_monitoring.py", "--repeats", "3"),
        ("benchmarks/results/monitoring.json",),
        4,
        ("all",),
    ),
    Job(
        "scoring_scale",
        ("benchmarks/bench_scoring_scale.py", "--sizes", "100000", "1000000", "5000000"),
        ("benchmarks/results/scoring_scale.json",),
        6,
        ("all",),
    ),
    Job(
        "validation_4m",
        (
            "benchmarks/bench_validation.py",
            "--rows",
            "4000000",
            "--dask-partitions",
            "8",
            "--output",
            "benchmarks/results/validation_4m.json",
        ),
        ("benchmarks/results/validation_4m.json",),
        15,
        ("all",),
    ),
    Job(
        "fresh_clone",
        ("benchmarks/fresh_clone.py", "--with-test"),
        ("benchmarks/results/fresh_clone.json",),
        30,
        ("all",),
    ),
    Job("scale", ("benchmarks/bench_scale.py",), ("benchmarks/results/scale.json",), 180, ("scale",)),
)


def written_by_jobs() -> dict[str, str]:
    """Each results file and the job that writes it."""
    return {path: job.name for job in JOBS for path in job.writes}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--set", choices=("quick", "all", "scale"), default="quick")
    parser.add_argument("--only", action="append", choices=[job.name for job in JOBS], help="these jobs only")
    parser.add_argument("--no-update", action="store_true", help="leave README and docs as they are")
    args = parser.parse_args()
    jobs = [job for job in JOBS if (job.name in args.only if args.only else args.set in job.sets)]
    print(f"{len(jobs)} jobs, about {sum(job.minutes for job in jobs):.0f} minutes:", flush=True)
    failed = []
    for job in jobs:
        print(f"== {job.name} (about {job.minutes:.0f} min): {' '.join(job.command)}", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, *job.command], cwd=REPO).returncode
        print(f"== {job.name}: exit {code} after {(time.perf_counter() - start) / 60:.1f} min", flush=True)
        if code != 0:
            failed.append(job.name)
    scoring = str(Path(sys.executable).parent / "scoring")
    if not args.no_update:
        subprocess.run([scoring, "figures", "update"], cwd=REPO)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
