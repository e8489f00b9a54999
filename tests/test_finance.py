"""Payment formulas against hand-computed cases and their closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.core.finance import (
    annuity_payment,
    equal_principal_first_payment,
    equal_principal_schedule,
    monthly_payment,
)


def test_annuity_matches_hand_computed_case() -> None:
    # 100,000 over 60 months at 6% a year: r = 0.005, payment = P r / (1 - 1.005^-60) = 1,933.28
    assert annuity_payment(100_000, 0.06, 60) == pytest.approx(1933.2801529, abs=1e-6)


def test_annuity_at_zero_rate_is_principal_over_term() -> None:
    assert annuity_payment(12_000, 0.0, 24) == pytest.approx(500.0)


def test_annuity_payments_repay_the_principal_exactly() -> None:
    principal, rate, term = 150_000.0, 0.085, 48
    payment = float(annuity_payment(principal, rate, term))
    balance = principal
    for _ in range(term):
        balance = balance * (1 + rate / 12) - payment
    assert balance == pytest.approx(0.0, abs=1e-6)


def test_equal_principal_hand_computed_case() -> None:
    # 120,000 over 12 months at 12%: principal share 10,000, first interest 1,200, last 100.
    assert equal_principal_first_payment(120_000, 0.12, 12) == pytest.approx(11_200.0)
    schedule = equal_principal_schedule(120_000, 0.12, 12)
    assert schedule[0] == pytest.approx(11_200.0)
    assert schedule[-1] == pytest.approx(10_100.0)
    assert schedule.sum() == pytest.approx(120_000 + 1_200 * 13 / 2)  # interest = P r (n + 1) / 2
    assert np.all(np.diff(schedule) < 0)


def test_equal_principal_first_payment_exceeds_annuity_when_rate_positive() -> None:
    annuity = annuity_payment(80_000, 0.07, 36)
    first = equal_principal_first_payment(80_000, 0.07, 36)
    assert first > annuity
    assert equal_principal_first_payment(80_000, 0.0, 36) == pytest.approx(annuity_payment(80_000, 0.0, 36))


def test_monthly_payment_dispatches_by_method_and_keeps_missing() -> None:
    out = monthly_payment(
        [1000, 1000, 1000], [0.12, 0.12, 0.12], [12, 12, 12], ["equal_installment", "equal_principal", None]
    )
    assert out[0] == pytest.approx(float(annuity_payment(1000, 0.12, 12)))
    assert out[1] == pytest.approx(1000 / 12 + 10.0)
    assert np.isnan(out[2])


def test_monthly_payment_rejects_unknown_method_naming_it() -> None:
    with pytest.raises(ValueError, match=r"repayment_method: got \['balloon'\]"):
        monthly_payment([1000], [0.1], [12], ["balloon"])


@pytest.mark.parametrize("equal_principal", [False, True])
@pytest.mark.parametrize(
    ("principal", "rate", "term"), [(100_000.0, 0.08, 36), (25_000.0, 0.0, 12), (9_000.0, 0.25, 60)]
)
def test_schedule_functions_match_a_month_by_month_amortisation(
    equal_principal: bool, principal: float, rate: float, term: int
) -> None:
    from scoring.core.finance import balance_after, instalment, paid_through

    balance, paid = principal, 0.0
    for k in range(1, term + 1):
        due = float(instalment(principal, rate, term, equal_principal, k))
        balance -= due - balance * rate / 12.0  # the instalment less the month's interest
        paid += due
        assert float(balance_after(principal, rate, term, equal_principal, k)) == pytest.approx(
            balance, abs=1e-6
        )
        assert float(paid_through(principal, rate, term, equal_principal, k)) == pytest.approx(
            paid, rel=1e-12
        )
    assert balance == pytest.approx(0.0, abs=1e-6)
    assert float(instalment(principal, rate, term, equal_principal, term + 1)) == 0.0
    assert float(balance_after(principal, rate, term, equal_principal, term + 5)) == 0.0
    first = float(instalment(principal, rate, term, equal_principal, 1))
    assert first == pytest.approx(
        float(
            monthly_payment(
                principal, rate, term, "equal_principal" if equal_principal else "equal_installment"
            )
        )
    )
    if equal_principal:
        schedule = equal_principal_schedule(principal, rate, term)
        assert [
            float(instalment(principal, rate, term, True, k)) for k in range(1, term + 1)
        ] == pytest.approx(schedule.tolist())


def test_a_repayment_schedule_repays_the_principal_with_the_methods_payments() -> None:
    from scoring.core.finance import repayment_schedule, schedule_summary

    annuity = repayment_schedule(100_000.0, 0.06, 36, "equal_installment")
    assert len(annuity) == 36 and annuity["month"].tolist() == list(range(1, 37))
    assert np.allclose(annuity["payment"], annuity_payment(100_000.0, 0.06, 36))
    assert annuity["principal"].sum() == pytest.approx(100_000.0)
    assert annuity["balance"].iloc[-1] == 0.0
    assert annuity["interest"].iloc[0] == pytest.approx(500.0)  # 100,000 x 6% / 12
    falling = repayment_schedule(120_000.0, 0.12, 12, "equal_principal")
    assert np.allclose(falling["principal"], 10_000.0)
    assert np.allclose(falling["payment"], equal_principal_schedule(120_000, 0.12, 12))
    summary = schedule_summary(falling)
    assert summary["first_payment"] == pytest.approx(11_200.0) and summary["last_payment"] == pytest.approx(
        10_100.0
    )
    assert summary["total_interest"] == pytest.approx(0.01 * sum(range(10_000, 130_000, 10_000)))
    assert summary["total_payment"] == pytest.approx(120_000.0 + summary["total_interest"])
    # an annuity costs more interest than equal principal on the same loan
    assert (
        schedule_summary(repayment_schedule(120_000.0, 0.12, 12, "equal_installment"))["total_interest"]
        > summary["total_interest"]
    )
    with pytest.raises(ValueError, match="expected one of"):
        repayment_schedule(1_000.0, 0.05, 12, "balloon")
    with pytest.raises(ValueError, match="term of at least 1 month"):
        repayment_schedule(1_000.0, 0.05, 0, "equal_installment")
