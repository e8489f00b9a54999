"""The collections page: built from a real collections run on a small synthetic portfolio.

The result comes from :func:`scoring.collections.run.run_collections` on 8,000 synthetic loans
over 36 months with their performance history (application scores a constant PD); the page must
show every section once, load nothing from outside, embed only decodable PNGs, show the summary's
headline numbers as they are, say plainly when a table is empty, escape what it shows, and render
in headless Chromium without errors.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from browser_support import assert_pngs_decode, assert_self_contained, browse, parse, section_html
from scoring.collections.config import CollectionsConfig
from scoring.collections.run import CollectionsResult, run_collections
from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio
from scoring.reporting.collections_page import (
    COLLECTIONS_SECTION_IDS,
    COLLECTIONS_SECTIONS,
    NO_CALIBRATION,
    NO_CAPTURE,
    NO_CAPTURE_TABLE,
    NO_FORECAST,
    NO_QUEUE,
    render_collections_page,
)

SEED = 11
DATA = SyntheticDataConfig(n_applications=8000, months=36, immature_months=12)
MODEL = {
    "name": "auto_loan_behaviour",
    "uri": "models:/auto_loan_behaviour@champion",
    "digest": "5f1c0e9a" * 8,
    "version": "3",
}
IMAGES = ["forecast_balance_90", "calibration", "capture_curve"]
ORDERS = {
    "queue": "queue (expected loss avoided per unit of cost)",
    "expected_loss": "expected loss",
    "dpd_then_balance": "days past due then balance",
    "balance": "balance alone",
}
SCRIPT = "<script>alert(\"x\")</script> & 'co'"
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;co&#x27;"


# --------------------------------------------------------------------------- a real collections run


@pytest.fixture(scope="module")
def result() -> CollectionsResult:
    apps, truth = generate_portfolio(DATA, SEED)
    history = generate_performance(apps, truth, DATA, SEED)
    scores = pd.DataFrame({"application_id": apps["application_id"], "pd": 0.05, "score": 600.0})
    return run_collections(history, apps, scores, CollectionsConfig(), seed=5)


@pytest.fixture(scope="module")
def page(result: CollectionsResult) -> str:
    return render_collections_page(result, MODEL)


# --------------------------------------------------------------------------- parsing the page


def _table(html: str, css: str | None = None, index: int = 0) -> list[list[str]]:
    """The body rows of a table (the ``index``-th, or the one of class ``css``) as lists of cell HTML."""
    if css is not None:
        html = html.split(f'<table class="{css}">', 1)[1]
    else:
        html = html.split("<table", index + 1)[index + 1]
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        re.findall(r"<td>(.*?)</td>", row, flags=re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def _kv(html: str) -> dict[str, str]:
    return {cells[0]: cells[1] for cells in _table(html, "kv")}


def _said(text: str) -> str:
    """A plain message as the page shows it (escaped)."""
    return html.escape(text, quote=True)


def _pct(value: float, digits: int = 1) -> str:
    """A share as the page should show it, formatted here independently of the page's helpers."""
    return f"{100.0 * value:.{digits}f}%"


def _state(bucket: float) -> str:
    return {1: "M1", 2: "M2", 3: "M3"}[int(bucket)]


# --------------------------------------------------------------------------- the page


def test_the_run_has_what_the_page_shows(result: CollectionsResult) -> None:
    # The fixture exercises every section: out-of-time months, back-tests, a queue longer than shown.
    assert not result.capture_curve.empty and not result.capture_by_month.empty
    assert not result.forecast_backtest.empty and not result.calibration.empty
    assert len(result.queue) > 25
    assert result.summary["behaviour"]["oot_auc"] is not None
    assert {"count", "balance"} <= set(result.chain_tables)


def test_every_section_appears_once_in_order(page: str) -> None:
    parsed = parse(page)
    assert parsed.sections == list(COLLECTIONS_SECTION_IDS)
    assert len(set(COLLECTIONS_SECTION_IDS)) == len(COLLECTIONS_SECTION_IDS) == 6
    assert parsed.headings == [heading for _, heading in COLLECTIONS_SECTIONS]
    for sid in COLLECTIONS_SECTION_IDS:
        assert page.count(f'id="{sid}"') == 1
        assert page.count(f'href="#{sid}"') == 1
    for text in (NO_CAPTURE, NO_CAPTURE_TABLE, NO_FORECAST, NO_CALIBRATION, NO_QUEUE):
        assert _said(text) not in page


def test_page_is_self_contained(page: str) -> None:
    assert_self_contained(page)


def test_every_image_is_a_png_that_decodes(page: str) -> None:
    images = parse(page).images
    assert [name for _, name in images] == IMAGES
    assert_pngs_decode(images)


def test_summary_shows_the_headline_numbers(result: CollectionsResult, page: str) -> None:
    s = result.summary
    section = section_html(page, "summary")
    kv = _kv(section)
    assert kv["queue month"] == s["queue"]["month"]
    assert kv["accounts in the queue"] == f"{s['queue']['accounts']:,}"
    assert kv["within capacity"] == f"{s['queue']['within_capacity']:,} of {s['queue']['accounts']:,}"
    assert kv["by action"] == ", ".join(f"{a} {n:,}" for a, n in s["queue"]["by_action"].items())
    assert kv["behaviour champion"] == s["behaviour"]["champion"]
    assert kv["out-of-time AUC"] == f"{s['behaviour']['oot_auc']:.3f}"
    assert kv["out-of-time mean PD (calibrated) against observed default rate"] == (
        f"{_pct(s['behaviour']['oot_mean_pd'], 2)} against {_pct(s['behaviour']['oot_default_rate'], 2)}"
    )
    capture = s["capture_mean"]
    rows = _table(section, "headline")
    assert rows == [
        [ORDERS[o], _pct(capture[f"{o}_top_10%"]), _pct(capture[f"{o}_count_top_10%"])]
        for o in ("queue", "dpd_then_balance", "balance")
    ]
    headline = re.search(r'<p class="headline">(.*?)</p>', section, re.S)
    assert headline, "no headline sentence"
    assert headline.group(1).startswith(
        f"Working the first 10% of the queue captured {_pct(capture['queue_top_10%'])} of the losses"
    )
    assert f"{_pct(capture['balance_top_10%'])} ordered by balance alone" in headline.group(1)
    # the behaviour target's horizon comes from the settings the model was built with
    assert "over the next 6 months" in headline.group(1)
    assert kv["behaviour model name"] == MODEL["name"]
    assert kv["behaviour model version"] == MODEL["version"]
    assert kv["behaviour model uri"] == f"<code>{MODEL['uri']}</code>"
    assert kv["behaviour model digest"] == f"<code>{MODEL['digest']}</code>"
    assert f"exported model digest {MODEL['digest']}" in page.split("</header>", 1)[0]


def test_without_a_model_the_summary_says_not_given(result: CollectionsResult) -> None:
    page = render_collections_page(
        replace(result, summary={k: v for k, v in result.summary.items() if k != "model"})
    )
    assert _kv(section_html(page, "summary"))["behaviour model"] == "not given"
    assert "behaviour model name" not in page


def test_capture_table_is_the_summary_by_losses_and_by_count(result: CollectionsResult, page: str) -> None:
    section = section_html(page, "capture")
    assert "expected loss avoided per unit of cost" in section and "judged on losses" in section
    assert "do not see the car's value" in section
    capture = result.summary["capture_mean"]
    shares = ("5%", "10%", "20%")
    assert _table(section, "capture") == [
        [
            label,
            *(_pct(capture[f"{o}_top_{s}"]) for s in shares),
            *(_pct(capture[f"{o}_count_top_{s}"]) for s in shares),
        ]
        for o, label in ORDERS.items()
    ]
    by_month = _table(section, "scroll")
    assert [r[0] for r in by_month] == list(result.capture_by_month["month"])
    assert [r[4] for r in by_month] == [_pct(v) for v in result.capture_by_month["queue_top_10%"]]


def test_forecast_states_the_error_at_the_horizon(result: CollectionsResult, page: str) -> None:
    section = section_html(page, "forecast")
    errors = result.summary["forecast_90_balance_error_at_horizon"]
    assert len(errors) == 3
    stated = "; ".join(f"origin {o}: {100.0 * e:+.1f}%" for o, e in errors.items())
    assert f"Error of the 90+ balance 6 months ahead: {stated}." in section
    rows = _table(section, "scroll")
    table = result.forecast_backtest
    assert len(rows) == len(table)
    for cells, (_, row) in zip(rows, table.iterrows(), strict=True):
        assert cells[:3] == [row["origin"], str(row["months_ahead"]), row["month"]]
        assert cells[3] == f"{row['balance_90_forecast']:,.0f}"
        assert cells[4] == f"{row['balance_90_actual']:,.0f}"
        assert cells[5] == f"{100.0 * row['balance_90_error']:+.1f}%"


def test_roll_rates_show_both_matrices_and_the_cure_rates(result: CollectionsResult, page: str) -> None:
    section = section_html(page, "roll-rates")
    for key in ("count", "balance"):
        matrix = result.chain_tables[key]
        rows = _table(section, f"roll-{key}")
        assert [r[0] for r in rows] == [f"<strong>{state}</strong>" for state in matrix.index]
        for cells, (_, values) in zip(rows, matrix.iterrows(), strict=True):
            assert cells[1:] == [_pct(v) for v in values]
    cures = _table(section, index=2)
    assert cures == [[b, _pct(v)] for b, v in result.summary["cure_rates"].items()]


def test_behaviour_score_shows_auc_by_bucket_and_calibration(result: CollectionsResult, page: str) -> None:
    section = section_html(page, "behaviour-score")
    assert _kv(section)["out-of-time AUC"] == f"{result.summary['behaviour']['oot_auc']:.3f}"
    buckets = _table(section, index=1)
    assert buckets == [
        [
            _state(row["bucket"]),
            f"{int(row['accounts']):,}",
            f"{int(row['defaults']):,}",
            "n/a" if row["auc"] is None or math.isnan(row["auc"]) else f"{row['auc']:.3f}",
        ]
        for _, row in result.auc_by_bucket.iterrows()
    ]
    deciles = _table(section, index=2)
    calibration = result.calibration
    assert [r[0] for r in deciles] == [str(b) for b in calibration["bin"]] == [str(b) for b in range(1, 11)]
    assert [r[2:4] for r in deciles] == [
        [_pct(p, 2), _pct(o, 2)]
        for p, o in zip(calibration["mean_pd"], calibration["observed_rate"], strict=True)
    ]
    assert 'data-name="calibration"' in section


def test_queue_shows_the_first_25_rows_and_the_counts_by_action(result: CollectionsResult, page: str) -> None:
    section = section_html(page, "queue")
    rows = _table(section, "queue")
    first = result.queue.head(25)
    assert len(rows) == 25
    assert [r[0] for r in rows] == [str(r) for r in first["rank"]] == [str(r) for r in range(1, 26)]
    assert [r[1] for r in rows] == list(first["loan_id"])
    assert [r[2] for r in rows] == [_state(b) for b in first["bucket"]]
    assert [r[7] for r in rows] == [_pct(p) for p in first["behaviour_pd"]]
    assert [r[8] for r in rows] == list(first["action"])
    assert [r[9] for r in rows] == ["yes" if w else "no" for w in first["within_capacity"]]
    assert [r[10] for r in rows] == list(first["reason_text_1"])
    assert [r[11] for r in rows] == list(first["reason_text_2"])
    counts = _table(section, index=1)
    within = result.queue.groupby("action")["within_capacity"].sum()
    assert counts == [
        [action, f"{n:,}", f"{int(within[action]):,}"]
        for action, n in result.summary["queue"]["by_action"].items()
    ]


def test_page_escapes_text_from_the_data(result: CollectionsResult) -> None:
    queue = result.queue.copy()
    queue.loc[0, "reason_text_1"] = SCRIPT
    queue.loc[1, "loan_id"] = SCRIPT
    summary = {**result.summary, "behaviour": {**result.summary["behaviour"], "champion": SCRIPT}}
    page = render_collections_page(replace(result, queue=queue, summary=summary), {**MODEL, "name": SCRIPT})
    assert "<script" not in page and 'alert("x")' not in page
    rows = _table(section_html(page, "queue"), "queue")
    assert rows[0][10] == ESCAPED and rows[1][1] == ESCAPED
    kv = _kv(section_html(page, "summary"))
    assert kv["behaviour champion"] == ESCAPED and kv["behaviour model name"] == ESCAPED
    assert f"behaviour model {ESCAPED} version 3" in page.split("</header>", 1)[0]


def test_empty_tables_are_said_plainly(result: CollectionsResult) -> None:
    # No out-of-time month with delinquent accounts, no back-test origin, no queue.
    empty = replace(
        result,
        capture_curve=pd.DataFrame(columns=["order", "share", "capture"]),
        forecast_backtest=pd.DataFrame(),
        calibration=pd.DataFrame(columns=["bin", "accounts", "mean_pd", "observed_rate"]),
        queue=result.queue.iloc[:0],
    )
    page = render_collections_page(empty, MODEL)
    parsed = parse(page)
    assert parsed.sections == list(COLLECTIONS_SECTION_IDS)
    assert [name for _, name in parsed.images] == []
    capture = section_html(page, "capture")
    assert _said(NO_CAPTURE) in capture and "<img" not in capture
    assert 'class="capture"' in capture  # the summary's capture figures are still there
    forecast = section_html(page, "forecast")
    assert _said(NO_FORECAST) in forecast and "<img" not in forecast and "<table" not in forecast
    assert _said(NO_CALIBRATION) in section_html(page, "behaviour-score")
    queue = section_html(page, "queue")
    assert _said(NO_QUEUE) in queue and "<table" not in queue
    for text in (NO_CAPTURE, NO_FORECAST, NO_CALIBRATION, NO_QUEUE):
        assert text.startswith("No ")


def test_a_bare_result_still_renders_everysection(result: CollectionsResult) -> None:
    bare = replace(
        result,
        summary={},
        queue=pd.DataFrame(),
        capture_by_month=pd.DataFrame(),
        forecast_backtest=pd.DataFrame(),
        chain_tables={},
        scorer=None,
        calibration=pd.DataFrame(),
        capture_curve=pd.DataFrame(),
        auc_by_bucket=pd.DataFrame(),
    )
    page = render_collections_page(bare)
    assert parse(page).sections == list(COLLECTIONS_SECTION_IDS)
    assert parse(page).images == []
    for text in (NO_CAPTURE, NO_CAPTURE_TABLE, NO_FORECAST, NO_CALIBRATION, NO_QUEUE):
        assert _said(text) in page
    assert _kv(section_html(page, "summary"))["out-of-time AUC"] == "n/a"


# --------------------------------------------------------------------------- headless Chromium


def test_page_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    sections, (total, decoded), errors, dom = browse(page, tmp_path)
    assert errors == []
    assert sections == list(COLLECTIONS_SECTION_IDS)
    assert total == decoded == len(parse(page).images) == len(IMAGES)
    for _, heading in COLLECTIONS_SECTIONS:
        assert f"<h2>{heading}</h2>" in dom


def test_browser_check_catches_errors(page: str, tmp_path: Path) -> None:
    # The check above can fail: a broken image and an outside image (blocked by the page's policy).
    broken = page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    outside = broken.replace("</main>", '<img src="https://example.invalid/pixel.png" alt="x"></main>', 1)
    _, (total, decoded), errors, _ = browse(outside, tmp_path)
    assert (total, decoded) == (len(IMAGES) + 1, len(IMAGES) - 1)
    assert any(e.startswith("error: IMG data:image/png") for e in errors), errors
    assert any(e.startswith("csp: img-src https://example.invalid") for e in errors), errors
