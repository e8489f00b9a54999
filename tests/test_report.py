"""The reviewer report: DeLong intervals, the page's structure, and the page in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy.stats import bootstrap
from sklearn.metrics import roc_auc_score

from scoring.core.contract import AUTO_LOAN_COLUMNS
from scoring.data.config import DriftConfig
from scoring.reporting.html import figure_png
from scoring.reporting.metrics import assess_performance, delong_ci, delong_covariance, delong_paired
from scoring.reporting.report import (
    SECTION_IDS,
    Explanations,
    ReviewReport,
    curve_images,
    data_scope,
    decision_summary,
    explanations_from,
    render_html,
    stability_table,
)

CHROMIUM = Path("/usr/bin/chromium")
AUTO_LOAN_COLUMN_NAMES = [c.name for c in AUTO_LOAN_COLUMNS]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- DeLong


def _placements(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components straight from the definition: the O(m n) kernel."""
    x, z = s[y == 1], s[y == 0]
    kernel = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
    return kernel.mean(axis=1), kernel.mean(axis=0)


def test_delong_matches_the_definition_with_ties() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(float)
    a = np.round(rng.normal(size=300) + y, 1)  # rounded: many ties
    b = np.round(rng.normal(size=300) + 0.5 * y + 0.4 * a, 1)
    aucs, cov = delong_covariance(y, np.vstack([a, b]))
    v10_a, v01_a = _placements(y, a)
    v10_b, v01_b = _placements(y, b)
    m, n = int(y.sum()), int((1 - y).sum())
    expected = np.cov(np.vstack([v10_a, v10_b])) / m + np.cov(np.vstack([v01_a, v01_b])) / n
    assert aucs == pytest.approx([roc_auc_score(y, a), roc_auc_score(y, b)], abs=1e-12)
    np.testing.assert_allclose(cov, expected, rtol=1e-10, atol=1e-15)


def test_delong_interval_agrees_with_a_bootstrap() -> None:
    rng = np.random.default_rng(11)
    y = (rng.random(2000) < 0.15).astype(float)
    s = rng.normal(size=2000) + 1.2 * y
    estimate = delong_ci(y, s, level=0.95)
    boot = bootstrap(
        (y, s),
        lambda yy, ss: roc_auc_score(yy, ss),
        paired=True,
        vectorized=False,
        n_resamples=400,
        method="percentile",
        random_state=5,
    )
    assert estimate.auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert estimate.se == pytest.approx(boot.standard_error, rel=0.15)
    assert estimate.low == pytest.approx(boot.confidence_interval.low, abs=0.01)
    assert estimate.high == pytest.approx(boot.confidence_interval.high, abs=0.01)
    assert estimate.gini == pytest.approx(2 * estimate.auc - 1)


def test_delong_edge_cases() -> None:
    y = np.array([0, 0, 1, 1], dtype=float)
    perfect = delong_ci(y, [0.1, 0.2, 0.8, 0.9])
    assert (perfect.auc, perfect.se, perfect.low, perfect.high) == (1.0, 0.0, 1.0, 1.0)
    same = delong_paired(y, [0.1, 0.7, 0.3, 0.9], [0.1, 0.7, 0.3, 0.9])
    assert (same.difference, same.p_value) == (0.0, 1.0)
    with pytest.raises(ValueError, match="both classes"):
        delong_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="differ in length"):
        delong_ci([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 or 1"):
        delong_ci([0, 2], [0.1, 0.2])


def test_paired_delong_detects_a_better_model() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(3000) < 0.2).astype(float)
    noise = rng.normal(size=3000)
    good, weak = noise + 1.5 * y, noise + 0.5 * y + rng.normal(size=3000)
    result = delong_paired(y, good, weak)
    assert result.difference == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak))
    assert result.low > 0 and result.p_value < 1e-6


# --------------------------------------------------------------------------- fixtures


def _png(kind: str = "line") -> bytes:
    fig, ax = plt.subplots(figsize=(2.4, 1.6))
    ax.plot([0, 1, 2], [2, 0, 1] if kind == "line" else [0, 1, 0])
    return figure_png(fig)


def explanation_files() -> tuple[dict[str, Any], dict[str, bytes]]:
    """A small stand-in for reports/explanations/ in the agreed layout."""
    summary = {
        "global_importance": [
            {"feature": "bureau_score", "mean_abs_contribution": 0.61},
            {"feature": "ltv", "mean_abs_contribution": 0.32},
            {"feature": "max_dpd_24m", "mean_abs_contribution": 0.2},
        ],
        "reason_frequencies": [
            {"code": "R01", "text": "Credit bureau score too low", "count": 40, "share": 0.8},
            {"code": "R07", "text": "Loan <large> against the car's value", "count": 12, "share": 0.24},
        ],
        "n_explained": 500,
        "method": "xgboost pred_contribs (TreeSHAP)",
        "additivity_max_error": 3.1e-7,
        # optional keys beyond the agreed five
        "baseline": "expected_value",
        "n_declined": 50,
        "declined_reason_counts": {"0": 2, "1": 3, "2": 5, "3": 10, "4": 30},
    }
    names = [
        "beeswarm.png",
        "dependence_bureau_score.png",
        "dependence_ltv.png",
        "waterfall_grade_1.png",
        "waterfall_grade_2.png",
        "waterfall_grade_10.png",
        "waterfall_decline_1.png",
    ]
    return summary, {name: _png() for name in names}


@pytest.fixture(scope="module")
def small_report() -> ReviewReport:
    rng = np.random.default_rng(7)
    outcomes, scores = {}, {"xgboost": {}, "scorecard": {}}
    for split, n in (("test", 600), ("oot", 500)):
        y = (rng.random(n) < 0.12).astype(float)
        outcomes[split] = y
        scores["xgboost"][split] = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.6 * y - 2.2)))
        scores["scorecard"][split] = 1 / (1 + np.exp(-(rng.normal(size=n) + 1.2 * y - 2.2)))
    performance, comparisons = assess_performance(outcomes, scores, "xgboost", {"test": 0.9})
    curves = curve_images(outcomes, scores, "xgboost")
    train = pd.DataFrame({"ltv": rng.normal(0.8, 0.1, 800), "channel": rng.choice(["a", "b"], 800)})
    oot = pd.DataFrame({"ltv": rng.normal(0.95, 0.1, 500), "channel": rng.choice(["a", "b"], 500)})
    grade_table = pd.DataFrame(
        {
            "grade": [1, 2],
            "name": ["G1", "G2"],
            "pd_low": [0.0, 0.05],
            "pd_high": [0.05, 1.0],
            "central_pd": [0.02, 0.2],
            "count": [400, 200],
            "share": [0.667, 0.333],
            "defaults": [8.0, 40.0],
            "default_rate": [0.02, 0.2],
            "mean_pd": [0.021, 0.19],
        }
    )
    grade_tests = {
        "grades": [
            {
                "grade": 1,
                "jeffreys_p": 0.5,
                "jeffreys_flag": "green",
                "binomial_p": 0.5,
                "binomial_flag": "green",
            },
            {
                "grade": 2,
                "jeffreys_p": 0.02,
                "jeffreys_flag": "yellow",
                "binomial_p": 0.03,
                "binomial_flag": "red",
            },
        ],
        "hosmer_lemeshow": {"statistic": 3.2, "df": 1, "p_value": 0.07, "flag": "green"},
        "herfindahl": {"index": 0.55, "effective_grades": 1.8, "flag": "red"},
        "portfolio": {"pd": 0.08, "default_rate": 0.08, "jeffreys_p": 0.5, "jeffreys_flag": "green"},
        "default_rates_increasing": True,
    }
    portfolio = {
        "n": 600,
        "approval_rate": 0.7,
        "refer_rate": 0.1,
        "decline_rate": 0.2,
        "bad_rate_approved": 0.03,
        "exposure": {"approved": 1.2e7},
        "expected_loss": {"approved": 2.5e5},
        "by_grade": [{"grade": 1, "count": 400, "approved": 390, "referred": 0, "declined": 10}],
        "reason_counts": {"KO_INCOME_PROOF": 30, "GRADE_DECLINE": 12},
    }
    summary, images = explanation_files()
    return ReviewReport(
        title="Reviewer report <test>",
        model_version="0123abcd4567",
        champion={
            "champion": "xgboost",
            "reason": "gains 0.007 AUC",
            "selection": "cv",
            "auc": {"xgboost": 0.86, "scorecard": 0.85},
            "valid_auc": {"xgboost": 0.87, "scorecard": 0.84},
        },
        train_summary={"xgboost": {"n_trees": 120, "valid": {"auc": 0.87}}},
        validation_summary={
            "n_input": 1200,
            "n_passed": 1190,
            "n_quarantined": 10,
            "n_expectations": 90,
            "quarantine_by_reason": {"age_out_of_range": 10},
            "dropped_as_leaky": [],
        },
        drift={
            "available": True,
            "recent_rows": 200,
            "reference_rows": 1000,
            "recent_from": "2022-07",
            "max_psi": 0.2,
            "n_moderate": 1,
            "n_significant": 0,
            "columns": {"channel": {"psi": 0.2, "flag": "moderate"}, "age": {"psi": 0.01, "flag": "stable"}},
        },
        split_summary={
            "oot_from_month": "2022-07",
            "parts": {
                "train": {
                    "n": 800,
                    "default_rate": 0.12,
                    "first_date": "2019-01-01",
                    "last_date": "2022-06-30",
                },
                "unlabelled": {"n": 100},
            },
        },
        performance=performance,
        comparisons=comparisons,
        model_metrics={
            "xgboost": {"test": {"n": 600, "auc": 0.8}},
            "scorecard": {"test": {"n": 600, "auc": 0.7}},
        },
        curves=curves,
        grade_tables={"test": grade_table},
        calibration_report={
            "calibrator": {"method": "isotonic", "selection": "auto", "pd_floor": 0.0003},
            "master_scale": {"central_pd": [0.02, 0.2]},
            "test": {"tests": grade_tests, "portfolio": portfolio},
            "swap_set": {"approval_rate": 0.7, "only_a": {"count": 5, "bad_rate": 0.2}},
        },
        stability=stability_table(train, oot, DriftConfig(), score=None),
        explanations=explanations_from(summary, images),
        decisions=decision_summary(
            pd.DataFrame(
                {
                    "split": ["unlabelled", "test", "test", "test"],
                    "pd": [0.2, 0.01, 0.05, 0.5],
                    "decision": ["decline", "approve", "refer", "decline"],
                    "suggested_limit": [0.0, 9000.0, 5000.0, 0.0],
                }
            )
        ),
        notes=["a note"],
    )


class _Page(HTMLParser):
    """Collects section ids, image sources and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        if tag == "img":
            self.images.append(values.get("src") or "")
        for name in ("src", "href", "action", "poster", "data", "srcset"):
            if values.get(name):
                self.urls.append(values[name] or "")


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


# --------------------------------------------------------------------------- the page


def test_report_has_every_section_once_in_order(small_report: ReviewReport) -> None:
    page = render_html(small_report)
    assert _parse(page).sections == list(SECTION_IDS)
    assert len(SECTION_IDS) == 16
    for text in (
        "Credit bureau score too low",
        "KO_INCOME_PROOF",
        "Hosmer-Lemeshow",
        "Paired DeLong",
        "As the exported model scores them",
        "Reasons per declined applicant",
        "the baseline 'expected_value'",
        "AUC (cv)",
    ):
        assert text in page


def test_report_says_what_the_models_and_the_calibrator_were_fitted_on(small_report: ReviewReport) -> None:
    from dataclasses import replace

    # Models refitted on train+valid: their train and valid figures are in-sample, and the
    # calibrator was fitted out of fold.
    refitted = replace(
        small_report,
        champion={**small_report.champion, "fit_splits": ["train", "valid"]},
        model_metrics={
            "xgboost": {
                "train": {"n": 1000, "auc": 0.9},
                "valid": {"n": 200, "auc": 0.88},
                "test": {"n": 600, "auc": 0.8},
            }
        },
        calibration_report={
            **small_report.calibration_report,
            "fitted_on": {"rows": 1200, "by_split": {"train": 1000, "valid": 200}, "source": "out_of_fold"},
        },
    )
    page = render_html(refitted)
    assert "train (fitted on: in-sample)" in page and "validation (fitted on: in-sample)" in page
    assert "test (fitted on" not in page
    assert "fitted on 1,200 out-of-fold predictions (train 1,000, validation 200)" in page
    # Models fitted on train only: only train is in-sample, calibration on the validation split.
    train_only = replace(
        refitted,
        champion={**small_report.champion, "fit_splits": ["train"]},
        calibration_report={
            **small_report.calibration_report,
            "fitted_on": {"rows": 200, "by_split": {"valid": 200}, "source": "valid"},
        },
    )
    page = render_html(train_only)
    assert "train (fitted on: in-sample)" in page and "validation (fitted on" not in page
    assert "fitted on 200 predictions on the validation split (validation 200)" in page


def test_report_is_self_contained(small_report: ReviewReport) -> None:
    page = render_html(small_report)
    parsed = _parse(page)
    assert not {"script", "link", "iframe", "object", "embed"} & set(parsed.tags)
    assert "url(" not in page and "@import" not in page
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(?i)(https?:|ftp:|file:|//[a-z0-9])", text)
    # Internal links only: the table of contents.
    assert all(url.startswith(("#", "data:image/png;base64,")) for url in parsed.urls)
    # 3 curves + importance + beeswarm + 2 dependence + 3 grade waterfalls + 1 decline
    assert len(parsed.images) == 11
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)


def test_report_escapes_text(small_report: ReviewReport) -> None:
    page = render_html(small_report)
    assert "Reviewer report &lt;test&gt;" in page
    assert "Loan &lt;large&gt; against the car&#x27;s value" in page
    assert "<large>" not in page


def test_report_without_explanations_still_shows_every_section(small_report: ReviewReport) -> None:
    from dataclasses import replace

    page = render_html(replace(small_report, explanations=None, curves=[]))
    assert _parse(page).sections == list(SECTION_IDS)
    assert page.count("not available for this run") == 3


def _section(page: str, sid: str) -> str:
    return page.split(f'<section id="{sid}">', 1)[1].split("</section>", 1)[0]


def _door(auc: float, bias_rejected: float, bad_rate_at_60: float) -> dict[str, Any]:
    return {
        "applicants": 1000,
        "booked": 600,
        "declined": 400,
        "auc": auc,
        "auc_accepted": auc - 0.05,
        "auc_rejected": auc - 0.1,
        "brier": 0.06,
        "pd_bias": bias_rejected / 2,
        "pd_bias_accepted": 0.001,
        "pd_bias_rejected": bias_rejected,
        "at_acceptance_rate": [
            {"acceptance_rate": 0.6, "bad_rate": 0.03, "expected_bad_rate": bad_rate_at_60, "volume": 5e6}
        ],
    }


def test_report_shows_the_reject_inference_method_against_accepts_only(small_report: ReviewReport) -> None:
    from dataclasses import replace

    off = _section(render_html(small_report), "reject-inference")
    assert "Reject inference is off" in off and "<table" not in off
    door = {"method": "fuzzy", **_door(0.87, -0.004, 0.031), "accepts_only": _door(0.85, -0.02, 0.035)}
    door["accepts_only"]["champion"] = "scorecard"
    champion = {
        **small_report.champion,
        "reject_inference": {
            "method": "fuzzy",
            "training_population": "booked loans of train plus declined applications",
            "training_rows": 1800,
            "accepts": 1000,
            "rejects_available": 400,
        },
    }
    section = _section(
        render_html(replace(small_report, through_the_door=door, champion=champion)), "reject-inference"
    )
    assert "Method <b>fuzzy</b>" in section and "1,800 training rows" in section
    assert "600 booked loans and 400 declined applications" in section
    assert "accepts-only" in section and "its champion: scorecard" in section
    # the AUC row: champion, accepts-only and the difference; the book's true bad rate at 60%
    assert "<td>AUC, every applicant</td><td>0.8700</td><td>0.8500</td><td>0.0200</td>" in section
    assert "<td>PD bias, declined applicants</td><td>-0.0040</td><td>-0.0200</td><td>0.0160</td>" in section
    assert "<td>60%</td><td>3.00%</td><td>3.10%</td>" in section and "<td>-0.40%</td>" in section
    # accepts-only itself: the champion's figures, no comparison columns
    alone = {"method": "accepts_only", **_door(0.85, -0.02, 0.035)}
    section = _section(render_html(replace(small_report, through_the_door=alone)), "reject-inference")
    assert "Method <b>accepts_only</b>" in section and "difference" not in section


def test_report_shows_the_whatif_its_cutoff_curve_and_the_grades_priced_below_cost(
    small_report: ReviewReport,
) -> None:
    from dataclasses import replace

    from scoring.reporting.html import Image

    assert "No what-if for this run" in _section(render_html(small_report), "whatif")
    book = {"approval_rate": 0.75, "bad_rate_approved": 0.03, "expected_bad_rate_approved": 0.031,
            "booked_volume": 1e9, "interest_income": 8e7, "expected_loss": 1.6e7, "funding_cost": 3.6e7,
            "operating_cost": 1.2e7, "expected_profit": 2e7}  # fmt: skip
    pricing = [
        {"grade": g, "loans": 100, "rate": 0.07, "expected_loss_rate": el, "required_rate": 0.052 + el,
         "margin": 0.018 - el, "covered": el < 0.018}
        for g, el in ((1, 0.002), (6, 0.05))
    ]  # fmt: skip
    whatif = {
        "replayed": True,
        "splits": ["test", "oot"],
        "scenario": {"rate_shift": 0.02, "max_ltv_shift": 0.0},
        "current": book,
        "changed": {**book, "approval_rate": 0.74, "expected_profit": 4e7},
        "costs": {"lgd": 0.45, "funding_cost": 0.03, "operating_cost": 0.01, "capital_charge": 0.012},
        "pricing": {"current": pricing},
    }
    curve = Image("cutoff_curve", "Approval cut-off grade", _png())
    page = render_html(replace(small_report, whatif=whatif, whatif_curve=curve))
    section = _section(page, "whatif")
    assert "test and out-of-time applications" in section and "rate_shift 0.02" in section
    assert "<td>approval rate</td><td>75.00%</td><td>74.00%</td><td>-1.00%</td>" in section
    assert "<td>expected profit</td><td>20,000,000</td><td>40,000,000</td><td>20,000,000</td>" in section
    assert 'data-name="cutoff_curve"' in section
    assert "Priced below cost: grade 6." in section and '<span class="flag bad">no</span>' in section
    # the current params alone: no scenario columns; a dataset without loan terms: why not
    alone = _section(render_html(replace(small_report, whatif={**whatif, "scenario": {}})), "whatif")
    assert "<th>scenario</th>" not in alone and "<td>75.00%</td></tr>" in alone
    skipped = {"replayed": False, "why": "the dataset has no loan_amount"}
    assert "Not replayed: the dataset has no loan_amount" in _section(
        render_html(replace(small_report, whatif=skipped)), "whatif"
    )


def test_report_shows_the_fair_lending_screening(small_report: ReviewReport) -> None:
    from dataclasses import replace

    assert "No fair-lending screening" in _section(render_html(small_report), "fairness")
    group = {"n": 400, "approval_rate": 0.8, "air": 1.0, "small": False, "flagged": False,
             "true_positive_rate": 0.85, "false_positive_rate": 0.4}  # fmt: skip
    fairness = {
        "air_threshold": 0.8,
        "min_group_size": 30,
        "not_screened": {"region": "no column region"},
        "flagged": ["test: age_band 65-119 (AIR 0.17)"],
        "splits": {
            "test": {
                "variables": {
                    "age_band": {
                        "reference_group": "50-64",
                        "equalized_odds_difference": 0.12,
                        "groups": {
                            "50-64": group,
                            "65-119": {
                                **group,
                                "n": 60,
                                "approval_rate": 0.136,
                                "air": 0.17,
                                "flagged": True,
                            },
                            "<18": {**group, "n": 3, "air": 0.5, "small": True, "true_positive_rate": None},
                        },
                    }
                }
            }
        },
        "reason_codes": {
            "ok": True,
            "not_scored": [],
            "protected": [{"reason": "age_profile", "columns": ["age"]}],
        },
    }
    section = _section(render_html(replace(small_report, fairness=fairness)), "fairness")
    assert "1 group below 0.80: test: age_band 65-119 (AIR 0.17)." in section
    assert "region not screened: no column region" in section
    assert "<h3>age_band on test</h3>" in section and "equalized-odds difference 0.120" in section
    assert (
        '<td>65-119</td><td>60</td><td>13.60%</td><td>0.170</td><td><span class="flag bad">below</span>'
        in section
    )
    assert (
        '<td>&lt;18</td><td>3</td><td>80.00%</td><td>0.500</td><td><span class="flag na">small</span>'
        "</td><td>n/a</td>" in section
    )
    assert "every reason names a factor the model scores" in section and "age_profile (age)" in section


def test_report_lists_what_the_dataset_switched_off(small_report: ReviewReport) -> None:
    from dataclasses import replace

    from scoring.core.contract import DatasetSpec
    from scoring.decision.policy import PolicySettings
    from scoring.decision.risk import RuleScope

    spec = DatasetSpec(id_column="row_id", target_column="BAD", source="hmeq.csv", generated_id=True,
                       roles={"age": "AGE"})  # fmt: skip
    features = {"unused_columns": ["note"], "derived_not_computed": {"loan_to_value": ["loan_amount"]}}
    calibration = {"rule_scope": RuleScope.for_columns(["age"], PolicySettings()).to_dict()}
    reason_map = {"source": "generated", "generated": ["DEBTINC"], "left_out": ["credit_bureau"]}
    explained = {"reason_map": {**reason_map, "file": "reports/explanations/reason_map.yaml"}}
    scope = data_scope(spec, features, calibration, explained)
    section = _section(render_html(replace(small_report, scope=scope)), "scope")
    for text in (
        "does not follow the auto-loan data contract",
        "rows numbered in file order",
        "<td>age</td><td>AGE</td>",
        "<td>knock-out rule</td><td>KO_INCOME_MIN</td><td>monthly_income</td>",
        "<td>limit constraint</td><td>dti</td>",
        "<td>derived feature</td><td>loan_to_value</td><td>loan_amount</td>",
        "no limit is suggested",
        "generated for 1 features (DEBTINC)",
        "reason_map.yaml",
        "left out for absent features: credit_bureau",
        "not model inputs: note",
        "In force: KO_DATA_MISSING, KO_AGE_MIN, KO_AGE_MAX, grade_cap",
    ):
        assert text in section, text
    # the contract's own data: nothing switched off, and the page says so
    full = RuleScope.for_columns(AUTO_LOAN_COLUMN_NAMES, PolicySettings()).to_dict()
    contract = data_scope(
        DatasetSpec(id_column="application_id", target_column="default_12m", follows_auto_loan_contract=True),
        {"derived_not_computed": {}},
        {"rule_scope": full},
        {"reason_map": {"source": "params"}},
    )
    section = _section(render_html(replace(small_report, scope=contract)), "scope")
    assert "Nothing: every derived feature, knock-out rule and limit constraint is in force." in section
    assert "follows the auto-loan data contract" in section and "switched off" not in section
    assert "Scoring the splits" not in section  # no account given, none shown


def test_report_accounts_for_every_row_scored_rejected_and_flagged(small_report: ReviewReport) -> None:
    from dataclasses import replace

    from scoring.core.contract import DatasetSpec
    from scoring.serving.scorer import scoring_counts

    predictions = pd.DataFrame(
        {
            "split": ["train", "test", "test"],
            "input_flags": ["", "LOAN:out_of_range", "LOAN:null_unseen;X:not_whole"],
        }
    )
    rejected = pd.DataFrame(
        {"split": ["test"], "row": [7], "application_id": ["R00000008"],
         "reject_reasons": ["DEBTINC: got 'n/a', expected a number or null"]}
    )  # fmt: skip
    scoring = scoring_counts(predictions, rejected)
    assert (scoring["n_input"], scoring["n_scored"], scoring["n_rejected"], scoring["n_flagged"]) == (
        4,
        3,
        1,
        2,
    )
    assert scoring["flags"] == {"LOAN:null_unseen": 1, "LOAN:out_of_range": 1, "X:not_whole": 1}
    spec = DatasetSpec(id_column="row_id", target_column="BAD", source="hmeq.csv")
    scope = data_scope(spec, {}, {}, {}, scoring)
    section = _section(render_html(replace(small_report, scope=scope)), "scope")
    for text in (
        "Rows 4 = scored 3 + rejected 1",
        "flagged in <code>input_flags</code>): 2.",
        "<td>LOAN</td><td>out_of_range</td><td>1</td>",
        "<td>X</td><td>not_whole</td><td>1</td>",
        "<td>test</td><td>7</td><td>R00000008</td>"
        "<td>DEBTINC: got &#x27;n/a&#x27;, expected a number or null</td>",
    ):
        assert text in section, text


def test_explanations_contract_is_checked() -> None:
    summary, images = explanation_files()
    explained = explanations_from(summary, images)
    assert isinstance(explained, Explanations)
    assert [i.name for i in explained.waterfall_grade] == [
        "waterfall_grade_1",
        "waterfall_grade_2",
        "waterfall_grade_10",
    ]
    assert [i.name for i in explained.dependence] == ["dependence_bureau_score", "dependence_ltv"]
    del summary["additivity_max_error"]
    with pytest.raises(ValueError, match=r"lacks keys \['additivity_max_error'\]"):
        explanations_from(summary, images)
    summary, images = explanation_files()
    with pytest.raises(ValueError, match="not a PNG"):
        explanations_from(summary, {**images, "beeswarm.png": b"GIF89a"})


def test_decision_summary_per_split() -> None:
    scored = pd.DataFrame(
        {
            "split": ["oot", "test", "test", "test", "test"],
            "pd": [0.3, 0.01, 0.02, 0.2, 0.6],
            "decision": ["decline", "approve", "approve", "refer", "decline"],
            "suggested_limit": [0.0, 10_000.0, 20_000.0, 4_000.0, 0.0],
        }
    )
    table = decision_summary(scored)
    assert list(table["split"]) == ["test", "oot"]
    test = table.iloc[0]
    assert (test["n"], test["approve"], test["refer"], test["decline"]) == (4, 0.5, 0.25, 0.25)
    assert test["median_limit"] == 10_000.0 and test["mean_pd"] == pytest.approx(0.2075)
    assert decision_summary(scored.drop(columns="decision")).empty
    with pytest.raises(ValueError, match=r"holds \['accept'\]"):
        decision_summary(scored.assign(decision="accept"))


def test_stability_table_flags_the_shifted_feature() -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {"steady": rng.normal(size=4000), "moved": rng.normal(size=4000), "pd": rng.random(4000)}
    )
    oot = pd.DataFrame(
        {"steady": rng.normal(size=3000), "moved": rng.normal(1.0, 1.0, 3000), "pd": rng.random(3000)}
    )
    table = stability_table(train, oot, DriftConfig(), score="pd")
    assert list(table["feature"]) == ["pd", "moved", "steady"]
    flags = dict(zip(table["feature"], table["flag"], strict=True))
    assert flags["moved"] == "significant" and flags["steady"] == "stable"
    with pytest.raises(ValueError, match=r"lacks columns \['moved'\]"):
        stability_table(train, oot.drop(columns="moved"), DriftConfig())


# --------------------------------------------------------------------------- headless Chromium

# Marks every decoded image and every visible section, so --dump-dom shows what rendered.
_PROBE = """<script>
window.addEventListener('load', function () {
  var ok = 0, imgs = document.images;
  for (var i = 0; i < imgs.length; i++) {
    if (imgs[i].complete && imgs[i].naturalWidth > 0) { imgs[i].setAttribute('data-decoded', '1'); ok++; }
  }
  var shown = [];
  document.querySelectorAll('section').forEach(function (s) {
    if (s.getBoundingClientRect().height > 40 && s.querySelector('h2').innerText.length) shown.push(s.id);
  });
  document.body.setAttribute('data-images', imgs.length + '/' + ok);
  document.body.setAttribute('data-sections', shown.join(' '));
});
</script>"""


def render_in_chromium(page: str, workdir: Path) -> str:
    """The DOM after Chromium loaded ``page`` from disk, offline, with the probe script run."""
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: the browser test needs Debian's chromium package "
        "(`make browser` installs it)"
    )
    # Let the probe (and only inline script) run; the report's image policy (data: only) stays.
    probed = page.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    probed = probed.replace("</body>", _PROBE + "</body>", 1)
    assert _PROBE in probed and "script-src 'unsafe-inline'" in probed
    target = workdir / "review.html"
    target.write_text(probed, encoding="utf-8")
    profile = workdir / "profile"
    proc = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--window-size=1280,2000",
            "--dump-dom",
            target.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-2000:]}"
    return proc.stdout


def _check_rendered(dom: str, n_images: int) -> None:
    body = re.search(r'<body[^>]*data-images="(\d+)/(\d+)"[^>]*data-sections="([^"]*)"', dom)
    assert body, f"the probe did not run; DOM starts {dom[:500]!r}"
    total, decoded, sections = int(body.group(1)), int(body.group(2)), body.group(3).split()
    assert (total, decoded) == (n_images, n_images), (
        f"{decoded} of {total} images decoded, expected {n_images}"
    )
    assert sections == list(SECTION_IDS)


def test_report_renders_in_headless_chromium(small_report: ReviewReport, tmp_path: Path) -> None:
    page = render_html(small_report)
    dom = render_in_chromium(page, tmp_path)
    _check_rendered(dom, n_images=len(_parse(page).images))


def test_browser_test_catches_a_broken_image(small_report: ReviewReport, tmp_path: Path) -> None:
    # The check above can fail: an image that does not decode is counted as such.
    page = render_html(small_report)
    broken = page.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1)
    dom = render_in_chromium(broken, tmp_path)
    with pytest.raises(AssertionError, match="images decoded"):
        _check_rendered(dom, n_images=len(_parse(page).images))


@pytest.mark.slow
def test_pipeline_report_renders_and_is_logged(pipeline: Path, tmp_path: Path) -> None:
    """The real pipeline's report: every section and plot shows in Chromium; the run holds it."""
    page = (pipeline / "reports" / "review.html").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert parsed.sections == list(SECTION_IDS)
    assert all(src.startswith("data:image/png;base64,") for src in parsed.images)
    explained = sorted(p.name for p in (pipeline / "reports" / "explanations").glob("*.png"))
    scorecard = pipeline / "models" / "candidates" / "scorecard" / "scorecard.json"
    binned = json.loads(scorecard.read_text())["selected_features"] if scorecard.is_file() else []
    # curves (3) + global importance + the cut-off curve + every explanation plot + a binning
    # plot per scorecard variable
    assert len(parsed.images) == 5 + len(explained) + len(binned)
    assert "Explanations are not available" not in page
    _check_rendered(render_in_chromium(page, tmp_path), n_images=len(parsed.images))

    from mlflow.tracking import MlflowClient

    run_id = json.loads((pipeline / "models" / "run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(run_id, "report")] == ["report/review.html"]
