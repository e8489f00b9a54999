"""DVC stage `tune`: optuna search over the XGBoost challenger's hyper-parameters.

The objective sees the training split only (cross-validation folds inside it, customers kept
whole) unless params choose the validation split. The study lives in params' storage (a
journal file by default, kept between runs), so raising `tune.n_trials` resumes it, and more
workers can join it: `python pipelines/tune.py ... --worker` from another process or machine
pointed at the same storage. Every trial is an MLflow child run of this stage's run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import pandas as pd

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import frame_digest, read_parquet, write_json
from scoring.features.transformer import ApplicationFeatures
from scoring.models.config import TuneConfig
from scoring.models.training import monotone_constraints
from scoring.runtime import run_stage
from scoring.tracking import flatten, git_commit, mlflow_run, tracking_uri


def study_name(config: TuneConfig, matrix: pd.DataFrame, target: pd.Series, monotone: dict[str, int]) -> str:
    """One study per training matrix and search definition; n_trials and the time budget excluded,
    so a rerun with more trials finds the same study and resumes it, while new data, new
    features or a new search start a study of their own instead of clashing with the old one."""
    definition = config.model_dump(mode="json", exclude={"n_trials", "timeout_seconds", "storage", "enabled"})
    digest = hashlib.sha256(frame_digest(matrix).encode())
    digest.update(frame_digest(target.to_frame()).encode())
    digest.update(json.dumps([definition, monotone], sort_keys=True).encode())
    return f"{config.study_name}-{digest.hexdigest()[:12]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True, help="best parameters, for the train stage")
    parser.add_argument("--plots-dir", required=True)
    parser.add_argument("--worker", action="store_true", help="only add trials to the shared study")
    args = parser.parse_args()

    params = load_params(args.params)
    config = params.tune
    if not config.enabled:
        write_json(args.out, {"enabled": False, "best_params": {}})
        Path(args.plots_dir).mkdir(parents=True, exist_ok=True)
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

    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    features = ApplicationFeatures.from_dict(json.loads(Path(args.features).read_text(encoding="utf-8")))
    train = read_parquet(args.train)
    valid = read_parquet(args.valid) if config.objective == "valid" else None
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
        n_jobs=1 if args.worker else None,
    )
    storage = config.storage
    if "://" not in storage:
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
    groups = train[spec.customer_column] if spec.customer_column else None
    matrix = features.transform(train)
    # The same constraints as the final fit, or the trials would tune another model.
    monotone = monotone_constraints(matrix, params.train.monotone_risk)
    name = study_name(config, matrix, train[spec.target_column], monotone)

    import mlflow

    with mlflow_run(params.export.experiment_name, run_name="tune") as run:
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
            on_trial=mlflow_trial_logger(run.info.run_id, tracking_uri=tracking_uri()),
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
        if args.worker:
            return
        plots = plot_study(result, args.plots_dir)
        for path in plots:
            mlflow.log_artifact(str(path), artifact_path="tuning")
        write_json(
            args.out,
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
    run_stage(main)
