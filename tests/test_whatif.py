"""Policy and pricing what-if (issue 19): the books under the current params and a change."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_support import stage_env
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import PolicySettings
from scoring.decision.whatif import (
    WhatIfConfig,
    WhatIfScenario,
    book_figures,
    book_rows,
    changes,
    cutoff_curve,
    first_year,
    pricing_check,
    scenario_settings,
    shifted_applications,
)


def test_first_year_interest_is_each_months_opening_balance_times_the_monthly_rate():
    # equal principal, 1,200 over 12 months at 12%: balances 1,200, 1,100, ..., 100
    interest, balance = first_year([1200.0], [0.12], [12], [True])
    assert interest[0] == pytest.approx(0.01 * sum(range(100, 1300, 100)))
    assert balance[0] == pytest.approx(650.0)
    # an annuity: the year's interest is the payments less the principal repaid
    interest, _ = first_year([10_000.0], [0.06], [36], [False])
    r = 0.005
    payment = 10_000 * r / (1 - (1 + r) ** -36)
    repaid = 10_000 - (10_000 * (1 + r) ** 12 - payment * ((1 + r) ** 12 - 1) / r)
    assert interest[0] == pytest.approx(12 * payment - repaid)
    # a 6-month loan pays interest for 6 months only; no rate, no interest
    short, _ = first_year([600.0], [0.12], [6], [True])
    assert short[0] == pytest.approx(0.01 * (600 + 500 + 400 + 300 + 200 + 100))
    assert first_year([600.0], [0.0], [6], [False])[0][0] == 0.0


def test_a_scenario_moves_every_cap_and_cut_off_it_names():
    policy, limits = PolicySettings(), LimitSettings()
    new_policy, new_limits = scenario_settings(
        WhatIfScenario(max_ltv_shift=-0.1, dti_cap_shift=0.05, approve_max_grade=4), policy, limits
    )
    assert new_policy.knock_outs.max_ltv.used == pytest.approx(policy.knock_outs.max_ltv.used - 0.1)
    assert new_policy.knock_outs.max_ltv.private_new_energy == pytest.approx(0.75)
    assert new_limits.ltv_cap == pytest.approx([c - 0.1 for c in limits.ltv_cap])
    assert new_limits.dti_cap == pytest.approx([c + 0.05 for c in limits.dti_cap])
    assert new_policy.decisions.approve_max_grade == 4
    assert new_policy.decisions.refer_max_grade == policy.decisions.refer_max_grade
    # a cut-off above the refer grade moves the refer grade with it; no cap goes to 0 or below
    moved, raised = scenario_settings(WhatIfScenario(approve_max_grade=9, max_ltv_shift=0.5), policy, limits)
    assert moved.decisions.refer_max_grade == 9 and set(raised.ltv_cap) == {1.0}
    with pytest.raises(
        ValueError,
        match=r"max_ltv_shift -0.7: takes the market cap commercial_conventional \(0.7 at its lowest\)",
    ):
        scenario_settings(WhatIfScenario(max_ltv_shift=-0.7), policy, limits)
    assert scenario_settings(WhatIfScenario(), policy, limits) == (policy, limits)
    with pytest.raises(ValueError, match="rate_shft"):
        WhatIfScenario.model_validate({"rate_shft": 0.02})


def _book() -> tuple[pd.DataFrame, pd.DataFrame]:
    applications = pd.DataFrame(
        {
            "loan_amount": [100_000.0, 50_000.0, 80_000.0, 60_000.0],
            "annual_rate": [0.06, 0.08, 0.10, 0.07],
            "term_months": [36, 24, 36, 12],
            "repayment_method": [
                "equal_installment",
                "equal_principal",
                "equal_installment",
                "equal_installment",
            ],
        }
    )
    scored = pd.DataFrame(
        {
            "pd": [0.01, 0.05, 0.2, 0.03],
            "grade": [1, 3, 8, 2],
            "decision": ["approve", "approve", "decline", "approve"],
            "suggested_limit": [90_000.0, 60_000.0, 0.0, np.nan],
        }
    )
    return applications, scored


def test_the_book_books_the_smaller_of_the_request_and_the_limit_and_prices_the_first_year():
    applications, scored = _book()
    limits, config = LimitSettings(), WhatIfConfig()
    rows = book_rows(applications, scored, limits, config)
    # the limit caps the first; the request the second; no limit: the request; declined: nothing
    assert rows["booked"].tolist() == [90_000.0, 50_000.0, 0.0, 60_000.0]
    assert rows["expected_loss"].iloc[0] == pytest.approx(0.01 * limits.lgd * 90_000)
    assert (rows.loc[2, ["interest", "profit", "average_balance"]] == 0).all()
    expected = rows["interest"] - rows["expected_loss"] - rows["funding_cost"] - rows["operating_cost"]
    assert rows["profit"].to_numpy() == pytest.approx(expected.to_numpy())
    assert rows["funding_cost"].iloc[1] == pytest.approx(
        limits.funding_cost * rows["average_balance"].iloc[1]
    )
    figures = book_figures(rows, [0.0, 1.0, 1.0, np.nan])
    overall = figures["overall"]
    assert overall["approval_rate"] == 0.75 and overall["booked_volume"] == 200_000.0
    # the bad rate reads the approved rows with an outcome only (the declined bad is not in it)
    assert overall["bad_rate_approved"] == 0.5
    assert overall["expected_bad_rate_approved"] == pytest.approx(0.03)
    assert [g["grade"] for g in figures["by_grade"]] == [1, 2, 3, 8]
    assert figures["by_grade"][3]["approved"] == 0 and figures["by_grade"][3]["bad_rate_approved"] is None
    other = book_figures(rows.assign(approved=[True, False, False, True]), [0.0, 1.0, 1.0, np.nan])["overall"]
    assert changes(overall, other)["approval_rate"] == pytest.approx(-0.25)
    assert changes(overall, other)["bad_rate_approved"] == pytest.approx(-0.5)


def test_a_rate_shift_raises_every_rate_and_never_below_zero():
    applications, _ = _book()
    shifted = shifted_applications(applications, WhatIfScenario(rate_shift=-0.07))
    assert shifted["annual_rate"].tolist() == pytest.approx([0.0, 0.01, 0.03, 0.0])
    assert shifted_applications(applications, WhatIfScenario()) is applications
    with pytest.raises(ValueError, match="no annual_rate"):
        shifted_applications(applications.drop(columns="annual_rate"), WhatIfScenario(rate_shift=0.01))


def test_the_pricing_check_names_a_grade_whose_rate_does_not_cover_its_costs():
    applications, scored = _book()
    limits, config = LimitSettings(), WhatIfConfig()
    scored = scored.assign(pd=[0.01, 0.2, 0.2, 0.03])  # grade 3: 20% PD x 45% LGD = 9% > its 8% rate
    checks = {
        c["grade"]: c for c in pricing_check(book_rows(applications, scored, limits, config), limits, config)
    }
    assert set(checks) == {1, 2, 3}  # grade 8 books nothing
    assert checks[3]["required_rate"] == pytest.approx(0.2 * 0.45 + 0.03 + 0.01 + 0.012)
    assert not checks[3]["covered"] and checks[3]["margin"] < 0
    assert checks[1]["covered"] and checks[1]["rate"] == pytest.approx(0.06)


def test_the_cutoff_curve_approves_more_grades_at_each_step():
    applications, scored = _book()
    rows = book_rows(
        applications,
        scored.assign(decision=["approve", "approve", "approve", "decline"]),
        LimitSettings(),
        WhatIfConfig(),
    )
    curve = cutoff_curve(rows, [0.0, 1.0, 1.0, 0.0], n_grades=10)
    assert curve["approve_max_grade"].tolist() == list(range(11))
    assert curve["approval_rate"].is_monotonic_increasing
    # the knocked-out row (grade 2) is never approved; at cut-off 8 the other three are
    assert curve.loc[2, "approval_rate"] == 0.25 and curve.loc[8, "approval_rate"] == 0.75
    assert curve.loc[3, "bad_rate_approved"] == 0.5 and np.isnan(curve.loc[0, "bad_rate_approved"])


@pytest.mark.slow
def test_the_stage_replays_the_pipelines_applications_at_a_higher_rate(
    pipeline: Path, tmp_path: Path
) -> None:
    """The real stage on the pipeline's model and splits: +2 points on every rate."""
    current = json.loads((pipeline / "reports" / "whatif.json").read_text())
    assert current["replayed"] and current["change"]["approval_rate"] == 0.0
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["whatif"]["scenario"]["rate_shift"] = 0.02
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run(
        ["pipelines/stage", "whatif", "--params", str(tmp_path / "params.yaml"), "--model-dir", "models",
         "--split-dir", "data/split", "--dataset", "data/validated/dataset.json",
         "--metrics", str(tmp_path / "whatif.json"), "--out-dir", str(tmp_path / "whatif")],
        cwd=pipeline, env=stage_env(pipeline), check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    raised = json.loads((tmp_path / "whatif.json").read_text())
    assert raised["current"] == current["current"]
    # a dearer loan: larger payments, so the model sees more risk and approves no more
    assert raised["change"]["expected_bad_rate_approved"] > 0 and raised["change"]["approval_rate"] <= 0
    assert raised["changed"]["interest_income"] > raised["current"]["interest_income"]
    detail = json.loads((tmp_path / "whatif" / "detail.json").read_text())
    test_oot = sum(
        len(pd.read_parquet(pipeline / "data" / "split" / f"{n}.parquet")) for n in ("test", "oot")
    )
    assert raised["current"]["applications"] == test_oot
    assert (
        len(detail["cutoff_curve"]) == len(detail["current_by_grade"]) + 1
        or len(detail["cutoff_curve"]) == 11
    )
    assert (tmp_path / "whatif" / "cutoff_curve.png").stat().st_size > 1000


@pytest.mark.slow
def test_the_fairness_stage_screens_the_pipelines_decisions_by_group(pipeline: Path) -> None:
    """reports/fairness.json of the pipeline run: each group's approval rate is the share of
    `approve` among the exported model's decisions for it, and a group is flagged exactly when
    its AIR is under the threshold and it is big enough."""
    report = json.loads((pipeline / "reports" / "fairness.json").read_text())
    params = yaml.safe_load((pipeline / "params.yaml").read_text())["fairness"]
    predictions = pd.read_parquet(pipeline / "data" / "scores" / "predictions.parquet")
    assert set(report["splits"]) == set(params["splits"]) and not report["not_screened"]
    test = pd.read_parquet(pipeline / "data" / "split" / "test.parquet").merge(
        predictions[["application_id", "decision"]], on="application_id"
    )
    screened = report["splits"]["test"]["variables"]
    assert set(screened) == set(params["groups"])
    by_status = (test["decision"] == "approve").groupby(test["marital_status"].astype(str)).mean()
    for group, figures in screened["marital_status"]["groups"].items():
        assert figures["approval_rate"] == pytest.approx(by_status[group])
    for split in report["splits"].values():
        for variable in split["variables"].values():
            for figures in variable["groups"].values():
                expected = (
                    figures["air"] is not None
                    and figures["air"] < report["air_threshold"]
                    and figures["n"] >= report["min_group_size"]
                )
                assert figures["flagged"] == expected
    assert report["reason_codes"]["ok"] and report["reason_codes"]["not_scored"] == []
