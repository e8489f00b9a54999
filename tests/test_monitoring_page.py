"""The monitoring page: built from a real monitoring run on a small synthetic portfolio.

The result comes from :func:`scoring.monitoring.monitor.run_monitoring` on 6,000 synthetic
applications over 36 months with their performance history, scored with the true PD; the page
must show every section once, load nothing from outside, embed only decodable PNGs, list every
rule with the light the alerts gave it, say plainly when there is no performance history,
escape what it shows, and render in headless Chromium without errors.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser_support import assert_pngs_decode, assert_self_contained, browse, parse, section_html
from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio
from scoring.decision.grades import ValidationTestSettings
from scoring.monitoring.config import MonitorConfig
from scoring.monitoring.monitor import RULES, MonitoringResult, run_monitoring
from scoring.monitoring.profile import build_profile
from scoring.reporting.monitoring_page import (
    MONITORING_SECTION_IDS,
    MONITORING_SECTIONS,
    NO_HISTORY,
    light_badge,
    render_monitoring_page,
)

SEED = 20261207
DATA = SyntheticDataConfig(n_applications=6000, months=36, immature_months=12)
CONFIG = MonitorConfig(min_rows_per_month=50)
TESTS = ValidationTestSettings()
REFERENCE_MONTHS = 18
INPUTS = ["bureau_score", "monthly_income", "vehicle_segment", "income_verified"]
HISTORY_SECTIONS = ("backtest", "early-delinquency", "vintages", "roll-rates")


# --------------------------------------------------------------------------- a real monitoring run


def _scored(apps: pd.DataFrame, truth: pd.DataFrame, reference: np.ndarray) -> pd.DataFrame:
    """The scorer's columns from the true PD: score on a 28.85-points-to-double-the-odds scale,
    seven grades at the reference months' PD quantiles, grades 6 and 7 declined."""
    p = (
        truth.set_index("application_id")["true_pd"]
        .reindex(apps["application_id"])
        .to_numpy(dtype=np.float64)
    )
    cuts = np.quantile(p[reference], np.linspace(0.0, 1.0, 8)[1:-1])
    grade = np.searchsorted(cuts, p, side="right") + 1
    return pd.DataFrame(
        {
            "pd": p,
            "score": 600.0 - 28.85 * np.log(p / (1.0 - p)),
            "grade": grade,
            "decision": np.where(grade <= 5, "approve", "decline"),
        }
    )


@pytest.fixture(scope="module")
def portfolio() -> dict[str, object]:
    apps, truth = generate_portfolio(DATA, SEED)
    apps = apps.reset_index(drop=True)
    history = generate_performance(apps, truth, DATA, SEED)
    months = pd.to_datetime(apps["application_date"]).dt.to_period("M")
    reference = (months <= months.min() + (REFERENCE_MONTHS - 1)).to_numpy()
    scored = _scored(apps, truth, reference)
    profile = build_profile(
        raw=apps.loc[reference, [*INPUTS, "application_date"]],
        scored=scored.loc[reference],
        input_columns=INPUTS,
        date_column="application_date",
        bins=10,
        development_auc=0.8,
    )
    batch = pd.concat([apps, scored], axis=1)
    return {"batch": batch, "profile": profile, "history": history}


def _monitor(portfolio: dict[str, object], history: pd.DataFrame | None) -> MonitoringResult:
    batch, profile = portfolio["batch"], portfolio["profile"]
    assert isinstance(batch, pd.DataFrame) and isinstance(profile, dict)
    return run_monitoring(batch, profile, CONFIG, TESTS, "application_id", "application_date", history)


@pytest.fixture(scope="module")
def result(portfolio: dict[str, object]) -> MonitoringResult:
    history = portfolio["history"]
    assert isinstance(history, pd.DataFrame)
    return _monitor(portfolio, history)


@pytest.fixture(scope="module")
def page(result: MonitoringResult) -> str:
    return render_monitoring_page(
        result,
        model="pd-model v3",
        model_digest="sha256:0f1e2d",
        generated="2026-12-07",
        config=CONFIG,
        tests=TESTS,
    )


# --------------------------------------------------------------------------- parsing the page


def _rows(table: str) -> list[list[str]]:
    """The body rows of one table as lists of cell HTML (cells hold no nested tables)."""
    body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        re.findall(r"<td>(.*?)</td>", row, flags=re.S) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def _alert_rows(page: str) -> dict[str, list[str]]:
    alerts = section_html(page, "alerts")
    table = alerts.split('<table class="alerts">', 1)[1].split("</table>", 1)[0]
    rows: dict[str, list[str]] = {}
    for cells in _rows(table):
        rule = re.search(r"<code>(.*?)</code>", cells[0])
        assert rule, f"no rule name in {cells[0]!r}"
        rows[rule.group(1)] = cells
    return rows


def _badge(cell: str) -> str:
    """The light a cell's first badge shows, checked to be shown as text and colour alike."""
    match = re.search(r'<span class="flag (\w+)[^"]*" data-light="([^"]+)">.*?</span>([^<]+)</span>', cell)
    assert match, f"no traffic light in {cell!r}"
    css, light, text = match.groups()
    assert text == light, f"badge says {text!r} but is the {light!r} light"
    assert css == {"green": "ok", "amber": "warn", "red": "bad", "n/a": "na"}[light]
    return light


# --------------------------------------------------------------------------- the page


def test_the_run_judges_months_and_has_performance(result: MonitoringResult) -> None:
    # The fixture exercises what the page shows: judged months, matured cohorts, history tables.
    assert result.stability["judged"].sum() == len(result.lights) > 0
    assert result.backtest_cohorts is not None and np.isfinite(result.backtest_cohorts["jeffreys_p"]).any()
    assert result.vintages is not None and not result.vintages.empty
    assert {"count", "balance", "forward_by_month"} <= set(result.roll_rates)


def test_every_section_appears_once_in_order(page: str) -> None:
    parsed = parse(page)
    assert parsed.sections == list(MONITORING_SECTION_IDS)
    assert len(set(MONITORING_SECTION_IDS)) == len(MONITORING_SECTION_IDS) == 9
    assert parsed.headings == [heading for _, heading in MONITORING_SECTIONS]
    for sid in MONITORING_SECTION_IDS:
        assert page.count(f'id="{sid}"') == 1
        assert page.count(f'href="#{sid}"') == 1
    assert "pd-model v3" in section_html(page, "summary") and "sha256:0f1e2d" in section_html(page, "summary")
    assert NO_HISTORY.lower() not in page.lower()


def test_page_is_self_contained(page: str) -> None:
    assert_self_contained(page)


def test_every_image_is_a_png_that_decodes(page: str) -> None:
    images = parse(page).images
    names = [name for _, name in images]
    assert names == [
        "stability_psi",
        "approval_mean_pd",
        "grade_mix",
        "csi_top",
        "backtest",
        "early_delinquency",
        "vintages",
        "forward_roll_rates",
    ]
    assert_pngs_decode(images)


def test_alert_table_lists_every_rule_with_the_alerts_light(result: MonitoringResult, page: str) -> None:
    rows = _alert_rows(page)
    assert list(rows) == list(RULES)
    for rule in RULES:
        entry = result.alerts["rules"][rule]
        cells = rows[rule]
        assert _badge(cells[1]) == entry["light"]
        assert cells[2] == (entry["first_fired"] or "n/a")
        assert cells[3] == (entry["first_red"] or "n/a")
        assert cells[4] == str(entry["months_red"])
        assert _badge(cells[6]) == entry["latest"]["light"]
        assert cells[6].startswith(entry["latest"]["month"])
        assert len(cells[7]) > 40, f"no description of {rule}"
    overall = re.search(r"Overall: (.*?)</p>", section_html(page, "summary"))
    assert overall and _badge(overall.group(1)) == result.alerts["overall"]


def test_alert_table_follows_the_alerts_it_is_given(result: MonitoringResult) -> None:
    # The lights come from result.alerts, not from anything the page works out itself.
    changed = {rule: dict(entry) for rule, entry in result.alerts["rules"].items()}
    lights = {"score_psi": "red", "feature_csi": "green", "backtest": "amber", "discrimination": "n/a"}
    for rule, light in lights.items():
        changed[rule]["light"] = light
    changed["score_psi"].update(first_fired="2021-03", first_red="2021-04", months_red=7)
    retrain = {"recommended": True, "since": "2021-06", "because": ["score_psi red 3+ months from 2021-06"]}
    doctored = replace(
        result, alerts={**result.alerts, "overall": "red", "rules": changed, "retrain": retrain}
    )
    page = render_monitoring_page(doctored, config=CONFIG, tests=TESTS)
    rows = _alert_rows(page)
    for rule, light in lights.items():
        assert _badge(rows[rule][1]) == light
    assert rows["score_psi"][2:5] == ["2021-03", "2021-04", "7"]
    assert "Retraining is recommended since 2021-06: score_psi red 3+ months from 2021-06." in page


def test_csi_table_ranks_the_latest_judged_month(result: MonitoringResult, page: str) -> None:
    latest = int(result.stability.loc[result.stability["judged"], "month"].max())
    values = result.csi.set_index("month").loc[latest].sort_values(ascending=False)
    section = section_html(page, "csi")
    table = section.split("<table>", 1)[1].split("</table>", 1)[0]
    rows = _rows(table)
    assert [r[0] for r in rows] == list(values.index)
    for cells, value in zip(rows, values, strict=True):
        assert cells[1] == f"{value:.3f}"
        expected = (
            "red"
            if value >= CONFIG.feature_csi.red
            else "amber"
            if value >= CONFIG.feature_csi.amber
            else "green"
        )
        assert _badge(cells[2]) == expected


def test_without_history_the_page_says_so(portfolio: dict[str, object]) -> None:
    bare = _monitor(portfolio, None)
    assert bare.backtest_cohorts is None and bare.vintages is None and not bare.roll_rates
    page = render_monitoring_page(bare, config=CONFIG, tests=TESTS)
    parsed = parse(page)
    assert parsed.sections == list(MONITORING_SECTION_IDS)
    for sid in HISTORY_SECTIONS:
        section = section_html(page, sid)
        assert "there is no performance history" in section.lower(), sid
        assert "<img" not in section and "<table" not in section, sid
    for sid in ("stability", "score-distribution", "csi"):
        assert "<img" in section_html(page, sid), sid
    assert "not given" in section_html(page, "summary")


def test_an_empty_result_still_renders_everysection() -> None:
    empty = MonitoringResult(
        stability=pd.DataFrame(),
        csi=pd.DataFrame(),
        grade_mix=pd.DataFrame(),
        lights=pd.DataFrame(),
        alerts={},
    )
    page = render_monitoring_page(empty)
    assert parse(page).sections == list(MONITORING_SECTION_IDS)
    assert parse(page).images == []
    assert list(_alert_rows(page)) == list(RULES)
    assert page.lower().count("there is no performance history") == len(HISTORY_SECTIONS)


def test_page_escapes_text(result: MonitoringResult) -> None:
    # A feature name with markup and a dollar pair (mathtext if it reached matplotlib as is).
    name = "<script>alert(\"x\")</script> & '$\\frac$'"
    csi = result.csi.rename(columns={"bureau_score": name})
    stability = result.stability.assign(
        max_csi_feature=result.stability["max_csi_feature"].replace({"bureau_score": name})
    )
    rules = {rule: dict(entry) for rule, entry in result.alerts["rules"].items()}
    rules["feature_csi"]["latest"] = {**rules["feature_csi"]["latest"], "value": f"{name} 0.300"}
    doctored = replace(result, csi=csi, stability=stability, alerts={**result.alerts, "rules": rules})
    page = render_monitoring_page(doctored, title='Monitoring <pd> & "co"', model="m<1>", config=CONFIG)
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;$\\frac$&#x27;"
    assert "<script" not in page and 'alert("x")' not in page
    assert escaped in section_html(page, "csi") and escaped in section_html(page, "alerts")
    assert "<title>Monitoring &lt;pd&gt; &amp; &quot;co&quot;</title>" in page
    assert "<h1>Monitoring &lt;pd&gt; &amp; &quot;co&quot;</h1>" in page
    assert "model: m&lt;1&gt;" in page
    assert "csi_top" in [n for _, n in parse(page).images]  # the plot with the odd legend was drawn


def test_light_badge_shows_text_and_colour() -> None:
    for light in ("green", "amber", "red", "n/a"):
        assert _badge(light_badge(light)) == light
    assert _badge(light_badge("purple")) == "n/a"
    assert _badge(light_badge(None)) == "n/a"


# --------------------------------------------------------------------------- headless Chromium


def test_page_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    sections, (total, decoded), errors, dom = browse(page, tmp_path)
    assert errors == []
    assert sections == list(MONITORING_SECTION_IDS)
    assert total == decoded == len(parse(page).images) == 8
    for _, heading in MONITORING_SECTIONS:
        assert f"<h2>{heading}</h2>" in dom


def test_browser_check_catches_errors(page: str, tmp_path: Path) -> None:
    # The check above can fail: a broken image and an outside image (blocked by the page's policy).
    broken = page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    outside = broken.replace("</main>", '<img src="https://example.invalid/pixel.png" alt="x"></main>', 1)
    _, (total, decoded), errors, _ = browse(outside, tmp_path)
    assert (total, decoded) == (9, 7)
    assert any(e.startswith("error: IMG data:image/png") for e in errors), errors
    assert any(e.startswith("csp: img-src https://example.invalid") for e in errors), errors
