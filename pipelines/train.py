"""DVC stage `train`: every candidate of params train.candidates, and the champion among them.

The protocol is scoring.models.training.fit_candidates (params train.fit_on): each candidate is
settled on the train split (the challenger, with the tune stage's hyper-parameters, early-stops
on valid, which fixes its round count); with the default ``fit_on: train_valid`` every
candidate is then refitted per fold over train+valid, the rule in params (train.champion) picks
the champion on the out-of-fold AUC, and the exported models are refitted on train+valid. The
candidates' out-of-fold log-odds go to the calibrate stage (``--calibration-set``). With
``fit_on: train`` the models never see valid and calibration is fitted on their predictions there.

The analysts' bin overrides (``train.scorecard.bins_file``, the section of ``data.source``) are
read and checked against the training rows before anything is fitted; the scorecard applies them
wherever it is fitted. After training, the scorecard's selection evidence (IV ranking, drop
reasons, correlation and VIF, a stepwise check, each override's IV and AUC cost) goes to
``--selection`` (scoring.models.scorecard_selection).
"""

from __future__ import annotations

import shutil
from typing import Any

import pandas as pd

from scoring.core.io import (
    atomic_path,
    parquet_rows,
    path_sha256,
    read_json,
    read_parquet,
    write_json,
    write_parquet,
)
from scoring.core.settings import ConfigError
from scoring.data.split import development_rejects
from scoring.features.transformer import ApplicationFeatures
from scoring.models.config import TrainConfig, XGBoostConfig
from scoring.models.reject_inference import REFERENCE_FILE, RejectInferenceFit, fit_with_rejects
from scoring.models.scorecard_bins import BinOverrideError, check_against_features, load_bin_overrides
from scoring.models.training import FittedCandidates, champion_record, fit_candidates, with_tuned_parameters
from scoring.reporting.training import training_summary
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, FEATURES_FILE, ModelBundle
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params, spec = stage.params, stage.spec
    inference = params.reject_inference
    with_rejects = inference.enabled and inference.method != "accepts_only"
    if with_rejects and stage.on_dask:
        raise ConfigError(
            f"reject_inference.method {inference.method!r}: the dask engine trains on the accepts only; "
            "expected engine pandas, or reject_inference.method accepts_only"
        )
    features = ApplicationFeatures.from_dict(read_json(stage.path("features")))
    if stage.on_dask:  # the fit samples (every row up to sample_rows); the booster reads every row
        train, valid = stage.read_sample(stage.path("train")), stage.read_sample(stage.path("valid"))
    else:
        train, valid = read_parquet(stage.path("train")), read_parquet(stage.path("valid"))
    # the bin overrides, checked against the training rows before any fit
    config = _with_bin_overrides(stage, features, train)
    tuned_config, tuned = with_tuned_parameters(params.train.xgboost, read_json(stage.path("tuned")))
    overrides = {"xgboost": tuned_config} if "xgboost" in params.train.candidates else {}
    fit: RejectInferenceFit | None = None
    record: dict[str, Any] | None = None  # the reject-inference record (pandas engine only)
    if stage.on_dask:
        from scoring.core.partitioned import read_dask
        from scoring.models.training_dask import fit_candidates_dask

        # xgboost.dask on every row; the other candidates on a sample (the module's protocol)
        with stage.engine_client() as client:
            fitted = fit_candidates_dask(
                client,
                read_dask(stage.path("train")),
                read_dask(stage.path("valid")),
                features,
                spec.target_column,
                config,
                params.seed,
                overrides,
                sample_rows=params.sample_rows,
                group_column=spec.customer_column,
            )
        rows = (parquet_rows(stage.path("train")), parquet_rows(stage.path("valid")))
    else:
        if inference.enabled:
            fit = _fit_with_rejects(stage, config, features, train, valid, overrides, tuned_config)
            fitted, record = fit.fitted, fit.record
        else:
            fitted, record = _fit_pandas(stage, config, features, train, valid, overrides), None
        rows = (len(train), len(valid))
    _write_reference(stage, features, fit)
    _write_selection(stage, config, features, fitted, train, valid)
    _write(stage, fitted, train, valid, rows, tuned, tuned_config, record)


def _context(stage: Stage) -> dict[str, Any]:
    return {"overrides_file": stage.params.train.scorecard.bins_file, "source": stage.params.data.source}


def _with_bin_overrides(stage: Stage, features: ApplicationFeatures, train: pd.DataFrame) -> TrainConfig:
    """params.train with the overrides of the bins file for this data source, each checked
    against the scorecard's candidate variables on the training rows."""
    params = stage.params
    scorecard = params.train.scorecard
    try:
        bins = load_bin_overrides(scorecard.bins_file, params.data.source)
        if bins and "scorecard" in params.train.candidates:
            where = f"{scorecard.bins_file} {params.data.source}"
            check_against_features(bins, features.transform(train), scorecard.exclude_features, where)
    except BinOverrideError as error:
        raise ConfigError(str(error)) from error
    return params.train.with_bin_overrides(bins)


def _write_selection(
    stage: Stage,
    config: TrainConfig,
    features: ApplicationFeatures,
    fitted: FittedCandidates,
    train: pd.DataFrame,
    valid: pd.DataFrame,
) -> None:
    """The scorecard's selection evidence on the rows it was fitted on (a note of why not, when
    there is no scorecard or the engine is dask)."""
    from scoring.models.scorecard import ScorecardModel
    from scoring.models.scorecard_selection import not_computed, selection_evidence

    path = stage.path("selection")
    model = fitted.models.get("scorecard")
    if not isinstance(model, ScorecardModel):
        write_json(path, not_computed("no scorecard among train.candidates", _context(stage)))
        return
    if stage.on_dask:
        why = (
            "the dask engine fits the scorecard on a sample inside training; "
            "the evidence runs on the pandas engine"
        )
        write_json(path, not_computed(why, _context(stage)))
        return
    spec, params = stage.spec, stage.params
    X_train, X_valid = features.transform(train), features.transform(valid)
    y_train, y_valid = train[spec.target_column], valid[spec.target_column]
    if "valid" in fitted.fit_splits:
        X_fit = pd.concat([X_train, X_valid], ignore_index=True)
        y_fit = pd.concat([y_train, y_valid], ignore_index=True)
    else:
        X_fit, y_fit = X_train, y_train
    excluded = [c for c in config.scorecard.exclude_features if c in X_fit.columns]
    leaky = [c for c in params.validate_.leakage.post_application_columns if c in spec.drop_columns]
    evidence = selection_evidence(
        model,
        X_fit,
        y_fit.to_numpy(),
        params.seed,
        config_excluded=excluded,
        leakage_dropped=leaky,
        cost_data=(X_train.drop(columns=excluded), y_train, X_valid.drop(columns=excluded), y_valid),
        context=_context(stage),
    )
    write_json(path, evidence)


def _fit_with_rejects(
    stage: Stage,
    config: TrainConfig,
    features: ApplicationFeatures,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    overrides: dict[str, Any],
    tuned_config: XGBoostConfig,
) -> RejectInferenceFit:
    """Reject inference (params reject_inference): the candidates train on the accepts of train
    and the training period's declined applications, as the method builds them; the champion is
    chosen, and calibrated by the next stage, on valid: booked loans with observed outcomes.
    The accepts-only reference is fitted beside (scoring.models.reject_inference.fit_with_rejects)."""
    params, spec = stage.params, stage.spec
    last = pd.to_datetime(train[spec.date_column]).max() if spec.date_column else None
    rejects = development_rejects(
        read_parquet(stage.path("unlabelled")), spec, params.split, params.seed, last
    )
    return fit_with_rejects(
        features.transform(train),
        train[spec.target_column],
        features.transform(rejects["train"]),
        features.transform(valid),
        valid[spec.target_column],
        config,
        params.reject_inference,
        params.calibrate.calibration,
        params.seed,
        overrides,
        tuned_config,
    )


def _write_reference(stage: Stage, features: ApplicationFeatures, fit: RejectInferenceFit | None) -> None:
    """The accepts-only reference of a reject-inference method (evaluate compares the two on the
    test period's applicants), or a note of why there is none: the folder is a DVC output."""
    folder = stage.path("reference_dir")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if fit is None or fit.reference is None or fit.reference_calibrator is None:
        why = (
            "reject_inference.method is accepts_only: the champion is the accepts-only model"
            if fit is not None
            else "reject_inference is off (or the dask engine): no method to compare"
        )
        write_json(folder / REFERENCE_FILE, {"fitted": False, "why": why})
        return
    reference = ModelBundle(folder)
    reference.save_features(features)
    reference.save_candidates(fit.reference.models)
    reference.write(CHAMPION_FILE, champion_record(fit.reference, stage.params.train))
    reference.write(CALIBRATOR_FILE, fit.reference_calibrator.to_dict())
    write_json(
        folder / REFERENCE_FILE,
        {"fitted": True, "champion": fit.reference.decision.champion, "population": "booked loans of train"},
    )


def _fit_pandas(
    stage: Stage,
    config: TrainConfig,
    features: ApplicationFeatures,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    overrides: dict[str, Any],
) -> FittedCandidates:
    params, spec = stage.params, stage.spec
    return fit_candidates(
        features.transform(train),
        train[spec.target_column],
        features.transform(valid),
        valid[spec.target_column],
        config,
        params.seed,
        overrides,
        # customers kept whole in the champion's folds, as in the split and the tuning folds
        groups_train=train[spec.customer_column] if spec.customer_column else None,
        groups_valid=valid[spec.customer_column] if spec.customer_column else None,
    )


def _write(
    stage: Stage,
    fitted: FittedCandidates,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    rows: tuple[int, int],
    tuned: bool,
    tuned_config: Any,
    reject_inference: dict[str, Any] | None = None,
) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    model_files = bundle.save_candidates(fitted.models)
    champion = champion_record(fitted, params.train)
    if reject_inference is not None:  # the population the models and the calibration know
        champion["reject_inference"] = reject_inference
    bundle.write(CHAMPION_FILE, champion)
    write_parquet(stage.path("calibration_set"), fitted.calibration)
    if "scorecard" in fitted.models:
        table = fitted.models["scorecard"].table()  # type: ignore[attr-defined]
    else:
        table = pd.DataFrame(columns=["feature", "bin", "points"])
    with atomic_path(stage.path("scorecard_table")) as tmp:
        table.to_csv(tmp, index=False)
    write_json(stage.path("scorecard_table").with_suffix(".json"), table.to_dict(orient="records"))
    summary = training_summary(fitted, rows[0], rows[1], tuned)
    if reject_inference is not None:
        summary["reject_inference"] = reject_inference
    write_json(stage.path("summary"), summary)

    import mlflow

    from scoring.tracking import InputFrame, flatten, git_commit, log_input_datasets, log_metrics

    decision = fitted.decision
    with stage.mlflow_run(run_name="train", new=True) as run_:
        mlflow.log_params(flatten(params.model_dump(mode="json", by_alias=True)))
        if isinstance(tuned_config, XGBoostConfig):
            mlflow.log_params({f"xgboost_used.{k}": v for k, v in tuned_config.model_dump().items()})
        mlflow.set_tags(
            {
                "git_commit": git_commit() or "unknown",
                "data_source": spec.source,
                "train_data_sha256": path_sha256(stage.path("train")),
                "valid_data_sha256": path_sha256(stage.path("valid")),
                "champion": decision.champion,
                "champion_reason": decision.reason,
                "champion_selection": decision.selection,
                "candidates": ",".join(decision.auc),
                "fit_on": fitted.fit_on,
            }
        )
        # The rows behind the run, in its Dataset column. Valid only early-stops the challenger
        # with fit_on train, but the exported models are refitted on it with train_valid.
        valid_context = "training" if "valid" in fitted.fit_splits else "validation"
        log_input_datasets(
            [
                InputFrame(train, str(stage.path("train")), "training"),
                InputFrame(valid, str(stage.path("valid")), valid_context),
            ],
            name=spec.source,
            targets=spec.target_column,
        )
        log_metrics(summary, prefix="train.")
        log_metrics(read_json(stage.path("validation_summary")), prefix="validation.")
        mlflow.log_artifact(str(stage.path("validation_summary")), artifact_path="validation")
        for path in [*model_files, bundle.path(CHAMPION_FILE), bundle.path(FEATURES_FILE)]:
            relative = path.relative_to(bundle.root).parent.as_posix()
            mlflow.log_artifact(
                str(path), artifact_path="model_files" + ("" if relative == "." else f"/{relative}")
            )
        mlflow.log_artifact(str(stage.path("scorecard_table")), artifact_path="scorecard")
        mlflow.log_artifact(str(stage.path("selection")), artifact_path="scorecard")
        write_json(
            stage.path("run_info"), {"run_id": run_.info.run_id, "experiment_id": run_.info.experiment_id}
        )


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "train",
        "valid",
        "dataset",
        "features",
        "tuned",
        "model_dir",
        "scorecard_table",
        "run_info",
        "summary",
        "calibration_set",
        "validation_summary",
        "unlabelled",
        "reference_dir",
        "selection",
    )
