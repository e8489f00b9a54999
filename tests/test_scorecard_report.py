"""The scorecard in the reviewer report (its section) and as a workbook (scoring by hand from it)."""

from __future__ import annotations

import html
import io
import math
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from browser_support import assert_pngs_decode, browse, parse, section_html
from scoring.decision.grades import MasterScale
from scoring.models.calibration import Calibrator
from scoring.models.scorecard import ScorecardModel, ScorecardSettings, fit_scorecard
from scoring.reporting.report import SECTION_IDS, ReviewReport, render_html
from scoring.reporting.scorecard_section import (
    DROP_REASONS,
    ScorecardReview,
    score_range,
    scorecard_bins,
    scorecard_characteristics,
    scorecard_review,
)
from scoring.reporting.workbook import (
    BINS_SHEET,
    CHARACTERISTICS_SHEET,
    MASTER_SCALE_TITLE,
    README_SHEET,
    SCALE_SHEET,
    SCORE_PD_TITLE,
    SELECTION_SHEET,
    WORKBOOK_CREATED,
    scorecard_workbook,
)

openpyxl = pytest.importorskip("openpyxl")

OVERRIDE_REASON = "Credit policy <CP-7>: under 24 months' employment is one band"
MIN_IV = 0.05  # the noise column reaches an IV of 0.03 by chance
LEVELS = ("dealer", "broker", "online", "branch")


def make_data(n: int = 4000, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    """Two continuous features (one with missing values), an integer one, a categorical, noise."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.3, 0.4, n)
    months = rng.integers(0, 240, n).astype(np.float64)  # integer values: split points at x.5
    ltv = rng.uniform(0.4, 1.3, n)
    ltv[rng.random(n) < 0.06] = np.nan
    channel = pd.Series(rng.choice(LEVELS, n, p=[0.4, 0.3, 0.2, 0.1]), dtype=object)
    channel[rng.random(n) < 0.04] = None
    noise = rng.normal(size=n)
    logit = (
        -2.4
        - 0.9 * (np.log(income) - 10.3) / 0.4
        - 0.006 * months
        + 1.6 * np.nan_to_num(ltv - 0.85, nan=0.3)
        + channel.map({"dealer": 0.0, "broker": 0.5, "online": 0.9, "branch": -0.3}).fillna(0.4).to_numpy()
    )
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    X = pd.DataFrame(
        {"income": income, "months_employed": months, "ltv": ltv, "channel": channel, "noise": noise}
    )
    return X, y


@pytest.fixture(scope="module")
def model() -> ScorecardModel:
    X, y = make_data()
    return fit_scorecard(X, y, ScorecardSettings(min_iv=MIN_IV, max_n_bins=5), seed=0)


def make_selection(model: ScorecardModel) -> dict[str, Any]:
    """selection.json as the train stage writes it (wt20_shared/selection_schema.md), by hand."""
    ranked = sorted(model.information_value.items(), key=lambda kv: -kv[1])
    variables = []
    for rank, (name, iv) in enumerate(ranked, start=1):
        kept = name in model.selected_features
        variables.append(
            {
                "variable": name,
                "kind": "categorical" if name == "channel" else "numeric",
                "rank": rank,
                "iv": iv,
                "iv_optimiser": iv,
                "status": "kept" if kept else "dropped",
                "reason": None if kept else "low_iv",
                "detail": "" if kept else f"IV {iv:.4f} < min_iv {MIN_IV}",
                "overridden": name == "months_employed",
                "single_feature_auc": 0.6,
            }
        )
    variables.append(
        {
            "variable": "applicant_ref",
            "kind": "numeric",
            "rank": len(variables) + 1,
            "iv": None,
            "iv_optimiser": None,
            "status": "dropped",
            "reason": "config_exclude",
            "detail": "params train.scorecard.exclude_features",
            "overridden": False,
            "single_feature_auc": None,
        }
    )
    kept = list(model.selected_features)
    months = next(f for f in model.features if f.name == "months_employed")
    return {
        "computed": True,
        "why": None,
        "rows": 4000,
        "settings": {
            "min_iv": MIN_IV,
            "max_features": None,
            "max_correlation": None,
            "overrides_file": "scorecard_bins.yaml",
            "source": "synthetic",
        },
        "variables": variables,
        "optimiser_bins": {},
        "correlation": {
            "variables": kept,
            "matrix": [[1.0 if a == b else 0.1 for b in kept] for a in kept],
            "max_abs": 0.64,
            "pairs_above": [{"a": kept[0], "b": kept[1], "r": 0.64}],
        },
        "vif": {name: 1.2 + 0.1 * i for i, name in enumerate(kept)},
        "stepwise": {
            "method": "backward elimination by AIC (logistic regression on WoE)",
            "kept": kept[:-1],
            "removed": [{"variable": kept[-1], "aic_before": 3010.5, "aic_after": 3009.25}],
            "agrees": False,
            "differs": [kept[-1]],
        },
        "overrides": [
            {
                "variable": "months_employed",
                "kind": "splits",
                "entry": {"splits": list(months.splits)},
                "reason": OVERRIDE_REASON,
                "iv_optimiser": 0.081,
                "iv_override": 0.079,
                "iv_cost": 0.002,
                "auc_optimiser": 0.7412,
                "auc_override": 0.7409,
                "auc_cost": 0.0003,
                "auc_on": "valid, scorecards fitted on train",
                "bins_optimiser": ["(-inf, 11.5)", "[11.5, 60.5)", "[60.5, inf)"],
                "bins_override": [b.label for b in months.bins],
            }
        ],
    }


MASTER_SCALE = MasterScale(boundaries=(0.02, 0.05, 0.1, 0.2), central_pd=(0.01, 0.035, 0.07, 0.14, 0.35))


# ----------------------------------------------------------------------------- the section


def test_section_shows_every_bin_its_points_the_override_and_the_selection(model: ScorecardModel) -> None:
    selection = make_selection(model)
    review = scorecard_review(model, selection, champion="xgboost")
    page = review.html()
    bins = scorecard_bins(model)
    for name, part in bins.groupby("variable", sort=False):
        block = page.split(f"<h4>{name}</h4>", 1)[1].split("<h4>", 1)[0]
        for row in part.itertuples():
            assert f"<td>{html.escape(row.bin)}</td>" in block, (name, row.bin)
            assert f"<td>{row.points:.2f}</td>" in block, (name, row.bin, row.points)
            assert f"<td>{row.woe:.4f}</td>" in block
        assert f'data-name="binning_{name}"' in block
    characteristics = scorecard_characteristics(model, selection)
    for row in characteristics.itertuples():
        assert f"<td>{row.min_points:.1f}</td><td>{row.max_points:.1f}</td>" in page
    assert characteristics.set_index("variable")["overridden"].to_dict() == {
        name: name == "months_employed" for name in model.selected_features
    }
    # The override, escaped, with its costs; the drop reasons with their details.
    assert html.escape(OVERRIDE_REASON) in page and "<CP-7>" not in page
    assert "0.0810 → 0.0790 (cost 0.0020)" in page and "0.7412 → 0.7409 (cost 0.0003)" in page
    dropped = [v for v in selection["variables"] if v["status"] == "dropped"]
    assert {v["variable"] for v in dropped} >= {"noise", "applicant_ref"}
    for v in dropped:
        assert DROP_REASONS[v["reason"]] in page and html.escape(v["detail"]) in page
    # VIF, the correlated pair and what stepwise would remove.
    kept = model.selected_features
    assert f"<td>{kept[0]}</td><td>{kept[1]}</td><td>0.640</td>" in page
    assert f"it would remove {kept[-1]}" in page and "3010.50" in page
    assert "backward elimination by AIC" in page
    assert len(review.plots) == len(model.features)


def test_section_says_plainly_what_is_missing(model: ScorecardModel) -> None:
    why = "the scorecard is not among train.candidates"
    none = scorecard_review(None, {"computed": False, "why": why}).html()
    assert "No scorecard in this run" in none and why in none and "<table" not in none
    assert "No scorecard in this run" in scorecard_review(None, None).html()
    # A scorecard without its selection evidence: its bins, and a line saying why the rest is absent.
    bare = scorecard_review(model, {"computed": False, "why": "selection skipped"}).html()
    assert "not computed for this run: selection skipped" in bare
    assert all(f"<h4>{name}</h4>" in bare for name in model.selected_features)
    assert "Stepwise" not in bare
    # No overrides and no correlated pair: said so.
    quiet = make_selection(model) | {"overrides": [], "correlation": {"max_abs": 0.2, "pairs_above": []}}
    page = scorecard_review(model, quiet).html()
    assert "No override" in page and "No pair of kept variables has |r| of 0.6 or more" in page


def minimal_report(review: ScorecardReview | None) -> ReviewReport:
    """A report with nothing but the scorecard: the other sections say they have nothing."""
    return ReviewReport(
        title="Scorecard only",
        model_version=None,
        champion={"champion": "scorecard"},
        train_summary={},
        validation_summary={},
        drift={},
        split_summary={},
        performance=[],
        comparisons=[],
        model_metrics={},
        curves=[],
        grade_tables={},
        calibration_report={},
        stability=pd.DataFrame(columns=["feature", "psi", "flag"]),
        scorecard=review,
    )


# Marks the scorecard section's tables and images that have a size on screen.
_VISIBLE_PROBE = """<script>
window.addEventListener('load', function () {
  var s = document.getElementById('scorecard'), seen = function (list) {
    var n = 0;
    for (var i = 0; i < list.length; i++) {
      var r = list[i].getBoundingClientRect();
      if (r.width > 50 && r.height > 20) n++;
    }
    return list.length + '/' + n;
  };
  document.documentElement.setAttribute('data-scorecard',
    seen(s.querySelectorAll('table')) + ' ' + seen(s.querySelectorAll('img')));
});
</script>"""


def test_section_renders_in_headless_chromium(model: ScorecardModel, tmp_path: Path) -> None:
    page = render_html(minimal_report(scorecard_review(model, make_selection(model), "scorecard")))
    assert parse(page).sections == list(SECTION_IDS) and "scorecard" in SECTION_IDS
    part = section_html(page, "scorecard")
    images = parse(part).images
    assert len(images) == len(model.features)
    assert_pngs_decode(images)
    n_tables = part.count("<table")
    shown, (total, decoded), errors, dom = browse(
        page.replace("</body>", _VISIBLE_PROBE + "</body>", 1), tmp_path
    )
    assert errors == []
    assert shown == list(SECTION_IDS)
    assert total == decoded == len(model.features)
    visible = re.search(r'data-scorecard="(\d+)/(\d+) (\d+)/(\d+)"', dom)
    assert visible, "the visibility probe did not run"
    assert visible.groups() == tuple(map(str, (n_tables, n_tables, total, total)))


# ----------------------------------------------------------------------------- the workbook


def _sheet_rows(sheet: Any, header_row: int = 1) -> list[dict[str, Any]]:
    rows = list(sheet.iter_rows(min_row=header_row, values_only=True))
    header = [str(h) for h in rows[0] if h is not None]
    return [dict(zip(header, r, strict=False)) for r in rows[1:] if any(v is not None for v in r)]


def _block(sheet: Any, title: str) -> list[dict[str, Any]]:
    """The table under ``title`` in column A of the Scale sheet (title, a note line, header, rows)."""
    cells = [c.value for c in sheet["A"]]
    start = cells.index(title) + 1  # 1-based row of the title
    rows = list(sheet.iter_rows(min_row=start + 2, values_only=True))
    header = [str(h) for h in rows[0] if h is not None]
    out = []
    for r in rows[1:]:
        if r[0] is None:
            break
        out.append(dict(zip(header, r, strict=False)))
    return out


def _bound(value: Any) -> float:
    if value == "-inf":
        return -math.inf
    if value == "inf":
        return math.inf
    assert isinstance(value, int | float), value
    return float(value)


def score_by_hand(bins: list[dict[str, Any]], X: pd.DataFrame) -> np.ndarray:
    """Each row's score from the Bins sheet alone, as the Read me says to do it."""
    by_variable: dict[str, list[dict[str, Any]]] = {}
    for row in bins:
        by_variable.setdefault(row["variable"], []).append(row)
    totals = np.zeros(len(X))
    for i, (_, application) in enumerate(X.iterrows()):
        for variable, rows in by_variable.items():
            value = application[variable]
            special = {r["special"]: r for r in rows if r["special"]}
            plain = [r for r in rows if not r["special"]]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                chosen = [special["Missing"]]
            elif rows[0]["kind"] == "numeric":
                chosen = [r for r in plain if _bound(r["lower"]) <= float(value) < _bound(r["upper"])]
            else:
                chosen = [r for r in plain if str(value) in str(r["levels"]).split("|")] or [
                    special["Unseen"]
                ]
            assert len(chosen) == 1, (variable, value, chosen)
            totals[i] += chosen[0]["points"]
    return totals


def applications(model: ScorecardModel) -> pd.DataFrame:
    """New applications, and ones on the edges: split points, missing values, an unseen level.

    A split point goes in as it is where the workbook's 16 significant digits hold it exactly
    (the integer feature's x.5), and rounded to 12 digits everywhere (as data are written).
    """
    X, _ = make_data(n=300, seed=11)
    edges = []
    for f in model.features:
        for s in f.splits:
            for value in {s, float(f"{s:.12g}")} if float(f"{s:.16g}") == s else {float(f"{s:.12g}")}:
                row = X.iloc[0].copy()
                row[f.name] = value
                edges.append(row)
    tail = X.iloc[:4].copy()
    tail.loc[tail.index[0], "ltv"] = np.nan
    tail.loc[tail.index[1], "channel"] = None
    tail.loc[tail.index[2], "channel"] = "call centre"  # a level training never saw
    tail.loc[tail.index[3], ["income", "months_employed"]] = np.nan
    return pd.concat([X, pd.DataFrame(edges), tail], ignore_index=True)


def load(data: bytes) -> Any:
    return openpyxl.load_workbook(io.BytesIO(data), data_only=True)


def test_workbook_scores_applications_by_hand_like_the_model(model: ScorecardModel) -> None:
    selection = make_selection(model)
    book = load(scorecard_workbook(model, selection, MASTER_SCALE, champion="xgboost"))
    assert book.sheetnames == [CHARACTERISTICS_SHEET, BINS_SHEET, SCALE_SHEET, SELECTION_SHEET, README_SHEET]
    bins = _sheet_rows(book[BINS_SHEET])
    X = applications(model)
    assert {"Missing", "Unseen"} <= {r["special"] for r in bins}
    # Every split point is exercised: the right-open convention is what is checked here.
    months = next(f for f in model.features if f.name == "months_employed")
    assert months.splits and all(s in set(X["months_employed"]) for s in months.splits)
    np.testing.assert_allclose(score_by_hand(bins, X), model.score(X), rtol=0, atol=1e-6)

    characteristics = _sheet_rows(book[CHARACTERISTICS_SHEET])
    expected = scorecard_characteristics(model, selection)
    assert [r["variable"] for r in characteristics] == model.selected_features
    for got, want in zip(characteristics, expected.itertuples(), strict=True):
        assert got["bins"] == want.bins and got["overridden"] == ("yes" if want.overridden else "no")
        assert got["min_points"] == pytest.approx(want.min_points, abs=1e-9)
        assert got["max_points"] == pytest.approx(want.max_points, abs=1e-9)
    months_row = next(r for r in characteristics if r["variable"] == "months_employed")
    assert months_row["override_reason"] == OVERRIDE_REASON

    selection_rows = _sheet_rows(book[SELECTION_SHEET])
    dropped = {r["variable"]: r["reason"] for r in selection_rows if r["status"] == "dropped"}
    assert dropped["noise"] == "low_iv" and dropped["applicant_ref"] == "config_exclude"


def test_workbook_scale_sheet_maps_scores_to_pd_and_grades(model: ScorecardModel) -> None:
    book = load(scorecard_workbook(model, make_selection(model), MASTER_SCALE, champion="xgboost"))
    sheet = book[SCALE_SHEET]
    scaling = {r["parameter"]: r["value"] for r in _sheet_rows(sheet, header_row=2)[:9]}
    assert scaling["pdo"] == model.settings.pdo and scaling["factor"] == pytest.approx(
        model.factor, rel=1e-15
    )
    assert scaling["offset"] == pytest.approx(model.offset, rel=1e-15)

    scores = _block(sheet, SCORE_PD_TITLE)
    values = np.array([r["score"] for r in scores], dtype=float)
    low, high = score_range(model)
    assert (
        np.all(np.diff(values) == 10)
        and values[0] <= low < values[0] + 10
        and values[-1] - 10 < high <= values[-1]
    )
    np.testing.assert_allclose([r["pd"] for r in scores], model.score_to_pd(values), rtol=1e-14)
    # Each score's grade: the master scale's grade of its PD, and the grade whose score bounds hold it.
    grades = _block(sheet, MASTER_SCALE_TITLE)
    assert [g["grade"] for g in grades] == MASTER_SCALE.grade_names
    for r in scores:
        assert r["grade"] == f"G{int(MASTER_SCALE.grade([r['pd']])[0])}"
        holding = [
            g["grade"] for g in grades if _bound(g["score_from"]) <= r["score"] < _bound(g["score_to"])
        ]
        assert holding == [r["grade"]], (r, holding)

    # Scorecard champion: its PD is calibrated before it is graded, and the score bounds go.
    calibrator = Calibrator(method="platt", pd_floor=0.001, pd_cap=1.0, slope=1.2, intercept=0.4)
    book = load(scorecard_workbook(model, None, MASTER_SCALE, calibrator=calibrator, champion="scorecard"))
    assert book.sheetnames == [CHARACTERISTICS_SHEET, BINS_SHEET, SCALE_SHEET, README_SHEET]
    scores = _block(book[SCALE_SHEET], SCORE_PD_TITLE)
    calibrated = calibrator.predict([r["pd"] for r in scores])
    np.testing.assert_allclose([r["calibrated_pd"] for r in scores], calibrated, rtol=1e-14)
    assert [r["grade"] for r in scores] == [f"G{g}" for g in MASTER_SCALE.grade(calibrated)]
    assert "score_from" not in _block(book[SCALE_SHEET], MASTER_SCALE_TITLE)[0]


def test_workbook_bytes_are_reproducible(model: ScorecardModel) -> None:
    selection = make_selection(model)
    first = scorecard_workbook(model, selection, MASTER_SCALE, champion="xgboost")
    time.sleep(1.1)  # xlsxwriter stamps the time of writing, to the second, unless it is fixed
    second = scorecard_workbook(model, selection, MASTER_SCALE, champion="xgboost")
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        core = archive.read("docProps/core.xml").decode("utf-8")
    assert WORKBOOK_CREATED.strftime("%Y-%m-%dT%H:%M:%SZ") in core
    # Other inputs, other bytes: the comparison above is not vacuous.
    assert scorecard_workbook(model, selection, MASTER_SCALE, champion="lightgbm") != first


def test_workbook_without_a_scorecard_says_why(model: ScorecardModel) -> None:
    book = load(scorecard_workbook(None, {"computed": False, "why": "no scorecard candidate"}, MASTER_SCALE))
    assert book.sheetnames == [README_SHEET]
    assert "no scorecard candidate" in str(book[README_SHEET]["A1"].value)
    # The selection evidence alone (a run whose scorecard is not trained, if the stage wrote it).
    book = load(scorecard_workbook(None, make_selection(model)))
    assert book.sheetnames == [SELECTION_SHEET, README_SHEET]


def test_bins_table_bounds_follow_the_split_points(model: ScorecardModel) -> None:
    bins = scorecard_bins(model)
    for f in model.features:
        part = bins[bins["variable"] == f.name]
        plain = part[part["special"] == ""]
        assert len(plain) == len(f.bins) and list(part["special"])[len(f.bins)] == "Missing"
        if f.kind == "numeric":
            assert list(plain["lower"]) == [-math.inf, *f.splits]
            assert list(plain["upper"]) == [*f.splits, math.inf]
            assert (part["levels"] == "").all()
        else:
            assert [tuple(s.split("|")) for s in plain["levels"]] == list(f.groups)
            assert list(part["special"])[-1] == "Unseen"
    assert len(bins) == len(model.table())
    np.testing.assert_array_equal(bins["points"], model.table()["points"])


# ----------------------------------------------------------------------------- the checks


def test_a_characteristic_kept_against_risk_is_flagged_on_every_page() -> None:
    """An analyst's keep holds a characteristic the sign rule would remove: the report says so in
    red at its top and in the characteristic's row, the workbook's check column says it, and
    ``scoring bins show``'s notes do too; a clean scorecard shows no alert."""
    from dataclasses import replace

    from scoring.models.scorecard_bins import BinOverride
    from scoring.models.scorecard_selection import selection_evidence, variable_bins
    from test_scorecard import suppressor_data

    X, y = suppressor_data()
    keep = {"b": BinOverride("b", "kept for the committee's comparison", keep=True)}
    held = fit_scorecard(X, y, ScorecardSettings(overrides=keep), 7)
    assert held.against_risk() == ["b"]
    evidence = selection_evidence(held, X, y, 7)
    assert evidence["checks"]["b"]["sign_ok"] is False and evidence["checks"]["a"]["failures"] == []
    page = render_html(minimal_report(scorecard_review(held, evidence, "scorecard")))
    alert = page[page.index('<div class="alert"') : page.index("</div>", page.index('<div class="alert"'))]
    assert "Scorecard checks failed" in alert and "b: coefficient +" in alert
    assert "against risk (kept by an analyst&#x27;s keep override)" in alert and "a: " not in alert
    assert page.index('<div class="alert"') < page.index('<section id="data">')  # at the top
    part = section_html(page, "scorecard")
    assert part.count('<span class="flag bad">') == 1 and part.count('<span class="flag ok">ok</span>') == 2
    sheet = load(scorecard_workbook(held, evidence))[CHARACTERISTICS_SHEET]
    checks = {row["variable"]: row["check"] for row in _sheet_rows(sheet)}
    assert checks["a"] == "ok" and checks["b"].startswith("coefficient +")
    notes = variable_bins(held, evidence, "b").notes
    assert any(n.startswith("check: FAILED: coefficient +") for n in notes)
    assert variable_bins(held, evidence, "a").notes[-1].startswith("check: ok")

    # the rule on, nothing kept: b is removed with its reason, and no alert
    ruled = fit_scorecard(X, y, ScorecardSettings(), 7)
    evidence = selection_evidence(ruled, X, y, 7)
    reasons = {v["variable"]: (v["reason"], v["detail"]) for v in evidence["variables"]}
    assert reasons["b"][0] == "wrong_sign" and "beside a (WoE r +0." in reasons["b"][1]
    page = render_html(minimal_report(scorecard_review(ruled, evidence, "scorecard")))
    assert '<div class="alert"' not in page
    assert "coefficient against risk (the sign rule)" in section_html(page, "scorecard")
    unruled = fit_scorecard(X, y, replace(ScorecardSettings(), consistent_signs=False), 7)
    assert '<div class="alert"' in render_html(minimal_report(scorecard_review(unruled, {}, "scorecard")))
