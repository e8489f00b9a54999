"""Benchmark: the collections queue against naive orders, the Markov forecast against what
happened, and the cost of one month's queue against reading the history (ratios, same run).

Reads the pipeline's outputs on the default data (run `make run` first): the gated performance
history, the applications, the application scores and the exported behaviour model.

1. Quality (``run_collections`` with params.yaml's ``collections`` and ``seed``, as the collect
   stage runs it): over the out-of-time months (snapshot months whose six following months are
   in the history), the share of the next six months' losses (net exposure of the accounts that
   reached 90+) and of the accounts that reached 90+ (by count) in the first 5%, 10% and 20% of
   each month's delinquent accounts, worked in four orders: the queue (expected loss avoided per
   unit of the action's cost), expected loss alone, days past due then balance, and balance
   alone; mean over the months, with the ratio of the queue to the better naive order. Also the
   behaviour score's out-of-time AUC (overall and by bucket) and the relative error of the Markov
   forecast of the 90+ balance six months ahead at each back-test origin.
2. Cost (``--repeats`` times, in this process after one warm-up): the baseline reads the history
   Parquet file (``scoring.core.io.read_parquet``); ``queue`` reads it too, then runs what
   ``scoring collect`` runs for the history's last month (``queue_for_month``: the history's gate,
   the account snapshots up to the month, the behaviour score with its reason codes, the queue),
   with the model loaded before the clock. Median wall seconds and the ratio to the read.

Results go to benchmarks/results/collections.json and benchmarks/results/collections.md.

    python benchmarks/bench_collections.py [--repeats 3] [--skip-quality]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "collections.json"
HISTORY = REPO / "data" / "validated" / "performance.parquet"
APPLICATIONS = REPO / "data" / "validated" / "applications.parquet"
SCORES = REPO / "data" / "scores" / "predictions.parquet"
MODEL = REPO / "models" / "behaviour_model"
ORDERS = ("queue", "expected_loss", "dpd_then_balance", "balance")
NAIVE = ("dpd_then_balance", "balance")
SHARES = ("5%", "10%", "20%")


def _machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
    }


def quality() -> dict[str, Any]:
    import pandas as pd

    from scoring.collections.run import run_collections
    from scoring.config import load_params
    from scoring.core.io import read_parquet

    params = load_params(REPO / "params.yaml")
    history = read_parquet(HISTORY)
    applications = read_parquet(APPLICATIONS)
    scores = pd.read_parquet(SCORES, columns=["application_id", "pd", "score"])
    start = time.perf_counter()
    result = run_collections(history, applications, scores, params.collections, params.seed)
    seconds = time.perf_counter() - start
    capture = result.summary["capture_mean"]
    table: dict[str, dict[str, dict[str, float]]] = {"loss": {}, "count": {}}
    for kind, infix in (("loss", ""), ("count", "count_")):
        for order in ORDERS:
            table[kind][order] = {s: capture[f"{order}_{infix}top_{s}"] for s in SHARES}
    ratios = {
        kind: {
            s: table[kind]["queue"][s] / max(table[kind][n][s] for n in NAIVE)
            if max(table[kind][n][s] for n in NAIVE) > 0
            else None
            for s in SHARES
        }
        for kind in table
    }
    behaviour = result.summary["behaviour"]
    return {
        "seconds_run_collections": round(seconds, 1),
        "out_of_time_months": len(result.capture_by_month),
        "accounts_per_month": float(result.capture_by_month["accounts"].mean()),
        "capture": table,
        "queue_over_best_naive": ratios,
        "behaviour": {
            "champion": behaviour["champion"],
            "oot_auc": behaviour["oot_auc"],
            "oot_auc_by_bucket": behaviour["oot_auc_by_bucket"],
            "oot_mean_pd": behaviour["oot_mean_pd"],
            "oot_default_rate": behaviour["oot_default_rate"],
        },
        "forecast_90_balance_error_at_6_months": result.summary["forecast_90_balance_error_at_horizon"],
    }


def cost(repeats: int) -> dict[str, Any]:
    import pandas as pd

    from scoring.collections.month import queue_for_month
    from scoring.collections.scorer import load_verified_behaviour
    from scoring.core.io import read_parquet

    scorer, digest = load_verified_behaviour(MODEL)
    applications = read_parquet(APPLICATIONS)
    scores = pd.read_parquet(SCORES, columns=["application_id", "pd", "score"])
    month = f"{pd.Timestamp(read_parquet(HISTORY, columns=['as_of_month'])['as_of_month'].max()):%Y-%m}"

    def read() -> int:
        return len(read_parquet(HISTORY))

    def queue() -> int:
        history = read_parquet(HISTORY)
        return len(queue_for_month(history, applications, month, scorer, scores).queue)

    runs: dict[str, list[float]] = {"read": [], "queue": []}
    sizes = {"read": read(), "queue": queue()}  # warm-up: imports and first-use code paths
    for _ in range(repeats):
        for name, step in (("read", read), ("queue", queue)):
            start = time.perf_counter()
            step()
            runs[name].append(time.perf_counter() - start)
    median = {name: statistics.median(values) for name, values in runs.items()}
    return {
        "month": month,
        "history_rows": sizes["read"],
        "queue_accounts": sizes["queue"],
        "model_digest": digest,
        "repeats": repeats,
        "seconds": {name: [round(v, 3) for v in values] for name, values in runs.items()},
        "median_seconds": {name: round(v, 3) for name, v in median.items()},
        "queue_over_read": round(median["queue"] / median["read"], 2),
    }


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "# Collections benchmark (benchmarks/bench_collections.py)",
        "",
        f"Measured {m['date']} on {m['cpus']} CPUs ({m['platform']}, Python {m['python']}), "
        f"load average {m['load_average'][0]:.2f} before. Default data (params.yaml), the pipeline's "
        "gated history, applications, application scores and exported behaviour model.",
    ]
    q = doc.get("quality")
    if q:
        lines += [
            "",
            "## The queue against naive orders",
            "",
            f"Out-of-time months: {q['out_of_time_months']} (about {q['accounts_per_month']:,.0f} delinquent "
            "accounts each). Share captured in the first 5 / 10 / 20% of each month's delinquent accounts, "
            "mean over the months; losses = net exposure (balance less the car's recovery) of the accounts "
            "that reached 90+ within six months.",
            "",
            "| order | losses 5% | losses 10% | losses 20% | defaults 5% | defaults 10% | defaults 20% |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for order in ORDERS:
            loss = q["capture"]["loss"][order]
            count = q["capture"]["count"][order]
            lines.append(
                f"| {order} | " + " | ".join(f"{loss[s]:.1%}" for s in SHARES) + " | "
                + " | ".join(f"{count[s]:.1%}" for s in SHARES) + " |"
            )  # fmt: skip
        r = q["queue_over_best_naive"]
        lines += [
            "",
            "Queue over the better naive order (ratio), losses: "
            + ", ".join(f"{s} {r['loss'][s]:.2f}x" for s in SHARES if r["loss"][s] is not None)
            + "; defaults by count: "
            + ", ".join(f"{s} {r['count'][s]:.2f}x" for s in SHARES if r["count"][s] is not None)
            + ".",
            "",
            f"Behaviour score ({q['behaviour']['champion']}): "
            f"out-of-time AUC {q['behaviour']['oot_auc']:.3f}; "
            "by bucket "
            + ", ".join(
                f"M{b} {v:.3f}" for b, v in q["behaviour"]["oot_auc_by_bucket"].items() if v is not None
            )
            + f"; calibrated mean PD {q['behaviour']['oot_mean_pd']:.2%} against "
            f"{q['behaviour']['oot_default_rate']:.2%} observed.",
            "",
            "Markov forecast of the 90+ balance six months ahead, relative error at each origin: "
            + ", ".join(
                f"{o} {e:+.1%}" for o, e in sorted(q["forecast_90_balance_error_at_6_months"].items())
            )
            + ".",
            "",
            f"`run_collections` took {q['seconds_run_collections']} s.",
        ]
    c = doc.get("cost")
    if c:
        lines += [
            "",
            "## One month's queue against reading the history",
            "",
            f"{c['history_rows']:,} history rows; the queue of {c['month']} holds {c['queue_accounts']:,} "
            f"accounts. Median of {c['repeats']} runs in one process after a warm-up.",
            "",
            "| step | median s | x read |",
            "|---|---:|---:|",
            f"| read the history (baseline) | {c['median_seconds']['read']:.2f} | 1.00 |",
            "| read + gate + snapshots + score + queue (`scoring collect`) | "
            f"{c['median_seconds']['queue']:.2f} "
            f"| {c['queue_over_read']:.2f} |",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args()
    missing = [str(p.relative_to(REPO)) for p in (HISTORY, APPLICATIONS, SCORES, MODEL) if not p.exists()]
    if missing:
        sys.exit(f"missing {missing}: run `make run` first (the benchmark reads the pipeline's outputs)")
    doc: dict[str, Any] = {"machine": _machine()}
    if not args.skip_quality:
        doc["quality"] = quality()
    doc["cost"] = cost(args.repeats)
    doc["machine"]["load_average_after"] = list(os.getloadavg())
    from scoring.core.figures import write_results

    text = markdown(doc)
    write_results(RESULTS, doc, text)
    print(text)


if __name__ == "__main__":
    main()
