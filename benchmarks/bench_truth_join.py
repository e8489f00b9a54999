"""Benchmark: joining the synthetic truth's true PDs onto the evaluated rows, at 1M and 10M.

The evaluate stage compares each labelled split with the truth file's true PDs (the ceiling
AUC, the calibrated PDs' error against the truth). At 10M applications the stage grew 15.8x
from 1M (benchmarks/results/scale.md), above the 12x the scale issue allows. One cause found:
the join of the true PDs, which grew about 20x.

Measured, on ``--sizes`` truth rows with 80% of their ids looked up in a shuffled order (the
labelled splits' share of the synthetic portfolio), ids as text as the stage holds them:

- ``before``: the stage's old way, ``pandas.Series.reindex`` over an index of Python strings,
  once per candidate model and once more for the calibrated PDs (``--lookups``, 6 with the
  default five candidates);
- ``after``: :func:`scoring.reporting.evaluation.true_pds` (Arrow's hash join on the
  :class:`~scoring.reporting.evaluation.TruthLookup`), once per split for every candidate.

Both include building their lookup from the truth frame. The two give the same values (checked;
the script exits 1 otherwise). Figures: wall seconds of each, the ratio before/after, and each
one's growth from the smallest to the largest size.

Results go to benchmarks/results/truth_join.json and truth_join.md (and are printed).

    python benchmarks/bench_truth_join.py [--sizes 1000000 10000000] [--lookups 6] [--seed 20261128]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.reporting.evaluation import TRUTH_ID_COLUMN, true_pds, truth_lookup

RESULTS = Path(__file__).resolve().parent / "results"
LOOKED_UP_SHARE = 0.8


def _truth(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = np.array([f"A{i:010d}" for i in range(n)], dtype=object)
    truth = pd.DataFrame({TRUTH_ID_COLUMN: ids, "true_pd": rng.uniform(0.001, 0.5, n)})
    looked_up = ids[rng.permutation(n)[: int(LOOKED_UP_SHARE * n)]]
    return truth, looked_up


def _before(truth: pd.DataFrame, ids: np.ndarray, lookups: int) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    series = truth.set_index(TRUTH_ID_COLUMN)["true_pd"]
    values = np.empty(0)
    for _ in range(lookups):
        values = series.reindex(ids).to_numpy(dtype=np.float64)
    return time.perf_counter() - started, values


def _after(truth: pd.DataFrame, ids: np.ndarray) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    lookup = truth_lookup(truth)
    assert lookup is not None
    values = true_pds(lookup, ids, "bench")
    return time.perf_counter() - started, values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--lookups", type=int, default=6)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    runs = []
    for n in sorted(args.sizes):
        truth, ids = _truth(n, args.seed)
        before, old = _before(truth, ids, args.lookups)
        after, new = _after(truth, ids)
        if not np.array_equal(old, new):
            print(f"{n:,} rows: the two joins disagree", file=sys.stderr)
            return 1
        runs.append({"truth_rows": n, "looked_up": len(ids), "before_s": before, "after_s": after})
        print(
            f"{n:>12,} truth rows: before {before:7.2f} s, after {after:6.2f} s, ratio {before / after:5.1f}x"
        )
    first, last = runs[0], runs[-1]
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores",
        "lookups_before": args.lookups,
        "runs": runs,
        "growth": {
            "sizes": [first["truth_rows"], last["truth_rows"]],
            "before": last["before_s"] / first["before_s"],
            "after": last["after_s"] / first["after_s"],
        },
    }
    lines = [
        "# The truth join of the evaluate stage",
        "",
        f"{result['date']}, {result['machine']}. `python benchmarks/bench_truth_join.py`. Before: "
        f"pandas `reindex` on string ids, {args.lookups} times (once per candidate and once for the "
        "calibrated PDs). After: one Arrow hash join per split (`scoring.reporting.evaluation.true_pds`).",
        "",
        "| truth rows | ids looked up | before | after | before / after |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {r['truth_rows']:,} | {r['looked_up']:,} | {r['before_s']:.2f} s | {r['after_s']:.2f} s | "
            f"{r['before_s'] / r['after_s']:.1f}x |"
            for r in runs
        ),
        "",
        f"Growth from {first['truth_rows']:,} to {last['truth_rows']:,} truth rows: before "
        f"{result['growth']['before']:.1f}x, after {result['growth']['after']:.1f}x.",
        "",
    ]
    from scoring.core.figures import write_results

    write_results(RESULTS / "truth_join.json", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
