"""Loan arithmetic for the two repayment methods, vectorised over numpy arrays.

equal_installment (annuity): every monthly payment is the same,
    payment = P * r / (1 - (1 + r) ** -n),  r = annual_rate / 12,  P / n when r = 0.
equal_principal: the principal share P / n is constant and interest is charged on the
outstanding balance, so payments fall over time; the first (largest) payment is
    P / n + P * r,
which is the one that matters for affordability.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import REPAYMENT_METHODS

FloatArray = npt.NDArray[np.float64]


def _as_float(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def annuity_payment(
    principal: npt.ArrayLike, annual_rate: npt.ArrayLike, term_months: npt.ArrayLike
) -> FloatArray:
    """Constant monthly payment of an equal-installment loan."""
    p, n = _as_float(principal), _as_float(term_months)
    r = _as_float(annual_rate) / 12.0
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(r == 0.0, 1.0 / n, r / -np.expm1(-n * np.log1p(r)))
    return np.asarray(p * factor, dtype=np.float64)


def equal_principal_first_payment(
    principal: npt.ArrayLike, annual_rate: npt.ArrayLike, term_months: npt.ArrayLike
) -> FloatArray:
    """First (largest) monthly payment of an equal-principal loan."""
    p, n = _as_float(principal), _as_float(term_months)
    r = _as_float(annual_rate) / 12.0
    return np.asarray(p / n + p * r, dtype=np.float64)


def equal_principal_schedule(principal: float, annual_rate: float, term_months: int) -> FloatArray:
    """All payments of an equal-principal loan, first to last."""
    r = annual_rate / 12.0
    share = principal / term_months
    outstanding = principal - share * np.arange(term_months)
    return np.asarray(share + outstanding * r, dtype=np.float64)


def monthly_payment(
    principal: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    repayment_method: npt.ArrayLike,
) -> FloatArray:
    """The payment that affordability is judged on: the annuity, or the first equal-principal payment.

    Unknown repayment methods raise, naming the values found; missing ones (None/NaN) give NaN.
    """
    method = np.asarray(repayment_method, dtype=object)
    known = np.isin(method, REPAYMENT_METHODS)
    missing = np.asarray(pd.isna(method), dtype=bool)
    bad = ~known & ~missing
    if bad.any():
        found = sorted({str(m) for m in method[bad]})
        raise ValueError(f"repayment_method: got {found}, expected one of {list(REPAYMENT_METHODS)}")
    annuity = annuity_payment(principal, annual_rate, term_months)
    first = equal_principal_first_payment(principal, annual_rate, term_months)
    out = np.where(method == "equal_principal", first, annuity)
    return np.asarray(np.where(missing, np.nan, out), dtype=np.float64)


def balance_after(
    principal: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    equal_principal: npt.ArrayLike,
    paid_instalments: npt.ArrayLike,
) -> FloatArray:
    """Outstanding principal after the first ``paid_instalments`` scheduled instalments."""
    p, n, k = _as_float(principal), _as_float(term_months), _as_float(paid_instalments)
    k = np.minimum(k, n)
    r = _as_float(annual_rate) / 12.0
    growth = np.power(1.0 + r, k)
    payment = annuity_payment(p, annual_rate, term_months)
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = np.where(r == 0.0, p - payment * k, p * growth - payment * np.expm1(k * np.log1p(r)) / r)
    linear = p * (1.0 - k / n)
    out = np.where(np.asarray(equal_principal, dtype=bool), linear, annuity)
    # paid off means 0, not the rounding residue of the closed form
    return np.asarray(np.where(k >= n, 0.0, np.maximum(out, 0.0)), dtype=np.float64)


def instalment(
    principal: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    equal_principal: npt.ArrayLike,
    number: npt.ArrayLike,
) -> FloatArray:
    """The scheduled instalment ``number`` (1-based); 0 after the term."""
    p, n, k = _as_float(principal), _as_float(term_months), _as_float(number)
    r = _as_float(annual_rate) / 12.0
    falling = p / n + r * p * (1.0 - (k - 1.0) / n)
    out = np.where(
        np.asarray(equal_principal, dtype=bool), falling, annuity_payment(p, annual_rate, term_months)
    )
    return np.asarray(np.where((k >= 1) & (k <= n), out, 0.0), dtype=np.float64)


def paid_through(
    principal: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    equal_principal: npt.ArrayLike,
    paid_instalments: npt.ArrayLike,
) -> FloatArray:
    """Sum of the first ``paid_instalments`` scheduled instalments."""
    p, n, k = _as_float(principal), _as_float(term_months), _as_float(paid_instalments)
    k = np.minimum(k, n)
    r = _as_float(annual_rate) / 12.0
    falling = k * p / n + r * p * (k - k * (k - 1.0) / (2.0 * n))
    level = k * annuity_payment(p, annual_rate, term_months)
    return np.asarray(np.where(np.asarray(equal_principal, dtype=bool), falling, level), dtype=np.float64)


def repayment_schedule(
    principal: float, annual_rate: float, term_months: int, repayment_method: str
) -> pd.DataFrame:
    """Month by month: ``month`` (1-based), ``payment``, ``interest`` (the opening balance times
    the monthly rate), ``principal`` repaid and the closing ``balance`` (0 after the last)."""
    if repayment_method not in REPAYMENT_METHODS:
        raise ValueError(
            f"repayment_method: got {repayment_method!r}, expected one of {list(REPAYMENT_METHODS)}"
        )
    if term_months < 1 or principal < 0 or annual_rate < 0:
        raise ValueError(
            f"repayment schedule: principal {principal}, annual_rate {annual_rate}, term_months "
            f"{term_months}; expected a principal and a rate of at least 0 and a term of at least 1 month"
        )
    months = np.arange(1, term_months + 1)
    equal_principal = np.full(term_months, repayment_method == "equal_principal")
    opening = balance_after(principal, annual_rate, term_months, equal_principal, months - 1)
    closing = balance_after(principal, annual_rate, term_months, equal_principal, months)
    interest = opening * annual_rate / 12.0
    repaid = opening - closing
    return pd.DataFrame(
        {
            "month": months,
            "payment": repaid + interest,
            "interest": interest,
            "principal": repaid,
            "balance": closing,
        }
    )


def schedule_summary(schedule: pd.DataFrame) -> dict[str, float]:
    """First, last and total payment and the total interest of :func:`repayment_schedule`."""
    return {
        "first_payment": float(schedule["payment"].iloc[0]),
        "last_payment": float(schedule["payment"].iloc[-1]),
        "total_payment": float(schedule["payment"].sum()),
        "total_interest": float(schedule["interest"].sum()),
    }
