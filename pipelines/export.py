"""DVC stage `export`: one MLflow pyfunc model (from code, no pickle) that scores raw applications
into the full output of scoring.serving.scorer, registered in the local registry under the alias
"champion"."""

from __future__ import annotations

from scoring.core.io import read_parquet
from scoring.export import CHAMPION_ALIAS, export_model, register_model
from scoring.serving.scorer import model_info
from scoring.stages import Stage, run

ARTIFACT_PATH = "pd_model"


def main(stage: Stage) -> None:
    params, run_info = stage.params, stage.run_info
    info = model_info(params, run_info)
    example = read_parquet(stage.path("example"))
    out = export_model(stage.bundle.root, stage.path("out"), stage.spec, example, info, params)

    import mlflow

    with stage.mlflow_run():
        mlflow.log_artifacts(str(out), artifact_path=ARTIFACT_PATH)
        version = register_model(run_info["run_id"], ARTIFACT_PATH, params.export.model_name, CHAMPION_ALIAS)
        mlflow.set_tag("registered_model_version", version)


if __name__ == "__main__":
    run(__doc__, main, "model_dir", "dataset", "example", "run_info", "out")
