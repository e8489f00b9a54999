"""The training protocol: every candidate of ``train.candidates``, the champion rule, the final fit.

Candidates are plug-ins (:mod:`scoring.models.candidate`); this module knows none by name.

1. Each fitted candidate is *settled* on train, with the validation split (the challenger's
   early stopping fixes its round count: the only thing valid decides).
2. ``fit_on="train_valid"`` (default): train and valid are pooled; every fitted candidate is
   refitted per fold of a stratified ``champion.cv_folds``-fold split of the pooled rows; each
   combiner (the blend) chooses its settings from its parts' out-of-fold log-odds; the champion
   rule reads the out-of-fold AUCs; every candidate is refitted on all pooled rows. Every
   exported model sees 100% of the modelling data and calibration gets out-of-fold predictions
   over the same rows (the pattern of scikit-learn's ``CalibratedClassifierCV(ensemble=False)``).
3. ``fit_on="train"``: the candidates are fitted on train, the rule reads out-of-fold AUC over
   train (``selection: cv``) or AUC on valid, and calibration is fitted on valid.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

from scoring.models.candidate import (
    CandidatePlugin,
    CombinerPlugin,
    FitContext,
    FittedModel,
    Plugin,
    binary_labels,
    fit_candidate,
    plugin,
    settle_candidate,
)
from scoring.models.config import ChampionConfig, TrainConfig, XGBoostConfig

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
FitOn = Literal["train", "train_valid"]


def with_tuned_parameters(base: XGBoostConfig, tuned: Mapping[str, object]) -> tuple[XGBoostConfig, bool]:
    """The challenger's settings: params, overridden by the tune stage's best parameters if any."""
    best = tuned.get("best_params") or {}
    if not isinstance(best, Mapping) or not best:
        return base, False
    unknown = sorted(set(best) - set(XGBoostConfig.model_fields))
    if unknown:
        raise ValueError(f"tuned parameters {unknown} are not XGBoost settings; rerun the tune stage")
    return base.model_copy(update=dict(best)), True


@dataclass(frozen=True)
class Candidate:
    """One entry of ``train.candidates``: its name, plug-in and settings."""

    name: str
    plugin: Plugin
    settings: BaseModel

    @property
    def is_combiner(self) -> bool:
        return isinstance(self.plugin, CombinerPlugin)


def resolve_candidates(
    config: TrainConfig, overrides: Mapping[str, BaseModel] | None = None
) -> list[Candidate]:
    """The candidates of ``config.candidates`` in order (simplest first), with their settings;
    ``overrides`` replaces a candidate's settings (the tuned challenger's)."""
    overrides = overrides or {}
    return [
        Candidate(name, plugin(name), overrides.get(name) or config.candidate_settings(name))
        for name in config.candidates
    ]


@dataclass(frozen=True)
class ChampionDecision:
    champion: str
    reason: str
    selection: Literal["cv", "valid"]
    auc: dict[str, float]  # candidate -> AUC on the selection data
    n_rows: int
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # what settling / choosing found

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "reason": self.reason,
            "selection": self.selection,
            "auc": dict(self.auc),
            "candidates": list(self.auc),
            "details": {name: dict(info) for name, info in self.details.items()},
            "n_rows": self.n_rows,
        }


def _auc(y: Array, score: Array) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def choose_champion(
    auc: Mapping[str, float], config: ChampionConfig, order: Sequence[str]
) -> tuple[str, str]:
    """The rule: the best AUC wins unless a simpler candidate is within ``min_auc_gain`` of it.

    ``order`` lists the candidates simplest first (``train.candidates``); the first whose AUC
    ties the best, or trails it by less than ``min_auc_gain``, is champion. With two
    candidates this is the two-way rule: the second must gain ``min_auc_gain`` over the first.
    """
    unknown = sorted(set(auc) - set(order))
    names = [n for n in order if n in auc]
    if unknown or not names:
        raise ValueError(f"candidates {sorted(auc)}: expected names among {list(order)}")
    best = max(names, key=lambda n: (auc[n], -names.index(n)))
    gain = config.min_auc_gain
    champion = best
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
    base_log_odds: Mapping[str, Array],
    candidates: Sequence[Candidate],
    config: ChampionConfig,
    selection: Literal["cv", "valid"],
    details: Mapping[str, dict[str, Any]] | None = None,
) -> tuple[ChampionDecision, list[Candidate], dict[str, Array]]:
    """The champion from the fitted candidates' log-odds on the selection data.

    Each combiner chooses its settings from its parts' log-odds there first. Returns the
    decision, the candidates with the combiners' settled settings, and every candidate's
    log-odds on the selection data.
    """
    labels = np.asarray(y, dtype=np.float64)
    log_odds = dict(base_log_odds)
    found = {name: dict(info) for name, info in (details or {}).items()}
    settled: list[Candidate] = []
    for candidate in candidates:
        combiner = candidate.plugin
        if isinstance(combiner, CombinerPlugin):
            # a combiner reads the fitted candidates only (combiners of combiners are refused)
            settings, info = combiner.choose(candidate.settings, labels, dict(base_log_odds))
            candidate = Candidate(candidate.name, combiner, settings)
            log_odds[candidate.name] = combiner.combine(settings, log_odds)
            found[candidate.name] = {**found.get(candidate.name, {}), **info}
        settled.append(candidate)
    order = [c.name for c in candidates]
    auc = {name: _auc(labels, log_odds[name]) for name in order}
    champion, reason = choose_champion(auc, config, order)
    decision = ChampionDecision(champion, f"{selection} AUC; {reason}", selection, auc, len(labels), found)
    return decision, settled, {name: log_odds[name] for name in order}


def _fit_fold(
    X_fit: pd.DataFrame,
    y_fit: pd.Series,
    X_eval: pd.DataFrame,
    candidates: Sequence[Candidate],
    context: FitContext,
    weight: pd.Series | None = None,
) -> dict[str, Array]:
    from threadpoolctl import threadpool_limits

    out = {}
    for candidate in candidates:
        assert isinstance(candidate.plugin, CandidatePlugin)
        # One BLAS thread in every fold, in this process or a worker, so a regression sums in
        # the same order and the choice does not depend on n_jobs.
        with threadpool_limits(limits=1, user_api="blas"):
            model = fit_candidate(candidate.plugin, candidate.settings, X_fit, y_fit, context, weight)
            out[candidate.name] = np.asarray(model.log_odds(X_eval), dtype=np.float64)
    return out


def out_of_fold_log_odds(
    X: pd.DataFrame,
    y: pd.Series,
    candidates: Sequence[Candidate],
    context: FitContext,
    folds: int,
    n_jobs: int = 1,
    groups: pd.Series | npt.NDArray[Any] | None = None,
    weight: pd.Series | None = None,
) -> dict[str, Array]:
    """The fitted candidates' out-of-fold log-odds over X: each refitted on the other folds
    (with those rows' ``weight``, when given).

    Settled settings hold no early stopping, so no fold stops on the rows it is scored on.
    ``groups`` (the customer id, one per row) keeps each group inside one fold, so no row is
    scored by a model fitted on another application of the same customer. ``n_jobs``
    processes share the folds; the result does not depend on it.
    """
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    base = [c for c in candidates if not c.is_combiner]
    labels = binary_labels(y, "train")
    target = pd.Series(labels, index=X.index)
    seed = context.seed % 2**32
    if groups is None:
        splits = list(
            StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(
                np.zeros(len(labels)), labels
            )
        )
    else:
        codes, _ = pd.factorize(pd.Series(np.asarray(groups, dtype=object)))
        if len(codes) != len(X):
            raise ValueError(f"groups: expected one value per row ({len(X)}), got {len(codes)}")
        # a row without a customer id is a customer of its own
        missing = codes < 0
        codes[missing] = codes.max(initial=-1) + 1 + np.arange(int(missing.sum()))
        group_ids = codes
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        splits = list(splitter.split(np.zeros(len(labels)), labels, groups=group_ids))
    results = Parallel(n_jobs=min(n_jobs, folds))(
        delayed(_fit_fold)(
            X.iloc[fit],
            target.iloc[fit],
            X.iloc[ev],
            base,
            context,
            None if weight is None else weight.iloc[fit],
        )
        for fit, ev in splits
    )
    # NaN until a fold writes a row, so a row no fold scored cannot pass as log-odds 0
    oof = {c.name: np.full(len(X), np.nan) for c in base}
    for (_, eval_idx), fold in zip(splits, results, strict=True):
        for name, z in fold.items():
            oof[name][eval_idx] = z
    unscored = {name: int(np.isnan(z).sum()) for name, z in oof.items() if np.isnan(z).any()}
    if unscored:
        raise RuntimeError(f"out-of-fold log-odds: rows no fold scored (or scored NaN): {unscored}")
    return oof


@dataclass(frozen=True)
class FittedCandidates:
    """The candidates as exported, the champion decision, and the rows calibration is fitted on.

    ``calibration`` has one row per held-out prediction: the split the row came from, its
    target, each candidate's and the champion's uncalibrated log-odds (columns named after
    them, then ``champion``), from models not fitted on that row: out-of-fold over train+valid
    with ``fit_on="train_valid"``, the final models on valid with ``fit_on="train"``.
    """

    models: dict[str, FittedModel]
    candidates: list[Candidate]  # settled: what the exported models were fitted with
    decision: ChampionDecision
    fit_on: FitOn
    n_fit: int
    calibration: pd.DataFrame

    @property
    def champion(self) -> FittedModel:
        return self.models[self.decision.champion]

    @property
    def fit_splits(self) -> list[str]:
        """The splits the exported models were fitted on (their figures there are in-sample)."""
        return ["train", "valid"] if self.fit_on == "train_valid" else ["train"]

    @property
    def calibration_source(self) -> Literal["out_of_fold", "valid"]:
        return "out_of_fold" if self.fit_on == "train_valid" else "valid"

    def settings(self, name: str) -> BaseModel:
        return next(c.settings for c in self.candidates if c.name == name)


def _final_models(
    candidates: Sequence[Candidate],
    X: pd.DataFrame,
    y: pd.Series,
    context: FitContext,
    weight: pd.Series | None = None,
) -> dict[str, FittedModel]:
    models: dict[str, FittedModel] = {}
    for candidate in candidates:
        if isinstance(candidate.plugin, CombinerPlugin):
            models[candidate.name] = candidate.plugin.build(candidate.settings, models)
        else:
            assert isinstance(candidate.plugin, CandidatePlugin)
            models[candidate.name] = fit_candidate(
                candidate.plugin, candidate.settings, X, y, context, weight
            )
    return models


def fit_candidates(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame,
    y_valid: pd.Series,
    config: TrainConfig,
    seed: int,
    overrides: Mapping[str, BaseModel] | None = None,
    groups_train: pd.Series | None = None,
    groups_valid: pd.Series | None = None,
    weight_train: pd.Series | None = None,
) -> FittedCandidates:
    """The training protocol of the train stage (module docstring), as one function the benchmarks run too.

    ``groups_train``/``groups_valid`` (the customer ids of the rows) keep each customer inside
    one fold of the champion's cross-validation, as the split and the tuning folds do.
    ``weight_train``: one weight per training row (reject inference); valid rows weigh 1 in the
    refits over train+valid. Every candidate's plug-in must then take weights.
    """
    if weight_train is not None:
        weight_train = pd.Series(np.asarray(weight_train, dtype=np.float64), index=X_train.index)
    context = FitContext(seed, dict(config.monotone_risk))
    details: dict[str, dict[str, Any]] = {}
    settled: list[Candidate] = []
    for candidate in resolve_candidates(config, overrides):
        if isinstance(candidate.plugin, CandidatePlugin):
            settings, info = settle_candidate(
                candidate.plugin,
                candidate.settings,
                X_train,
                y_train,
                X_valid,
                y_valid,
                context,
                weight_train,
            )
            candidate = Candidate(candidate.name, candidate.plugin, settings)
            details[candidate.name] = info
        settled.append(candidate)
    base = [c for c in settled if not c.is_combiner]
    champion_rule = config.champion

    if config.fit_on == "train":
        y_valid_labels = binary_labels(y_valid, "valid")
        models = _final_models(base, X_train, y_train, context, weight_train)
        valid_log_odds = {
            c.name: np.asarray(models[c.name].log_odds(X_valid), dtype=np.float64) for c in base
        }
        if champion_rule.selection == "cv":
            oof = out_of_fold_log_odds(
                X_train,
                y_train,
                settled,
                context,
                champion_rule.cv_folds,
                champion_rule.n_jobs,
                groups_train,
                weight_train,
            )
            labels = binary_labels(y_train, "train")
            decision, settled, _ = decide_champion(labels, oof, settled, champion_rule, "cv", details)
        else:
            decision, settled, _ = decide_champion(
                y_valid_labels, valid_log_odds, settled, champion_rule, "valid", details
            )
        return fitted_on_train(models, settled, decision, valid_log_odds, y_valid_labels, len(X_train))

    X_fit = pd.concat([X_train, X_valid], ignore_index=True)
    y_fit = pd.Series(
        np.concatenate([binary_labels(y_train, "train"), binary_labels(y_valid, "valid")]), index=X_fit.index
    )
    splits = np.concatenate([np.full(len(X_train), "train"), np.full(len(X_valid), "valid")])
    groups = None
    if groups_train is not None and groups_valid is not None:
        groups = np.concatenate([np.asarray(groups_train), np.asarray(groups_valid)])
    elif (groups_train is None) != (groups_valid is None):
        raise ValueError("groups: expected customer ids for both train and valid, or for neither")
    weight_fit = None
    if weight_train is not None:
        weight_fit = pd.Series(
            np.concatenate([weight_train.to_numpy(), np.ones(len(X_valid))]), index=X_fit.index
        )
    oof = out_of_fold_log_odds(
        X_fit, y_fit, settled, context, champion_rule.cv_folds, champion_rule.n_jobs, groups, weight_fit
    )
    labels = y_fit.to_numpy(dtype=np.float64)
    decision, settled, held_out = decide_champion(labels, oof, settled, champion_rule, "cv", details)
    models = _final_models(settled, X_fit, y_fit, context, weight_fit)
    logger.info(
        "final fit on train+valid (%d rows): %s; champion %s",
        len(X_fit),
        ", ".join(models),
        decision.champion,
    )
    calibration = _calibration_frame(splits, labels, held_out, decision.champion)
    return FittedCandidates(models, settled, decision, "train_valid", len(X_fit), calibration)


def fitted_on_train(
    models: Mapping[str, FittedModel],
    candidates: Sequence[Candidate],
    decision: ChampionDecision,
    valid_log_odds: Mapping[str, Array],
    y_valid: Array,
    n_fit: int,
) -> FittedCandidates:
    """The end of ``fit_on="train"``: the combiners built from the fitted candidates (``models``,
    fitted on ``n_fit`` training rows), and the calibration set from every candidate's log-odds
    on valid (``valid_log_odds``, ``y_valid``). ``candidates`` are the settled ones the decision
    returned."""
    fitted = dict(models)
    for candidate in candidates:
        if isinstance(candidate.plugin, CombinerPlugin):
            fitted[candidate.name] = candidate.plugin.build(candidate.settings, fitted)
    fitted = {c.name: fitted[c.name] for c in candidates}
    held_out = _with_combiners(valid_log_odds, candidates)
    calibration = _calibration_frame(np.full(len(y_valid), "valid"), y_valid, held_out, decision.champion)
    return FittedCandidates(fitted, list(candidates), decision, "train", n_fit, calibration)


def _with_combiners(log_odds: Mapping[str, Array], candidates: Sequence[Candidate]) -> dict[str, Array]:
    out = dict(log_odds)
    for candidate in candidates:
        if isinstance(candidate.plugin, CombinerPlugin):
            out[candidate.name] = candidate.plugin.combine(candidate.settings, out)
    return {c.name: out[c.name] for c in candidates}


def _calibration_frame(
    splits: npt.NDArray[np.str_], labels: Array, log_odds: Mapping[str, Array], champion: str
) -> pd.DataFrame:
    columns: dict[str, Any] = {"split": splits, "target": labels.astype(np.int8)}
    columns.update({name: np.asarray(z, dtype=np.float64) for name, z in log_odds.items()})
    columns["champion"] = np.asarray(log_odds[champion], dtype=np.float64)
    return pd.DataFrame(columns)


def champion_record(fitted: FittedCandidates, config: TrainConfig) -> dict[str, Any]:
    """champion.json: the decision, the rule, and what the exported models were fitted on."""
    decision = fitted.decision
    record: dict[str, Any] = {
        **decision.to_dict(),
        "rule": config.champion.model_dump(mode="json", exclude={"n_jobs"}),
        "fit_on": fitted.fit_on,
        "fit_splits": fitted.fit_splits,
        "n_fit": fitted.n_fit,
    }
    if fitted.calibration_source == "valid":
        # with fit_on train_valid the held-out figures are the out-of-fold ones in "auc"
        held_out = fitted.calibration
        y = held_out["target"].to_numpy(dtype=np.float64)
        record["valid_auc"] = {c.name: _auc(y, held_out[c.name].to_numpy()) for c in fitted.candidates}
    return record
