"""DVC stage `evaluate`: AUC, Gini, KS, Brier and log loss per split, the truth ceiling, plots,
and the full scoring output for every row.

The only stage that reads the ground-truth file of the synthetic portfolio.

The predictions file (``--scores``) has one row per application of every split: its id
(``application_id``), ``split``, the target under its dataset name (null where unlabelled),
``pd_raw`` (the champion's uncalibrated PD, which the discrimination metrics use), then the
columns of :data:`scoring.serving.scorer.OUTPUT_COLUMNS` from :class:`scoring.serving.scorer.Scorer` (the same
code the exported model runs): calibrated ``pd``, ``score``, ``grade``, ``decision``, ...

With ``engine: dask`` every row is scored on the cluster, partition by partition
(:mod:`scoring.reporting.evaluation_dask`): only the ids, targets and PDs the metrics need come
back to this process, and the predictions are written by the workers as a dataset folder of one
part per partition (the same columns and rows; later stages read either with ``read_parquet``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from scoring.core.io import atomic_path, read_json, read_parquet, write_json, write_parquet
from scoring.data.split import PARTS
from scoring.models.calibration import Calibrator
from scoring.reporting.evaluation import (
    PLOTTED_PARTS,
    TRUTH_COLUMNS,
    EvaluationResult,
    calibrated_metrics,
    evaluate_model,
    plot_curves,
    truth_lookup,
)
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, ModelBundle
from scoring.serving.scorer import Scorer, accounted_predictions, model_info
from scoring.stages import Stage, run


def evaluate(stage: Stage) -> tuple[dict[str, Any], EvaluationResult]:
    """Every candidate on every labelled split, the calibrated figures, the predictions file and
    the metrics file; returns the metrics and the champion's result. With ``engine: dask``, inside
    :meth:`Stage.engine_client`."""
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    split_paths = {name: stage.path("split_dir") / f"{name}.parquet" for name in PARTS}
    # the true PD by id, made once for every candidate
    truth = truth_lookup(read_parquet(stage.path("truth"), columns=list(TRUTH_COLUMNS)))
    champion = bundle.read(CHAMPION_FILE)
    info = model_info(params)
    bins = params.evaluate.calibration_bins
    # Every candidate on every labelled split, named by model; the champion's figures are the
    # headline (top level) and the only ones plotted and scored into the predictions file.
    if stage.on_dask:
        from scoring.reporting.evaluation_dask import (
            WorkerBundle,
            evaluate_candidates_dask,
            write_predictions_dask,
        )

        source = WorkerBundle.of(bundle.root, params, spec, info)
        by_model = evaluate_candidates_dask(source, split_paths, truth, bins)
    else:
        parts = {name: read_parquet(path) for name, path in split_paths.items()}
        by_model = {
            kind: evaluate_model(bundle.load_model(kind), parts, spec, truth, bins)
            for kind in bundle.candidate_names()
        }
    result = by_model[champion["champion"]]
    metrics: dict[str, Any] = {
        **result.metrics,
        "champion": champion["champion"],
        # Splits the exported models were fitted on (train.fit_on): their figures there are
        # in-sample; the held-out figures of the choice are reports/train.json's cv_auc / oof.
        "in_sample_splits": list(champion.get("fit_splits", ["train"])),
        "models": {kind: r.metrics for kind, r in by_model.items()},
        # The champion's calibrated PDs on test and out-of-time: error against outcomes and the truth.
        "calibrated": calibrated_metrics(
            Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)), result.labelled, truth
        ),
    }
    if stage.on_dask:
        metrics["scoring"] = write_predictions_dask(source, split_paths, stage.path("scores"))
        write_json(stage.path("metrics"), metrics)
        return metrics, result
    scorer = Scorer.from_model_dir(bundle.root, params, spec, info)
    predictions, metrics["scoring"] = accounted_predictions(scorer, parts, spec, result.scores)
    if params.reject_inference.enabled:
        metrics["through_the_door"] = _through_the_door(stage, parts, predictions, champion)
    write_json(stage.path("metrics"), metrics)
    write_parquet(stage.path("scores"), predictions)
    return metrics, result


def _through_the_door(
    stage: Stage, parts: dict[str, pd.DataFrame], predictions: pd.DataFrame, champion: dict[str, Any]
) -> dict[str, Any]:
    """With reject inference: the exported model on the test period's booked loans and declined
    applications together, against every applicant's true outcome (the synthetic truth); beside
    it the train stage's accepts-only reference on the same applicants, and the difference."""
    from scoring.core.contract import OUTCOME_COLUMN, TRUE_PD_COLUMN
    from scoring.data.split import development_rejects
    from scoring.models.reject_inference import REFERENCE_FILE
    from scoring.reporting.evaluation import TRUTH_ID_COLUMN
    from scoring.reporting.reject_inference import compared_with_reference, test_period_holdout

    params, spec = stage.params, stage.spec
    # the same end of the development period as the train stage's: the train part's last date
    last = pd.to_datetime(parts["train"][spec.date_column]).max() if spec.date_column else None
    rejects = development_rejects(parts["unlabelled"], spec, params.split, params.seed, last)
    applied = champion.get("reject_inference")
    method = applied["method"] if applied else "accepts_only"
    truth = read_parquet(stage.path("truth"))
    if not {TRUE_PD_COLUMN, OUTCOME_COLUMN} <= set(truth.columns) or truth.empty:
        return {
            "method": method,
            "measured": False,
            "declined_in_test_period": len(rejects["test"]),
            "why": "the declined applicants' outcomes are unknown outside the synthetic portfolio "
            "(no truth file), so the through-the-door figures cannot be measured",
        }
    truth = truth[[TRUTH_ID_COLUMN, TRUE_PD_COLUMN, OUTCOME_COLUMN]]
    out = test_period_holdout(parts["test"], rejects["test"], predictions, truth, spec.id_column)
    out["measured"] = True
    out["method"] = method
    reference_dir = stage.path("reference_dir")
    if read_json(reference_dir / REFERENCE_FILE).get("fitted"):
        reference = ModelBundle(reference_dir)
        model = reference.load_model()
        calibrator = Calibrator.from_dict(reference.read(CALIBRATOR_FILE))
        holdout = pd.concat([parts["test"], rejects["test"]], ignore_index=True)
        scored = pd.DataFrame(
            {
                "application_id": holdout[spec.id_column].to_numpy(),
                "pd": calibrator.predict(model.predict_pd(holdout)),
            }
        )
        accepts_only = test_period_holdout(parts["test"], rejects["test"], scored, truth, spec.id_column)
        out["accepts_only"] = {"champion": model.kind, **accepts_only}
        out["vs_accepts_only"] = compared_with_reference(out, accepts_only)
    return out


def write_plots(stage: Stage, result: EvaluationResult) -> dict[str, Any]:
    """The champion's ROC and calibration curves of the plotted splits, as CSV and PNG; returns
    the figures."""
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
    return figures


def main(stage: Stage) -> None:
    with stage.engine_client():
        metrics, result = evaluate(stage)
    figures = write_plots(stage, result)

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
        "reference_dir",
    )
