"""DVC stage `tune`: optuna search over the XGBoost challenger's hyper-parameters.

The objective sees the training split only (cross-validation folds inside it, customers kept
whole) unless params choose the validation split. The study lives in params' storage (a
journal file by default, kept between runs), so raising `tune.n_trials` resumes it, and more
workers can join it: `python pipelines/tune.py ... --worker` from another process or machine
pointed at the same storage. Every trial is an MLflow child run of this stage's run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd

from scoring.core.io import frame_digest, read_json, read_parquet, write_json
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import FitContext
from scoring.models.config import TuneConfig
from scoring.stages import Stage, run


def study_name(config: TuneConfig, matrix: pd.DataFrame, target: pd.Series, monotone: dict[str, int]) -> str:
    """One study per training matrix and search definition; n_trials and the time budget excluded,
    so a rerun with more trials finds the same study and resumes it, while new data, new
    features or a new search start a study of their own instead of clashing with the old one."""
    definition = config.model_dump(mode="json", exclude={"n_trials", "timeout_seconds", "storage", "enabled"})
    digest = hashlib.sha256(frame_digest(matrix).encode())
    digest.update(frame_digest(target.to_frame()).encode())
    digest.update(json.dumps([definition, monotone], sort_keys=True).encode())
    return f"{config.study_name}-{digest.hexdigest()[:12]}"


def main(stage: Stage) -> None:
    params = stage.params
    config = params.tune
    if not config.enabled:
        write_json(stage.path("out"), {"enabled": False, "best_params": {}})
        stage.path("plots_dir").mkdir(parents=True, exist_ok=True)
        return

    import optuna

    from scoring.models.tuning import (
        SearchDimension,
        TuningSettings,
        mlflow_trial_logger,
        plot_study,
        tune_xgboost,
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    spec = stage.spec
    features = ApplicationFeatures.from_dict(read_json(stage.path("features")))
    train = read_parquet(stage.path("train"))
    valid = read_parquet(stage.path("valid")) if config.objective == "valid" else None
    settings = TuningSettings(
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
        n_jobs=1 if stage.flag("worker") else None,
    )
    storage = config.storage
    if "://" not in storage:
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
    groups = train[spec.customer_column] if spec.customer_column else None
    matrix = features.transform(train)
    # The same constraints as the final fit, or the trials would tune another model.
    monotone = FitContext(params.seed, params.train.monotone_risk).numeric_directions(matrix)
    name = study_name(config, matrix, train[spec.target_column], monotone)

    import mlflow

    from scoring.tracking import flatten, git_commit, tracking_uri

    with stage.mlflow_run(run_name="tune", new=True) as run_:
        mlflow.log_params(flatten(config.model_dump(mode="json"), prefix="tune."))
        mlflow.set_tags({"git_commit": git_commit() or "unknown", "study_name": name, "storage": storage})
        result = tune_xgboost(
            matrix,
            train[spec.target_column],
            None if valid is None else features.transform(valid),
            None if valid is None else valid[spec.target_column],
            params.train.xgboost,
            settings,
            params.seed,
            storage,
            name,
            on_trial=mlflow_trial_logger(run_.info.run_id, tracking_uri=tracking_uri()),
            groups=groups,
            monotone=monotone,
        )
        mlflow.log_metrics(
            {
                f"tune.best_{result.metric_name}": result.best_value,
                "tune.n_trials_total": result.n_trials_total,
                "tune.n_trials_new": result.n_trials_new,
                "tune.n_trials_pruned": result.n_trials_pruned,
            }
        )
        if stage.flag("worker"):
            return
        plots = plot_study(result, stage.path("plots_dir"))
        for path in plots:
            mlflow.log_artifact(str(path), artifact_path="tuning")
        write_json(
            stage.path("out"),
            {
                "enabled": True,
                "study_name": result.study_name,
                "best_params": result.best_params,
                "best_value": result.best_value,
                "metric": result.metric_name,
                "objective": config.objective,
                "best_trial_number": result.best_trial_number,
                "best_n_rounds": result.best_n_rounds,
                "n_trials_total": result.n_trials_total,
                "n_trials_new": result.n_trials_new,
                "n_trials_pruned": result.n_trials_pruned,
            },
        )


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "train",
        "valid",
        "dataset",
        "features",
        "out",
        "plots_dir",
        flags={"worker": "only add trials to the shared study"},
    )
