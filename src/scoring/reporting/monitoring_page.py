"""The monitoring page: one self-contained HTML file per monitoring run.

What :func:`scoring.monitoring.monitor.run_monitoring` found, laid out like the reviewer report
(:mod:`scoring.reporting.report`, with the pages' shared style sheet, escaping helpers and PNG
embedding: :mod:`scoring.reporting.html`): the overall traffic light and the retrain
recommendation, the early-warning alerts, stability of the score and the inputs by application
month, the grade mix, and, where the loans' performance history was given, back-tests, early
delinquency, vintage curves and roll rates.
Plots are PNGs embedded as ``data:`` URIs (matplotlib, Agg backend); the page loads nothing
from outside itself. Traffic lights are shown as text as well as colour.

Pure: :func:`render_monitoring_page` turns a :class:`~scoring.monitoring.monitor.MonitoringResult`
into a string; reading and writing files is the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scoring.decision.grades import ValidationTestSettings
from scoring.monitoring.config import MonitorConfig
from scoring.monitoring.monitor import RULES, MonitoringResult, threshold_light
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

# Stable ids: the browser test and any link into the page rely on them.
MONITORING_SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("alerts", "Early-warning alerts"),
    ("stability", "Stability by application month"),
    ("score-distribution", "Score distribution by month"),
    ("csi", "Characteristic stability of the inputs"),
    ("backtest", "Back-test: observed against predicted default rate"),
    ("early-delinquency", "Early delinquency"),
    ("vintages", "Vintage curves"),
    ("roll-rates", "Roll rates"),
)

MONITORING_SECTION_IDS: tuple[str, ...] = tuple(s for s, _ in MONITORING_SECTIONS)

RULE_NAMES = {
    "score_psi": "score PSI",
    "feature_csi": "input CSI",
    "approval_rate": "approval rate",
    "backtest": "back-test",
    "discrimination": "discrimination",
    "early_delinquency": "early delinquency",
}

NO_HISTORY = "There is no performance history for this batch"

# Light -> (css class of report.py's .flag, a shape so the light does not rest on colour alone).
_LIGHT_STYLE = {
    "green": ("ok", "\u2713"),
    "amber": ("warn", "!"),
    "red": ("bad", "\u2715"),
    "n/a": ("na", "\u2013"),
}
_LIGHT_COLOURS = {"green": "#2e8b57", "amber": "#d99a00", "red": "#c0392b", "n/a": "#9aa3ad"}

_EXTRA_CSS = """
.flag .glyph{font-weight:700;margin-right:3px}
.overall{font-size:1.15em;padding:2px 10px}
.retrain{font-weight:600}
p.note{color:#555;font-size:.9em}
table.alerts td:last-child{text-align:left;max-width:30em}
td:first-child{white-space:nowrap}
"""

MAX_CSI_ROWS = 15
CSI_PLOTTED = 5


def render_monitoring_page(
    result: MonitoringResult,
    *,
    title: str = "Model monitoring",
    model: str = "",
    model_digest: str = "",
    generated: str = "",
    config: MonitorConfig | None = None,
    tests: ValidationTestSettings | None = None,
) -> str:
    """The whole monitoring page as one string: inline CSS, embedded PNGs, no external references.

    ``model``: the model's name and version as the reader should see it; ``model_digest``: the
    exported model's manifest digest; ``generated``: when the page was made (shown as given).
    ``config`` and ``tests`` are the thresholds the result was computed with (the defaults when
    not given): the page draws and describes them, it does not judge anything again.
    """
    page = _Page(result, config or MonitorConfig(), tests or ValidationTestSettings(), model, model_digest)
    renderers = {
        "summary": page.summary,
        "alerts": page.alerts,
        "stability": page.stability,
        "score-distribution": page.score_distribution,
        "csi": page.csi,
        "backtest": page.backtest,
        "early-delinquency": page.early_delinquency,
        "vintages": page.vintages,
        "roll-rates": page.roll_rates,
    }
    nav = "".join(f'<a href="#{sid}">{esc(heading)}</a>' for sid, heading in MONITORING_SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(heading)}</h2>{renderers[sid]()}</section>'
        for sid, heading in MONITORING_SECTIONS
    )
    subtitle = " · ".join(
        part
        for part in (
            f"model: {model}" if model else "",
            f"exported model digest {model_digest}" if model_digest else "",
            f"generated {generated}" if generated else "",
        )
        if part
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{esc(title)}</title><style>{CSS}{_EXTRA_CSS}</style></head><body>"
        f"<header><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main></body></html>\n"
    )


# --------------------------------------------------------------------------- small helpers


def light_badge(light: Any, css: str = "") -> str:
    """A traffic light as colour and text (and a shape): green, amber, red or n/a."""
    text = light if isinstance(light, str) and light in _LIGHT_STYLE else "n/a"
    kind, glyph = _LIGHT_STYLE[text]
    extra = f" {css}" if css else ""
    return (
        f'<span class="flag {kind}{extra}" data-light="{esc(text)}">'
        f'<span class="glyph" aria-hidden="true">{esc(glyph)}</span>{esc(text)}</span>'
    )


def _csi_red_needs_score_shift(config: MonitorConfig) -> bool:
    return config.feature_csi_red_needs_score_shift


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _text(value: Any) -> str:
    """``value`` escaped, or n/a for None."""
    return "n/a" if value is None else esc(value)


def _plot_text(value: Any) -> str:
    """Text for matplotlib: dollar signs escaped so a name is never parsed as mathtext."""
    return str(value).replace("$", r"\$")


def _label(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def _runs(months: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive month numbers grouped as (first, last) runs."""
    runs: list[tuple[int, int]] = []
    for m in sorted(months):
        if runs and m == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], m)
        else:
            runs.append((m, m))
    return runs


def _month_axis(ax: Any, months: Sequence[int]) -> None:
    """Month numbers on the x axis, labelled YYYY-MM, at most about twelve ticks."""
    if not len(months):
        return
    ordered = sorted(months)
    step = max(1, math.ceil(len(ordered) / 12))
    ticks = ordered[::step]
    ax.set_xticks(ticks)
    ax.set_xticklabels([_label(m) for m in ticks], rotation=45, ha="right", fontsize=8)


def _shade(ax: Any, months: Sequence[int], label: str = "judged months") -> None:
    for i, (first, last) in enumerate(_runs(months)):
        ax.axvspan(first - 0.5, last + 0.5, color="#1f3a5f", alpha=0.07, label=label if i == 0 else None)


# --------------------------------------------------------------------------- the page


class _Page:
    """The sections of one page, each a method returning trusted HTML."""

    def __init__(
        self,
        result: MonitoringResult,
        config: MonitorConfig,
        tests: ValidationTestSettings,
        model: str = "",
        model_digest: str = "",
    ) -> None:
        self.r = result
        self.model, self.model_digest = model, model_digest
        self.config = config
        self.tests = tests
        stability = result.stability
        self.has_months = not _empty(stability) and "month" in stability.columns
        if self.has_months:
            self.months = [int(m) for m in stability["month"]]
            judged = (
                stability["judged"]
                if "judged" in stability.columns
                else pd.Series(False, index=stability.index)
            )
            self.judged = [int(m) for m in stability.loc[judged.astype(bool), "month"]]
        else:
            self.months, self.judged = [], []
        self.lights_by_month: dict[str, dict[int, str]] = {rule: {} for rule in RULES}
        if not _empty(result.lights):
            for rule in RULES:
                if rule in result.lights.columns:
                    self.lights_by_month[rule] = {
                        int(m): str(v)
                        for m, v in zip(result.lights["month"], result.lights[rule], strict=True)
                    }
        self.has_history = int(result.summary.get("history_rows") or 0) > 0 or any(
            x is not None for x in (result.backtest_cohorts, result.early, result.vintages)
        )

    def _no_history(self, what: str) -> str:
        return missing(f"{NO_HISTORY}: {what}")

    # ----------------------------------------------------------------- summary

    def summary(self) -> str:
        r, s = self.r, self.r.summary
        overall = r.alerts.get("overall", s.get("overall", "n/a"))
        retrain = r.alerts.get("retrain") or {}
        out = [
            f"<p>Overall: {light_badge(overall, 'overall')} "
            "(the worst light of any rule over the judged months).</p>"
        ]
        if retrain.get("recommended"):
            because = "; ".join(str(b) for b in retrain.get("because") or [])
            out.append(
                f'<p class="retrain">Retraining is recommended since {_text(retrain.get("since"))}: '
                f"{esc(because)}.</p>"
            )
        elif not self.judged:
            out.append("<p>No month was judged, so there is no retraining recommendation.</p>")
        else:
            out.append(
                f"<p>Retraining is not recommended: no rule was red for "
                f"{self.config.retrain_after_red_months} consecutive judged months.</p>"
            )
        reference = s.get("reference_window") or {}
        covered = f"{_label(min(self.months))} to {_label(max(self.months))}" if self.months else "none"
        judged = f"{_label(min(self.judged))} to {_label(max(self.judged))}" if self.judged else "none"
        window = (
            "months after the model's development window"
            if self.config.window == "after_reference"
            else "all months"
        )
        rows = [
            ["model", esc(self.model or "not given")],
            ["exported model digest", esc(self.model_digest or "not given")],
            ["applications scored", num(s.get("n_rows"))],
            ["application months", f"{covered} ({num(s.get('n_months', len(self.months)))} months)"],
            [
                "development (reference) window",
                f"{_text(reference.get('first_month'))} to {_text(reference.get('last_month'))}",
            ],
            [
                "months judged",
                f"{judged} ({num(s.get('n_months_judged', len(self.judged)))} months: {esc(window)} "
                f"with at least {num(self.config.min_rows_per_month)} applications)",
            ],
            [
                "performance history",
                f"{num(s.get('history_rows'))} loan-months" if self.has_history else "not given",
            ],
        ]
        ratio = s.get("early_delinquency_reference_ratio")
        if ratio is not None:
            rows.append(["early delinquency: development observed / PD", num(ratio, 3)])
        out.append(table(["", ""], rows, "kv"))
        rules = r.alerts.get("rules") or {}
        fired = [
            [esc(RULE_NAMES.get(rule, rule)), light_badge(entry.get("light"))]
            for rule, entry in rules.items()
            if entry.get("light") in ("amber", "red")
        ]
        if fired:
            out.append("<h3>Rules that fired</h3>" + table(["rule", "worst light"], fired))
        return "".join(out)

    # ----------------------------------------------------------------- alerts

    def rule_description(self, rule: str) -> str:
        c, t = self.config, self.tests
        e = c.early_delinquency
        texts = {
            "score_psi": (
                "Population stability index of the month's scores against the development scores "
                f"(frozen bins): amber from {c.score_psi.amber:g}, red from {c.score_psi.red:g}."
            ),
            "feature_csi": (
                "The largest characteristic stability index over the model inputs (the feature is "
                f"named): amber from {c.feature_csi.amber:g}, red from {c.feature_csi.red:g}"
                + (
                    ", but red only while the score PSI is amber or worse (an input shift the score does "
                    "not follow stays amber)."
                    if _csi_red_needs_score_shift(c)
                    else "."
                )
            ),
            "approval_rate": (
                "How far the month's approval rate moved from the development approval rate, either "
                f"way: amber from {c.approval_rate_points.amber:g}, red from "
                f"{c.approval_rate_points.red:g} percentage points."
            ),
            "backtest": (
                f"Cohorts whose {c.default_months_on_book}-month outcome is observed: is the observed 90+ "
                "rate above the mean PD? One-sided Jeffreys test of the cohort and of each grade "
                f"(Bonferroni over the grades); red below p {t.red_p:g}, amber below p {t.yellow_p:g}."
            ),
            "discrimination": (
                "AUC of each matured cohort against the development AUC: amber when it is lower by "
                f"{c.auc_drop.amber:g} or more, red by {c.auc_drop.red:g} or more."
            ),
            "early_delinquency": (
                f"Share of the cohort at {e.threshold} by month on book {e.months_on_book} against the "
                "share its PDs predict (scaled by the development cohorts' observed-to-PD ratio): amber "
                f"from {e.factor.amber:g} times expected with binomial p below {e.amber_p:g}, red from "
                f"{e.factor.red:g} times with p below {e.red_p:g}; cohorts under {e.min_loans} loans are "
                "not judged."
            ),
        }
        return texts.get(rule, rule)

    def alerts(self) -> str:
        rules = self.r.alerts.get("rules") or {}
        rows = []
        for rule in RULES:
            entry = rules.get(rule) or {}
            latest = entry.get("latest") or {}
            latest_text = (
                f"{_text(latest.get('month'))}: {light_badge(latest.get('light'))} "
                f"{esc(self._value(rule, latest.get('value')))}"
                if latest
                else "n/a"
            )
            rows.append(
                [
                    f"<strong>{esc(RULE_NAMES.get(rule, rule))}</strong><br><code>{esc(rule)}</code>",
                    light_badge(entry.get("light", "n/a")),
                    _text(entry.get("first_fired")),
                    _text(entry.get("first_red")),
                    num(entry.get("months_red")),
                    num(entry.get("longest_red_streak")),
                    latest_text,
                    esc(self.rule_description(rule)),
                ]
            )
        out = [
            "<p>Each rule gives a light per judged month; the light here is the worst over those "
            "months, <em>latest</em> the most recent judged month. n/a: the month could not be "
            "judged (too few rows, or no matured outcome yet).</p>",
            table(
                [
                    "rule",
                    "light",
                    "first month fired",
                    "first red",
                    "months red",
                    "longest red run",
                    "latest",
                    "what it checks",
                ],
                rows,
                "alerts",
            ),
        ]
        if not _empty(self.r.lights):
            out.append("<h3>Lights by month</h3>")
            grid = [
                [esc(row["label"]), *(light_badge(row.get(rule, "n/a")) for rule in RULES)]
                for _, row in self.r.lights.iterrows()
            ]
            out.append(table(["month", *(RULE_NAMES[rule] for rule in RULES)], grid, "scroll"))
        else:
            out.append(missing("No month could be judged, so no rule gave a light."))
        return "".join(out)

    @staticmethod
    def _value(rule: str, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return f"({value})"
        number = _float(value)
        if not math.isfinite(number):
            return ""
        if rule == "approval_rate":
            return f"({number:+.2f} points)"
        if rule == "score_psi":
            return f"(PSI {number:.3f})"
        return f"({number:.4g})"

    # ----------------------------------------------------------------- stability

    def stability(self) -> str:
        if not self.has_months:
            return missing("No scored months: the batch was empty.")
        s = self.r.stability
        c = self.config
        out = [
            f"<p>{num(len(self.months))} application months; the shaded months are judged "
            f"({num(len(self.judged))}). Thresholds: score PSI amber {c.score_psi.amber:g}, red "
            f"{c.score_psi.red:g}; CSI amber {c.feature_csi.amber:g}, red {c.feature_csi.red:g}.</p>",
            '<div class="figs">',
            img(self._psi_image()),
            img(self._approval_image()),
            "</div>",
        ]
        rows = [
            [
                esc(row["label"]),
                num(int(row["n"])),
                pct(row["approval_rate"], 1),
                f"{_float(row['approval_rate_change_points']):+.2f}"
                if math.isfinite(_float(row["approval_rate_change_points"]))
                else "n/a",
                pct(row["mean_pd"]),
                num(row["score_psi"], 3),
                num(row["max_csi"], 3),
                esc(row["max_csi_feature"]),
                "yes" if bool(row.get("judged", False)) else "no",
            ]
            for _, row in s.iterrows()
        ]
        out.append(
            table(
                [
                    "month",
                    "applications",
                    "approval rate",
                    "change (points)",
                    "mean PD",
                    "score PSI",
                    "max CSI",
                    "feature",
                    "judged",
                ],
                rows,
                "scroll",
            )
        )
        return "".join(out)

    def _psi_image(self) -> Image:
        plt = pyplot()
        s, c = self.r.stability, self.config
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        _shade(ax, self.judged)
        ax.plot(
            self.months, s["score_psi"].astype(float), marker="o", ms=3, label="score PSI", color="#1f3a5f"
        )
        ax.plot(
            self.months, s["max_csi"].astype(float), marker=".", ms=3, label="max input CSI", color="#7a5a00"
        )
        ax.axhline(
            c.score_psi.amber, ls="--", color=_LIGHT_COLOURS["amber"], label=f"amber {c.score_psi.amber:g}"
        )
        ax.axhline(c.score_psi.red, ls="--", color=_LIGHT_COLOURS["red"], label=f"red {c.score_psi.red:g}")
        if (c.feature_csi.amber, c.feature_csi.red) != (c.score_psi.amber, c.score_psi.red):
            ax.axhline(c.feature_csi.amber, ls=":", color=_LIGHT_COLOURS["amber"], label="CSI amber")
            ax.axhline(c.feature_csi.red, ls=":", color=_LIGHT_COLOURS["red"], label="CSI red")
        _month_axis(ax, self.months)
        ax.set(ylabel="stability index", title="Score PSI and the largest input CSI by month")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7)
        return Image(
            "stability_psi", "Score PSI and the largest CSI by month, with the thresholds", figure_png(fig)
        )

    def _approval_image(self) -> Image:
        plt = pyplot()
        s, c = self.r.stability, self.config
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        _shade(ax, self.judged)
        approval = 100.0 * s["approval_rate"].astype(float)
        ax.plot(self.months, approval, marker="o", ms=3, color="#1f3a5f", label="approval rate")
        reference = (approval - s["approval_rate_change_points"].astype(float)).dropna()
        if len(reference):
            level = float(reference.iloc[0])
            ax.axhline(level, ls="-", lw=0.8, color="grey", label="development approval rate")
            for sign in (-1, 1):
                ax.axhline(
                    level + sign * c.approval_rate_points.amber,
                    ls="--",
                    lw=0.8,
                    color=_LIGHT_COLOURS["amber"],
                )
                ax.axhline(
                    level + sign * c.approval_rate_points.red, ls="--", lw=0.8, color=_LIGHT_COLOURS["red"]
                )
        ax.set_ylabel("approval rate (%)")
        _month_axis(ax, self.months)
        right = ax.twinx()
        right.plot(
            self.months,
            100.0 * s["mean_pd"].astype(float),
            marker="s",
            ms=3,
            color="#8c1d18",
            label="mean PD",
        )
        right.set_ylabel("mean PD (%)")
        lines = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], loc="upper left", fontsize=7)
        ax.set_title("Approval rate and mean PD by month (dashed: amber and red bands)")
        return Image("approval_mean_pd", "Approval rate and mean PD by month", figure_png(fig))

    # ----------------------------------------------------------------- score distribution

    def score_distribution(self) -> str:
        mix = self.r.grade_mix
        if _empty(mix) or not self.has_months:
            return missing("No grade mix: the batch was empty.")
        grades = [g for g in mix.columns if g != "month"]
        plt = pyplot()
        months = [int(m) for m in mix["month"]]
        fig, ax = plt.subplots(figsize=(8.4, 4.0))
        colours = plt.get_cmap("RdYlGn_r")(np.linspace(0.05, 0.95, max(len(grades), 1)))
        ax.stackplot(
            months,
            *(100.0 * mix[g].astype(float).to_numpy() for g in grades),
            labels=[f"grade {_plot_text(g)}" for g in grades],
            colors=colours,
        )
        for i, (first, last) in enumerate(_runs(self.judged)):
            ax.axvline(first - 0.5, color="black", lw=0.8, ls=":", label="judged months" if i == 0 else None)
            ax.axvline(last + 0.5, color="black", lw=0.8, ls=":")
        ax.set(ylabel="share of applications (%)", title="Grade mix by month", ylim=(0, 100))
        ax.set_xlim(min(months) - 0.5, max(months) + 0.5)
        _month_axis(ax, months)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
        image = Image("grade_mix", "Grade mix by application month (stacked shares)", figure_png(fig))
        rows = [
            [esc(_label(int(row["month"]))), *(pct(row[g], 1) for g in grades)] for _, row in mix.iterrows()
        ]
        return (
            "<p>How the month's applications spread over the grades (grade 1 the lowest PD). A "
            "shift of the whole score distribution shows as the bands moving; the score PSI measures "
            "it against the development scores.</p>"
            + img(image)
            + table(["month", *(f"grade {g}" for g in grades)], rows, "scroll")
        )

    # ----------------------------------------------------------------- CSI

    def csi(self) -> str:
        csi = self.r.csi
        features = [] if _empty(csi) else [c for c in csi.columns if c != "month"]
        if not features:
            return missing("No model input was profiled, so no CSI was computed.")
        by_month = csi.set_index(csi["month"].astype(int))
        judged = [m for m in self.judged if m in by_month.index]
        latest = max(judged) if judged else int(by_month.index.max())
        note = "" if judged else " No month was judged; the latest month is shown."
        window = by_month.loc[judged] if judged else by_month.loc[[latest]]
        thresholds = self.config.feature_csi
        rule_note = (
            " The lights here are the CSI's own; the input CSI rule (alerts) turns red only while the score "
            "PSI is amber or worse."
            if _csi_red_needs_score_shift(self.config)
            else ""
        )
        order = sorted(
            features, key=lambda f: (-np.nan_to_num(_float(by_month.at[latest, f]), nan=-1.0), str(f))
        )
        rows = []
        for feature in order[:MAX_CSI_ROWS]:
            value = by_month.at[latest, feature]
            column = window[feature].astype(float)
            fired = sum(threshold_light(v, thresholds) in ("amber", "red") for v in column)
            rows.append(
                [
                    esc(feature),
                    num(value, 3),
                    light_badge(threshold_light(value, thresholds)),
                    num(column.max(), 3),
                    num(fired),
                ]
            )
        out = [
            f"<p>Characteristic stability index of each model input in {esc(_label(latest))}, the latest "
            f"judged month, against its development distribution; the {min(MAX_CSI_ROWS, len(order))} "
            f"highest of {len(order)} inputs. Amber from {thresholds.amber:g}, red from "
            f"{thresholds.red:g}.{esc(note)}{esc(rule_note)}</p>",
            table(
                [
                    "feature",
                    f"CSI {_label(latest)}",
                    "CSI light",
                    "max CSI (judged months)",
                    "months amber or red",
                ],
                rows,
            ),
            img(self._csi_image(by_month, order[:CSI_PLOTTED])),
        ]
        return "".join(out)

    def _csi_image(self, by_month: pd.DataFrame, features: Sequence[str]) -> Image:
        plt = pyplot()
        c = self.config.feature_csi
        months = [int(m) for m in by_month.index]
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        _shade(ax, self.judged)
        for feature in features:
            ax.plot(months, by_month[feature].astype(float), marker=".", ms=3, label=_plot_text(feature))
        ax.axhline(c.amber, ls="--", color=_LIGHT_COLOURS["amber"], label=f"amber {c.amber:g}")
        ax.axhline(c.red, ls="--", color=_LIGHT_COLOURS["red"], label=f"red {c.red:g}")
        _month_axis(ax, months)
        ax.set(ylabel="CSI", title="CSI by month of the inputs highest in the latest judged month")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7)
        return Image("csi_top", "CSI by month of the top inputs", figure_png(fig))

    # ----------------------------------------------------------------- back-test

    def backtest(self) -> str:
        cohorts = self.r.backtest_cohorts
        if cohorts is None:
            return self._no_history("the observed default rates cannot be compared with the PDs.")
        if cohorts.empty:
            return missing("No cohort has an observed outcome yet: nothing to back-test.")
        c, t = self.config, self.tests
        grades = self.r.backtest_grades
        tested = cohorts[np.isfinite(cohorts["jeffreys_p"].astype(float))]
        out = [
            f"<p>Per application cohort, the share of its loans at 90+ within {c.default_months_on_book} "
            "months on book (loans whose window is observed, or that defaulted or ended before it) "
            f"against their mean PD. One-sided Jeffreys test (the PD underestimates): red below p "
            f"{t.red_p:g}, amber below p {t.yellow_p:g}; cohorts or grades with fewer than "
            f"{c.backtest_min_rows} such loans are not tested. The rule's light also takes the grades' "
            "Bonferroni-adjusted smallest p-value.</p>"
        ]
        if len(tested):
            out.append(img(self._backtest_image(tested)))
        else:
            out.append(missing(f"No cohort has {c.backtest_min_rows} loans with an observed outcome yet."))
        rows = []
        for _, row in cohorts.iterrows():
            month = int(row["month"])
            k, adjusted = self._grade_test(grades, month)
            rows.append(
                [
                    esc(row["cohort"]),
                    num(int(row["n"])),
                    num(int(row["defaults"])),
                    pct(row["observed_rate"]),
                    pct(row["mean_pd"]),
                    num(row["jeffreys_p"]),
                    light_badge(row["flag"]),
                    num(k),
                    num(adjusted),
                    num(row["auc"], 3),
                    light_badge(self.lights_by_month["backtest"].get(month, "n/a")),
                    light_badge(self.lights_by_month["discrimination"].get(month, "n/a")),
                ]
            )
        out.append(
            table(
                [
                    "cohort",
                    "loans",
                    "defaults",
                    "observed rate",
                    "mean PD",
                    "Jeffreys p",
                    "flag",
                    "grades tested",
                    "grades: adjusted p",
                    "AUC",
                    "back-test light",
                    "discrimination light",
                ],
                rows,
                "scroll",
            )
        )
        out.append('<p class="note">Lights are given for judged months only (n/a elsewhere).</p>')
        return "".join(out)

    @staticmethod
    def _grade_test(grades: pd.DataFrame | None, month: int) -> tuple[int, float]:
        if _empty(grades) or grades is None:
            return 0, float("nan")
        p = grades.loc[grades["month"] == month, "jeffreys_p"].astype(float)
        p = p[np.isfinite(p)]
        if not len(p):
            return 0, float("nan")
        return len(p), min(1.0, float(p.min()) * len(p))

    def _backtest_image(self, tested: pd.DataFrame) -> Image:
        plt = pyplot()
        months = [int(m) for m in tested["month"]]
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        _shade(ax, [m for m in self.judged if m in months])
        ax.plot(
            months,
            100.0 * tested["mean_pd"].astype(float),
            marker="s",
            ms=3,
            color="#1f3a5f",
            label="mean PD",
        )
        ax.plot(
            months,
            100.0 * tested["observed_rate"].astype(float),
            marker="o",
            ms=3,
            color="#8c1d18",
            label="observed",
        )
        for flag in ("amber", "red"):
            hit = tested["flag"] == flag
            if hit.any():
                ax.scatter(
                    tested.loc[hit, "month"].astype(int),
                    100.0 * tested.loc[hit, "observed_rate"].astype(float),
                    s=60,
                    facecolors="none",
                    edgecolors=_LIGHT_COLOURS[flag],
                    linewidths=1.6,
                    label=f"Jeffreys {flag}",
                    zorder=3,
                )
        _month_axis(ax, months)
        ax.set(
            ylabel=f"90+ within {self.config.default_months_on_book} months (%)",
            title="Observed against predicted, by cohort",
        )
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7)
        return Image(
            "backtest",
            "Observed default rate against the mean PD by cohort (tested cohorts)",
            figure_png(fig),
        )

    # ----------------------------------------------------------------- early delinquency

    def early_delinquency(self) -> str:
        early = self.r.early
        rule = self.config.early_delinquency
        what = f"{rule.threshold} by month on book {rule.months_on_book}"
        if early is None:
            return self._no_history(f"early delinquency ({what}) cannot be measured.")
        if early.empty:
            return missing(f"No cohort has reached month on book {rule.months_on_book} yet.")
        ratio = self.r.summary.get("early_delinquency_reference_ratio")
        shown = f" ({num(ratio, 3)})" if ratio is not None else ""
        out = [
            f"<p>Share of each cohort's loans at {esc(what)} against the share expected from its PDs: "
            f"the cohort's mean PD times the development cohorts' ratio of observed share to mean PD{shown}. "
            f"Cohorts with fewer than {rule.min_loans} loans are shown, not judged.</p>"
        ]
        if not np.isfinite(early["expected_rate"].astype(float)).any():
            out.append(
                missing(
                    "No development cohort is in the history, so there is no expected rate to compare with."
                )
            )
        else:
            out.append(img(self._early_image(early, what)))
        rows = [
            [
                esc(row["cohort"]),
                num(int(row["n"])),
                num(int(row["events"])),
                pct(row["observed_rate"]),
                pct(row["expected_rate"]),
                num(row["ratio"], 2),
                light_badge(self.lights_by_month["early_delinquency"].get(int(row["month"]), "n/a")),
            ]
            for _, row in early.iterrows()
        ]
        out.append(
            table(
                ["cohort", "loans", "events", "observed", "expected", "observed / expected", "light"],
                rows,
                "scroll",
            )
        )
        return "".join(out)

    def _early_image(self, early: pd.DataFrame, what: str) -> Image:
        plt = pyplot()
        rule = self.config.early_delinquency
        big = early[early["n"].astype(int) >= rule.min_loans]
        months = [int(m) for m in early["month"]]
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        _shade(ax, [m for m in self.judged if m in months])
        ax.plot(
            months,
            100.0 * early["expected_rate"].astype(float),
            marker="s",
            ms=3,
            color="#1f3a5f",
            label="expected",
        )
        ax.plot(
            months,
            100.0 * early["observed_rate"].astype(float),
            marker="o",
            ms=3,
            color="#8c1d18",
            label="observed",
        )
        ax.plot(
            months,
            100.0 * rule.factor.red * early["expected_rate"].astype(float),
            ls="--",
            lw=0.8,
            color=_LIGHT_COLOURS["red"],
            label=f"{rule.factor.red:g} x expected",
        )
        if len(big) < len(early):
            small = early[early["n"].astype(int) < rule.min_loans]
            ax.scatter(
                small["month"].astype(int),
                100.0 * small["observed_rate"].astype(float),
                marker="x",
                color="grey",
                label=f"under {rule.min_loans} loans",
                zorder=3,
            )
        _month_axis(ax, months)
        ax.set(ylabel=f"share at {_plot_text(what)} (%)", title=f"Early delinquency: {_plot_text(what)}")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7)
        return Image("early_delinquency", f"Observed against expected {what} by cohort", figure_png(fig))

    # ----------------------------------------------------------------- vintages

    def vintages(self) -> str:
        vintages = self.r.vintages
        if vintages is None:
            return self._no_history("vintage curves need the loans' monthly performance.")
        if vintages.empty:
            return missing("No loan has a month on book yet.")
        out = [
            "<p>Cumulative share of each origination quarter's loans that reached 30+ and 90+ by each "
            "month on book (among the loans observable that long; loans that ended stay in the count). "
            "Dotted: months on book that only part of the quarter's loans have reached yet.</p>",
            img(self._vintage_image(vintages)),
        ]
        points = (3, 6, 12)
        rows = []
        for vintage, part in vintages.groupby("vintage", sort=True):
            at = part.set_index(part["months_on_book"].astype(int))
            cells = [esc(vintage), num(int(at["n_loans"].iloc[0])), num(int(at.index.max()))]
            cells += [pct(at.at[m, "30+"], 1) if m in at.index else "n/a" for m in points]
            cells += [pct(at.at[m, "90+"], 1) if m in at.index else "n/a" for m in points]
            rows.append(cells)
        out.append(
            table(
                [
                    "vintage",
                    "loans",
                    "months on book seen",
                    *(f"30+ by {m}" for m in points),
                    *(f"90+ by {m}" for m in points),
                ],
                rows,
                "scroll",
            )
        )
        return "".join(out)

    def _vintage_image(self, vintages: pd.DataFrame) -> Image:
        plt = pyplot()
        names = sorted(map(str, vintages["vintage"].unique()))
        colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.9, max(len(names), 1)))
        fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.0))
        for ax, bucket in zip(axes, ("30+", "90+"), strict=True):
            for name, colour in zip(names, colours, strict=True):
                part = vintages[vintages["vintage"].astype(str) == name]
                ax.plot(
                    part["months_on_book"],
                    100.0 * part[bucket].astype(float),
                    color=colour,
                    label=_plot_text(name),
                )
            ax.set(
                xlabel="months on book",
                ylabel=f"cumulative {bucket} (%)",
                title=f"Cumulative {bucket} by vintage",
            )
            ax.set_ylim(bottom=0)
        axes[1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, title="origination quarter")
        return Image(
            "vintages", "Cumulative 30+ and 90+ by months on book, one line per quarter", figure_png(fig)
        )

    # ----------------------------------------------------------------- roll rates

    def roll_rates(self) -> str:
        rates = self.r.roll_rates
        if not rates:
            if not self.has_history:
                return self._no_history("roll rates need the loans' monthly performance.")
            return missing("No month-to-month transition was observed.")
        out = [
            "<p>From each bucket at the start of a month to the next month's bucket (or paid off), as a "
            "share of the loans (by count) and of their outstanding principal (by balance), over the "
            "transitions into the judged months. A row with no loans shows n/a.</p>"
        ]
        for key, heading in (("count", "By count"), ("balance", "By balance")):
            matrix = rates.get(key)
            if _empty(matrix) or matrix is None:
                continue
            rows = [
                [f"<strong>{esc(state)}</strong>", *(pct(v, 1) for v in values)]
                for state, values in zip(matrix.index, matrix.to_numpy(dtype=np.float64), strict=True)
            ]
            out.append(f"<h3>{heading}</h3>")
            out.append(table(["from \\ to", *(str(c) for c in matrix.columns)], rows, f"roll-{key}"))
        forward = rates.get("forward_by_month")
        if forward is not None and not forward.empty:
            out.append("<h3>Forward roll rates by month</h3>")
            out.append(img(self._forward_image(forward)))
        return "".join(out)

    @staticmethod
    def _forward_image(forward: pd.DataFrame) -> Image:
        plt = pyplot()
        steps = [c for c in forward.columns if c != "month"]
        labels = [str(m) for m in forward["month"]]
        x = np.arange(len(labels))
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        for step in steps:
            values = 100.0 * forward[step].astype(float).to_numpy()
            ax.plot(x, np.where(values > 0, values, np.nan), marker=".", ms=3, label=_plot_text(step))
        ticks = x[:: max(1, math.ceil(len(x) / 12))]
        ax.set_xticks(ticks)
        ax.set_xticklabels([labels[i] for i in ticks], rotation=45, ha="right", fontsize=8)
        ax.set_yscale("log")
        ax.set(ylabel="share rolling forward (%, log scale)", title="Forward roll rates by month")
        ax.legend(loc="lower right", fontsize=7)
        return Image("forward_roll_rates", "Forward roll rates by month", figure_png(fig))
