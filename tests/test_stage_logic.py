"""The stage scripts' logic, now library functions (issue 13): small, fast checks of each."""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from scoring.decision.calibrate import swap_pair
from scoring.explain.config import ReasonEntry, ReasonsConfig
from scoring.explain.stage_outputs import REASON_MAP_FILE, reason_map_record
from scoring.models import tuning
from scoring.models.config import SearchDimensionConfig, TuneConfig, XGBoostConfig

CANDIDATES = ["scorecard", "xgboost", "xgboost_defaults", "lightgbm"]


# --------------------------------------------------------------------------- calibrate: swap pair


def test_swap_pair_is_baseline_and_champion() -> None:
    assert swap_pair("xgboost", CANDIDATES, {"scorecard": 0.8, "xgboost": 0.9}) == ("scorecard", "xgboost")
    assert swap_pair("lightgbm", CANDIDATES, {}) == ("scorecard", "lightgbm")


def test_swap_pair_with_the_baseline_champion_takes_the_best_other() -> None:
    auc = {"scorecard": 0.85, "xgboost": 0.84, "xgboost_defaults": 0.80, "lightgbm": 0.845}
    assert swap_pair("scorecard", CANDIDATES, auc) == ("scorecard", "lightgbm")


def test_swap_pair_ties_go_to_the_earlier_candidate() -> None:
    auc = {"xgboost": 0.84, "xgboost_defaults": 0.80, "lightgbm": 0.84}
    assert swap_pair("scorecard", CANDIDATES, auc) == ("scorecard", "xgboost")


def test_swap_pair_skips_candidates_without_auc_and_needs_two_models() -> None:
    assert swap_pair("scorecard", CANDIDATES, {"lightgbm": 0.7}) == ("scorecard", "lightgbm")
    assert swap_pair("scorecard", CANDIDATES, {}) is None
    assert swap_pair("scorecard", ["scorecard"], {"scorecard": 0.8}) is None


# --------------------------------------------------------------------------- explain: reason map origin

REASONS = ReasonsConfig(
    reason_map={
        "a": ReasonEntry(code="R_A", text="Feature a"),
        "b": ReasonEntry(code="R_B", text="Feature b"),
    }
)


def test_reason_map_from_params_has_no_document() -> None:
    origin = reason_map_record(["a", "b"], REASONS)
    assert origin.document is None
    assert origin.record == {"source": "params", "generated": [], "left_out": []}
    assert reason_map_record(["a"], REASONS).record["left_out"] == ["b"]


def test_generated_reason_map_is_returned_not_written() -> None:
    origin = reason_map_record(["a", "monthly_rent"], REASONS, file="out/reason_map.yaml")
    assert origin.record == {
        "source": "params and generated",
        "generated": ["monthly_rent"],
        "left_out": ["b"],
        "file": "out/reason_map.yaml",
    }
    assert origin.document is not None
    assert origin.document.startswith("# Reason codes generated for this dataset")
    parsed = yaml.safe_load(origin.document)
    assert parsed["reason_map"]["monthly_rent"] == {"code": "F_monthly_rent", "text": "Monthly rent"}
    assert parsed["reason_map"]["a"] == {"code": "R_A", "text": "Feature a"}
    every = reason_map_record(["x", "y"], REASONS)
    assert every.record["source"] == "generated"
    assert every.record["file"] == REASON_MAP_FILE


# --------------------------------------------------------------------------- tune: settings, study name


def test_tuning_settings_follow_the_tune_config() -> None:
    config = TuneConfig(
        n_trials=7,
        timeout_seconds=None,
        objective="valid",
        cv_folds=4,
        metric="logloss",
        pruning=False,
        n_startup_trials=3,
        max_boost_rounds=200,
        early_stopping_rounds=10,
        space={"max_depth": SearchDimensionConfig(low=2, high=6, kind="int")},
    )
    settings = tuning.tuning_settings(config)
    assert settings == tuning.TuningSettings(
        n_trials=7,
        timeout_seconds=None,
        objective="valid",
        cv_folds=4,
        metric="logloss",
        space={"max_depth": tuning.SearchDimension(2, 6, kind="int")},
        pruning=False,
        n_startup_trials=3,
        max_boost_rounds=200,
        early_stopping_rounds=10,
        n_jobs=None,
    )
    assert tuning.tuning_settings(config, worker=True).n_jobs == 1


def test_default_tune_config_gives_the_default_settings_space() -> None:
    assert dict(tuning.tuning_settings(TuneConfig()).space) == tuning.default_space()


def _data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    matrix = pd.DataFrame({"x": rng.normal(size=50), "z": rng.normal(size=50)})
    return matrix, pd.Series(rng.integers(0, 2, size=50), name="default_12m")


def test_study_name_ignores_the_budget_but_not_the_search() -> None:
    matrix, target = _data()
    config = TuneConfig()
    name = tuning.study_name(config, matrix, target, {"x": 1})
    assert name.startswith(f"{config.study_name}-") and len(name) == len(config.study_name) + 13
    assert tuning.study_name(config, matrix.copy(), target.copy(), {"x": 1}) == name
    budget = config.model_copy(update={"n_trials": 99, "timeout_seconds": 5.0, "storage": "other.journal"})
    assert tuning.study_name(budget, matrix, target, {"x": 1}) == name
    assert tuning.study_name(config.model_copy(update={"cv_folds": 5}), matrix, target, {"x": 1}) != name
    assert tuning.study_name(config, matrix, target, {"x": -1}) != name
    assert tuning.study_name(config, matrix, 1 - target, {"x": 1}) != name
    assert tuning.study_name(config, matrix.assign(x=matrix["x"] + 1), target, {"x": 1}) != name


def test_tuning_document_is_what_train_reads() -> None:
    result = tuning.TuningResult(
        best_params={"max_depth": 3},
        best_value=0.8,
        best_config=XGBoostConfig(max_depth=3),
        best_trial_number=4,
        best_n_rounds=120,
        metric_name="cv_auc",
        direction="maximize",
        n_trials_total=6,
        n_trials_new=2,
        n_trials_pruned=1,
        study_name="xgboost-challenger-0123456789ab",
        storage="study.journal",
    )
    assert tuning.tuning_document(result, "cv") == {
        "enabled": True,
        "study_name": "xgboost-challenger-0123456789ab",
        "best_params": {"max_depth": 3},
        "best_value": 0.8,
        "metric": "cv_auc",
        "objective": "cv",
        "best_trial_number": 4,
        "best_n_rounds": 120,
        "n_trials_total": 6,
        "n_trials_pruned": 1,
        "stopped_by_time_limit": False,
    }


def test_tuning_reads_a_stratified_customer_whole_sample_of_a_large_training_split() -> None:
    from scoring.core.contract import SYNTHETIC_SPEC
    from scoring.models.tuning import tuning_sample

    rng = np.random.default_rng(4)
    n = 9000
    customers = rng.integers(0, 6000, size=n)  # some customers hold several applications
    train = pd.DataFrame(
        {
            SYNTHETIC_SPEC.customer_column: customers.astype(str),
            SYNTHETIC_SPEC.target_column: (rng.uniform(size=n) < 0.08).astype(int),
        }
    )
    assert tuning_sample(train, SYNTHETIC_SPEC, None, 1) is train
    assert tuning_sample(train, SYNTHETIC_SPEC, n, 1) is train
    sample = tuning_sample(train, SYNTHETIC_SPEC, 4000, 1)
    assert 2500 < len(sample) <= 4000  # one of ceil(9000 / 4000) = 3 folds
    assert sample.index.is_monotonic_increasing  # the file's order kept
    inside = set(sample[SYNTHETIC_SPEC.customer_column])
    outside = set(train.drop(index=sample.index)[SYNTHETIC_SPEC.customer_column])
    assert not inside & outside  # no customer split between the sample and the rest
    rate = train[SYNTHETIC_SPEC.target_column].mean()
    assert abs(sample[SYNTHETIC_SPEC.target_column].mean() - rate) < 0.01
    pd.testing.assert_frame_equal(sample, tuning_sample(train, SYNTHETIC_SPEC, 4000, 1))
    assert not sample.index.equals(tuning_sample(train, SYNTHETIC_SPEC, 4000, 2).index)
    # far larger than max_rows: the fold comes from a by-customer pre-sample of 3 x max_rows
    # rows (the grouped k-fold over every customer would take minutes at a million rows)
    small = tuning_sample(train, SYNTHETIC_SPEC, 1000, 1)
    assert 700 < len(small) <= 1100 and small.index.is_monotonic_increasing
    inside = set(small[SYNTHETIC_SPEC.customer_column])
    assert not inside & set(train.drop(index=small.index)[SYNTHETIC_SPEC.customer_column])
    assert abs(small[SYNTHETIC_SPEC.target_column].mean() - rate) < 0.03
