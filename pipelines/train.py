"""DVC stage `train`: the scorecard baseline, the XGBoost challenger, their blend, and the champion.

The protocol is scoring.models.training.fit_candidates (params train.fit_on): the challenger, with the
tuned hyper-parameters when the tune stage produced them, is trained on the train split with
early stopping on the validation split, which fixes its round count. With the default
``fit_on: train_valid`` both models are then refitted per fold over train+valid, the rule in
params (train.champion) picks the champion among the scorecard, the challenger and the blend of
their log-odds on the out-of-fold AUC, and the exported models are refitted on train+valid; the
champion's out-of-fold predictions are written for the calibrate stage (``--calibration-set``),
which fits the calibrator and the master scale on them. With ``fit_on: train`` the models never
see valid and calibration is fitted on their predictions there.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scipy.special import expit

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import atomic_path, file_sha256, read_json, read_parquet, write_json, write_parquet
from scoring.features.transformer import ApplicationFeatures
from scoring.models.model import (
    BLEND_FILE,
    BOOSTER_FILE,
    CHAMPION_FILE,
    SCORECARD_FILE,
    BlendEstimator,
    BoosterEstimator,
    save_estimator,
)
from scoring.models.training import blend_log_odds, fit_candidates, with_tuned_parameters
from scoring.reporting.metrics import discrimination_metrics
from scoring.runtime import run_stage
from scoring.tracking import InputFrame, flatten, git_commit, log_input_datasets, log_metrics, mlflow_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--tuned", required=True, help="best parameters from the tune stage")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--scorecard-table", required=True, help="CSV; a JSON twin is written beside it")
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument(
        "--calibration-set",
        required=True,
        help="held-out log-odds the calibrate stage is fitted on (Parquet)",
    )
    parser.add_argument("--validation-summary", required=True, help="logged with the run")
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    features = ApplicationFeatures.from_dict(json.loads(Path(args.features).read_text(encoding="utf-8")))
    train, valid = read_parquet(args.train), read_parquet(args.valid)
    X_train, X_valid = features.transform(train), features.transform(valid)
    y_train, y_valid = train[spec.target_column], valid[spec.target_column]
    model_dir = Path(args.model_dir)

    xgb_config, tuned = with_tuned_parameters(params.train.xgboost, read_json(args.tuned))
    fitted = fit_candidates(X_train, y_train, X_valid, y_valid, params.train, xgb_config, params.seed)
    decision, scorecard, challenger = fitted.decision, fitted.scorecard, fitted.challenger
    booster = BoosterEstimator(fitted.booster)
    blend = BlendEstimator(scorecard, booster, decision.blend_weight)
    save_estimator(blend, model_dir / BLEND_FILE)  # writes booster.ubj and scorecard.json too
    write_parquet(args.calibration_set, fitted.calibration)
    table = scorecard.table()
    with atomic_path(args.scorecard_table) as tmp:
        table.to_csv(tmp, index=False)
    write_json(Path(args.scorecard_table).with_suffix(".json"), table.to_dict(orient="records"))

    # Each candidate on the held-out predictions calibration reads: out of fold over
    # train+valid (fit_on train_valid) or on valid (fit_on train). The exported models' own
    # figures on valid would be in-sample once they are refitted on it.
    held_out = fitted.calibration
    y_held = held_out["target"].to_numpy(dtype=float)
    z_card, z_xgb = held_out["scorecard"].to_numpy(), held_out["xgboost"].to_numpy()
    held_out_log_odds = {
        "scorecard": z_card,
        "xgboost": z_xgb,
        "blend": blend_log_odds(z_card, z_xgb, decision.blend_weight),
    }
    held_out_metrics = {
        name: discrimination_metrics(y_held, expit(z)) for name, z in held_out_log_odds.items()
    }
    held_out_key = "oof" if fitted.calibration_source == "out_of_fold" else "valid"
    selection_key = f"{decision.selection}_auc"
    write_json(
        model_dir / CHAMPION_FILE,
        {
            **decision.to_dict(),
            "rule": params.train.champion.model_dump(mode="json", exclude={"n_jobs"}),
            # with fit_on train_valid the held-out figures are the out-of-fold ones in "auc"
            **(
                {"valid_auc": {name: m["auc"] for name, m in held_out_metrics.items()}}
                if held_out_key == "valid"
                else {}
            ),
            "fit_on": fitted.fit_on,
            "fit_splits": fitted.fit_splits,
            "n_fit": fitted.n_fit,
            "n_rounds": challenger.n_trees,
        },
    )
    summary = {
        "champion": decision.champion,
        "champion_reason": decision.reason,
        "champion_selection": decision.selection,
        "xgboost": {
            "best_iteration": challenger.best_iteration,
            "n_trees": challenger.n_trees,
            "valid_logloss": challenger.best_valid_logloss,
            "tuned": tuned,
            selection_key: decision.auc["xgboost"],
            held_out_key: held_out_metrics["xgboost"],
        },
        "scorecard": {
            "n_features": len(scorecard.selected_features),
            selection_key: decision.auc["scorecard"],
            held_out_key: held_out_metrics["scorecard"],
        },
        "blend": {
            "scorecard_weight": decision.blend_weight,
            selection_key: decision.auc["blend"],
            held_out_key: held_out_metrics["blend"],
        },
        "n_train": len(train),
        "n_valid": len(valid),
        "fit_on": fitted.fit_on,
        "n_fit": fitted.n_fit,
        "calibration_source": fitted.calibration_source,
    }
    write_json(args.summary, summary)

    import mlflow

    with mlflow_run(params.export.experiment_name, run_name="train") as run:
        mlflow.log_params(flatten(params.model_dump(mode="json", by_alias=True)))
        mlflow.log_params({f"xgboost_used.{k}": v for k, v in xgb_config.model_dump().items()})
        mlflow.set_tags(
            {
                "git_commit": git_commit() or "unknown",
                "data_source": spec.source,
                "train_data_sha256": file_sha256(args.train),
                "valid_data_sha256": file_sha256(args.valid),
                "champion": decision.champion,
                "champion_reason": decision.reason,
                "champion_selection": decision.selection,
                "champion_blend_weight": str(decision.blend_weight),
                "fit_on": fitted.fit_on,
            }
        )
        # The rows behind the run, in its Dataset column. Valid only early-stops the challenger
        # with fit_on train, but the exported models are refitted on it with train_valid.
        valid_context = "training" if "valid" in fitted.fit_splits else "validation"
        log_input_datasets(
            [InputFrame(train, args.train, "training"), InputFrame(valid, args.valid, valid_context)],
            name=spec.source,
            targets=spec.target_column,
        )
        log_metrics(summary, prefix="train.")
        log_metrics(read_json(args.validation_summary), prefix="validation.")
        mlflow.log_artifact(args.validation_summary, artifact_path="validation")
        for name in (BOOSTER_FILE, SCORECARD_FILE, BLEND_FILE, CHAMPION_FILE):
            mlflow.log_artifact(str(model_dir / name), artifact_path="model_files")
        mlflow.log_artifact(args.features, artifact_path="model_files")
        mlflow.log_artifact(args.scorecard_table, artifact_path="scorecard")
        write_json(args.run_info, {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id})


if __name__ == "__main__":
    run_stage(main)
