"""Benchmark: the pipeline's own models on public credit data, under the literature's protocol.

Protocol (Lessmann et al. 2015): 5 repetitions of stratified 2-fold cross-validation, so 10
outer folds per dataset; every model is trained on an outer training half and scored on the
other half, which nothing else reads. Per outer fold:

- the pipeline path: the outer training half is split 80/20 (stratified) into an inner
  train and an inner valid split, the pipeline's train and valid; the feature transformer
  (:class:`scoring.features.ApplicationFeatures`) is fitted on the inner train; the XGBoost
  challenger is tuned with :func:`scoring.models.tuning.tune_xgboost` (params.yaml's tune section,
  objective ``cv``: folds inside the inner train only, as the pipeline's tune stage reads its train
  split only; base config train.xgboost, whose values and XGBoost's library defaults are the
  first trials); then :func:`scoring.models.training.fit_candidates`, the train stage's own
  protocol with params.yaml's ``train`` section (every candidate of ``train.candidates``:
  scorecard, the tuned xgboost, xgboost_defaults, lightgbm, blend), the tuned config passed as
  ``overrides={"xgboost": ...}``: the challenger early-stopped on the inner valid split (which
  fixes its round count), and with ``fit_on: train_valid`` the champion rule on the out-of-fold
  AUC over the whole outer half and every candidate refitted on it; finally the calibrator is
  fitted as the calibrate stage fits it (:func:`scoring.models.calibration.fit_calibrator` on the
  champion's out-of-fold PDs, params.yaml's calibrate.calibration). Scored:

  * "champion": ``fitted.models[decision.champion]`` calibrated, what the exported model returns;
  * "champion_uncalibrated": the same champion's raw PD (calibration is monotone, so this
    only differs in AUC where isotonic calibration makes ties);
  * "xgboost_tuned": the tuned challenger trained on the inner train, early-stopped on the inner
    valid split (:func:`scoring.models.candidates.xgboost.train_xgboost`), and
    "xgboost_tuned_refit" / "scorecard": fit_candidates' xgboost and scorecard candidates
    refitted on the whole outer half (refitted here when ``fit_on: train``).

- peers on the whole outer training half, with the same feature matrix: logistic regression
  on one-hot and standardised inputs, ``XGBClassifier()``, ``LGBMClassifier()`` and
  ``HistGradientBoostingClassifier()`` with default settings.

Reported per dataset and model: mean AUC (standard deviation over the folds), Brier score,
KS, wall time per fold, the fold AUCs; per fold the champion, every candidate's selection AUC
and test AUC, the blend weight and the seconds of each step.
Results go to benchmarks/results/quality.json and quality.md, rewritten after each dataset
(datasets from an earlier run that this one does not repeat are kept).

    python benchmarks/quality.py [--data-dir ../shared/data] [--datasets german australian]
                                 [--trials 25] [--repeats 5] [--params params.yaml]
    python benchmarks/quality.py --render-only   # quality.md and the notes from quality.json

Threads: one per model (XGBoost ``nthread=1``, OpenMP and BLAS limited to 1), with
``OMP_WAIT_POLICY=PASSIVE``, so the wall times compare like with like on a shared machine.
"""

from __future__ import annotations

import os

# Before numpy, xgboost or scikit-learn load their thread pools.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import logging
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "benchmarks" / "results"
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
SEED = 20261128
N_THREADS = 1
INNER_VALID_FRACTION = 0.2

Array = npt.NDArray[np.float64]

logger = logging.getLogger("quality")


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class Dataset:
    key: str
    file: str
    target_column: str
    id_column: str | None = None
    categorical_columns: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    published_auc: float | None = None
    published_note: str = ""


DATASETS: dict[str, Dataset] = {
    d.key: d
    for d in (
        Dataset(
            "german",
            "german_credit.csv",
            target_column="bad",
            drop_columns=("class",),  # the target in another form
            published_auc=0.801,
            published_note="best ensembles, 10x2 CV (Lessmann et al. 2015)",
        ),
        Dataset(
            "australian",
            "australian_credit.csv",
            target_column="class",
            # As the file is (the nominal attributes come integer-coded), as the pipeline reads it.
            published_auc=0.933,
            published_note="10x2 CV (Lessmann et al. 2015)",
        ),
        Dataset(
            "taiwan",
            "taiwan_default_credit_card.csv",
            target_column="default.payment.next.month",
            id_column="ID",  # as in the README's example: no declared categoricals
            published_auc=0.783,
            published_note="gradient boosting, hold-out split",
        ),
        Dataset(
            "hmeq",
            "hmeq.csv",
            target_column="BAD",
            categorical_columns=("REASON", "JOB"),
            published_auc=None,
            published_note="no figure in the issue; XGBoost ranked first (Gunnarsson et al. 2021)",
        ),
    )
}

# Model keys, in table order: (key, label, group).
MODELS: tuple[tuple[str, str, str], ...] = (
    ("champion", "champion as the pipeline exports it (calibrated PD)", "pipeline"),
    ("champion_uncalibrated", "the same champion, uncalibrated PD", "pipeline"),
    ("xgboost_tuned", "challenger: XGBoost tuned (optuna cv), early-stopped on inner train", "pipeline"),
    ("xgboost_tuned_refit", "challenger: XGBoost tuned, refit on outer half", "pipeline"),
    ("scorecard", "scorecard (outer train half)", "peer"),
    ("logistic", "logistic regression (one-hot, standardised)", "peer"),
    ("xgboost_default", "XGBClassifier() defaults", "peer"),
    ("lightgbm_default", "LGBMClassifier() defaults", "peer"),
    ("hgb_default", "HistGradientBoostingClassifier() defaults", "peer"),
)
MODEL_LABELS = {key: label for key, label, _ in MODELS}
MODEL_GROUPS = {key: group for key, _, group in MODELS}


# What the protocol is: prose without measured figures. Every sentence with a figure is
# generated from the results by findings(), so a rerun cannot leave an old number standing.
PROTOCOL_NOTES: tuple[str, ...] = (
    "Inner split stratified; the feature transformer is fitted on the inner train; tuning "
    "(scoring.models.tuning.tune_xgboost with params.yaml's tune section, no time limit, one "
    "thread) reads the inner train only; its first two trials are the base config (train.xgboost) "
    "and XGBoost's library defaults, clipped into the space; early stopping reads the inner valid "
    "split. Files are read as the README's examples read them: German drops `class`, HMEQ's REASON "
    "and JOB are text, Australian and Taiwan keep their codes numeric.",
    "The pipeline path is the train stage's own function, scoring.models.training.fit_candidates, with "
    "params.yaml's train section and the tuned config as overrides={'xgboost': best_config}; the "
    "champion rule reads out-of-fold AUC over the whole outer half and every candidate is refitted "
    "there; then the calibrate stage's calibrator on the champion's out-of-fold PDs. Deviations from "
    "params.yaml, threads only: the champion rule's folds run in this process and every model on one "
    "thread; XGBoost's results do not depend on the thread count.",
    "Models: 'xgboost_tuned' is the tuned challenger trained on the inner train and early-stopped on "
    "the inner valid split; 'xgboost_tuned_refit' and 'scorecard' are fit_candidates' own xgboost and "
    "scorecard candidates, refitted on the whole outer half. Peers on the whole outer half, the same "
    "feature matrix: logistic regression (one-hot, standardised), XGBClassifier(), LGBMClassifier() and "
    "HistGradientBoostingClassifier() at library defaults.",
    "Where the xgboost_defaults candidate and the XGBClassifier() peer differ although their settings "
    "are the same, the cause is row order: fit_candidates refits on inner train and inner valid "
    "concatenated, the peer fits on the outer half in its own order, and XGBoost's hist sketch depends "
    "on row order where a feature has more distinct values than bins. The tuned challenger is exposed "
    "to the same noise.",
    "Timings: s / fold of the champion and of the refit challenger include tuning and the whole of "
    "fit_candidates (every candidate, the out-of-fold choice, the refit); the scorecard's row counts "
    "only the features, since its fit happens inside fit_candidates.",
)
DATASET_ORDER = ("german", "australian", "taiwan", "hmeq")


def _counts(picks: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(picks.items(), key=lambda kv: (-kv[1], kv[0])))


def findings(results: Mapping[str, Any]) -> list[str]:
    """The notes with figures, written from the results themselves."""
    datasets = [(k, results["datasets"][k]) for k in DATASET_ORDER if k in results.get("datasets", {})]
    if not datasets:
        return []
    out = []
    for variant, label in (("champion", "calibrated"), ("champion_uncalibrated", "uncalibrated")):
        met = [
            k
            for k, r in datasets
            if r["acceptance"][variant]["auc_at_least_every_other"]
            and r["acceptance"][variant]["brier_lowest_or_tied"]
        ]
        parts = []
        for key, res in datasets:
            acc = res["acceptance"][variant]
            parts.append(
                f"{key} AUC {acc['auc']:.4f} "
                f"({acc['auc_margin_to_best_other']:+.4f} over {acc['best_other']}), "
                f"Brier {acc['brier']:.4f} ({acc['brier_margin_to_lowest_other']:+.4f} against "
                f"{acc['lowest_other_brier_model']})"
            )
        missed = [k for k, _ in datasets if k not in met]
        verdict = f" (missed on {', '.join(missed)})" if missed else ""
        out.append(
            f"Acceptance ({label}) met on {len(met)} of {len(datasets)} datasets{verdict}: "
            + "; ".join(parts)
            + "."
        )
    out.append(
        "Champion picks over the outer folds: "
        + "; ".join(f"{k} {_counts(r['champion_picks'])}" for k, r in datasets)
        + ". Calibration picks: "
        + "; ".join(f"{k} {_counts(r['calibration_picks'])}" for k, r in datasets)
        + "."
    )
    selection = []
    for key, res in datasets:
        cand = res["candidates"]
        if {"xgboost", "xgboost_defaults", "lightgbm"} <= set(cand):
            selection.append(
                f"{key} {cand['xgboost_defaults']['selection_auc']['mean']:.3f} / "
                f"{cand['lightgbm']['selection_auc']['mean']:.3f} "
                f"vs {cand['xgboost']['selection_auc']['mean']:.3f}"
            )
    if selection:
        out.append(
            "Mean selection AUC of the library-default candidates against the tuned challenger "
            "(xgboost_defaults / lightgbm vs xgboost): " + "; ".join(selection) + "."
        )
    published = [
        f"{k} {r['acceptance']['champion']['auc']:.4f} vs {r['published_auc']} "
        f"({r['acceptance']['champion']['gap_to_published']:+.4f})"
        for k, r in datasets
        if r.get("published_auc") is not None
    ]
    if published:
        out.append(
            "Against the published figures (not an acceptance bar here): " + "; ".join(published) + "."
        )
    out.append(
        "Mean seconds per fold of tune + fit_candidates: "
        + "; ".join(
            f"{k} {r['stage_seconds_per_fold']['tune'] + r['stage_seconds_per_fold']['fit_candidates']:.1f} "
            f"(tune {r['stage_seconds_per_fold']['tune']:.1f})"
            for k, r in datasets
        )
        + f"; load average at the start {results['machine']['load_average_at_start']}."
    )
    return out


def summary(results: Mapping[str, Any]) -> dict[str, Any]:
    """The figures README quotes, one key each."""
    datasets = {k: results["datasets"][k] for k in DATASET_ORDER if k in results.get("datasets", {})}
    return {
        "n_datasets": len(datasets),
        "acceptance_met": sum(
            r["acceptance"]["champion"]["auc_at_least_every_other"]
            and r["acceptance"]["champion"]["brier_lowest_or_tied"]
            for r in datasets.values()
        ),
        "champion_auc": {k: r["models"]["champion"]["auc"]["mean"] for k, r in datasets.items()},
    }


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def stopwatch(times: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall seconds to ``times[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times[key] = times.get(key, 0.0) + time.perf_counter() - start


def _auc(y: Array, score: Array) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def lr_frame(X: pd.DataFrame) -> pd.DataFrame:
    """Categoricals as text with an explicit 'missing' level, for one-hot encoding."""
    out = X.copy()
    for column in X.columns:
        if isinstance(X[column].dtype, pd.CategoricalDtype):
            out[column] = X[column].astype(object).where(X[column].notna(), "missing").astype(str)
    return out


def fit_logistic(X: pd.DataFrame, y: Array, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    prep = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                numeric,
            ),
            ("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    model = make_pipeline(prep, LogisticRegression(C=1.0, max_iter=5000, random_state=seed))
    return model.fit(lr_frame(X), y)


# --------------------------------------------------------------------------- one fold


@dataclass
class FoldOutput:
    preds: dict[str, Array] = field(default_factory=dict)
    times: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def run_fold(
    applications: pd.DataFrame,
    y_all: Array,
    spec: Any,
    train_idx: npt.NDArray[np.intp],
    test_idx: npt.NDArray[np.intp],
    seed: int,
    storage_dir: Path,
    study_name: str,
    train_config: Any,
    tuning_settings: Any,
    calibration_settings: Any,
) -> FoldOutput:
    import lightgbm as lgb
    import xgboost as xgb
    from scipy.special import expit
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    from scoring.features.transformer import ApplicationFeatures
    from scoring.models.calibration import fit_calibrator
    from scoring.models.candidate import CandidatePlugin, FitContext, plugin
    from scoring.models.candidates.xgboost import BoosterEstimator, train_xgboost
    from scoring.models.training import fit_candidates
    from scoring.models.tuning import tune_xgboost

    out = FoldOutput()
    t = out.times
    y_outer = y_all[train_idx]
    inner_tr_pos, inner_va_pos = train_test_split(
        np.arange(len(train_idx)),
        test_size=INNER_VALID_FRACTION,
        stratify=y_outer,
        random_state=seed % 2**32,
    )
    outer_train = applications.iloc[train_idx]
    inner_train = outer_train.iloc[inner_tr_pos]
    inner_valid = outer_train.iloc[inner_va_pos]
    outer_test = applications.iloc[test_idx]
    y_in_tr, y_in_va = y_outer[inner_tr_pos], y_outer[inner_va_pos]
    s_in_tr = pd.Series(y_in_tr, index=inner_train.index)
    s_in_va = pd.Series(y_in_va, index=inner_valid.index)
    s_outer = pd.Series(y_outer, index=outer_train.index)

    # ---- the pipeline: features on inner train, tune, then the train stage's protocol
    with stopwatch(t, "features"):
        features = ApplicationFeatures(
            exclude_columns=spec.non_feature_columns, categorical_columns=spec.categorical_columns
        ).fit(inner_train)
        X_in_tr = features.transform(inner_train)
        X_in_va = features.transform(inner_valid)
        X_outer = features.transform(outer_train)
        X_test = features.transform(outer_test)
    # The tune stage's base: params' train.xgboost (one thread here); the same risk directions
    # as the final fit, as the tune stage passes them.
    base = train_config.xgboost.model_copy(update={"n_jobs": N_THREADS})
    context = FitContext(seed, dict(train_config.monotone_risk))
    monotone = context.numeric_directions(X_in_tr)
    with stopwatch(t, "tune"):
        tuned = tune_xgboost(
            X_in_tr,
            s_in_tr,
            None,
            None,
            base,
            tuning_settings,
            seed,
            storage_dir / f"{study_name}.journal",
            study_name,
            monotone=monotone,
        )
    with stopwatch(t, "fit_candidates"):
        fitted = fit_candidates(
            X_in_tr, s_in_tr, X_in_va, s_in_va, train_config, seed, overrides={"xgboost": tuned.best_config}
        )
    with stopwatch(t, "calibrate"):
        held_out = fitted.calibration
        calibrator = fit_calibrator(
            expit(held_out["champion"].to_numpy(dtype=np.float64)),
            held_out["target"].to_numpy(dtype=np.float64),
            calibration_settings,
            seed,
        )
    decision = fitted.decision
    with stopwatch(t, "predict"):
        p_raw = np.asarray(fitted.models[decision.champion].predict_pd(X_test), dtype=np.float64)
        p_champion = calibrator.predict(p_raw)
    # The tuned challenger as the train stage first fits it: early-stopped on the inner valid
    # split, trained on the inner train only (what fit_candidates settles its round count with).
    with stopwatch(t, "challenger"):
        challenger = train_xgboost(X_in_tr, s_in_tr, X_in_va, s_in_va, tuned.best_config, seed, monotone)
        p_challenger = np.asarray(BoosterEstimator(challenger.booster).predict_pd(X_test), dtype=np.float64)
    # Peers of the pipeline's own kinds on the whole outer half: what fit_candidates made when
    # it refits there, refitted here otherwise.
    with stopwatch(t, "refit_peers"):
        if fitted.fit_on == "train_valid":
            booster_refit, scorecard_refit = fitted.models["xgboost"], fitted.models["scorecard"]
        else:
            refits = {}
            for name in ("xgboost", "scorecard"):
                found = plugin(name)
                assert isinstance(found, CandidatePlugin)
                refits[name] = found.fit(fitted.settings(name), X_outer, s_outer, context)
            booster_refit, scorecard_refit = refits["xgboost"], refits["scorecard"]
        p_booster_refit = np.asarray(booster_refit.predict_pd(X_test), dtype=np.float64)
        p_scorecard = np.asarray(scorecard_refit.predict_pd(X_test), dtype=np.float64)

    out.preds["champion"] = p_champion
    out.preds["champion_uncalibrated"] = p_raw
    out.preds["xgboost_tuned"] = p_challenger
    out.preds["xgboost_tuned_refit"] = p_booster_refit
    out.preds["scorecard"] = p_scorecard
    # Every candidate as exported, on the test half (diagnostics: not models of the tables).
    y_test = y_all[test_idx]
    candidate_test_auc = {
        name: round(_auc(y_test, np.asarray(model.log_odds(X_test), dtype=np.float64)), 5)
        for name, model in fitted.models.items()
    }
    details = decision.details
    blend = details.get("blend", {})
    out.info.update(
        champion=decision.champion,
        selection_auc={k: round(v, 5) for k, v in decision.auc.items()},
        candidate_test_auc=candidate_test_auc,
        blend_parts=blend.get("parts"),
        blend_weight=blend.get("weight"),
        reason=decision.reason,
        fit_on=fitted.fit_on,
        calibration=calibrator.method,
        tuned_params={k: (round(v, 5) if isinstance(v, float) else v) for k, v in tuned.best_params.items()},
        tuned_best_trial=tuned.best_trial_number,
        tuned_cv_auc=round(tuned.best_value, 5),
        tuned_cv_n_rounds=tuned.best_n_rounds,
        n_trials_pruned=tuned.n_trials_pruned,
        xgboost_n_trees=details.get("xgboost", {}).get("n_trees"),
        challenger_n_trees=challenger.n_trees,
        scorecard_features=len(getattr(fitted.models["scorecard"], "selected_features", [])),
        n_inner_train=len(inner_tr_pos),
        n_inner_valid=len(inner_va_pos),
        n_test=len(test_idx),
    )

    # ---- peers on the whole outer training half, the same feature matrix
    with stopwatch(t, "logistic"):
        lr = fit_logistic(X_outer, y_outer, seed)
        out.preds["logistic"] = np.asarray(lr.predict_proba(lr_frame(X_test))[:, 1], dtype=np.float64)
    with stopwatch(t, "xgboost_default"):
        xgbc = xgb.XGBClassifier(enable_categorical=True, n_jobs=N_THREADS, random_state=seed % 2**31)
        xgbc.fit(X_outer, y_outer)
        out.preds["xgboost_default"] = np.asarray(xgbc.predict_proba(X_test)[:, 1], dtype=np.float64)
    with stopwatch(t, "lightgbm_default"):
        lgbc = lgb.LGBMClassifier(n_jobs=N_THREADS, random_state=seed % 2**31, verbose=-1)
        lgbc.fit(X_outer, y_outer)
        out.preds["lightgbm_default"] = np.asarray(
            np.asarray(lgbc.predict_proba(X_test))[:, 1], dtype=np.float64
        )
    with stopwatch(t, "hgb_default"):
        hgb = HistGradientBoostingClassifier(random_state=seed % 2**31)
        hgb.fit(X_outer, y_outer)
        out.preds["hgb_default"] = np.asarray(hgb.predict_proba(X_test)[:, 1], dtype=np.float64)

    pipeline = t["features"] + t["tune"] + t["fit_candidates"] + t["predict"]
    out.info["stage_seconds"] = {k: round(v, 3) for k, v in t.items()}
    out.info["model_seconds"] = {
        "champion": pipeline + t["calibrate"],
        "champion_uncalibrated": pipeline,
        "xgboost_tuned": t["features"] + t["tune"] + t["challenger"],
        "xgboost_tuned_refit": t["features"] + t["tune"] + t["fit_candidates"] + t["refit_peers"],
        "scorecard": t["features"] + t["refit_peers"],
        "logistic": t["features"] + t["logistic"],
        "xgboost_default": t["features"] + t["xgboost_default"],
        "lightgbm_default": t["features"] + t["lightgbm_default"],
        "hgb_default": t["features"] + t["hgb_default"],
    }
    return out


# --------------------------------------------------------------------------- one dataset


def load_dataset(ds: Dataset, data_dir: Path) -> tuple[pd.DataFrame, Array, Any]:
    from scoring.data.config import FileDataConfig
    from scoring.data.prepare import prepare_file

    config = FileDataConfig(
        path=data_dir / ds.file,
        id_column=ds.id_column,
        target_column=ds.target_column,
        categorical_columns=list(ds.categorical_columns),
        drop_columns=list(ds.drop_columns),
    )
    prepared = prepare_file(config)
    frame = prepared.applications
    spec = prepared.spec
    target = pd.to_numeric(frame[spec.target_column], errors="raise")
    if target.isna().any() or not target.isin([0, 1]).all():
        raise ValueError(f"{ds.file}: target '{spec.target_column}' must be 0/1 on every row")
    # Rows sorted by id, so the folds do not depend on the file's row order.
    frame = frame.sort_values(spec.id_column, kind="stable").reset_index(drop=True)
    y = pd.to_numeric(frame[spec.target_column]).to_numpy(dtype=np.float64)
    return frame, y, spec


def summarise(values: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}


def benchmark_train_config(params: Any) -> Any:
    """params.yaml's train section as the train stage reads it, with one thread per model:
    the champion rule's folds in this process, and XGBoost at its defaults on one thread
    (its ``n_jobs`` is a thread count; results are the same for any)."""
    from scoring.models.config import TrainConfig

    train = params.train
    candidate_params = {k: dict(v) for k, v in train.candidate_params.items()}
    if "xgboost_defaults" in train.candidates:
        candidate_params["xgboost_defaults"] = {
            **candidate_params.get("xgboost_defaults", {}),
            "n_jobs": N_THREADS,
        }
    raw = train.model_dump(mode="python")
    raw["champion"]["n_jobs"] = 1
    raw["candidate_params"] = candidate_params
    return TrainConfig.model_validate(raw)


def run_dataset(
    ds: Dataset,
    data_dir: Path,
    trials: int,
    repeats: int,
    progress: Callable[[str], None],
    params: Any,
) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from scoring.models.tuning import tuning_settings
    from scoring.reporting.metrics import discrimination_metrics

    applications, y, spec = load_dataset(ds, data_dir)
    train_config = benchmark_train_config(params)
    tune = params.tune
    # The tune stage's settings (params.yaml's tune section), one thread, no time limit (so a
    # fold's trials do not depend on the machine's speed), ``trials`` trials.
    settings = dataclasses.replace(
        tuning_settings(tune), n_trials=trials, timeout_seconds=None, n_jobs=N_THREADS
    )
    fold_metrics: dict[str, list[dict[str, float]]] = {key: [] for key, _, _ in MODELS}
    fold_seconds: dict[str, list[float]] = {key: [] for key, _, _ in MODELS}
    folds_info: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quality-optuna-") as tmp:
        for rep in range(repeats):
            splitter = StratifiedKFold(n_splits=2, shuffle=True, random_state=(SEED + rep) % 2**32)
            for k, (train_idx, test_idx) in enumerate(splitter.split(np.zeros(len(y)), y)):
                seed = SEED + 100 * rep + k
                fold_start = time.perf_counter()
                out = run_fold(
                    applications,
                    y,
                    spec,
                    train_idx,
                    test_idx,
                    seed,
                    Path(tmp),
                    f"{ds.key}-r{rep}-f{k}",
                    train_config,
                    settings,
                    params.calibrate.calibration,
                )
                y_test = y[test_idx]
                for key, _, _ in MODELS:
                    m = discrimination_metrics(y_test, out.preds[key])
                    fold_metrics[key].append({"auc": m["auc"], "brier": m["brier"], "ks": m["ks"]})
                    fold_seconds[key].append(out.info["model_seconds"][key])
                info = {k2: v for k2, v in out.info.items() if k2 != "model_seconds"}
                info["model_seconds"] = {k2: round(v, 3) for k2, v in out.info["model_seconds"].items()}
                info.update(repeat=rep, fold=k, seconds=round(time.perf_counter() - fold_start, 2))
                info["test_auc"] = {key: round(fold_metrics[key][-1]["auc"], 5) for key, _, _ in MODELS}
                info["test_brier"] = {key: round(fold_metrics[key][-1]["brier"], 5) for key, _, _ in MODELS}
                folds_info.append(info)
                stages = out.info["stage_seconds"]
                progress(
                    f"{ds.key} rep {rep} fold {k}: champion={out.info['champion']} "
                    f"(blend w={out.info['blend_weight']}, {out.info['calibration']}) "
                    f"AUC champion {info['test_auc']['champion']:.4f} "
                    f"uncalibrated {info['test_auc']['champion_uncalibrated']:.4f} "
                    f"xgb {info['test_auc']['xgboost_tuned_refit']:.4f} "
                    f"sc {info['test_auc']['scorecard']:.4f} lr {info['test_auc']['logistic']:.4f} "
                    f"xgbdef {info['test_auc']['xgboost_default']:.4f} "
                    f"lgbdef {info['test_auc']['lightgbm_default']:.4f} ({info['seconds']:.0f} s: "
                    f"tune {stages['tune']:.0f}, fit_candidates {stages['fit_candidates']:.0f})"
                )
    models: dict[str, Any] = {}
    for key, label, group in MODELS:
        aucs = [m["auc"] for m in fold_metrics[key]]
        models[key] = {
            "label": label,
            "group": group,
            "auc": summarise(aucs),
            "brier": summarise([m["brier"] for m in fold_metrics[key]]),
            "ks": summarise([m["ks"] for m in fold_metrics[key]]),
            "seconds_per_fold": summarise(fold_seconds[key]),
            "fold_auc": [round(a, 5) for a in aucs],
        }
    picks = [f["champion"] for f in folds_info]
    calibrations = [f["calibration"] for f in folds_info]
    candidates = list(train_config.candidates)
    candidate_summary = {
        name: {
            "selection_auc": summarise([f["selection_auc"][name] for f in folds_info]),
            "test_auc": summarise([f["candidate_test_auc"][name] for f in folds_info]),
            "picked": picks.count(name),
        }
        for name in candidates
    }
    stage_means = {
        stage: round(float(np.mean([f["stage_seconds"].get(stage, 0.0) for f in folds_info])), 2)
        for stage in folds_info[0]["stage_seconds"]
    }
    return {
        "dataset": ds.key,
        "file": ds.file,
        "rows": len(y),
        "bad_rate": float(y.mean()),
        "n_features_raw": len([c for c in applications.columns if c not in spec.non_feature_columns]),
        "categorical_columns": list(ds.categorical_columns),
        "drop_columns": list(ds.drop_columns),
        "published_auc": ds.published_auc,
        "published_note": ds.published_note,
        "protocol": {
            "repeats": repeats,
            "outer_folds": 2,
            "tuning_trials_per_fold": trials,
            "tuning": f"scoring.models.tuning.tune_xgboost, objective {tune.objective} "
            f"({tune.cv_folds} folds) on the inner train split, no time limit, base config and "
            "XGBoost's library defaults enqueued as the first trials",
            "search_space": {name: dim.model_dump() for name, dim in tune.space.items()},
            "train": train_config.model_dump(
                mode="json", include={"fit_on", "champion", "candidates", "candidate_params"}
            ),
            "calibration": params.calibrate.calibration.model_dump(mode="json"),
            "inner_valid_fraction": INNER_VALID_FRACTION,
            "threads_per_model": N_THREADS,
            "seed": SEED,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "models": models,
        "champion_picks": {p: picks.count(p) for p in sorted(set(picks))},
        "candidates": candidate_summary,
        "stage_seconds_per_fold": stage_means,
        "calibration_picks": {c: calibrations.count(c) for c in sorted(set(calibrations))},
        "folds": folds_info,
        "acceptance": acceptance(ds, models),
    }


CHAMPIONS = ("champion", "champion_uncalibrated")


BRIER_DIGITS = 4  # Brier scores equal at this many decimals are a tie


def acceptance(ds: Dataset, models: Mapping[str, Any]) -> dict[str, Any]:
    """The acceptance bars, for the pipeline's champion (calibrated, and uncalibrated).

    "Every other model" is the pipeline's single models and the peers (the library defaults
    included); the two champion variants are not compared with each other. AUC: the
    champion's mean AUC >= every other model's, compared unrounded. Brier: the champion's
    mean Brier is the lowest or tied, a tie being equal at ``BRIER_DIGITS`` decimals.
    """
    others = {
        k: v
        for k, v in models.items()
        if MODEL_GROUPS[k] in ("pipeline", "peer") and not k.startswith("champion")
    }
    best_other = max(others, key=lambda k: others[k]["auc"]["mean"])
    lowest_brier = min(others, key=lambda k: others[k]["brier"]["mean"])
    result: dict[str, Any] = {}
    for key in CHAMPIONS:
        mean, brier = models[key]["auc"]["mean"], models[key]["brier"]["mean"]
        lowest = others[lowest_brier]["brier"]["mean"]
        entry: dict[str, Any] = {
            "auc": round(mean, 4),
            "best_other": best_other,
            "best_other_auc": round(others[best_other]["auc"]["mean"], 4),
            "auc_at_least_every_other": mean >= others[best_other]["auc"]["mean"],
            "auc_margin_to_best_other": round(mean - others[best_other]["auc"]["mean"], 5),
            "brier": round(brier, 5),
            "best_other_brier": round(others[best_other]["brier"]["mean"], 5),
            "lowest_other_brier_model": lowest_brier,
            "lowest_other_brier": round(lowest, 5),
            "brier_margin_to_lowest_other": round(brier - lowest, 5),
            "brier_lowest_or_tied": round(brier, BRIER_DIGITS) <= round(lowest, BRIER_DIGITS),
        }
        if ds.published_auc is not None:
            entry["published_auc"] = ds.published_auc
            entry["within_0.01_of_published"] = mean >= ds.published_auc - 0.01
            entry["gap_to_published"] = round(mean - ds.published_auc, 4)
        result[key] = entry
    return result


# --------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
    import lightgbm
    import optbinning
    import optuna
    import sklearn
    import xgboost

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "versions": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__,
            "optuna": optuna.__version__,
            "optbinning": optbinning.__version__,
            "lightgbm": lightgbm.__version__,
        },
        "env": {k: os.environ.get(k, "") for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")},
    }


def fmt_ms(stats: Mapping[str, float], digits: int = 3) -> str:
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def yes(flag: bool) -> str:
    return "met" if flag else "**missed**"


def markdown(results: Mapping[str, Any]) -> str:
    lines = [
        "# Quality on public credit data (benchmarks/quality.py)",
        "",
        f"Run {results['date']} on {results['machine']['cpus']} CPUs "
        f"({results['machine']['platform']}), one thread per model. Protocol: "
        "repeated stratified 2-fold cross-validation (repeats and trials per dataset below); "
        "tuning, early stopping and every choice inside the outer training half only. "
        "AUC is the mean ± standard deviation over the outer folds; Brier and KS are means; "
        "time is wall seconds per outer fold, tuning included. The pipeline path is the train "
        "stage's own protocol (scoring.models.training.fit_candidates with params.yaml's train section: "
        "every candidate of train.candidates, the champion rule, the refit) and the calibrate stage's "
        "calibrator (on the champion's out-of-fold PDs): 'champion' is the calibrated PD the exported "
        "model returns, 'champion_uncalibrated' the same model's raw PD.",
        "",
        "Acceptance, per dataset and champion variant: AUC, the champion's mean AUC is at least every "
        "other model's (the pipeline's single models and the peers, library defaults included), compared "
        f"unrounded; Brier, the champion's mean Brier is the lowest of all models or tied with the lowest, "
        f"a tie being equal at {BRIER_DIGITS} decimals (the margin is shown unrounded).",
        "",
    ]
    total = sum(r["wall_seconds"] for r in results["datasets"].values())
    lines += [f"Wall time of the datasets in this file: {total / 60:.1f} min.", ""]
    lines += summary_table(results, "champion", "The pipeline's champion as exported (calibrated PD)")
    lines += summary_table(results, "champion_uncalibrated", "The same champion, uncalibrated PD")
    notes = results.get("notes")
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    for key in ("german", "australian", "taiwan", "hmeq"):
        res = results["datasets"].get(key)
        if res is None:
            continue
        proto = res["protocol"]
        published = res["published_auc"]
        lines += [
            f"## {key} ({res['rows']:,} rows, {res['bad_rate']:.1%} bad)",
            "",
            f"{proto['repeats']}x2 CV, {proto['tuning_trials_per_fold']} tuning trials per fold, "
            f"{res['wall_seconds'] / 60:.1f} min in all. Published AUC: "
            + (f"{published} ({res['published_note']})." if published else f"{res['published_note']}."),
            "",
            "| model | AUC (mean ± sd) | Brier | KS | s / fold |",
            "|---|---:|---:|---:|---:|",
        ]
        for m in res["models"].values():
            lines.append(
                f"| {m['label']} | {fmt_ms(m['auc'])} | {m['brier']['mean']:.4f} | "
                f"{m['ks']['mean']:.3f} | {m['seconds_per_fold']['mean']:.1f} |"
            )

        def counts(name: str, res: Mapping[str, Any] = res) -> str:
            return ", ".join(f"{k} {v}" for k, v in res.get(name, {}).items()) or "not recorded"

        cands = res.get("candidates", {})
        if cands:
            lines += [
                "",
                "Candidates of the champion rule (selection AUC: out of fold over the outer training "
                "half, what the rule reads; test AUC: the candidate as exported, on the outer test half):",
                "",
                "| candidate | selection AUC | test AUC | champion in folds |",
                "|---|---:|---:|---:|",
            ]
            for name, c in cands.items():
                lines.append(
                    f"| {name} | {fmt_ms(c['selection_auc'], 4)} | {fmt_ms(c['test_auc'], 4)} "
                    f"| {c['picked']} |"
                )
        weights = ", ".join(
            "-" if f.get("blend_weight") is None else f"{f['blend_weight']:g}" for f in res["folds"]
        )
        parts = next((f.get("blend_parts") for f in res["folds"] if f.get("blend_parts")), None)
        first = parts[0] if parts else "first part"
        second = parts[1] if parts else "second part"
        stages = res.get("stage_seconds_per_fold", {})
        stage_text = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
        lines += [
            "",
            f"Champion picks per fold: {counts('champion_picks')}; calibration method per fold: "
            f"{counts('calibration_picks')}. Blend weight of {first} per fold (1 = {first}, "
            f"0 = {second}): {weights}."
            + (f" Mean seconds per fold by step: {stage_text}." if stage_text else ""),
            "",
            "| champion | AUC | ≥ every other model | "
            + (f"within 0.01 of {published} | " if published else "")
            + f"Brier lowest or tied ({BRIER_DIGITS} dp) |",
            "|---|---:|---|" + ("---|" if published else "") + "---|",
        ]
        for c in CHAMPIONS:
            if c not in res["acceptance"]:
                continue
            acc = res["acceptance"][c]
            row = (
                f"| {res['models'][c]['label']} | {acc['auc']:.4f} | "
                f"{yes(acc['auc_at_least_every_other'])} ({acc['auc_margin_to_best_other']:+.5f} "
                f"vs {acc['best_other']}) | "
            )
            if published:
                row += f"{yes(acc['within_0.01_of_published'])} ({acc['gap_to_published']:+.4f}) | "
            row += f"{brier_cell(acc)} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def brier_cell(acc: Mapping[str, Any]) -> str:
    if "brier_lowest_or_tied" not in acc:  # an earlier version of this script
        return "not recorded"
    return (
        f"{yes(acc['brier_lowest_or_tied'])} ({acc['brier']:.5f} vs {acc['lowest_other_brier_model']} "
        f"{acc['lowest_other_brier']:.5f})"
    )


def summary_table(results: Mapping[str, Any], variant: str, title: str) -> list[str]:
    """One line per dataset: the acceptance bars for one champion variant."""
    lines = [
        f"### {title}",
        "",
        "| dataset | AUC | best other model (AUC) | AUC ≥ every other | Brier lowest or tied "
        f"({BRIER_DIGITS} dp) | within 0.01 of published |",
        "|---|---:|---|---|---|---|",
    ]
    for key in ("german", "australian", "taiwan", "hmeq"):
        res = results["datasets"].get(key)
        if res is None or variant not in res["acceptance"]:
            continue  # not run, or run by an earlier version of this script without the variant
        acc = res["acceptance"][variant]
        published = "no figure"
        if "published_auc" in acc:
            gap = f"{acc['gap_to_published']:+.4f} vs {acc['published_auc']}"
            published = f"{yes(acc['within_0.01_of_published'])} ({gap})"
        margin = f"{acc['auc_margin_to_best_other']:+.5f}"
        lines.append(
            f"| {key} | {acc['auc']:.4f} | {acc['best_other']} ({acc['best_other_auc']:.4f}) | "
            f"{yes(acc['auc_at_least_every_other'])} ({margin}) | {brier_cell(acc)} | {published} |"
        )
    return [*lines, ""]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the results between concurrent runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save(result: Mapping[str, Any] | None, results_dir: Path, run_info: Mapping[str, Any]) -> dict[str, Any]:
    """Merge one dataset's result into quality.json (other datasets kept) and rewrite quality.md.

    With ``result`` None only the notes and quality.md are rewritten from quality.json.
    """
    from scoring.core.figures import provenance_line, write_results
    from scoring.core.io import write_text

    json_path = results_dir / "quality.json"
    with locked(Path(tempfile.gettempdir()) / "scoring-quality-benchmark.lock"):
        merged: dict[str, Any] = {}
        if json_path.exists():
            with contextlib.suppress(json.JSONDecodeError):
                merged = json.loads(json_path.read_text(encoding="utf-8"))
        merged.update(run_info)
        if result is not None:
            merged.setdefault("datasets", {})[result["dataset"]] = result
        merged["notes"] = [*PROTOCOL_NOTES, *findings(merged)]
        merged["summary"] = summary(merged)
        if result is None:  # a re-render: the figures keep the provenance of the run that measured them
            record = merged.get("provenance")
            write_text(json_path, json.dumps(merged, indent=2, sort_keys=False, default=float) + "\n")
            page = markdown(merged)
            write_text(
                json_path.with_suffix(".md"), page + ("\n" + provenance_line(record) + "\n" if record else "")
            )
        else:
            merged.pop("provenance", None)
            merged["provenance"] = write_results(json_path, merged, markdown(merged))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="optuna trials per outer fold (default: params' tune.n_trials)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of 2-fold CV")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--params",
        type=Path,
        default=REPO / "params.yaml",
        help="the train section, calibrate.calibration and the tune section come from here",
    )
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite quality.md (and the notes) from quality.json"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if args.render_only:
        save(None, args.results_dir, {})
        return

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def progress(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    from scoring.config import load_params

    params = load_params(args.params)
    trials = args.trials if args.trials is not None else params.tune.n_trials
    run_info = {
        "benchmark": "benchmarks/quality.py",
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "data_dir": str(args.data_dir),
        "models": {key: {"label": label, "group": group} for key, label, group in MODELS},
    }
    for key in args.datasets:
        ds = DATASETS[key]
        progress(f"{key}: {args.repeats}x2 CV, {trials} trials per fold")
        result = run_dataset(ds, args.data_dir, trials, args.repeats, progress, params)
        save(result, args.results_dir, run_info)
        for mkey, m in result["models"].items():
            progress(
                f"{key:10s} {mkey:22s} AUC {fmt_ms(m['auc'], 4)}  Brier {m['brier']['mean']:.4f}  "
                f"KS {m['ks']['mean']:.3f}  {m['seconds_per_fold']['mean']:.1f} s/fold"
            )
        progress(
            f"{key}: done in {result['wall_seconds'] / 60:.1f} min; champion picks {result['champion_picks']}"
        )


if __name__ == "__main__":
    main()
