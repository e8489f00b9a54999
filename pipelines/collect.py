"""DVC stage `collect`: delinquency grading and the month's collections queue.

On the validated performance history: transition matrices and cure rates, the Markov forecast of
buckets and balance at risk back-tested at several origins, the behaviour score (probability of
90+ within `collections.behaviour.horizon_months`, trained and chosen by the PD model's candidate
machinery on account-months split out of time, calibrated on valid) with its out-of-time
figures, and the queue of the history's last month ranked by expected loss avoided per unit of
an action's cost, with the capture of realised losses against naive orders (scoring.collections).
"""

from __future__ import annotations

from scoring.collections.run import run_collections
from scoring.core.io import atomic_path, read_parquet, write_json, write_parquet
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, ModelBundle
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    history = read_parquet(stage.path("history"))
    applications = read_parquet(stage.path("applications"))
    scores = read_parquet(stage.path("scores"), columns=["application_id", "pd", "score"])
    if history.empty or not stage.spec.follows_auto_loan_contract:
        # no loans to grade (a bring-your-own dataset without a history, or not car loans)
        import pandas as pd

        stage.path("model_dir").mkdir(parents=True, exist_ok=True)
        write_parquet(stage.path("queue"), pd.DataFrame({"loan_id": pd.Series(dtype="str")}))
        stage.path("out_dir").mkdir(parents=True, exist_ok=True)
        reason = "no performance history" if history.empty else "the dataset is not the auto-loan contract"
        write_json(stage.path("summary"), {"available": False, "reason": reason})
        return
    result = run_collections(
        history, applications, scores, params.collections, params.seed, stage.spec.id_column
    )
    bundle = ModelBundle(stage.path("model_dir"))
    bundle.root.mkdir(parents=True, exist_ok=True)
    bundle.save_features(result.features)
    bundle.save_candidates(result.models)
    bundle.write(CHAMPION_FILE, {"champion": result.champion, "candidates": list(result.models)})
    bundle.write(CALIBRATOR_FILE, result.calibrator.to_dict())
    write_parquet(stage.path("queue"), result.queue)
    out = stage.path("out_dir")
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in {
        "capture_by_month": result.capture_by_month,
        "forecast_backtest": result.forecast_backtest,
        "roll_rates_count": result.chain_tables["count"],
        "roll_rates_balance": result.chain_tables["balance"],
    }.items():
        with atomic_path(out / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=name.startswith("roll_rates"))
    write_json(stage.path("summary"), result.summary)


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "history",
        "applications",
        "scores",
        "dataset",
        "model_dir",
        "queue",
        "out_dir",
        "summary",
    )
