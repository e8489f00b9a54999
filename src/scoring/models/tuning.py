"""Hyper-parameter tuning of the XGBoost challenger with optuna: seeded TPE, median pruning.

Objective
    ``objective="cv"`` (the default): stratified k-fold cross-validation inside the
    training split only; the validation split is never read, so it stays an honest
    early-stopping set for the final fit and the test split stays untouched. Each fold
    early-stops on its held-out fold's log loss (as :func:`scoring.models.training.train_xgboost`
    does on the validation split) and is scored on that fold with ``metric`` (AUC or log
    loss). After every fold the running mean is reported to the pruner, so a trial whose
    first fold is already worse than the median of earlier trials stops there.
    ``objective="valid"``: one fit on train, scored on the validation split, with the
    validation metric reported every ``report_every`` boosting rounds for pruning. Cheaper,
    but the final model then early-stops on the very split the parameters were picked on,
    and per-round pruning favours fast learning rates.

Storage and resuming
    The study lives in a storage (:func:`open_storage`): a path is an optuna journal file
    (append-only log, safe for several processes on one machine or on a shared file
    system); a URL such as ``sqlite:///tuning.db`` or ``postgresql://user@host/db`` is an
    RDB storage. ``n_trials`` counts finished (complete or pruned) trials of the whole
    study, so rerunning with a larger ``n_trials`` runs only the missing ones, and a run
    that was stopped by its time budget or interrupted carries on where it stopped. The
    study remembers what its objective was (settings, seed, fixed parameters, a digest of
    the data); resuming it with a different objective is an error, since its old trials
    would not be comparable. A trial whose process was killed outright stays RUNNING in a
    journal file and is not counted (RDB storages mark it failed through their heartbeat).

Parallel workers
    Start the same call (same storage, ``study_name``, settings and data) in several
    processes or on several machines; each one asks the storage for the next trial and
    they stop together once the study holds ``n_trials`` finished trials (it can end with
    up to ``workers - 1`` extra trials, those still running at that moment). Use one
    thread per worker (``TuningSettings.n_jobs=1``): OpenMP teams spinning side by side
    on a small machine slow each other down many times over. For several machines use an
    RDB URL (PostgreSQL or MySQL); with SQLite or a journal file keep to one machine or a
    reliable shared file system.

Reproducibility
    With one worker, the same seed, data and settings give the same trials and so the
    same best parameters: the TPE sampler is re-seeded before every trial from
    ``(seed, trial number)``, XGBoost gets ``seed`` and a fixed thread count, the folds
    come from ``seed``. Re-seeding per trial also makes a resumed study (10 trials, then
    15) identical to one run of 15 from scratch. Two things break this, as they do in any
    optuna study: several workers (which trial sees which history depends on timing), and
    a time budget that ends the run before ``n_trials`` (where it stops depends on speed).

Cost
    The defaults fit the pipeline's budget: on the default synthetic data (46,437 training
    rows, 39 features) on a shared 2-core machine, 25 trials of 3-fold CV took 112-129 s
    and the final fit 7-8 s (with and without the monotone constraints). The learning-rate
    floor (0.05), the round cap and the shorter early-stopping patience inside trials are
    what keep it there; the time budget (150 s) is the safety net.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import optuna
import pandas as pd
import xgboost as xgb
from optuna.trial import FrozenTrial, TrialState

from scoring.core.contract import DatasetSpec
from scoring.core.io import frame_digest
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import FitContext
from scoring.models.candidate import binary_labels as _labels
from scoring.models.candidates.xgboost import XGBoostDefaultsConfig, booster_params, constraint_string
from scoring.models.config import TuneConfig, XGBoostConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
HISTORY_PLOT = "optimisation_history.png"
IMPORTANCE_PLOT = "param_importances.png"
# Search-space keys that are not model hyper-parameters (thread count) or that the
# tuner controls itself.
_NOT_TUNABLE = frozenset({"n_jobs", "early_stopping_rounds"})
_RDB_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class SearchDimension:
    """One hyper-parameter's range: uniform (or log-uniform) between ``low`` and ``high``."""

    low: float
    high: float
    log: bool = False
    kind: Literal["float", "int"] = "float"

    def __post_init__(self) -> None:
        if self.kind not in ("float", "int"):
            raise ValueError(f"search dimension kind: expected 'float' or 'int', got {self.kind!r}")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(
                f"search dimension: expected finite low < high, got low={self.low}, high={self.high}"
            )
        if self.log and self.low <= 0:
            raise ValueError(f"search dimension: a log scale needs low > 0, got low={self.low}")
        if self.kind == "int" and not (float(self.low).is_integer() and float(self.high).is_integer()):
            raise ValueError(
                f"search dimension: kind 'int' needs whole bounds, got low={self.low}, high={self.high}"
            )

    def suggest(self, trial: optuna.Trial, name: str) -> float | int:
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


def default_space() -> dict[str, SearchDimension]:
    """The default search space; ``learning_rate`` has a floor so every trial stays affordable."""
    return {
        "learning_rate": SearchDimension(0.05, 0.3, log=True),
        "max_depth": SearchDimension(2, 10, kind="int"),
        "min_child_weight": SearchDimension(0.1, 50.0, log=True),
        "subsample": SearchDimension(0.5, 1.0),
        "colsample_bytree": SearchDimension(0.4, 1.0),
        "reg_lambda": SearchDimension(1e-3, 50.0, log=True),
        "reg_alpha": SearchDimension(1e-3, 10.0, log=True),
    }


@dataclass(frozen=True)
class TuningSettings:
    """What to search, how, and for how long.

    ``n_trials`` counts the study's finished trials (complete or pruned) in total, across
    reruns and workers, and the best parameters are taken from the first ``n_trials`` of them,
    so the count alone decides the model. ``timeout_seconds`` (off by default) bounds one call,
    checked between trials; when it stops the search the result says so.
    ``max_boost_rounds`` and ``early_stopping_rounds`` apply inside trials only (``None``:
    the base config's ``n_estimators`` and ``early_stopping_rounds``); the final model keeps
    the base config's. ``n_jobs`` is the thread count per trial (``None``: the base
    config's); use 1 when several workers share a machine.
    """

    n_trials: int = 25
    timeout_seconds: float | None = None
    objective: Literal["cv", "valid"] = "cv"
    cv_folds: int = 3
    metric: Literal["auc", "logloss"] = "auc"
    space: Mapping[str, SearchDimension] = field(default_factory=default_space)
    pruning: bool = True
    n_startup_trials: int = 8
    max_boost_rounds: int | None = 1000
    early_stopping_rounds: int | None = 30
    n_jobs: int | None = None
    report_every: int = 25
    # The first trials of a new study: the base config's values, then XGBoost's library
    # defaults (each clipped into the space), so the search never misses what they score.
    enqueue_defaults: bool = True

    def __post_init__(self) -> None:
        problems: list[str] = []
        if self.n_trials < 1:
            problems.append(f"n_trials: expected >= 1, got {self.n_trials}")
        if self.timeout_seconds is not None and not self.timeout_seconds > 0:
            problems.append(f"timeout_seconds: expected > 0 or None, got {self.timeout_seconds}")
        if self.objective not in ("cv", "valid"):
            problems.append(f"objective: expected 'cv' or 'valid', got {self.objective!r}")
        if self.cv_folds < 2:
            problems.append(f"cv_folds: expected >= 2, got {self.cv_folds}")
        if self.metric not in ("auc", "logloss"):
            problems.append(f"metric: expected 'auc' or 'logloss', got {self.metric!r}")
        if self.n_startup_trials < 0:
            problems.append(f"n_startup_trials: expected >= 0, got {self.n_startup_trials}")
        for name in ("max_boost_rounds", "early_stopping_rounds", "n_jobs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name}: expected >= 1 or None, got {value}")
        if self.report_every < 1:
            problems.append(f"report_every: expected >= 1, got {self.report_every}")
        if not self.space:
            problems.append("space: expected at least one hyper-parameter to search")
        allowed = sorted(set(XGBoostConfig.model_fields) - _NOT_TUNABLE)
        entries: dict[str, object] = dict(self.space)  # from untyped params: check the types too
        for name, dim in entries.items():
            if name not in allowed:
                problems.append(f"space: unknown key {name!r}; allowed: {', '.join(allowed)}")
            elif not isinstance(dim, SearchDimension):
                problems.append(f"space.{name}: expected a SearchDimension, got {type(dim).__name__}")
            elif XGBoostConfig.model_fields[name].annotation is int and dim.kind != "int":
                problems.append(f"space.{name}: an integer parameter needs kind 'int', got {dim.kind!r}")
        if problems:
            raise ValueError("invalid tuning settings:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class TuningResult:
    best_params: dict[str, Any]
    best_value: float
    best_config: XGBoostConfig
    best_trial_number: int
    best_n_rounds: int
    metric_name: str
    direction: Literal["maximize", "minimize"]
    n_trials_total: int
    n_trials_new: int
    n_trials_pruned: int
    study_name: str
    storage: str
    # The time limit ended the search before n_trials finished: another machine, or the same one
    # under other load, may have trained another model.
    stopped_by_time_limit: bool = False


# --------------------------------------------------------------------------- storage


def is_rdb_url(location: str | os.PathLike[str]) -> bool:
    return "://" in os.fspath(location)


def open_storage(location: str | os.PathLike[str]) -> optuna.storages.BaseStorage:
    """A path gives a journal-file storage (parent folders created); a URL an RDB storage.

    Optuna names RDB storages by URL but journal files only by an object, so this takes
    either and returns the storage object that ``optuna.create_study`` accepts.
    RDB storages get a heartbeat, so a trial whose worker died is marked failed and the
    study carries on without it.
    """
    text = os.fspath(location)
    if is_rdb_url(text):
        from optuna.exceptions import ExperimentalWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat arguments
            return optuna.storages.RDBStorage(text, heartbeat_interval=60, grace_period=180)
    path = Path(text)
    if path.suffix.lower() in _RDB_SUFFIXES:
        raise ValueError(
            f"storage {text!r}: a bare path is a journal file, but {path.suffix!r} suggests SQLite; "
            f"pass 'sqlite:///{path}' for SQLite or a name ending in .log for a journal file"
        )
    if path.exists() and path.is_dir():
        raise ValueError(f"storage {text!r}: expected a journal file path, got a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def storage_label(location: str | os.PathLike[str]) -> str:
    """The storage as text for logs and results, any password in a URL masked."""
    text = os.fspath(location)
    if not is_rdb_url(text):
        return text
    from sqlalchemy.engine import make_url

    try:
        return make_url(text).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL fails later in optuna with its own message
        return text


# --------------------------------------------------------------------------- objective


def _booster_params(
    config: XGBoostConfig, seed: int, nthread: int, constraints: str | None = None
) -> dict[str, Any]:
    # The same parameters as scoring.models.training.train_xgboost, so a trial's model is the final one's.
    return booster_params(config, seed, nthread, constraints)


def _score(metric: str, y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss, roc_auc_score

    if metric == "auc":
        return float(roc_auc_score(y, p))
    return float(log_loss(y, p, labels=[0, 1]))


@dataclass(frozen=True)
class _Fold:
    dtrain: xgb.DMatrix
    deval: xgb.DMatrix
    y_eval: np.ndarray


def _folds(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame | None,
    y_valid: np.ndarray | None,
    settings: TuningSettings,
    seed: int,
    groups: pd.Series | None,
    nthread: int,
) -> list[_Fold]:
    def dmatrix(X: pd.DataFrame, y: np.ndarray) -> xgb.DMatrix:
        return xgb.DMatrix(X, label=y, enable_categorical=True, nthread=nthread)

    if settings.objective == "valid":
        assert X_valid is not None and y_valid is not None
        return [_Fold(dmatrix(X_train, y_train), dmatrix(X_valid, y_valid), y_valid)]

    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    counts = np.bincount(y_train.astype(np.int64), minlength=2)
    if counts.min() < settings.cv_folds:
        raise ValueError(
            f"cv_folds={settings.cv_folds}: the training data has only {counts.min()} rows of its "
            "rarer class; expected at least one per fold"
        )
    splitter: StratifiedKFold | StratifiedGroupKFold
    if groups is None:
        splitter = StratifiedKFold(n_splits=settings.cv_folds, shuffle=True, random_state=seed % 2**32)
    else:
        splitter = StratifiedGroupKFold(n_splits=settings.cv_folds, shuffle=True, random_state=seed % 2**32)
    folds = []
    for fit_idx, eval_idx in splitter.split(np.zeros(len(y_train)), y_train, groups):
        folds.append(
            _Fold(
                dmatrix(X_train.iloc[fit_idx], y_train[fit_idx]),
                dmatrix(X_train.iloc[eval_idx], y_train[eval_idx]),
                y_train[eval_idx],
            )
        )
    return folds


class _RoundReporter(xgb.callback.TrainingCallback):
    """Reports the evaluation metric every few rounds; stops training once optuna says prune."""

    def __init__(self, trial: optuna.Trial, metric: str, every: int, prune: bool) -> None:
        self.trial, self.metric, self.every, self.prune = trial, metric, every, prune
        self.pruned_at: int | None = None

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        if (epoch + 1) % self.every:
            return False
        self.trial.report(float(evals_log["eval"][self.metric][-1]), step=epoch)
        if self.prune and self.trial.should_prune():
            self.pruned_at = epoch
            return True
        return False


def _objective(
    folds: list[_Fold],
    base: XGBoostConfig,
    settings: TuningSettings,
    seed: int,
    nthread: int,
    metric_name: str,
    constraints: str | None,
) -> Callable[[optuna.Trial], float]:
    base_values = base.model_dump()

    def objective(trial: optuna.Trial) -> float:
        # Which worker ran the trial: for diagnosis, and the test of parallel workers.
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("metric_name", metric_name)
        suggested = {name: dim.suggest(trial, name) for name, dim in settings.space.items()}
        config = XGBoostConfig.model_validate({**base_values, **suggested})
        params = _booster_params(config, seed, nthread, constraints)
        rounds = min(config.n_estimators, settings.max_boost_rounds or config.n_estimators)
        patience = settings.early_stopping_rounds or config.early_stopping_rounds
        values: list[float] = []
        n_rounds: list[int] = []
        if settings.objective == "valid":
            # Early stopping watches the last metric: log loss, as in the final fit.
            params["eval_metric"] = ["auc", "logloss"] if settings.metric == "auc" else ["logloss"]
        for step, fold in enumerate(folds):
            callbacks: list[xgb.callback.TrainingCallback] = []
            reporter = None
            if settings.objective == "valid":
                reporter = _RoundReporter(trial, settings.metric, settings.report_every, settings.pruning)
                callbacks.append(reporter)
            booster = xgb.train(
                params,
                fold.dtrain,
                num_boost_round=rounds,
                evals=[(fold.deval, "eval")],
                early_stopping_rounds=patience,
                callbacks=callbacks,
                verbose_eval=False,
            )
            best = int(booster.best_iteration)
            values.append(
                _score(
                    settings.metric, fold.y_eval, booster.predict(fold.deval, iteration_range=(0, best + 1))
                )
            )
            n_rounds.append(best + 1)
            trial.set_user_attr("fold_values", values)
            trial.set_user_attr("fold_n_rounds", n_rounds)
            if reporter is not None and reporter.pruned_at is not None:
                raise optuna.TrialPruned(f"pruned at boosting round {reporter.pruned_at + 1}")
            if settings.objective == "cv":
                trial.report(float(np.mean(values)), step=step)
                if settings.pruning and step + 1 < len(folds) and trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after fold {step + 1} of {len(folds)}")
        trial.set_user_attr("best_iteration", round(float(np.mean(n_rounds))) - 1)
        return float(np.mean(values))

    return objective


# --------------------------------------------------------------------------- study


def _trial_seed(seed: int, number: int) -> int:
    return int(np.random.SeedSequence([seed % 2**32, number]).generate_state(1)[0])


def data_digest(*parts: pd.DataFrame | np.ndarray | None) -> str:
    """A 16-hex-digit SHA-256 digest of the data a study is tuned on (``None`` parts are skipped).

    It goes into the study's fingerprint, so a stored study is only resumed on the same data.
    It depends on the values, column names and dtypes, not on object identity: object arrays are
    hashed by value, so the digest is the same in every process.
    """
    digest = hashlib.sha256()
    for part in parts:
        if part is None:
            continue
        if isinstance(part, pd.DataFrame):
            digest.update(json.dumps([list(map(str, part.columns)), list(map(str, part.dtypes))]).encode())
            digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
        elif part.dtype == object:
            # Object arrays hold pointers: hash their values, or the digest changes every process.
            digest.update(pd.util.hash_pandas_object(pd.Series(part), index=False).to_numpy().tobytes())
        else:
            digest.update(np.ascontiguousarray(part).tobytes())
    return digest.hexdigest()[:16]


def _fingerprint(
    base: XGBoostConfig,
    settings: TuningSettings,
    seed: int,
    digest: str,
    has_groups: bool,
    constraints: str | None,
) -> dict[str, Any]:
    """What defines the study's objective: trials are only comparable when all of it is equal."""
    fixed = base.model_dump(
        mode="json", exclude={"n_jobs", "n_estimators", "early_stopping_rounds", *settings.space}
    )
    rounds = settings.max_boost_rounds or base.n_estimators
    return {
        "objective": settings.objective,
        "metric": settings.metric,
        "cv_folds": settings.cv_folds if settings.objective == "cv" else None,
        "grouped_folds": has_groups,
        "seed": seed,
        "space": {name: asdict(dim) for name, dim in sorted(settings.space.items())},
        "max_boost_rounds": rounds if "n_estimators" in settings.space else min(rounds, base.n_estimators),
        "early_stopping_rounds": settings.early_stopping_rounds or base.early_stopping_rounds,
        "fixed_params": fixed,
        "monotone_constraints": constraints,
        "data_digest": digest,
    }


def _check_fingerprint(study: optuna.Study, fingerprint: dict[str, Any], label: str) -> None:
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        if study.trials:
            raise ValueError(
                f"study {study.study_name!r} in {label} has trials but no tuning fingerprint: "
                "it was not created by scoring.models.tuning; use another study_name"
            )
        study.set_user_attr("fingerprint", fingerprint)
        return
    differences = [
        f"{key}: stored {stored.get(key)!r}, now {value!r}"
        for key, value in fingerprint.items()
        if json.dumps(stored.get(key), sort_keys=True) != json.dumps(value, sort_keys=True)
    ]
    if differences:
        raise ValueError(
            f"study {study.study_name!r} in {label} was created for another objective, so its trials "
            "are not comparable with new ones:\n  " + "\n  ".join(differences) + "\n"
            "use another study_name, or delete the storage to start over"
        )


def _count(study: optuna.Study, states: tuple[TrialState, ...]) -> int:
    return len(study.get_trials(deepcopy=False, states=states))


def starting_points(base: XGBoostConfig, space: Mapping[str, SearchDimension]) -> list[dict[str, Any]]:
    """The trials a new study starts from: ``base``'s values and XGBoost's library defaults,
    each clipped into the space (a log scale's floor stands for 0), duplicates dropped."""
    points: list[dict[str, Any]] = []
    for config in (base, XGBoostDefaultsConfig()):
        point: dict[str, Any] = {}
        for name, dim in space.items():
            value = min(max(float(getattr(config, name)), dim.low), dim.high)
            point[name] = round(value) if dim.kind == "int" else value
        if point not in points:
            points.append(point)
    return points


def tune_xgboost(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    X_valid: pd.DataFrame | None,
    y_valid: pd.Series | None,
    base: XGBoostConfig,
    settings: TuningSettings,
    seed: int,
    storage: str | os.PathLike[str],
    study_name: str,
    on_trial: Callable[[FrozenTrial], None] | None = None,
    *,
    groups: pd.Series | None = None,
    monotone: Mapping[str, int] | None = None,
) -> TuningResult:
    """Create or resume the study and run the trials it still lacks; return the best.

    With ``settings.objective == "cv"`` only ``X_train``/``y_train`` are used: the folds
    are drawn inside the training split (``X_valid``/``y_valid`` may be ``None``).
    ``groups`` (for example the customer id) keeps each group inside one fold.
    ``monotone`` maps feature names to XGBoost monotone constraints (1, -1), as
    :func:`scoring.models.training.train_xgboost` takes them: pass the final model's, so trials tune
    the model that will be trained.
    With ``"valid"`` the booster fits on train and is scored on the validation split.

    The study holds ``settings.n_trials`` finished trials afterwards unless the time
    budget ran out first; a rerun with the same arguments then runs nothing, and one with
    a larger ``n_trials`` runs only the difference. ``on_trial`` is called with every
    finished trial (complete or pruned) in this process, for example
    :func:`mlflow_trial_logger`'s callback. ``best_config`` is ``base`` with the best
    trial's parameters; each trial's mean early-stopped round count is its user attribute
    ``best_iteration`` (``best_n_rounds`` in the result).
    """
    y_fit = _labels(y_train, "train")
    y_eval: np.ndarray | None = None
    if settings.objective == "valid":
        if X_valid is None or y_valid is None:
            raise ValueError("objective 'valid': expected X_valid and y_valid, got None")
        y_eval = _labels(y_valid, "valid")
    if groups is not None and (settings.objective != "cv" or len(groups) != len(X_train)):
        raise ValueError(
            f"groups: expected one value per training row ({len(X_train)}) with objective 'cv', "
            f"got {len(groups)} values with objective {settings.objective!r}"
        )
    if len(y_fit) != len(X_train):
        raise ValueError(f"y_train: expected {len(X_train)} labels (one per row), got {len(y_fit)}")

    nthread = settings.n_jobs or base.n_jobs
    label = storage_label(storage)
    direction: Literal["maximize", "minimize"] = "maximize" if settings.metric == "auc" else "minimize"
    metric_name = f"{settings.objective}_{settings.metric}"
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=settings.n_startup_trials, n_warmup_steps=0)
        if settings.pruning
        else optuna.pruners.NopPruner()
    )

    def sampler(number: int) -> optuna.samplers.TPESampler:
        return optuna.samplers.TPESampler(
            n_startup_trials=settings.n_startup_trials, seed=_trial_seed(seed, number)
        )

    study = optuna.create_study(
        storage=open_storage(storage),
        study_name=study_name,
        direction=direction,
        sampler=sampler(0),
        pruner=pruner,
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise ValueError(
            f"study {study_name!r} in {label}: stored direction {study.direction.name.lower()}, "
            f"but metric {settings.metric!r} needs {direction}"
        )
    validation = (X_valid, y_eval) if settings.objective == "valid" else (None, None)
    digest = data_digest(X_train, y_fit, *validation, None if groups is None else groups.to_numpy())
    constraints = None
    if monotone:
        unknown = sorted(set(monotone) - set(map(str, X_train.columns)))
        if unknown or not set(monotone.values()) <= {-1, 0, 1}:
            raise ValueError(
                f"monotone: expected training columns mapped to -1, 0 or 1, got {dict(monotone)} "
                f"(not columns: {unknown})"
            )
        # In column order, as train_xgboost writes them; unnamed columns are unconstrained.
        constraints = constraint_string(X_train.columns, monotone)
    fingerprint = _fingerprint(base, settings, seed, digest, groups is not None, constraints)
    _check_fingerprint(study, fingerprint, label)

    if settings.enqueue_defaults and not study.get_trials(deepcopy=False):
        for start in starting_points(base, settings.space):
            study.enqueue_trial(start, skip_if_exists=True)
    finished = _count(study, FINISHED)
    missing = max(0, settings.n_trials - finished)
    logger.info(
        "tuning: study %r in %s holds %d finished trials; running up to %d more (%s, %s)",
        study_name,
        label,
        finished,
        missing,
        settings.objective,
        settings.metric,
    )
    callbacks: list[Callable[[optuna.Study, FrozenTrial], None]] = []
    if on_trial is not None:
        callbacks.append(lambda _study, trial: on_trial(trial))

    new = 0
    stopped_by_time = False
    if missing:
        folds = _folds(X_train, y_fit, X_valid, y_eval, settings, seed, groups, nthread)
        objective = _objective(folds, base, settings, seed, nthread, metric_name, constraints)
        started = time.monotonic()
        while new < missing:
            spent = time.monotonic() - started
            # As in optuna, the budget is checked between trials: the first always runs.
            if new and settings.timeout_seconds is not None and spent >= settings.timeout_seconds:
                logger.warning(
                    "tuning: STOPPED BY THE TIME LIMIT of %.0f s after %d new trials, %d of %d "
                    "finished: the model depends on this machine's speed; rerun to continue, or "
                    "set tune.timeout_seconds: null",
                    settings.timeout_seconds,
                    new,
                    _count(study, FINISHED),
                    settings.n_trials,
                )
                stopped_by_time = True
                break
            # Re-seed from the trial number: a resumed study samples what an uninterrupted one would.
            study.sampler = sampler(len(study.get_trials(deepcopy=False)))
            study.optimize(objective, n_trials=1, callbacks=callbacks)
            new += 1
            if _count(study, FINISHED) >= settings.n_trials:  # other workers count too
                break

    # The first n_trials finished trials by number: a study that holds more (an earlier run asked
    # for more) gives the model the count in params asks for, not the one its history holds.
    finished_trials = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number)
    counted = [t for t in finished_trials[: settings.n_trials] if t.state == TrialState.COMPLETE]
    if not counted:
        raise RuntimeError(f"study {study_name!r} in {label} has no complete trial to take parameters from")
    sign = -1.0 if direction == "maximize" else 1.0  # the best first; ties to the earlier trial
    best = min(counted, key=lambda t: (sign * float(t.value if t.value is not None else math.nan), t.number))
    best_config = XGBoostConfig.model_validate({**base.model_dump(), **best.params})
    result = TuningResult(
        best_params=dict(best.params),
        best_value=float(best.value if best.value is not None else math.nan),
        best_config=best_config,
        best_trial_number=best.number,
        best_n_rounds=int(best.user_attrs.get("best_iteration", -1)) + 1,
        metric_name=metric_name,
        direction=direction,
        n_trials_total=min(_count(study, FINISHED), settings.n_trials),
        n_trials_new=new,
        n_trials_pruned=sum(t.state == TrialState.PRUNED for t in finished_trials[: settings.n_trials]),
        study_name=study_name,
        storage=os.fspath(storage),
        stopped_by_time_limit=stopped_by_time,
    )
    logger.info(
        "tuning: best %s %.5f (trial %d) after %d trials, %d pruned; %s",
        metric_name,
        result.best_value,
        result.best_trial_number,
        result.n_trials_total,
        result.n_trials_pruned,
        result.best_params,
    )
    return result


def load_study(result: TuningResult) -> optuna.Study:
    return optuna.load_study(study_name=result.study_name, storage=open_storage(result.storage))


# --------------------------------------------------------------------------- the tune stage


def tuning_settings(config: TuneConfig, worker: bool = False) -> TuningSettings:
    """The settings of params' ``tune`` section; a ``worker`` (one of several processes adding
    trials to a shared study) runs one thread per trial."""
    return TuningSettings(
        n_trials=config.n_trials,
        timeout_seconds=config.timeout_seconds,
        objective=config.objective,
        cv_folds=config.cv_folds,
        metric=config.metric,
        space={name: SearchDimension(**dim.model_dump()) for name, dim in config.space.items()},
        pruning=config.pruning,
        n_startup_trials=config.n_startup_trials,
        max_boost_rounds=config.max_boost_rounds,
        early_stopping_rounds=config.early_stopping_rounds,
        n_jobs=1 if worker else None,
    )


def study_name(
    config: TuneConfig, matrix: pd.DataFrame, target: pd.Series, monotone: Mapping[str, int]
) -> str:
    """One study per training matrix and search definition; n_trials and the time budget excluded,
    so a rerun with more trials finds the same study and resumes it, while new data, new
    features or a new search start a study of their own instead of clashing with the old one."""
    definition = config.model_dump(mode="json", exclude={"n_trials", "timeout_seconds", "storage", "enabled"})
    digest = hashlib.sha256(frame_digest(matrix).encode())
    digest.update(frame_digest(target.to_frame()).encode())
    digest.update(json.dumps([definition, dict(monotone)], sort_keys=True).encode())
    return f"{config.study_name}-{digest.hexdigest()[:12]}"


@dataclass(frozen=True)
class TuningJob:
    """The tune stage's study, ready to run: its data, constraints, settings and name."""

    X_train: pd.DataFrame
    y_train: pd.Series
    X_valid: pd.DataFrame | None
    y_valid: pd.Series | None
    groups: pd.Series | None
    monotone: dict[str, int]
    settings: TuningSettings
    study_name: str

    def run(
        self,
        base: XGBoostConfig,
        seed: int,
        storage: str | os.PathLike[str],
        on_trial: Callable[[FrozenTrial], None] | None = None,
    ) -> TuningResult:
        """:func:`tune_xgboost` on this job's data, in ``storage``."""
        return tune_xgboost(
            self.X_train,
            self.y_train,
            self.X_valid,
            self.y_valid,
            base,
            self.settings,
            seed,
            storage,
            self.study_name,
            on_trial=on_trial,
            groups=self.groups,
            monotone=self.monotone,
        )


# beyond this many times tune.max_rows, the trials' fold is drawn from a by-customer sample
PRE_SAMPLE_FACTOR = 3


def tuning_sample(train: pd.DataFrame, spec: DatasetSpec, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The training rows the trials read: all of them up to ``max_rows``; beyond, one fold of a
    stratified split into ``ceil(n / max_rows)`` folds (by customer where the dataset has
    one, so a customer is never split), seeded, in the original row order.

    Beyond ``PRE_SAMPLE_FACTOR * max_rows`` rows the fold is drawn from a seeded by-customer
    sample of that many rows (:func:`scoring.data.sampling.in_sample`, the fit sample's rule):
    scikit-learn's StratifiedGroupKFold loops in Python over every customer and fold, which
    took more than a quarter of an hour on a 1M-row training sample (50 folds).
    """
    if max_rows is None or len(train) <= max_rows:
        return train
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    from scoring.data.sampling import in_sample, sample_key

    rate = PRE_SAMPLE_FACTOR * max_rows / len(train)
    if rate < 1.0:
        before = len(train)
        # its own hash (seed + 1): the fit sample's (seed) would keep a nested, larger share
        train = train.loc[in_sample(train, sample_key(spec), rate, seed + 1)]
        logger.info("tuning: %d of %d training rows pre-sampled by customer", len(train), before)

    n_folds = math.ceil(len(train) / max_rows)
    y = train[spec.target_column].to_numpy()
    positions = np.arange(len(train))
    if spec.customer_column and spec.customer_column in train.columns:
        splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed % 2**32)
        _, chosen = next(splitter.split(positions, y, groups=train[spec.customer_column].to_numpy()))
    else:
        _, chosen = next(
            StratifiedKFold(n_folds, shuffle=True, random_state=seed % 2**32).split(positions, y)
        )
    logger.info(
        "tuning: trials read %d of %d training rows (tune.max_rows %d)", len(chosen), len(train), max_rows
    )
    return train.iloc[np.sort(chosen)]


def tuning_job(
    config: TuneConfig,
    features: ApplicationFeatures,
    train: pd.DataFrame,
    valid: pd.DataFrame | None,
    spec: DatasetSpec,
    context: FitContext,
    worker: bool = False,
) -> TuningJob:
    """The study params' ``tune`` section asks for on the ``train`` applications (and ``valid``,
    needed with objective ``valid`` only): the fitted ``features``' matrices, the dataset's
    customers as CV groups, and the monotone constraints of the final fit (``context``), so
    the trials tune the model that will be trained."""
    train = tuning_sample(train, spec, config.max_rows, context.seed)
    matrix = features.transform(train)
    target = train[spec.target_column]
    monotone = context.numeric_directions(matrix)
    if config.objective != "valid":
        valid = None
    return TuningJob(
        X_train=matrix,
        y_train=target,
        X_valid=None if valid is None else features.transform(valid),
        y_valid=None if valid is None else valid[spec.target_column],
        groups=train[spec.customer_column] if spec.customer_column else None,
        monotone=monotone,
        settings=tuning_settings(config, worker),
        study_name=study_name(config, matrix, target, monotone),
    )


def tuning_document(result: TuningResult, objective: str) -> dict[str, Any]:
    """What the tune stage writes (models/tuned_xgboost.json) and the train stage reads."""
    return {
        "enabled": True,
        "study_name": result.study_name,
        "best_params": result.best_params,
        "best_value": result.best_value,
        "metric": result.metric_name,
        "objective": objective,
        "best_trial_number": result.best_trial_number,
        "best_n_rounds": result.best_n_rounds,
        "n_trials_total": result.n_trials_total,
        "n_trials_pruned": result.n_trials_pruned,
        # n_trials_new (what this run added) stays in the log and MLflow: it depends on the
        # study's history, and the file must not (the same data and params, the same bytes).
        "stopped_by_time_limit": result.stopped_by_time_limit,
    }


# --------------------------------------------------------------------------- reports


def _save_figure(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_study(study: optuna.Study | TuningResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``optimisation_history.png`` and ``param_importances.png`` into ``out_dir``.

    Both files are always written, so a pipeline can declare them: parameter importance
    needs at least two complete trials with varying values, and otherwise the figure says so.
    """
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as optuna_plots

    if isinstance(study, TuningResult):
        study = load_study(study)
    out = Path(out_dir)
    paths = [out / HISTORY_PLOT, out / IMPORTANCE_PLOT]
    names = {t.user_attrs.get("metric_name") for t in study.get_trials(deepcopy=False)}
    target = str(names.pop()) if len(names) == 1 and None not in names else "Objective value"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        ax = optuna_plots.plot_optimization_history(study, target_name=target)
        ax.set_title(f"Optimisation history: {study.study_name}")
        _finish(ax.figure, paths[0])

        n_complete = _count(study, (TrialState.COMPLETE,))
        reason = None
        if n_complete < 2:
            reason = f"parameter importance needs at least 2 complete trials; the study has {n_complete}"
        else:
            try:
                ax = optuna_plots.plot_param_importances(study, target_name=target)
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                reason = f"parameter importance could not be computed: {exc}"
        if reason is not None:
            logger.warning("tuning: %s", reason)
            _, ax = plt.subplots(figsize=(6.4, 4.8))
            ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True)
            ax.set_axis_off()
        ax.set_title("", loc="left")  # optuna's own title sits there
        ax.set_title(f"Parameter importance for {target}: {study.study_name}")
        _finish(ax.figure, paths[1])
    return paths


def _finish(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.set_size_inches(8, 5)
    fig.tight_layout()
    try:
        _save_figure(fig, path)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- MLflow


def _millis(moment: Any) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def mlflow_trial_logger(
    parent_run_id: str,
    tracking_uri: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Callable[[FrozenTrial], None]:
    """An ``on_trial`` callback that records each finished trial as a child run of the parent.

    It talks to the store through its own ``MlflowClient`` (``tracking_uri``, else MLflow's
    configured one), so it works the same in every worker process and leaves the caller's
    active run alone. Each child run holds the trial's parameters, its objective value,
    per-fold (or per-round) intermediate values, ``best_iteration``, and its optuna state as
    tag ``optuna.state``; pruned trials end FINISHED (they ran as intended), failed ones FAILED.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    extra = dict(tags or {})

    def log_trial(trial: FrozenTrial) -> None:
        start = _millis(trial.datetime_start) or int(time.time() * 1000)
        end = _millis(trial.datetime_complete) or start
        run = client.create_run(
            experiment_id,
            start_time=start,
            run_name=f"trial-{trial.number:04d}",
            tags={
                "mlflow.parentRunId": parent_run_id,
                "optuna.trial_number": str(trial.number),
                "optuna.state": trial.state.name,
                "optuna.worker": str(trial.user_attrs.get("worker", "")),
                **extra,
            },
        )
        name = str(trial.user_attrs.get("metric_name", "value"))
        metrics = [
            Metric(f"{name}_step", float(v), end, int(step)) for step, v in trial.intermediate_values.items()
        ]
        if trial.value is not None:
            metrics.append(Metric(name, float(trial.value), end, 0))
        if "best_iteration" in trial.user_attrs:
            metrics.append(Metric("best_iteration", float(trial.user_attrs["best_iteration"]), end, 0))
        params = [Param(key, str(value)) for key, value in sorted(trial.params.items())]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        status = "FAILED" if trial.state == TrialState.FAIL else "FINISHED"
        client.set_terminated(run.info.run_id, status=status, end_time=end)

    return log_trial
