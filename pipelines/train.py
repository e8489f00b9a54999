"""DVC stage `train`: the scorecard baseline, the XGBoost challenger, their blend, and the champion.

The challenger uses the tuned hyper-parameters when the tune stage produced them and stops
early on the validation split; the scorecard is fitted on the train split. The rule in params
(train.champion) picks the champion among the scorecard, the challenger and the blend of their
log-odds: by default on out-of-fold AUC over the train split (both models refitted per fold),
so no model is trained on, and no choice made on, the validation split that calibration and
the master scale are later fitted on. Every candidate's validation figures are reported.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scoring.config import load_params
from scoring.contract import DatasetSpec
from scoring.features import ApplicationFeatures
from scoring.io import atomic_path, file_sha256, read_json, read_parquet, write_json
from scoring.metrics import discrimination_metrics
from scoring.model import (
    BLEND_FILE,
    BOOSTER_FILE,
    CHAMPION_FILE,
    SCORECARD_FILE,
    BlendEstimator,
    BoosterEstimator,
    PDModel,
    save_estimator,
)
from scoring.runtime import run_stage
from scoring.tracking import flatten, git_commit, log_metrics, mlflow_run
from scoring.train import (
    CandidateRecipe,
    monotone_constraints,
    select_champion,
    train_scorecard,
    train_xgboost,
    with_tuned_parameters,
)


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
    monotone = monotone_constraints(X_train, params.train.monotone_risk)
    challenger = train_xgboost(X_train, y_train, X_valid, y_valid, xgb_config, params.seed, monotone)
    scorecard = train_scorecard(
        X_train, y_train, params.train.scorecard, params.train.monotone_risk, params.seed
    )
    recipe = CandidateRecipe(
        xgboost=xgb_config,
        n_rounds=challenger.n_trees,
        scorecard=params.train.scorecard,
        monotone_risk=params.train.monotone_risk,
        seed=params.seed,
    )
    decision = select_champion(
        params.train.champion, recipe, X_train, y_train, X_valid, y_valid, scorecard, challenger.booster
    )
    booster = BoosterEstimator(challenger.booster)
    blend = BlendEstimator(scorecard, booster, decision.blend_weight)
    save_estimator(blend, model_dir / BLEND_FILE)  # writes booster.ubj and scorecard.json too
    table = scorecard.table()
    with atomic_path(args.scorecard_table) as tmp:
        table.to_csv(tmp, index=False)
    write_json(Path(args.scorecard_table).with_suffix(".json"), table.to_dict(orient="records"))

    candidates = {
        "scorecard": PDModel(features, scorecard, "scorecard"),
        "xgboost": PDModel(features, booster, "xgboost"),
        "blend": PDModel(features, blend, "blend"),
    }
    valid_metrics = {
        name: discrimination_metrics(y_valid.to_numpy(dtype=float), model.predict_pd(valid))
        for name, model in candidates.items()
    }
    selection_key = f"{decision.selection}_auc"
    write_json(
        model_dir / CHAMPION_FILE,
        {
            **decision.to_dict(),
            "rule": params.train.champion.model_dump(mode="json", exclude={"n_jobs"}),
            "valid_auc": {name: m["auc"] for name, m in valid_metrics.items()},
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
            "valid": valid_metrics["xgboost"],
        },
        "scorecard": {
            "n_features": len(scorecard.selected_features),
            selection_key: decision.auc["scorecard"],
            "valid": valid_metrics["scorecard"],
        },
        "blend": {
            "scorecard_weight": decision.blend_weight,
            selection_key: decision.auc["blend"],
            "valid": valid_metrics["blend"],
        },
        "n_train": len(train),
        "n_valid": len(valid),
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
            }
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
