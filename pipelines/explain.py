"""DVC stage `explain`: reason codes fitted on train, explanations of the test split.

Writes the fitted reason coder (models/reasons.json), and for the report
reports/explanations/summary.json with global importance, reason frequencies over the
declined test applications and the additivity check, plus PNG plots (beeswarm, dependence
plots of the top features, waterfalls of one applicant per grade and of a few declines).
Decisions come from the calibrator and master scale that `calibrate` wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from scoring.core.contract import DatasetSpec
from scoring.core.io import atomic_path, read_parquet, write_json, write_text
from scoring.decision.grades import MasterScale
from scoring.decision.policy import DECLINE, GRADE_DECLINE
from scoring.decision.risk import RiskLayer, RuleScope, decide_and_limit
from scoring.explain.plots import plot_beeswarm, plot_dependence, plot_waterfall
from scoring.explain.reasons import CODE_COLUMNS, ReasonCoder, ReasonConfigError, fit_reason_map
from scoring.explain.summary import explanation_summary
from scoring.models.calibration import Calibrator
from scoring.models.candidate import plugin
from scoring.serving.bundle import CALIBRATOR_FILE, MASTER_SCALE_FILE
from scoring.stages import Stage, run

logger = logging.getLogger(__name__)

N_DEPENDENCE = 4
N_DECLINE_WATERFALLS = 3


def save_png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        # Fixed metadata keeps the PNG bytes identical between identical runs.
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


def main(stage: Stage) -> None:
    params, spec, bundle = stage.params, stage.spec, stage.bundle
    split_dir, out_dir = stage.path("split_dir"), stage.path("reports_dir")
    model = bundle.load_model()
    # The shipped reason map describes the auto-loan contract; another dataset gets generic
    # codes for the features the map does not know (logged), instead of a config error.
    coder = ReasonCoder.fit(
        model,
        read_parquet(split_dir / "train.parquet"),
        params.reasons,
        strict=spec.follows_auto_loan_contract,
    )
    write_json(stage.path("out"), coder.to_dict())

    test = read_parquet(split_dir / "test.parquet").reset_index(drop=True)
    matrix = model.feature_matrix(test)
    contributions = model.estimator.contributions(matrix)
    reasons = coder.reasons_from_contributions(contributions)
    pd_raw = model.estimator.predict_pd(matrix)
    layer = RiskLayer(
        Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)),
        MasterScale.from_dict(bundle.read(MASTER_SCALE_FILE)),
    )
    scope = RuleScope.for_columns(spec.role_columns(model.features.input_columns_), params.policy)
    decisions = decide_and_limit(test, pd_raw, layer, params.policy, params.limits, scope)
    declined = (decisions["decision"] == DECLINE).to_numpy()
    method = plugin(model.kind).contributions_method
    summary = explanation_summary(
        contributions, np.log(pd_raw) - np.log1p(-pd_raw), reasons, declined, coder, method
    )

    figures: dict[str, Any] = {"beeswarm": plot_beeswarm(contributions, matrix, seed=params.seed)}
    top = [d["feature"] for d in summary["global_importance"][:N_DEPENDENCE]]
    for feature in top:
        figures[f"dependence_{feature}"] = plot_dependence(contributions, matrix, feature)
    rng = np.random.default_rng(params.seed)
    grades = decisions["grade"].to_numpy()
    for grade in sorted(set(grades.tolist())):
        row = int(rng.choice(np.flatnonzero(grades == grade)))
        figures[f"waterfall_grade_{grade}"] = waterfall(contributions, reasons, decisions, row, f"G{grade}")
    # Declines the model drove (grade beyond the cut-off) show its reasons best; policy
    # knock-outs stand in only when there are too few of those.
    by_grade = (decisions["policy_reasons"] == GRADE_DECLINE).to_numpy()
    explained = declined & (reasons[CODE_COLUMNS[0]] != "").to_numpy()
    explained_declines = np.flatnonzero(explained & by_grade)
    if len(explained_declines) < N_DECLINE_WATERFALLS:
        explained_declines = np.flatnonzero(explained)
    summary["n_declined_by_grade"] = int((declined & by_grade).sum())
    picked = np.sort(
        rng.choice(explained_declines, min(N_DECLINE_WATERFALLS, len(explained_declines)), False)
    )
    for i, row in enumerate(picked.tolist(), start=1):
        figures[f"waterfall_decline_{i}"] = waterfall(contributions, reasons, decisions, row, "declined")
    summary["reason_map"] = reason_map_record(coder.features, params, spec, out_dir)
    summary["plots"] = sorted(f"{name}.png" for name in figures)
    summary["dependence_features"] = top
    for name, fig in figures.items():
        save_png(fig, out_dir / f"{name}.png")
    write_json(out_dir / "summary.json", summary)

    import mlflow

    from scoring.tracking import log_metrics

    with stage.mlflow_run():
        log_metrics(
            {
                "additivity_max_error": summary["additivity_max_error"],
                "n_declined": summary["n_declined"],
                "declined_without_reason": summary["declined_without_reason"],
            },
            prefix="explain.",
        )
        mlflow.log_artifact(str(stage.path("out")), artifact_path="explain")
        mlflow.log_artifacts(str(out_dir), artifact_path="explain")


REASON_MAP_FILE = "reason_map.yaml"


def reason_map_record(features: list[str], params: Any, spec: DatasetSpec, out_dir: Path) -> dict[str, Any]:
    """Where the reason codes came from; a generated map is written out for the analyst to edit.

    Params' entries for the features the model has, generated ones for the rest: on the
    contract's own data params must cover every contract feature (the coder is strict there),
    so only columns outside the contract can get generated codes.
    """
    fitted = fit_reason_map(features, params.reasons)
    if not fitted.generated:
        return {"source": "params", "generated": [], "left_out": list(fitted.left_out)}
    path = out_dir / REASON_MAP_FILE
    header = (
        "# Reason codes generated for this dataset (the params' reason map did not cover every\n"
        "# model feature). Edit the codes and texts, then put these keys under `reasons:` in\n"
        "# params.yaml: a map that covers every feature wins over generation.\n"
    )
    write_text(path, header + yaml.safe_dump(fitted.document(), sort_keys=False, allow_unicode=True))
    logger.warning(
        "explain: generated reason codes for %d features, written to %s", len(fitted.generated), path
    )
    return {
        "source": "generated" if len(fitted.generated) == len(features) else "params and generated",
        "generated": list(fitted.generated),
        "left_out": list(fitted.left_out),
        "file": str(path),
    }


def waterfall(contributions: Any, reasons: Any, decisions: Any, row: int, what: str) -> Any:
    codes = [c for c in reasons.loc[row, CODE_COLUMNS] if c]
    grade, decision = decisions.loc[row, "grade"], decisions.loc[row, "decision"]
    title = f"Test applicant {row} ({what}, grade G{grade}, {decision})"
    return plot_waterfall(contributions.loc[row], title, reasons=codes)


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
