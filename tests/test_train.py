"""Training: early stopping, byte-identical boosters for the same seed, clear label errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.models.candidates.xgboost import train_xgboost
from scoring.models.config import XGBoostConfig


def data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    p = 1 / (1 + np.exp(-(-2 + 1.5 * x["a"] - x["b"])))
    return x, pd.Series((rng.uniform(size=n) < p).astype(int))


CONFIG = XGBoostConfig(n_estimators=300, learning_rate=0.3, early_stopping_rounds=10, n_jobs=2)


def test_early_stopping_slices_to_best_iteration() -> None:
    (xt, yt), (xv, yv) = data(3000, 0), data(1000, 1)
    result = train_xgboost(xt, yt, xv, yv, CONFIG, seed=1)
    assert result.n_trees == result.best_iteration + 1 < CONFIG.n_estimators
    assert result.booster.num_boosted_rounds() == result.n_trees


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    (xt, yt), (xv, yv) = data(3000, 0), data(1000, 1)
    a = train_xgboost(xt, yt, xv, yv, CONFIG, seed=1).booster.save_raw("ubj")
    b = train_xgboost(xt, yt, xv, yv, CONFIG, seed=1).booster.save_raw("ubj")
    c = train_xgboost(xt, yt, xv, yv, CONFIG, seed=2).booster.save_raw("ubj")
    assert a == b
    assert a != c


def test_labels_must_be_binary_and_both_classes() -> None:
    (xt, yt), (xv, yv) = data(200, 0), data(100, 1)
    with pytest.raises(ValueError, match="train: target must be 0 or 1"):
        train_xgboost(xt, yt.replace(1, 2), xv, yv, CONFIG, seed=1)
    with pytest.raises(ValueError, match="valid: target has a single class"):
        train_xgboost(xt, yt, xv, yv * 0, CONFIG, seed=1)


def test_monotone_constraint_is_honoured_even_against_the_data() -> None:
    (xt, yt), (xv, yv) = data(3000, 0), data(1000, 1)
    # b lowers risk in the data; constrained to raise it, the model may only stay flat or rise.
    result = train_xgboost(xt, yt, xv, yv, CONFIG, seed=1, monotone={"b": 1})
    grid = pd.DataFrame({"a": np.zeros(50), "b": np.linspace(-3, 3, 50)})
    import xgboost as xgb

    pd_grid = result.booster.predict(xgb.DMatrix(grid))
    assert np.all(np.diff(pd_grid) >= -1e-9)
    free = train_xgboost(xt, yt, xv, yv, CONFIG, seed=1).booster.predict(xgb.DMatrix(grid))
    assert free[-1] < free[0]  # unconstrained, it learns the falling risk


def test_choose_champion_needs_the_margin() -> None:
    from scoring.models.config import ChampionConfig
    from scoring.models.training import choose_champion

    rule = ChampionConfig(min_auc_gain=0.005)
    order = ("scorecard", "xgboost")
    assert choose_champion({"xgboost": 0.806, "scorecard": 0.800}, rule, order)[0] == "xgboost"
    champion, reason = choose_champion({"xgboost": 0.804, "scorecard": 0.800}, rule, order)
    assert champion == "scorecard" and "+0.0040" in reason


def test_fixed_round_booster_is_reproducible_and_has_the_rounds() -> None:
    from scoring.models.candidates.xgboost import train_booster_rounds

    xt, yt = data(2000, 0)
    a = train_booster_rounds(xt, yt, CONFIG, 17, seed=3)
    b = train_booster_rounds(xt, yt, CONFIG, 17, seed=3)
    assert a.num_boosted_rounds() == 17
    assert a.save_raw("ubj") == b.save_raw("ubj")
    with pytest.raises(ValueError, match="n_rounds"):
        train_booster_rounds(xt, yt, CONFIG, 0, seed=3)


def test_prediction_matrix_gives_the_dataframe_predictions_with_unseen_and_missing_levels() -> None:
    import xgboost as xgb

    from scoring.features.transformer import ApplicationFeatures
    from scoring.models.candidates.xgboost import BoosterEstimator, prediction_matrix

    rng = np.random.default_rng(3)
    n = 4000
    raw = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
            "segment": rng.choice(["suv", "sedan", "van", "truck"], n),
        }
    )
    risk = 1 / (1 + np.exp(-(raw["a"] + (raw["segment"] == "van"))))
    y = pd.Series((rng.uniform(size=n) < risk).astype(int))
    features = ApplicationFeatures(min_category_count=1).fit(raw.iloc[:3000])
    booster = train_xgboost(
        features.transform(raw.iloc[:3000]), y.iloc[:3000], features.transform(raw.iloc[3000:]),
        y.iloc[3000:], CONFIG, seed=1,
    ).booster  # fmt: skip
    scored = raw.iloc[3000:].copy()
    scored.loc[scored.index[:50], "segment"] = "limousine"  # unseen: missing
    scored.loc[scored.index[50:100], "segment"] = None
    matrix = features.transform(scored)
    expected = booster.predict(xgb.DMatrix(matrix, enable_categorical=True))
    assert prediction_matrix(matrix).feature_types == ["q", "q", "c"]
    np.testing.assert_array_equal(BoosterEstimator(booster).predict_pd(matrix), expected.astype(np.float64))
