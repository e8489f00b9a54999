"""Monitoring at the edge: a model, a batch file and a history file in; tables, alerts, the page
and an MLflow run out. Shared by the `monitor` DVC stage and `scoring monitor`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scoring.core.io import atomic_path, write_json, write_text
from scoring.monitoring.monitor import MonitoringResult, run_monitoring, score_for_monitoring

if TYPE_CHECKING:
    from scoring.config import Params

logger = logging.getLogger(__name__)

RED_EXIT_CODE = 3
"""Exit status of `scoring monitor` when any rule is red (1 stays for bad input)."""


class MonitoringInputError(ValueError):
    """The model carries no reference profile, or the batch cannot be monitored."""


@dataclass
class MonitoringRun:
    result: MonitoringResult
    digest: str
    counts: dict[str, Any]


def monitor_model(
    model: str | Path,
    batch: pd.DataFrame,
    params: Params,
    history: pd.DataFrame | None = None,
    expect_digest: str | None = None,
) -> MonitoringRun:
    """Verify and load ``model``, score ``batch`` where it is not scored yet, gate ``history``
    against the batch's loans, and monitor."""
    from scoring.data.history_gate import check_history
    from scoring.serving.registry import load_verified_model

    scorer, profile, digest = load_verified_model(model, expect_digest)
    if profile is None:
        raise MonitoringInputError(
            f"{model}: the model carries no reference profile (reference_profile.json); "
            "expected a model exported by this version of the pipeline (the export stage writes it)"
        )
    spec = scorer.spec
    scored = score_for_monitoring(scorer, batch)
    counts: dict[str, Any] = {
        "batch_rows": scored.n_input,
        "batch_scored": len(scored.frame),
        "batch_rejected": len(scored.rejected),
        **scored.flag_counts(),
        "scored_here": scored.scored_here,
    }
    gated = None
    if history is not None:
        ids = scored.frame[spec.id_column].astype(str)
        amounts = (
            scored.frame.set_index(ids)["loan_amount"] if "loan_amount" in scored.frame.columns else None
        )
        # a history usually covers more loans than the batch monitored: those rows are out of
        # scope (counted), not bad; what concerns the batch's loans goes through the gate
        if "loan_id" in history.columns:
            in_batch = history["loan_id"].astype(str).isin(ids).to_numpy()
            outside, history = int((~in_batch).sum()), history.loc[in_batch]
        else:
            outside = 0
        gate = check_history(history, ids, None, amounts, params.validate_.performance)
        gated = gate.passed
        counts["history"] = {
            "n_file_rows": outside + gate.summary["n_input"],
            "n_rows_outside_batch": outside,
            **{k: v for k, v in gate.summary.items() if k not in ("rules",)},
        }
    result = run_monitoring(
        scored.frame, profile, params.monitor, params.calibrate.tests, spec.id_column, spec.date_column, gated
    )
    result.summary.update(counts)
    result.summary["model_digest"] = digest
    return MonitoringRun(result=result, digest=digest, counts=counts)


def _csv(frame: pd.DataFrame | None, path: Path) -> None:
    if frame is None:
        return
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=bool(frame.index.name or isinstance(frame.index, pd.MultiIndex)))


def write_monitoring(
    run: MonitoringRun, out_dir: str | Path, params: Params, model_label: str = ""
) -> dict[str, Path]:
    """Every table as CSV, the alerts and summary as JSON, and the monitoring page (with the
    thresholds ``params`` ran with)."""
    from scoring.reporting.monitoring_page import render_monitoring_page

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = run.result
    tables: dict[str, pd.DataFrame | None] = {
        "stability": r.stability,
        "csi": r.csi,
        "grade_mix": r.grade_mix,
        "lights": r.lights,
        "backtest_cohorts": r.backtest_cohorts,
        "backtest_grades": r.backtest_grades,
        "early_delinquency": r.early,
        "vintages": r.vintages,
        **{f"roll_rates_{name}": frame for name, frame in r.roll_rates.items()},
    }
    paths: dict[str, Path] = {}
    for name, frame in tables.items():
        if frame is not None:
            paths[name] = out / f"{name}.csv"
            _csv(frame, paths[name])
    paths["alerts"] = out / "alerts.json"
    write_json(paths["alerts"], r.alerts)
    paths["summary"] = out / "summary.json"
    write_json(paths["summary"], r.summary)
    paths["page"] = out / "index.html"
    page = render_monitoring_page(
        r, model=model_label, model_digest=run.digest, config=params.monitor, tests=params.calibrate.tests
    )
    write_text(paths["page"], page)
    return paths


def log_to_mlflow(
    run: MonitoringRun, paths: dict[str, Path], experiment: str, run_name: str = "monitor"
) -> str:
    """A monitoring run in the experiment: one metric per rule (months red), the overall light as
    a tag, the alerts, summary and page as artifacts. Returns the run id."""
    import mlflow

    from scoring.tracking import mlflow_run

    alerts = run.result.alerts
    with mlflow_run(experiment, run_name=run_name) as active:
        mlflow.set_tags({"monitoring.overall": alerts["overall"], "model_digest": run.digest})
        mlflow.log_metrics(
            {
                f"monitor.{rule}.months_red": float(entry["months_red"])
                for rule, entry in alerts["rules"].items()
            }
        )
        for key in ("alerts", "summary", "page"):
            mlflow.log_artifact(str(paths[key]), artifact_path="monitoring")
        return str(active.info.run_id)
