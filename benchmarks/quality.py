"""Benchmark: the pipeline's own models on public credit data, under the literature's protocol.

Protocol (Lessmann et al. 2015): 5 repetitions of stratified 2-fold cross-validation, so 10
outer folds per dataset; every model is trained on an outer training half and scored on the
other half, which nothing else reads. Per outer fold:

- the pipeline path: the outer training half is split 80/20 (stratified) into an inner
  train and an inner valid split, the pipeline's train and valid; the feature transformer
  (:class:`scoring.features.ApplicationFeatures`) is fitted on the inner train; the XGBoost
  challenger is tuned with :func:`scoring.models.tuning.tune_xgboost` (objective ``cv``: folds inside
  the inner train only, as the pipeline's tune stage reads its train split only; search space
  params.yaml's tune.space); then :func:`scoring.models.training.fit_candidates`, the train stage's own
  protocol with params.yaml's ``train`` section (``fit_on``, ``champion``), makes the
  candidates and picks the champion: the challenger early-stopped on the inner valid split
  (which fixes its round count), and with ``fit_on: train_valid`` the rule on the out-of-fold
  AUC over the whole outer half and the scorecard and booster refitted on it; finally the
  calibrator is fitted as the calibrate stage fits it (:func:`scoring.models.calibration.fit_calibrator`
  on the champion's out-of-fold PDs, params.yaml's calibrate.calibration). Scored:

  * "champion": the calibrated PD, what the exported model returns;
  * "champion_uncalibrated": the same champion's raw PD (calibration is monotone, so this
    only differs in AUC where isotonic calibration makes ties);
  * "xgboost_tuned": the tuned challenger as early-stopped on the inner train, and
    "xgboost_tuned_refit": the same settings refitted on the whole outer half.

- peers on the whole outer training half, with the same feature matrix: logistic regression
  on one-hot and standardised inputs, ``XGBClassifier()`` and ``HistGradientBoostingClassifier()``
  with default settings, and the scorecard.

Reported per dataset and model: mean AUC (standard deviation over the folds), Brier score,
KS, wall time per fold, the fold AUCs, and which candidate the champion rule picked per fold.
Results go to benchmarks/results/quality.json and quality.md, rewritten after each dataset
(datasets from an earlier run that this one does not repeat are kept).

    python benchmarks/quality.py [--data-dir ../shared/data] [--datasets german australian]
                                 [--trials 30] [--repeats 5] [--params params.yaml]
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
    ("hgb_default", "HistGradientBoostingClassifier() defaults", "peer"),
)
MODEL_LABELS = {key: label for key, label, _ in MODELS}
MODEL_GROUPS = {key: group for key, _, group in MODELS}


# What the numbers mean: written after reading a full run (quality.md shows them under "Notes").
NOTES: tuple[str, ...] = (
    "Protocol as run: 5x2 CV and 30 tuning trials per outer fold on all four datasets, 10.5 min in all "
    "(German 1.3, Australian 1.2, Taiwan 4.8, HMEQ 3.2) on this 2-core machine, with the pipeline's "
    "end-to-end tests running beside it for most of the time (load average 1.2 to 2.6). Inner split "
    "80/20, stratified; the feature transformer is fitted on the inner train; tuning (objective cv, 3 "
    "folds, params.yaml's tune.space, no time limit) reads the inner train only; early stopping reads "
    "the inner valid split. Files are read as the README's examples read them: German drops `class`, "
    "HMEQ's REASON and JOB are text, Australian and Taiwan keep their codes numeric.",
    "The pipeline path is the train stage's own function, scoring.models.training.fit_candidates, with "
    "params.yaml's train section: fit_on train_valid (early stopping on the inner valid split fixes "
    "the challenger's round count; the champion rule reads 5-fold out-of-fold AUC over the whole "
    "outer half; the scorecard and the booster are refitted on it), champion rule selection cv, "
    "candidates scorecard, xgboost and their log-odds blend (scorecard weight 0, 0.1, ..., 1), "
    "min_auc_gain 0 (ties to the simpler). Then the calibrate stage's calibrator on the champion's "
    "out-of-fold PDs (method auto: none, Platt or isotonic by cross-validated log loss). The blend "
    "wins 9 of 10 folds on German, Australian and Taiwan and 3 of 10 on HMEQ (the challenger the "
    "rest); calibration picked none or Platt in every fold, so the calibrated AUC equals the raw one.",
    "Bars met: the exported champion's mean AUC is at least every other model's on German (+0.0016 "
    "over the scorecard), Australian (+0.0026 over the refit challenger) and Taiwan (+0.0002 over the "
    "refit challenger); within 0.01 of the published figure on Australian (0.9332 vs 0.933) and Taiwan "
    "(0.7817 vs 0.783); and its Brier score is the lowest of all models on all four datasets "
    "(against the raw PD, calibration moves it by -0.0009 on HMEQ, -0.0002 on Australian, 0 on "
    "Taiwan and +0.0002 on German).",
    "Bars missed: HMEQ's AUC 0.9531 is 0.00007 below the tuned challenger refitted on the outer half "
    "(0.9532), which is the champion's own component: in 7 of 10 folds the rule picked it and the two "
    "are the same model; in the other 3 the blend (weight 0.1) won the out-of-fold AUC by 0.0001 to "
    "0.0003 and scored -0.0009, +0.0003 and -0.0001 on the test half, i.e. a tie at the noise level "
    "(fold sd 0.0054). It is still above every peer (XGBClassifier() 0.9530). Asking a more complex "
    "candidate for a margin of 0.0002 or 0.0005 (computed from this run's per-fold figures) would have "
    "made HMEQ an exact tie and cost German 0.0003; 0.001 costs German 0.0016. The rule was left at 0: "
    "choosing it on these test halves would tune the rule to the benchmark. German misses its "
    "published 0.801 by 0.0135 (0.0035 beyond the 0.01 allowed), see the next note.",
    "Tried and reverted: judging the blend by out-of-fold scores whose weight is itself chosen out of fold "
    "(removing the optimism of picking the best of 11 weights on the rows it is judged on). Same folds "
    "and trials: German 0.7849 (below the scorecard's 0.7859), Australian 0.9317, Taiwan 0.7816, HMEQ "
    "0.9531 (unchanged): on small data the nested choice is noisier than the bias it removes.",
    "Against the previous protocol (models fitted on the inner train only, calibrated on the inner valid "
    "split; previous run of this file): German 0.7787 -> 0.7875, Australian 0.9310 -> 0.9332, Taiwan "
    "0.7801 -> 0.7817, HMEQ 0.9459 -> 0.9531; the refit is worth 0.0016 to 0.0088 AUC.",
    "German's published bar is out of reach of these model families under this protocol. Earlier "
    "exploration on the same folds (chosen after seeing the test halves, so optimistic): an equal blend "
    "of scorecard, one-hot logistic regression (C=0.2) and the challenger 0.790; finer scorecard bins, "
    "min_iv 0 or features.min_category_count 5: no change; the challenger tuned in a wider space "
    "0.780-0.782. The fold standard deviation is 0.026, so the standard error of a 10-fold mean is about "
    "0.008; 0.801 is the best of some forty classifiers in Lessmann et al. (a maximum, so optimistic), "
    "and the issue's own peer figure (0.782) agrees.",
    "tune.space is left as it was. HMEQ's tuned max_depth sits on the upper bound (7) in 5 of 10 folds "
    "and min_child_weight below 2.1 (floor 1) in all 10; an earlier exploration on 4 of the 10 folds found "
    "max_depth up to 10 and min_child_weight down to 0.1 lift the refit challenger from 0.9552 to 0.9595 "
    "there, for about 5 times the tuning time. HMEQ is above every peer without it, "
    "and deeper trials would eat the pipeline's 150 s tuning budget at 100k rows.",
    "Peers as specified: logistic regression is one-hot plus standardised, C=1, which is weak on Taiwan "
    "(0.722: heavy-tailed amounts, PAY_* as numbers). Timings are one thread per model.",
)


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def stopwatch(times: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall seconds to ``times[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times[key] = times.get(key, 0.0) + time.perf_counter() - start


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
    trials: int,
    storage_dir: Path,
    study_name: str,
    train_config: Any,
    calibration_settings: Any,
    space: Mapping[str, Any],
) -> FoldOutput:
    import xgboost as xgb
    from scipy.special import expit
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    from scoring.features.transformer import ApplicationFeatures
    from scoring.models.calibration import fit_calibrator
    from scoring.models.config import ScorecardConfig, XGBoostConfig
    from scoring.models.model import BlendEstimator, BoosterEstimator
    from scoring.models.training import fit_candidates, train_booster_rounds, train_scorecard
    from scoring.models.tuning import TuningSettings, tune_xgboost

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
    base = XGBoostConfig(n_jobs=N_THREADS)
    settings = TuningSettings(
        n_trials=trials, timeout_seconds=None, objective="cv", n_jobs=N_THREADS, space=dict(space)
    )
    with stopwatch(t, "tune"):
        tuned = tune_xgboost(
            X_in_tr,
            s_in_tr,
            None,
            None,
            base,
            settings,
            seed,
            storage_dir / f"{study_name}.journal",
            study_name,
        )
    with stopwatch(t, "fit_candidates"):
        fitted = fit_candidates(X_in_tr, s_in_tr, X_in_va, s_in_va, train_config, tuned.best_config, seed)
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
        booster = BoosterEstimator(fitted.booster)
        candidates: dict[str, Any] = {
            "scorecard": fitted.scorecard,
            "xgboost": booster,
            "blend": BlendEstimator(fitted.scorecard, booster, decision.blend_weight),
        }
        p_raw = np.asarray(candidates[decision.champion].predict_pd(X_test), dtype=np.float64)
        p_champion = calibrator.predict(p_raw)
        p_challenger = np.asarray(
            BoosterEstimator(fitted.challenger.booster).predict_pd(X_test), dtype=np.float64
        )
    # Peers of the pipeline's own kinds on the whole outer half: what fit_candidates made when
    # it refits there, refitted here otherwise.
    with stopwatch(t, "refit_peers"):
        if fitted.fit_on == "train_valid":
            booster_refit, scorecard_refit = booster, fitted.scorecard
        else:
            booster_refit = BoosterEstimator(
                train_booster_rounds(X_outer, s_outer, tuned.best_config, fitted.challenger.n_trees, seed)
            )
            scorecard_refit = train_scorecard(X_outer, s_outer, ScorecardConfig(), {}, seed)
        p_booster_refit = np.asarray(booster_refit.predict_pd(X_test), dtype=np.float64)
        p_scorecard = np.asarray(scorecard_refit.predict_pd(X_test), dtype=np.float64)

    out.preds["champion"] = p_champion
    out.preds["champion_uncalibrated"] = p_raw
    out.preds["xgboost_tuned"] = p_challenger
    out.preds["xgboost_tuned_refit"] = p_booster_refit
    out.preds["scorecard"] = p_scorecard
    out.info.update(
        champion=decision.champion,
        blend_scorecard_weight=decision.blend_weight,
        selection_auc={k: round(v, 5) for k, v in decision.auc.items()},
        reason=decision.reason,
        fit_on=fitted.fit_on,
        calibration=calibrator.method,
        tuned_params={k: (round(v, 5) if isinstance(v, float) else v) for k, v in tuned.best_params.items()},
        tuned_cv_auc=round(tuned.best_value, 5),
        tuned_cv_n_rounds=tuned.best_n_rounds,
        n_trials_pruned=tuned.n_trials_pruned,
        xgboost_n_trees=fitted.challenger.n_trees,
        scorecard_features=len(fitted.scorecard.selected_features),
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
    with stopwatch(t, "hgb_default"):
        hgb = HistGradientBoostingClassifier(random_state=seed % 2**31)
        hgb.fit(X_outer, y_outer)
        out.preds["hgb_default"] = np.asarray(hgb.predict_proba(X_test)[:, 1], dtype=np.float64)

    pipeline = t["features"] + t["tune"] + t["fit_candidates"] + t["predict"]
    out.info["model_seconds"] = {
        "champion": pipeline + t["calibrate"],
        "champion_uncalibrated": pipeline,
        # tuning only: the early-stopped fit runs inside fit_candidates and is not timed apart
        "xgboost_tuned": t["features"] + t["tune"],
        "xgboost_tuned_refit": t["features"] + t["tune"] + t["refit_peers"],
        "scorecard": t["features"] + t["refit_peers"],
        "logistic": t["features"] + t["logistic"],
        "xgboost_default": t["features"] + t["xgboost_default"],
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


def run_dataset(
    ds: Dataset,
    data_dir: Path,
    trials: int,
    repeats: int,
    progress: Callable[[str], None],
    params: Any,
) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from scoring.models.tuning import SearchDimension
    from scoring.reporting.metrics import discrimination_metrics

    applications, y, spec = load_dataset(ds, data_dir)
    space = {name: SearchDimension(**dim.model_dump()) for name, dim in params.tune.space.items()}
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
                    trials,
                    Path(tmp),
                    f"{ds.key}-r{rep}-f{k}",
                    params.train.model_copy(
                        update={"champion": params.train.champion.model_copy(update={"n_jobs": 1})}
                    ),
                    params.calibrate.calibration,
                    space,
                )
                y_test = y[test_idx]
                for key, _, _ in MODELS:
                    m = discrimination_metrics(y_test, out.preds[key])
                    fold_metrics[key].append({"auc": m["auc"], "brier": m["brier"], "ks": m["ks"]})
                    fold_seconds[key].append(out.info["model_seconds"][key])
                info = {k2: v for k2, v in out.info.items() if k2 != "model_seconds"}
                info.update(repeat=rep, fold=k, seconds=round(time.perf_counter() - fold_start, 2))
                info["test_auc"] = {key: round(fold_metrics[key][-1]["auc"], 5) for key, _, _ in MODELS}
                info["test_brier"] = {key: round(fold_metrics[key][-1]["brier"], 5) for key, _, _ in MODELS}
                folds_info.append(info)
                progress(
                    f"{ds.key} rep {rep} fold {k}: champion={out.info['champion']} "
                    f"(w={out.info['blend_scorecard_weight']}, {out.info['calibration']}) "
                    f"AUC champion {info['test_auc']['champion']:.4f} "
                    f"uncalibrated {info['test_auc']['champion_uncalibrated']:.4f} "
                    f"xgb {info['test_auc']['xgboost_tuned_refit']:.4f} "
                    f"sc {info['test_auc']['scorecard']:.4f} lr {info['test_auc']['logistic']:.4f} "
                    f"xgbdef {info['test_auc']['xgboost_default']:.4f} ({info['seconds']:.0f} s)"
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
            "tuning": "scoring.models.tuning.tune_xgboost, objective cv (3 folds) on the inner train split",
            "search_space": {name: dim.model_dump() for name, dim in params.tune.space.items()},
            "train": params.train.model_dump(mode="json", include={"fit_on", "champion"}),
            "calibration": params.calibrate.calibration.model_dump(mode="json"),
            "inner_valid_fraction": INNER_VALID_FRACTION,
            "threads_per_model": N_THREADS,
            "seed": SEED,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "models": models,
        "champion_picks": {p: picks.count(p) for p in sorted(set(picks))},
        "calibration_picks": {c: calibrations.count(c) for c in sorted(set(calibrations))},
        "folds": folds_info,
        "acceptance": acceptance(ds, models),
    }


CHAMPIONS = ("champion", "champion_uncalibrated")


def acceptance(ds: Dataset, models: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's three bars, for the pipeline's champion (calibrated, and uncalibrated).

    "Every other model" is the pipeline's single models and the peers; the two champion
    variants are not compared with each other.
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
        entry: dict[str, Any] = {
            "auc": round(mean, 4),
            "best_other": best_other,
            "best_other_auc": round(others[best_other]["auc"]["mean"], 4),
            "auc_at_least_every_other": mean >= others[best_other]["auc"]["mean"],
            "auc_margin_to_best_other": round(mean - others[best_other]["auc"]["mean"], 4),
            "brier": round(brier, 5),
            "best_other_brier": round(others[best_other]["brier"]["mean"], 5),
            "brier_no_worse_than_best_other": brier <= others[best_other]["brier"]["mean"],
            "lowest_other_brier_model": lowest_brier,
            "lowest_other_brier": round(others[lowest_brier]["brier"]["mean"], 5),
            "brier_no_worse_than_lowest_other": brier <= others[lowest_brier]["brier"]["mean"],
        }
        if ds.published_auc is not None:
            entry["published_auc"] = ds.published_auc
            entry["within_0.01_of_published"] = mean >= ds.published_auc - 0.01
            entry["gap_to_published"] = round(mean - ds.published_auc, 4)
        result[key] = entry
    return result


# --------------------------------------------------------------------------- output


def machine() -> dict[str, Any]:
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
        "stage's own protocol (scoring.models.training.fit_candidates with params.yaml's train section) and "
        "the calibrate stage's calibrator (on the champion's out-of-fold PDs): 'champion' is the "
        "calibrated PD the exported model returns, 'champion_uncalibrated' the same model's raw PD.",
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

        weights = ", ".join(f"{f['blend_scorecard_weight']:g}" for f in res["folds"])
        lines += [
            "",
            f"Champion picks per fold: {counts('champion_picks')}; calibration method per fold: "
            f"{counts('calibration_picks')}. Blend scorecard weight per fold (1 = scorecard, "
            f"0 = challenger): {weights}.",
            "",
            "| champion | AUC | ≥ every other model | "
            + (f"within 0.01 of {published} | " if published else "")
            + "Brier ≤ best other model's |",
            "|---|---:|---|" + ("---|" if published else "") + "---|",
        ]
        for c in CHAMPIONS:
            if c not in res["acceptance"]:
                continue
            acc = res["acceptance"][c]
            row = (
                f"| {res['models'][c]['label']} | {acc['auc']:.4f} | "
                f"{yes(acc['auc_at_least_every_other'])} ({acc['auc_margin_to_best_other']:+.4f} "
                f"vs {acc['best_other']}) | "
            )
            if published:
                row += f"{yes(acc['within_0.01_of_published'])} ({acc['gap_to_published']:+.4f}) | "
            row += (
                f"{yes(acc['brier_no_worse_than_best_other'])} ({acc['brier']:.4f} vs "
                f"{acc['best_other_brier']:.4f}) |"
            )
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


def summary_table(results: Mapping[str, Any], variant: str, title: str) -> list[str]:
    """One line per dataset: the issue's bars for one champion variant."""
    lines = [
        f"### {title}",
        "",
        "| dataset | AUC | best other model (AUC) | AUC ≥ every other | within 0.01 of published | "
        "Brier ≤ best other's |",
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
        margin = f"{acc['auc_margin_to_best_other']:+.4f}"
        brier = f"{acc['brier']:.4f} vs {acc['best_other_brier']:.4f}"
        lines.append(
            f"| {key} | {acc['auc']:.4f} | {acc['best_other']} ({acc['best_other_auc']:.4f}) | "
            f"{yes(acc['auc_at_least_every_other'])} ({margin}) | {published} | "
            f"{yes(acc['brier_no_worse_than_best_other'])} ({brier}) |"
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
    from scoring.core.io import write_text

    json_path, md_path = results_dir / "quality.json", results_dir / "quality.md"
    with locked(Path(tempfile.gettempdir()) / "scoring-quality-benchmark.lock"):
        merged: dict[str, Any] = {}
        if json_path.exists():
            with contextlib.suppress(json.JSONDecodeError):
                merged = json.loads(json_path.read_text(encoding="utf-8"))
        merged.update(run_info)
        if result is not None:
            merged.setdefault("datasets", {})[result["dataset"]] = result
        merged["notes"] = list(NOTES)
        write_text(json_path, json.dumps(merged, indent=2, sort_keys=False, default=float) + "\n")
        write_text(md_path, markdown(merged))
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--trials", type=int, default=30, help="optuna trials per outer fold")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions of 2-fold CV")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--params",
        type=Path,
        default=REPO / "params.yaml",
        help="train (fit_on, champion), calibrate.calibration and tune.space come from here",
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
    run_info = {
        "benchmark": "benchmarks/quality.py",
        "date": dt.date.today().isoformat(),
        "machine": machine(),
        "data_dir": str(args.data_dir),
        "models": {key: {"label": label, "group": group} for key, label, group in MODELS},
    }
    for key in args.datasets:
        ds = DATASETS[key]
        progress(f"{key}: {args.repeats}x2 CV, {args.trials} trials per fold")
        result = run_dataset(ds, args.data_dir, args.trials, args.repeats, progress, params)
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
