"""The training protocol for data too large for one pandas frame: the Dask engine (``engine: dask``).

Up to about 10M applications on a LocalCluster of a few workers, the protocol of
:func:`fit_candidates_dask` is :mod:`scoring.models.training`'s ``fit_on: train`` with the
valid-split champion choice, with each candidate trained where it can use the rows:

1. The XGBoost candidates (``xgboost``, ``xgboost_defaults``: every plug-in of
   :class:`~scoring.models.candidates.xgboost.XGBoostPlugin`) are trained with ``xgboost.dask``
   on ALL training rows: the challenger early-stops on the whole valid split (valid log loss),
   which fixes its round count as ``settle`` does, and the early-stopped booster, sliced to the
   best iteration, is the fitted model: it equals a refit of that many rounds on the same rows
   (the trees before the stop do not depend on the evaluation), so the rows are not boosted
   twice. A candidate without early stopping trains its ``n_estimators`` rounds.
2. Every other candidate (the scorecard's binning and regression, LightGBM, a plug-in) is fitted
   by its own pandas code on a stratified sample of train of about ``sample_rows`` rows
   (:func:`stratified_sample`: the rule is written there); a plug-in that settles on valid
   settles on a sample of valid drawn by the same rule.
3. ``fit_on`` is ``train`` whatever params say: no refits per fold and no final refit over
   train+valid. On the full data each fold refit of the champion's cross-validation trains every
   candidate again (``cv_folds`` times the cost of the boosters, the dominant cost at this
   size), and a refit over train+valid once more; with millions of rows the valid split is
   large enough to choose and calibrate on by itself.
4. The champion rule of ``train.champion`` (``min_auc_gain``, simplest first) reads the AUC on
   the whole valid split (selection ``valid``; a combiner such as the blend chooses its weight
   there too), through :func:`~scoring.models.training.decide_champion`.
5. The calibration set is every candidate's log-odds on the valid split, computed per partition
   on the workers and collected (a few floats per row), as the pandas path writes it with
   ``fit_on: train``: :class:`~scoring.models.training.FittedCandidates` is the same, so the
   train stage writes the same model bundle, champion record and calibration set.

The booster is not bit-identical to the pandas one on the same rows: each worker sketches the
histogram cuts of its own rows and the sketches are merged, gradient sums are added in another
order, and row subsampling draws per worker; its AUC is the same within a few thousandths
(tests/test_training_dask.py). On one 2-core machine two single-threaded workers boost no faster
than one process with two threads (about as fast per round at 4M training rows, half as fast
at 1M): the engine is for data that does not fit one process, and for clusters.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel

from scoring.data.sampling import SAMPLE_SEED_OFFSET
from scoring.data.split import uniform_from_keys
from scoring.models.candidate import CandidatePlugin, FitContext, FittedModel, binary_labels
from scoring.models.candidates.xgboost import (
    BoosterEstimator,
    TrainResult,
    XGBoostPlugin,
    booster_params,
    constraint_string,
)
from scoring.models.config import TrainConfig, XGBoostConfig
from scoring.models.training import (
    Candidate,
    FittedCandidates,
    decide_champion,
    fitted_on_train,
    resolve_candidates,
)

if TYPE_CHECKING:
    import dask.dataframe as dd
    import xgboost as xgb
    from distributed import Client

    from scoring.features.transformer import ApplicationFeatures

logger = logging.getLogger(__name__)

Array = npt.NDArray[np.float64]
UNIT = "_unit"  # the sampling unit's uniform draw (one per customer, or per row)
LABEL = "_label"


# ---------------------------------------------------------------------------- the feature matrix


# dask's collections and distributed's Client are untyped (mypy's disallow_untyped_calls):
# their methods are called through Any, in these helpers and in _on_every_worker


def _map_partitions(frame: dd.DataFrame | dd.Series, func: Any, *args: Any, meta: Any) -> Any:
    mapper: Any = frame.map_partitions
    return mapper(func, *args, meta=meta)


def _computed(collection: dd.DataFrame | dd.Series) -> Any:
    untyped: Any = collection
    return untyped.compute()


def _transform_partition(part: pd.DataFrame, features: ApplicationFeatures) -> pd.DataFrame:
    return features.transform(part)


def feature_frame_dask(features: ApplicationFeatures, frame: dd.DataFrame) -> dd.DataFrame:
    """The fitted transformer applied to each partition: ``features.transform`` of the whole
    frame, partitioned as ``frame``.

    The categorical columns have the transformer's fitted levels in every partition and in the
    meta (known categories), so ``xgboost.dask`` reads the same category codes everywhere.
    """
    empty = np.empty((0, len(features.matrix_columns)), dtype=np.float64)
    meta = features.frame(empty, frame._meta.index)
    result: dd.DataFrame = _map_partitions(frame, _transform_partition, features, meta=meta)
    return result


# ---------------------------------------------------------------------------- xgboost.dask


def _values(part: pd.Series) -> pd.Series:
    return pd.Series(part.drop_duplicates().to_numpy(dtype=object), dtype=object)


def _check_labels(y: dd.Series, name: str) -> None:
    """One pass over the target that refuses what ``binary_labels`` refuses, with its messages."""
    # each partition's distinct values (a handful), not dask's value_counts, which shuffles
    values = _map_partitions(y, _values, meta=pd.Series(dtype=object)).compute()
    binary_labels(values.drop_duplicates(), name)


def _labels(y: dd.Series, name: str) -> dd.Series:
    """The target as float 0.0 / 1.0 (checked)."""
    _check_labels(y, name)
    labels: dd.Series = y.astype("float64")
    return labels


def _dask_params(
    config: XGBoostConfig, seed: int, columns: Any, monotone: Mapping[str, int] | None
) -> dict[str, Any]:
    params = booster_params(config, seed, constraints=constraint_string(columns, monotone))
    # each worker's own thread count (its dask threads), not train.xgboost.n_jobs per worker
    del params["nthread"]
    return params


def _on_every_worker(client: Client, X: dd.DataFrame, y: dd.Series) -> tuple[Any, Any]:
    """``X`` and ``y`` computed on the cluster, partition ``i`` held by worker ``i`` mod the workers.

    ``xgboost.dask`` trains each worker on the partitions it holds and moves none; a worker
    without rows of a matrix cannot learn the categories from it and fails, and Dask's own
    placement may leave one so (a split smaller than a partition, say). So the partitions are
    dealt out to every worker (split first where there are fewer partitions than workers).
    """
    from dask.dataframe import from_delayed

    workers = sorted(client.scheduler_info()["workers"])
    if X.npartitions < len(workers):
        # split alike: the same row positions in X and y
        X, y = X.repartition(npartitions=len(workers)), y.repartition(npartitions=len(workers))
    untyped_X: Any = X
    untyped_y: Any = y
    compute: Any = client.compute
    x_parts, y_parts = untyped_X.to_delayed(), untyped_y.to_delayed()
    held_X, held_y = [], []
    for i, (x_part, y_part) in enumerate(zip(x_parts, y_parts, strict=True)):
        x_future, y_future = compute([x_part, y_part], workers=[workers[i % len(workers)]])
        held_X.append(x_future)
        held_y.append(y_future)
    return (
        from_delayed(held_X, meta=untyped_X._meta, verify_meta=False),
        from_delayed(held_y, meta=untyped_y._meta, verify_meta=False),
    )


def _quantile_matrix(client: Client, X: dd.DataFrame, y: dd.Series, name: str, ref: Any = None) -> Any:
    from xgboost import dask as dxgb

    data, labels = _on_every_worker(client, X, _labels(y, name))
    return dxgb.DaskQuantileDMatrix(client, data, labels, enable_categorical=True, ref=ref)


def _early_stopped(
    client: Client, dtrain: Any, dvalid: Any, params: dict[str, Any], config: XGBoostConfig
) -> TrainResult:
    from xgboost import dask as dxgb

    # valid log loss only: early stopping watches it, and a metric over all training rows each
    # round would cost a pass over them (the trees do not depend on what is evaluated)
    out = dxgb.train(
        client,
        {**params, "eval_metric": ["logloss"]},
        dtrain,
        num_boost_round=config.n_estimators,
        evals=[(dvalid, "valid")],
        early_stopping_rounds=config.early_stopping_rounds,
        verbose_eval=False,
    )
    booster: xgb.Booster = out["booster"]
    best = (
        int(booster.best_iteration)
        if config.early_stopping_rounds is not None
        else booster.num_boosted_rounds() - 1
    )
    logloss = float(out["history"]["valid"]["logloss"][best])
    logger.info(
        "xgboost.dask: best iteration %d of %d, valid logloss %.5f", best, config.n_estimators, logloss
    )
    return TrainResult(
        booster=booster[: best + 1], best_iteration=best, best_valid_logloss=logloss, n_trees=best + 1
    )


def train_xgboost_dask(
    client: Client,
    X_train: dd.DataFrame,
    y_train: dd.Series,
    X_valid: dd.DataFrame,
    y_valid: dd.Series,
    config: XGBoostConfig,
    seed: int,
    monotone: Mapping[str, int] | None = None,
) -> TrainResult:
    """:func:`~scoring.models.candidates.xgboost.train_xgboost` with ``xgboost.dask`` on partitioned rows.

    The same booster parameters, early stopping on the valid log loss, the booster sliced to the
    best iteration. ``X_train`` and ``y_train`` (``X_valid``, ``y_valid``) are partitioned alike,
    e.g. :func:`feature_frame_dask` of a frame and that frame's target column.
    """
    dtrain = _quantile_matrix(client, X_train, y_train, "train")
    dvalid = _quantile_matrix(client, X_valid, y_valid, "valid", ref=dtrain)
    params = _dask_params(config, seed, X_train.columns, monotone)
    return _early_stopped(client, dtrain, dvalid, params, config)


def _rounds(client: Client, dtrain: Any, params: dict[str, Any], n_rounds: int) -> xgb.Booster:
    from xgboost import dask as dxgb

    if n_rounds < 1:
        raise ValueError(f"n_rounds: expected >= 1, got {n_rounds}")
    out = dxgb.train(client, params, dtrain, num_boost_round=n_rounds, verbose_eval=False)
    booster: xgb.Booster = out["booster"]
    return booster


def train_booster_rounds_dask(
    client: Client,
    X: dd.DataFrame,
    y: dd.Series,
    config: XGBoostConfig,
    n_rounds: int,
    seed: int,
    monotone: Mapping[str, int] | None = None,
) -> xgb.Booster:
    """:func:`~scoring.models.candidates.xgboost.train_booster_rounds` with ``xgboost.dask``."""
    if n_rounds < 1:
        raise ValueError(f"n_rounds: expected >= 1, got {n_rounds}")
    dtrain = _quantile_matrix(client, X, y, "train")
    return _rounds(client, dtrain, _dask_params(config, seed, X.columns, monotone), n_rounds)


# ---------------------------------------------------------------------------- the stratified sample


def _unit_draws(part: pd.DataFrame, seed: int, group_column: str | None) -> Array:
    """Per row, its sampling unit's uniform draw: the fit sample's seeded hash of the customer's
    key, or of the row's values for a row without a customer (every row without a customer column)."""
    seed = seed + SAMPLE_SEED_OFFSET

    def of_rows(rows: pd.DataFrame) -> Array:
        hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy(dtype=np.uint64)
        return np.asarray(uniform_from_keys(pd.Series(hashed), seed), dtype=np.float64)

    if group_column is None:
        return of_rows(part)
    keys = part[group_column].reset_index(drop=True)
    draws = np.asarray(uniform_from_keys(keys, seed), dtype=np.float64)
    missing = keys.isna().to_numpy()
    if missing.any():  # a row without a customer id is a customer of its own
        draws[missing] = of_rows(part[missing])
    return draws


def _sampling_rows(
    part: pd.DataFrame, target_column: str, seed: int, group_column: str | None
) -> pd.DataFrame:
    label = pd.to_numeric(part[target_column]).to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame({UNIT: _unit_draws(part, seed, group_column), LABEL: label}, index=part.index)


def _chosen_units(units: pd.DataFrame, n_rows: int, max_rows: int) -> Array:
    """The rule on the table of units (``UNIT`` draw, ``rows``, ``defaults``): in each stratum
    (units of the same rows and defaults), the share ``max_rows / n_rows`` of its units, rounded,
    those of lowest draw. Returns their draws, sorted."""
    share = max_rows / n_rows
    chosen: list[Array] = [np.empty(0, dtype=np.float64)]
    for _, stratum in units.groupby(["rows", "defaults"], sort=True):
        draws = np.sort(stratum[UNIT].to_numpy(dtype=np.float64))
        chosen.append(draws[: round(share * len(draws))])
    return np.sort(np.concatenate(chosen))


def _take(part: pd.DataFrame, chosen: Array, seed: int, group_column: str | None) -> pd.DataFrame:
    return part[np.isin(_unit_draws(part, seed, group_column), chosen)]


def _check_max_rows(max_rows: int) -> None:
    if max_rows < 1:
        raise ValueError(f"max_rows: expected >= 1, got {max_rows}")


def stratified_sample_frame(
    frame: pd.DataFrame, target_column: str, max_rows: int, seed: int, group_column: str | None = None
) -> pd.DataFrame:
    """:func:`stratified_sample` of a pandas frame: the same rows as the Dask one."""
    _check_max_rows(max_rows)
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    binary_labels(frame[target_column], target_column)
    rows = _sampling_rows(frame, target_column, seed, group_column)
    grouped = rows.groupby(UNIT)[LABEL]
    units = pd.DataFrame({"rows": grouped.size(), "defaults": grouped.sum()}).reset_index()
    chosen = _chosen_units(units, len(frame), max_rows)
    return frame[np.isin(rows[UNIT].to_numpy(), chosen)].reset_index(drop=True)


def stratified_sample(
    frame: dd.DataFrame,
    target_column: str,
    max_rows: int,
    seed: int,
    group_column: str | None = None,
    n_rows: int | None = None,
) -> pd.DataFrame:
    """A deterministic sample of about ``max_rows`` rows that keeps the default rate and
    customers whole, as pandas; every row when the frame has at most ``max_rows``.

    The rule: each customer (``group_column``; a row without one, or every row when there is no
    such column, is a unit of its own) draws a uniform number from a seeded hash of its key, the
    draw of the fit sample (:mod:`scoring.data.sampling`: the split's hash, its seed offset).
    The customers are stratified by their number of applications and of defaults among them,
    and from each stratum the share ``max_rows / rows`` of its customers is taken, rounded,
    those of lowest draw. The fit sample takes the customers whose draw is below that share,
    so keeps the default rate in expectation; this moves the cut per stratum so that it is kept
    up to the rounding (a fraction of a customer per stratum, a handful of strata), and the
    repeat customers' share with it. The sample depends on the rows and the seed, not on the
    partitioning or the row order; rows come back in the frame's order, with a fresh index.
    :func:`stratified_sample_frame` is the same rule on a pandas frame. ``n_rows``, the frame's
    rows where known (from the Parquet metadata, say), saves counting them.

    Not the tuning stage's rule (one fold of a seeded ``StratifiedGroupKFold``,
    :func:`scoring.models.tuning.tuning_sample`): that one needs every row in one process and
    deals the customers to the folds one by one in Python, which does not scale to millions.
    """
    _check_max_rows(max_rows)
    n_rows = len(frame) if n_rows is None else n_rows
    if n_rows <= max_rows:
        everything: pd.DataFrame = _computed(frame)
        return everything.reset_index(drop=True)
    _check_labels(frame[target_column], target_column)
    meta = pd.DataFrame({UNIT: pd.Series(dtype=np.float64), LABEL: pd.Series(dtype=np.float64)})
    rows = _map_partitions(frame, _sampling_rows, target_column, seed, group_column, meta=meta)
    units = rows.groupby(UNIT)[LABEL].agg(["size", "sum"]).compute()
    units = units.rename(columns={"size": "rows", "sum": "defaults"}).reset_index()
    from dask.delayed import delayed

    # one task holds the chosen draws (up to max_rows of them), every partition depends on it
    chosen = delayed(_chosen_units(units, n_rows, max_rows), pure=True)
    sample: pd.DataFrame = _map_partitions(
        frame, _take, chosen, seed, group_column, meta=frame._meta
    ).compute()
    logger.info(
        "stratified sample: %d of %d rows (about %d asked), seed %d%s",
        len(sample),
        n_rows,
        max_rows,
        seed,
        f", customers ({group_column}) whole" if group_column else "",
    )
    return sample.reset_index(drop=True)


# ---------------------------------------------------------------------------- the protocol


def _valid_log_odds_partition(
    part: pd.DataFrame, features: ApplicationFeatures, target_column: str, models: Mapping[str, FittedModel]
) -> pd.DataFrame:
    matrix = features.transform(part)
    target = pd.to_numeric(part[target_column], errors="coerce")
    columns: dict[str, Any] = {"target": target.to_numpy(dtype=np.float64, na_value=np.nan)}
    columns.update(
        {name: np.asarray(model.log_odds(matrix), dtype=np.float64) for name, model in models.items()}
    )
    return pd.DataFrame(columns, index=part.index)


def valid_log_odds(
    frame: dd.DataFrame, features: ApplicationFeatures, target_column: str, models: Mapping[str, FittedModel]
) -> pd.DataFrame:
    """Each fitted model's log-odds on the rows of ``frame`` (and their ``target``), computed per
    partition on the workers and collected: one row per input row, in its order, fresh index."""
    from dask.delayed import delayed

    meta = pd.DataFrame({name: pd.Series(dtype=np.float64) for name in ["target", *models]})
    # one task holds the models, every partition depends on it: they travel to each worker once
    shared = delayed(dict(models), pure=False)
    out: pd.DataFrame = _map_partitions(
        frame, _valid_log_odds_partition, features, target_column, shared, meta=meta
    ).compute()
    return out.reset_index(drop=True)


@dataclass
class _Sample:
    X: pd.DataFrame
    y: pd.Series


def _overrides_settle(plugin: CandidatePlugin) -> bool:
    return type(plugin).settle is not CandidatePlugin.settle


def fit_candidates_dask(
    client: Client,
    train: dd.DataFrame,
    valid: dd.DataFrame,
    features: ApplicationFeatures,
    target_column: str,
    config: TrainConfig,
    seed: int,
    overrides: Mapping[str, BaseModel] | None,
    sample_rows: int | None,
    group_column: str | None = None,
) -> FittedCandidates:
    """The training protocol for large data (module docstring) on raw partitioned applications.

    ``train`` and ``valid`` are the split's applications (the target column included);
    ``features`` the fitted transformer; ``overrides`` a candidate's settings in place of
    params' (the tuned challenger's), as for :func:`~scoring.models.training.fit_candidates`;
    ``sample_rows`` about how many training rows the candidates other than XGBoost are fitted
    on (None: every row); ``group_column`` (the customer id) keeps customers whole in those
    samples. Returns what
    ``fit_candidates`` returns with ``fit_on: train`` and the valid-split champion choice; each
    candidate's ``details`` say on how many rows (``fit_rows``) and with which engine it was fitted.
    The fitted models travel to the workers (pickled by Dask, once each) to score valid.
    """
    context = FitContext(seed, dict(config.monotone_risk))
    candidates = resolve_candidates(config, overrides)
    X_train, X_valid = feature_frame_dask(features, train), feature_frame_dask(features, valid)
    n_train = len(train)
    if config.fit_on != "train" or config.champion.selection != "valid":
        logger.info(
            "dask engine: fit_on train and the champion on valid AUC (params: fit_on %s, selection %s)",
            config.fit_on,
            config.champion.selection,
        )

    matrices: dict[str, Any] = {}

    def booster_matrices() -> tuple[Any, Any]:
        # built once, shared by every XGBoost candidate: the transform runs once per partition
        if not matrices:
            matrices["train"] = _quantile_matrix(client, X_train, train[target_column], "train")
            matrices["valid"] = _quantile_matrix(
                client, X_valid, valid[target_column], "valid", ref=matrices["train"]
            )
        return matrices["train"], matrices["valid"]

    samples: dict[str, _Sample] = {}

    def sample_of(split: str) -> _Sample:
        if split not in samples:
            frame, n_rows = (train, n_train) if split == "train" else (valid, None)
            max_rows = sys.maxsize if sample_rows is None else sample_rows
            rows = stratified_sample(frame, target_column, max_rows, seed, group_column, n_rows)
            samples[split] = _Sample(features.transform(rows), rows[target_column])
        return samples[split]

    models: dict[str, FittedModel] = {}
    details: dict[str, dict[str, Any]] = {}
    settled: list[Candidate] = []
    for candidate in candidates:
        plugin = candidate.plugin
        if isinstance(plugin, XGBoostPlugin):
            settings = candidate.settings
            assert isinstance(settings, XGBoostConfig)
            dtrain, dvalid = booster_matrices()
            params = _dask_params(settings, seed, X_train.columns, context.numeric_directions(X_train._meta))
            if settings.early_stopping_rounds is None:
                booster = _rounds(client, dtrain, params, settings.n_estimators)
                info: dict[str, Any] = {"n_trees": settings.n_estimators}
            else:
                result = _early_stopped(client, dtrain, dvalid, params, settings)
                booster = result.booster  # = a refit of n_trees rounds on the same rows
                info = {
                    "best_iteration": result.best_iteration,
                    "n_trees": result.n_trees,
                    "valid_logloss": result.best_valid_logloss,
                }
                settings = settings.model_copy(
                    update={"n_estimators": result.n_trees, "early_stopping_rounds": None}
                )
            models[candidate.name] = BoosterEstimator(booster)
            details[candidate.name] = {**info, "fit_rows": n_train, "engine": "xgboost.dask"}
            candidate = Candidate(candidate.name, plugin, settings)
        elif isinstance(plugin, CandidatePlugin):
            fit = sample_of("train")
            settings, info = candidate.settings, {}
            if _overrides_settle(plugin):
                held = sample_of("valid")
                settings, info = plugin.settle(settings, fit.X, fit.y, held.X, held.y, context)
            models[candidate.name] = plugin.fit(settings, fit.X, fit.y, context)
            details[candidate.name] = {**info, "fit_rows": len(fit.X), "engine": "pandas, stratified sample"}
            candidate = Candidate(candidate.name, plugin, settings)
        settled.append(candidate)

    base = [c.name for c in settled if not c.is_combiner]
    held_out = valid_log_odds(valid, features, target_column, {name: models[name] for name in base})
    y_valid = binary_labels(held_out["target"], "valid")
    log_odds = {name: held_out[name].to_numpy(dtype=np.float64) for name in base}
    decision, settled, _ = decide_champion(y_valid, log_odds, settled, config.champion, "valid", details)
    logger.info(
        "dask training: %s on %d training rows (the others on a sample of %s), champion %s",
        ", ".join(c.name for c in settled),
        n_train,
        len(samples["train"].X) if "train" in samples else "-",
        decision.champion,
    )
    return fitted_on_train(models, settled, decision, log_odds, y_valid, n_train)
