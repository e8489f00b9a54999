"""Suggested credit limits, expected loss, risk-based rates, and portfolio and swap-set views.

The suggested limit of an application that is not declined is the largest principal that

* keeps debt-to-income within the grade's cap: ``existing_monthly_debt + payment <=
  dti_cap[grade] * monthly_income``, where the payment is the annuity payment
  (equal_installment) or the first, largest payment (equal_principal) at the applicant's own
  term and rate (:mod:`scoring.core.finance`);
* stays within ``min(ltv_cap[grade], market cap) * vehicle_price`` (the market cap comes from
  :func:`scoring.decision.policy.max_ltv_for`);
* stays within the grade's absolute ``amount_cap``;

rounded down to ``rounding_unit``. ``binding_constraint`` names the bound that set it: ``dti``,
``ltv`` or ``grade_cap`` (ties go to the first in that order), ``declined`` (limit 0),
``no_capacity`` (existing debt already uses the whole DTI cap: limit 0) or ``missing_data``
(income, debt, price, rate, term, repayment method or market cap missing or unusable: limit 0).
Referred applications get a limit, for the human who decides them.

Expected loss is the row's ``pd * lgd * suggested_limit`` (the limit as exposure at default).
The suggested annual rate is ``funding_cost + pd * lgd + margin``: with the master scale's
central PD per grade (``grade_pd``) it is one rate per grade; without it, the row's own PD is
used. Declined rows get no rate (NaN).

Every table in :class:`LimitSettings` is indexed by grade (first entry = grade 1, the lowest
PD) and may not loosen as the grade worsens, so a worse grade never gets a higher limit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scoring.core.contract import REPAYMENT_METHODS
from scoring.core.finance import annuity_payment, equal_principal_first_payment
from scoring.decision.policy import (
    APPROVE,
    DECISIONS,
    DECLINE,
    PRODUCT_COLUMNS,
    REASON_SEPARATOR,
    REFER,
    Table,
    as_grades,
    level_codes,
    n_rows,
    numeric_column,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

BINDING_DTI = "dti"
BINDING_LTV = "ltv"
BINDING_GRADE_CAP = "grade_cap"
BINDING_DECLINED = "declined"
BINDING_NO_CAPACITY = "no_capacity"
BINDING_MISSING_DATA = "missing_data"
BINDING_NO_DATA = "no_data"
BINDING_CONSTRAINTS: tuple[str, ...] = (
    BINDING_DTI,
    BINDING_LTV,
    BINDING_GRADE_CAP,
    BINDING_DECLINED,
    BINDING_NO_CAPACITY,
    BINDING_MISSING_DATA,
    BINDING_NO_DATA,
)

CONSTRAINT_COLUMNS: dict[str, tuple[str, ...]] = {
    BINDING_DTI: (
        "monthly_income",
        "existing_monthly_debt",
        "annual_rate",
        "term_months",
        "repayment_method",
    ),
    BINDING_LTV: ("vehicle_price", *PRODUCT_COLUMNS),
    BINDING_GRADE_CAP: (),
}
"""The columns each limit constraint reads (the LTV cap's market cap reads the product columns)."""


def constraint_scope(columns: Collection[str]) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(constraints in force, {constraint switched off: the columns it lacks}) for data with ``columns``.

    The grade's amount cap needs no data, but alone it says nothing about the applicant: with
    neither the DTI nor the LTV constraint in force no limit is suggested (``no_data``).
    """
    present = set(columns)
    in_force: list[str] = []
    off: dict[str, tuple[str, ...]] = {}
    for name, needs in CONSTRAINT_COLUMNS.items():
        lacking = tuple(c for c in needs if c not in present)
        if lacking:
            off[name] = lacking
        else:
            in_force.append(name)
    return tuple(in_force), off


LIMIT_COLUMNS: tuple[str, ...] = (
    "suggested_limit",
    "binding_constraint",
    "expected_loss",
    "suggested_rate",
    "payment_at_limit",
    "max_by_dti",
    "max_by_ltv",
    "max_by_grade_cap",
)

# Rounding down forgives this many billionths of a unit, so that a bound that is a whole number
# of units in decimal (0.7 * 100,000) but a hair below it in binary is not cut by a full unit.
_ROUNDING_SLACK = 1e-9

Ratio = Annotated[float, Field(gt=0.0, le=1.0)]
Amount = Annotated[float, Field(ge=0.0)]


class LimitSettings(BaseModel):
    """The ``limits:`` section of params.yaml: per-grade caps (grade 1 first) and pricing inputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dti_cap: tuple[Ratio, ...] = Field(
        (0.50, 0.50, 0.48, 0.46, 0.44, 0.42, 0.40, 0.38, 0.36, 0.35),
        description="maximum (existing debt + new payment) / monthly income, per grade",
    )
    ltv_cap: tuple[Ratio, ...] = Field(
        (0.85, 0.85, 0.85, 0.85, 0.80, 0.80, 0.75, 0.70, 0.65, 0.60),
        description="maximum principal / vehicle price per grade; the market cap applies if lower",
    )
    amount_cap: tuple[Amount, ...] = Field(
        (2_000_000, 1_500_000, 1_000_000, 800_000, 600_000, 500_000, 400_000, 300_000, 200_000, 100_000),
        description="maximum principal per grade",
    )
    rounding_unit: float = Field(1_000.0, gt=0.0, description="limits are rounded down to a multiple of this")
    lgd: float = Field(0.45, ge=0.0, le=1.0, description="loss given default")
    funding_cost: float = Field(0.03, ge=0.0, le=1.0, description="annual cost of funds")
    margin: float = Field(
        0.02, ge=-1.0, le=1.0, description="annual margin over funding cost and expected loss"
    )

    @property
    def n_grades(self) -> int:
        return len(self.dti_cap)

    @model_validator(mode="after")
    def _tables_consistent(self) -> Self:
        tables = {"dti_cap": self.dti_cap, "ltv_cap": self.ltv_cap, "amount_cap": self.amount_cap}
        lengths = {name: len(values) for name, values in tables.items()}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise ValueError(f"expected one entry per grade in every table, got lengths {lengths}")
        for name, values in tables.items():
            for grade in range(2, len(values) + 1):
                if values[grade - 1] > values[grade - 2]:
                    raise ValueError(
                        f"{name}: grade {grade} ({values[grade - 1]}) is looser than grade {grade - 1} "
                        f"({values[grade - 2]}); expected caps that never rise as the grade worsens"
                    )
        return self


# --------------------------------------------------------------------------- payment inverse


def _methods(repayment_method: pd.Series | npt.ArrayLike, strict: bool) -> tuple[BoolArray, BoolArray]:
    """(is equal_principal, is missing) per value; unknown methods raise if strict, else count as missing."""
    values = (
        repayment_method
        if isinstance(repayment_method, pd.Series)
        else np.asarray(repayment_method, dtype=object).ravel()
    )
    shape = np.shape(repayment_method)
    codes = level_codes(values, REPAYMENT_METHODS)
    if strict and (codes < 0).any():
        series = pd.Series(values)
        unknown = (codes < 0) & series.notna().to_numpy(dtype=bool)
        if unknown.any():
            found = sorted({str(m) for m in series[unknown].unique()[:5]})
            raise ValueError(f"repayment_method: got {found}, expected one of {list(REPAYMENT_METHODS)}")
    is_ep = codes == REPAYMENT_METHODS.index("equal_principal")
    return is_ep.reshape(shape), (codes < 0).reshape(shape)


def max_principal_for_payment(
    payment: npt.ArrayLike,
    annual_rate: npt.ArrayLike,
    term_months: npt.ArrayLike,
    repayment_method: npt.ArrayLike,
) -> FloatArray:
    """The principal whose affordability payment is ``payment``: the inverse of ``finance.monthly_payment``.

    annuity (equal_installment): ``P = pay * (1 - (1 + r) ** -n) / r``, ``pay * n`` when r = 0;
    equal principal (first payment): ``P = pay / (1 / n + r) = pay * n / (1 + n r)``; r = annual_rate / 12.
    Linear in the payment (a negative payment gives a negative principal). Arguments broadcast;
    unknown methods raise, missing ones (None/NaN) give NaN.
    """
    is_ep, missing = _methods(repayment_method, strict=True)
    principal = _principal(
        np.asarray(payment, dtype=np.float64),
        np.asarray(annual_rate, dtype=np.float64),
        np.asarray(term_months, dtype=np.float64),
        is_ep,
    )
    return np.asarray(np.where(missing, np.nan, principal), dtype=np.float64)


def _principal(
    payment: FloatArray, annual_rate: FloatArray, term: FloatArray, is_ep: BoolArray
) -> FloatArray:
    r = annual_rate / 12.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # the same expm1/log1p form as finance.annuity_payment, so the round trip is exact to rounding
        annuity_factor = np.where(r == 0.0, term, -np.expm1(-term * np.log1p(r)) / r)
        equal_principal_factor = term / (1.0 + term * r)
    return np.asarray(payment * np.where(is_ep, equal_principal_factor, annuity_factor), dtype=np.float64)


def _payment(principal: FloatArray, rate: FloatArray, term: FloatArray, is_ep: BoolArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        annuity = annuity_payment(principal, rate, term)
        first = equal_principal_first_payment(principal, rate, term)
    return np.asarray(np.where(is_ep, first, annuity), dtype=np.float64)


# --------------------------------------------------------------------------- limits


def _decision_codes(decisions: pd.DataFrame | pd.Series | npt.ArrayLike, n: int) -> IntArray:
    """Decisions as positions in DECISIONS (0 approve, 1 refer, 2 decline); anything else raises."""
    column = decisions["decision"] if isinstance(decisions, pd.DataFrame) else decisions
    codes = level_codes(column, DECISIONS)
    if len(codes) != n:
        raise ValueError(f"decisions has {len(codes)} rows, expected {n}")
    if (codes < 0).any():
        values = np.asarray(column, dtype=object).ravel()
        found = sorted({str(v) for v in values[codes < 0][:5]})
        raise ValueError(f"decisions: got {found}, expected one of {list(DECISIONS)}")
    return codes


def _pd_values(pd_values: npt.ArrayLike, n: int, name: str = "pd") -> FloatArray:
    values = np.asarray(pd_values, dtype=np.float64).ravel()
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} rows, expected {n}")
    bad = ~((values >= 0.0) & (values <= 1.0))
    if bad.any():
        raise ValueError(
            f"{name}: {int(bad.sum())} values outside [0, 1] or missing (e.g. {values[bad][:3]})"
        )
    return values


_LIMIT_INPUTS = ("monthly_income", "existing_monthly_debt", "vehicle_price", "annual_rate", "term_months")


def suggested_limits(
    applications: pd.DataFrame,
    pd_values: npt.ArrayLike,
    grades: npt.ArrayLike,
    decisions: pd.DataFrame | pd.Series | npt.ArrayLike,
    settings: LimitSettings,
    market_ltv: npt.ArrayLike | None,
    grade_pd: npt.ArrayLike | None = None,
    constraints: Collection[str] | None = None,
) -> pd.DataFrame:
    """Suggested limit, its binding constraint, expected loss, suggested rate and payment per row.

    Parameters
    ----------
    applications
        Raw applications: monthly_income, existing_monthly_debt, vehicle_price, annual_rate,
        term_months, repayment_method.
    pd_values
        Each row's PD, in [0, 1].
    grades
        Each row's grade, 1..settings.n_grades.
    decisions
        The frame from :func:`scoring.decision.policy.decide` (its ``decision`` column) or the decisions.
    market_ltv
        The market cap per row (:func:`scoring.decision.policy.max_ltv_for`); a scalar applies to all.
    grade_pd
        Optional central PD per grade (grade 1 first) from the master scale: the suggested rate
        then uses it (one rate per grade); without it, the row's PD.
    constraints
        The constraints in force (:func:`constraint_scope`); ``None`` = all (see :func:`limit_values`).

    Returns
    -------
    A frame on the applications' index with :data:`LIMIT_COLUMNS`: the limit and the three
    bounds before rounding (``max_by_*``), its binding constraint, expected loss, suggested rate
    and the affordability payment at the limit (0 for a zero limit).
    """
    values = limit_values(
        applications, pd_values, grades, decisions, settings, market_ltv, grade_pd, constraints=constraints
    )
    return limit_frame(values, applications.index)


def limit_frame(values: Mapping[str, npt.NDArray[Any]], index: pd.Index) -> pd.DataFrame:
    """:func:`limit_values`' arrays as a frame of :data:`LIMIT_COLUMNS` on ``index`` (the binding
    constraint as text)."""
    columns = {name: values[name] for name in LIMIT_COLUMNS}
    columns["binding_constraint"] = pd.Series(values["binding_constraint"], dtype=str).to_numpy()
    return pd.DataFrame(columns, index=index)


def limit_values(
    applications: Table,
    pd_values: npt.ArrayLike,
    grades: npt.ArrayLike,
    decisions: pd.DataFrame | pd.Series | npt.ArrayLike,
    settings: LimitSettings,
    market_ltv: npt.ArrayLike | None,
    grade_pd: npt.ArrayLike | None = None,
    *,
    coded: bool = False,
    constraints: Collection[str] | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """:func:`suggested_limits` as arrays by column, for a DataFrame or arrays by column.

    ``coded``: ``decisions`` are already positions in ``DECISIONS`` (0 approve, 1 refer,
    2 decline), an integer array. ``binding_constraint`` is an object array of text.
    ``constraints``: the constraints in force (:func:`constraint_scope`); ``None`` = all three.
    Only their columns are read (and required); a constraint switched off bounds nothing and
    its ``max_by_*`` is NaN. Without DTI and LTV, rows that are not declined get no limit
    (NaN, binding ``no_data``).
    """
    active = set(CONSTRAINT_COLUMNS) if constraints is None else set(constraints)
    unknown = sorted(active - set(CONSTRAINT_COLUMNS))
    if unknown:
        raise ValueError(
            f"suggested_limits: constraints {unknown} unknown; expected {list(CONSTRAINT_COLUMNS)}"
        )
    present = applications.columns if isinstance(applications, pd.DataFrame) else applications
    needed = [c for name in CONSTRAINT_COLUMNS if name in active for c in CONSTRAINT_COLUMNS[name]]
    # the market cap arrives as market_ltv: the LTV bound itself reads only the price
    needed = [c for c in dict.fromkeys(needed) if c not in PRODUCT_COLUMNS]
    missing_columns = [c for c in needed if c not in present]
    if missing_columns:
        raise ValueError(f"suggested_limits: missing columns {missing_columns}")
    n = n_rows(applications)
    pds = _pd_values(pd_values, n)
    grade = as_grades(grades, settings.n_grades)
    if len(grade) != n:
        raise ValueError(f"grades has {len(grade)} rows, expected {n}")
    if coded:
        decision = np.asarray(decisions, dtype=np.int64).ravel()
        if len(decision) != n:
            raise ValueError(f"decisions has {len(decision)} rows, expected {n}")
    else:
        decision = _decision_codes(decisions, n)
    # no market cap (None) where no LTV constraint is in force to read it
    market = np.broadcast_to(np.asarray(np.nan if market_ltv is None else market_ltv, dtype=np.float64), (n,))

    def numeric(column: str) -> FloatArray:
        return numeric_column(applications, column) if column in present else np.full(n, np.nan)

    income, debt, price, rate, term = (numeric(c) for c in _LIMIT_INPUTS)
    if "repayment_method" in present:
        is_ep, method_missing = _methods(applications["repayment_method"], strict=False)
    else:
        is_ep, method_missing = np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
    index = grade - 1
    use_dti, use_ltv = BINDING_DTI in active, BINDING_LTV in active

    capacity = np.asarray(settings.dti_cap)[index] * income - debt
    by_dti = _principal(np.maximum(capacity, 0.0), rate, term, is_ep) if use_dti else np.full(n, np.nan)
    by_ltv = (
        np.minimum(np.asarray(settings.ltv_cap)[index], market) * price if use_ltv else np.full(n, np.nan)
    )
    by_grade = np.asarray(settings.amount_cap, dtype=np.float64)[index]

    bounds = np.column_stack([by_dti, by_ltv, by_grade])
    in_force = np.array([use_dti, use_ltv, True])
    unusable = ~np.isfinite(bounds[:, in_force]).all(axis=1)
    if use_dti:
        unusable |= method_missing | ~(income > 0) | ~(debt >= 0) | ~(rate >= 0) | ~(term >= 1)
    if use_ltv:
        unusable |= ~(price > 0) | ~(market > 0)
    safe_bounds = np.where(np.isfinite(bounds) & in_force, bounds, np.inf)
    tightest = np.argmin(safe_bounds, axis=1)  # the first minimum: ties go to dti, then ltv
    raw = safe_bounds[np.arange(n), tightest]
    declined = decision == DECISIONS.index(DECLINE)
    # the grade cap alone knows nothing of the applicant: no limit without DTI or LTV
    no_data = ~declined & np.full(n, not (use_dti or use_ltv))
    no_capacity = ~declined & ~no_data & ~unusable & (~(capacity > 0) if use_dti else False)
    gets_limit = ~declined & ~no_data & ~unusable & ~no_capacity

    unit = settings.rounding_unit
    rounded = np.floor(np.where(gets_limit, raw, 0.0) / unit + _ROUNDING_SLACK) * unit
    limit = np.where(gets_limit, np.maximum(rounded, 0.0), np.where(no_data, np.nan, 0.0))

    binding = np.asarray([BINDING_DTI, BINDING_LTV, BINDING_GRADE_CAP], dtype=object)[tightest]
    binding = np.where(no_capacity, BINDING_NO_CAPACITY, binding)
    binding = np.where(unusable, BINDING_MISSING_DATA, binding)
    binding = np.where(no_data, BINDING_NO_DATA, binding)
    binding = np.where(declined, BINDING_DECLINED, binding)

    payment = np.where(limit > 0, _payment(limit, rate, term, is_ep), np.where(no_data, np.nan, 0.0))
    expected_loss = pds * settings.lgd * limit
    rate_pd = pds
    if grade_pd is not None:
        rate_pd = _pd_values(grade_pd, settings.n_grades, name="grade_pd")[index]
    suggested_rate = np.where(
        declined, np.nan, settings.funding_cost + rate_pd * settings.lgd + settings.margin
    )

    return {
        "suggested_limit": limit,
        "binding_constraint": binding,
        "expected_loss": expected_loss,
        "suggested_rate": suggested_rate,
        "payment_at_limit": payment,
        "max_by_dti": by_dti,
        "max_by_ltv": by_ltv,
        "max_by_grade_cap": by_grade,
    }


def rate_table(settings: LimitSettings, grade_pd: npt.ArrayLike) -> pd.DataFrame:
    """One row per grade: its caps, central PD, expected-loss rate (pd * lgd) and suggested rate."""
    pds = _pd_values(grade_pd, settings.n_grades, name="grade_pd")
    el_rate = pds * settings.lgd
    return pd.DataFrame(
        {
            "grade": np.arange(1, settings.n_grades + 1),
            "pd": pds,
            "expected_loss_rate": el_rate,
            "suggested_rate": settings.funding_cost + el_rate + settings.margin,
            "dti_cap": np.asarray(settings.dti_cap, dtype=np.float64),
            "ltv_cap": np.asarray(settings.ltv_cap, dtype=np.float64),
            "amount_cap": np.asarray(settings.amount_cap, dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------- portfolio views


def _number(x: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    value = float(x)
    return value if np.isfinite(value) else None


def _outcomes(y: npt.ArrayLike, n: int) -> FloatArray:
    values = np.asarray(
        pd.to_numeric(pd.Series(np.asarray(y, dtype=object).ravel()), errors="coerce"), dtype=np.float64
    )
    if len(values) != n:
        raise ValueError(f"y has {len(values)} rows, expected {n}")
    bad = ~np.isnan(values) & ~np.isin(values, [0.0, 1.0])
    if bad.any():
        raise ValueError(f"y: expected 0, 1 or null, got {sorted(set(values[bad].tolist()))[:5]}")
    return values


def _cell(mask: BoolArray, y: FloatArray | None) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int(mask.sum())}
    if y is not None:
        outcomes = y[mask]
        labelled = ~np.isnan(outcomes)
        bads = int(outcomes[labelled].sum())
        out.update(
            labelled=int(labelled.sum()),
            bads=bads,
            bad_rate=_number(bads / labelled.sum()) if labelled.any() else None,
        )
    return out


def portfolio_view(
    decisions: pd.DataFrame | pd.Series | npt.ArrayLike,
    limits: pd.DataFrame,
    grades: npt.ArrayLike,
    y: npt.ArrayLike | None = None,
) -> dict[str, Any]:
    """Approval and refer rates, bad rate among approved, limits by grade, exposure and expected loss.

    ``limits`` is the frame of :func:`suggested_limits`; ``y`` optional outcomes (0/1, null =
    unknown, left out of bad rates). Limit statistics by grade are over the rows that were not
    declined; exposure and expected loss are the sums of limits and expected losses of the
    approved rows, and of the referred ones should they all be approved. JSON-serialisable.
    """
    n = len(limits)
    decision = _decision_codes(decisions, n)
    grade = as_grades(grades)
    if len(grade) != n:
        raise ValueError(f"grades has {len(grade)} rows, expected {n}")
    outcomes = None if y is None else _outcomes(y, n)
    limit = limits["suggested_limit"].to_numpy(dtype=np.float64)
    expected_loss = limits["expected_loss"].to_numpy(dtype=np.float64)
    approved, referred, declined = (decision == DECISIONS.index(d) for d in (APPROVE, REFER, DECLINE))

    offered = pd.Series(limit[~declined]).groupby(grade[~declined])
    stats = pd.DataFrame({"mean": offered.mean(), "median": offered.median(), "p90": offered.quantile(0.9)})
    max_grade = int(grade.max()) if n else 0
    counts = np.bincount(grade * 3 + decision, minlength=3 * (max_grade + 1)).reshape(-1, 3)
    by_grade = []
    for g in np.unique(grade).tolist():
        has_stats = g in stats.index
        by_grade.append(
            {
                "grade": int(g),
                "count": int(counts[g].sum()),
                "approved": int(counts[g, DECISIONS.index(APPROVE)]),
                "referred": int(counts[g, DECISIONS.index(REFER)]),
                "declined": int(counts[g, DECISIONS.index(DECLINE)]),
                "limit_mean": _number(stats.at[g, "mean"]) if has_stats else None,
                "limit_median": _number(stats.at[g, "median"]) if has_stats else None,
                "limit_p90": _number(stats.at[g, "p90"]) if has_stats else None,
            }
        )

    reason_counts: dict[str, int] = {}
    if isinstance(decisions, pd.DataFrame) and "policy_reasons" in decisions.columns:
        # count each distinct reason string once, then split it: no per-row string work
        for joined, count in decisions["policy_reasons"].dropna().value_counts().items():
            for code in str(joined).split(REASON_SEPARATOR):
                if code:
                    reason_counts[code] = reason_counts.get(code, 0) + int(count)
        reason_counts = dict(sorted(reason_counts.items()))

    out: dict[str, Any] = {
        "n": n,
        "approval_rate": _number(approved.mean()) if n else None,
        "refer_rate": _number(referred.mean()) if n else None,
        "decline_rate": _number(declined.mean()) if n else None,
        "exposure": {"approved": float(limit[approved].sum()), "referred": float(limit[referred].sum())},
        "expected_loss": {
            "approved": float(expected_loss[approved].sum()),
            "referred": float(expected_loss[referred].sum()),
        },
        "reason_counts": reason_counts,
        "by_grade": by_grade,
    }
    if outcomes is not None:
        out["approved_outcomes"] = _cell(approved, outcomes)
        out["bad_rate_approved"] = out["approved_outcomes"]["bad_rate"]
    return out


def swap_set(
    pd_a: npt.ArrayLike, pd_b: npt.ArrayLike, y: npt.ArrayLike, approval_rate: float
) -> dict[str, Any]:
    """Swap-set analysis of two models at the same approval rate.

    Each model approves the ``round(approval_rate * n)`` rows with its lowest PDs (ties broken by
    row order, so both approve exactly that many). Returns counts and, among rows with a known
    outcome, bads and bad rates of: ``both_approve``, ``only_a`` (A's swap-ins, B's swap-outs),
    ``only_b``, ``both_decline``, and of everything each model approves (``a_approves``,
    ``b_approves``). JSON-serialisable.
    """
    if not 0.0 <= approval_rate <= 1.0:
        raise ValueError(f"approval_rate: got {approval_rate}, expected a share between 0 and 1")
    a = np.asarray(pd_a, dtype=np.float64).ravel()
    n = len(a)
    a = _pd_values(a, n, name="pd_a")
    b = _pd_values(pd_b, n, name="pd_b")
    outcomes = _outcomes(y, n)
    k = round(approval_rate * n)

    def approves(values: FloatArray) -> BoolArray:
        mask = np.zeros(n, dtype=bool)
        mask[np.argsort(values, kind="stable")[:k]] = True
        return mask

    in_a, in_b = approves(a), approves(b)
    return {
        "n": n,
        "approval_rate": approval_rate,
        "n_approved": k,
        "both_approve": _cell(in_a & in_b, outcomes),
        "only_a": _cell(in_a & ~in_b, outcomes),
        "only_b": _cell(~in_a & in_b, outcomes),
        "both_decline": _cell(~in_a & ~in_b, outcomes),
        "a_approves": _cell(in_a, outcomes),
        "b_approves": _cell(in_b, outcomes),
    }
