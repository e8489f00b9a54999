"""Training on the dask engine (scoring.models.training_dask) on a real 2-worker LocalCluster and
~46k synthetic training rows: the partitioned feature matrix is the pandas one exactly, the
xgboost.dask booster is as good as the pandas one on the same rows, the stratified sample is
the same whatever the partitioning and keeps the default rate and customers whole, and the
large-data protocol returns candidates that save and score like the pandas protocol's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from scoring.config import Params, load_params
from scoring.core.contract import SYNTHETIC_SPEC as SPEC
from scoring.data.split import split_applications
from scoring.data.synthetic import generate_portfolio
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import FitContext
from scoring.models.candidates.xgboost import BoosterEstimator, booster_log_odds, train_xgboost
from scoring.models.config import TrainConfig, XGBoostConfig
from scoring.models.training import FittedCandidates, champion_record
from scoring.models.training_dask import (
    feature_frame_dask,
    fit_candidates_dask,
    stratified_sample,
    stratified_sample_frame,
    train_booster_rounds_dask,
    train_xgboost_dask,
)
from scoring.serving.bundle import CHAMPION_FILE, ModelBundle

ROOT = Path(__file__).resolve().parents[1]
TARGET, CUSTOMER = SPEC.target_column, SPEC.customer_column
assert CUSTOMER is not None

# The Dask booster is not bit-identical to the pandas one on the same rows: each worker sketches
# the histogram cuts of its own rows and the sketches are merged (the pandas DMatrix sketches all
# rows at once), the gradient sums are added across workers in another order, and the row
# subsample is drawn per worker over its own rows. So the trees differ a little, the early stop
# may fall a few rounds apart, and the AUC moves by about 1e-3 on these ~10k held-out rows.
AUC_TOLERANCE = 0.005


@dataclass
class Portfolio:
    params: Params
    parts: dict[str, pd.DataFrame]
    features: ApplicationFeatures
    dask_parts: dict[str, dd.DataFrame]
    folder: Path

    @property
    def train(self) -> pd.DataFrame:
        return self.parts["train"]

    def partitioned(self, name: str, frame: pd.DataFrame, rows: int) -> dd.DataFrame:
        """``frame`` as Parquet parts of ``rows`` rows, read back one partition per part (as the
        stages' partitioned tables are)."""
        folder = self.folder / name
        folder.mkdir()
        files = []
        for number, start in enumerate(range(0, len(frame), rows)):
            path = folder / f"part-{number:05d}.parquet"
            frame.iloc[start : start + rows].to_parquet(path, index=False)
            files.append(str(path))
        return dd.from_map(pd.read_parquet, files, meta=frame.iloc[:0].reset_index(drop=True))


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    # the stages keep pandas' column types on dask (no pyarrow strings), so both engines see equal frames
    with (
        dask.config.set({"dataframe.convert-string": False}),
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as connected,
    ):
        yield connected


@pytest.fixture(scope="module")
def portfolio(client: object, tmp_path_factory: pytest.TempPathFactory) -> Portfolio:
    params = load_params(ROOT / "params.yaml")
    synthetic = params.data.synthetic.model_copy(update={"n_applications": 100_000})
    applications, _ = generate_portfolio(synthetic, params.seed)
    parts = split_applications(applications, SPEC, params.split, params.seed).parts
    # as pipelines/features.py fits it
    features = ApplicationFeatures(
        exclude_columns=SPEC.non_feature_columns,
        categorical_columns=SPEC.categorical_columns,
        max_category_levels=params.features.max_category_levels,
        min_category_count=params.features.min_category_count,
    ).fit(parts["train"])
    found = Portfolio(params, parts, features, {}, tmp_path_factory.mktemp("training_dask"))
    for name in ("train", "valid", "test"):
        found.dask_parts[name] = found.partitioned(name, parts[name], 12_000)
    return found


def _fast(config: XGBoostConfig) -> XGBoostConfig:
    return config.model_copy(update={"n_estimators": 300, "learning_rate": 0.1, "early_stopping_rounds": 20})


def test_feature_frame_dask_is_the_pandas_transform_exactly(portfolio: Portfolio) -> None:
    train = portfolio.dask_parts["train"]
    assert train.npartitions == 4
    matrix = feature_frame_dask(portfolio.features, train)
    expected = portfolio.features.transform(portfolio.train)
    # the meta has the transformer's levels: known categories, what xgboost.dask needs
    pd.testing.assert_series_equal(matrix._meta.dtypes, expected.dtypes)
    categorical = [c for c in expected if isinstance(expected[c].dtype, pd.CategoricalDtype)]
    assert len(categorical) >= 5 and all(matrix[c].cat.known for c in categorical)
    # partitions with other levels would concatenate to object columns, not these categoricals
    computed = matrix.compute()
    pd.testing.assert_frame_equal(computed.reset_index(drop=True), expected, check_exact=True)
    # each partition keeps its own rows' index
    assert list(matrix.get_partition(1).compute().index) == list(range(12_000))


@pytest.mark.slow
def test_dask_booster_is_as_good_as_the_pandas_booster_on_the_same_rows(
    portfolio: Portfolio, client: object
) -> None:
    params, features, parts = portfolio.params, portfolio.features, portfolio.parts
    config = _fast(params.train.xgboost)
    context = FitContext(params.seed, dict(params.train.monotone_risk))
    X = {name: features.transform(parts[name]) for name in ("train", "valid", "test")}
    y = {name: parts[name][TARGET] for name in ("train", "valid", "test")}
    monotone = context.numeric_directions(X["train"])
    assert len(monotone) >= 5
    pandas_result = train_xgboost(
        X["train"], y["train"], X["valid"], y["valid"], config, params.seed, monotone
    )

    frames = portfolio.dask_parts
    dask_result = train_xgboost_dask(
        client,
        feature_frame_dask(features, frames["train"]),
        frames["train"][TARGET],
        feature_frame_dask(features, frames["valid"]),
        frames["valid"][TARGET],
        config,
        params.seed,
        monotone,
    )
    booster = dask_result.booster
    assert booster.num_boosted_rounds() == dask_result.n_trees == dask_result.best_iteration + 1
    assert 10 < dask_result.n_trees < config.n_estimators  # it stopped early
    assert abs(dask_result.best_valid_logloss - pandas_result.best_valid_logloss) < 0.003

    # the same booster parameters, monotone constraints and categorical handling included
    def tree_params(b: xgb.Booster) -> dict[str, str]:
        return dict(json.loads(b.save_config())["learner"]["gradient_booster"]["tree_train_param"])

    assert tree_params(booster) == tree_params(pandas_result.booster)
    assert tree_params(booster)["monotone_constraints"].count("-1") == sum(v < 0 for v in monotone.values())
    for name in ("valid", "test"):
        labels = y[name].to_numpy(dtype=float)
        ours = roc_auc_score(labels, booster_log_odds(booster, X[name]))
        theirs = roc_auc_score(labels, booster_log_odds(pandas_result.booster, X[name]))
        assert theirs > 0.8
        assert abs(ours - theirs) <= AUC_TOLERANCE, (name, ours, theirs)

    # a fixed number of rounds, no validation rows
    fixed = train_booster_rounds_dask(
        client,
        feature_frame_dask(features, frames["train"]),
        frames["train"][TARGET],
        config,
        dask_result.n_trees,
        params.seed,
        monotone,
    )
    assert fixed.num_boosted_rounds() == dask_result.n_trees
    labels = y["valid"].to_numpy(dtype=float)
    fixed_auc = roc_auc_score(labels, booster_log_odds(fixed, X["valid"]))
    assert abs(fixed_auc - roc_auc_score(labels, booster_log_odds(booster, X["valid"]))) <= AUC_TOLERANCE


def test_dask_training_refuses_bad_labels_and_rounds(portfolio: Portfolio, client: object) -> None:
    frames, features = portfolio.dask_parts, portfolio.features
    config = _fast(portfolio.params.train.xgboost)
    X_train, X_valid = (
        feature_frame_dask(features, frames["train"]),
        feature_frame_dask(features, frames["valid"]),
    )
    y_train, y_valid = frames["train"][TARGET], frames["valid"][TARGET]
    with pytest.raises(ValueError, match="valid: target has a single class"):
        train_xgboost_dask(client, X_train, y_train, X_valid, y_valid * 0, config, 1)
    with pytest.raises(ValueError, match="train: target must be 0 or 1"):
        train_xgboost_dask(client, X_train, y_train.replace(1, 2), X_valid, y_valid, config, 1)
    with pytest.raises(ValueError, match="n_rounds: expected >= 1, got 0"):
        train_booster_rounds_dask(client, X_train, y_train, config, 0, 1)


def test_stratified_sample_is_partition_invariant_stratified_and_keeps_customers_whole(
    portfolio: Portfolio,
) -> None:
    train, frames = portfolio.train, portfolio.dask_parts
    sample = stratified_sample(frames["train"], TARGET, 10_000, seed=3, group_column=CUSTOMER)
    assert abs(len(sample) - 10_000) <= 5
    # the same rows, in the same order, whatever the partitioning, and the pandas rule's
    other = portfolio.partitioned("train_7k", train, 7_000)
    assert other.npartitions == 7
    pd.testing.assert_frame_equal(stratified_sample(other, TARGET, 10_000, 3, CUSTOMER), sample)
    pd.testing.assert_frame_equal(stratified_sample_frame(train, TARGET, 10_000, 3, CUSTOMER), sample)
    # nor on the row order
    shuffled = train.sample(frac=1.0, random_state=0)
    reordered = stratified_sample_frame(shuffled, TARGET, 10_000, 3, CUSTOMER)
    assert sorted(reordered["application_id"]) == sorted(sample["application_id"])
    assert list(sample["application_id"]) == sorted(sample["application_id"])  # the frame's order
    # the default rate is the frame's (a uniform 10k draw misses it by 0.0026 typically)
    rate = train[TARGET].astype(float).mean()
    assert abs(sample[TARGET].astype(float).mean() - rate) < 0.0005
    # every application of a sampled customer, and repeat customers among them
    counts = train[CUSTOMER].value_counts()
    sampled = sample[CUSTOMER].value_counts()
    pd.testing.assert_series_equal(sampled, counts[sampled.index], check_names=False)
    assert (sampled > 1).sum() >= 50
    # another seed, other customers
    again = stratified_sample(frames["train"], TARGET, 10_000, seed=4, group_column=CUSTOMER)
    assert len(set(again[CUSTOMER]) & set(sample[CUSTOMER])) < 0.5 * sampled.size


def test_stratified_sample_small_frames_rows_and_bad_targets(portfolio: Portfolio) -> None:
    valid, frame = portfolio.parts["valid"], portfolio.dask_parts["valid"]
    # at most max_rows rows: all of them, in order
    pd.testing.assert_frame_equal(stratified_sample(frame, TARGET, len(valid), 1, CUSTOMER), valid)
    # without a customer column every row is a unit of its own
    by_row = stratified_sample(frame, TARGET, 2_000, 1)
    pd.testing.assert_frame_equal(by_row, stratified_sample_frame(valid, TARGET, 2_000, 1))
    assert abs(len(by_row) - 2_000) <= 2
    assert abs(by_row[TARGET].astype(float).mean() - valid[TARGET].astype(float).mean()) < 0.001
    with pytest.raises(ValueError, match="max_rows: expected >= 1, got 0"):
        stratified_sample(frame, TARGET, 0, 1)
    broken = valid.copy()
    broken.loc[5, TARGET] = pd.NA
    with pytest.raises(ValueError, match=f"{TARGET}: target must be 0 or 1"):
        stratified_sample(dd.from_pandas(broken, npartitions=2), TARGET, 2_000, 1)


@pytest.mark.slow
def test_fit_candidates_dask_returns_candidates_that_save_and_score(
    portfolio: Portfolio, client: object, tmp_path: Path
) -> None:
    params, features, valid = portfolio.params, portfolio.features, portfolio.parts["valid"]
    config = TrainConfig.model_validate(
        {
            **params.train.model_dump(),
            "candidates": ["scorecard", "xgboost", "xgboost_defaults", "lightgbm", "blend"],
            "candidate_params": {
                **params.train.candidate_params,
                "xgboost_defaults": {"n_estimators": 30},  # no early stopping: 30 rounds
            },
            "xgboost": _fast(params.train.xgboost).model_dump(),
        }
    )
    assert config.fit_on == "train_valid"  # params' protocol; on dask it is fit_on train
    fitted = fit_candidates_dask(
        client,
        portfolio.dask_parts["train"],
        portfolio.dask_parts["valid"],
        features,
        TARGET,
        config,
        params.seed,
        None,
        sample_rows=8_000,
        group_column=CUSTOMER,
    )
    assert isinstance(fitted, FittedCandidates)
    assert (fitted.fit_on, fitted.calibration_source, fitted.n_fit) == (
        "train",
        "valid",
        len(portfolio.train),
    )
    assert list(fitted.models) == [c.name for c in fitted.candidates] == config.candidates
    decision = fitted.decision
    assert decision.selection == "valid" and decision.n_rows == len(valid)
    details = decision.details
    assert details["xgboost"]["fit_rows"] == len(portfolio.train)
    assert (
        abs(details["scorecard"]["fit_rows"] - 8_000) <= 5
        and details["lightgbm"]["fit_rows"] == details["scorecard"]["fit_rows"]
    )
    settled = fitted.settings("xgboost")
    assert isinstance(settled, XGBoostConfig) and settled.early_stopping_rounds is None
    assert settled.n_estimators == details["xgboost"]["n_trees"] < 300
    defaults, defaults_model = fitted.settings("xgboost_defaults"), fitted.models["xgboost_defaults"]
    assert isinstance(defaults, XGBoostConfig) and isinstance(defaults_model, BoosterEstimator)
    assert details["xgboost_defaults"]["n_trees"] == defaults.n_estimators == 30
    assert defaults_model.booster.num_boosted_rounds() == 30
    assert "weight" in details["blend"]

    # the calibration set: every candidate's log-odds on every valid row, in the valid order
    calibration = fitted.calibration
    assert list(calibration.columns) == ["split", "target", *config.candidates, "champion"]
    assert len(calibration) == len(valid) and set(calibration["split"]) == {"valid"}
    np.testing.assert_array_equal(calibration["target"], valid[TARGET].astype(int))
    np.testing.assert_array_equal(calibration["champion"], calibration[decision.champion])
    for name in config.candidates:
        assert decision.auc[name] == pytest.approx(roc_auc_score(calibration["target"], calibration[name]))
    assert decision.auc["xgboost"] > decision.auc["scorecard"] > 0.75

    # the stage's outputs: the bundle and the champion record; each saved model scores raw
    # applications as the workers scored them
    bundle = ModelBundle(tmp_path / "models")
    bundle.save_features(features)
    bundle.save_candidates(fitted.models)
    record = champion_record(fitted, config)
    bundle.write(CHAMPION_FILE, record)
    assert record["fit_on"] == "train" and record["valid_auc"] == pytest.approx(decision.auc)
    assert bundle.candidate_names() == config.candidates
    for name in config.candidates:
        model = bundle.load_model(name)
        np.testing.assert_allclose(model.log_odds(valid), calibration[name], rtol=0, atol=1e-9)
