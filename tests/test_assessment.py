"""The applicant's assessment page (issue 19): `scoring assess` on the exported golden blend gives
pages whose figures are the served answers, in English and Chinese, and render in Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from typer.testing import CliRunner

import golden_support as golden
from scoring.cli import app
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.finance import repayment_schedule, schedule_summary
from scoring.export import export_model
from scoring.reporting.assessment import LABELS, assessment_pages

runner = CliRunner()

CHAMPION = "blend"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("assess") / "pd_model"
    export_model(
        golden.GOLDEN_DIR / CHAMPION, target, SYNTHETIC_SPEC, golden.applications(), golden.INFO,
        golden.golden_params(),
    )  # fmt: skip
    return target


def _field(page: str, name: str) -> str:
    found = re.search(rf'data-field="{name}">([^<]*)<', page)
    assert found, f"no {name} on the page"
    return found.group(1)


def _assess(exported: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["assess", "--model", str(exported), *args])
    return result.exit_code, result.output


def test_every_golden_page_shows_the_served_answer(exported: Path, tmp_path: Path) -> None:
    """One page per golden application, by the real command on the exported model: decision,
    PD, score, grade and limit as the pinned (served) answers give them."""
    code, output = _assess(
        exported, tmp_path, "--application", str(golden.APPLICATIONS), "--output", str(tmp_path / "a.html")
    )
    assert code == 0, output
    expected = pd.DataFrame(golden.read_expected(CHAMPION))
    assert "model digest" in output
    for row in expected.itertuples():
        page = (tmp_path / f"a_{row.application_id}.html").read_text(encoding="utf-8")
        assert f"{LABELS['en']['decision']}: {row.decision}" in page
        assert _field(page, "pd") == f"{100 * row.pd:.3f}%"
        assert _field(page, "score") == f"{row.score:.1f}"
        assert _field(page, "grade") == str(row.grade)
        if row.decision != "decline":
            assert _field(page, "suggested_limit") == f"{row.suggested_limit:,.2f}"
        assert f"({row.limit_constraint})" in page
        for i in range(1, 5):
            code_i = getattr(row, f"reason_code_{i}")
            if code_i:
                assert f"<li><b>{code_i}</b>" in page
        assert _field(page, "model_version") == golden.INFO["model_version"]
        assert re.fullmatch(r"[0-9a-f]{64}", _field(page, "model_digest"))


def test_the_page_holds_the_limits_constraints_and_both_repayment_schedules(exported: Path) -> None:
    from scoring.serving.registry import load_verified_scorer

    scorer, digest = load_verified_scorer(exported)
    applications = golden.applications()
    expected = pd.DataFrame(golden.read_expected(CHAMPION))
    approved = expected[expected["decision"] == "approve"].iloc[0]
    key = str(approved["application_id"])
    [record] = scorer.assess(applications[applications["application_id"] == key])
    page = assessment_pages(scorer, applications, digest, "en", [key])[key]
    application = applications[applications["application_id"] == key].iloc[0]
    # every bound of the limit, the binding one marked, the limit no larger than any bound
    limit = record["limit"]
    assert limit["binding_constraint"] == approved["limit_constraint"]
    bounds = [limit[b] for b in ("max_by_dti", "max_by_ltv", "max_by_grade_cap") if np.isfinite(limit[b])]
    assert approved["suggested_limit"] <= min(bounds) + 1e-6
    assert page.count('class="binding"') == 1
    # requested and suggested amounts, each under both methods, with their full schedules
    for amount in (float(application["loan_amount"]), float(approved["suggested_limit"])):
        for method in ("equal_installment", "equal_principal"):
            summary = schedule_summary(
                repayment_schedule(
                    amount, float(application["annual_rate"]), int(application["term_months"]), method
                )
            )
            assert f"<td>{summary['total_interest']:,.2f}</td>" in page
            assert f"<td>{summary['first_payment']:,.2f}</td>" in page
    assert page.count("<details>") == 4
    # the waterfall's bars add up from the expected log-odds to the model's raw log-odds
    contributions = record["contributions"]
    total = contributions["expected_log_odds"] + sum(g["value"] for g in contributions["groups"])
    assert total == pytest.approx(contributions["raw_log_odds"], abs=1e-6)
    raw_pd = scorer.model.predict_pd(applications[applications["application_id"] == key])[0]
    assert expit(contributions["raw_log_odds"]) == pytest.approx(raw_pd, rel=1e-6)
    assert _field(page, "payment_to_income") == f"{100 * record['features']['payment_to_income']:.2f}%"
    assert 'data-name="waterfall"' in page


def test_the_page_in_chinese_and_the_bad_requests(exported: Path, tmp_path: Path) -> None:
    applications = golden.applications()
    key = str(applications["application_id"].iloc[0])
    out = tmp_path / "zh.html"
    code, output = _assess(
        exported, tmp_path, "--application", str(golden.APPLICATIONS), "--id", key, "--lang", "zh",
        "--output", str(out),
    )  # fmt: skip
    assert code == 0, output
    page = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page and "信用评估报告" in page and "等额本息" in page
    assert LABELS["en"]["repayments"] not in page
    # one application as a JSON object gives the same page as its CSV row
    document = json.loads(applications.iloc[[0]].to_json(orient="records"))[0]
    (tmp_path / "app.json").write_text(json.dumps(document))
    code, _ = _assess(exported, tmp_path, "--application", str(tmp_path / "app.json"), "--lang", "zh",
                      "--output", str(tmp_path / "json.html"))  # fmt: skip
    assert code == 0 and _field((tmp_path / "json.html").read_text(encoding="utf-8"), "pd") == _field(
        page, "pd"
    )
    # an id not in the file, a language not offered, an impossible application
    code, output = _assess(exported, tmp_path, "--application", str(golden.APPLICATIONS), "--id", "NOPE",
                           "--output", str(tmp_path / "x.html"))  # fmt: skip
    assert code == 1 and "--id 'NOPE'" in output
    code, output = _assess(exported, tmp_path, "--application", str(golden.APPLICATIONS), "--lang", "fr",
                           "--output", str(tmp_path / "x.html"))  # fmt: skip
    assert code == 1 and "--lang 'fr'" in output
    (tmp_path / "bad.json").write_text(json.dumps({**document, "age": 150}))
    code, output = _assess(exported, tmp_path, "--application", str(tmp_path / "bad.json"),
                           "--output", str(tmp_path / "x.html"))  # fmt: skip
    assert code == 1 and "age" in output and not (tmp_path / "x.html").exists()


def test_the_page_renders_in_headless_chromium_in_both_languages(exported: Path, tmp_path: Path) -> None:
    from scoring.serving.registry import load_verified_scorer
    from test_report import render_in_chromium

    scorer, digest = load_verified_scorer(exported)
    key = str(golden.applications()["application_id"].iloc[0])
    for lang in ("en", "zh"):
        page = assessment_pages(scorer, golden.applications(), digest, lang, [key])[key]
        workdir = tmp_path / lang
        workdir.mkdir()
        dom = render_in_chromium(page, workdir)
        body = re.search(r'data-images="(\d+)/(\d+)"[^>]*data-sections="([^"]*)"', dom)
        assert body, dom[:500]
        assert body.group(1) == body.group(2) == "1"  # the waterfall decoded
        shown = body.group(3).split()
        assert shown[:5] == ["application", "result", "reasons", "limit", "repayments"]
        assert shown[-1] == "model"
        shutil.rmtree(workdir, ignore_errors=True)
