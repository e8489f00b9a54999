"""Benchmark: the points scorecard's test AUC against its size and its collinearity limits.

For each dataset (the default synthetic auto-loan portfolio and the four public files in
../shared/data, read by path) the scorecard is fitted as the pipeline's final fit fits it
(:func:`scoring.models.candidates.scorecard.train_scorecard` on train+valid) under a grid of
``train.scorecard`` settings, and scored on the test split:

- data: the synthetic portfolio as the prepare stage makes it for ``data.source: synthetic``
  (:func:`scoring.data.prepare.prepare_source` with params.yaml's settings and seed), the rows
  with a target; the files as benchmarks/quality.py reads them (:func:`quality.load_dataset`);
- split: the pipeline's own (:func:`scoring.data.split.split_applications`, params.yaml's
  ``split`` and seed); train, valid and test are used, the synthetic data's oot is not;
- features: :class:`scoring.features.transformer.ApplicationFeatures` with the features
  stage's settings, fitted on train+valid, applied to train+valid and test;
- config: params.yaml's ``train.scorecard`` (its exclude_features as they are, and the bin
  overrides of ``bins_file`` for the data's source, as the train stage applies them), with
  ``max_correlation`` in (None, 0.9, 0.8, 0.7, 0.6) crossed with ``max_features`` in
  (None, 20, 15, 12, 10, 8), the sign rule on (``consistent_signs``); plus the reference row:
  the sign rule off, no correlation filter, no cap (the defaults before the sign rule).

A cap of ``max_features`` at or above the number of features that reach ``min_iv`` selects
nothing away (optbinning's top-k of fewer than k), so that fit is the uncapped one: it is not
refitted but recorded with ``same_as_max_features_none``.

Per fit: the number of characteristics and which, the test AUC, the characteristics the sign
rule removed (and the one each was collinear with), the coefficients left > 0 (against risk),
the largest VIF of the characteristics' WoE on the train+valid rows and how many exceed 10,
and the fit's wall seconds. One thread (OpenMP and BLAS limited to 1).

Results go to benchmarks/results/scorecard_size.json and scorecard_size.md, rewritten after
each dataset (datasets from an earlier run that this one does not repeat are kept).

    python benchmarks/scorecard_size.py [--datasets synthetic taiwan hmeq german australian]
                                        [--data-dir ../shared/data] [--params params.yaml]
"""

from __future__ import annotations

import os

# Before numpy, scikit-learn or optbinning load their thread pools.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import datetime as dt
import json
import logging
import math
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

RiskDirections = Mapping[str, Literal["increasing", "decreasing"]]
REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
JSON_PATH = RESULTS_DIR / "scorecard_size.json"
MD_PATH = RESULTS_DIR / "scorecard_size.md"

DATASETS: tuple[str, ...] = ("synthetic", "taiwan", "hmeq", "german", "australian")
MAX_CORRELATIONS: tuple[float | None, ...] = (None, 0.9, 0.8, 0.7, 0.6)
MAX_FEATURES: tuple[int | None, ...] = (None, 20, 15, 12, 10, 8)
VIF_FLAG = 10.0
AUC_TOLERANCE = 0.003  # "as good as the best": within this much test AUC

logger = logging.getLogger("scorecard_size")


def default_data_dir() -> Path:
    """../shared/data beside the checkout; for a git worktree, beside the main checkout."""
    beside = REPO.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    git = REPO / ".git"
    if git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(git.read_text(encoding="utf-8").split(":", 1)[1].strip())
        main_checkout = gitdir.parents[2]
        if (main_checkout.parent / "shared" / "data").is_dir():
            return main_checkout.parent / "shared" / "data"
    return beside


# --------------------------------------------------------------------------- data


@dataclass
class Prepared:
    """One dataset's feature matrices, labels and where they came from."""

    key: str
    source: str  # params data.source whose bin overrides apply
    X_fit: pd.DataFrame  # train+valid
    y_fit: pd.Series
    X_test: pd.DataFrame
    y_test: npt.NDArray[np.int64]
    info: dict[str, Any]


def load_frame(key: str, data_dir: Path, params: Any) -> tuple[pd.DataFrame, Any, str, dict[str, Any]]:
    """The labelled applications of ``key``, their DatasetSpec, the data source and a note."""
    if key == "synthetic":
        from scoring.data.prepare import prepare_source

        data = params.data.model_copy(update={"source": "synthetic"})
        prepared = prepare_source(data, params.seed)
        frame, spec = prepared.applications, prepared.spec
        n_all = len(frame)
        frame = frame.loc[frame[spec.target_column].notna()].reset_index(drop=True)
        note = {
            "source": "synthetic portfolio, params.yaml data.synthetic and seed (prepare_source)",
            "n_generated": n_all,
        }
        return frame, spec, "synthetic", note
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import quality

    ds = quality.DATASETS[key]
    frame, _, spec = quality.load_dataset(ds, data_dir)
    note = {
        "source": str(data_dir / ds.file),
        "target_column": ds.target_column,
        "id_column": ds.id_column,
        "categorical_columns": list(ds.categorical_columns),
        "drop_columns": list(ds.drop_columns),
    }
    return frame, spec, "file", note


def prepare(key: str, data_dir: Path, params: Any) -> Prepared:
    from scoring.data.split import split_applications
    from scoring.features.transformer import ApplicationFeatures

    frame, spec, source, note = load_frame(key, data_dir, params)
    parts = split_applications(frame, spec, params.split, params.seed).parts
    fit_rows = pd.concat([parts["train"], parts["valid"]], ignore_index=True)
    test_rows = parts["test"]
    features = ApplicationFeatures(
        exclude_columns=spec.non_feature_columns,
        categorical_columns=spec.categorical_columns,
        max_category_levels=params.features.max_category_levels,
        min_category_count=params.features.min_category_count,
    ).fit(fit_rows)
    X_fit = features.transform(fit_rows)
    X_test = features.transform(test_rows)
    y_fit = pd.Series(pd.to_numeric(fit_rows[spec.target_column]).to_numpy(dtype=np.int64), index=X_fit.index)
    y_test = pd.to_numeric(test_rows[spec.target_column]).to_numpy(dtype=np.int64)
    info = {
        **note,
        "rows": {name: len(part) for name, part in parts.items() if len(part)},
        "fit_rows": len(X_fit),
        "test_rows": len(X_test),
        "fit_default_rate": round(float(y_fit.mean()), 4),
        "test_default_rate": round(float(y_test.mean()), 4),
        "n_features": X_fit.shape[1],
    }
    return Prepared(key, source, X_fit, y_fit, X_test, y_test, info)


# --------------------------------------------------------------------------- fits


@dataclass(frozen=True)
class Setting:
    max_correlation: float | None
    max_features: int | None
    consistent_signs: bool = True

    @property
    def label(self) -> str:
        signs = "" if self.consistent_signs else ", sign rule off"
        return f"max_correlation={self.max_correlation}, max_features={self.max_features}{signs}"


def grid() -> list[Setting]:
    """The reference (sign rule off, no limits) first, then the sign-consistent grid."""
    settings = [Setting(None, None, consistent_signs=False)]
    settings += [Setting(c, k) for c in MAX_CORRELATIONS for k in MAX_FEATURES]
    return settings


def base_config(params: Any, source: str) -> Any:
    """params.yaml's train.scorecard with the bin overrides of its bins_file for ``source``."""
    from scoring.models.scorecard_bins import load_bin_overrides

    scorecard = params.train.scorecard
    bins_file = scorecard.bins_file
    path = (
        None
        if bins_file is None
        else (Path(bins_file) if Path(bins_file).is_absolute() else REPO / bins_file)
    )
    overrides = load_bin_overrides(path, source)
    return scorecard.model_copy(update={"overrides": dict(overrides)})


def candidate_names(X: pd.DataFrame, config: Any) -> list[str]:
    """The columns the scorecard chooses among: less exclude_features and excluded overrides."""
    excluded = set(config.exclude_features) | {n for n, o in config.overrides.items() if o.exclude}
    return [c for c in X.columns if c not in excluded]


def n_reaching_min_iv(
    data: Prepared, config: Any, monotone_risk: RiskDirections
) -> tuple[int, dict[str, float]]:
    """How many candidate features reach min_iv (the binning alone, as the scorecard bins them)."""
    from dataclasses import replace

    from scoring.models.candidates.scorecard import scorecard_settings
    from scoring.models.scorecard import fit_binning_process

    names = candidate_names(data.X_fit, config)
    X = data.X_fit[names]
    settings = replace(
        scorecard_settings(config, monotone_risk, X),
        max_features=None,
        max_correlation=None,
        consistent_signs=False,
    )
    process, _ = fit_binning_process(X, data.y_fit, settings)
    table = process.summary()
    ivs = {str(r["name"]): float(r["iv"]) for _, r in table.iterrows()}
    return int(np.asarray(process.get_support()).sum()), ivs


def fit_one(data: Prepared, config: Any, monotone_risk: RiskDirections, seed: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from scoring.models.candidates.scorecard import train_scorecard
    from scoring.models.scorecard_selection import correlation_and_vif, woe_frame

    started = time.perf_counter()
    model = train_scorecard(data.X_fit, data.y_fit, config, dict(monotone_risk), seed)
    seconds = time.perf_counter() - started
    auc = float(roc_auc_score(data.y_test, np.asarray(model.predict_pd(data.X_test), dtype=np.float64)))
    fit_auc = float(roc_auc_score(data.y_fit, np.asarray(model.predict_pd(data.X_fit), dtype=np.float64)))
    corr, vif = correlation_and_vif(woe_frame(model, data.X_fit))
    vifs = [v for v in vif.values() if v is not None]
    singular = [k for k, v in vif.items() if v is None]
    return {
        "n_characteristics": len(model.selected_features),
        "test_auc": round(auc, 5),
        "fit_auc": round(fit_auc, 5),
        "selected": list(model.selected_features),
        "sign_rule_removed": [
            {
                "variable": r.variable,
                "coefficient": round(r.coefficient, 5),
                "collinear_with": r.collinear_with,
                "r": None if r.r is None else round(r.r, 3),
                "fit_auc_cost": round(r.auc_cost, 5),
            }
            for r in model.sign_rule.removed
        ],
        "n_sign_removed": len(model.sign_rule.removed),
        "against_risk": model.against_risk(),
        "n_positive_coefficients": sum(1 for f in model.features if f.coefficient > 0),
        "max_vif": round(max(vifs), 3) if vifs else None,
        "n_vif_above_10": sum(1 for v in vifs if v > VIF_FLAG),
        "vif_singular": singular,
        "vif": {k: None if v is None else round(v, 3) for k, v in vif.items()},
        "max_abs_correlation": round(float(corr["max_abs"]), 3),
        "fit_seconds": round(seconds, 2),
    }


def run_dataset(key: str, data_dir: Path, params: Any, progress: Any) -> dict[str, Any]:
    started = time.perf_counter()
    data = prepare(key, data_dir, params)
    progress(
        f"{key}: {data.info['fit_rows']} train+valid rows, {data.info['test_rows']} test rows, "
        f"{data.info['n_features']} features ({time.perf_counter() - started:.1f} s to prepare)"
    )
    monotone_risk = dict(params.train.monotone_risk)
    base = base_config(params, data.source)
    candidates = candidate_names(data.X_fit, base)
    n_iv, ivs = n_reaching_min_iv(data, base, monotone_risk)
    progress(f"{key}: {len(candidates)} candidate features, {n_iv} reach min_iv={base.min_iv}")
    rows: list[dict[str, Any]] = []
    done: dict[tuple[float | None, bool], dict[str, Any]] = {}  # the uncapped fit per correlation limit
    for setting in grid():
        k = setting.max_features
        row: dict[str, Any] = {
            "max_correlation": setting.max_correlation,
            "max_features": k,
            "consistent_signs": setting.consistent_signs,
            "reference": not setting.consistent_signs,
        }
        if k is not None and k >= n_iv:
            uncapped = done[(setting.max_correlation, setting.consistent_signs)]
            reason = (
                f"max_features={k} >= the {len(candidates)} candidate features"
                if k >= len(candidates)
                else f"max_features={k} >= the {n_iv} features reaching min_iv"
            )
            row.update({**uncapped["result"], "fit_seconds": 0.0})
            row.update({"same_as_max_features_none": True, "skipped_because": reason})
            rows.append(row)
            continue
        config = base.model_copy(
            update={
                "max_correlation": setting.max_correlation,
                "max_features": k,
                "consistent_signs": setting.consistent_signs,
            }
        )
        try:
            result = fit_one(data, config, monotone_risk, params.seed)
        except Exception as error:  # recorded, the grid goes on
            logger.exception("%s: %s failed", key, setting.label)
            row.update({"error": f"{type(error).__name__}: {error}"})
            rows.append(row)
            progress(f"{key}: {setting.label}: FAILED {type(error).__name__}: {error}")
            continue
        row.update(result)
        row["same_as_max_features_none"] = False
        rows.append(row)
        if k is None:
            done[(setting.max_correlation, setting.consistent_signs)] = {"result": result}
        removed = ", ".join(r["variable"] for r in result["sign_rule_removed"]) or "-"
        progress(
            f"{key}: {setting.label}: AUC {result['test_auc']:.4f}, {result['n_characteristics']} chars, "
            f"max VIF {fmt_num(result['max_vif'], 1)} ({result['n_vif_above_10']} > 10), "
            f"sign rule removed {removed}, {result['n_positive_coefficients']} > 0 left, "
            f"{result['fit_seconds']:.1f} s"
        )
    return {
        "dataset": key,
        "data": data.info,
        "candidate_features": candidates,
        "n_candidate_features": len(candidates),
        "n_reaching_min_iv": n_iv,
        "information_value": {k: round(v, 4) for k, v in sorted(ivs.items(), key=lambda kv: -kv[1])},
        "bin_overrides": sorted(base.overrides),
        "rows": rows,
        "best": best_and_smallest(rows),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def best_and_smallest(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The best sign-consistent fit by test AUC, and the smallest within AUC_TOLERANCE of it
    (fewest characteristics; then the higher AUC; then the looser limits)."""
    fitted = [r for r in rows if r["consistent_signs"] and "error" not in r]
    if not fitted:
        return {}
    best = max(fitted, key=lambda r: r["test_auc"])
    close = [r for r in fitted if r["test_auc"] >= best["test_auc"] - AUC_TOLERANCE]
    smallest = min(close, key=lambda r: (r["n_characteristics"], -r["test_auc"]))

    def pick(r: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "max_correlation": r["max_correlation"],
            "max_features": r["max_features"],
            "test_auc": r["test_auc"],
            "n_characteristics": r["n_characteristics"],
            "max_vif": r["max_vif"],
            "selected": r["selected"],
        }

    reference = next((r for r in rows if r["reference"] and "error" not in r), None)
    return {
        "tolerance": AUC_TOLERANCE,
        "best": pick(best),
        "smallest_within_tolerance": pick(smallest),
        "reference": None if reference is None else pick(reference),
    }


# --------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    import optbinning
    import sklearn

    return {
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "optbinning": optbinning.__version__,
        },
        "env": {k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


def fmt_num(value: float | None, digits: int) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def cell(row: Mapping[str, Any]) -> str:
    if "error" in row:
        return "failed"
    text = f"{row['test_auc']:.4f} ({row['n_characteristics']}, {fmt_num(row['max_vif'], 1)})"
    return text + " =" if row.get("same_as_max_features_none") else text


def limit(value: float | int | None) -> str:
    return "none" if value is None else str(value)


def markdown(results: Mapping[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        "# Scorecard size and collinearity limits",
        "",
        f"Run {meta['date']} on {meta['machine']['machine']}, {meta['machine']['cpus']} CPUs "
        f"(load average {meta['machine']['load_average_at_start']} at start, "
        f"{meta.get('load_average_at_end')} at end), one thread; "
        f"{meta.get('wall_seconds', 0.0) / 60:.1f} min. `python benchmarks/scorecard_size.py`.",
        "",
        "The scorecard as the pipeline's final fit makes it (`train_scorecard` on train+valid, "
        "params.yaml's `train.scorecard` with its exclude_features and the bin overrides of its "
        "`bins_file` for the data's source), scored on the pipeline's test split (AUC of the "
        "uncalibrated PD). Features: `ApplicationFeatures` fitted on train+valid. Cells: "
        "**test AUC (characteristics, max VIF)**, VIF of the characteristics' WoE on train+valid. "
        "Rows: `max_correlation`; columns: `max_features`; sign rule on. A cell marked `=` has "
        "`max_features` at or above the number of features that reach `min_iv`: it is the "
        "uncapped fit (not refitted). The reference is today's default: sign rule off, no "
        "correlation filter, no cap.",
        "",
    ]
    for key in DATASETS:
        res = results["datasets"].get(key)
        if res is None:
            continue
        info = res["data"]
        rows = res["rows"]
        lines += [
            f"## {key}",
            "",
            f"{info['fit_rows']} train+valid rows (default rate {info['fit_default_rate']:.3f}), "
            f"{info['test_rows']} test rows (default rate {info['test_default_rate']:.3f}); "
            f"{res['n_candidate_features']} candidate features, {res['n_reaching_min_iv']} reach "
            f"min_iv; {res['wall_seconds']:.0f} s."
            + (f" Bin overrides: {', '.join(res['bin_overrides'])}." if res["bin_overrides"] else ""),
            "",
            "| max_correlation \\ max_features | " + " | ".join(limit(k) for k in MAX_FEATURES) + " |",
            "|---|" + "---|" * len(MAX_FEATURES),
        ]
        by_key = {(r["max_correlation"], r["max_features"]): r for r in rows if r["consistent_signs"]}
        for c in MAX_CORRELATIONS:
            cells = [cell(by_key[(c, k)]) if (c, k) in by_key else "" for k in MAX_FEATURES]
            lines.append(f"| {limit(c)} | " + " | ".join(cells) + " |")
        reference = next(r for r in rows if r["reference"])
        lines += [
            "",
            f"Reference (sign rule off, no limits): {cell(reference)}"
            + (
                f"; {reference['n_positive_coefficients']} coefficient(s) > 0 (against risk): "
                f"{', '.join(reference['against_risk'])}"
                if reference.get("n_positive_coefficients")
                else "; no coefficient > 0"
            )
            + (f"; {reference['n_vif_above_10']} VIF > 10" if reference.get("n_vif_above_10") else "")
            + ".",
            "",
        ]
        lines += sign_rule_lines(rows)
        lines.append("")
    lines += [
        f"## Smallest configuration within {AUC_TOLERANCE} AUC of the best (sign rule on)",
        "",
        "| dataset | best: limits | best AUC (chars) | smallest: limits | its AUC (chars, max VIF) "
        "| reference AUC (chars) |",
        "|---|---|---|---|---|---|",
    ]
    for key in DATASETS:
        res = results["datasets"].get(key)
        if res is None or not res["best"]:
            continue
        best, small, ref = (
            res["best"]["best"],
            res["best"]["smallest_within_tolerance"],
            res["best"]["reference"],
        )
        ref_text = "n/a" if ref is None else f"{ref['test_auc']:.4f} ({ref['n_characteristics']})"
        lines.append(
            f"| {key} | corr {limit(best['max_correlation'])}, k {limit(best['max_features'])} "
            f"| {best['test_auc']:.4f} ({best['n_characteristics']}) "
            f"| corr {limit(small['max_correlation'])}, k {limit(small['max_features'])} "
            f"| {small['test_auc']:.4f} ({small['n_characteristics']}, {fmt_num(small['max_vif'], 1)}) "
            f"| {ref_text} |"
        )
    lines += [
        "",
        "Smallest: fewest characteristics among the sign-consistent fits within "
        f"{AUC_TOLERANCE} test AUC of the best one; ties go to the higher AUC. Its characteristics:",
        "",
    ]
    for key in DATASETS:
        res = results["datasets"].get(key)
        if res is None or not res["best"]:
            continue
        lines.append(f"- {key}: {', '.join(res['best']['smallest_within_tolerance']['selected'])}")
    failed = [
        f"{key} {r['max_correlation']}/{r['max_features']}: {r['error']}"
        for key, res in results["datasets"].items()
        for r in res["rows"]
        if "error" in r
    ]
    if failed:
        lines += ["", "Failed fits:", "", *(f"- {f}" for f in failed)]
    return "\n".join(lines) + "\n"


def sign_rule_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Which characteristics the sign rule removed, over the grid (fitted cells only)."""
    counts: dict[str, int] = {}
    fitted = [
        r for r in rows if r["consistent_signs"] and "error" not in r and not r["same_as_max_features_none"]
    ]
    for r in fitted:
        for removal in r["sign_rule_removed"]:
            counts[removal["variable"]] = counts.get(removal["variable"], 0) + 1
    left = [r for r in rows if r["consistent_signs"] and r.get("n_positive_coefficients")]
    text = (
        "Sign rule removals over the "
        f"{len(fitted)} fitted sign-consistent cells: "
        + (", ".join(f"{name} ({n})" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none")
        + "."
    )
    uncapped = next(
        (
            r
            for r in rows
            if r["consistent_signs"]
            and r["max_correlation"] is None
            and r["max_features"] is None
            and "error" not in r
        ),
        None,
    )
    if uncapped is not None and uncapped["sign_rule_removed"]:
        text += (
            " Uncapped, no filter: "
            + "; ".join(
                f"{x['variable']} (coef {x['coefficient']:+.3f}, r {fmt_num(x['r'], 2)} with "
                f"{x['collinear_with']}, fit AUC cost {x['fit_auc_cost']:+.4f})"
                for x in uncapped["sign_rule_removed"]
            )
            + "."
        )
    if left:
        text += f" Coefficients > 0 left with the rule on: {len(left)} cells (see the JSON)."
    return [text]


def save(result: Mapping[str, Any] | None, meta: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``result`` into the JSON (earlier datasets kept) and rewrite both files."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {}
    if JSON_PATH.is_file():
        previous = json.loads(JSON_PATH.read_text(encoding="utf-8")).get("datasets", {})
    datasets = dict(previous)
    if result is not None:
        datasets[result["dataset"]] = result
    merged = {"meta": dict(meta), "datasets": {k: datasets[k] for k in DATASETS if k in datasets}}
    from scoring.core.figures import write_results

    write_results(JSON_PATH, merged, markdown(merged))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    from scoring.config import load_params

    params = load_params(args.params)
    started = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)

    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": str(args.params),
        "seed": params.seed,
        "grid": {
            "max_correlation": list(MAX_CORRELATIONS),
            "max_features": list(MAX_FEATURES),
            "reference": "consistent_signs=False, max_correlation=None, max_features=None",
        },
        "auc_tolerance": AUC_TOLERANCE,
        "vif_flag": VIF_FLAG,
    }
    for key in args.datasets:
        result = run_dataset(key, args.data_dir, params, progress)
        meta["wall_seconds"] = round(time.perf_counter() - started, 1)
        meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        save(result, meta)
        progress(f"{key}: done in {result['wall_seconds']:.0f} s")
    progress(f"all done; {JSON_PATH} and {MD_PATH}")


if __name__ == "__main__":
    main()
