"""DVC stage `explain`: reason codes fitted on train, explanations of the test split.

Writes the fitted reason coder (models/reasons.json), and for the report
reports/explanations/summary.json with global importance, reason frequencies over the
declined test applications and the additivity check, plus PNG plots (beeswarm, dependence
plots of the top features, waterfalls of one applicant per grade and of a few declines).
Decisions come from the calibrator and master scale that `calibrate` wrote. The work is
scoring.explain.stage_outputs.explanation_outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from scoring.core.io import atomic_path, write_json, write_text
from scoring.decision.grades import MasterScale
from scoring.decision.risk import RiskLayer
from scoring.explain.reasons import ReasonCoder, ReasonConfigError
from scoring.explain.stage_outputs import REASON_MAP_FILE, explanation_outputs
from scoring.models.calibration import Calibrator
from scoring.serving.bundle import CALIBRATOR_FILE, MASTER_SCALE_FILE
from scoring.stages import Stage, run

logger = logging.getLogger(__name__)


def main(stage: Stage) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    split_dir, out_dir = stage.path("split_dir"), stage.path("reports_dir")
    model = bundle.load_model()
    # The shipped reason map describes the auto-loan contract; another dataset gets generic
    # codes for the features the map does not know (logged), instead of a config error.
    coder = ReasonCoder.fit(
        model,
        stage.read_sample(split_dir / "train.parquet"),
        params.reasons,
        strict=spec.follows_auto_loan_contract,
    )
    write_json(stage.path("out"), coder.to_dict())

    reason_map_path = out_dir / REASON_MAP_FILE
    result = explanation_outputs(
        model,
        coder,
        stage.read_sample(split_dir / "test.parquet"),
        RiskLayer(
            Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)),
            MasterScale.from_dict(bundle.read(MASTER_SCALE_FILE)),
        ),
        spec,
        params.policy,
        params.limits,
        params.reasons,
        params.seed,
        reason_map_file=str(reason_map_path),
    )
    if result.reason_map is not None:
        write_text(reason_map_path, result.reason_map)
        generated = result.summary["reason_map"]["generated"]
        logger.warning(
            "explain: generated reason codes for %d features, written to %s", len(generated), reason_map_path
        )
    for name, fig in result.figures.items():
        save_png(fig, out_dir / f"{name}.png")
    write_json(out_dir / "summary.json", result.summary)

    import mlflow

    from scoring.tracking import log_metrics

    with stage.mlflow_run():
        log_metrics(
            {
                "additivity_max_error": result.summary["additivity_max_error"],
                "n_declined": result.summary["n_declined"],
                "declined_without_reason": result.summary["declined_without_reason"],
            },
            prefix="explain.",
        )
        mlflow.log_artifact(str(stage.path("out")), artifact_path="explain")
        mlflow.log_artifacts(str(out_dir), artifact_path="explain")


def save_png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        # Fixed metadata keeps the PNG bytes identical between identical runs.
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "model_dir",
        "split_dir",
        "dataset",
        "run_info",
        "out",
        "reports_dir",
        user_errors=(ReasonConfigError,),
    )
