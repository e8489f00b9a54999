"""Policy and pricing what-if: the same applications decided under changed params, side by side.

A change is a :class:`WhatIfScenario` (params ``whatif.scenario``): a shift of every
application's interest rate, of every maximum loan-to-value (the market caps of the knock-out
rules and each grade's LTV cap), of each grade's debt-to-income cap, or other grade cut-offs.
:func:`scenario_settings` turns it into the policy and limit settings; the caller scores the
applications under both (the exported model's own :class:`scoring.serving.scorer.Scorer`: a
higher rate raises the payment, hence the payment-to-income the model reads) and
:func:`book_figures` measures each book:

- approval rate, the approved rows' bad rate (observed outcomes of the same applications: the
  outcome a changed offer would have had is unknown, so it is read as unchanged) and expected
  bad rate (mean PD of the approved, as the model sees them under the change);
- booked volume: each approved application at the smaller of the amount it asked for and its
  suggested limit (referred ones are not booked: a human decides them);
- over the first year of each booked loan (a 12-month PD is a one-year loss), interest income
  from its own schedule (annuity or equal principal) at its rate, expected loss
  (PD x LGD x booked amount), the cost of funds and the operating cost on the average balance
  (``limits.funding_cost``, ``whatif.operating_cost``), and the expected profit: interest minus
  the other three.

:func:`pricing_check` flags grades whose balance-weighted rate does not cover the one-year
expected loss rate (the grade's mean PD x LGD) plus cost of funds, operating cost and a
capital charge (``whatif.capital_charge``). :func:`cutoff_curve` is the approval rate, bad rate
and profit of every grade cut-off, from one scoring with every grade approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.finance import balance_after
from scoring.core.refusals import CodedError
from scoring.decision.config import WhatIfConfig, WhatIfScenario
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import APPROVE, DECLINE, PolicySettings

FloatArray = npt.NDArray[np.float64]

HORIZON_MONTHS = 12
"""The profit horizon: the first year of each loan, the horizon of the 12-month PD."""

REFUSALS: dict[str, str] = {
    "cap_not_positive": "a scenario shift takes an LTV or DTI cap to 0 or below",
    "no_rate_column": "a rate shift, but the applications have no annual_rate column",
    "scored_rows_mismatch": "the scored rows are not one per application",
    "outcomes_mismatch": "the outcomes are not one per application",
}
"""The ways the what-if refuses a scenario or its inputs (:class:`WhatIfError`'s codes); the
scenario's own fields are checked by :class:`WhatIfScenario` (pydantic) before."""


class WhatIfError(CodedError):
    """A scenario the what-if cannot replay, or inputs that do not match; ``code``: one of
    :data:`REFUSALS`."""

    CODES = REFUSALS


def _shifted(
    values: Sequence[float], shift: float, what: str, field: str, upper: float = 1.0
) -> tuple[float, ...]:
    """``values`` moved by ``shift``, at most ``upper``; a cap at 0 or below is refused."""
    moved = tuple(float(min(v + shift, upper)) for v in values)
    if min(moved) <= 0.0:
        raise WhatIfError(
            f"whatif.scenario.{field} {shift:g}: takes {what} ({min(values):g} at its lowest) to "
            f"{min(moved):g}; expected every cap above 0",
            "cap_not_positive",
        )
    return moved


def scenario_settings(
    scenario: WhatIfScenario, policy: PolicySettings, limits: LimitSettings
) -> tuple[PolicySettings, LimitSettings]:
    """The policy and limit settings under ``scenario`` (LTV caps at most 1; a cap taken to 0 or
    below is refused; the grade tables keep their order, as a shift moves every grade alike)."""
    ltv = policy.knock_outs.max_ltv
    market = ltv.model_copy(
        update={
            name: _shifted(
                [getattr(ltv, name)], scenario.max_ltv_shift, f"the market cap {name}", "max_ltv_shift"
            )[0]
            for name in (
                "private_conventional",
                "commercial_conventional",
                "private_new_energy",
                "commercial_new_energy",
                "used",
            )
        }
    )
    decisions = policy.decisions
    approve = (
        decisions.approve_max_grade if scenario.approve_max_grade is None else scenario.approve_max_grade
    )
    refer = decisions.refer_max_grade if scenario.refer_max_grade is None else scenario.refer_max_grade
    new_policy = PolicySettings.model_validate(
        {
            "knock_outs": policy.knock_outs.model_copy(update={"max_ltv": market}).model_dump(),
            "decisions": {"approve_max_grade": approve, "refer_max_grade": max(refer, approve)},
        }
    )
    new_limits = LimitSettings.model_validate(
        {
            **limits.model_dump(),
            "ltv_cap": _shifted(limits.ltv_cap, scenario.max_ltv_shift, "limits.ltv_cap", "max_ltv_shift"),
            "dti_cap": _shifted(
                limits.dti_cap, scenario.dti_cap_shift, "limits.dti_cap", "dti_cap_shift", upper=10.0
            ),
        }
    )
    return new_policy, new_limits


def shifted_applications(applications: pd.DataFrame, scenario: WhatIfScenario) -> pd.DataFrame:
    """The applications as the scenario offers them: the rate shifted (never below 0)."""
    if scenario.rate_shift == 0.0:
        return applications
    if "annual_rate" not in applications.columns:
        raise WhatIfError(
            "whatif.scenario.rate_shift: the applications have no annual_rate column to shift",
            "no_rate_column",
        )
    return applications.assign(
        annual_rate=(applications["annual_rate"] + scenario.rate_shift).clip(lower=0.0)
    )


def first_year(
    principal: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    equal_principal: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Interest paid and average balance over each loan's first :data:`HORIZON_MONTHS` months (0
    after its term): each month's interest is its opening balance times the monthly rate."""
    p = np.asarray(principal, dtype=np.float64)
    rate = np.asarray(annual_rate, dtype=np.float64)
    interest = np.zeros_like(p)
    balance_months = np.zeros_like(p)
    for month in range(HORIZON_MONTHS):
        opening = balance_after(p, rate, term_months, equal_principal, month)
        interest += opening * rate / 12.0
        balance_months += opening
    return interest, balance_months / HORIZON_MONTHS


def book_rows(
    applications: pd.DataFrame, scored: pd.DataFrame, limits: LimitSettings, config: WhatIfConfig
) -> pd.DataFrame:
    """Per application: approved, booked amount, and the first year's interest, expected loss,
    cost of funds, operating cost and expected profit (0 where not booked).

    ``scored``: the scorer's output for ``applications`` (same rows, same order): ``pd``,
    ``decision``, ``suggested_limit``. ``applications`` as scored (the rate already shifted).
    """
    if len(scored) != len(applications):
        raise WhatIfError(
            f"whatif: {len(scored)} scored rows for {len(applications)} applications", "scored_rows_mismatch"
        )
    approved = (scored["decision"] == APPROVE).to_numpy()
    requested = applications["loan_amount"].to_numpy(dtype=np.float64)
    limit = scored["suggested_limit"].to_numpy(dtype=np.float64)
    # no limit (a dataset without the DTI and LTV columns): the amount asked for
    booked = np.where(approved, np.fmin(requested, np.where(np.isnan(limit), requested, limit)), 0.0)
    interest, balance = first_year(
        booked,
        applications["annual_rate"].to_numpy(dtype=np.float64),
        applications["term_months"].to_numpy(dtype=np.float64),
        (applications["repayment_method"] == "equal_principal").to_numpy(),
    )
    pd_values = scored["pd"].to_numpy(dtype=np.float64)
    expected_loss = pd_values * limits.lgd * booked
    funding = limits.funding_cost * balance
    operating = config.operating_cost * balance
    return pd.DataFrame(
        {
            "approved": approved,
            "declined": (scored["decision"] == DECLINE).to_numpy(),
            "pd": pd_values,
            "grade": scored["grade"].to_numpy(),
            "rate": applications["annual_rate"].to_numpy(dtype=np.float64),
            "booked": booked,
            "average_balance": balance,
            "interest": interest,
            "expected_loss": expected_loss,
            "funding_cost": funding,
            "operating_cost": operating,
            "profit": interest - expected_loss - funding - operating,
        },
        index=applications.index,
    )


def _figures(rows: pd.DataFrame, outcome: FloatArray) -> dict[str, Any]:
    approved = rows["approved"].to_numpy()
    labelled = approved & ~np.isnan(outcome)
    n = len(rows)
    return {
        "applications": n,
        "approved": int(approved.sum()),
        "approval_rate": float(approved.mean()) if n else None,
        "bad_rate_approved": float(outcome[labelled].mean()) if labelled.any() else None,
        "expected_bad_rate_approved": float(rows["pd"].to_numpy()[approved].mean())
        if approved.any()
        else None,
        "booked_volume": float(rows["booked"].sum()),
        "interest_income": float(rows["interest"].sum()),
        "expected_loss": float(rows["expected_loss"].sum()),
        "funding_cost": float(rows["funding_cost"].sum()),
        "operating_cost": float(rows["operating_cost"].sum()),
        "expected_profit": float(rows["profit"].sum()),
    }


def book_figures(rows: pd.DataFrame, outcome: npt.ArrayLike) -> dict[str, Any]:
    """The book of :func:`book_rows`, overall and by grade; ``outcome`` is each application's
    observed default (0/1, NaN where unknown), read for the approved rows' bad rate."""
    y = np.asarray(outcome, dtype=np.float64)
    if len(y) != len(rows):
        raise WhatIfError(f"whatif: {len(y)} outcomes for {len(rows)} applications", "outcomes_mismatch")
    grades = rows["grade"].to_numpy()
    return {
        "overall": _figures(rows, y),
        "by_grade": [
            {"grade": int(g), **_figures(rows[grades == g], y[grades == g])} for g in np.unique(grades)
        ],
    }


CHANGED = (
    "approval_rate",
    "bad_rate_approved",
    "expected_bad_rate_approved",
    "booked_volume",
    "expected_loss",
    "expected_profit",
)


def changes(current: dict[str, Any], scenario: dict[str, Any]) -> dict[str, Any]:
    """The scenario's figure minus the current one for :data:`CHANGED` (None where either is)."""
    return {
        k: None if current[k] is None or scenario[k] is None else float(scenario[k] - current[k])
        for k in CHANGED
    }


def pricing_check(rows: pd.DataFrame, limits: LimitSettings, config: WhatIfConfig) -> list[dict[str, Any]]:
    """Per grade with approved loans: the balance-weighted rate against the cost it must cover
    (one-year expected loss rate + cost of funds + operating cost + capital charge); ``covered``
    false names a grade priced below cost."""
    out = []
    booked = rows[rows["approved"].to_numpy()]
    grades = booked["grade"].to_numpy()
    for grade in np.unique(grades):
        part = booked[grades == grade]
        weight = part["average_balance"].to_numpy()
        if weight.sum() <= 0:
            continue
        rate = float(np.average(part["rate"].to_numpy(), weights=weight))
        mean_pd = float(np.average(part["pd"].to_numpy(), weights=part["booked"].to_numpy()))
        el_rate = mean_pd * limits.lgd
        required = el_rate + limits.funding_cost + config.operating_cost + config.capital_charge
        out.append(
            {
                "grade": int(grade),
                "loans": len(part),
                "rate": rate,
                "expected_loss_rate": el_rate,
                "funding_cost": limits.funding_cost,
                "operating_cost": config.operating_cost,
                "capital_charge": config.capital_charge,
                "required_rate": required,
                "margin": rate - required,
                "covered": bool(rate >= required),
            }
        )
    return out


def cutoff_curve(rows_all_approved: pd.DataFrame, outcome: npt.ArrayLike, n_grades: int) -> pd.DataFrame:
    """Approval rate, bad rate and expected profit for every approval cut-off grade 0..K.

    ``rows_all_approved``: :func:`book_rows` of a scoring in which every grade is approved, so
    that only the knock-out rules decline (and each row has the limit it would get).
    """
    y = np.asarray(outcome, dtype=np.float64)
    grades = rows_all_approved["grade"].to_numpy()
    eligible = rows_all_approved["approved"].to_numpy()
    n = len(rows_all_approved)
    points = []
    for cut in range(n_grades + 1):
        approved = eligible & (grades <= cut)
        labelled = approved & ~np.isnan(y)
        points.append(
            {
                "approve_max_grade": cut,
                "approval_rate": float(approved.mean()) if n else float("nan"),
                "bad_rate_approved": float(y[labelled].mean()) if labelled.any() else float("nan"),
                "booked_volume": float(rows_all_approved["booked"].to_numpy()[approved].sum()),
                "expected_profit": float(rows_all_approved["profit"].to_numpy()[approved].sum()),
            }
        )
    return pd.DataFrame(points)
