"""What the explain stage reports on the test split: the summary, the figures, the reason map's origin.

:func:`explanation_outputs` explains the champion's test-split scores with the fitted reason
coder: global importance, reason frequencies over the declined applications and the
additivity check (:func:`scoring.explain.summary.explanation_summary`), plus the figures
(:mod:`scoring.explain.plots`: beeswarm, dependence plots of the top features, waterfalls of
one applicant per grade and of a few declines). Decisions come from the fitted risk layer.
It returns the summary, the figures and a generated reason map to write; saving them is the
stage script's (``pipelines/explain.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scoring.core.contract import DatasetSpec
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import DECLINE, GRADE_DECLINE, PolicySettings
from scoring.decision.risk import RiskLayer, RuleScope, decide_and_limit
from scoring.explain.config import ReasonsConfig
from scoring.explain.plots import plot_beeswarm, plot_dependence, plot_waterfall
from scoring.explain.reasons import CODE_COLUMNS, ReasonCoder, fit_reason_map
from scoring.explain.summary import explanation_summary
from scoring.models.candidate import plugin
from scoring.models.model import PDModel

N_DEPENDENCE = 4
"""Dependence plots: one per top feature of the global importance."""
N_DECLINE_WATERFALLS = 3
"""Waterfalls of declined applicants (besides one applicant per grade)."""
REASON_MAP_FILE = "reason_map.yaml"
"""The generated reason map's file name, next to the summary."""

REASON_MAP_HEADER = (
    "# Reason codes generated for this dataset (the params' reason map did not cover every\n"
    "# model feature). Edit the codes and texts, then put these keys under `reasons:` in\n"
    "# params.yaml: a map that covers every feature wins over generation.\n"
)


@dataclass(frozen=True)
class ReasonMapRecord:
    """Where the reason codes came from (``record``: the summary's ``reason_map``), and the
    generated map to write for the analyst to edit (``document``: YAML text; None when the
    params' map covers every model feature)."""

    record: dict[str, Any]
    document: str | None


def reason_map_record(
    features: list[str], config: ReasonsConfig, file: str = REASON_MAP_FILE
) -> ReasonMapRecord:
    """The origin of the reason codes of a model with ``features``; ``file`` is where the caller
    writes the generated map (the record names it).

    Params' entries for the features the model has, generated ones for the rest: on the
    contract's own data params must cover every contract feature (the coder is strict there),
    so only columns outside the contract can get generated codes.
    """
    fitted = fit_reason_map(features, config)
    if not fitted.generated:
        return ReasonMapRecord({"source": "params", "generated": [], "left_out": list(fitted.left_out)}, None)
    document = REASON_MAP_HEADER + yaml.safe_dump(fitted.document(), sort_keys=False, allow_unicode=True)
    record = {
        "source": "generated" if len(fitted.generated) == len(features) else "params and generated",
        "generated": list(fitted.generated),
        "left_out": list(fitted.left_out),
        "file": file,
    }
    return ReasonMapRecord(record, document)


@dataclass
class ExplanationOutputs:
    """What the explain stage writes for the report.

    ``summary``: summary.json; ``figures``: plot name -> matplotlib figure, each saved as
    ``<name>.png`` (the summary's ``plots`` lists the files); ``reason_map``: the generated
    reason map's YAML for :data:`REASON_MAP_FILE`, None when params' map was used.
    """

    summary: dict[str, Any]
    figures: dict[str, Any]
    reason_map: str | None


def explanation_outputs(
    model: PDModel,
    coder: ReasonCoder,
    test: pd.DataFrame,
    layer: RiskLayer,
    spec: DatasetSpec,
    policy: PolicySettings,
    limits: LimitSettings,
    reasons: ReasonsConfig,
    seed: int,
    reason_map_file: str = REASON_MAP_FILE,
) -> ExplanationOutputs:
    """Explain ``model``'s scores of the ``test`` applications with ``coder``.

    Decisions (for the declines and the grades) apply ``layer``, ``policy`` and ``limits``
    with the rules the dataset's columns support. ``seed`` picks the beeswarm's sample and
    the applicants shown in waterfalls. ``reason_map_file`` is where the caller writes
    ``reason_map`` (the summary names it).
    """
    test = test.reset_index(drop=True)
    matrix = model.feature_matrix(test)
    contributions = model.estimator.contributions(matrix)
    codes = coder.reasons_from_contributions(contributions)
    pd_raw = model.estimator.predict_pd(matrix)
    scope = RuleScope.for_columns(spec.role_columns(model.features.input_columns_), policy)
    decisions = decide_and_limit(test, pd_raw, layer, policy, limits, scope)
    declined = (decisions["decision"] == DECLINE).to_numpy()
    method = plugin(model.kind).contributions_method
    summary = explanation_summary(
        contributions, np.log(pd_raw) - np.log1p(-pd_raw), codes, declined, coder, method
    )

    figures: dict[str, Any] = {"beeswarm": plot_beeswarm(contributions, matrix, seed=seed)}
    top = [d["feature"] for d in summary["global_importance"][:N_DEPENDENCE]]
    for feature in top:
        figures[f"dependence_{feature}"] = plot_dependence(contributions, matrix, feature)
    rng = np.random.default_rng(seed)
    grades = decisions["grade"].to_numpy()
    for grade in sorted(set(grades.tolist())):
        row = int(rng.choice(np.flatnonzero(grades == grade)))
        figures[f"waterfall_grade_{grade}"] = _waterfall(contributions, codes, decisions, row, f"G{grade}")
    # Declines the model drove (grade beyond the cut-off) show its reasons best; policy
    # knock-outs stand in only when there are too few of those.
    by_grade = (decisions["policy_reasons"] == GRADE_DECLINE).to_numpy()
    explained = declined & (codes[CODE_COLUMNS[0]] != "").to_numpy()
    explained_declines = np.flatnonzero(explained & by_grade)
    if len(explained_declines) < N_DECLINE_WATERFALLS:
        explained_declines = np.flatnonzero(explained)
    summary["n_declined_by_grade"] = int((declined & by_grade).sum())
    picked = np.sort(
        rng.choice(explained_declines, min(N_DECLINE_WATERFALLS, len(explained_declines)), False)
    )
    for i, row in enumerate(picked.tolist(), start=1):
        figures[f"waterfall_decline_{i}"] = _waterfall(contributions, codes, decisions, row, "declined")
    origin = reason_map_record(coder.features, reasons, reason_map_file)
    summary["reason_map"] = origin.record
    summary["plots"] = sorted(f"{name}.png" for name in figures)
    summary["dependence_features"] = top
    return ExplanationOutputs(summary, figures, origin.document)


def _waterfall(contributions: Any, reasons: Any, decisions: Any, row: int, what: str) -> Any:
    codes = [c for c in reasons.loc[row, CODE_COLUMNS] if c]
    grade, decision = decisions.loc[row, "grade"], decisions.loc[row, "decision"]
    title = f"Test applicant {row} ({what}, grade G{grade}, {decision})"
    return plot_waterfall(contributions.loc[row], title, reasons=codes)
