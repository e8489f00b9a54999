"""The collections page: one self-contained HTML file per collections run.

What :func:`scoring.collections.run.run_collections` found, laid out like the monitoring page
(:mod:`scoring.reporting.monitoring_page`) with the pages' shared style sheet, escaping
helpers and PNG embedding (:mod:`scoring.reporting.html`): the month's queue and its headline
numbers, the roll rates and cure rates, the Markov forecast of the 90+ balance back-tested
against what happened, the behaviour score's discrimination and calibration out of time, and the
queue's capture of realised losses against naive orders. Plots are PNGs embedded as ``data:``
URIs (matplotlib, Agg backend); the page loads nothing from outside itself.

Pure: :func:`render_collections_page` turns a :class:`~scoring.collections.run.CollectionsResult`
into a string; reading and writing files is the caller's business.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from scoring.collections.run import CollectionsResult
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
COLLECTIONS_SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("roll-rates", "Roll rates and cure rates"),
    ("forecast", "Forecast of the 90+ balance, back-tested"),
    ("behaviour-score", "Behaviour score: discrimination and calibration"),
    ("capture", "Capture of losses: the queue against naive orders"),
    ("queue", "The month's queue"),
)

COLLECTIONS_SECTION_IDS: tuple[str, ...] = tuple(s for s, _ in COLLECTIONS_SECTIONS)

PAGE_TITLE = "Collections"

# The orders the queue is judged against, first the queue itself (names as in queue.orders).
ORDER_LABELS: dict[str, str] = {
    "queue": "queue (expected loss avoided per unit of cost)",
    "expected_loss": "expected loss",
    "dpd_then_balance": "days past due then balance",
    "balance": "balance alone",
}
NAIVE_ORDERS = ("dpd_then_balance", "balance")
TOP_SHARES = ("5%", "10%", "20%")
HEADLINE_SHARE = "10%"
QUEUE_ROWS_SHOWN = 25
BUCKET_NAMES = {0: "current", 1: "M1", 2: "M2", 3: "M3"}
# Identity of the exported model, in the order shown; other keys follow in the order given.
MODEL_KEYS = ("name", "version", "alias", "uri", "digest", "path")

NO_CAPTURE = "No capture curve: no out-of-time month had delinquent accounts with a known outcome."
NO_CAPTURE_TABLE = "No capture figures: no out-of-time month had delinquent accounts with a known outcome."
NO_FORECAST = "No forecast back-test: the history has no origin with the forecast's months after it."
NO_CALIBRATION = "No out-of-time rows: the behaviour score's calibration cannot be shown."
NO_QUEUE = "No delinquent account in the queue month: the queue is empty."
NO_ROLL_RATES = "No transition matrix: no month-to-month move was observed."

_EXTRA_CSS = """
p.headline{font-size:1.05em}
p.note{color:#555;font-size:.9em}
table.queue td:nth-last-child(-n+2){text-align:left;max-width:22em}
td code{font-size:.95em;word-break:break-all}
"""


def render_collections_page(result: CollectionsResult, model: dict[str, Any] | None = None) -> str:
    """The whole collections page as one string: inline CSS, embedded PNGs, no external references.

    ``model``: identity of the exported behaviour model (``name``, ``version``, ``alias``,
    ``uri``, ``digest``, ``path``, any of them), shown in the summary; when not given, the
    result summary's ``model`` entry is shown if it has one.
    """
    identity = model if model is not None else result.summary.get("model")
    page = _Page(result, dict(identity) if isinstance(identity, Mapping) else {})
    renderers = {
        "summary": page.summary,
        "roll-rates": page.roll_rates,
        "forecast": page.forecast,
        "behaviour-score": page.behaviour_score,
        "capture": page.capture,
        "queue": page.queue,
    }
    nav = "".join(f'<a href="#{sid}">{esc(heading)}</a>' for sid, heading in COLLECTIONS_SECTIONS)
    sections = "".join(
        f'<section id="{sid}"><h2>{esc(heading)}</h2>{renderers[sid]()}</section>'
        for sid, heading in COLLECTIONS_SECTIONS
    )
    queue_month = (result.summary.get("queue") or {}).get("month")
    name, version, digest = (page.model.get(k) for k in ("name", "version", "digest"))
    parts = [f"queue month {queue_month}"] if queue_month else []
    if name:
        parts.append(f"behaviour model {name}" + (f" version {version}" if version is not None else ""))
    if digest:
        parts.append(f"exported model digest {digest}")
    subtitle = " · ".join(parts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        f"<title>{esc(PAGE_TITLE)}</title><style>{CSS}{_EXTRA_CSS}</style></head><body>"
        f"<header><h1>{esc(PAGE_TITLE)}</h1><p>{esc(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{sections}</main></body></html>\n"
    )


# --------------------------------------------------------------------------- small helpers


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _text(value: Any) -> str:
    """``value`` escaped; n/a for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return esc(value)


def _money(value: Any) -> str:
    number = _float(value)
    return f"{number:,.0f}" if math.isfinite(number) else "n/a"


def _signed_pct(value: Any, digits: int = 1) -> str:
    number = _float(value)
    return f"{100.0 * number:+.{digits}f}%" if math.isfinite(number) else "n/a"


def _count(value: Any) -> str:
    """A count, shown as an integer even when a frame's row made it a float."""
    number = _float(value)
    return num(int(number)) if math.isfinite(number) else "n/a"


def _yes(value: Any) -> str:
    return "yes" if bool(value) else "no"


def _bucket(value: Any) -> str:
    number = _float(value)
    return esc(BUCKET_NAMES.get(int(number), int(number))) if math.isfinite(number) else _text(value)


def _order_label(order: str) -> str:
    return ORDER_LABELS.get(order, order)


def _plot_text(value: Any) -> str:
    """Text for matplotlib: dollar signs escaped so a name is never parsed as mathtext."""
    return str(value).replace("$", r"\$")


def _empty(frame: pd.DataFrame | None) -> bool:
    return frame is None or frame.empty


def _setting(result: CollectionsResult, section: str, key: str) -> Any:
    """A collections setting the behaviour model was built with (None when the result has no scorer)."""
    settings = result.scorer.settings if result.scorer is not None else {}
    value = (settings.get(section) or {}).get(key) if isinstance(settings, Mapping) else None
    return value


# --------------------------------------------------------------------------- the page


class _Page:
    """The sections of one page, each a method returning trusted HTML."""

    def __init__(self, result: CollectionsResult, model: dict[str, Any]) -> None:
        self.r = result
        self.s = result.summary or {}
        self.model = model
        horizon = _setting(result, "behaviour", "horizon_months")
        # the behaviour target's horizon, from the settings the model was built with when known
        known = isinstance(horizon, int | float)
        self.within = f"{int(horizon)} months" if known else "the score's horizon"
        self.horizon = f"the next {self.within}" if known else self.within
        self.capture_mean: dict[str, float] = dict(self.s.get("capture_mean") or {})

    def _capture(self, order: str, share: str, by: str = "loss") -> Any:
        key = f"{order}_top_{share}" if by == "loss" else f"{order}_count_top_{share}"
        return self.capture_mean.get(key)

    # ----------------------------------------------------------------- summary

    def summary(self) -> str:
        s = self.s
        queue = s.get("queue") or {}
        behaviour = s.get("behaviour") or {}
        by_action = queue.get("by_action") or {}
        out: list[str] = []
        if self.capture_mean:
            naive = " and ".join(
                f"{pct(self._capture(o, HEADLINE_SHARE), 1)} ordered by {esc(_order_label(o))}"
                for o in NAIVE_ORDERS
            )
            out.append(
                f'<p class="headline">Working the first {HEADLINE_SHARE} of the queue captured '
                f"{pct(self._capture('queue', HEADLINE_SHARE), 1)} of the losses over "
                f"{esc(self.horizon)}, against {naive} (mean over the out-of-time months).</p>"
            )
        else:
            out.append(missing(NO_CAPTURE_TABLE))
        rows = [
            ["queue month", _text(queue.get("month"))],
            ["accounts in the queue", num(queue.get("accounts"))],
            [
                "by action",
                esc(", ".join(f"{action} {count:,}" for action, count in by_action.items()))
                if by_action
                else "none",
            ],
            [
                "within capacity",
                f"{num(queue.get('within_capacity'))} of {num(queue.get('accounts'))}",
            ],
            ["behaviour champion", _text(behaviour.get("champion"))],
            ["calibration", _text(behaviour.get("calibration"))],
            ["out-of-time AUC", num(behaviour.get("oot_auc"), 3)],
            [
                "out-of-time mean PD (calibrated) against observed default rate",
                f"{pct(behaviour.get('oot_mean_pd'))} against {pct(behaviour.get('oot_default_rate'))}",
            ],
        ]
        if self.model:
            known = [k for k in MODEL_KEYS if k in self.model]
            rest = [k for k in self.model if k not in MODEL_KEYS]
            for key in (*known, *rest):
                value = self.model[key]
                shown = f"<code>{_text(value)}</code>" if key in ("uri", "digest", "path") else _text(value)
                rows.append([f"behaviour model {esc(key)}", shown])
        else:
            rows.append(["behaviour model", "not given"])
        out.append(table(["", ""], rows, "kv"))
        if self.capture_mean:
            out.append(
                table(
                    [
                        "first " + HEADLINE_SHARE + " worked, ordered by",
                        "losses captured",
                        "defaulted accounts",
                    ],
                    [
                        [
                            esc(_order_label(o)),
                            pct(self._capture(o, HEADLINE_SHARE), 1),
                            pct(self._capture(o, HEADLINE_SHARE, "count"), 1),
                        ]
                        for o in ("queue", *NAIVE_ORDERS)
                    ],
                    "headline",
                )
            )
        return "".join(out)

    # ----------------------------------------------------------------- roll rates

    def roll_rates(self) -> str:
        fit_months = _setting(self.r, "forecast", "fit_months")
        window = (
            f"the last {int(fit_months)} months" if isinstance(fit_months, int | float) else "the last months"
        )
        out = [
            "<p>From each state at the start of a month to the next month's state, over the moves of "
            f"{esc(window)} of the history: as a share of the accounts (by count) and of the "
            "outstanding principal they carried (by balance; amortisation, prepayment and write-off "
            "included). written_off and paid_off absorb.</p>"
        ]
        shown = 0
        for key, heading in (("count", "By count"), ("balance", "By balance")):
            matrix = self.r.chain_tables.get(key) if self.r.chain_tables else None
            if matrix is None or matrix.empty:
                continue
            rows = [
                [f"<strong>{esc(state)}</strong>", *(pct(v, 1) for v in values)]
                for state, values in zip(matrix.index, matrix.to_numpy(dtype=np.float64), strict=True)
            ]
            out.append(f"<h3>{heading}</h3>")
            out.append(table(["from \\ to", *(str(c) for c in matrix.columns)], rows, f"roll-{key}"))
            shown += 1
        if not shown:
            out.append(missing(NO_ROLL_RATES))
        cures = self.s.get("cure_rates") or {}
        out.append("<h3>Cure rates</h3>")
        if cures:
            out.append(
                "<p>The share of a bucket's accounts back to current the next month.</p>"
                + table(["bucket", "cure rate"], [[esc(b), pct(v, 1)] for b, v in cures.items()])
            )
        else:
            out.append(missing("No cure rate: no delinquent account was observed."))
        return "".join(out)

    # ----------------------------------------------------------------- forecast

    def forecast(self) -> str:
        backtest = self.r.forecast_backtest
        if _empty(backtest) or "balance_90_forecast" not in backtest.columns:
            return missing(NO_FORECAST)
        horizon = int(backtest["months_ahead"].max())
        errors = self.s.get("forecast_90_balance_error_at_horizon") or {}
        out = [
            "<p>At each origin the accounts on book are rolled forward with the chains fitted on the "
            "months before it (by segment), and the forecast 90+ balance (M4+ or written off) is "
            "compared with what those accounts actually carried in each month after it. Error: "
            "forecast less actual, over actual.</p>"
        ]
        if errors:
            stated = "; ".join(f"origin {esc(o)}: {_signed_pct(e)}" for o, e in errors.items())
            out.append(f"<p>Error of the 90+ balance {horizon} months ahead: {stated}.</p>")
        out.append(img(self._forecast_image(backtest)))
        rows = [
            [
                _text(row.get("origin")),
                num(int(row["months_ahead"])),
                _text(row.get("month")),
                _money(row["balance_90_forecast"]),
                _money(row["balance_90_actual"]),
                _signed_pct(row["balance_90_error"]),
                _money(row.get("accounts_M4+_forecast")) + " / " + _money(row.get("accounts_M4+_actual")),
            ]
            for _, row in backtest.iterrows()
        ]
        out.append(
            table(
                [
                    "origin",
                    "months ahead",
                    "month",
                    "90+ balance forecast",
                    "90+ balance actual",
                    "error",
                    "accounts at M4+: forecast / actual",
                ],
                rows,
                "scroll",
            )
        )
        return "".join(out)

    @staticmethod
    def _forecast_image(table: pd.DataFrame) -> Image:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7.4, 3.8))
        origins = list(dict.fromkeys(table["origin"].astype(str))) if "origin" in table.columns else ["all"]
        colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(len(origins), 1)))
        for origin, colour in zip(origins, colours, strict=True):
            part = table[table["origin"].astype(str) == origin] if "origin" in table.columns else table
            part = part.sort_values("months_ahead")
            ahead = part["months_ahead"].astype(int)
            label = _plot_text(origin)
            forecast = part["balance_90_forecast"].astype(float) / 1e6
            actual = part["balance_90_actual"].astype(float) / 1e6
            ax.plot(ahead, forecast, color=colour, marker="o", ms=3, label=f"{label} forecast")
            ax.plot(ahead, actual, color=colour, ls="--", marker="x", ms=4, label=f"{label} actual")
        ax.set(
            xlabel="months ahead of the origin",
            ylabel="90+ balance (millions)",
            title="Forecast (solid) against actual (dashed) 90+ balance, per origin",
        )
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7, ncol=2)
        return Image(
            "forecast_balance_90",
            "Forecast against actual 90+ balance by months ahead, one colour per origin",
            figure_png(fig),
        )

    # ----------------------------------------------------------------- behaviour score

    def behaviour_score(self) -> str:
        b = self.s.get("behaviour") or {}
        rows = b.get("rows") or {}
        out = [
            f"<p>The behaviour PD: the chance that a delinquent account reaches 90+ within "
            f"{esc(self.within)}, judged on the latest snapshot months with a known outcome (out of "
            "time), never seen in training or calibration.</p>",
            table(
                ["", ""],
                [
                    ["champion", _text(b.get("champion"))],
                    ["why", _text(b.get("decision"))],
                    ["calibration (fitted on valid)", _text(b.get("calibration"))],
                    [
                        "rows: train / valid / out of time",
                        " / ".join(num(rows.get(k)) for k in ("train", "valid", "oot")),
                    ],
                    ["out-of-time AUC", num(b.get("oot_auc"), 3)],
                    ["out-of-time default rate", pct(b.get("oot_default_rate"))],
                    ["out-of-time mean PD", pct(b.get("oot_mean_pd"))],
                ],
                "kv",
            ),
            "<h3>AUC by bucket</h3>",
        ]
        buckets = self.r.auc_by_bucket
        if _empty(buckets):
            out.append(missing("No out-of-time rows: there is no AUC by bucket."))
        else:
            out.append(
                table(
                    ["bucket", "accounts", "defaults", "AUC"],
                    [
                        [
                            _bucket(row["bucket"]),
                            _count(row["accounts"]),
                            _count(row["defaults"]),
                            num(row["auc"], 3),
                        ]
                        for _, row in buckets.iterrows()
                    ],
                )
                + '<p class="note">n/a: the bucket had no default, or nothing else, out of time.</p>'
            )
        out.append("<h3>Calibration by PD decile</h3>")
        calibration = self.r.calibration
        if _empty(calibration):
            out.append(missing(NO_CALIBRATION))
            return "".join(out)
        out.append(img(self._calibration_image(calibration)))
        out.append(
            table(
                ["decile", "accounts", "mean PD", "observed rate", "observed / predicted"],
                [
                    [
                        num(int(row["bin"])),
                        num(int(row["accounts"])),
                        pct(row["mean_pd"]),
                        pct(row["observed_rate"]),
                        num(_float(row["observed_rate"]) / _float(row["mean_pd"]), 2)
                        if _float(row["mean_pd"]) > 0
                        else "n/a",
                    ]
                    for _, row in calibration.iterrows()
                ],
            )
        )
        return "".join(out)

    @staticmethod
    def _calibration_image(calibration: pd.DataFrame) -> Image:
        plt = pyplot()
        predicted = 100.0 * calibration["mean_pd"].to_numpy(dtype=np.float64)
        observed = 100.0 * calibration["observed_rate"].to_numpy(dtype=np.float64)
        fig, ax = plt.subplots(figsize=(5.6, 4.6))
        shown = (predicted > 0) & (observed > 0)
        # PDs of a behaviour score span orders of magnitude: log axes when every point can be drawn
        log = bool(shown.any())
        x, y = (predicted[shown], observed[shown]) if log else (predicted, observed)
        ax.plot(x, y, marker="o", color="#1f3a5f", label="decile")
        for decile, px, py in zip(calibration["bin"][shown if log else slice(None)], x, y, strict=True):
            ax.annotate(str(int(decile)), (px, py), textcoords="offset points", xytext=(4, -9), fontsize=7)
        values = np.concatenate([x, y])
        low = float(values.min()) if len(values) else 0.0
        high = float(values.max()) if len(values) else 1.0
        if log:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            low, high = low / 1.5, high * 1.5
        else:
            low, high = 0.0, max(high * 1.1, 1.0)
        ax.plot([low, high], [low, high], ls="--", color="grey", lw=0.8, label="observed = predicted")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set(
            xlabel="mean behaviour PD (%)",
            ylabel="observed 90+ rate (%)",
            title="Calibration out of time, by PD decile" + (" (log scales)" if log else ""),
        )
        ax.legend(loc="upper left", fontsize=7)
        hidden = int((~shown).sum()) if log else 0
        caption = "Observed 90+ rate against the mean behaviour PD per decile, out of time"
        if hidden:
            caption += f" ({hidden} decile(s) with no default are in the table, not on the log axes)"
        return Image("calibration", caption, figure_png(fig))

    # ----------------------------------------------------------------- capture

    def capture(self) -> str:
        out = [
            "<p>The queue ranks accounts by expected loss avoided per unit of cost (PD times net "
            "exposure, the balance less what the repossessed car would bring, times the action's cure "
            "uplift, over its cost), so it is judged on losses: the share of the losses over "
            f"{esc(self.horizon)} (the net exposure of the accounts that reached 90+) found in "
            "the first accounts worked. The naive orders, days past due then balance and balance "
            "alone, do not see the car's value. By count (accounts that reached 90+, whatever their "
            "loss) is shown too.</p>"
        ]
        curve = self.r.capture_curve
        if _empty(curve):
            out.append(missing(NO_CAPTURE))
        else:
            out.append(img(self._capture_image(curve)))
        if not self.capture_mean:
            out.append(missing(NO_CAPTURE_TABLE))
            return "".join(out)
        present = {key.split("_top_")[0].removesuffix("_count") for key in self.capture_mean}
        names = [o for o in ORDER_LABELS if o in present] + sorted(present - set(ORDER_LABELS))
        rows = [
            [
                esc(_order_label(o)),
                *(pct(self._capture(o, share), 1) for share in TOP_SHARES),
                *(pct(self._capture(o, share, "count"), 1) for share in TOP_SHARES),
            ]
            for o in names
        ]
        out.append("<h3>Share captured in the first accounts worked, mean over the out-of-time months</h3>")
        out.append(
            table(
                [
                    "order",
                    *(f"losses: top {share}" for share in TOP_SHARES),
                    *(f"defaulted accounts: top {share}" for share in TOP_SHARES),
                ],
                rows,
                "capture",
            )
        )
        by_month = self.r.capture_by_month
        if not _empty(by_month):
            columns = [f"{o}_top_{HEADLINE_SHARE}" for o in names if f"{o}_top_{HEADLINE_SHARE}" in by_month]
            out.append(f"<h3>Top {HEADLINE_SHARE} by losses, per out-of-time month</h3>")
            out.append(
                table(
                    [
                        "month",
                        "accounts",
                        "defaults",
                        "loss",
                        *(_order_label(c.removesuffix(f"_top_{HEADLINE_SHARE}")) for c in columns),
                    ],
                    [
                        [
                            _text(row["month"]),
                            _count(row["accounts"]),
                            _count(row["defaults"]),
                            _money(row["loss"]),
                            *(pct(row[c], 1) for c in columns),
                        ]
                        for _, row in by_month.iterrows()
                    ],
                    "scroll",
                )
            )
        return "".join(out)

    @staticmethod
    def _capture_image(curve: pd.DataFrame) -> Image:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7.4, 4.2))
        present = list(dict.fromkeys(curve["order"].astype(str)))
        names = [o for o in ORDER_LABELS if o in present] + [o for o in present if o not in ORDER_LABELS]
        styles = {"queue": ("#1f3a5f", 2.2), "expected_loss": ("#2e8b57", 1.4)}
        for name in names:
            part = curve[curve["order"].astype(str) == name].sort_values("share")
            colour, width = styles.get(name, (None, 1.2))
            worked = 100.0 * part["share"].astype(float)
            captured = 100.0 * part["capture"].astype(float)
            ax.plot(worked, captured, color=colour, lw=width, label=_plot_text(_order_label(name)))
        ax.plot([0, 100], [0, 100], ls=":", color="grey", lw=0.8, label="random")
        for share in TOP_SHARES:
            ax.axvline(float(share.rstrip("%")), ls="--", lw=0.6, color="#9aa3ad")
        ax.set(
            xlabel="accounts worked, first in the order first (%)",
            ylabel="losses captured (%)",
            title="Capture of the out-of-time losses, by order",
            xlim=(0, 100),
            ylim=(0, 102),
        )
        ax.legend(loc="lower right", fontsize=7)
        return Image(
            "capture_curve",
            "Share of losses captured against the share of accounts worked, mean over the out-of-time months",
            figure_png(fig),
        )

    # ----------------------------------------------------------------- queue

    def queue(self) -> str:
        queue = self.r.queue
        summary = self.s.get("queue") or {}
        if _empty(queue):
            return missing(NO_QUEUE)
        shown = queue.head(QUEUE_ROWS_SHOWN)
        out = [
            f"<p>The first {len(shown)} of {len(queue):,} delinquent accounts in "
            f"{_text(summary.get('month'))}, ranked by expected loss avoided per unit of cost. Net "
            "exposure: the balance less the car's depreciated value after repossession costs. Within "
            "capacity: the action still has capacity when the account's turn comes.</p>"
        ]

        def cell(row: pd.Series, column: str) -> str:
            return _text(row[column]) if column in row.index else "n/a"

        rows = [
            [
                num(int(row["rank"])),
                esc(row["loan_id"]),
                _bucket(row["bucket"]),
                num(int(row["days_past_due"])),
                _money(row["outstanding_principal"]),
                _money(row["car_value"]),
                _money(row["net_exposure"]),
                pct(row["behaviour_pd"], 1),
                esc(row["action"]),
                _yes(row["within_capacity"]),
                cell(row, "reason_text_1"),
                cell(row, "reason_text_2"),
            ]
            for _, row in shown.iterrows()
        ]
        out.append(
            table(
                [
                    "rank",
                    "loan",
                    "bucket",
                    "days past due",
                    "balance",
                    "car value",
                    "net exposure",
                    "behaviour PD",
                    "action",
                    "within capacity",
                    "reason 1",
                    "reason 2",
                ],
                rows,
                "queue",
            )
        )
        by_action = summary.get("by_action") or {
            str(k): int(v) for k, v in queue["action"].value_counts().sort_index().items()
        }
        within = queue.groupby(queue["action"].astype(str))["within_capacity"].sum()
        out.append("<h3>Accounts by action</h3>")
        out.append(
            table(
                ["action", "accounts", "within capacity"],
                [
                    [esc(action), num(int(count)), num(int(within.get(str(action), 0)))]
                    for action, count in by_action.items()
                ],
            )
        )
        return "".join(out)
