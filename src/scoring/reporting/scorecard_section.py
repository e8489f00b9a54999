"""The reviewer report's "Scorecard" section, and the scorecard's tables that the workbook shares.

What a reviewer of a points scorecard asks for, in one place: each characteristic (variable)
with its IV, bins and points range; every bin with its count, event rate, WoE, IV and points,
and a plot of the binning; the analyst's overrides of the optimiser's bins, with their reasons
and what they cost in IV and AUC; and the selection evidence: the IV ranking of every candidate
variable with the reason a dropped one was dropped, the VIF and correlations of the kept ones,
and whether a stepwise check agrees.

The inputs are the scorecard (:class:`~scoring.models.scorecard.ScorecardModel`, the train
stage's ``models/candidates/scorecard/scorecard.json``) and the train stage's selection evidence
(``reports/scorecard/selection.json``, a plain mapping; any float in it may be null). Either may
be absent: a run without a scorecard candidate, or one whose selection was not computed, gets a
section that says so.

:func:`scorecard_bins` and :func:`scorecard_characteristics` are the tables the section and the
workbook (:mod:`scoring.reporting.workbook`) both show, so the two cannot disagree.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring.models.scorecard_selection import VIF_LIMIT
from scoring.reporting.html import Image, esc, figure_png, img, missing, num, pct, pyplot, table

if TYPE_CHECKING:
    from scoring.models.scorecard import FeatureCard, ScorecardModel

MISSING_ROW = "Missing"
UNSEEN_ROW = "Unseen"
# Correlation pairs the selection evidence lists (selection.json's pairs_above): |r| >= this,
# unless the evidence names its own threshold (correlation.flag).
CORRELATION_SHOWN = 0.6

BIN_COLUMNS = (
    "variable",
    "kind",
    "bin",
    "lower",
    "upper",
    "levels",
    "special",
    "count",
    "event_rate",
    "woe",
    "iv",
    "points",
)
CHARACTERISTIC_COLUMNS = (
    "variable",
    "kind",
    "iv",
    "coefficient",
    "bins",
    "min_points",
    "max_points",
    "overridden",
    "override_reason",
    "sign_ok",
    "points_follow_risk",
    "vif",
    "check",
)
LEVEL_SEPARATOR = "|"

# selection.json's reasons for dropping a candidate variable, as the reviewer reads them.
DROP_REASONS: dict[str, str] = {
    "low_iv": "IV below min_iv",
    "max_features": "beyond max_features (IV ranking)",
    "high_correlation": "correlated with a variable of higher IV",
    "override_exclude": "excluded by an analyst's override",
    "config_exclude": "excluded in params (exclude_features)",
    "all_missing": "missing on every row",
    "leakage": "leaks the outcome",
    "wrong_sign": "coefficient against risk (the sign rule)",
}


# ---------------------------------------------------------------------------------- the tables


def scorecard_bins(model: ScorecardModel) -> pd.DataFrame:
    """Every bin of every selected variable, in model order, with what scoring by hand needs.

    One row per bin, then the variable's ``Missing`` row, then (categorical) its ``Unseen`` row.
    Numeric bins carry ``lower`` and ``upper`` (a value x falls in the bin when
    ``lower <= x < upper``; -inf and inf at the ends), categorical bins their ``levels`` joined
    by ``|``; ``special`` is ``Missing`` or ``Unseen`` on those rows and empty elsewhere.
    ``event_rate`` is NaN for a bin with no training rows. The sum over variables of the
    points of each value's row is :meth:`ScorecardModel.score`.
    """
    rows: list[dict[str, Any]] = []
    for card in model.features:
        edges = [-math.inf, *card.splits, math.inf]
        for i, b in enumerate(card.bins):
            numeric = card.kind == "numeric"
            rows.append(
                _bin_row(
                    card,
                    b,
                    lower=edges[i] if numeric else math.nan,
                    upper=edges[i + 1] if numeric else math.nan,
                    levels="" if numeric else LEVEL_SEPARATOR.join(card.groups[i]),
                    special="",
                )
            )
        rows.append(_bin_row(card, card.missing, math.nan, math.nan, "", MISSING_ROW))
        if card.unseen is not None:
            rows.append(_bin_row(card, card.unseen, math.nan, math.nan, "", UNSEEN_ROW))
    frame = pd.DataFrame(rows, columns=list(BIN_COLUMNS))
    return frame.astype(
        {
            "count": np.int64,
            **dict.fromkeys(("lower", "upper", "event_rate", "woe", "iv", "points"), np.float64),
        }
    )


def _bin_row(
    card: FeatureCard, b: Any, lower: float, upper: float, levels: str, special: str
) -> dict[str, Any]:
    return {
        "variable": card.name,
        "kind": card.kind,
        "bin": b.label,
        "lower": lower,
        "upper": upper,
        "levels": levels,
        "special": special,
        "count": b.count,
        "event_rate": b.n_event / b.count if b.count else math.nan,
        "woe": b.woe,
        "iv": b.iv,
        "points": b.points,
    }


def scorecard_characteristics(model: ScorecardModel, selection: Mapping[str, Any] | None) -> pd.DataFrame:
    """One row per selected variable: kind, IV, coefficient, bins, points range, override and the
    checks a committee reads first.

    ``bins`` counts the variable's own bins (not Missing or Unseen); ``min_points`` and
    ``max_points`` range over every row a value can land in, Missing and Unseen included, so
    their sums bound the total score. ``overridden`` and ``override_reason`` come from the
    selection evidence (False and empty without it). ``sign_ok``, ``points_follow_risk``,
    ``vif`` and ``check`` ("ok" or what failed) are
    :func:`scoring.models.scorecard_selection.characteristic_checks` (VIF from the evidence).
    """
    from scoring.models.scorecard_selection import characteristic_checks

    checks = characteristic_checks(model, _computed(selection).get("vif"))
    overrides = _overrides_by_variable(selection)
    flagged = {
        str(v.get("variable")): bool(v.get("overridden"))
        for v in _computed(selection).get("variables", [])
        if isinstance(v, Mapping)
    }
    rows = []
    for card in model.features:
        points = [b.points for b in card.all_bins()]
        reasons = [str(o["reason"]) for o in overrides.get(card.name, []) if o.get("reason")]
        rows.append(
            {
                "variable": card.name,
                "kind": card.kind,
                "iv": model.information_value.get(card.name, math.nan),
                "coefficient": card.coefficient,
                "bins": len(card.bins),
                "min_points": min(points),
                "max_points": max(points),
                "overridden": flagged.get(card.name, card.name in overrides),
                "override_reason": "; ".join(reasons),
                "sign_ok": checks[card.name]["sign_ok"],
                "points_follow_risk": checks[card.name]["points_follow_risk"],
                "vif": math.nan if checks[card.name]["vif"] is None else float(checks[card.name]["vif"]),
                "check": "; ".join(checks[card.name]["failures"]) or "ok",
            }
        )
    return pd.DataFrame(rows, columns=list(CHARACTERISTIC_COLUMNS))


def check_failures(model: ScorecardModel, selection: Mapping[str, Any] | None) -> list[str]:
    """``variable: what failed`` for every characteristic whose check failed (the report's summary
    shows them in red at its top)."""
    table = scorecard_characteristics(model, selection)
    return [f"{r.variable}: {r.check}" for r in table.itertuples() if r.check != "ok"]


def score_range(model: ScorecardModel) -> tuple[float, float]:
    """The lowest and highest total score the scorecard can give."""
    table = scorecard_characteristics(model, None)
    return float(table["min_points"].sum()), float(table["max_points"].sum())


def _computed(selection: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The selection evidence when it was computed, else an empty mapping."""
    if not selection or not selection.get("computed"):
        return {}
    return selection


def _overrides_by_variable(selection: Mapping[str, Any] | None) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for entry in _computed(selection).get("overrides", []) or []:
        out.setdefault(str(entry.get("variable")), []).append(entry)
    return out


# ---------------------------------------------------------------------------------- plots


def _short(label: str, width: int = 22) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def binning_image(card: FeatureCard, iv: float | None = None) -> Image:
    """Event rate by bin (bars) and WoE (line, right axis) of one variable; Missing when it holds rows."""
    plt = pyplot()
    shown = [*card.bins, *((card.missing,) if card.missing.count else ())]
    x = np.arange(len(shown))
    # An empty bin has no event rate: no bar, rather than a bar at 0 that reads as "no defaults".
    rates = [b.n_event / b.count if b.count else math.nan for b in shown]
    fig, ax = plt.subplots(figsize=(4.8, 3.0))
    ax.bar(x, rates, color="#3b6ea5", alpha=0.85, label="event rate")
    ax.set_ylabel("event (default) rate", fontsize=8)
    ax.set_xticks(x, [_short(b.label) for b in shown], rotation=30, ha="right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    woe_ax = ax.twinx()
    woe_ax.plot(x, [b.woe for b in shown], color="#b03a2e", marker="o", label="WoE")
    woe_ax.axhline(0.0, color="#b03a2e", linestyle=":", linewidth=0.8)
    woe_ax.set_ylabel("WoE", fontsize=8)
    woe_ax.tick_params(axis="y", labelsize=7)
    title = card.name if iv is None or not math.isfinite(iv) else f"{card.name} (IV {iv:.3f})"
    ax.set_title(title, fontsize=9, pad=16)
    handles = ax.get_legend_handles_labels()[0] + woe_ax.get_legend_handles_labels()[0]
    # Above the axes, under the title: inside, it would hide the bars of whichever end is high.
    ax.legend(
        handles,
        ["event rate", "WoE"],
        fontsize=7,
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=2,
        frameon=False,
    )
    return Image(
        f"binning_{card.name}", f"Binning of {card.name}: event rate and WoE by bin", figure_png(fig)
    )


# ---------------------------------------------------------------------------------- the section


@dataclass(frozen=True)
class ScorecardReview:
    """What the report's Scorecard section shows: the scorecard, its selection evidence, its plots.

    Build it with :func:`scorecard_review`; :meth:`html` renders the section's body.
    """

    model: ScorecardModel | None
    selection: Mapping[str, Any] = field(default_factory=dict)
    plots: Mapping[str, Image] = field(default_factory=dict)
    champion: bool = False

    def html(self) -> str:
        return scorecard_section_html(self)


def scorecard_review(
    model: ScorecardModel | None,
    selection: Mapping[str, Any] | None,
    champion: str | None = None,
) -> ScorecardReview:
    """The section's content: ``model`` (None without a scorecard candidate), the train stage's
    selection evidence (selection.json) and the binning plot of every selected variable.
    ``champion`` is the champion's name, to say whether the scorecard is it."""
    plots = {}
    if model is not None:
        plots = {f.name: binning_image(f, model.information_value.get(f.name)) for f in model.features}
    return ScorecardReview(
        model=model, selection=dict(selection or {}), plots=plots, champion=champion == "scorecard"
    )


def scorecard_section_html(review: ScorecardReview) -> str:
    """The body of the Scorecard section (trusted HTML; every value escaped)."""
    model, selection = review.model, review.selection
    evidence = _computed(selection)
    out: list[str] = []
    if model is None:
        why = selection.get("why") if selection else None
        out.append(
            missing(
                "No scorecard in this run: the scorecard is not among the trained candidates "
                "(params train.candidates)" + (f"; {why}" if why else "") + "."
            )
        )
        return "".join(out)
    out.append(_intro(model, evidence, review.champion))
    out.append(_characteristics_html(model, selection))
    out.append(_bins_html(model, review.plots))
    if not evidence:
        why = selection.get("why") if selection else None
        out.append(
            "<h3>Overrides and selection evidence</h3>"
            + missing(f"The selection evidence was not computed for this run: {why or 'no selection.json'}.")
        )
        return "".join(out)
    out.append(_overrides_html(evidence))
    out.append(_selection_html(evidence))
    return "".join(out)


def _intro(model: ScorecardModel, evidence: Mapping[str, Any], champion: bool) -> str:
    s = model.settings
    low, high = score_range(model)
    n_candidates = len(evidence.get("variables", [])) or len(model.information_value)
    rows = f" on {num(evidence['rows'])} rows" if evidence.get("rows") is not None else ""
    return (
        f"<p>The points scorecard{' (the champion)' if champion else ''}: {len(model.features)} of "
        f"{num(n_candidates)} candidate variables, binned (optimal binning), their weights of "
        f"evidence in a logistic regression fitted{rows}, scaled to points: {num(s.pdo, 1)} points "
        f"double the good:bad odds, which are {num(s.base_odds, 1)}:1 at {num(s.base_score, 1)} "
        f"points (factor {num(model.factor)}, offset {num(model.offset)}). A higher score is a "
        f"lower risk; scores run from {num(low, 1)} to {num(high, 1)}. An application's score is "
        "the sum of the points of the bin each of its values falls in; PD = 1 / (1 + exp((score - "
        "offset) / factor)). Numeric bins are right-open ([a, b) holds a, not b); a missing value "
        "takes the Missing bin, a category no bin holds the Unseen bin. The workbook "
        "reports/scorecard/scorecard.xlsx holds the same tables, to score by hand.</p>"
    )


def _characteristics_html(model: ScorecardModel, selection: Mapping[str, Any]) -> str:
    characteristics = scorecard_characteristics(model, selection)
    rows = [
        [
            esc(r.variable),
            esc(r.kind),
            num(r.iv),
            num(r.bins),
            num(r.min_points, 1),
            num(r.max_points, 1),
            _yes_no(bool(r.overridden)),
            num(r.coefficient),
            num(r.vif, 1),
            '<span class="flag ok">ok</span>'
            if r.check == "ok"
            else f'<span class="flag bad">{esc(r.check)}</span>',
        ]
        for r in characteristics.itertuples()
    ]
    rule = model.sign_rule
    removed = (
        "; removed by it: "
        + ", ".join(f"{esc(x.variable)} (beside {esc(x.collinear_with)})" for x in rule.removed)
        if rule.removed
        else ""
    )
    note = (
        f"<p>Check: the sign of each coefficient follows risk (a safer bin earns more points), the "
        f"points order the bins as their event rates do, and the VIF is at most "
        f"{num(VIF_LIMIT, 0)}. The sign rule is {'on' if model.settings.consistent_signs else 'off'}"
        f"{removed}.</p>"
    )
    return (
        "<h3>Characteristics</h3>"
        + note
        + table(
            [
                "variable",
                "kind",
                "IV",
                "bins",
                "min points",
                "max points",
                "overridden",
                "coefficient",
                "VIF",
                "check",
            ],
            rows,
        )
    )


def _yes_no(value: bool) -> str:
    return '<span class="flag warn">yes</span>' if value else "no"


def _bins_html(model: ScorecardModel, plots: Mapping[str, Image]) -> str:
    bins = scorecard_bins(model)
    out = [
        "<h3>Bins and points</h3><p>Every bin of every variable with its training count, event "
        "(default) rate, weight of evidence (ln of the share of goods over the share of bads: "
        "positive is safer than average), its part of the variable's IV, and its points.</p>"
    ]
    for name, part in bins.groupby("variable", sort=False):
        rows = [
            [
                esc(r["bin"]),
                num(int(r["count"])),
                pct(r["event_rate"]) if math.isfinite(r["event_rate"]) else "n/a",
                num(r["woe"]),
                num(r["iv"]),
                num(r["points"], 2),
            ]
            for r in part.to_dict("records")
        ]
        bin_table = table(["bin", "count", "event rate", "WoE", "IV", "points"], rows)
        plot = plots.get(str(name))
        out.append(
            f"<h4>{esc(name)}</h4>"
            + f'<div class="figs"><div>{bin_table}</div>{img(plot) if plot is not None else ""}</div>'
        )
    return "".join(out)


def _bin_list(labels: Sequence[Any] | None) -> str:
    return "<br>".join(esc(label) for label in labels or []) or "n/a"


def _overrides_html(evidence: Mapping[str, Any]) -> str:
    overrides = evidence.get("overrides") or []
    source = (evidence.get("settings") or {}).get("overrides_file")
    head = "<h3>Overrides</h3>"
    if not overrides:
        return head + "<p>No override: every variable's bins are the optimiser's.</p>"
    rows = []
    for o in overrides:
        auc_on = f" ({esc(o['auc_on'])})" if o.get("auc_on") else ""
        rows.append(
            [
                esc(o.get("variable")),
                esc(o.get("kind")),
                esc(json.dumps(o.get("entry", {}), sort_keys=True)),
                esc(o.get("reason") or "none given"),
                f"{num(o.get('iv_optimiser'))} → {num(o.get('iv_override'))} (cost {num(o.get('iv_cost'))})",
                f"{num(o.get('auc_optimiser'))} → {num(o.get('auc_override'))} "
                f"(cost {num(o.get('auc_cost'))}){auc_on}",
                _bin_list(o.get("bins_optimiser")),
                _bin_list(o.get("bins_override")),
            ]
        )
    return (
        head
        + "<p>The analyst's changes to the optimiser's bins"
        + (f" (from {esc(source)})" if source else "")
        + ", each with its reason and its cost: the IV and the scorecard's AUC with the optimiser's "
        "bins against those with the override (a positive cost is what the override gives up).</p>"
        + table(
            [
                "variable",
                "kind",
                "entry",
                "reason",
                "IV: optimiser → override",
                "AUC: optimiser → override",
                "optimiser's bins",
                "override's bins",
            ],
            rows,
        )
    )


def _selection_html(evidence: Mapping[str, Any]) -> str:
    settings = evidence.get("settings") or {}
    out = ["<h3>Selection evidence</h3>"]
    out.append(
        f"<p>Every candidate variable, ranked by IV: min_iv {num(settings.get('min_iv'))}, "
        f"max_features {esc(_or_none(settings.get('max_features')))}, "
        f"max_correlation {esc(_or_none(settings.get('max_correlation')))}"
        + (f"; data {esc(settings['source'])}" if settings.get("source") else "")
        + ".</p>"
    )
    rows = []
    for v in evidence.get("variables", []):
        kept = v.get("status") == "kept"
        reason = v.get("reason")
        rows.append(
            [
                num(v.get("rank")),
                esc(v.get("variable")),
                esc(v.get("kind")),
                num(v.get("iv")),
                num(v.get("iv_optimiser")),
                num(v.get("single_feature_auc")),
                '<span class="flag ok">kept</span>' if kept else '<span class="flag na">dropped</span>',
                "" if reason is None else esc(DROP_REASONS.get(str(reason), str(reason))),
                esc(v.get("detail") or ""),
                "yes" if v.get("overridden") else "no",
            ]
        )
    out.append(
        table(
            [
                "rank",
                "variable",
                "kind",
                "IV",
                "IV (optimiser's bins)",
                "AUC alone",
                "status",
                "why dropped",
                "detail",
                "overridden",
            ],
            rows,
        )
    )
    vif = evidence.get("vif") or {}
    if vif:
        out.append(
            "<h4>Variance inflation factors of the kept variables (WoE)</h4>"
            + table(["variable", "VIF"], [[esc(k), num(v, 2)] for k, v in vif.items()])
        )
    corr = evidence.get("correlation") or {}
    pairs = corr.get("pairs_above") or []
    out.append("<h4>Correlation of the kept variables (Pearson, on their WoE)</h4>")
    out.append(f"<p>Largest |r| between two kept variables: {num(corr.get('max_abs'), 3)}.</p>")
    if pairs:
        out.append(
            table(
                ["variable", "variable", "r"],
                [[esc(p.get("a")), esc(p.get("b")), num(p.get("r"), 3)] for p in pairs],
            )
        )
    else:
        threshold = corr.get("flag", CORRELATION_SHOWN)
        out.append(f"<p>No pair of kept variables has |r| of {esc(threshold)} or more.</p>")
    out.append(_stepwise_html(evidence.get("stepwise") or {}))
    return "".join(out)


def _or_none(value: Any) -> Any:
    return "none" if value is None else value


def _stepwise_html(stepwise: Mapping[str, Any]) -> str:
    if not stepwise:
        return "<h4>Stepwise check</h4>" + missing("No stepwise check in the selection evidence.")
    agrees = bool(stepwise.get("agrees"))
    removed = stepwise.get("removed") or []
    differs = stepwise.get("differs") or []
    text = (
        f"<p>Method: {esc(stepwise.get('method', 'n/a'))}. "
        + (
            '<span class="flag ok">agrees</span>: it keeps every variable the IV rule keeps.'
            if agrees
            else '<span class="flag warn">differs</span>: it would remove '
            + esc(", ".join(map(str, differs)) or "no variable")
            + " that the IV rule keeps."
        )
        + "</p>"
    )
    if removed:
        text += table(
            ["removed by stepwise", "AIC before", "AIC after"],
            [
                [esc(r.get("variable")), num(r.get("aic_before"), 2), num(r.get("aic_after"), 2)]
                for r in removed
            ],
        )
    else:
        text += "<p>It removes no variable.</p>"
    return "<h4>Stepwise check</h4>" + text
