"""DVC stage `evaluate`: AUC, Gini, KS, Brier and log loss per split, the truth ceiling, plots,
and the full scoring output for every row.

The only stage that reads the ground-truth file of the synthetic portfolio.

The predictions file (``--scores``) has one row per application of every split: its id
(``application_id``), ``split``, the target under its dataset name (null where unlabelled),
``pd_raw`` (the champion's uncalibrated PD, which the discrimination metrics use), then the
columns of :data:`scoring.serving.scorer.OUTPUT_COLUMNS` from :class:`scoring.serving.scorer.Scorer` (the same
code the exported model runs): calibrated ``pd``, ``score``, ``grade``, ``decision``, ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from scoring.config import load_params
from scoring.core.contract import TRUE_PD_COLUMN, DatasetSpec
from scoring.core.io import atomic_path, read_json, read_parquet, write_json, write_parquet
from scoring.data.split import PARTS
from scoring.models.calibration import Calibrator, calibration_metrics
from scoring.models.model import CHAMPION_FILE, ESTIMATOR_FILES, PDModel
from scoring.reporting.evaluation import PLOTTED_PARTS, evaluate_model, plot_curves
from scoring.runtime import run_stage
from scoring.serving.scorer import Scorer, model_info, scored_predictions
from scoring.tracking import log_metrics, mlflow_run


def calibrated_against_truth(
    model_dir: Path, model: PDModel, parts: dict[str, pd.DataFrame], spec: DatasetSpec, truth: pd.DataFrame
) -> dict[str, object]:
    """The champion's calibrated PDs on test and out-of-time: error against outcomes and the truth."""
    calibrator = Calibrator.from_dict(read_json(model_dir / "calibrator.json"))
    truth_map = truth.set_index("application_id")[TRUE_PD_COLUMN] if len(truth) else None
    out: dict[str, object] = {}
    for name in PLOTTED_PARTS:
        frame = parts[name]
        if frame.empty:
            continue
        true_pd = None
        if truth_map is not None:
            true_pd = truth_map.reindex(frame[spec.id_column].astype(str)).to_numpy(dtype=float)
        y = frame[spec.target_column].to_numpy(dtype=float)
        out[name] = calibration_metrics(calibrator.predict(model.predict_pd(frame)), y, true_pd)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--split-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--truth", required=True)
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--plots-dir", required=True)
    parser.add_argument("--figures-dir", required=True)
    parser.add_argument("--scores", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    parts = {name: read_parquet(Path(args.split_dir) / f"{name}.parquet") for name in PARTS}
    truth = read_parquet(args.truth)
    champion = read_json(Path(args.model_dir) / CHAMPION_FILE)
    # Every candidate on every labelled split, named by model; the champion's figures are the
    # headline (top level) and the only ones plotted and scored into the predictions file.
    by_model = {
        kind: evaluate_model(
            PDModel.load(args.model_dir, kind), parts, spec, truth, params.evaluate.calibration_bins
        )
        for kind in ESTIMATOR_FILES
    }
    result = by_model[champion["champion"]]
    metrics: dict[str, object] = {
        **result.metrics,
        "champion": champion["champion"],
        # Splits the exported models were fitted on (train.fit_on): their figures there are
        # in-sample; the held-out figures of the choice are reports/train.json's cv_auc / oof.
        "in_sample_splits": list(champion.get("fit_splits", ["train"])),
        "models": {kind: r.metrics for kind, r in by_model.items()},
    }
    metrics["calibrated"] = calibrated_against_truth(
        Path(args.model_dir), PDModel.load(args.model_dir), parts, spec, truth
    )
    write_json(args.metrics, metrics)
    run_info = read_json(args.run_info)
    scorer = Scorer.from_model_dir(args.model_dir, params, spec, model_info(params, run_info))
    write_parquet(args.scores, scored_predictions(scorer, parts, spec, result.scores))
    plots_dir, figures_dir = Path(args.plots_dir), Path(args.figures_dir)
    for name in PLOTTED_PARTS:
        # Written even when empty (no out-of-time split without a date) so the DVC outputs exist.
        roc = result.roc.get(name, pd.DataFrame(columns=["fpr", "tpr"]))
        calibration = result.calibration.get(
            name, pd.DataFrame(columns=["bin", "n", "mean_pd", "observed_rate"])
        )
        with atomic_path(plots_dir / f"roc_{name}.csv") as tmp:
            roc.to_csv(tmp, index=False)
        with atomic_path(plots_dir / f"calibration_{name}.csv") as tmp:
            calibration.to_csv(tmp, index=False)
    figures = plot_curves(result)
    for name, fig in figures.items():
        with atomic_path(figures_dir / f"{name}.png") as tmp:
            # Fixed metadata keeps the PNG bytes identical between identical runs.
            fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})

    import mlflow

    with mlflow_run(params.export.experiment_name, run_id=run_info["run_id"]):
        log_metrics(metrics)
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"figures/{name}.png")
        mlflow.log_artifact(args.metrics, artifact_path="metrics")


if __name__ == "__main__":
    run_stage(main)
