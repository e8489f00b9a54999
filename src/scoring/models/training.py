"""Training: the XGBoost challenger, the scorecard baseline, and the choice of champion."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

from scoring.models.config import ChampionConfig, ScorecardConfig, TrainConfig, XGBoostConfig

if TYPE_CHECKING:
    from scoring.models.scorecard import ScorecardModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    booster: xgb.Booster
    best_iteration: int
    best_valid_logloss: float
    n_trees: int


def _labels(y: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(y, errors="coerce")
    if values.isna().any() or not values.isin([0, 1]).all():
        raise ValueError(
            f"{name}: target must be 0 or 1 on every training row; got {sorted(values.unique())[:5]}"
        )
    if values.nunique() < 2:
        raise ValueError(f"{name}: target has a single class ({int(values.iloc[0])}); need both 0 and 1")
    return values.to_numpy(dtype=np.float64)


def with_tuned_parameters(base: XGBoostConfig, tuned: Mapping[str, object]) -> tuple[XGBoostConfig, bool]:
    """The challenger's settings: params, overridden by the tune stage's best parameters if any."""
    best = tuned.get("best_params") or {}
    if not isinstance(best, Mapping) or not best:
        return base, False
    unknown = sorted(set(best) - set(XGBoostConfig.model_fields))
    if unknown:
        raise ValueError(f"tuned parameters {unknown} are not XGBoost settings; rerun the tune stage")
    return base.model_copy(update=dict(best)), True


def monotone_constraints(
    matrix: pd.DataFrame, monotone_risk: Mapping[str, Literal["increasing", "decreasing"]]
) -> dict[str, int]:
    """XGBoost's constraint per numeric feature of the matrix that params give a risk direction."""
    numeric = {c for c in matrix.columns if not isinstance(matrix[c].dtype, pd.CategoricalDtype)}
    return {name: 1 if way == "increasing" else -1 for name, way in monotone_risk.items() if name in numeric}


def constraint_string(columns: Iterable[object], monotone: Mapping[str, int] | None) -> str | None:
    """XGBoost's monotone_constraints in column order ("(1,0,-1)"); None when there are none."""
    if not monotone:
        return None
    # Categorical features cannot be constrained and get 0.
    return "(" + ",".join(str(monotone.get(str(c), 0)) for c in columns) + ")"


def booster_params(
    config: XGBoostConfig, seed: int, nthread: int | None = None, constraints: str | None = None
) -> dict[str, Any]:
    """The booster parameters of the challenger; tuning trials use the same, so they tune this model."""
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss"],
        "tree_method": "hist",
        "learning_rate": config.learning_rate,
        "max_depth": config.max_depth,
        "min_child_weight": config.min_child_weight,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample_bytree,
        "reg_lambda": config.reg_lambda,
        "reg_alpha": config.reg_alpha,
        "max_cat_to_onehot": config.max_cat_to_onehot,
        "nthread": config.n_jobs if nthread is None else nthread,
        "seed": seed,
    }
    if constraints is not None:
        params["monotone_constraints"] = constraints
    return params


def train_xgboost(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: XGBoostConfig,
    seed: int,
    monotone: Mapping[str, int] | None = None,
) -> TrainResult:
    """Fit a binary logistic booster; stop when validation log loss stops improving.

    Class imbalance is left alone (no ``scale_pos_weight``): re-weighting distorts the
    probabilities, and a PD model is judged on them, not only on ranking.
    The returned booster is sliced to the best iteration, so every consumer predicts with
    the same trees without having to know about early stopping.
    """
    dtrain = xgb.DMatrix(X_train, label=_labels(y_train, "train"), enable_categorical=True)
    dvalid = xgb.DMatrix(X_valid, label=_labels(y_valid, "valid"), enable_categorical=True)
    params = booster_params(config, seed, constraints=constraint_string(X_train.columns, monotone))
    params["eval_metric"] = ["auc", "logloss"]  # early stopping watches the last one
    history: dict[str, dict[str, list[float]]] = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=config.n_estimators,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        early_stopping_rounds=config.early_stopping_rounds,
        evals_result=history,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    sliced = booster[: best + 1]
    logloss = history["valid"]["logloss"][best]
    logger.info("xgboost: best iteration %d of %d, valid logloss %.5f", best, config.n_estimators, logloss)
    return TrainResult(
        booster=sliced, best_iteration=best, best_valid_logloss=float(logloss), n_trees=best + 1
    )


def train_scorecard(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    config: ScorecardConfig,
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]],
    seed: int,
) -> ScorecardModel:
    """The points scorecard on the same feature matrix as the challenger."""
    from scoring.models.scorecard import ScorecardSettings, fit_scorecard

    candidates = X_train.drop(columns=[c for c in config.exclude_features if c in X_train.columns])
    trends = {
        name: "ascending" if way == "increasing" else "descending"
        for name, way in monotone_risk.items()
        if name in candidates.columns and not isinstance(candidates[name].dtype, pd.CategoricalDtype)
    }
    settings = ScorecardSettings(
        pdo=config.pdo,
        base_score=config.base_score,
        base_odds=config.base_odds,
        min_iv=config.min_iv,
        max_n_bins=config.max_n_bins,
        min_bin_size=config.min_bin_size,
        monotonic_trends=trends,
        C=config.C,
        max_features=config.max_features,
        max_n_prebins=config.max_n_prebins,
    )
    labels = pd.Series(_labels(y_train, "train"), index=candidates.index)
    return fit_scorecard(candidates, labels, settings, seed)


def train_booster_rounds(
    X: pd.DataFrame,
    y: pd.Series,
    config: XGBoostConfig,
    n_rounds: int,
    seed: int,
    monotone: Mapping[str, int] | None = None,
) -> xgb.Booster:
    """The challenger's booster trained for a fixed number of rounds (no validation set to stop on).

    Used where early stopping has already chosen the round count: the folds of the
    cross-validated champion choice, and refits on more data.
    """
    if n_rounds < 1:
        raise ValueError(f"n_rounds: expected >= 1, got {n_rounds}")
    dtrain = xgb.DMatrix(X, label=_labels(y, "train"), enable_categorical=True)
    params = booster_params(config, seed, constraints=constraint_string(X.columns, monotone))
    return xgb.train(params, dtrain, num_boost_round=n_rounds, verbose_eval=False)


def booster_log_odds(booster: xgb.Booster, X: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The booster's margin: the log-odds of default, exact (no logit of a rounded probability)."""
    dmatrix = xgb.DMatrix(X, enable_categorical=True, nthread=1)
    return np.asarray(booster.predict(dmatrix, output_margin=True), dtype=np.float64)


# --------------------------------------------------------------------------- champion

CandidateName = Literal["scorecard", "xgboost", "blend"]
CANDIDATES: tuple[CandidateName, ...] = ("scorecard", "xgboost", "blend")  # simplest first


@dataclass(frozen=True)
class CandidateRecipe:
    """How the two fitted models were made, so the cv selection can refit them per fold."""

    xgboost: XGBoostConfig
    n_rounds: int  # the early-stopped challenger's tree count
    scorecard: ScorecardConfig
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]]
    seed: int


@dataclass(frozen=True)
class ChampionDecision:
    champion: CandidateName
    reason: str
    selection: Literal["cv", "valid"]
    auc: dict[str, float]  # candidate -> AUC on the selection data
    blend_weight: float  # the scorecard's weight in the blend
    blend_auc: dict[str, float]  # every weight tried ("0.3") -> AUC on the selection data
    n_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "reason": self.reason,
            "selection": self.selection,
            "auc": dict(self.auc),
            "blend_weight": self.blend_weight,
            "blend_auc": dict(self.blend_auc),
            "n_rows": self.n_rows,
        }


def _auc(y: npt.NDArray[np.float64], score: npt.NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def blend_log_odds(
    z_scorecard: npt.ArrayLike, z_xgboost: npt.ArrayLike, scorecard_weight: float
) -> npt.NDArray[np.float64]:
    """The blend's log-odds: the scorecard's weighted by ``scorecard_weight``, the rest the challenger's."""
    w = float(scorecard_weight)
    return np.asarray(
        w * np.asarray(z_scorecard, dtype=np.float64) + (1.0 - w) * np.asarray(z_xgboost, dtype=np.float64),
        dtype=np.float64,
    )


def best_blend_weight(
    y: npt.ArrayLike, z_scorecard: npt.ArrayLike, z_xgboost: npt.ArrayLike, weights: Iterable[float]
) -> tuple[float, dict[str, float]]:
    """The scorecard weight with the highest AUC (ties: the larger, simpler side) and every weight's AUC."""
    labels = np.asarray(y, dtype=np.float64)
    scores = {float(w): _auc(labels, blend_log_odds(z_scorecard, z_xgboost, w)) for w in weights}
    if not scores:
        raise ValueError("blend_weights: expected at least one weight, got none")
    best = max(scores.values())
    weight = max(w for w, a in scores.items() if a >= best - 1e-12)
    return weight, {f"{w:g}": a for w, a in sorted(scores.items())}


def choose_champion(auc: Mapping[str, float], config: ChampionConfig) -> tuple[CandidateName, str]:
    """The rule: the best AUC wins unless a simpler candidate is within ``min_auc_gain`` of it.

    Candidates are taken in order of simplicity (scorecard, xgboost, blend); the first whose
    AUC ties the best, or trails it by less than ``min_auc_gain``, is champion. With the
    scorecard and the challenger alone this is the two-way rule: the challenger must gain at
    least ``min_auc_gain`` over the scorecard.
    """
    names = [n for n in CANDIDATES if n in auc]
    unknown = sorted(set(auc) - set(CANDIDATES))
    if unknown or not names:
        raise ValueError(f"candidates {sorted(auc)}: expected names among {list(CANDIDATES)}")
    best = max(names, key=lambda n: (auc[n], -names.index(n)))
    gain = config.min_auc_gain
    for name in names:
        lag = auc[best] - auc[name]
        if lag <= 0.0 or lag < gain:
            champion = name
            break
    figures = ", ".join(f"{n} {auc[n]:.4f}" for n in names)
    if champion == best:
        others = [n for n in names if n != best]
        margins = ", ".join(f"{auc[best] - auc[n]:+.4f} over {n}" for n in others)
        reason = f"{best} has the best AUC ({figures}); it gains {margins} (>= {gain} required)"
        if not others:
            reason = f"{best} is the only candidate ({figures})"
    else:
        reason = (
            f"{best} has the best AUC ({figures}) but gains only {auc[best] - auc[champion]:+.4f} "
            f"over the simpler {champion}, less than the {gain} required: {champion} is champion"
        )
    logger.info("champion: %s (%s)", champion, reason)
    return champion, reason


def decide_champion(
    y: npt.ArrayLike,
    z_scorecard: npt.ArrayLike,
    z_xgboost: npt.ArrayLike,
    config: ChampionConfig,
    selection: Literal["cv", "valid"],
) -> ChampionDecision:
    """The champion from both models' log-odds on the selection data (out-of-fold or validation)."""
    labels = np.asarray(y, dtype=np.float64)
    weight, blend_auc = best_blend_weight(labels, z_scorecard, z_xgboost, config.blend_weights)
    auc = {
        "scorecard": _auc(labels, np.asarray(z_scorecard, dtype=np.float64)),
        "xgboost": _auc(labels, np.asarray(z_xgboost, dtype=np.float64)),
        "blend": blend_auc[f"{weight:g}"],
    }
    champion, reason = choose_champion(auc, config)
    reason = f"{selection} AUC; blend weight {weight:g} on the scorecard; {reason}"
    return ChampionDecision(champion, reason, selection, auc, weight, blend_auc, len(labels))


def _fold_log_odds(
    X_fit: pd.DataFrame,
    y_fit: pd.Series,
    X_eval: pd.DataFrame,
    recipe: CandidateRecipe,
    monotone: Mapping[str, int],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    from threadpoolctl import threadpool_limits

    # One BLAS thread in every fold, in this process or a worker, so the scorecard's regression
    # sums in the same order and the choice does not depend on n_jobs.
    with threadpool_limits(limits=1, user_api="blas"):
        card = train_scorecard(X_fit, y_fit, recipe.scorecard, recipe.monotone_risk, recipe.seed)
        z_card = np.asarray(card.log_odds(X_eval), dtype=np.float64)
    booster = train_booster_rounds(X_fit, y_fit, recipe.xgboost, recipe.n_rounds, recipe.seed, monotone)
    return z_card, booster_log_odds(booster, X_eval)


def out_of_fold_log_odds(
    X: pd.DataFrame, y: pd.Series, recipe: CandidateRecipe, folds: int, n_jobs: int = 1
) -> dict[str, npt.NDArray[np.float64]]:
    """Both models' out-of-fold log-odds over X: each refitted on the other folds by its recipe.

    The booster is trained for the early-stopped challenger's round count, so no fold stops
    on the rows it is scored on. ``n_jobs`` processes share the folds; the result does not
    depend on it (each fold is fitted alone, from the recipe's seed).
    """
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    labels = _labels(y, "train")
    target = pd.Series(labels, index=X.index)
    monotone = monotone_constraints(X, recipe.monotone_risk)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=recipe.seed % 2**32)
    splits = list(splitter.split(np.zeros(len(labels)), labels))
    results = Parallel(n_jobs=min(n_jobs, folds))(
        delayed(_fold_log_odds)(X.iloc[fit], target.iloc[fit], X.iloc[ev], recipe, monotone)
        for fit, ev in splits
    )
    oof = {"scorecard": np.zeros(len(X)), "xgboost": np.zeros(len(X))}
    for (_, eval_idx), (z_card, z_booster) in zip(splits, results, strict=True):
        oof["scorecard"][eval_idx] = z_card
        oof["xgboost"][eval_idx] = z_booster
    return oof


def select_champion(
    config: ChampionConfig,
    recipe: CandidateRecipe,
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    scorecard: ScorecardModel,
    booster: xgb.Booster,
) -> ChampionDecision:
    """The champion rule as params configure it.

    ``cv`` reads the training data only (out-of-fold, ``config.cv_folds`` folds), so the
    validation split stays free for calibration; ``valid`` scores the fitted models on it.
    """
    if config.selection == "cv":
        oof = out_of_fold_log_odds(X_train, y_train, recipe, config.cv_folds, config.n_jobs)
        labels = _labels(y_train, "train")
        return decide_champion(labels, oof["scorecard"], oof["xgboost"], config, "cv")
    labels = _labels(y_valid, "valid")
    z_sc, z_x = scorecard.log_odds(X_valid), booster_log_odds(booster, X_valid)
    return decide_champion(labels, z_sc, z_x, config, "valid")


# --------------------------------------------------------------------------- the final fit

FitOn = Literal["train", "train_valid"]
CALIBRATION_COLUMNS = ("split", "target", "scorecard", "xgboost", "champion")


def champion_log_odds(
    decision: ChampionDecision, z_scorecard: npt.ArrayLike, z_xgboost: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """The champion's log-odds from both models' log-odds (the blend at the chosen weight)."""
    weight = {"scorecard": 1.0, "xgboost": 0.0, "blend": decision.blend_weight}[decision.champion]
    return blend_log_odds(z_scorecard, z_xgboost, weight)


@dataclass(frozen=True)
class FittedCandidates:
    """The candidates as exported, the champion decision, and the rows calibration is fitted on.

    ``calibration`` has one row per held-out prediction, columns :data:`CALIBRATION_COLUMNS`:
    the split the row came from, its target, and each model's and the champion's uncalibrated
    log-odds, from a model that was not fitted on that row: out-of-fold over train+valid with
    ``fit_on="train_valid"``, the final models on valid with ``fit_on="train"``.
    """

    scorecard: ScorecardModel
    booster: xgb.Booster
    challenger: TrainResult  # the early-stopped fit on train that fixed the round count
    decision: ChampionDecision
    fit_on: FitOn
    n_fit: int
    calibration: pd.DataFrame

    @property
    def fit_splits(self) -> list[str]:
        """The splits the exported models were fitted on (their figures there are in-sample)."""
        return ["train", "valid"] if self.fit_on == "train_valid" else ["train"]

    @property
    def calibration_source(self) -> Literal["out_of_fold", "valid"]:
        return "out_of_fold" if self.fit_on == "train_valid" else "valid"


def fit_candidates(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: TrainConfig,
    xgb_config: XGBoostConfig,
    seed: int,
) -> FittedCandidates:
    """The training protocol of the train stage, as one function the benchmarks run too.

    1. The challenger is trained on train with early stopping on valid: this fixes its round
       count (the only thing valid decides).
    2. ``fit_on="train_valid"`` (default): train and valid are pooled; both models are refitted
       per fold of a stratified ``config.champion.cv_folds``-fold split of the pooled rows; the
       champion rule reads the out-of-fold AUCs; the scorecard and the booster (for the fixed
       round count) are refitted on all pooled rows. Every exported model thus sees 100% of the
       modelling data, and calibration gets out-of-fold predictions over the same rows, the
       pattern of scikit-learn's ``CalibratedClassifierCV(ensemble=False)``.
    3. ``fit_on="train"``: the models are the ones fitted on train, the rule as
       ``config.champion`` says (out-of-fold over train, or on valid), and calibration is
       fitted on the models' predictions on valid.
    """
    monotone = monotone_constraints(X_train, config.monotone_risk)
    challenger = train_xgboost(X_train, y_train, X_valid, y_valid, xgb_config, seed, monotone)
    recipe = CandidateRecipe(
        xgboost=xgb_config,
        n_rounds=challenger.n_trees,
        scorecard=config.scorecard,
        monotone_risk=config.monotone_risk,
        seed=seed,
    )
    if config.fit_on == "train":
        scorecard = train_scorecard(X_train, y_train, config.scorecard, config.monotone_risk, seed)
        decision = select_champion(
            config.champion, recipe, X_train, y_train, X_valid, y_valid, scorecard, challenger.booster
        )
        z_card = np.asarray(scorecard.log_odds(X_valid), dtype=np.float64)
        z_booster = booster_log_odds(challenger.booster, X_valid)
        calibration = _calibration_frame(
            np.full(len(X_valid), "valid"), _labels(y_valid, "valid"), z_card, z_booster, decision
        )
        return FittedCandidates(
            scorecard, challenger.booster, challenger, decision, "train", len(X_train), calibration
        )

    X_fit = pd.concat([X_train, X_valid], ignore_index=True)
    y_fit = pd.Series(
        np.concatenate([_labels(y_train, "train"), _labels(y_valid, "valid")]), index=X_fit.index
    )
    splits = np.concatenate([np.full(len(X_train), "train"), np.full(len(X_valid), "valid")])
    oof = out_of_fold_log_odds(X_fit, y_fit, recipe, config.champion.cv_folds, config.champion.n_jobs)
    labels = y_fit.to_numpy(dtype=np.float64)
    decision = decide_champion(labels, oof["scorecard"], oof["xgboost"], config.champion, "cv")
    scorecard = train_scorecard(X_fit, y_fit, config.scorecard, config.monotone_risk, seed)
    booster = train_booster_rounds(X_fit, y_fit, xgb_config, challenger.n_trees, seed, monotone)
    logger.info(
        "final fit on train+valid (%d rows): scorecard and booster (%d rounds); champion %s",
        len(X_fit),
        challenger.n_trees,
        decision.champion,
    )
    calibration = _calibration_frame(splits, labels, oof["scorecard"], oof["xgboost"], decision)
    return FittedCandidates(scorecard, booster, challenger, decision, "train_valid", len(X_fit), calibration)


def _calibration_frame(
    splits: npt.NDArray[np.str_],
    labels: npt.NDArray[np.float64],
    z_scorecard: npt.NDArray[np.float64],
    z_xgboost: npt.NDArray[np.float64],
    decision: ChampionDecision,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split": splits,
            "target": labels.astype(np.int8),
            "scorecard": z_scorecard,
            "xgboost": z_xgboost,
            "champion": champion_log_odds(decision, z_scorecard, z_xgboost),
        },
        columns=list(CALIBRATION_COLUMNS),
    )
