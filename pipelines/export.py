"""DVC stage `export`: one MLflow pyfunc model (from code, no pickle) that scores raw applications
into the full output of scoring.serving.scorer, registered in the local registry under the alias
"champion"."""

from __future__ import annotations

import argparse
from pathlib import Path

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_json, read_parquet
from scoring.export import CHAMPION_ALIAS, export_model, register_model
from scoring.runtime import run_stage
from scoring.serving.scorer import model_info
from scoring.tracking import mlflow_run

ARTIFACT_PATH = "pd_model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--example", required=True, help="applications to take the input example from")
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    run_info = read_json(args.run_info)
    info = model_info(params, run_info)
    out = export_model(Path(args.model_dir), args.out, spec, read_parquet(args.example), info, params)

    import mlflow

    with mlflow_run(params.export.experiment_name, run_id=run_info["run_id"]):
        mlflow.log_artifacts(str(out), artifact_path=ARTIFACT_PATH)
        version = register_model(run_info["run_id"], ARTIFACT_PATH, params.export.model_name, CHAMPION_ALIAS)
        mlflow.set_tag("registered_model_version", version)


if __name__ == "__main__":
    run_stage(main)
