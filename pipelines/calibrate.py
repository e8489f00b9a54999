"""DVC stage `calibrate`: PD calibration and the master scale on the train stage's held-out
predictions, then grades, decisions and suggested limits with their tests on test and
out-of-time. The calibrated PD against the synthetic truth is measured by `evaluate`, the only
stage that reads the truth.

The calibration set (``--calibration-set``, written by `train`) holds the champion's
uncalibrated log-odds on rows the model that scored them never saw: out-of-fold over
train+valid when the exported models are refitted there (params train.fit_on: train_valid, the
default), or on the validation split when they are fitted on train only.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import atomic_path, read_json, read_parquet, write_json
from scoring.decision.grades import flat_metrics
from scoring.decision.limits import swap_set
from scoring.decision.risk import RuleScope, assess, fit_risk_layer
from scoring.models.model import CHAMPION_FILE, PDModel
from scoring.runtime import run_stage
from scoring.tracking import log_metrics, mlflow_run

ASSESSED = ("test", "oot")

logger = logging.getLogger(__name__)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--split-dir", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--calibration-set", required=True, help="from the train stage (Parquet)")
    parser.add_argument("--run-info", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--tables-dir", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    model_dir, split_dir = Path(args.model_dir), Path(args.split_dir)
    champion_info = read_json(model_dir / CHAMPION_FILE)
    champion = champion_info["champion"]
    model = PDModel.load(model_dir)
    scope = RuleScope.for_columns(spec.role_columns(model.features.input_columns_), params.policy)
    for line in scope.describe():
        logger.warning("calibrate: %s", line)

    held_out = read_parquet(args.calibration_set)
    layer = fit_risk_layer(
        expit(held_out["champion"].to_numpy(dtype=np.float64)),
        held_out["target"].to_numpy(dtype=np.float64),
        params.calibrate,
        params.seed,
    )
    write_json(model_dir / "calibrator.json", layer.calibrator.to_dict())
    write_json(model_dir / "master_scale.json", layer.scale.to_dict())

    metrics: dict[str, Any] = {"champion": champion, "n_grades": len(layer.scale.central_pd)}
    report: dict[str, Any] = {
        "calibrator": layer.calibrator.to_dict(),
        "master_scale": layer.scale.to_dict(),
        "fitted_on": {
            "rows": len(held_out),
            "by_split": {str(k): int(v) for k, v in held_out["split"].value_counts().sort_index().items()},
            "source": "out_of_fold" if champion_info.get("fit_on") == "train_valid" else "valid",
        },
        "rule_scope": scope.to_dict(),
    }
    tables_dir = Path(args.tables_dir)
    for name in ASSESSED:
        frame = read_parquet(split_dir / f"{name}.parquet")
        if frame.empty:
            continue
        y = frame[spec.target_column].to_numpy(dtype=np.float64)
        result = assess(
            frame,
            model.predict_pd(frame),
            y,
            layer,
            params.calibrate,
            params.policy,
            params.limits,
            scope=scope,
        )
        with atomic_path(tables_dir / f"grades_{name}.csv") as tmp:
            result.grade_table.to_csv(tmp, index=False)
        report[name] = result.report
        calibrated, portfolio = result.report["calibrated"], result.report["portfolio"]
        metrics[name] = {
            "calibration": {k: calibrated[k] for k in calibrated if k in _HEADLINE_CALIBRATION},
            "raw_ece": result.report["raw"]["ece"],
            "tests": flat_metrics(result.report["tests"]),
            "approval_rate": portfolio.get("approval_rate"),
            "refer_rate": portfolio.get("refer_rate"),
            "bad_rate_approved": portfolio.get("bad_rate_approved"),
        }
        if name == "test":
            scores = {
                kind: PDModel.load(model_dir, kind).predict_pd(frame) for kind in ("scorecard", "xgboost")
            }
            report["swap_set"] = swap_set(
                scores["scorecard"], scores["xgboost"], y, params.calibrate.swap_set_approval_rate
            )
    write_json(args.report, report)
    write_json(args.metrics, metrics)

    run_info = read_json(args.run_info)
    with mlflow_run(params.export.experiment_name, run_id=run_info["run_id"]):
        log_metrics(metrics, prefix="calibrate.")
        import mlflow

        mlflow.log_artifact(args.report, artifact_path="calibrate")
        for path in sorted(tables_dir.glob("grades_*.csv")):
            mlflow.log_artifact(str(path), artifact_path="calibrate")


_HEADLINE_CALIBRATION = {"mean_pd", "default_rate", "ece", "brier", "log_loss"}


if __name__ == "__main__":
    run_stage(main)
