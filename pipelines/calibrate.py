"""DVC stage `calibrate`: PD calibration and the master scale on the train stage's held-out
predictions, then grades, decisions and suggested limits with their tests on test and
out-of-time. The calibrated PD against the synthetic truth is measured by `evaluate`, the only
stage that reads the truth.

The calibration set (``--calibration-set``, written by `train`) holds each candidate's and the
champion's uncalibrated log-odds on rows the model that scored them never saw: out-of-fold over
train+valid when the exported models are refitted there (params train.fit_on: train_valid, the
default), or on the validation split when they are fitted on train only.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from scipy.special import expit

from scoring.core.io import atomic_path, read_parquet, write_json
from scoring.decision.grades import flat_metrics
from scoring.decision.limits import swap_set
from scoring.decision.risk import RuleScope, assess, fit_risk_layer
from scoring.serving.bundle import CALIBRATOR_FILE, CHAMPION_FILE, MASTER_SCALE_FILE
from scoring.stages import Stage, run

ASSESSED = ("test", "oot")

logger = logging.getLogger(__name__)


def swap_pair(champion: str, candidates: list[str], auc: dict[str, float]) -> tuple[str, str] | None:
    """The two models the swap set compares: the baseline (the first, simplest candidate) and
    the champion, or the best of the others when the baseline is champion; None with one model."""
    baseline = candidates[0]
    if champion != baseline:
        return baseline, champion
    others = [name for name in candidates[1:] if name in auc]
    if not others:
        return None
    return baseline, max(others, key=lambda name: (auc[name], -others.index(name)))


def main(stage: Stage) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    split_dir = stage.path("split_dir")
    champion_info = bundle.read(CHAMPION_FILE)
    champion = champion_info["champion"]
    model = bundle.load_model()
    scope = RuleScope.for_columns(spec.role_columns(model.features.input_columns_), params.policy)
    for line in scope.describe():
        logger.warning("calibrate: %s", line)

    held_out = read_parquet(stage.path("calibration_set"))
    layer = fit_risk_layer(
        expit(held_out["champion"].to_numpy(dtype=np.float64)),
        held_out["target"].to_numpy(dtype=np.float64),
        params.calibrate,
        params.seed,
    )
    bundle.write(CALIBRATOR_FILE, layer.calibrator.to_dict())
    bundle.write(MASTER_SCALE_FILE, layer.scale.to_dict())

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
    tables_dir = stage.path("tables_dir")
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
        pair = swap_pair(champion, bundle.candidate_names(), champion_info.get("auc", {}))
        if name == "test" and pair is not None:
            a, b = pair
            report["swap_set"] = {
                "a": a,
                "b": b,
                **swap_set(
                    bundle.load_model(a).predict_pd(frame),
                    bundle.load_model(b).predict_pd(frame),
                    y,
                    params.calibrate.swap_set_approval_rate,
                ),
            }
    write_json(stage.path("report"), report)
    write_json(stage.path("metrics"), metrics)

    with stage.mlflow_run():
        from scoring.tracking import log_metrics

        log_metrics(metrics, prefix="calibrate.")
        import mlflow

        mlflow.log_artifact(str(stage.path("report")), artifact_path="calibrate")
        for path in sorted(tables_dir.glob("grades_*.csv")):
            mlflow.log_artifact(str(path), artifact_path="calibrate")


_HEADLINE_CALIBRATION = {"mean_pd", "default_rate", "ece", "brier", "log_loss"}


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "split_dir",
        "dataset",
        "calibration_set",
        "run_info",
        "metrics",
        "report",
        "tables_dir",
    )
