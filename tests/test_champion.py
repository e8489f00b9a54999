"""The champion rule over the scorecard, the challenger and their blend, and the blend estimator."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from pydantic import ValidationError

from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import FitContext, plugin
from scoring.models.candidates.blend import BLEND_FILE, BlendConfig, BlendEstimator, blend_log_odds
from scoring.models.candidates.scorecard import train_scorecard
from scoring.models.candidates.xgboost import BoosterEstimator, booster_log_odds, train_xgboost
from scoring.models.config import ChampionConfig, ScorecardConfig, TrainConfig, XGBoostConfig
from scoring.models.model import PDModel
from scoring.models.scorecard import ScorecardModel
from scoring.models.training import (
    Candidate,
    ChampionDecision,
    choose_champion,
    decide_champion,
    fit_candidates,
    out_of_fold_log_odds,
)
from scoring.serving.bundle import ModelBundle

XGB = XGBoostConfig(n_estimators=200, learning_rate=0.2, max_depth=3, early_stopping_rounds=10, n_jobs=1)
CARD = ScorecardConfig(min_iv=0.0, max_n_bins=5)
ORDER = ("scorecard", "xgboost", "blend")  # simplest first
WEIGHTS = BlendConfig().weights


def three_candidates(n_rounds: int = XGB.n_estimators) -> list[Candidate]:
    """The scorecard, the challenger settled at ``n_rounds`` and their blend."""
    settled = XGB.model_copy(update={"n_estimators": n_rounds, "early_stopping_rounds": None})
    return [
        Candidate("scorecard", plugin("scorecard"), CARD),
        Candidate("xgboost", plugin("xgboost"), settled),
        Candidate("blend", plugin("blend"), BlendConfig()),
    ]


def decide(
    y: np.ndarray, z_card: np.ndarray, z_xgb: np.ndarray, rule: ChampionConfig, selection: str
) -> ChampionDecision:
    log_odds = {"scorecard": np.asarray(z_card, dtype=float), "xgboost": np.asarray(z_xgb, dtype=float)}
    return decide_champion(y, log_odds, three_candidates(), rule, selection)[0]  # type: ignore[arg-type]


def blend_weight(decision: ChampionDecision) -> float:
    return float(decision.details["blend"]["weight"])


def frame(n: int, seed: int, kind: str = "linear") -> tuple[pd.DataFrame, pd.Series]:
    """Three numeric features (c is noise); the risk is linear in a and b, or an XOR of their signs."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    a, b = x["a"].to_numpy(), x["b"].to_numpy()
    z = -1.0 + 1.2 * a - 0.8 * b if kind == "linear" else np.where((a > 0) == (b > 0), 2.0, -2.0)
    y = pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-z))).astype(int), index=x.index)
    return x, y


# --------------------------------------------------------------------------- the rule


def test_rule_picks_the_best_and_keeps_the_simpler_on_a_tie() -> None:
    rule = ChampionConfig(min_auc_gain=0.0)
    assert choose_champion({"scorecard": 0.80, "xgboost": 0.82, "blend": 0.81}, rule, ORDER)[0] == "xgboost"
    assert choose_champion({"scorecard": 0.80, "xgboost": 0.79, "blend": 0.81}, rule, ORDER)[0] == "blend"
    assert choose_champion({"scorecard": 0.83, "xgboost": 0.79, "blend": 0.81}, rule, ORDER)[0] == "scorecard"
    # A blend that only ties a single model is not worth its complexity.
    assert choose_champion({"scorecard": 0.80, "xgboost": 0.82, "blend": 0.82}, rule, ORDER)[0] == "xgboost"
    assert choose_champion({"scorecard": 0.82, "xgboost": 0.80, "blend": 0.82}, rule, ORDER)[0] == "scorecard"
    # The order is the simplicity: listed the other way round, a tie goes to the blend.
    reverse = tuple(reversed(ORDER))
    assert choose_champion({"scorecard": 0.82, "xgboost": 0.80, "blend": 0.82}, rule, reverse)[0] == "blend"


def test_min_auc_gain_keeps_the_simpler_model() -> None:
    auc = {"scorecard": 0.800, "xgboost": 0.803, "blend": 0.804}
    champion, reason = choose_champion(auc, ChampionConfig(min_auc_gain=0.005), ORDER)
    assert champion == "scorecard"
    assert "+0.0040" in reason and "blend" in reason
    # xgboost trails the blend by 0.001 < 0.002, so it is kept; the scorecard trails by 0.004.
    assert choose_champion(auc, ChampionConfig(min_auc_gain=0.002), ORDER)[0] == "xgboost"
    assert choose_champion(auc, ChampionConfig(min_auc_gain=0.0), ORDER)[0] == "blend"


def test_rule_rejects_unknown_candidates_and_weights_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match="shallow"):
        choose_champion({"scorecard": 0.8, "shallow": 0.9}, ChampionConfig(), ORDER)
    with pytest.raises(ValidationError, match="weights"):
        BlendConfig(weights=[0.5, 1.5])
    with pytest.raises(ValidationError, match=r"candidate_params.blend: weights: \[1.5\] outside \[0, 1\]"):
        TrainConfig(candidate_params={"blend": {"weights": [0.5, 1.5]}})


def test_decision_on_constructed_log_odds_picks_each_candidate() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(a + b)))).astype(float)
    rule = ChampionConfig()
    # The scorecard sees all the signal, the booster half of it: the scorecard, at weight 1.
    sc = decide(y, a + b, a, rule, "cv")
    assert (sc.champion, blend_weight(sc)) == ("scorecard", 1.0)
    # The other way round.
    xg = decide(y, b, a + b, rule, "cv")
    assert (xg.champion, blend_weight(xg)) == ("xgboost", 0.0)
    # Each sees half: the blend with equal weights recovers the truth and wins.
    bl = decide(y, a, b, rule, "valid")
    assert bl.champion == "blend" and blend_weight(bl) == 0.5
    assert bl.auc["blend"] > max(bl.auc["scorecard"], bl.auc["xgboost"]) + 0.05
    assert set(bl.details["blend"]["auc_by_weight"]) == {f"{w:g}" for w in WEIGHTS}
    assert bl.auc["blend"] == max(bl.details["blend"]["auc_by_weight"].values())
    assert bl.selection == "valid" and bl.reason.startswith("valid AUC")


# --------------------------------------------------------------------------- fitted models


@dataclass
class Fitted:
    X_tr: pd.DataFrame
    y_tr: pd.Series
    X_va: pd.DataFrame
    y_va: pd.Series
    booster: xgb.Booster
    card: ScorecardModel
    n_rounds: int

    def select(self, rule: ChampionConfig) -> ChampionDecision:
        """The rule out of fold over train (the valid split stays free for calibration)."""
        candidates = three_candidates(self.n_rounds)
        oof = out_of_fold_log_odds(self.X_tr, self.y_tr, candidates, FitContext(7), rule.cv_folds)
        return decide_champion(self.y_tr.to_numpy(dtype=float), oof, candidates, rule, "cv")[0]


def fitted(kind: str = "linear", seed: int = 1) -> Fitted:
    X_tr, y_tr = frame(3000, seed, kind)
    X_va, y_va = frame(1000, seed + 100, kind)
    challenger = train_xgboost(X_tr, y_tr, X_va, y_va, XGB, seed=7)
    card = train_scorecard(X_tr, y_tr, CARD, {}, seed=7)
    return Fitted(X_tr, y_tr, X_va, y_va, challenger.booster, card, challenger.n_trees)


def test_cv_selection_picks_the_challenger_where_the_scorecard_cannot_see_the_risk() -> None:
    data = fitted("xor")
    decision = data.select(ChampionConfig(cv_folds=3))
    assert decision.selection == "cv" and decision.n_rows == len(data.X_tr)
    assert decision.auc["xgboost"] > decision.auc["scorecard"] + 0.2
    assert decision.champion == "xgboost"


def test_cv_selection_keeps_the_scorecard_on_linear_risk_with_a_margin() -> None:
    decision = fitted("linear").select(ChampionConfig(cv_folds=3, min_auc_gain=0.01))
    assert abs(decision.auc["xgboost"] - decision.auc["scorecard"]) < 0.01
    assert decision.champion == "scorecard"


def test_same_seed_same_choice() -> None:
    data = fitted("linear")
    rule = ChampionConfig(cv_folds=3)
    assert data.select(rule).to_dict() == data.select(rule).to_dict()
    # An independent refit from the same seed makes the same choice.
    assert fitted("linear").select(rule).to_dict() == data.select(rule).to_dict()


# --------------------------------------------------------------------------- the final fit


def test_fit_on_train_valid_refits_on_both_and_calibrates_out_of_fold() -> None:
    X_tr, y_tr = frame(3000, 1, "xor")
    X_va, y_va = frame(1000, 101, "xor")
    config = TrainConfig(
        scorecard=CARD,
        xgboost=XGB,
        champion=ChampionConfig(cv_folds=3),
        fit_on="train_valid",
        candidates=list(ORDER),
    )
    fitted = fit_candidates(X_tr, y_tr, X_va, y_va, config, seed=7)
    assert (fitted.fit_on, fitted.n_fit, fitted.calibration_source) == ("train_valid", 4000, "out_of_fold")
    cal = fitted.calibration
    assert cal["split"].value_counts().to_dict() == {"train": 3000, "valid": 1000}
    assert cal["target"].tolist() == [*y_tr.tolist(), *y_va.tolist()]
    # The exported booster keeps the round count early stopping on valid chose, and is trained
    # on the pooled rows: it differs from the train-only challenger.
    challenger = train_xgboost(X_tr, y_tr, X_va, y_va, XGB, seed=7)
    booster = fitted.models["xgboost"].booster  # type: ignore[attr-defined]
    assert booster.num_boosted_rounds() == challenger.n_trees == fitted.decision.details["xgboost"]["n_trees"]
    pooled = pd.concat([X_tr, X_va], ignore_index=True)
    final_z = booster_log_odds(booster, pooled)
    assert not np.allclose(final_z, booster_log_odds(challenger.booster, pooled))
    # Calibration reads out-of-fold log-odds, the ones the rule chose on, not the final
    # models' in-sample ones (which rank the pooled rows better than any held-out score).
    labels = pd.Series(cal["target"].to_numpy(), index=pooled.index)
    candidates = three_candidates(challenger.n_trees)
    oof = out_of_fold_log_odds(pooled, labels, candidates, FitContext(7), folds=3)
    np.testing.assert_array_equal(cal["xgboost"], oof["xgboost"])
    np.testing.assert_array_equal(cal["scorecard"], oof["scorecard"])
    assert fitted.decision.selection == "cv" and fitted.decision.n_rows == 4000
    decision = decide_champion(labels.to_numpy(dtype=float), oof, candidates, config.champion, "cv")[0]
    assert (decision.champion, decision.auc, decision.details["blend"]) == (
        fitted.decision.champion,
        fitted.decision.auc,
        fitted.decision.details["blend"],
    )
    champion = {"scorecard": 1.0, "xgboost": 0.0, "blend": blend_weight(fitted.decision)}[
        fitted.decision.champion
    ]
    np.testing.assert_array_equal(cal["champion"], blend_log_odds(oof["scorecard"], oof["xgboost"], champion))
    assert not np.allclose(cal["xgboost"], final_z)
    assert fitted.models["scorecard"].log_odds(pooled).shape == (4000,)


def test_fit_on_train_keeps_valid_unseen_and_calibrates_there() -> None:
    X_tr, y_tr = frame(3000, 1, "linear")
    X_va, y_va = frame(1000, 101, "linear")
    config = TrainConfig(
        scorecard=CARD,
        xgboost=XGB,
        champion=ChampionConfig(cv_folds=3),
        fit_on="train",
        candidates=list(ORDER),
    )
    fitted = fit_candidates(X_tr, y_tr, X_va, y_va, config, seed=7)
    assert (fitted.fit_on, fitted.n_fit, fitted.calibration_source) == ("train", 3000, "valid")
    # The exported booster is the early-stopped challenger: train only, its round count.
    challenger = train_xgboost(X_tr, y_tr, X_va, y_va, XGB, seed=7)
    booster = fitted.models["xgboost"].booster  # type: ignore[attr-defined]
    np.testing.assert_array_equal(booster_log_odds(booster, X_va), booster_log_odds(challenger.booster, X_va))
    cal = fitted.calibration
    assert (cal["split"] == "valid").all() and cal["target"].tolist() == y_va.tolist()
    np.testing.assert_array_equal(cal["xgboost"], booster_log_odds(booster, X_va))
    np.testing.assert_array_equal(cal["scorecard"], fitted.models["scorecard"].log_odds(X_va))
    assert fitted.decision.n_rows == 3000  # cv over train only


def test_a_choice_on_valid_cannot_be_refitted_on_valid() -> None:
    with pytest.raises(ValidationError, match=r"fit_on='train_valid'.*expected selection 'cv'"):
        TrainConfig(champion=ChampionConfig(selection="valid"), fit_on="train_valid")
    assert TrainConfig(champion=ChampionConfig(selection="valid"), fit_on="train").fit_on == "train"


# --------------------------------------------------------------------------- the blend estimator


def blend_model(weight: float = 0.3) -> tuple[PDModel, pd.DataFrame]:
    data = fitted("linear")
    raw = data.X_tr.assign(target=data.y_tr)
    features = ApplicationFeatures(exclude_columns=["target"]).fit(raw)
    blend = BlendEstimator(data.card, BoosterEstimator(data.booster), weight)
    return PDModel(features, blend, "blend"), raw


def test_blend_predicts_the_sigmoid_of_the_weighted_log_odds() -> None:
    model, raw = blend_model(0.3)
    matrix = model.feature_matrix(raw.head(500))
    assert isinstance(model.estimator, BlendEstimator)
    card, booster = model.estimator.first, model.estimator.second.booster  # type: ignore[attr-defined]
    margin = booster.predict(xgb.DMatrix(matrix), output_margin=True).astype(np.float64)
    expected = 1 / (1 + np.exp(-(0.3 * card.log_odds(matrix) + 0.7 * margin)))
    np.testing.assert_allclose(model.predict_pd(raw.head(500)), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="blend weight"):
        BlendEstimator(card, model.estimator.second, 1.2)


def test_blend_contributions_are_the_weighted_parts_and_sum_to_the_log_odds() -> None:
    model, raw = blend_model(0.4)
    matrix = model.feature_matrix(raw.head(300))
    assert isinstance(model.estimator, BlendEstimator)
    contrib = model.estimator.contributions(matrix)
    assert list(contrib.columns) == [*matrix.columns, "bias"]
    pd_ = model.estimator.predict_pd(matrix)
    np.testing.assert_allclose(contrib.sum(axis=1), np.log(pd_ / (1 - pd_)), atol=1e-6)
    parts = 0.4 * model.estimator.first.contributions(matrix) + 0.6 * (
        model.estimator.second.contributions(matrix)
    )
    np.testing.assert_allclose(contrib.to_numpy(), parts.to_numpy(), atol=1e-12)


def save_bundle(model: PDModel, folder: Path) -> ModelBundle:
    """The blend and its parts in a model bundle, as the train stage writes them."""
    assert isinstance(model.estimator, BlendEstimator)
    bundle = ModelBundle(folder)
    bundle.save_features(model.features)
    parts = {"scorecard": model.estimator.first, "xgboost": model.estimator.second, "blend": model.estimator}
    bundle.save_candidates(parts)
    bundle.write("champion.json", {"champion": "blend", "candidates": list(parts)})
    return bundle


def test_blend_save_load_round_trip_without_pickle(tmp_path: Path) -> None:
    model, raw = blend_model(0.3)
    bundle = save_bundle(model, tmp_path)
    assert bundle.model_files() == [
        "candidates/blend/blend.json",
        "candidates/plugins.json",
        "candidates/scorecard/scorecard.json",
        "candidates/xgboost/booster.ubj",
        "champion.json",
        "features.json",
    ]
    for name in bundle.model_files():
        head = (tmp_path / name).read_bytes()[:2]
        assert not head.startswith(b"\x80"), f"{name} looks like a pickle"
    spec = json.loads((tmp_path / "candidates" / "blend" / BLEND_FILE).read_text())
    assert spec["weights"] == {"scorecard": 0.3, "xgboost": 0.7} and spec["parts"] == ["scorecard", "xgboost"]
    loaded = bundle.load_model()
    assert loaded.kind == "blend" and isinstance(loaded.estimator, BlendEstimator)
    np.testing.assert_array_equal(loaded.predict_pd(raw), model.predict_pd(raw))
    # The parts load alone too, and a second save writes the same bytes.
    for kind in ("scorecard", "xgboost"):
        assert bundle.load_model(kind).kind == kind
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    save_bundle(loaded, tmp_path)
    assert {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_champion_files_name_what_each_kind_loads(tmp_path: Path) -> None:
    model, _ = blend_model(0.3)
    bundle = save_bundle(model, tmp_path)
    for kind, files in {
        "xgboost": ["candidates/xgboost/booster.ubj"],
        "scorecard": ["candidates/scorecard/scorecard.json"],
        "blend": [
            "candidates/blend/blend.json",
            "candidates/scorecard/scorecard.json",
            "candidates/xgboost/booster.ubj",
        ],
    }.items():
        bundle.write("champion.json", {"champion": kind})
        assert bundle.model_files() == sorted(
            ["champion.json", "features.json", "candidates/plugins.json", *files]
        )
    bundle.write("champion.json", {"champion": "forest"})
    with pytest.raises(ValueError, match="forest"):
        bundle.model_files()
