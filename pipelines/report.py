"""DVC stage `report`: the reviewer report, one self-contained HTML file, logged to the MLflow run.

Reads what the earlier stages wrote (validation, split, train, calibrate, explain, evaluate),
scores test and out-of-time with every trained model for the confidence intervals and the
paired comparison, and renders the page with scoring.reporting.report.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.core.io import read_json, read_parquet, write_text
from scoring.models.calibration import Calibrator
from scoring.reporting.evaluation import PLOTTED_PARTS
from scoring.reporting.metrics import assess_performance
from scoring.reporting.report import (
    ReviewReport,
    curve_images,
    data_scope,
    decision_summary,
    explanations_from,
    render_html,
    stability_table,
)
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE
from scoring.stages import Stage, run

SCORE_COLUMN = "PD (champion)"


def main(stage: Stage) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    split_dir = stage.path("split_dir")
    metrics = read_json(stage.path("metrics"))
    champion_info = bundle.read(CHAMPION_FILE)
    champion = champion_info["champion"]
    models = {kind: bundle.load_model(kind) for kind in metrics["models"]}
    calibrator = Calibrator.from_dict(bundle.read(CALIBRATOR_FILE))

    outcomes: dict[str, np.ndarray] = {}
    scores: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in models}
    frames: dict[str, pd.DataFrame] = {}
    for name in PLOTTED_PARTS:
        frame = read_parquet(split_dir / f"{name}.parquet")
        if frame.empty:
            continue
        frames[name] = frame
        outcomes[name] = frame[spec.target_column].to_numpy(dtype=np.float64)
        for kind, model in models.items():
            scores[kind][name] = model.predict_pd(frame)
    ceilings = {
        name: float(metrics[name]["true_pd_auc"])
        for name in outcomes
        if metrics.get(name, {}).get("true_pd_auc") is not None
    }
    performance, comparisons = assess_performance(outcomes, scores, champion, ceilings)
    calibrated = {name: calibrator.predict(scores[champion][name]) for name in outcomes}
    curves = (
        curve_images(outcomes, scores, champion, calibrated, params.evaluate.calibration_bins)
        if outcomes
        else []
    )

    stability = pd.DataFrame(columns=["feature", "psi", "flag"])
    if "oot" in frames:
        train = read_parquet(split_dir / "train.parquet")
        model = models[champion]
        reference, recent = model.feature_matrix(train), model.feature_matrix(frames["oot"])
        reference[SCORE_COLUMN] = model.predict_pd(train)
        recent[SCORE_COLUMN] = scores[champion]["oot"]
        stability = stability_table(reference, recent, params.validate_.drift, score=SCORE_COLUMN)

    grades_dir = stage.path("grades_dir")
    grade_tables = {
        name: pd.read_csv(grades_dir / f"grades_{name}.csv")
        for name in PLOTTED_PARTS
        if (grades_dir / f"grades_{name}.csv").is_file()
    }
    explanations_dir = stage.path("explanations_dir")
    images = {p.name: p.read_bytes() for p in sorted(explanations_dir.glob("*.png"))}
    explanation_summary = read_json(explanations_dir / "summary.json")
    explanations = explanations_from(explanation_summary, images)
    calibration_report = read_json(stage.path("calibration_report"))

    run_info = stage.run_info
    report = ReviewReport(
        title="Reviewer report: probability-of-default model",
        run_id=run_info.get("run_id"),
        champion=champion_info,
        train_summary=read_json(stage.path("train_summary")),
        validation_summary=read_json(stage.path("validation_summary")),
        drift=read_json(stage.path("drift")),
        split_summary=read_json(stage.path("split_summary")),
        performance=performance,
        comparisons=comparisons,
        model_metrics=metrics["models"],
        curves=curves,
        grade_tables=grade_tables,
        calibration_report=calibration_report,
        stability=stability,
        drift_config=params.validate_.drift,
        explanations=explanations,
        decisions=decision_summary(read_parquet(stage.path("scores"))),
        notes=_notes(spec, metrics),
        scope=data_scope(
            spec, read_json(stage.path("features_summary")), calibration_report, explanation_summary
        ),
    )
    write_text(stage.path("out"), render_html(report))

    with stage.mlflow_run():
        import mlflow

        mlflow.log_artifact(str(stage.path("out")), artifact_path="report")


def _notes(spec: DatasetSpec, metrics: dict[str, Any]) -> list[str]:
    notes = [f"Target: {spec.target_column}; performance figures use the uncalibrated PD of each model."]
    if not any("true_pd_auc" in metrics.get(name, {}) for name in PLOTTED_PARTS):
        notes.append("No ground truth (not the synthetic portfolio): the true-PD ceiling is not shown.")
    return notes


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "split_dir",
        "dataset",
        "run_info",
        "validation_summary",
        "drift",
        "split_summary",
        "train_summary",
        "features_summary",
        "metrics",
        "calibration_report",
        "grades_dir",
        "explanations_dir",
        "scores",
        "out",
    )
