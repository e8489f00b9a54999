"""Benchmark: the pipeline's own models on public credit data, under the literature's protocol.

Protocol (Lessmann et al. 2015): 5 repetitions of stratified 2-fold cross-validation, so 10
outer folds per dataset; every model is trained on an outer training half and scored on the
other half, which nothing else reads. Per outer fold:

- the pipeline path: the outer training half is split 80/20 (stratified) into an inner
  train and an inner valid split, the pipeline's train and valid; the feature transformer
  (:class:`scoring.features.ApplicationFeatures`) is fitted on the inner train; the XGBoost
  challenger is tuned with :func:`scoring.tuning.tune_xgboost` (objective ``cv``: folds inside
  the inner train only, as the pipeline's tune stage reads its train split only), trained
  with :func:`scoring.train.train_xgboost` (early stopping on the inner valid split); the
  scorecard with :func:`scoring.train.train_scorecard`; :func:`scoring.train.choose_champion`
  picks between them on inner-valid AUC. The champion is scored as fitted ("kept", what the
  pipeline exports) and refitted on the whole outer training half ("refit": the scorecard
  refitted, the booster retrained for the number of rounds early stopping chose);
- peers on the whole outer training half, with the same feature matrix: logistic regression
  on one-hot and standardised inputs, ``XGBClassifier()`` and ``HistGradientBoostingClassifier()``
  with default settings, and the scorecard (= the refitted scorecard above);
- PROPOSALS (not in the library; marked as such in the output): a blend of the scorecard's
  and the challenger's log-odds, a shallow (depth-2) XGBoost challenger, and a champion rule
  over more than two candidates (:func:`choose_among`), each choice made either on the inner
  valid split or on 5-fold out-of-fold AUC over the whole outer training half
  (:func:`cv_predictions`), never on the outer test half.

Reported per dataset and model: mean AUC (standard deviation over the folds), Brier score,
KS, wall time per fold, the fold AUCs, and which candidate the champion rule picked per fold.
Results go to benchmarks/results/quality.json and quality.md, rewritten after each dataset
(datasets from an earlier run that this one does not repeat are kept).

    python benchmarks/quality.py [--data-dir ../shared/data] [--datasets german australian]
                                 [--trials 30] [--repeats 5]
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
BLEND_GRID = tuple(round(0.1 * i, 1) for i in range(11))  # scorecard weight in the blend
EPS = 1e-12
SIMPLICITY = ("scorecard", "shallow", "xgboost", "blend")  # tie-break order of choose_among

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
    ("champion", "champion, pipeline rule (as fitted on inner train)", "pipeline"),
    ("champion_refit", "champion, pipeline rule (refit on outer train half)", "pipeline"),
    ("xgboost_tuned", "challenger: XGBoost tuned (optuna cv), early-stopped", "pipeline"),
    ("xgboost_tuned_refit", "challenger: XGBoost tuned, refit on outer half", "pipeline"),
    ("scorecard", "scorecard (outer train half)", "peer"),
    ("logistic", "logistic regression (one-hot, standardised)", "peer"),
    ("xgboost_default", "XGBClassifier() defaults", "peer"),
    ("hgb_default", "HistGradientBoostingClassifier() defaults", "peer"),
    ("blend", "PROPOSAL blend: scorecard + challenger log-odds, weight on inner valid", "proposal"),
    ("blend_refit", "PROPOSAL blend, components refit on outer half", "proposal"),
    ("blend_equal_refit", "PROPOSAL blend 50/50, components refit on outer half", "proposal"),
    ("shallow", "PROPOSAL shallow challenger: XGBoost depth 2, early-stopped", "proposal"),
    ("shallow_refit", "PROPOSAL shallow challenger, refit on outer half", "proposal"),
    ("champion_multi", "PROPOSAL champion among 4 candidates (as fitted)", "proposal"),
    ("champion_multi_refit", "PROPOSAL champion among 4 candidates (refit)", "proposal"),
    ("champion_cv_refit", "PROPOSAL champion of the 2, chosen on 5-fold CV AUC (refit)", "proposal"),
    ("champion_multi_cv_refit", "PROPOSAL champion among 4, chosen on 5-fold CV AUC (refit)", "proposal"),
    (
        "champion_blend_cv_refit",
        "PROPOSAL champion = blend, weight 0..1 on 5-fold CV AUC (1 = scorecard, 0 = challenger), refit",
        "proposal",
    ),
    (
        "champion_blend_cv_gain_refit",
        "PROPOSAL the same, scorecard kept unless the blend gains >= 0.005 CV AUC (refit)",
        "proposal",
    ),
)
MODEL_LABELS = {key: label for key, label, _ in MODELS}
MODEL_GROUPS = {key: group for key, _, group in MODELS}


# What the numbers mean: written after reading a full run (quality.md shows them under "Notes").
NOTES: tuple[str, ...] = (
    "Protocol as run: 5x2 CV and 30 tuning trials per outer fold on all four datasets (12 min in all "
    "on this shared 2-core machine, so no reduced configuration was needed). Inner split 80/20, "
    "stratified; the feature transformer is fitted on the inner train; tuning (objective cv, 3 folds, "
    "default search space, no time limit) reads the inner train only, as the tune stage reads the train "
    "split only; early stopping and the champion choice read the inner valid split; peers and the "
    "'refit' rows train on the whole outer half. Files are read as the README's examples read them: "
    "German drops `class`, HMEQ's REASON and JOB are text, Australian and Taiwan keep their codes numeric.",
    "The pipeline as it is misses the 'at least every other model' and the Brier bars on all four "
    "datasets, and German's published bar: German 0.776 (-0.010 to the scorecard, -0.025 to 0.801), "
    "Australian 0.926 (-0.005 to the refit challenger), Taiwan 0.780 (-0.001), HMEQ 0.946 (-0.007 to "
    "XGBClassifier()). It is within 0.01 of the published figure on Australian (-0.007) and Taiwan (-0.003).",
    "Why, first: the champion is the model fitted on 80% of the training data; the 20% valid split only "
    "serves early stopping and the choice. Refitting the chosen model on train+valid (the booster for the "
    "rounds early stopping chose) adds 0.007 on HMEQ, 0.005 on German, 0.001 on Taiwan and Australian; "
    "alone it clears Taiwan and HMEQ's Brier bar, and HMEQ's AUC then ties XGBClassifier() "
    "(0.95302 against 0.95303).",
    "Why, second: the choice is made on a small split. German's inner valid holds 100 rows (30 bads), "
    "Australian's 69. On German the challenger's validation gain ran from -0.029 to +0.071 with no relation "
    "to its gain on the test half (-0.029 to +0.011); the rule picked it in 5 of 10 folds and the scorecard "
    "was better on the test half in all 5. On Australian it kept the scorecard in 3 folds where the "
    "challenger was better by 0.006 to 0.025. Adding candidates but still choosing on that split "
    "(champion_multi) gains little: the noise of the choice, not the candidate set, binds on small data.",
    "Why, third: on German the scorecard is the best single model (0.786); no single challenger reaches "
    "it, only blends do.",
    "What closes the gaps (all choices inside the outer training half): a blend of the scorecard's and the "
    "challenger's log-odds whose weight (0, 0.1, ..., 1; 1 = the scorecard, 0 = the challenger) is chosen "
    "on 5-fold out-of-fold AUC over train+valid, then refitted on train+valid: German 0.7859 (a tie with "
    "the scorecard, +0.00001), Australian 0.9335 (+0.0026 over the best other, +0.0005 over 0.933), "
    "Taiwan 0.7812 (+0.0003), HMEQ 0.9531 (+0.00002, a tie with XGBClassifier()); Brier the lowest or "
    "tied-lowest on all four. It meets every bar except German's published one (-0.015). The CV choice "
    "costs 5 scorecard and 5 booster fits: +4 s per fold on German, +9 s on Taiwan.",
    "Variants: keeping the pipeline's preference for the scorecard (the blend must gain 0.005 CV AUC) "
    "gives German 0.7842 (-0.0017 to the scorecard) and Australian 0.9326, the rest unchanged. Four "
    "candidates (with a depth-2 booster) on CV AUC: 0.7836, 0.9326, 0.7814, 0.9531; the depth-2 booster "
    "is the best single model on Australian (0.935 refit) but rarely wins the CV choice. A fixed 50/50 "
    "blend is best on German (0.789) and good on Australian (0.933) but loses 0.008 on HMEQ and 0.002 on "
    "Taiwan, where the scorecard is much weaker: the weight has to be chosen on data.",
    "German's published bar (0.791) is out of reach of these model families under this protocol. "
    "Exploration on the same folds, outside this script and chosen after seeing the test halves (so "
    "optimistic): an equal blend of scorecard, one-hot logistic regression (C=0.2) and the challenger "
    "0.790; finer scorecard bins, min_iv 0 or features.min_category_count 5: no change (within 0.0005); "
    "the challenger tuned in a wider space 0.780-0.782. The fold standard deviation is 0.026, so the "
    "standard error of a 10-fold mean is about 0.008: 0.801 - 0.01 is about one standard error above what "
    "every family here reaches. 0.801 is the best of some forty classifiers (heterogeneous ensembles) in "
    "Lessmann et al., a maximum and so itself optimistic; the issue's own peer figure (0.782) agrees.",
    "HMEQ's challenger is held back by the default search space: the tuned max_depth sits on the upper "
    "bound (7) in 5 of 10 folds and min_child_weight below 2.1 (floor 1) in all 10. Exploration on 4 of "
    "the 10 folds: max_depth 2-10 and min_child_weight 0.1-50 raise the refit challenger from 0.9552 to "
    "0.9595 there (XGBClassifier() 0.9540), for about 5 times the tuning time: a params.yaml change "
    "(tune.space), not code. On German, refitting the challenger for the tuning's cross-validated round "
    "count (TuningResult.best_n_rounds) instead of early stopping on 100 rows gave 0.779 against 0.776.",
    "Peers as specified: logistic regression is one-hot plus standardised, C=1, which is weak on Taiwan "
    "(0.722: heavy-tailed amounts, PAY_* as numbers); one-hot coding of Australian's integer codes cost it "
    "about 0.008 in a check (0.921 against 0.929), one reason the codes stay numeric. Timings are one "
    "thread per model on a machine shared with another developer's work.",
)


# --------------------------------------------------------------------------- helpers


def logit(p: Array) -> Array:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.asarray(np.log(q / (1.0 - q)), dtype=np.float64)


def sigmoid(z: Array) -> Array:
    return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64))), dtype=np.float64)


def auc(y: Array, p: Array) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


@contextlib.contextmanager
def stopwatch(times: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall seconds to ``times[key]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        times[key] = times.get(key, 0.0) + time.perf_counter() - start


def xgb_params(config: Any, seed: int) -> dict[str, Any]:
    """The booster parameters of scoring.train.train_xgboost, for a refit with a fixed round count.

    train_xgboost always early-stops on a validation set; a refit on the whole outer half has
    none left, so it trains the number of rounds the early-stopped fit chose.
    """
    from scoring.train import booster_params

    params = booster_params(config, seed, N_THREADS)
    params["eval_metric"] = ["auc", "logloss"]
    return params


def refit_booster(X: pd.DataFrame, y: Array, config: Any, n_rounds: int, seed: int) -> Any:
    import xgboost as xgb

    dtrain = xgb.DMatrix(X, label=y, enable_categorical=True, nthread=N_THREADS)
    return xgb.train(xgb_params(config, seed), dtrain, num_boost_round=n_rounds, verbose_eval=False)


def booster_pd(booster: Any, X: pd.DataFrame) -> Array:
    from scoring.model import BoosterEstimator

    return np.asarray(BoosterEstimator(booster).predict_pd(X), dtype=np.float64)


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


def choose_among(valid_auc: Mapping[str, float], baseline: str, min_gain: float) -> tuple[str, str]:
    """PROPOSAL: the champion rule over any number of candidates.

    A candidate other than the baseline is eligible when it gains at least ``min_gain``
    validation AUC over the baseline; the eligible candidate with the highest validation
    AUC wins, else the baseline stays. With two candidates this is exactly
    scoring.train.choose_champion.
    """
    base = valid_auc[baseline]
    eligible = {k: v for k, v in valid_auc.items() if k != baseline and v - base >= min_gain}
    if not eligible:
        return baseline, f"no candidate gains {min_gain} over {baseline}"
    # Ties go to the simpler candidate (a blend with weight 0 scores exactly as the booster).
    order = sorted(eligible, key=lambda k: (SIMPLICITY.index(k) if k in SIMPLICITY else len(SIMPLICITY), k))
    best = order[0]
    for name in order[1:]:
        if eligible[name] > eligible[best]:
            best = name
    return best, f"{best} gains {eligible[best] - base:+.4f} over {baseline}"


def blend_weight(y_valid: Array, z_scorecard: Array, z_challenger: Array) -> float:
    """PROPOSAL: the scorecard's weight in the log-odds blend, by AUC on the inner valid split.

    Ties go to the larger scorecard weight (the simpler model).
    """
    scores = [(auc(y_valid, w * z_scorecard + (1 - w) * z_challenger), w) for w in BLEND_GRID]
    best = max(s for s, _ in scores)
    return max(w for s, w in scores if s >= best - 1e-12)


def cv_predictions(
    X: pd.DataFrame,
    y: Array,
    candidates: Mapping[str, tuple[Any, int]],
    seed: int,
    n_folds: int = 5,
) -> dict[str, Array]:
    """PROPOSAL: out-of-fold PDs on the whole outer training half, for a less noisy choice.

    The scorecard is refitted per fold; each booster (config, rounds) is retrained per fold
    for the number of rounds its early-stopped fit chose, so no fold early-stops on the rows
    it is scored on.
    """
    from sklearn.model_selection import StratifiedKFold

    from scoring.config import ScorecardConfig
    from scoring.train import train_scorecard

    oof = {name: np.zeros(len(y)) for name in ("scorecard", *candidates)}
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
    for fit_idx, eval_idx in splitter.split(np.zeros(len(y)), y):
        X_fit, X_eval = X.iloc[fit_idx], X.iloc[eval_idx]
        card = train_scorecard(X_fit, pd.Series(y[fit_idx], index=X_fit.index), ScorecardConfig(), {}, seed)
        oof["scorecard"][eval_idx] = card.predict_pd(X_eval)
        for name, (config, n_rounds) in candidates.items():
            booster = refit_booster(X_fit, y[fit_idx], config, n_rounds, seed)
            oof[name][eval_idx] = booster_pd(booster, X_eval)
    return oof


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
) -> FoldOutput:
    import xgboost as xgb
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import train_test_split

    from scoring.config import ChampionConfig, ScorecardConfig, XGBoostConfig
    from scoring.features import ApplicationFeatures
    from scoring.metrics import discrimination_metrics
    from scoring.train import choose_champion, train_scorecard, train_xgboost
    from scoring.tuning import TuningSettings, tune_xgboost

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

    # ---- the pipeline: features on inner train, tune, challenger, scorecard, champion
    with stopwatch(t, "features"):
        features = ApplicationFeatures(
            exclude_columns=spec.non_feature_columns, categorical_columns=spec.categorical_columns
        ).fit(inner_train)
        X_in_tr = features.transform(inner_train)
        X_in_va = features.transform(inner_valid)
        X_outer = features.transform(outer_train)
        X_test = features.transform(outer_test)
    base = XGBoostConfig(n_jobs=N_THREADS)
    settings = TuningSettings(n_trials=trials, timeout_seconds=None, objective="cv", n_jobs=N_THREADS)
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
    with stopwatch(t, "xgboost_fit"):
        challenger = train_xgboost(X_in_tr, s_in_tr, X_in_va, s_in_va, tuned.best_config, seed)
    with stopwatch(t, "scorecard_fit"):
        scorecard = train_scorecard(X_in_tr, s_in_tr, ScorecardConfig(), {}, seed)
    with stopwatch(t, "choose"):
        p_va = {
            "xgboost": booster_pd(challenger.booster, X_in_va),
            "scorecard": np.asarray(scorecard.predict_pd(X_in_va), dtype=np.float64),
        }
        valid_auc = {k: discrimination_metrics(y_in_va, p)["auc"] for k, p in p_va.items()}
        decision = choose_champion(valid_auc, ChampionConfig())
    with stopwatch(t, "predict"):
        p_test = {
            "xgboost": booster_pd(challenger.booster, X_test),
            "scorecard": np.asarray(scorecard.predict_pd(X_test), dtype=np.float64),
        }
    with stopwatch(t, "xgboost_refit"):
        xgb_refit = refit_booster(X_outer, y_outer, tuned.best_config, challenger.n_trees, seed)
        p_test_refit = {"xgboost": booster_pd(xgb_refit, X_test)}
    with stopwatch(t, "scorecard_refit"):
        scorecard_refit = train_scorecard(X_outer, s_outer, ScorecardConfig(), {}, seed)
        p_test_refit["scorecard"] = np.asarray(scorecard_refit.predict_pd(X_test), dtype=np.float64)

    out.preds["champion"] = p_test[decision.champion]
    out.preds["champion_refit"] = p_test_refit[decision.champion]
    out.preds["xgboost_tuned"] = p_test["xgboost"]
    out.preds["xgboost_tuned_refit"] = p_test_refit["xgboost"]
    out.preds["scorecard"] = p_test_refit["scorecard"]
    out.info.update(
        champion=decision.champion,
        valid_auc={k: round(v, 5) for k, v in valid_auc.items()},
        tuned_params={k: (round(v, 5) if isinstance(v, float) else v) for k, v in tuned.best_params.items()},
        tuned_cv_auc=round(tuned.best_value, 5),
        tuned_cv_n_rounds=tuned.best_n_rounds,
        n_trials_pruned=tuned.n_trials_pruned,
        xgboost_n_trees=challenger.n_trees,
        scorecard_features=len(scorecard.selected_features),
        n_inner_train=len(inner_tr_pos),
        n_inner_valid=len(inner_va_pos),
        n_test=len(test_idx),
    )

    # ---- PROPOSALS: blend and shallow challenger, chosen on the inner valid split only
    with stopwatch(t, "blend_choose"):
        z_va_sc, z_va_x = logit(p_va["scorecard"]), logit(p_va["xgboost"])
        w = blend_weight(y_in_va, z_va_sc, z_va_x)
        p_va["blend"] = sigmoid(w * z_va_sc + (1 - w) * z_va_x)
        out.preds["blend"] = sigmoid(w * logit(p_test["scorecard"]) + (1 - w) * logit(p_test["xgboost"]))
        z_sc_refit, z_x_refit = logit(p_test_refit["scorecard"]), logit(p_test_refit["xgboost"])
        out.preds["blend_refit"] = sigmoid(w * z_sc_refit + (1 - w) * z_x_refit)
        out.preds["blend_equal_refit"] = sigmoid(0.5 * z_sc_refit + 0.5 * z_x_refit)
    shallow_config = base.model_copy(update={"max_depth": 2})
    with stopwatch(t, "shallow_fit"):
        shallow = train_xgboost(X_in_tr, s_in_tr, X_in_va, s_in_va, shallow_config, seed)
        p_va["shallow"] = booster_pd(shallow.booster, X_in_va)
        out.preds["shallow"] = booster_pd(shallow.booster, X_test)
    with stopwatch(t, "shallow_refit"):
        shallow_refit = refit_booster(X_outer, y_outer, shallow_config, shallow.n_trees, seed)
        out.preds["shallow_refit"] = booster_pd(shallow_refit, X_test)
    multi_valid = {k: discrimination_metrics(y_in_va, p_va[k])["auc"] for k in p_va}
    pick, _ = choose_among(multi_valid, "scorecard", ChampionConfig().min_auc_gain)
    kept = {"scorecard": p_test["scorecard"], "xgboost": p_test["xgboost"]}
    kept.update(blend=out.preds["blend"], shallow=out.preds["shallow"])
    refit = {"scorecard": p_test_refit["scorecard"], "xgboost": p_test_refit["xgboost"]}
    refit.update(blend=out.preds["blend_refit"], shallow=out.preds["shallow_refit"])
    out.preds["champion_multi"] = kept[pick]
    out.preds["champion_multi_refit"] = refit[pick]
    out.info.update(
        blend_scorecard_weight=w,
        shallow_n_trees=shallow.n_trees,
        champion_multi=pick,
        multi_valid_auc={k: round(v, 5) for k, v in multi_valid.items()},
    )

    # ---- PROPOSAL: the same rules on 5-fold out-of-fold AUC over the whole outer training half
    min_gain = ChampionConfig().min_auc_gain
    with stopwatch(t, "cv_choose"):
        oof = cv_predictions(
            X_outer,
            y_outer,
            {
                "xgboost": (tuned.best_config, challenger.n_trees),
                "shallow": (shallow_config, shallow.n_trees),
            },
            seed,
        )
        z_oof_sc, z_oof_x = logit(oof["scorecard"]), logit(oof["xgboost"])
        w_cv = blend_weight(y_outer, z_oof_sc, z_oof_x)
        oof["blend"] = sigmoid(w_cv * z_oof_sc + (1 - w_cv) * z_oof_x)
        cv_auc = {k: auc(y_outer, p) for k, p in oof.items()}
        pick_cv, _ = choose_among({k: cv_auc[k] for k in ("scorecard", "xgboost")}, "scorecard", min_gain)
        pick_multi_cv, _ = choose_among(cv_auc, "scorecard", min_gain)
    refit_cv = dict(refit)
    refit_cv["blend"] = sigmoid(w_cv * z_sc_refit + (1 - w_cv) * z_x_refit)
    out.preds["champion_blend_cv_refit"] = refit_cv["blend"]
    # The pipeline's preference for the scorecard, applied to the blend's cross-validated gain.
    pick_blend_gain = "blend" if cv_auc["blend"] - cv_auc["scorecard"] >= min_gain else "scorecard"
    out.preds["champion_blend_cv_gain_refit"] = refit_cv[pick_blend_gain]
    out.preds["champion_cv_refit"] = refit_cv[pick_cv]
    out.preds["champion_multi_cv_refit"] = refit_cv[pick_multi_cv]
    out.info.update(
        champion_cv=pick_cv,
        champion_multi_cv=pick_multi_cv,
        champion_blend_cv_gain=pick_blend_gain,
        blend_scorecard_weight_cv=w_cv,
        cv_auc={k: round(v, 5) for k, v in cv_auc.items()},
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

    pipeline_core = t["features"] + t["tune"] + t["xgboost_fit"] + t["scorecard_fit"] + t["choose"]
    proposal_extra = t["blend_choose"] + t["shallow_fit"]
    out.info["model_seconds"] = {
        "champion": pipeline_core + t["predict"],
        "champion_refit": pipeline_core + t["predict"] + t["xgboost_refit"] + t["scorecard_refit"],
        "xgboost_tuned": t["features"] + t["tune"] + t["xgboost_fit"],
        "xgboost_tuned_refit": t["features"] + t["tune"] + t["xgboost_fit"] + t["xgboost_refit"],
        "scorecard": t["features"] + t["scorecard_refit"],
        "logistic": t["features"] + t["logistic"],
        "xgboost_default": t["features"] + t["xgboost_default"],
        "hgb_default": t["features"] + t["hgb_default"],
        "blend": pipeline_core + t["predict"] + t["blend_choose"],
        "blend_refit": pipeline_core + t["blend_choose"] + t["xgboost_refit"] + t["scorecard_refit"],
        "blend_equal_refit": pipeline_core + t["xgboost_refit"] + t["scorecard_refit"],
        "shallow": t["features"] + t["shallow_fit"],
        "shallow_refit": t["features"] + t["shallow_fit"] + t["shallow_refit"],
        "champion_multi": pipeline_core + t["predict"] + proposal_extra,
        "champion_multi_refit": pipeline_core
        + proposal_extra
        + t["xgboost_refit"]
        + t["scorecard_refit"]
        + t["shallow_refit"],
        "champion_blend_cv_refit": pipeline_core + t["cv_choose"] + t["xgboost_refit"] + t["scorecard_refit"],
        "champion_blend_cv_gain_refit": pipeline_core
        + t["cv_choose"]
        + t["xgboost_refit"]
        + t["scorecard_refit"],
        "champion_cv_refit": pipeline_core + t["cv_choose"] + t["xgboost_refit"] + t["scorecard_refit"],
        "champion_multi_cv_refit": pipeline_core
        + proposal_extra
        + t["cv_choose"]
        + t["xgboost_refit"]
        + t["scorecard_refit"]
        + t["shallow_refit"],
    }
    return out


# --------------------------------------------------------------------------- one dataset


def load_dataset(ds: Dataset, data_dir: Path) -> tuple[pd.DataFrame, Array, Any]:
    from scoring.config import FileDataConfig
    from scoring.prepare import prepare_file

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
) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from scoring.metrics import discrimination_metrics

    applications, y, spec = load_dataset(ds, data_dir)
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
                    f"multi={out.info['champion_multi']} w={out.info['blend_scorecard_weight']} "
                    f"AUC champion {info['test_auc']['champion']:.4f} "
                    f"refit {info['test_auc']['champion_refit']:.4f} "
                    f"xgb {info['test_auc']['xgboost_tuned']:.4f} "
                    f"sc {info['test_auc']['scorecard']:.4f} lr {info['test_auc']['logistic']:.4f} "
                    f"blend {info['test_auc']['blend_refit']:.4f} ({info['seconds']:.0f} s)"
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
    multi_picks = [f["champion_multi"] for f in folds_info]
    cv_picks = [f["champion_cv"] for f in folds_info]
    multi_cv_picks = [f["champion_multi_cv"] for f in folds_info]
    blend_gain_picks = [f["champion_blend_cv_gain"] for f in folds_info]
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
            "tuning": "scoring.tuning.tune_xgboost, objective cv (3 folds) on the inner train split",
            "inner_valid_fraction": INNER_VALID_FRACTION,
            "threads_per_model": N_THREADS,
            "seed": SEED,
        },
        "wall_seconds": round(time.perf_counter() - started, 1),
        "models": models,
        "champion_picks": {p: picks.count(p) for p in sorted(set(picks))},
        "champion_multi_picks": {p: multi_picks.count(p) for p in sorted(set(multi_picks))},
        "champion_cv_picks": {p: cv_picks.count(p) for p in sorted(set(cv_picks))},
        "champion_multi_cv_picks": {p: multi_cv_picks.count(p) for p in sorted(set(multi_cv_picks))},
        "champion_blend_cv_gain_picks": {p: blend_gain_picks.count(p) for p in sorted(set(blend_gain_picks))},
        "folds": folds_info,
        "acceptance": acceptance(ds, models),
    }


CHAMPIONS = (
    "champion",
    "champion_refit",
    "champion_multi",
    "champion_multi_refit",
    "champion_cv_refit",
    "champion_multi_cv_refit",
    "champion_blend_cv_refit",
    "champion_blend_cv_gain_refit",
)


def acceptance(ds: Dataset, models: Mapping[str, Any]) -> dict[str, Any]:
    """The issue's three bars, for the pipeline's champion (as fitted and refit) and the proposed rules.

    "Every other model" is the pipeline's candidates and the peers; champion variants are
    not compared with each other, nor with the proposals' extra candidates.
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
        "time is wall seconds per outer fold, tuning included. Rows marked PROPOSAL are not in "
        "the library: they are candidates this script adds to show what would close the gaps.",
        "",
    ]
    total = sum(r["wall_seconds"] for r in results["datasets"].values())
    lines += [f"Wall time of the datasets in this file: {total / 60:.1f} min.", ""]
    lines += summary_table(results, "champion", "The pipeline's champion as it is (rule and fit unchanged)")
    lines += summary_table(results, "champion_refit", "The pipeline's rule, champion refit on the outer half")
    lines += summary_table(
        results,
        "champion_blend_cv_refit",
        "PROPOSAL (recommended): scorecard-challenger blend, weight on 5-fold CV AUC, refit",
    )
    lines += summary_table(
        results,
        "champion_blend_cv_gain_refit",
        "PROPOSAL: the same with the scorecard preference (blend must gain >= 0.005 CV AUC)",
    )
    lines += summary_table(
        results,
        "champion_multi_cv_refit",
        "PROPOSAL: 4 candidates (with a depth-2 booster) on CV AUC, refit",
    )
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
            return ", ".join(f"{k} {v}" for k, v in res[name].items())

        weights = ", ".join(f"{f['blend_scorecard_weight']:.1f}" for f in res["folds"])
        weights_cv = ", ".join(f"{f['blend_scorecard_weight_cv']:.1f}" for f in res["folds"])
        lines += [
            "",
            f"Champion picks per fold: pipeline rule {counts('champion_picks')}; PROPOSAL rule over 4 "
            f"candidates {counts('champion_multi_picks')}; pipeline rule on CV AUC "
            f"{counts('champion_cv_picks')}; 4 candidates on CV AUC {counts('champion_multi_cv_picks')}; "
            f"blend on CV with the scorecard preference {counts('champion_blend_cv_gain_picks')}. "
            f"Blend scorecard weight per fold, on inner valid: {weights}; on CV: {weights_cv}.",
            "",
            "| champion | AUC | ≥ every other model | "
            + (f"within 0.01 of {published} | " if published else "")
            + "Brier ≤ best other model's |",
            "|---|---:|---|" + ("---|" if published else "") + "---|",
        ]
        for c in CHAMPIONS:
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
        if res is None:
            continue
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
    from scoring.io import write_text

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
        result = run_dataset(ds, args.data_dir, args.trials, args.repeats, progress)
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
