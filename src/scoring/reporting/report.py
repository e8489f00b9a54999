"""The reviewer report: one self-contained HTML page per pipeline run.

Everything a model-risk reviewer needs in one file that opens offline: the data gate, the
split, discrimination with confidence intervals, calibration per grade with its tests,
stability over time, the champion against the scorecard, the scorecard itself (bins, points,
overrides and selection evidence: :mod:`scoring.reporting.scorecard_section`), SHAP explanations
and reason codes, decisions and limits. Plots are PNGs embedded as ``data:`` URIs; the style sheet is
inline; the page references nothing outside itself (the pages' shared toolkit:
:mod:`scoring.reporting.html`).

This module is pure: the stage (``pipelines/report.py``) reads the files, :func:`review_report`
builds the typed :class:`ReviewReport` from what it read (the functions here compute the
intervals and figures from arrays and dictionaries), and :func:`render_html` turns it into a
string.

Confidence intervals for AUC follow DeLong, DeLong and Clarke-Pearson (1988), computed
with the midrank algorithm of Sun and Xu (2014); the paired form compares two models on the
same rows. The Gini interval is the AUC interval mapped through ``2 * AUC - 1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.data.config import DriftConfig
from scoring.monitoring.stability import flag as psi_flag
from scoring.monitoring.stability import psi
from scoring.reporting.evaluation import PLOTTED_PARTS
from scoring.reporting.html import (
    CONTENT_SECURITY_POLICY,
    CSS,
    Image,
    esc,
    figure_png,
    img,
    missing,
    num,
    pct,
    pyplot,
    table,
)
from scoring.reporting.metrics import (
    Comparison,
    PerformanceRow,
    assess_performance,
    calibration_table,
    delong_ci,
)
from scoring.reporting.scorecard_section import check_failures

if TYPE_CHECKING:
    from scoring.models.calibration import Calibrator
    from scoring.models.model import PDModel
    from scoring.reporting.scorecard_section import ScorecardReview

# Stable ids: the browser test and any link into the report rely on them.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("data", "Data and validation"),
    ("scope", "What the data supports"),
    ("split", "Split sizes and default rates"),
    ("performance", "Performance with confidence intervals"),
    ("curves", "ROC, KS and calibration"),
    ("champion", "Champion against scorecard"),
    ("scorecard", "Scorecard"),
    ("grades", "Grades and their tests"),
    ("stability", "Stability: train against out-of-time"),
    ("shap-global", "SHAP: global"),
    ("shap-local", "SHAP: local"),
    ("reason-codes", "Reason-code frequencies"),
    ("decisions", "Decisions and limits"),
    ("reject-inference", "Reject inference: through the door"),
    ("whatif", "Policy what-if, cut-off curve and pricing"),
    ("fairness", "Fair lending: approvals by group"),
)


SECTION_IDS: tuple[str, ...] = tuple(s for s, _ in SECTIONS)


SPLIT_LABELS = {"train": "train", "valid": "validation", "test": "test", "oot": "out-of-time"}


# Keys of reports/explanations/summary.json (the explanations stage's contract).
EXPLANATION_KEYS = (
    "global_importance",
    "reason_frequencies",
    "n_explained",
    "method",
    "additivity_max_error",
)


def curve_images(
    outcomes: Mapping[str, npt.ArrayLike],
    scores: Mapping[str, Mapping[str, npt.ArrayLike]],
    champion: str,
    calibrated: Mapping[str, npt.ArrayLike] | None = None,
    bins: int = 10,
) -> list[Image]:
    """ROC of every model per split; KS (cumulative PD of bads and goods) and calibration of the champion.

    The calibration plot uses ``calibrated`` (split -> the champion's calibrated PD) when given,
    else the champion's raw PD.
    """
    from sklearn.metrics import roc_curve

    plt = pyplot()
    splits = list(outcomes)
    images: list[Image] = []

    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 4.4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        y = np.asarray(outcomes[split], dtype=np.float64)
        for model, by_split in scores.items():
            if split not in by_split:
                continue
            fpr, tpr, _ = roc_curve(y, np.asarray(by_split[split], dtype=np.float64))
            estimate = delong_ci(y, by_split[split])
            style = "-" if model == champion else "--"
            ax.plot(fpr, tpr, style, label=f"{model} (AUC {estimate.auc:.3f})")
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {_label(split)}")
        ax.legend(loc="lower right", fontsize=8)
    images.append(Image("roc", "ROC curves", figure_png(fig)))

    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 4.4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        y = np.asarray(outcomes[split], dtype=np.float64)
        p = np.asarray(scores[champion][split], dtype=np.float64)
        grid = np.unique(p)
        bads = np.searchsorted(np.sort(p[y == 1]), grid, side="right") / max(int((y == 1).sum()), 1)
        goods = np.searchsorted(np.sort(p[y == 0]), grid, side="right") / max(int((y == 0).sum()), 1)
        gap = goods - bads
        at = int(np.argmax(gap))
        ax.plot(grid, goods, label="goods")
        ax.plot(grid, bads, label="bads")
        ax.vlines(grid[at], bads[at], goods[at], colors="black", linestyles=":")
        ax.set_xscale("log")
        ax.set(
            xlabel="PD (log scale)",
            ylabel="cumulative share",
            title=f"KS {gap[at]:.3f}, {_label(split)} ({champion})",
        )
        ax.legend(loc="lower right", fontsize=8)
    images.append(Image("ks", "KS: cumulative PD of goods and bads", figure_png(fig)))

    fig, ax = plt.subplots(figsize=(4.8, 4.6))
    top = 0.0
    for split in splits:
        y = np.asarray(outcomes[split], dtype=np.float64)
        source = calibrated if calibrated is not None and split in calibrated else scores[champion]
        table = calibration_table(y, source[split], bins=bins)
        ax.plot(table["mean_pd"], table["observed_rate"], marker="o", label=_label(split))
        top = max(top, float(table["mean_pd"].max()), float(table["observed_rate"].max()))
    ax.plot([0, top], [0, top], ":", color="grey")
    kind = "calibrated PD" if calibrated is not None else "PD"
    ax.set(xlabel=f"mean {kind}", ylabel="observed default rate", title=f"Calibration ({kind} deciles)")
    ax.legend(loc="upper left", fontsize=8)
    images.append(Image("calibration", f"Calibration of the champion's {kind}", figure_png(fig)))
    return images


def importance_image(importance: Sequence[tuple[str, float]], top: int = 20) -> Image:
    """Horizontal bars of mean |SHAP| for the ``top`` features."""
    plt = pyplot()
    shown = list(importance)[:top][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * max(len(shown), 3) + 1.0))
    ax.barh([f for f, _ in shown], [v for _, v in shown], color="#3b6ea5")
    ax.set(xlabel="mean |contribution| (log-odds)", title="Global importance")
    ax.tick_params(axis="y", labelsize=8)
    return Image("global_importance", "Mean absolute SHAP contribution per feature", figure_png(fig))


def stability_table(
    reference: pd.DataFrame, recent: pd.DataFrame, config: DriftConfig, score: str | None = None
) -> pd.DataFrame:
    """PSI of every column of ``reference`` (train) against ``recent`` (out-of-time), largest first.

    Columns are the model's features (its feature matrix); ``score`` names a column, if any,
    that holds the model's PD, reported first as the score's own stability.
    """
    missing = [c for c in reference.columns if c not in recent.columns]
    if missing:
        raise ValueError(f"out-of-time frame lacks columns {missing} that the reference has")
    rows = []
    for column in reference.columns:
        value = psi(reference[column], recent[column], bins=config.bins)
        rows.append({"feature": str(column), "psi": value, "flag": psi_flag(value, config)})
    table = pd.DataFrame(rows, columns=["feature", "psi", "flag"])
    table["is_score"] = table["feature"] == score
    table = table.sort_values(["is_score", "psi", "feature"], ascending=[False, False, True])
    return table.drop(columns="is_score").reset_index(drop=True)


DECISIONS = ("approve", "refer", "decline")


SPLIT_ORDER = ("train", "valid", "test", "oot", "unlabelled", "excluded")


def decision_summary(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per split, the scored output's decisions: rows, shares of each decision, mean PD, limits.

    ``predictions`` is the evaluate stage's file: ``split``, ``pd``, ``decision`` and
    ``suggested_limit`` per application, as the exported model scores them. An empty frame
    comes back when the file has no decisions (an older pipeline).
    """
    columns = ["split", "n", *DECISIONS, "mean_pd", "median_limit"]
    if predictions.empty or not {"split", "decision"} <= set(predictions.columns):
        return pd.DataFrame(columns=columns)
    unknown = sorted(set(predictions["decision"].dropna().astype(str)) - set(DECISIONS))
    if unknown:
        raise ValueError(f"column 'decision' holds {unknown}; expected only {list(DECISIONS)}")
    rows = []
    rank = {name: i for i, name in enumerate(SPLIT_ORDER)}
    splits = sorted(map(str, predictions["split"].unique()), key=lambda s: (rank.get(s, len(rank)), s))
    for split in splits:
        part = predictions[predictions["split"] == split]
        shares = part["decision"].value_counts(normalize=True)
        limits = part["suggested_limit"] if "suggested_limit" in part else pd.Series(dtype=float)
        rows.append(
            {
                "split": split,
                "n": len(part),
                **{d: float(shares.get(d, 0.0)) for d in DECISIONS},
                "mean_pd": float(part["pd"].mean()) if "pd" in part else float("nan"),
                "median_limit": float(limits[limits > 0].median()) if (limits > 0).any() else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class Explanations:
    """The explanations stage's outputs (reports/explanations/), as the report shows them."""

    global_importance: list[tuple[str, float]]
    reason_frequencies: list[dict[str, Any]]
    n_explained: int
    method: str
    additivity_max_error: float
    beeswarm: Image | None
    dependence: list[Image]
    waterfall_grade: list[Image]
    waterfall_decline: list[Image]
    # Optional keys the explanations stage may add beyond the agreed five.
    baseline: str | None = None
    n_declined: int | None = None
    reasons_per_declined: dict[str, int] = field(default_factory=dict)


def _natural_key(name: str) -> tuple[Any, ...]:
    stem = name.rsplit(".", 1)[0]
    head, _, tail = stem.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (stem, -1)


def explanations_from(summary: Mapping[str, Any], images: Mapping[str, bytes]) -> Explanations:
    """Check the explanations contract and gather its plots (file name -> PNG bytes).

    Plots: ``beeswarm.png``, ``dependence_<feature>.png``, ``waterfall_grade_<k>.png``,
    ``waterfall_decline_<i>.png``; other files are ignored.
    """
    absent = [k for k in EXPLANATION_KEYS if k not in summary]
    if absent:
        raise ValueError(
            f"explanations summary lacks keys {absent}; expected {list(EXPLANATION_KEYS)}, "
            f"got {sorted(summary)}"
        )
    importance = [
        (str(e["feature"]), float(e["mean_abs_contribution"])) for e in summary["global_importance"]
    ]
    frequencies = [dict(e) for e in summary["reason_frequencies"]]
    for entry in frequencies:
        lacking = [k for k in ("code", "text", "count", "share") if k not in entry]
        if lacking:
            raise ValueError(f"reason frequency entry {entry} lacks {lacking}")

    def pick(prefix: str) -> list[Image]:
        names = sorted((n for n in images if n.startswith(prefix) and n.endswith(".png")), key=_natural_key)
        return [Image(n.removesuffix(".png"), _caption(n), images[n]) for n in names]

    beeswarm = None
    if "beeswarm.png" in images:
        beeswarm = Image("beeswarm", "SHAP beeswarm: contributions per feature", images["beeswarm.png"])
    return Explanations(
        global_importance=importance,
        reason_frequencies=frequencies,
        n_explained=int(summary["n_explained"]),
        method=str(summary["method"]),
        additivity_max_error=float(summary["additivity_max_error"]),
        beeswarm=beeswarm,
        dependence=pick("dependence_"),
        waterfall_grade=pick("waterfall_grade_"),
        waterfall_decline=pick("waterfall_decline_"),
        baseline=None if summary.get("baseline") is None else str(summary["baseline"]),
        n_declined=None if summary.get("n_declined") is None else int(summary["n_declined"]),
        reasons_per_declined={
            str(k): int(v) for k, v in (summary.get("declined_reason_counts") or {}).items()
        },
    )


def _caption(name: str) -> str:
    stem = name.removesuffix(".png")
    if stem.startswith("dependence_"):
        return f"Dependence: {stem.removeprefix('dependence_')}"
    if stem.startswith("waterfall_grade_"):
        return f"Waterfall: an applicant in grade {stem.removeprefix('waterfall_grade_')}"
    if stem.startswith("waterfall_decline_"):
        return f"Waterfall: declined applicant {stem.removeprefix('waterfall_decline_')}"
    return stem


@dataclass(frozen=True)
class ReviewReport:
    """Everything the page shows. Dictionaries are the stages' JSON outputs as written."""

    title: str
    model_version: str | None
    champion: Mapping[str, Any]
    train_summary: Mapping[str, Any]
    validation_summary: Mapping[str, Any]
    drift: Mapping[str, Any]
    split_summary: Mapping[str, Any]
    performance: list[PerformanceRow]
    comparisons: list[Comparison]
    model_metrics: Mapping[str, Any]
    curves: list[Image]
    grade_tables: Mapping[str, pd.DataFrame]
    calibration_report: Mapping[str, Any]
    stability: pd.DataFrame
    drift_config: DriftConfig = field(default_factory=DriftConfig)
    explanations: Explanations | None = None
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    scope: Mapping[str, Any] = field(default_factory=dict)
    model_digest: str | None = None  # SHA-256 of the exported model's manifest (the export stage's)
    """:func:`data_scope`: what the dataset's columns switched off."""
    through_the_door: Mapping[str, Any] = field(default_factory=dict)
    """The evaluate stage's through-the-door figures (reject inference); empty when it is off."""
    whatif: Mapping[str, Any] = field(default_factory=dict)
    """The whatif stage's reports/whatif/detail.json; empty when there is none."""
    whatif_curve: Image | None = None
    fairness: Mapping[str, Any] = field(default_factory=dict)
    """The fairness stage's reports/fairness.json; empty when there is none."""
    scorecard: ScorecardReview | None = None
    """The scorecard, its selection evidence and plots (:mod:`scoring.reporting.scorecard_section`)."""


def data_scope(
    spec: DatasetSpec,
    features: Mapping[str, Any],
    calibration_report: Mapping[str, Any],
    explanation_summary: Mapping[str, Any],
    scoring: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the dataset's columns support and what they switched off, from the stages' outputs.

    ``features`` is the feature stage's summary (reports/features.json); the rule scope comes
    from the calibrate report, the reason map's origin from the explanations summary; ``scoring``
    is the evaluate stage's account of scoring the splits (metrics ``scoring``: rows scored,
    rejected with reasons, flagged where training did not show a value).
    """
    return {
        "source": spec.source,
        "follows_auto_loan_contract": spec.follows_auto_loan_contract,
        "id_column": spec.id_column,
        "generated_id": spec.generated_id,
        "roles": dict(spec.roles),
        "unused_columns": list(features.get("unused_columns", [])),
        "derived_not_computed": dict(features.get("derived_not_computed", {})),
        "rules": dict(calibration_report.get("rule_scope", {})),
        "reason_map": dict(explanation_summary.get("reason_map", {})),
        "scoring": dict(scoring or {}),
    }


REPORT_TITLE = "Reviewer report: probability-of-default model"
SCORE_COLUMN = "PD (champion)"
"""The champion's PD as a column of the stability table (the score's own stability)."""


def review_report(
    *,
    spec: DatasetSpec,
    champion: Mapping[str, Any],
    models: Mapping[str, PDModel],
    calibrator: Calibrator,
    splits: Mapping[str, pd.DataFrame],
    train: pd.DataFrame,
    metrics: Mapping[str, Any],
    train_summary: Mapping[str, Any],
    validation_summary: Mapping[str, Any],
    drift: Mapping[str, Any],
    split_summary: Mapping[str, Any],
    features_summary: Mapping[str, Any],
    calibration_report: Mapping[str, Any],
    grade_tables: Mapping[str, pd.DataFrame],
    explanation_summary: Mapping[str, Any],
    explanation_images: Mapping[str, bytes],
    predictions: pd.DataFrame,
    drift_config: DriftConfig,
    calibration_bins: int,
    model_digest: str | None = None,
    whatif: Mapping[str, Any] | None = None,
    whatif_curve_png: bytes | None = None,
    fairness: Mapping[str, Any] | None = None,
    scorecard: ScorecardReview | None = None,
) -> ReviewReport:
    """The reviewer report from what the earlier stages wrote, and the models they trained.

    ``champion`` is the train stage's champion record (champion.json); ``models`` the trained
    models by name (the evaluate metrics' ``models``), scored on each frame of ``splits``
    (the plotted splits, test and out-of-time; empty ones are left out) for the confidence
    intervals and the paired comparison; ``calibrator`` gives the champion's calibrated PD for
    the calibration plot. ``train`` is the reference of the stability table (against
    out-of-time). The mappings are the stages' JSON outputs as written: ``metrics`` (evaluate),
    ``train_summary``, ``validation_summary``, ``drift``, ``split_summary``, ``features_summary``,
    ``calibration_report``, ``explanation_summary`` (explain's summary.json, with its PNGs by
    file name in ``explanation_images``); ``grade_tables`` by split (calibrate's grade CSVs);
    ``predictions`` is evaluate's scored output. ``scorecard`` is the Scorecard section's
    content (:func:`scoring.reporting.scorecard_section.scorecard_review`).
    """
    name = champion["champion"]
    outcomes: dict[str, np.ndarray] = {}
    scores: dict[str, dict[str, np.ndarray]] = {kind: {} for kind in models}
    frames: dict[str, pd.DataFrame] = {}
    for split in PLOTTED_PARTS:
        frame = splits.get(split)
        if frame is None or frame.empty:
            continue
        frames[split] = frame
        outcomes[split] = frame[spec.target_column].to_numpy(dtype=np.float64)
        for kind, model in models.items():
            scores[kind][split] = model.predict_pd(frame)
    ceilings = {
        split: float(metrics[split]["true_pd_auc"])
        for split in outcomes
        if metrics.get(split, {}).get("true_pd_auc") is not None
    }
    performance, comparisons = assess_performance(outcomes, scores, name, ceilings)
    calibrated = {split: calibrator.predict(scores[name][split]) for split in outcomes}
    curves = curve_images(outcomes, scores, name, calibrated, calibration_bins) if outcomes else []

    stability = pd.DataFrame(columns=["feature", "psi", "flag"])
    if "oot" in frames:
        model = models[name]
        reference, recent = model.feature_matrix(train), model.feature_matrix(frames["oot"])
        reference[SCORE_COLUMN] = model.predict_pd(train)
        recent[SCORE_COLUMN] = scores[name]["oot"]
        stability = stability_table(reference, recent, drift_config, score=SCORE_COLUMN)

    return ReviewReport(
        title=REPORT_TITLE,
        # the content id the scored rows carry (the same model gives the same id on every run)
        model_version=str(predictions["model_version"].iloc[0])
        if "model_version" in predictions.columns and len(predictions)
        else None,
        model_digest=model_digest,
        champion=champion,
        train_summary=train_summary,
        validation_summary=validation_summary,
        drift=drift,
        split_summary=split_summary,
        performance=performance,
        comparisons=comparisons,
        model_metrics=metrics["models"],
        curves=curves,
        grade_tables=grade_tables,
        calibration_report=calibration_report,
        stability=stability,
        drift_config=drift_config,
        explanations=explanations_from(explanation_summary, explanation_images),
        decisions=decision_summary(predictions),
        notes=_notes(spec, metrics),
        scope=data_scope(
            spec, features_summary, calibration_report, explanation_summary, metrics.get("scoring")
        ),
        through_the_door=metrics.get("through_the_door", {}),
        whatif=whatif or {},
        whatif_curve=None
        if whatif_curve_png is None
        else Image("cutoff_curve", "Approval cut-off grade: bad rate and profit", whatif_curve_png),
        fairness=fairness or {},
        scorecard=scorecard,
    )


def _notes(spec: DatasetSpec, metrics: Mapping[str, Any]) -> list[str]:
    notes = [f"Target: {spec.target_column}; performance figures use the uncalibrated PD of each model."]
    if not any("true_pd_auc" in metrics.get(name, {}) for name in PLOTTED_PARTS):
        notes.append("No ground truth (not the synthetic portfolio): the true-PD ceiling is not shown.")
    return notes


def _scope_section(r: ReviewReport) -> str:
    s = r.scope
    if not s:
        return missing("The stages recorded no scope for this run.")
    rules = s.get("rules", {})
    contract = (
        "follows the auto-loan data contract"
        if s.get("follows_auto_loan_contract")
        else (
            "does not follow the auto-loan data contract: rules, constraints and derived features "
            "that need columns it lacks are switched off"
        )
    )
    ident = f"id column {s.get('id_column')}" + (
        " (rows numbered in file order)" if s.get("generated_id") else ""
    )
    out = [f"<p>Source {esc(s.get('source'))}: {esc(contract)}; {esc(ident)}.</p>"]
    roles = s.get("roles") or {}
    rows: list[list[str]] = [[esc(role), esc(column)] for role, column in roles.items()]
    out.append(
        "<h3>Column roles</h3>"
        + (
            table(["contract role", "file column"], rows)
            if rows
            else "<p>No roles mapped (data.file.roles).</p>"
        )
    )
    off = {**rules.get("knock_outs_switched_off", {}), **rules.get("limit_constraints_switched_off", {})}
    in_force = [*rules.get("knock_outs_in_force", []), *rules.get("limit_constraints_in_force", [])]
    switched = [
        ["derived feature", esc(name), esc(", ".join(lacking))]
        for name, lacking in s.get("derived_not_computed", {}).items()
    ]
    switched += [
        ["knock-out rule", esc(code), esc(", ".join(cols))]
        for code, cols in rules.get("knock_outs_switched_off", {}).items()
    ]
    switched += [
        ["limit constraint", esc(name), esc(", ".join(cols))]
        for name, cols in rules.get("limit_constraints_switched_off", {}).items()
    ]
    out.append("<h3>Switched off</h3>")
    if switched:
        out.append(table(["what", "name", "missing columns"], switched))
    else:
        out.append("<p>Nothing: every derived feature, knock-out rule and limit constraint is in force.</p>")
    if off or in_force:
        out.append(f"<p>In force: {esc(', '.join(in_force) or 'no knock-out rule or limit constraint')}.</p>")
    for note in rules.get("notes", []):
        if "no limit is suggested" in note:
            out.append(f"<p>{esc(note)}.</p>")
    reasons = s.get("reason_map") or {}
    if reasons:
        text = f"Reason codes: from {esc(reasons.get('source'))}"
        if reasons.get("generated"):
            names = ", ".join(reasons["generated"])
            text += f"; generated for {num(len(reasons['generated']))} features ({esc(names)})"
            if reasons.get("file"):
                text += f", written to {esc(reasons['file'])} to edit"
        if reasons.get("left_out"):
            text += f"; params entries left out for absent features: {esc(', '.join(reasons['left_out']))}"
        out.append(f"<p>{text}.</p>")
    unused = s.get("unused_columns") or []
    if unused:
        out.append(f"<p>Columns with no usable values, not model inputs: {esc(', '.join(unused))}.</p>")
    out.append(_scoring_accounts(s.get("scoring") or {}))
    return "".join(out)


def _scoring_accounts(scoring: Mapping[str, Any]) -> str:
    """The evaluate stage's scoring of the splits through the exported model's input rules."""
    if not scoring:
        return ""
    out = [
        "<h3>Scoring the splits</h3>",
        f"<p>Rows {num(scoring.get('n_input'))} = scored {num(scoring.get('n_scored'))} + "
        f"rejected {num(scoring.get('n_rejected'))} by the exported model's input rules. "
        f"Scored rows with a value training did not show (scored all the same, flagged in "
        f"<code>input_flags</code>): {num(scoring.get('n_flagged'))}.</p>",
    ]
    from scoring.serving.inputs import FLAG_CODES

    flags = scoring.get("flags") or {}
    if flags:
        rows = []
        for flag, n in flags.items():
            field_name, _, code = flag.rpartition(":")
            rows.append([esc(field_name), esc(code), num(n), esc(FLAG_CODES.get(code, ""))])
        out.append(table(["field", "flag", "rows", "meaning"], rows))
    examples = scoring.get("rejected_examples") or []
    if examples:
        rows = [
            [
                esc(e.get("split", "")),
                num(e.get("row")),
                esc(e.get("application_id", "")),
                esc(e.get("reject_reasons", "")),
            ]
            for e in examples
        ]
        out.append("<p>Rejected rows (the first ones) with their reasons:</p>")
        out.append(table(["split", "row", "id", "reasons"], rows))
    return "".join(out)


def _label(split: str) -> str:
    return SPLIT_LABELS.get(split, split)


def _flag(value: Any) -> str:
    text = str(value)
    css = {
        "green": "ok",
        "stable": "ok",
        "yellow": "warn",
        "moderate": "warn",
        "red": "bad",
        "significant": "bad",
    }.get(text, "na")
    return f'<span class="flag {css}">{esc(text)}</span>'


def _data_section(r: ReviewReport) -> str:
    v = r.validation_summary
    rows = [
        ["input rows", num(v.get("n_input"))],
        ["passed the gate", num(v.get("n_passed"))],
        ["quarantined", num(v.get("n_quarantined"))],
        ["expectations checked", num(v.get("n_expectations"))],
        ["columns dropped as leaky", esc(", ".join(map(str, v.get("dropped_as_leaky", []))) or "none")],
    ]
    out = [table(["", ""], rows, "kv")]
    reasons = v.get("quarantine_by_reason") or {}
    if reasons:
        out.append("<h3>Quarantine reasons</h3>")
        out.append(table(["reason", "rows"], [[esc(k), num(n)] for k, n in sorted(reasons.items())]))
    warnings = v.get("warnings") or {}
    if warnings:
        out.append("<h3>Warnings (counted only)</h3>")
        out.append(table(["rule", "count"], [[esc(k), num(n)] for k, n in sorted(warnings.items())]))
    d = r.drift
    out.append("<h3>Drift in the input: latest months against the rest</h3>")
    if d.get("available"):
        columns = d.get("columns", {})
        ranked = sorted(columns.items(), key=lambda kv: -float(kv[1]["psi"]))
        out.append(
            f"<p>{num(d.get('recent_rows'))} rows from {esc(d.get('recent_from'))} against "
            f"{num(d.get('reference_rows'))} earlier rows; maximum PSI {num(d.get('max_psi'))}, "
            f"{num(d.get('n_moderate'))} moderate and {num(d.get('n_significant'))} significant shifts. "
            f"The ten largest:</p>"
        )
        out.append(
            table(
                ["column", "PSI", "flag"],
                [[esc(c), num(e["psi"]), _flag(e["flag"])] for c, e in ranked[:10]],
            )
        )
    else:
        out.append(missing(f"No drift report: {d.get('reason', 'not available')}."))
    return "".join(out)


def _split_section(r: ReviewReport) -> str:
    parts = r.split_summary.get("parts", {})
    order = ["train", "valid", "test", "oot", "unlabelled", "excluded"]
    rows = []
    for name in [*[p for p in order if p in parts], *sorted(set(parts) - set(order))]:
        part = parts[name]
        rows.append(
            [
                esc(_label(name)),
                num(part.get("n")),
                pct(part["default_rate"]) if "default_rate" in part else "unlabelled",
                esc(part.get("first_date", "")),
                esc(part.get("last_date", "")),
            ]
        )
    note = ""
    if r.split_summary.get("oot_from_month"):
        start = esc(r.split_summary["oot_from_month"])
        note = f"<p>Out-of-time from {start}; customers never straddle splits.</p>"
    return note + table(["split", "rows", "default rate", "first date", "last date"], rows)


def _performance_section(r: ReviewReport) -> str:
    if not r.performance:
        return missing("No labelled test or out-of-time rows to measure.")
    level = r.performance[0].auc.level
    rows = []
    for p in r.performance:
        ceiling = num(p.true_pd_auc) if p.true_pd_auc is not None else "n/a"
        rows.append(
            [
                esc(p.model) + (" (champion)" if p.model == r.champion.get("champion") else ""),
                esc(_label(p.split)),
                num(p.n),
                num(p.defaults),
                f"{p.auc.auc:.4f} [{p.auc.low:.4f}, {p.auc.high:.4f}]",
                f"{p.auc.gini:.4f} [{2 * p.auc.low - 1:.4f}, {2 * p.auc.high - 1:.4f}]",
                num(p.ks),
                num(p.brier),
                ceiling,
            ]
        )
    pct = f"{100 * level:.0f}%"
    out = [
        f"<p>AUC with {pct} DeLong confidence intervals; Gini = 2 AUC - 1 with the mapped interval. "
        "True-PD AUC is the ceiling any model could reach on the same rows (synthetic data only).</p>",
        table(
            ["model", "split", "rows", "defaults", f"AUC [{pct} CI]", "Gini", "KS", "Brier", "true-PD AUC"],
            rows,
        ),
    ]
    if r.comparisons:
        out.append(
            "<p>The paired DeLong test of the champion against the other models on the same rows is in "
            '<a href="#champion">Champion against scorecard</a>.</p>'
        )
    return "".join(out)


def _comparison_table(comparisons: Sequence[Comparison]) -> str:
    rows = [
        [
            esc(_label(c.split)),
            esc(f"{c.model_a} - {c.model_b}"),
            f"{c.result.difference:+.4f} [{c.result.low:+.4f}, {c.result.high:+.4f}]",
            f"{c.result.p_value:.4g}",
        ]
        for c in comparisons
    ]
    return table(["split", "AUC difference", "estimate [CI]", "p-value"], rows)


def _curves_section(r: ReviewReport) -> str:
    if not r.curves:
        return missing("No curves: no labelled test or out-of-time rows.")
    return '<div class="figs">' + "".join(img(i) for i in r.curves) + "</div>"


def _champion_section(r: ReviewReport) -> str:
    c = r.champion
    out = [
        f"<p><strong>Champion: {esc(c.get('champion'))}</strong>. {esc(c.get('reason', ''))}</p>",
    ]
    # The figures the choice was made on: champion.json's per-model AUCs (cross-validated
    # "auc" when the rule is cv; "valid_auc" on the validation split).
    choice = {
        key: value
        for key, value in c.items()
        if key in ("auc", "valid_auc")
        and isinstance(value, Mapping)
        and all(isinstance(v, int | float) for v in value.values())
    }
    if choice:
        titles = {"auc": f"AUC ({c.get('selection', 'rule')})", "valid_auc": "validation AUC"}
        models = sorted({m for value in choice.values() for m in value})
        out.append(
            table(
                ["model", *(titles[k] for k in choice)],
                [[esc(m), *(num(choice[k].get(m)) for k in choice)] for m in models],
            )
        )
    rows = []
    # Splits the exported models were fitted on score in-sample there; say so beside the figure.
    fit_splits = c.get("fit_splits")
    fitted_on = {str(s) for s in fit_splits} if isinstance(fit_splits, list) else {"train"}
    for model, by_split in sorted(r.model_metrics.items()):
        for split in ("train", "valid", "test", "oot"):
            m = by_split.get(split)
            if not m:
                continue
            rows.append(
                [
                    esc(model),
                    esc(_label(split) + (" (fitted on: in-sample)" if split in fitted_on else "")),
                    num(m.get("n")),
                    num(m.get("auc")),
                    num(m.get("gini")),
                    num(m.get("ks")),
                    num(m.get("brier")),
                    num(m.get("log_loss")),
                ]
            )
    if rows:
        out.append("<h3>Every model on every split (uncalibrated PD)</h3>")
        out.append(table(["model", "split", "rows", "AUC", "Gini", "KS", "Brier", "log loss"], rows))
    t = r.train_summary
    details = []
    for model in sorted(k for k, v in t.items() if isinstance(v, Mapping)):
        info = {k: v for k, v in t[model].items() if not isinstance(v, Mapping)}
        if info:
            text = ", ".join(
                f"{k}={num(v) if isinstance(v, float) else esc(v)}" for k, v in sorted(info.items())
            )
            details.append([esc(model), text])
    if details:
        out.append("<h3>Training</h3>")
        out.append(table(["model", "details"], details))
    if r.comparisons:
        out.append("<h3>Paired DeLong test on test and out-of-time</h3>")
        out.append(_comparison_table(r.comparisons))
    swap = r.calibration_report.get("swap_set")
    if swap:
        out.append(
            f"<h3>Swap set at a {pct(swap.get('approval_rate'), 0)} approval rate (test)</h3>"
            f"<p>a = {esc(swap.get('a', 'scorecard'))}, b = {esc(swap.get('b', 'xgboost'))}: "
            "applicants one model approves and the other declines, "
            "with their observed bad rates.</p>"
        )
        cells = []
        for key in ("both_approve", "only_a", "only_b", "both_decline"):
            part = swap.get(key, {})
            cells.append([esc(key.replace("_", " ")), num(part.get("count")), pct(part.get("bad_rate"))])
        out.append(table(["group", "applicants", "bad rate"], cells))
    return "".join(out)


GRADE_COLUMNS = (
    ("name", "grade", None),
    ("pd_low", "PD from", "pct"),
    ("pd_high", "PD to", "pct"),
    ("central_pd", "grade PD", "pct"),
    ("count", "rows", "int"),
    ("share", "share", "pct"),
    ("defaults", "defaults", "int"),
    ("default_rate", "default rate", "pct"),
    ("mean_pd", "mean PD", "pct"),
)


def _grades_section(r: ReviewReport) -> str:
    out = []
    scale = r.calibration_report.get("master_scale", {})
    calibrator = r.calibration_report.get("calibrator", {})
    if calibrator:
        out.append(
            f"<p>Calibrator: {esc(calibrator.get('method'))} ({esc(calibrator.get('selection'))} choice), "
            f"PD floor {pct(calibrator.get('pd_floor'), 3)}; master scale of "
            f"{num(len(scale.get('central_pd', [])))} grades.</p>"
        )
    fitted_on = r.calibration_report.get("fitted_on")
    if isinstance(fitted_on, Mapping) and isinstance(fitted_on.get("by_split"), Mapping):
        sources = {"out_of_fold": "out-of-fold predictions", "valid": "predictions on the validation split"}
        parts = ", ".join(f"{esc(_label(str(k)))} {num(v)}" for k, v in fitted_on["by_split"].items())
        out.append(
            f"<p>Calibrator and master scale fitted on {num(fitted_on.get('rows'))} "
            f"{esc(sources.get(str(fitted_on.get('source')), 'held-out predictions'))} ({parts}).</p>"
        )
    if not r.grade_tables:
        return "".join(out) + missing("No grade tables.")
    for split, grade_table in r.grade_tables.items():
        tests = r.calibration_report.get(split, {}).get("tests", {})
        by_grade = {int(g["grade"]): g for g in tests.get("grades", [])}
        rows = []
        for _, row in grade_table.iterrows():
            cells = []
            for column, _title, kind in GRADE_COLUMNS:
                value = row.get(column)
                if kind == "pct":
                    cells.append(pct(value))
                elif kind == "int":
                    cells.append(num(int(value)) if pd.notna(value) else "n/a")
                else:
                    cells.append(esc(value))
            g = by_grade.get(int(row["grade"]), {})
            cells += [
                num(g.get("jeffreys_p")),
                _flag(g.get("jeffreys_flag", "n/a")),
                num(g.get("binomial_p")),
                _flag(g.get("binomial_flag", "n/a")),
            ]
            rows.append(cells)
        out.append(f"<h3>{esc(_label(split))}</h3>")
        out.append(
            table(
                [t for _, t, _k in GRADE_COLUMNS] + ["Jeffreys p", "", "binomial p", ""],
                rows,
                "grades",
            )
        )
        summary = []
        hl = tests.get("hosmer_lemeshow")
        if hl:
            summary.append(
                [
                    "Hosmer-Lemeshow",
                    f"statistic {num(hl.get('statistic'))}, df {num(hl.get('df'))}, "
                    f"p {num(hl.get('p_value'))}",
                    _flag(hl.get("flag", "n/a")),
                ]
            )
        hhi = tests.get("herfindahl")
        if hhi:
            summary.append(
                [
                    "Herfindahl (concentration)",
                    f"index {num(hhi.get('index'))}, effective grades {num(hhi.get('effective_grades'), 2)}",
                    _flag(hhi.get("flag", "n/a")),
                ]
            )
        port = tests.get("portfolio")
        if port:
            summary.append(
                [
                    "portfolio (Jeffreys)",
                    f"PD {pct(port.get('pd'))} against {pct(port.get('default_rate'))} observed, "
                    f"p {num(port.get('jeffreys_p'))}",
                    _flag(port.get("jeffreys_flag", "n/a")),
                ]
            )
        if "default_rates_increasing" in tests:
            rising = bool(tests["default_rates_increasing"])
            summary.append(
                [
                    "default rates rise with grade",
                    "yes" if rising else "no",
                    _flag("green" if rising else "red"),
                ]
            )
        if summary:
            out.append(table(["test", "result", "flag"], summary))
    return "".join(out)


def _stability_section(r: ReviewReport) -> str:
    if r.stability.empty:
        return missing("No out-of-time split: stability over time cannot be measured.")
    c = r.drift_config
    rows = [[esc(row.feature), num(row.psi), _flag(row.flag)] for row in r.stability.itertuples()]
    n_flagged = int((r.stability["flag"] != "stable").sum())
    return (
        f"<p>Population stability index of each model feature (and the champion's PD) between train "
        f"and out-of-time, {c.bins} bins at train quantiles; moderate from {c.moderate}, significant "
        f"from {c.significant}. {n_flagged} of {len(rows)} flagged.</p>"
        + table(["feature", "PSI", "flag"], rows, "scroll")
    )


def _shap_global_section(r: ReviewReport) -> str:
    e = r.explanations
    if e is None:
        return missing("Explanations are not available for this run.")
    out = [
        f"<p>Method: {esc(e.method)}; {num(e.n_explained)} applicants explained; contributions "
        f"add up to the model's log-odds within {e.additivity_max_error:.2e}.</p>",
        '<div class="figs">',
    ]
    if e.global_importance:
        out.append(img(importance_image(e.global_importance)))
    if e.beeswarm is not None:
        out.append(img(e.beeswarm))
    out.append("</div>")
    if e.dependence:
        out.append("<h3>Dependence of the top features</h3>")
        out.append('<div class="figs">' + "".join(img(i) for i in e.dependence) + "</div>")
    if e.global_importance:
        out.append(
            table(
                ["feature", "mean |contribution|"],
                [[esc(f), num(v)] for f, v in e.global_importance],
                "scroll",
            )
        )
    return "".join(out)


def _shap_local_section(r: ReviewReport) -> str:
    e = r.explanations
    if e is None:
        return missing("Explanations are not available for this run.")
    out = []
    if e.waterfall_grade:
        out.append("<h3>One sampled applicant per grade</h3>")
        out.append('<div class="figs">' + "".join(img(i) for i in e.waterfall_grade) + "</div>")
    if e.waterfall_decline:
        out.append("<h3>Declined applicants</h3>")
        out.append('<div class="figs">' + "".join(img(i) for i in e.waterfall_decline) + "</div>")
    return "".join(out) or missing("No waterfall plots were produced.")


def _reasons_section(r: ReviewReport) -> str:
    e = r.explanations
    if e is None:
        return missing("Reason codes are not available for this run.")
    if not e.reason_frequencies:
        return missing("No declined applicant received a reason code.")
    rows = [
        [esc(f["code"]), esc(f["text"]), num(int(f["count"])), pct(f["share"], 1)]
        for f in e.reason_frequencies
    ]
    context = ""
    if e.n_declined is not None:
        context += f" {num(e.n_declined)} declined applicants."
    if e.baseline is not None:
        context += f" Contributions are measured against the baseline '{esc(e.baseline)}'."
    counts = ""
    if e.reasons_per_declined:
        counts = "<h3>Reasons per declined applicant</h3>" + table(
            ["reasons given", "declined applicants"],
            [
                [esc(k), num(v)]
                for k, v in sorted(e.reasons_per_declined.items(), key=lambda kv: (len(kv[0]), kv[0]))
            ],
        )
    return (
        "<p>How often each reason code is given to declined applicants in the test split "
        f"(an applicant gets up to four).{context}</p>"
        + table(["code", "text", "declined applicants", "share"], rows)
        + counts
    )


def _decisions_section(r: ReviewReport) -> str:
    out = []
    if not r.decisions.empty:
        out.append(
            "<p>As the exported model scores them (the evaluate stage's predictions), every split "
            "including the unlabelled applications:</p>"
        )
        out.append(
            table(
                ["split", "applications", "approve", "refer", "decline", "mean PD", "median limit"],
                [
                    [
                        esc(_label(str(row["split"]))),
                        num(int(row["n"])),
                        *(pct(row[d], 1) for d in DECISIONS),
                        pct(row["mean_pd"]),
                        num(row["median_limit"]),
                    ]
                    for _, row in r.decisions.iterrows()
                ],
            )
        )
    for split in ("test", "oot"):
        portfolio = r.calibration_report.get(split, {}).get("portfolio")
        if not portfolio:
            continue
        out.append(f"<h3>{esc(_label(split))}</h3>")
        exposure, loss = portfolio.get("exposure", {}), portfolio.get("expected_loss", {})
        out.append(
            table(
                ["", ""],
                [
                    ["applicants", num(portfolio.get("n"))],
                    ["approved", pct(portfolio.get("approval_rate"))],
                    ["referred", pct(portfolio.get("refer_rate"))],
                    ["declined", pct(portfolio.get("decline_rate"))],
                    ["bad rate among approved", pct(portfolio.get("bad_rate_approved"))],
                    ["approved exposure", num(exposure.get("approved"))],
                    ["expected loss on approved", num(loss.get("approved"))],
                ],
                "kv",
            )
        )
        by_grade = portfolio.get("by_grade", [])
        if by_grade:
            out.append(
                table(
                    ["grade", "rows", "approved", "referred", "declined", "median limit", "p90 limit"],
                    [
                        [
                            num(g.get("grade")),
                            num(g.get("count")),
                            num(g.get("approved")),
                            num(g.get("referred")),
                            num(g.get("declined")),
                            num(g.get("limit_median")),
                            num(g.get("limit_p90")),
                        ]
                        for g in by_grade
                    ],
                )
            )
        reasons = portfolio.get("reason_counts", {})
        if reasons:
            out.append(
                table(
                    ["policy reason", "applicants"],
                    [[esc(k), num(v)] for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])],
                )
            )
    return "".join(out) or missing("No decisions: no test or out-of-time rows.")


_DOOR_ROWS: tuple[tuple[str, str, str], ...] = (
    # (key of the through-the-door figures, label, better direction)
    ("auc", "AUC, every applicant", "higher"),
    ("auc_accepted", "AUC, booked loans", "higher"),
    ("auc_rejected", "AUC, declined applicants", "higher"),
    ("brier", "Brier score", "lower"),
    ("pd_bias", "PD bias (mean PD - mean true PD), every applicant", "nearer 0"),
    ("pd_bias_accepted", "PD bias, booked loans", "nearer 0"),
    ("pd_bias_rejected", "PD bias, declined applicants", "nearer 0"),
)


def _reject_inference_section(r: ReviewReport) -> str:
    door = r.through_the_door
    if not door:
        return missing(
            "Reject inference is off (params reject_inference.enabled): every labelled application "
            "is taken as a booked loan, and the model is measured on them only."
        )
    record = r.champion.get("reject_inference", {})
    method = door.get("method", "accepts_only")
    reference = door.get("accepts_only")
    out = [
        f"<p>Method <b>{esc(method)}</b>. The models were fitted on "
        f"{esc(record.get('training_population', 'the booked loans of train'))}"
        + (
            f" ({num(record['training_rows'])} training rows from {num(record['accepts'])} booked loans "
            f"and {num(record['rejects_available'])} declined applications)"
            if {"training_rows", "accepts", "rejects_available"} <= record.keys()
            else ""
        )
        + f"; the champion was chosen and calibrated on "
        f"{esc(record.get('champion_and_calibration_population', 'the booked loans of valid'))}.</p>",
    ]
    if not door.get("measured", True):
        out.append(missing(f"Not measured: {door.get('why', 'no truth file')}."))
        return "".join(out)
    out += [
        f"<p>Through-the-door holdout: the test period's {num(door['booked'])} booked loans and "
        f"{num(door['declined'])} declined applications, each with the outcome the synthetic truth "
        "drew for it: figures no lender can measure on its own data, since the declined applicants' "
        "outcomes are never observed."
        + (
            f" Beside the champion, the same candidates and champion rule fitted on the booked loans "
            f"alone (accepts-only; its champion: {esc(reference.get('champion', '?'))})."
            if reference
            else ""
        )
        + "</p>",
    ]
    headers = ["figure", f"champion ({method})"]
    if reference:
        headers += ["accepts-only", "difference", "better"]
    rows = []
    for key, label, better in _DOOR_ROWS:
        row = [esc(label), num(door.get(key))]
        if reference:
            diff = float(door.get(key, float("nan"))) - float(reference.get(key, float("nan")))
            row += [num(reference.get(key)), num(diff), esc(better)]
        rows.append(row)
    out.append(table(headers, rows))
    books = door.get("at_acceptance_rate", [])
    if books:
        ref_books = reference.get("at_acceptance_rate", []) if reference else []
        book_headers = ["acceptance rate", "bad rate (drawn)", "bad rate (true PD)", "volume"]
        if ref_books:
            book_headers += ["accepts-only bad rate (true PD)", "difference"]
        book_rows = []
        for i, book in enumerate(books):
            row = [
                pct(book["acceptance_rate"], 0),
                pct(book["bad_rate"]),
                pct(book["expected_bad_rate"]),
                num(book["volume"]),
            ]
            if ref_books:
                other = ref_books[i]["expected_bad_rate"]
                row += [pct(other), pct(book["expected_bad_rate"] - other)]
            book_rows.append(row)
        out.append(
            "<p>The approved book if the applicants with the lowest PDs were approved, at fixed "
            "acceptance rates (lower bad rate is better):</p>" + table(book_headers, book_rows)
        )
    return "".join(out)


_WHATIF_ROWS: tuple[tuple[str, str, str], ...] = (
    ("approval_rate", "approval rate", "pct"),
    ("bad_rate_approved", "bad rate of the approved (observed)", "pct"),
    ("expected_bad_rate_approved", "bad rate of the approved (mean PD)", "pct"),
    ("booked_volume", "booked volume", "amount"),
    ("interest_income", "first-year interest income", "amount"),
    ("expected_loss", "expected loss", "amount"),
    ("funding_cost", "cost of funds", "amount"),
    ("operating_cost", "operating cost", "amount"),
    ("expected_profit", "expected profit", "amount"),
)


def _whatif_value(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    return pct(value) if kind == "pct" else f"{float(value):,.0f}"


def _whatif_section(r: ReviewReport) -> str:
    w = r.whatif
    if not w:
        return missing("No what-if for this run.")
    if not w.get("replayed", False):
        return missing(f"Not replayed: {w.get('why', 'unknown')}.")
    costs = w.get("costs", {})
    scenario = {k: v for k, v in w.get("scenario", {}).items() if v not in (None, 0, 0.0)}
    out = [
        f"<p>The {esc(' and '.join(_label(n) for n in w.get('splits', [])))} applications "
        "decided again by the exported model's scorer. Booked: each approved application at the "
        "smaller of its request and its suggested limit. Over each loan's first year: interest "
        f"from its schedule, expected loss (PD x LGD {costs.get('lgd')}), cost of funds "
        f"({pct(costs.get('funding_cost'))}) and operating cost ({pct(costs.get('operating_cost'))}) "
        "on the average balance; profit is interest less the three. The observed bad rate reads "
        "the same applications' outcomes, as if a changed offer had not changed them; applicants "
        "are assumed to take any offer.</p>"
    ]
    headers = ["figure", "current params"]
    if scenario:
        headers += ["scenario", "change"]
        out.append(
            "<p>Scenario (params whatif.scenario): "
            + esc(", ".join(f"{k} {v}" for k, v in scenario.items()))
            + ".</p>"
        )
    rows = []
    for key, label, kind in _WHATIF_ROWS:
        row = [esc(label), _whatif_value(w["current"].get(key), kind)]
        if scenario:
            now, then = w["current"].get(key), w["changed"].get(key)
            diff = None if now is None or then is None else then - now
            row += [_whatif_value(then, kind), _whatif_value(diff, kind)]
        rows.append(row)
    out.append(table(headers, rows))
    if r.whatif_curve is not None:
        out.append(
            "<p>Every approval cut-off grade on the same applications (the knock-outs still decline; "
            "the dotted line is the current cut-off):</p>" + img(r.whatif_curve)
        )
    pricing = w.get("pricing", {}).get("current", [])
    if pricing:
        below = [p["grade"] for p in pricing if not p["covered"]]
        out.append(
            "<p>Pricing check of the approved book under the current params: each grade's rate "
            "(balance-weighted) against the one-year expected loss rate plus cost of funds, operating "
            f"cost and a capital charge of {pct(costs.get('capital_charge'))}. "
            + (
                f"<b>Priced below cost: grade{'s' if len(below) > 1 else ''} "
                f"{', '.join(map(str, below))}.</b>"
                if below
                else "Every grade covers its cost."
            )
            + "</p>"
        )
        out.append(
            table(
                ["grade", "loans", "rate", "expected loss rate", "required rate", "margin", "covered"],
                [
                    [
                        str(p["grade"]),
                        num(p["loans"]),
                        pct(p["rate"]),
                        pct(p["expected_loss_rate"]),
                        pct(p["required_rate"]),
                        pct(p["margin"]),
                        '<span class="flag ok">yes</span>'
                        if p["covered"]
                        else '<span class="flag bad">no</span>',
                    ]
                    for p in pricing
                ],
            )
        )
    return "".join(out)


def _scorecard_section(r: ReviewReport) -> str:
    if r.scorecard is None:
        return missing("No scorecard review for this run.")
    return r.scorecard.html()


def _fairness_section(r: ReviewReport) -> str:
    f = r.fairness
    if not f:
        return missing("No fair-lending screening for this run.")
    threshold = f.get("air_threshold", 0.8)
    out = [
        "<p>Approval rate of each group (only <i>approve</i> counts; a referral is not an approval) "
        "and its adverse impact ratio (AIR): its approval rate over that of the most favoured group "
        f"with at least {num(f.get('min_group_size'))} applications. A group below "
        f"{num(threshold, 2)} (the four-fifths rule) is flagged for review; smaller groups are "
        "shown, never flagged. TPR and FPR: the shares of the group's good and of its defaulted "
        "customers that were approved (fairlearn); the equalized-odds difference is the larger gap "
        "of the two across the groups with enough of both. Screening figures, not legal "
        "conclusions.</p>"
    ]
    flagged = f.get("flagged", [])
    out.append(
        f"<p><b>{len(flagged)} group{'s' if len(flagged) != 1 else ''} below {num(threshold, 2)}"
        + (": " + esc("; ".join(flagged)) if flagged else "")
        + ".</b></p>"
    )
    for name, why in f.get("not_screened", {}).items():
        out.append(missing(f"{name} not screened: {why}."))
    for split, report in f.get("splits", {}).items():
        for variable, v in report.get("variables", {}).items():
            rows = [
                [
                    esc(group),
                    num(g["n"]),
                    pct(g["approval_rate"]) if g["approval_rate"] is not None else "n/a",
                    num(g["air"], 3),
                    '<span class="flag bad">below</span>'
                    if g["flagged"]
                    else (
                        '<span class="flag na">small</span>'
                        if g["small"]
                        else '<span class="flag ok">ok</span>'
                    ),
                    pct(g["true_positive_rate"]) if g["true_positive_rate"] is not None else "n/a",
                    pct(g["false_positive_rate"]) if g["false_positive_rate"] is not None else "n/a",
                ]
                for group, g in v["groups"].items()
            ]
            out.append(
                f"<h3>{esc(variable)} on {esc(_label(split))}</h3><p>Most favoured: "
                f"{esc(v.get('reference_group'))}; equalized-odds difference "
                f"{num(v.get('equalized_odds_difference'), 3)}.</p>"
                + table(
                    ["group", "applications", "approval rate", "AIR", "flag", "TPR", "FPR"], rows, "scroll"
                )
            )
    check = f.get("reason_codes")
    if check:
        out.append(
            "<p>Reason codes: "
            + (
                "every reason names a factor the model scores."
                if check.get("ok")
                else "<b>reasons naming factors the model does not score: "
                + esc(", ".join(check.get("not_scored", [])))
                + ".</b>"
            )
            + (
                " Reasons whose factor is a screened column, for review: "
                + esc(
                    "; ".join(
                        f"{p['reason']} ({', '.join(p['columns'])})" for p in check.get("protected", [])
                    )
                )
                + "."
                if check.get("protected")
                else ""
            )
            + "</p>"
        )
    return "".join(out)


_RENDERERS = {
    "data": _data_section,
    "scope": _scope_section,
    "split": _split_section,
    "performance": _performance_section,
    "curves": _curves_section,
    "champion": _champion_section,
    "scorecard": _scorecard_section,
    "grades": _grades_section,
    "stability": _stability_section,
    "shap-global": _shap_global_section,
    "shap-local": _shap_local_section,
    "reason-codes": _reasons_section,
    "decisions": _decisions_section,
    "reject-inference": _reject_inference_section,
    "whatif": _whatif_section,
    "fairness": _fairness_section,
}


def _alerts(report: ReviewReport) -> str:
    """What must be read before anything else, in red at the top: a scorecard characteristic that
    fails its check (points against risk, a sign against risk, a VIF above the limit)."""
    review = report.scorecard
    if review is None or review.model is None:
        return ""
    failures = check_failures(review.model, review.selection)
    if not failures:
        return ""
    items = "".join(f"<li>{esc(f)}</li>" for f in failures)
    return (
        '<div class="alert" id="alerts"><strong>Scorecard checks failed</strong> '
        f"({len(failures)} characteristic{'s' if len(failures) > 1 else ''}; "
        f'<a href="#scorecard">Scorecard</a>):<ul>{items}</ul></div>'
    )


def render_html(report: ReviewReport) -> str:
    """The whole page as one string: inline CSS, embedded PNGs, no external references."""
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title in SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>{_RENDERERS[sid](report)}</section>'
        for sid, title in SECTIONS
    )
    champion = report.champion.get("champion", "?")
    subtitle = f"champion: {champion}"
    if report.model_version:
        subtitle += f" · model version {report.model_version}"
    if report.model_digest:
        subtitle += f" · exported model digest {report.model_digest}"
    notes = ""
    if report.notes:
        notes = '<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>"
    notes = _alerts(report) + notes
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{esc(report.title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>{esc(report.title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{notes}{sections}</main></body></html>\n"
    )
