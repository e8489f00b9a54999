"""DVC stage `train`: the XGBoost challenger with early stopping on the validation split."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scoring.config import load_params
from scoring.contract import DatasetSpec
from scoring.features import ApplicationFeatures
from scoring.io import file_sha256, read_json, read_parquet, write_json
from scoring.model import save_booster
from scoring.runtime import run_stage
from scoring.tracking import flatten, git_commit, log_metrics, mlflow_run
from scoring.train import train_xgboost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--features", required=True)
    parser.add_argument("--booster", required=True)
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--validation-summary", required=True, help="logged with the run")
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    transformer = ApplicationFeatures.from_dict(json.loads(Path(args.features).read_text(encoding="utf-8")))
    train, valid = read_parquet(args.train), read_parquet(args.valid)
    result = train_xgboost(
        transformer.transform(train),
        train[spec.target_column],
        transformer.transform(valid),
        valid[spec.target_column],
        params.train.xgboost,
        params.seed,
    )
    save_booster(result.booster, args.booster)
    summary = {
        "best_iteration": result.best_iteration,
        "n_trees": result.n_trees,
        "valid_logloss": result.best_valid_logloss,
        "n_train": len(train),
        "n_valid": len(valid),
    }
    write_json(args.summary, summary)

    import mlflow

    with mlflow_run(params.export.experiment_name, run_name="train") as run:
        mlflow.log_params(flatten(params.model_dump(mode="json", by_alias=True)))
        mlflow.set_tags(
            {
                "git_commit": git_commit() or "unknown",
                "data_source": spec.source,
                "train_data_sha256": file_sha256(args.train),
                "valid_data_sha256": file_sha256(args.valid),
            }
        )
        log_metrics(summary, prefix="train.")
        log_metrics(read_json(args.validation_summary), prefix="validation.")
        mlflow.log_artifact(args.validation_summary, artifact_path="validation")
        mlflow.log_artifact(args.booster, artifact_path="model_files")
        mlflow.log_artifact(args.features, artifact_path="model_files")
        write_json(args.run_info, {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id})


if __name__ == "__main__":
    run_stage(main)
