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

import pandas as pd

from scoring.core.contract import TRUE_PD_COLUMN, DatasetSpec
from scoring.core.io import atomic_path, read_parquet, write_json, write_parquet
from scoring.data.split import PARTS
from scoring.models.calibration import Calibrator, calibration_metrics
from scoring.models.model import PDModel
from scoring.reporting.evaluation import PLOTTED_PARTS, evaluate_model, plot_curves
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, ModelBundle
from scoring.serving.scorer import Scorer, model_info, scored_predictions
from scoring.stages import Stage, run


def calibrated_against_truth(
    bundle: ModelBundle,
    model: PDModel,
    parts: dict[str, pd.DataFrame],
    spec: DatasetSpec,
    truth: pd.DataFrame,
) -> dict[str, object]:
    """The champion's calibrated PDs on test and out-of-time: error against outcomes and the truth."""
    calibrator = Calibrator.from_dict(bundle.read(CALIBRATOR_FILE))
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


def main(stage: Stage) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    parts = {name: read_parquet(stage.path("split_dir") / f"{name}.parquet") for name in PARTS}
    truth = read_parquet(stage.path("truth"))
    champion = bundle.read(CHAMPION_FILE)
    # Every candidate on every labelled split, named by model; the champion's figures are the
    # headline (top level) and the only ones plotted and scored into the predictions file.
    by_model = {
        kind: evaluate_model(bundle.load_model(kind), parts, spec, truth, params.evaluate.calibration_bins)
        for kind in bundle.candidate_names()
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
    metrics["calibrated"] = calibrated_against_truth(bundle, bundle.load_model(), parts, spec, truth)
    write_json(stage.path("metrics"), metrics)
    scorer = Scorer.from_model_dir(bundle.root, params, spec, model_info(params, stage.run_info))
    write_parquet(stage.path("scores"), scored_predictions(scorer, parts, spec, result.scores))
    plots_dir, figures_dir = stage.path("plots_dir"), stage.path("figures_dir")
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

    with stage.mlflow_run():
        from scoring.tracking import log_metrics

        log_metrics(metrics)
        for name, fig in figures.items():
            mlflow.log_figure(fig, f"figures/{name}.png")
        mlflow.log_artifact(str(stage.path("metrics")), artifact_path="metrics")


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "split_dir",
        "dataset",
        "truth",
        "run_info",
        "metrics",
        "plots_dir",
        "figures_dir",
        "scores",
    )
