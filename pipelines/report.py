"""DVC stage `report`: the reviewer report, one self-contained HTML file, logged to the MLflow run.

Reads what the earlier stages wrote (validation, split, train, calibrate, explain, evaluate),
scores test and out-of-time with every trained model for the confidence intervals and the
paired comparison, and renders the page with scoring.reporting.report.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_json, read_parquet, write_text
from scoring.models.calibration import Calibrator
from scoring.models.model import PDModel
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
from scoring.runtime import run_stage
from scoring.tracking import mlflow_run

SCORE_COLUMN = "PD (champion)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--split-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--validation-summary", required=True)
    parser.add_argument("--drift", required=True)
    parser.add_argument("--split-summary", required=True)
    parser.add_argument("--train-summary", required=True)
    parser.add_argument("--features-summary", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--calibration-report", required=True)
    parser.add_argument("--grades-dir", required=True)
    parser.add_argument("--explanations-dir", required=True)
    parser.add_argument("--scores", required=True, help="the evaluate stage's predictions (Parquet)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    model_dir, split_dir = Path(args.model_dir), Path(args.split_dir)
    metrics = read_json(args.metrics)
    champion_info = read_json(model_dir / "champion.json")
    champion = champion_info["champion"]
    models = {kind: PDModel.load(model_dir, kind) for kind in metrics["models"]}
    calibrator = Calibrator.from_dict(read_json(model_dir / "calibrator.json"))

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

    grades_dir = Path(args.grades_dir)
    grade_tables = {
        name: pd.read_csv(grades_dir / f"grades_{name}.csv")
        for name in PLOTTED_PARTS
        if (grades_dir / f"grades_{name}.csv").is_file()
    }
    explanations_dir = Path(args.explanations_dir)
    images = {p.name: p.read_bytes() for p in sorted(explanations_dir.glob("*.png"))}
    explanation_summary = read_json(explanations_dir / "summary.json")
    explanations = explanations_from(explanation_summary, images)
    calibration_report = read_json(args.calibration_report)

    run_info = read_json(args.run_info)
    report = ReviewReport(
        title="Reviewer report: probability-of-default model",
        run_id=run_info.get("run_id"),
        champion=champion_info,
        train_summary=read_json(args.train_summary),
        validation_summary=read_json(args.validation_summary),
        drift=read_json(args.drift),
        split_summary=read_json(args.split_summary),
        performance=performance,
        comparisons=comparisons,
        model_metrics=metrics["models"],
        curves=curves,
        grade_tables=grade_tables,
        calibration_report=calibration_report,
        stability=stability,
        drift_config=params.validate_.drift,
        explanations=explanations,
        decisions=decision_summary(read_parquet(args.scores)),
        notes=_notes(spec, metrics),
        scope=data_scope(spec, read_json(args.features_summary), calibration_report, explanation_summary),
    )
    write_text(args.out, render_html(report))

    with mlflow_run(params.export.experiment_name, run_id=run_info["run_id"]):
        import mlflow

        mlflow.log_artifact(args.out, artifact_path="report")


def _notes(spec: DatasetSpec, metrics: dict[str, Any]) -> list[str]:
    notes = [f"Target: {spec.target_column}; performance figures use the uncalibrated PD of each model."]
    if not any("true_pd_auc" in metrics.get(name, {}) for name in PLOTTED_PARTS):
        notes.append("No ground truth (not the synthetic portfolio): the true-PD ceiling is not shown.")
    return notes


if __name__ == "__main__":
    run_stage(main)
