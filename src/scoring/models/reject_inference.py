"""Reject inference: training data for a PD model from the booked loans and the rejected applicants.

A lender sees outcomes only for the loans it booked (the accepts); the model is then used on
everyone who applies (through the door). Each method here turns the accepts (features and
outcomes) and the rejects (features only) into one weighted training set,
:class:`AugmentedData`, on which the final model is fitted; none of them can know the rejects'
outcomes, and no method wins everywhere in the literature (Banasik, Crook & Thomas 2003;
Ehrhardt et al. 2021; Kozodoi et al. 2025), which is why :mod:`benchmarks.bench_reject_inference`
measures them against the synthetic truth.

A method fits its helper models through a :data:`Learner`: a function that fits on ``(X, y,
weight)`` and returns a function giving the probability of default of new rows. Every random
draw comes from ``seed``.

Methods (``reject_inference.method``):

``accepts_only``
    The accepts as they are, weight 1 (the baseline: today's practice).
``hard_cutoff``
    A model on the accepts scores the rejects; the riskiest of them are labelled bad and the
    rest good, as many bad as ``bad_rate_factor`` times the rejects' mean predicted PD (rejects
    are usually worse than the accepts' model thinks: the factor says by how much).
``fuzzy``
    Each reject enters twice, as a bad with weight ``p`` and as a good with weight ``1 - p``,
    ``p`` the accepts' model's PD times ``bad_rate_factor`` (capped at 1); each copy's weight is
    also multiplied by ``reject_weight``.
``parcelling``
    The accepts' model's PD cuts the accepts into ``n_bands`` equal bands; in each band the
    rejects are labelled bad at random with the band's observed bad rate times
    ``bad_rate_factor``.
``reweighting``
    An acceptance model (accepted vs rejected, on every applicant) gives each accept its
    probability of being accepted; accepts are weighted by its inverse (capped at
    ``max_weight``, then scaled to mean 1), so that regions the old policy rarely accepted
    count for the applicants it turned away. Rejects are not used as rows.
``self_learning``
    Bias-aware self-learning after Kozodoi et al. (2025), simplified: rejects unlike any accept
    are filtered out first (an isolation forest on the accepts' numeric features; the
    ``filter_share`` most anomalous rejects are dropped), then in each of ``rounds`` rounds a
    model on the labelled rows scores the remaining rejects, and those whose PD is below the
    accepts' ``good_quantile`` quantile are labelled good and those above the accepts'
    ``bad_quantile`` quantile bad: at most ``label_share`` of the remaining rejects as good each
    round, and as many bads per good as the remaining rejects' predicted odds of default (times
    ``bad_rate_factor``), the riskiest first, so the labelled rejects keep the bad rate the model
    expects of them (the imbalance parameter of the paper);
    labelled rejects join the training rows for the next round and the result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel
from scipy.special import expit

from scoring.models.calibration import CalibrationSettings, Calibrator, fit_calibrator
from scoring.models.config import (
    RejectInferenceConfig,
    RejectInferenceMethod,
    RejectInferenceMethodConfig,
    TrainConfig,
    XGBoostConfig,
)
from scoring.models.training import FittedCandidates, fit_candidates

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Predictor = Callable[[pd.DataFrame], FloatArray]
Learner = Callable[[pd.DataFrame, FloatArray, FloatArray], Predictor]
"""Fits on (features, 0/1 labels, weights) and returns the fitted model's PD function."""

METHODS: tuple[str, ...] = get_args(RejectInferenceMethod)

REFERENCE_FILE = "reference.json"
"""In the train stage's accepts-only reference folder: whether a reference was fitted, and why not."""


@dataclass
class AugmentedData:
    """The training rows a method gives: features, labels, weights, and what it did."""

    X: pd.DataFrame
    y: FloatArray
    weight: FloatArray
    method: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.y)


def _labels(y: Any, name: str) -> FloatArray:
    values = np.asarray(pd.Series(y).astype("Float64").to_numpy(dtype=float, na_value=np.nan), dtype=float)
    bad = ~np.isin(values, (0.0, 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name}: the accepts' labels must be 0 or 1 with no nulls; row {first} holds {values[first]!r}"
        )
    return values


def _stack(
    parts: list[tuple[pd.DataFrame, FloatArray, FloatArray]],
) -> tuple[pd.DataFrame, FloatArray, FloatArray]:
    X = pd.concat([p[0] for p in parts], ignore_index=True)
    y = np.concatenate([p[1] for p in parts]).astype(float)
    w = np.concatenate([p[2] for p in parts]).astype(float)
    return X, y, w


def _check_columns(accepts: pd.DataFrame, rejects: pd.DataFrame) -> None:
    if list(accepts.columns) != list(rejects.columns):
        missing = sorted(set(accepts.columns) - set(rejects.columns))
        extra = sorted(set(rejects.columns) - set(accepts.columns))
        raise ValueError(
            f"rejects: expected the accepts' feature columns in the same order; missing {missing}, "
            f"extra {extra}"
        )


def augment(
    method: str,
    X_accepts: pd.DataFrame,
    y_accepts: Any,
    X_rejects: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig | None = None,
    seed: int = 0,
) -> AugmentedData:
    """The training rows of ``method`` (see the module docstring) from accepts and rejects."""
    if method not in METHODS:
        raise ValueError(
            f"reject_inference.method: {method!r} is not a method; expected one of {list(METHODS)}"
        )
    config = config or RejectInferenceMethodConfig()
    y = _labels(y_accepts, "accepts")
    if len(X_accepts) != len(y):
        raise ValueError(f"accepts: {len(X_accepts)} feature rows but {len(y)} labels")
    if len(np.unique(y)) < 2:
        raise ValueError("accepts: both outcomes (0 and 1) are needed to learn anything")
    _check_columns(X_accepts, X_rejects)
    ones = np.ones(len(y))
    if method == "accepts_only" or len(X_rejects) == 0:
        return AugmentedData(X_accepts.reset_index(drop=True), y, ones, method, {"rejects_used": 0})
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(METHODS.index(method),)))
    builders: dict[str, Callable[..., AugmentedData]] = {
        "hard_cutoff": _hard_cutoff,
        "fuzzy": _fuzzy,
        "parcelling": _parcelling,
        "reweighting": _reweighting,
        "self_learning": _self_learning,
    }
    out = builders[method](
        X_accepts.reset_index(drop=True), y, X_rejects.reset_index(drop=True), learner, config, rng
    )
    logger.info(
        "reject inference %s: %d accepts + %d rejects -> %d training rows (%s)",
        method,
        len(y),
        len(X_rejects),
        out.n_rows,
        ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in out.info.items()),
    )
    return out


def _hard_cutoff(
    Xa: pd.DataFrame,
    y: FloatArray,
    Xr: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig,
    rng: np.random.Generator,
) -> AugmentedData:
    p = learner(Xa, y, np.ones(len(y)))(Xr)
    share_bad = min(1.0, config.bad_rate_factor * float(p.mean()))
    n_bad = round(share_bad * len(p))
    labels = np.zeros(len(p))
    labels[np.argsort(-p, kind="stable")[:n_bad]] = 1.0
    X, yy, w = _stack([(Xa, y, np.ones(len(y))), (Xr, labels, np.ones(len(p)))])
    return AugmentedData(X, yy, w, "hard_cutoff", {"rejects_used": len(p), "rejects_bad_share": share_bad})


def _fuzzy(
    Xa: pd.DataFrame,
    y: FloatArray,
    Xr: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig,
    rng: np.random.Generator,
) -> AugmentedData:
    p = np.clip(config.bad_rate_factor * learner(Xa, y, np.ones(len(y)))(Xr), 0.0, 1.0)
    n = len(p)
    X, yy, w = _stack(
        [
            (Xa, y, np.ones(len(y))),
            (Xr, np.ones(n), config.reject_weight * p),
            (Xr, np.zeros(n), config.reject_weight * (1.0 - p)),
        ]
    )
    keep = w > 0.0  # a zero-weight copy carries nothing
    X = X.loc[keep].reset_index(drop=True)
    return AugmentedData(
        X, yy[keep], w[keep], "fuzzy", {"rejects_used": n, "rejects_mean_pd": float(p.mean())}
    )


def _parcelling(
    Xa: pd.DataFrame,
    y: FloatArray,
    Xr: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig,
    rng: np.random.Generator,
) -> AugmentedData:
    predict = learner(Xa, y, np.ones(len(y)))
    pa, pr = predict(Xa), predict(Xr)
    edges = np.unique(np.quantile(pa, np.linspace(0.0, 1.0, config.n_bands + 1)[1:-1]))
    band_a, band_r = np.searchsorted(edges, pa, side="right"), np.searchsorted(edges, pr, side="right")
    rates = np.array(
        [y[band_a == b].mean() if (band_a == b).any() else float(pa.mean()) for b in range(len(edges) + 1)]
    )
    bad_p = np.clip(config.bad_rate_factor * rates[band_r], 0.0, 1.0)
    labels = (rng.random(len(pr)) < bad_p).astype(float)
    X, yy, w = _stack([(Xa, y, np.ones(len(y))), (Xr, labels, np.ones(len(pr)))])
    return AugmentedData(
        X,
        yy,
        w,
        "parcelling",
        {"rejects_used": len(pr), "bands": len(edges) + 1, "rejects_bad_share": float(labels.mean())},
    )


def _reweighting(
    Xa: pd.DataFrame,
    y: FloatArray,
    Xr: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig,
    rng: np.random.Generator,
) -> AugmentedData:
    everyone = pd.concat([Xa, Xr], ignore_index=True)
    accepted = np.concatenate([np.ones(len(Xa)), np.zeros(len(Xr))])
    p_accept = learner(everyone, accepted, np.ones(len(everyone)))(Xa)
    weight = np.minimum(1.0 / np.clip(p_accept, 1.0 / config.max_weight, 1.0), config.max_weight)
    weight = weight / weight.mean()
    return AugmentedData(
        Xa.copy(),
        y,
        weight,
        "reweighting",
        {
            "rejects_used": 0,
            "max_weight_share": float((weight >= weight.max() - 1e-12).mean()),
            "weight_max": float(weight.max()),
        },
    )


def _numeric_view(X: pd.DataFrame, fill: pd.Series | None = None) -> tuple[FloatArray, pd.Series]:
    """Numeric features with missing values filled (an isolation forest takes no NaN): category
    codes for categoricals, the accepts' medians for gaps."""
    frame = pd.DataFrame(
        {
            c: (
                X[c].cat.codes.astype(float).where(X[c].notna())
                if isinstance(X[c].dtype, pd.CategoricalDtype)
                else pd.to_numeric(X[c], errors="coerce").astype(float)
            )
            for c in X.columns
        }
    )
    medians = frame.median() if fill is None else fill
    return frame.fillna(medians).fillna(0.0).to_numpy(dtype=float), medians


def _self_learning(
    Xa: pd.DataFrame,
    y: FloatArray,
    Xr: pd.DataFrame,
    learner: Learner,
    config: RejectInferenceMethodConfig,
    rng: np.random.Generator,
) -> AugmentedData:
    from sklearn.ensemble import IsolationForest

    values_a, medians = _numeric_view(Xa)
    values_r, _ = _numeric_view(Xr, medians)
    forest = IsolationForest(n_estimators=100, random_state=int(rng.integers(2**31 - 1))).fit(values_a)
    normality = forest.score_samples(values_r)  # lower = more anomalous
    n_drop = int(config.filter_share * len(Xr))
    pool = np.sort(np.argsort(normality, kind="stable")[n_drop:])
    X_rows, y_rows, labelled_good, labelled_bad = Xa, y, 0, 0
    extra_X: list[pd.DataFrame] = []
    extra_y: list[FloatArray] = []
    for _ in range(config.rounds):
        if len(pool) == 0:
            break
        predict = learner(X_rows, y_rows, np.ones(len(y_rows)))
        good_cut, bad_cut = np.quantile(predict(Xa), [config.good_quantile, config.bad_quantile])
        p = predict(Xr.iloc[pool])
        cap = max(1, int(config.label_share * len(pool)))
        order = np.argsort(p, kind="stable")
        good = order[:cap][p[order[:cap]] < good_cut]
        # as many bads as the pool's predicted odds (times the factor) give per good labelled: the
        # labelled rejects then carry the bad rate the model expects of them, not the extremes'
        pool_pd = min(0.99, config.bad_rate_factor * float(p.mean()))
        n_bad = min(cap, round(max(len(good), 1) * pool_pd / (1.0 - pool_pd)))
        bad = order[::-1][:n_bad][p[order[::-1][:n_bad]] > bad_cut]
        if len(good) == 0 and len(bad) == 0:
            break
        chosen = np.concatenate([good, bad])
        extra_X.append(Xr.iloc[pool[chosen]])
        extra_y.append(np.concatenate([np.zeros(len(good)), np.ones(len(bad))]))
        labelled_good += len(good)
        labelled_bad += len(bad)
        pool = np.delete(pool, chosen)
        X_rows = pd.concat([Xa, *extra_X], ignore_index=True)
        y_rows = np.concatenate([y, *extra_y])
    return AugmentedData(
        X_rows.reset_index(drop=True),
        y_rows,
        np.ones(len(y_rows)),
        "self_learning",
        {
            "rejects_used": labelled_good + labelled_bad,
            "rejects_filtered": n_drop,
            "labelled_good": labelled_good,
            "labelled_bad": labelled_bad,
        },
    )


def booster_learner(config: Any, n_rounds: int, seed: int) -> Learner:
    """A :data:`Learner` of XGBoost boosters with the challenger's parameters (``XGBoostConfig``),
    ``n_rounds`` rounds (no validation set to stop on: the rejects have no outcome to stop on)."""
    import xgboost as xgb

    from scoring.models.candidates.xgboost import booster_params, prediction_matrix

    params = booster_params(config, seed)

    def learn(X: pd.DataFrame, y: FloatArray, weight: FloatArray) -> Predictor:
        data = xgb.DMatrix(X, label=y, weight=weight, enable_categorical=True)
        booster = xgb.train(params, data, num_boost_round=n_rounds, verbose_eval=False)

        def predict(rows: pd.DataFrame) -> FloatArray:
            return np.asarray(booster.predict(prediction_matrix(rows)), dtype=np.float64)

        return predict

    return learn


@dataclass
class RejectInferenceFit:
    """What the train stage fits with reject inference on.

    ``fitted``: the candidates on the method's rows and the champion among them. ``reference``:
    the same candidates, settings and rule on the accepts alone, and the calibrator of its
    champion (fitted as the calibrate stage fits the champion's), so that evaluation can say
    what the method gained or cost against accepts-only on the same applicants; None when the
    method is ``accepts_only`` (the champion is then that model). ``record``: the population
    the models and the calibration were fitted on, for champion.json and reports/train.json.
    """

    fitted: FittedCandidates
    record: dict[str, Any]
    reference: FittedCandidates | None = None
    reference_calibrator: Calibrator | None = None


def fit_with_rejects(
    X_accepts: pd.DataFrame,
    y_accepts: pd.Series,
    X_rejects: pd.DataFrame,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    train_config: TrainConfig,
    inference: RejectInferenceConfig,
    calibration: CalibrationSettings,
    seed: int,
    overrides: Mapping[str, BaseModel] | None = None,
    helper_config: XGBoostConfig | None = None,
) -> RejectInferenceFit:
    """The candidates of ``train_config`` on the accepts and the rejects as ``inference.method``
    builds them (:func:`augment`; the helper models are XGBoost boosters with ``helper_config``).

    The protocol is ``fit_on: train`` with the champion chosen on valid, whatever
    ``train_config`` says: valid holds booked loans with observed outcomes only, the one
    population on which a choice and a calibration can be checked. Accepts-only runs the same
    protocol, so that its figures are the reference of every method.
    """
    config = train_config.model_copy(
        update={
            "fit_on": "train",
            "champion": train_config.champion.model_copy(update={"selection": "valid"}),
        }
    )
    learner = booster_learner(helper_config or XGBoostConfig(), inference.helper_rounds, seed)
    rows = augment(inference.method, X_accepts, y_accepts, X_rejects, learner, inference, seed)
    weighted = inference.method != "accepts_only"
    fitted = fit_candidates(
        rows.X,
        pd.Series(rows.y, index=rows.X.index),
        X_valid,
        y_valid,
        config,
        seed,
        overrides,
        # all-ones weights would fit the same models; without them accepts-only is exactly the
        # reference a method is compared with
        weight_train=pd.Series(rows.weight, index=rows.X.index) if weighted else None,
    )
    record: dict[str, Any] = {
        "method": inference.method,
        "accepts": len(X_accepts),
        "rejects_available": len(X_rejects),
        "training_rows": rows.n_rows,
        "training_population": "booked loans of train"
        + (
            f" plus the training period's declined applications, as {inference.method} builds them"
            if weighted
            else " only (the declined applications are not used)"
        ),
        "champion_and_calibration_population": "booked loans of valid (observed outcomes)",
        "fit_on": "train",
        "champion_selection": "valid",
        **{k: v for k, v in rows.info.items() if k != "rejects_used"},
        "rejects_used": rows.info.get("rejects_used", 0),
    }
    if not weighted:
        return RejectInferenceFit(fitted, record)
    reference = fit_candidates(X_accepts, y_accepts, X_valid, y_valid, config, seed, overrides)
    held_out = reference.calibration
    calibrator = fit_calibrator(
        expit(held_out["champion"].to_numpy(dtype=np.float64)),
        held_out["target"].to_numpy(dtype=np.float64),
        calibration,
        seed,
    )
    record["accepts_only_reference"] = {
        "champion": reference.decision.champion,
        "valid_auc": {k: float(v) for k, v in reference.decision.auc.items()},
    }
    return RejectInferenceFit(fitted, record, reference, calibrator)
