"""DVC stage `calibrate`: PD calibration and the master scale on the train stage's held-out
predictions, then grades, decisions and suggested limits with their tests on test and
out-of-time. The calibrated PD against the synthetic truth is measured by `evaluate`, the only
stage that reads the truth.

The calibration set (``--calibration-set``, written by `train`) holds each candidate's and the
champion's uncalibrated log-odds on rows the model that scored them never saw: out-of-fold over
train+valid when the exported models are refitted there (params train.fit_on: train_valid, the
default), or on the validation split when they are fitted on train only.
The work is scoring.decision.calibrate.calibrate_champion.
"""

from __future__ import annotations

from scoring.core.io import atomic_path, read_parquet, write_json
from scoring.decision.calibrate import ASSESSED, calibrate_champion, swap_pair
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, MASTER_SCALE_FILE
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params, bundle = stage.params, stage.bundle
    champion = bundle.read(CHAMPION_FILE)
    pair = swap_pair(champion["champion"], bundle.candidate_names(), champion.get("auc", {}))
    result = calibrate_champion(
        read_parquet(stage.path("calibration_set")),
        {name: read_parquet(stage.path("split_dir") / f"{name}.parquet") for name in ASSESSED},
        bundle.load_model(),
        champion,
        stage.spec,
        params.calibrate,
        params.policy,
        params.limits,
        params.seed,
        swap_models=None if pair is None else (bundle.load_model(pair[0]), bundle.load_model(pair[1])),
    )

    bundle.write(CALIBRATOR_FILE, result.layer.calibrator.to_dict())
    bundle.write(MASTER_SCALE_FILE, result.layer.scale.to_dict())
    tables_dir = stage.path("tables_dir")
    for name, table in result.grade_tables.items():
        with atomic_path(tables_dir / f"grades_{name}.csv") as tmp:
            table.to_csv(tmp, index=False)
    write_json(stage.path("report"), result.report)
    write_json(stage.path("metrics"), result.metrics)

    with stage.mlflow_run():
        import mlflow

        from scoring.tracking import log_metrics

        log_metrics(result.metrics, prefix="calibrate.")
        mlflow.log_artifact(str(stage.path("report")), artifact_path="calibrate")
        for path in sorted(tables_dir.glob("grades_*.csv")):
            mlflow.log_artifact(str(path), artifact_path="calibrate")


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "split_dir",
        "dataset",
        "calibration_set",
        "run_info",
        "metrics",
        "report",
        "tables_dir",
    )
