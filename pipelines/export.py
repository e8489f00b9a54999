"""DVC stage `export`: one MLflow pyfunc model (from code, no pickle) that scores raw applications
into the full output of scoring.serving.scorer, registered in the local registry under the alias
"champion", its digest (the SHA-256 of the manifest over every file of the model) tagged on the
registered version and written to the stage's metrics. The model carries the monitoring reference
profile of its training rows (--reference)."""

from __future__ import annotations

from scoring.core.io import read_parquet, write_json
from scoring.export import CHAMPION_ALIAS, export_model, register_model
from scoring.serving.integrity import DIGEST_TAG, model_digest
from scoring.serving.scorer import model_info
from scoring.stages import Stage, run

ARTIFACT_PATH = "pd_model"


def main(stage: Stage) -> None:
    params = stage.params
    info = model_info(params)
    example = read_parquet(stage.path("example"))
    reference = read_parquet(stage.path("reference"))
    out = export_model(stage.bundle.root, stage.path("out"), stage.spec, example, info, params, reference)
    digest = model_digest(out)

    import mlflow

    with stage.mlflow_run() as run_:
        mlflow.log_artifacts(str(out), artifact_path=ARTIFACT_PATH)
        name = params.export.model_name
        version = register_model(run_.info.run_id, ARTIFACT_PATH, name, digest, CHAMPION_ALIAS)
        mlflow.set_tags({"registered_model_version": version, DIGEST_TAG: digest})
    write_json(
        stage.path("summary"),
        {
            "model_name": name,
            "alias": CHAMPION_ALIAS,
            "registered_version": version,
            "uri": f"models:/{name}@{CHAMPION_ALIAS}",
            "model_digest": digest,
            "path": str(out),
        },
    )


if __name__ == "__main__":
    run(__doc__, main, "model_dir", "dataset", "example", "reference", "run_info", "out", "summary")
