"""DVC stage `collect`: delinquency grading, the behaviour score and the month's collections queue.

On the validated performance history: transition matrices and cure rates, the Markov forecast of
buckets and balance at risk back-tested at several origins, the behaviour score (probability of
90+ within `collections.behaviour.horizon_months`, trained and chosen by the PD model's candidate
machinery on account-months split out of time, calibrated on valid, with reason codes) and its
out-of-time figures, and the queue of the history's last month ranked by expected loss avoided per
unit of an action's cost, with the capture of realised losses against naive orders
(scoring.collections). The behaviour score is exported as its own MLflow model (from code, no
pickle, every file under its manifest) and registered as `collections.behaviour.model_name` with
the alias "champion"; the collections page goes to --out-dir/index.html.
"""

from __future__ import annotations

import re
from typing import Any

from scoring.collections.run import CollectionsResult, run_collections
from scoring.core.io import atomic_path, read_parquet, write_json, write_parquet, write_text
from scoring.stages import Stage, run

ARTIFACT_PATH = "behaviour_model"
PAGE = "index.html"


def _metric_name(name: str) -> str:
    """``queue_top_10%`` -> ``capture_queue_top_10pct`` (MLflow metric names take no '%')."""
    return "capture_" + re.sub(r"%", "pct", name)


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    behaviour = summary["behaviour"]
    metrics = {
        f"behaviour_{k}": v
        for k, v in behaviour.items()
        if k in ("oot_auc", "oot_default_rate", "oot_mean_pd") and v is not None
    }
    metrics.update({_metric_name(k): v for k, v in summary["capture_mean"].items()})
    metrics.update({f"cure_rate_{k.replace('+', 'plus')}": v for k, v in summary["cure_rates"].items()})
    metrics["queue_accounts"] = summary["queue"]["accounts"]
    return {k: float(v) for k, v in metrics.items()}


def _write_empty(stage: Stage, reason: str) -> None:
    """No loans to grade: an empty queue, empty model folders and a summary saying why."""
    import pandas as pd

    for name in ("model_dir", "exported_model"):
        stage.path(name).mkdir(parents=True, exist_ok=True)
    write_parquet(stage.path("queue"), pd.DataFrame({"loan_id": pd.Series(dtype="str")}))
    out = stage.path("out_dir")
    out.mkdir(parents=True, exist_ok=True)
    write_text(
        out / PAGE,
        f"<!doctype html><meta charset='utf-8'><title>Collections</title><p>No collections: {reason}.</p>",
    )
    write_json(stage.path("summary"), {"available": False, "reason": reason})


def _write_tables(result: CollectionsResult, stage: Stage) -> None:
    out = stage.path("out_dir")
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "capture_by_month": result.capture_by_month,
        "capture_curve": result.capture_curve,
        "calibration": result.calibration,
        "auc_by_bucket": result.auc_by_bucket,
        "forecast_backtest": result.forecast_backtest,
        "roll_rates_count": result.chain_tables["count"],
        "roll_rates_balance": result.chain_tables["balance"],
    }
    for name, frame in tables.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=name.startswith("roll_rates"))


def main(stage: Stage) -> None:
    params = stage.params
    history = read_parquet(stage.path("history"))
    if history.empty or not stage.spec.follows_auto_loan_contract:
        # a bring-your-own dataset without a history, or not car loans
        reason = "no performance history" if history.empty else "the dataset is not the auto-loan contract"
        _write_empty(stage, reason)
        return
    applications = read_parquet(stage.path("applications"))
    scores = read_parquet(stage.path("scores"), columns=["application_id", "pd", "score"])
    config = params.collections
    result = run_collections(history, applications, scores, config, params.seed, stage.spec.id_column)
    scorer = result.scorer
    assert scorer is not None

    import mlflow

    from scoring.export import CHAMPION_ALIAS, export_behaviour_model, register_model
    from scoring.reporting.collections_page import render_collections_page
    from scoring.serving.integrity import DIGEST_TAG, model_digest

    name = config.behaviour.model_name
    with stage.mlflow_run(run_name="collect", new=True) as mlflow_run:
        run_id = mlflow_run.info.run_id
        scorer.info = {"model_name": name}  # save() adds the content id as model_version
        scorer.save(stage.path("model_dir"), result.models)
        exported = export_behaviour_model(scorer, stage.path("exported_model"), result.queue_rows)
        digest = model_digest(exported)
        mlflow.log_artifacts(str(exported), artifact_path=ARTIFACT_PATH)
        version = register_model(run_id, ARTIFACT_PATH, name, digest, CHAMPION_ALIAS)
        mlflow.set_tags({"registered_model_version": version, DIGEST_TAG: digest, "stage": "collect"})
        mlflow.log_params(
            {"behaviour_champion": result.champion, "queue_month": result.summary["queue"]["month"]}
        )
        mlflow.log_metrics(_metrics(result.summary))
        model = {
            "name": name,
            "alias": CHAMPION_ALIAS,
            "version": version,
            "uri": f"models:/{name}@{CHAMPION_ALIAS}",
            "digest": digest,
            "path": str(exported),
        }
        result.summary["model"] = model
        _write_tables(result, stage)
        page = stage.path("out_dir") / PAGE
        write_text(page, render_collections_page(result, model))
        write_parquet(stage.path("queue"), result.queue)
        write_json(stage.path("summary"), result.summary)
        mlflow.log_artifact(str(page), artifact_path="collections")
        mlflow.log_artifact(str(stage.path("summary")), artifact_path="collections")


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "history",
        "applications",
        "scores",
        "dataset",
        "model_dir",
        "exported_model",
        "queue",
        "out_dir",
        "summary",
    )
