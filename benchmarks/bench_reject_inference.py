"""Benchmark (issue 18): every reject-inference method against accepts-only and an oracle,
measured on everyone who applied, over legacy-policy strengths, acceptance rates and seeds.

For each scenario (a policy strength and acceptance rate) and seed, the synthetic portfolio
(``--rows`` applications; the project's generator, seed from params.yaml plus the repeat number)
goes through the legacy policy (:mod:`scoring.data.legacy_policy`). Matured applications are cut
by customer (a seeded hash) into development (70%) and a through-the-door holdout (30%). On the
development rows:

- the feature transformer is fitted on the accepts (what the lender has);
- each method of :mod:`scoring.models.reject_inference` builds its training rows from the
  accepts (observed outcomes) and the rejects (no outcome), and an XGBoost booster with the
  challenger's parameters from params.yaml and ``--rounds`` rounds is fitted on them;
- the oracle is the same booster fitted on every development applicant with the drawn outcome
  the lender never sees for the rejects (the best any method could do).

Each model is measured on the holdout, accepted and rejected applicants together, with their
true outcomes (:func:`scoring.reporting.reject_inference.through_the_door`): AUC, Brier, the PD
bias on rejected applicants, and the bad rate (true PD of the approved) at a 60% acceptance rate.
The table gives the mean and standard deviation over seeds, and each method's difference with
accepts-only on the same seed (paired). Figures go to benchmarks/results/reject_inference.json
and .md.

    python benchmarks/bench_reject_inference.py [--rows 40000] [--seeds 5] [--rounds 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.config import load_params
from scoring.core.contract import OUTCOME_COLUMN, TRUE_PD_COLUMN
from scoring.data.legacy_policy import ACCEPTED_COLUMN, LegacyPolicyConfig, apply_legacy_policy
from scoring.data.synthetic import generate_portfolio
from scoring.features.transformer import ApplicationFeatures
from scoring.models.reject_inference import METHODS, augment, booster_learner
from scoring.reporting.reject_inference import through_the_door

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "reject_inference.json"
TARGET = "default_12m"
NON_FEATURES = ("application_id", "customer_id", "application_date", TARGET)
# (strength, acceptance rate): three strengths at the default rate, two other rates at the default strength
SCENARIOS = ((0.3, 0.6), (0.6, 0.6), (0.9, 0.6), (0.6, 0.4), (0.6, 0.8))
MODELS = (*METHODS, "oracle")
HEADLINE_RATE = 0.6


def _holdout(customers: pd.Series, seed: int) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(
        customers.astype(str), index=False, hash_key=f"{seed:016d}"[-16:]
    ).to_numpy()
    return (hashed % 10) < 3


def one_run(rows: int, strength: float, rate: float, seed: int, rounds: int, params: Any) -> dict[str, Any]:
    config = params.data.synthetic.model_copy(update={"n_applications": rows, "performance_history": False})
    applications, truth = generate_portfolio(config, seed)
    policy = LegacyPolicyConfig(acceptance_rate=rate, strength=strength)
    observed, truth = apply_legacy_policy(applications, truth, policy, seed)
    immature_from = applications["application_date"].max() - pd.DateOffset(months=config.immature_months)
    matured = (applications["application_date"] <= immature_from).to_numpy()
    holdout = _holdout(applications["customer_id"], seed) & matured
    development = ~_holdout(applications["customer_id"], seed) & matured
    accepted = truth[ACCEPTED_COLUMN].to_numpy()
    dev_acc, dev_rej = development & accepted, development & ~accepted
    features = ApplicationFeatures(exclude_columns=NON_FEATURES).fit(observed.loc[dev_acc])
    X_acc = features.transform(observed.loc[dev_acc])
    X_rej = features.transform(observed.loc[dev_rej])
    y_acc = observed.loc[dev_acc, TARGET].astype(float).to_numpy()
    X_hold = features.transform(observed.loc[holdout])
    learner = booster_learner(params.train.xgboost.model_copy(update={"n_jobs": 1}), rounds, seed)
    truth_hold = truth.loc[holdout]
    out: dict[str, Any] = {
        "strength": strength,
        "acceptance_rate": rate,
        "seed": seed,
        "development_accepts": int(dev_acc.sum()),
        "development_rejects": int(dev_rej.sum()),
        "holdout": int(holdout.sum()),
        "accepts_bad_rate": float(y_acc.mean()),
        "rejects_true_bad_rate": float(truth.loc[dev_rej, OUTCOME_COLUMN].mean()),
        "models": {},
    }
    for model in MODELS:
        started = time.perf_counter()
        if model == "oracle":
            everyone = development
            X_all = features.transform(observed.loc[everyone])
            y_all = truth.loc[everyone, OUTCOME_COLUMN].astype(float).to_numpy()
            predict = learner(X_all, y_all, np.ones(len(y_all)))
        else:
            data = augment(model, X_acc, y_acc, X_rej, learner, seed=seed)
            predict = learner(data.X, data.y, data.weight)
        metrics = through_the_door(
            predict(X_hold),
            truth_hold[OUTCOME_COLUMN].to_numpy(),
            truth_hold[TRUE_PD_COLUMN].to_numpy(),
            truth_hold[ACCEPTED_COLUMN].to_numpy(),
            observed.loc[holdout, "loan_amount"].to_numpy(),
        )
        metrics["seconds"] = round(time.perf_counter() - started, 2)
        out["models"][model] = metrics
    return out


def _headline(metrics: dict[str, Any]) -> dict[str, float]:
    book = next(b for b in metrics["at_acceptance_rate"] if abs(b["acceptance_rate"] - HEADLINE_RATE) < 1e-9)
    return {
        "auc": metrics["auc"],
        "brier": metrics["brier"],
        "pd_bias_rejected": metrics["pd_bias_rejected"],
        "bad_rate_at_60": book["expected_bad_rate"],
    }


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table = []
    for strength, rate in SCENARIOS:
        mine = [r for r in runs if r["strength"] == strength and r["acceptance_rate"] == rate]
        if not mine:
            continue
        for model in MODELS:
            values = {
                k: np.array([_headline(r["models"][model])[k] for r in mine])
                for k in _headline(mine[0]["models"][model])
            }
            base = {k: np.array([_headline(r["models"]["accepts_only"])[k] for r in mine]) for k in values}
            row: dict[str, Any] = {
                "strength": strength,
                "acceptance_rate": rate,
                "model": model,
                "seeds": len(mine),
            }
            for k, v in values.items():
                row[k] = float(v.mean())
                row[f"{k}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
                diff = v - base[k]
                row[f"{k}_vs_accepts_only"] = float(diff.mean())
                row[f"{k}_vs_accepts_only_sd"] = float(diff.std(ddof=1)) if len(diff) > 1 else 0.0
            table.append(row)
    return table


def ranking(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each method's mean AUC and bad-rate change against accepts-only over every scenario."""
    out = []
    for model in MODELS:
        rows = [r for r in table if r["model"] == model]
        out.append(
            {
                "model": model,
                "auc_vs_accepts_only": float(np.mean([r["auc_vs_accepts_only"] for r in rows])),
                "bad_rate_at_60_vs_accepts_only": float(
                    np.mean([r["bad_rate_at_60_vs_accepts_only"] for r in rows])
                ),
                "abs_pd_bias_rejected": float(np.mean([abs(r["pd_bias_rejected"]) for r in rows])),
                "scenarios_auc_better": int(sum(r["auc_vs_accepts_only"] > 0 for r in rows)),
                "scenarios": len(rows),
            }
        )
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# Reject inference against the truth (benchmarks/bench_reject_inference.py)",
        "",
        f"{doc['date']}, {doc['machine']['cpus']} cores. {doc['rows']:,} applications per portfolio, "
        f"{doc['seeds']} seeds per scenario, XGBoost {doc['rounds']} rounds with the challenger's "
        "parameters. Holdout: 30% of the matured applicants by customer, accepted and rejected, with "
        "their true outcomes. Mean ± standard deviation over seeds; `Δ` is the paired difference with "
        "accepts-only on the same seed. Bad rate: mean true PD of the 60% of holdout applicants each "
        "model ranks safest. PD bias on rejects: mean predicted PD minus mean true PD of the "
        "rejected holdout applicants.",
        "",
    ]
    for strength, rate in SCENARIOS:
        rows = [r for r in doc["table"] if r["strength"] == strength and r["acceptance_rate"] == rate]
        if not rows:
            continue
        run0 = next(r for r in doc["runs"] if r["strength"] == strength and r["acceptance_rate"] == rate)
        lines += [
            f"## Policy strength {strength}, acceptance rate {rate:.0%}",
            "",
            f"Accepts' bad rate {run0['accepts_bad_rate']:.3f}, rejects' true bad rate "
            f"{run0['rejects_true_bad_rate']:.3f} (seed {run0['seed']}).",
            "",
            "| model | TTD AUC | Δ AUC | Brier | PD bias on rejects | bad rate at 60% | Δ bad rate |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['model']} | {r['auc']:.4f} ± {r['auc_sd']:.4f} | {r['auc_vs_accepts_only']:+.4f} ± "
                f"{r['auc_vs_accepts_only_sd']:.4f} | {r['brier']:.4f} | {r['pd_bias_rejected']:+.4f} ± "
                f"{r['pd_bias_rejected_sd']:.4f} | {r['bad_rate_at_60']:.4f} | "
                f"{r['bad_rate_at_60_vs_accepts_only']:+.4f} ± {r['bad_rate_at_60_vs_accepts_only_sd']:.4f} |"
            )
        lines.append("")
    lines += [
        "## Over every scenario",
        "",
        "| model | mean Δ AUC | mean Δ bad rate at 60% | mean abs PD bias on rejects | better AUC in |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in doc["ranking"]:
        lines.append(
            f"| {r['model']} | {r['auc_vs_accepts_only']:+.4f} | "
            f"{r['bad_rate_at_60_vs_accepts_only']:+.4f} | {r['abs_pd_bias_rejected']:.4f} | "
            f"{r['scenarios_auc_better']} of {r['scenarios']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    params = load_params(REPO / "params.yaml")
    doc: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "rows": args.rows,
        "seeds": args.seeds,
        "rounds": args.rounds,
        "runs": [],
    }
    started = time.perf_counter()
    for strength, rate in SCENARIOS:
        for repeat in range(args.seeds):
            seed = params.seed + repeat
            run = one_run(args.rows, strength, rate, seed, args.rounds, params)
            doc["runs"].append(run)
            auc = {m: round(v["auc"], 4) for m, v in run["models"].items()}
            print(f"strength {strength} rate {rate} seed {seed}: {auc}", file=sys.stderr, flush=True)
    doc["seconds"] = round(time.perf_counter() - started, 1)
    doc["table"] = summarise(doc["runs"])
    doc["ranking"] = ranking(doc["table"])
    from scoring.core.figures import write_results

    write_results(args.output, doc, markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
