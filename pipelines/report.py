"""DVC stage `report`: the reviewer report, one self-contained HTML file, and the scorecard
workbook, both logged to the MLflow run.

Reads what the earlier stages wrote (validation, split, train, calibrate, explain, evaluate),
scores test and out-of-time with every trained model for the confidence intervals and the
paired comparison, and renders the page: scoring.reporting.report.review_report builds it,
render_html writes it out. The scorecard candidate and the train stage's selection evidence
(--scorecard-selection) give the page's Scorecard section
(scoring.reporting.scorecard_section) and the workbook --workbook
(scoring.reporting.workbook.scorecard_workbook).
"""

from __future__ import annotations

import pandas as pd

from scoring.core.io import atomic_path, read_json, read_parquet, write_text
from scoring.decision.grades import MasterScale
from scoring.models.calibration import Calibrator
from scoring.models.scorecard import ScorecardModel
from scoring.reporting.evaluation import PLOTTED_PARTS
from scoring.reporting.report import render_html, review_report
from scoring.reporting.scorecard_section import scorecard_review
from scoring.reporting.workbook import scorecard_workbook
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, MASTER_SCALE_FILE, ModelBundle
from scoring.serving.integrity import model_digest
from scoring.stages import Stage, run

SCORECARD = "scorecard"  # the scorecard candidate's name (scoring.models.candidates.scorecard)


def _scorecard(bundle: ModelBundle) -> ScorecardModel | None:
    """The trained scorecard candidate, or None when train.candidates has none."""
    if SCORECARD not in bundle.candidate_names():
        return None
    model = bundle.load_candidate(SCORECARD)
    if not isinstance(model, ScorecardModel):
        raise TypeError(
            f"candidate {SCORECARD!r} loaded as {type(model).__name__}, expected a ScorecardModel"
        )
    return model


def main(stage: Stage) -> None:
    params, bundle = stage.params, stage.bundle
    split_dir, grades_dir, explanations_dir = (
        stage.path("split_dir"),
        stage.path("grades_dir"),
        stage.path("explanations_dir"),
    )
    metrics = read_json(stage.path("metrics"))
    champion = bundle.read(CHAMPION_FILE)
    calibrator = Calibrator.from_dict(bundle.read(CALIBRATOR_FILE))
    scorecard = _scorecard(bundle)
    selection = read_json(stage.path("scorecard_selection"))
    grade_files = {name: grades_dir / f"grades_{name}.csv" for name in PLOTTED_PARTS}
    report = review_report(
        spec=stage.spec,
        champion=champion,
        models={kind: bundle.load_model(kind) for kind in metrics["models"]},
        calibrator=calibrator,
        # samples of params sample_rows rows of larger data (every row of the default data)
        splits={name: stage.read_sample(split_dir / f"{name}.parquet") for name in PLOTTED_PARTS},
        train=stage.read_sample(split_dir / "train.parquet"),
        metrics=metrics,
        train_summary=read_json(stage.path("train_summary")),
        validation_summary=read_json(stage.path("validation_summary")),
        drift=read_json(stage.path("drift")),
        split_summary=read_json(stage.path("split_summary")),
        features_summary=read_json(stage.path("features_summary")),
        calibration_report=read_json(stage.path("calibration_report")),
        grade_tables={name: pd.read_csv(path) for name, path in grade_files.items() if path.is_file()},
        explanation_summary=read_json(explanations_dir / "summary.json"),
        explanation_images={p.name: p.read_bytes() for p in sorted(explanations_dir.glob("*.png"))},
        predictions=read_parquet(stage.path("scores")),
        drift_config=params.validate_.drift,
        calibration_bins=params.evaluate.calibration_bins,
        model_digest=model_digest(stage.path("exported_model")),
        whatif=read_json(stage.path("whatif_dir") / "detail.json"),
        fairness=read_json(stage.path("fairness")),
        whatif_curve_png=curve.read_bytes()
        if (curve := stage.path("whatif_dir") / "cutoff_curve.png").is_file()
        else None,
        scorecard=scorecard_review(scorecard, selection, champion["champion"]),
    )
    write_text(stage.path("out"), render_html(report))
    is_champion = champion["champion"] == SCORECARD
    workbook = scorecard_workbook(
        scorecard,
        selection,
        master_scale=MasterScale.from_dict(bundle.read(MASTER_SCALE_FILE)),
        # the calibrator is the champion's: it applies to the scorecard's PD only when that is it
        calibrator=calibrator if is_champion else None,
        champion=champion["champion"],
    )
    with atomic_path(stage.path("workbook")) as tmp:
        tmp.write_bytes(workbook)

    with stage.mlflow_run():
        import mlflow

        mlflow.log_artifact(str(stage.path("out")), artifact_path="report")
        # beside the train stage's scorecard table (artifact path "scorecard")
        mlflow.log_artifact(str(stage.path("workbook")), artifact_path="scorecard")


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "exported_model",
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
        "whatif_dir",
        "fairness",
        "scorecard_selection",
        "out",
        "workbook",
    )
