"""Benchmark: reason codes for 100k applications, fast exact TreeSHAP against XGBoost's own.

Two boosters, side by side in the same run and on the same rows:

- ``pipeline``: the pipeline's challenger (models/candidates/xgboost when present, else trained here
  with the tuned settings of models/tuned_xgboost.json / params.yaml);
- ``depth6_300``: the issue's reference case, 300 trees of depth 6.

For each: XGBoost ``pred_contribs`` (the baseline, exact TreeSHAP) and
:mod:`scoring.models.treeshap` (per-leaf tables) in rows per second on ``--threads`` threads, the
one-off table build and compile times, full reason codes per second
(``ReasonCoder.reasons``: contributions, grouping, ranking, texts), the largest absolute
difference between the two contribution matrices, and the share of applications whose
top-4 reason codes (and top-4 ungrouped features) are identical under both.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/bench_explanations.py --n 100000

Figures go to benchmarks/results/explanations.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from scoring.config import Params, load_params
from scoring.core.figures import write_results
from scoring.core.io import read_json
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.explain.config import ReasonsConfig
from scoring.explain.reasons import CODE_COLUMNS, ReasonCoder
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidates.xgboost import BoosterEstimator, train_booster_rounds
from scoring.models.config import XGBoostConfig
from scoring.models.model import PDModel
from scoring.models.training import with_tuned_parameters
from scoring.models.treeshap import build_tables, float64_margin, tree_shap_tables
from scoring.serving.bundle import FEATURES_FILE, ModelBundle

ROOT = Path(__file__).resolve().parents[1]
NON_FEATURES = ["application_id", "customer_id", "application_date", "default_12m"]


def timed(fn: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def timed_cpu(fn: Any) -> tuple[Any, float, float]:
    """Result, wall seconds and CPU seconds of the process (all its threads).

    On a shared machine the wall time depends on the neighbours; rows per CPU second do not
    (as much), and CPU / (wall x threads) says how much of its threads' time the run got.
    """
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - started, time.process_time() - cpu


PIPELINE = ModelBundle(ROOT / "models")


def has_pipeline_booster() -> bool:
    return PIPELINE.candidate_dir("xgboost").is_dir() and PIPELINE.has(FEATURES_FILE)


def pipeline_booster(
    features: ApplicationFeatures, train: pd.DataFrame, params: Params, seed: int, threads: int
) -> tuple[xgb.Booster, str]:
    if has_pipeline_booster():
        stored = PIPELINE.load_candidate("xgboost")
        assert isinstance(stored, BoosterEstimator)
        return stored.booster, "models/candidates/xgboost (the pipeline's challenger)"
    tuned_path = ROOT / "models" / "tuned_xgboost.json"
    config, rounds = params.train.xgboost, 300
    if tuned_path.exists():
        tuned = read_json(tuned_path)
        config, _ = with_tuned_parameters(config, tuned.get("best_params", {}))
        rounds = int(tuned.get("best_n_rounds", rounds))
    config = config.model_copy(update={"n_jobs": threads})
    X = features.transform(train)
    return train_booster_rounds(X, train["default_12m"], config, rounds, seed), "trained (tuned settings)"


def top_features(values: np.ndarray, k: int = 4) -> np.ndarray:
    """The k largest positive contributions per row as feature indices (-1 pads), stable order."""
    key = np.where(values > 0, values, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(values, order, axis=1) > 0, order, -1)


def bench_model(
    name: str,
    source: str,
    booster: xgb.Booster,
    features: ApplicationFeatures,
    matrix: pd.DataFrame,
    reference: pd.DataFrame,
    reasons_config: ReasonsConfig,
    threads: int,
) -> dict[str, Any]:
    n = len(matrix)
    model = PDModel(features, BoosterEstimator(booster))
    booster.set_param({"nthread": threads})

    tables, build_s = timed(lambda: build_tables(booster))
    _, compile_s = timed(lambda: tree_shap_tables(tables, matrix.iloc[:8], threads))

    dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=threads)
    exact, exact_s, exact_cpu = timed_cpu(
        lambda: np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
    )
    fast, fast_s, fast_cpu = timed_cpu(lambda: tree_shap_tables(tables, matrix, threads))
    margin = np.asarray(booster.predict(dmatrix, output_margin=True), dtype=np.float64)
    margin64 = float64_margin(booster, matrix)

    coder = ReasonCoder.fit(model, reference, reasons_config)
    model.estimator._shap_tables = tables  # type: ignore[attr-defined]
    reasons, reasons_s, reasons_cpu = timed_cpu(lambda: coder.reasons(model, matrix))
    columns = [*matrix.columns, "bias"]
    exact_reasons = coder.reasons_from_contributions(pd.DataFrame(exact, index=matrix.index, columns=columns))
    fast_reasons = coder.reasons_from_contributions(pd.DataFrame(fast, index=matrix.index, columns=columns))
    exact_codes = exact_reasons[CODE_COLUMNS].to_numpy()
    fast_codes = fast_reasons[CODE_COLUMNS].to_numpy()
    same_codes = (exact_codes == fast_codes).all(axis=1)
    same_sets = [set(a) == set(b) for a, b in zip(exact_codes, fast_codes, strict=True)]
    same_features = (top_features(exact[:, :-1]) == top_features(fast[:, :-1])).all(axis=1)
    pipeline_reasons_same = bool((reasons[CODE_COLUMNS].to_numpy() == fast_codes).all())

    n_trees = booster.num_boosted_rounds()
    n_leaves = tables.n_leaves
    return {
        "model": name,
        "source": source,
        "n_trees": n_trees,
        "n_leaves": n_leaves,
        "max_path_features": int(tables.leaf_depth.max()),
        "table_entries": int(tables.table.size),
        "table_build_s": round(build_s, 3),
        "first_call_s (numba compile or cache load)": round(compile_s, 3),
        "pred_contribs_rows_per_s": round(n / exact_s),
        "pred_contribs_ms_per_row": round(1000 * exact_s / n, 4),
        "fast_rows_per_s": round(n / fast_s),
        "fast_ms_per_row": round(1000 * fast_s / n, 4),
        "speedup_fast_vs_pred_contribs": round(exact_s / fast_s, 2),
        "reason_codes_rows_per_s": round(n / reasons_s),
        "pred_contribs_rows_per_cpu_s": round(n / exact_cpu),
        "fast_rows_per_cpu_s": round(n / fast_cpu),
        "reason_codes_rows_per_cpu_s": round(n / reasons_cpu),
        "cpu_share_of_threads (pred_contribs, fast, reasons)": [
            round(exact_cpu / exact_s / threads, 2),
            round(fast_cpu / fast_s / threads, 2),
            round(reasons_cpu / reasons_s / threads, 2),
        ],
        "max_abs_difference": float(np.abs(exact - fast).max()),
        "additivity_max_error_fast_vs_margin": float(np.abs(fast.sum(axis=1) - margin).max()),
        "additivity_max_error_fast_vs_float64_margin": float(np.abs(fast.sum(axis=1) - margin64).max()),
        "additivity_max_error_pred_contribs_vs_margin": float(np.abs(exact.sum(axis=1) - margin).max()),
        "top4_reason_codes_identical_share": float(same_codes.mean()),
        "top4_reason_code_sets_identical_share": float(np.mean(same_sets)),
        "top4_features_identical_share": float(same_features.mean()),
        "reasons_from_library_equal_fast_path": pipeline_reasons_same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000, help="applications explained")
    parser.add_argument("--n-train", type=int, default=40_000, help="synthetic rows the models train on")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explanations"))
    args = parser.parse_args()

    params = load_params(ROOT / "params.yaml")
    load_start = os.getloadavg()
    started = time.perf_counter()
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=args.n_train + args.n), args.seed)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(apps))
    train = apps.iloc[order[: args.n_train]]
    train = train[train["default_12m"].notna()].reset_index(drop=True)
    scored = apps.iloc[order[args.n_train :]].reset_index(drop=True)

    pipeline_features = (
        PIPELINE.load_features()
        if has_pipeline_booster()
        else ApplicationFeatures(exclude_columns=NON_FEATURES).fit(train)
    )
    booster, source = pipeline_booster(pipeline_features, train, params, args.seed, args.threads)

    deep_features = ApplicationFeatures(exclude_columns=NON_FEATURES).fit(train)
    deep_config = XGBoostConfig(max_depth=6, learning_rate=0.05, n_jobs=args.threads)
    deep, deep_train_s = timed(
        lambda: train_booster_rounds(
            deep_features.transform(train), train["default_12m"], deep_config, 300, args.seed
        )
    )

    results = []
    for name, src, model_booster, feats in (
        ("pipeline", source, booster, pipeline_features),
        ("depth6_300", f"trained here ({deep_train_s:.0f} s)", deep, deep_features),
    ):
        matrix = feats.transform(scored)
        results.append(
            bench_model(name, src, model_booster, feats, matrix, train, params.reasons, args.threads)
        )
        print(json.dumps(results[-1], indent=1))

    summary = {
        "n_applications": args.n,
        "threads": args.threads,
        "load_average_start": [round(v, 2) for v in load_start],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "total_s": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "xgboost": xgb.__version__},
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "NUMBA_NUM_THREADS")},
        "results": results,
    }
    out = Path(args.out)
    write_results(out.with_suffix(".json"), summary, markdown(summary))


def markdown(summary: dict[str, Any]) -> str:
    rows = summary["results"]
    keys = [k for k in rows[0] if k not in ("model",)]
    lines = [
        "# Explanations benchmark: fast exact TreeSHAP against XGBoost pred_contribs",
        "",
        f"{summary['n_applications']} synthetic applications, {summary['threads']} threads, "
        f"load average at start {summary['load_average_start']}, at end {summary['load_average_end']}; "
        f"total {summary['total_s']} s. Command: `OMP_WAIT_POLICY=PASSIVE nice -n 0 .venv/bin/python "
        f"benchmarks/bench_explanations.py --n {summary['n_applications']}`.",
        "",
        "| figure | " + " | ".join(r["model"] for r in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    lines += [f"| {k} | " + " | ".join(str(r[k]) for r in rows) + " |" for k in keys]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
