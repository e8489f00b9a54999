"""DVC stage `tune`: optuna search over the XGBoost challenger's hyper-parameters.

The objective sees the training split only (cross-validation folds inside it, customers kept
whole) unless params choose the validation split. The study lives in params' storage (a
journal file by default, kept between runs), so raising `tune.n_trials` resumes it, and more
workers can join it: `python pipelines/tune.py ... --worker` from another process or machine
pointed at the same storage. Every trial is an MLflow child run of this stage's run.
The work is scoring.models.tuning (tuning_job, then its run).
"""

from __future__ import annotations

from pathlib import Path

from scoring.core.io import read_json, write_json
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import FitContext
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    config = params.tune
    if not config.enabled:
        write_json(stage.path("out"), {"enabled": False, "best_params": {}})
        stage.path("plots_dir").mkdir(parents=True, exist_ok=True)
        if "://" not in config.storage:  # the study file is a DVC output: an empty journal, no trials
            Path(config.storage).parent.mkdir(parents=True, exist_ok=True)
            Path(config.storage).touch()
        return

    import optuna

    from scoring.models.tuning import mlflow_trial_logger, plot_study, tuning_document, tuning_job

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    storage = config.storage
    if "://" not in storage:
        Path(storage).parent.mkdir(parents=True, exist_ok=True)
    job = tuning_job(
        config,
        ApplicationFeatures.from_dict(read_json(stage.path("features"))),
        # the fit sample (params sample_rows); tune.max_rows then picks the trials' rows from it
        stage.read_sample(stage.path("train")),
        stage.read_sample(stage.path("valid")) if config.objective == "valid" else None,
        stage.spec,
        # The same constraints as the final fit, or the trials would tune another model.
        FitContext(params.seed, params.train.monotone_risk),
        worker=stage.flag("worker"),
    )

    import mlflow

    from scoring.core.store import tracking_uri
    from scoring.tracking import flatten, git_commit

    with stage.mlflow_run(run_name="tune", new=True) as run_:
        mlflow.log_params(flatten(config.model_dump(mode="json"), prefix="tune."))
        mlflow.set_tags(
            {"git_commit": git_commit() or "unknown", "study_name": job.study_name, "storage": storage}
        )
        result = job.run(
            params.train.xgboost,
            params.seed,
            storage,
            on_trial=mlflow_trial_logger(run_.info.run_id, tracking_uri=tracking_uri()),
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
        for path in plot_study(result, stage.path("plots_dir")):
            mlflow.log_artifact(str(path), artifact_path="tuning")
        write_json(stage.path("out"), tuning_document(result, config.objective))


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
