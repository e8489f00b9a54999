"""Credit policy: knock-out rules that decline with reason codes, and grade cut-offs.

Every threshold lives in :class:`PolicySettings` (the ``policy:`` section of params.yaml); the
defaults start from the market rules of the data contract (the loan-share caps and maximum
terms of China's 2018 auto-finance rules). Nothing here loops over rows.

Knock-out reason codes (:data:`KNOCK_OUT_CODES`, in the order they are joined with ``;``):

=================  ==================================================================
KO_DATA_MISSING    a field a rule needs is null, not a number, or a category level
                   outside the data contract (see "Missing values" below)
KO_AGE_MIN         age < ``min_age``
KO_AGE_MAX         age > ``max_age_at_application``
KO_AGE_MATURITY    age + term_months / 12 > ``max_age_at_maturity``
KO_INCOME_MIN      monthly_income < ``min_monthly_income``
KO_INCOME_PROOF    employment_type in ``income_proof_required_for`` (default: self_employed)
                   and income_verified is not true
KO_LTV_MAX         loan share of the vehicle price above the market cap of
                   :func:`max_ltv_for` (the share is (vehicle_price - down_payment) /
                   vehicle_price by default, or loan_amount / vehicle_price)
KO_TERM_MAX        term_months above ``max_term_months_new`` (new cars) or
                   ``max_term_months_used`` (used cars)
KO_DPD_SEVERE      max_dpd_24m >= ``severe_dpd_days`` (severe recent delinquency)
KO_DELINQ_COUNT    delinquencies_24m > ``max_delinquencies_24m``
=================  ==================================================================

Missing values (one documented rule):

* A *column* a rule needs that is absent from the frame is an error (ValueError naming it):
  a policy never silently skips a rule. A dataset that lacks some of the contract's columns
  (a bring-your-own file) runs the rules its columns support: :func:`knock_out_scope` says
  which are in force and which are switched off for want of which columns, the caller passes
  the first to :func:`knock_out_codes` and reports the second.
* Two fields have a meaning when null, so a null never declines on its own:
  ``income_verified`` null means no proof was supplied (counts as not verified), and the
  bureau fields ``delinquencies_24m`` / ``max_dpd_24m`` null mean no bureau record (a thin
  file), which is not evidence of delinquency: their rules do not fire (thin-file risk is
  left to the score).
* Every other field a rule reads is required: a null, a non-numeric value or a category
  level outside the contract (which the validation gate only warns about and scores as
  missing) adds ``KO_DATA_MISSING``, and the rules that need that field do not fire.
* :func:`max_ltv_for` gives a row whose vehicle condition, segment or use is missing or
  unknown the lowest cap among the products it could be (conservative).

Decisions (:func:`decide`): any knock-out declines with its codes; otherwise grade <=
``approve_max_grade`` approves, grade <= ``refer_max_grade`` goes to a human (``GRADE_REFER``),
and worse grades decline (``GRADE_DECLINE``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scoring.core.contract import EMPLOYMENT_TYPES, VEHICLE_CONDITIONS, VEHICLE_SEGMENTS, VEHICLE_USES

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

KO_DATA_MISSING = "KO_DATA_MISSING"
KO_AGE_MIN = "KO_AGE_MIN"
KO_AGE_MAX = "KO_AGE_MAX"
KO_AGE_MATURITY = "KO_AGE_MATURITY"
KO_INCOME_MIN = "KO_INCOME_MIN"
KO_INCOME_PROOF = "KO_INCOME_PROOF"
KO_LTV_MAX = "KO_LTV_MAX"
KO_TERM_MAX = "KO_TERM_MAX"
KO_DPD_SEVERE = "KO_DPD_SEVERE"
KO_DELINQ_COUNT = "KO_DELINQ_COUNT"

KNOCK_OUT_CODES: tuple[str, ...] = (
    KO_DATA_MISSING,
    KO_AGE_MIN,
    KO_AGE_MAX,
    KO_AGE_MATURITY,
    KO_INCOME_MIN,
    KO_INCOME_PROOF,
    KO_LTV_MAX,
    KO_TERM_MAX,
    KO_DPD_SEVERE,
    KO_DELINQ_COUNT,
)
"""Every knock-out reason code, in the order in which a row's codes are joined."""

GRADE_REFER = "GRADE_REFER"
GRADE_DECLINE = "GRADE_DECLINE"

APPROVE = "approve"
REFER = "refer"
DECLINE = "decline"
DECISIONS: tuple[str, ...] = (APPROVE, REFER, DECLINE)

REASON_SEPARATOR = ";"

# A loan share equal to its cap must pass although 0.8 * price is not exact in binary.
_LTV_TOLERANCE = 1e-9

Share = Annotated[float, Field(gt=0.0, le=1.0)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MarketLtvCaps(_Settings):
    """Maximum loan as a share of the vehicle price, by product (the market rules)."""

    private_conventional: Share = Field(0.80, description="new private car, conventional fuel")
    commercial_conventional: Share = Field(0.70, description="new commercial vehicle, conventional fuel")
    private_new_energy: Share = Field(0.85, description="new private new-energy vehicle")
    commercial_new_energy: Share = Field(0.75, description="new commercial new-energy vehicle")
    used: Share = Field(0.70, description="any used car")
    new_energy_segments: tuple[str, ...] = Field(
        ("electric",), description="vehicle_segment levels that count as new-energy"
    )

    @field_validator("new_energy_segments")
    @classmethod
    def _known_segments(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(VEHICLE_SEGMENTS))
        if unknown:
            raise ValueError(f"got segments {unknown}, expected levels of {list(VEHICLE_SEGMENTS)}")
        return value


class KnockOutSettings(_Settings):
    """Thresholds of the knock-out rules; see the module docstring for each code."""

    min_age: int = Field(18, ge=0, description="KO_AGE_MIN below this age at application")
    max_age_at_application: int = Field(65, gt=0, description="KO_AGE_MAX above this age")
    max_age_at_maturity: int = Field(
        70, gt=0, description="KO_AGE_MATURITY when age + term_months / 12 exceeds this"
    )
    min_monthly_income: float = Field(3_000.0, ge=0.0, description="KO_INCOME_MIN below this")
    income_proof_required_for: tuple[str, ...] = Field(
        ("self_employed",),
        description="employment types declined (KO_INCOME_PROOF) unless income_verified is true",
    )
    max_ltv: MarketLtvCaps = MarketLtvCaps()
    ltv_basis: Literal["price_less_down_payment", "loan_amount"] = Field(
        "price_less_down_payment",
        description="loan share for KO_LTV_MAX: (price - down payment) / price as the market rule "
        "defines it (financed fees excluded), or loan_amount / price",
    )
    max_term_months_new: int = Field(60, ge=1, description="KO_TERM_MAX above this term for new cars")
    max_term_months_used: int = Field(36, ge=1, description="KO_TERM_MAX above this term for used cars")
    severe_dpd_days: int = Field(90, ge=1, description="KO_DPD_SEVERE when max_dpd_24m reaches this")
    max_delinquencies_24m: int = Field(
        3, ge=0, description="KO_DELINQ_COUNT when delinquencies_24m exceeds this"
    )

    @field_validator("income_proof_required_for")
    @classmethod
    def _known_employment(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(EMPLOYMENT_TYPES))
        if unknown:
            raise ValueError(f"got employment types {unknown}, expected levels of {list(EMPLOYMENT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _ages_ordered(self) -> Self:
        if not self.min_age <= self.max_age_at_application <= self.max_age_at_maturity:
            raise ValueError(
                "expected min_age <= max_age_at_application <= max_age_at_maturity, got "
                f"{self.min_age}, {self.max_age_at_application}, {self.max_age_at_maturity}"
            )
        return self


class DecisionSettings(_Settings):
    """Grade cut-offs: approve up to ``approve_max_grade``, refer up to ``refer_max_grade``, else decline."""

    approve_max_grade: int = Field(6, ge=0, description="grades 1..this are approved (0: none)")
    refer_max_grade: int = Field(
        8, ge=0, description="grades above approve_max_grade up to this go to a human"
    )

    @model_validator(mode="after")
    def _cut_offs_ordered(self) -> Self:
        if self.refer_max_grade < self.approve_max_grade:
            raise ValueError(
                f"refer_max_grade ({self.refer_max_grade}) must not be below "
                f"approve_max_grade ({self.approve_max_grade})"
            )
        return self


class PolicySettings(_Settings):
    """The ``policy:`` section of params.yaml."""

    knock_outs: KnockOutSettings = KnockOutSettings()
    decisions: DecisionSettings = DecisionSettings()


# --------------------------------------------------------------------------- column access


Table = pd.DataFrame | Mapping[str, npt.NDArray[Any]]
"""Applications: a DataFrame, or columns by name as NumPy arrays (the scorer's path: numbers as
float64, booleans as float64 0/1/NaN or bool, categories as object arrays)."""


def n_rows(applications: Table) -> int:
    """The number of applications in a :data:`Table`."""
    if isinstance(applications, pd.DataFrame):
        return len(applications)
    return len(next(iter(applications.values()))) if applications else 0


def _require(applications: Table, columns: tuple[str, ...], what: str) -> None:
    present = applications.columns if isinstance(applications, pd.DataFrame) else applications
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"{what}: missing columns {missing} (expected the data contract's columns)")


def numeric_column(applications: Table, column: str) -> FloatArray:
    """A column of a :data:`Table` as float64; nulls and non-numeric values become NaN.

    A float64 NumPy column (the scorer's path) is returned as is, without a copy. Used by the
    policy's and the limits' (:mod:`scoring.decision.limits`) rules to read numeric inputs.
    """
    raw = applications[column]
    if isinstance(raw, np.ndarray):
        if raw.dtype == np.float64:
            return raw
        raw = pd.Series(raw)
    values = pd.to_numeric(raw, errors="coerce")
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def level_codes(values: pd.Series | npt.ArrayLike, levels: tuple[str, ...]) -> IntArray:
    """Position of each value in ``levels``; -1 for nulls and values outside ``levels``.

    Hash-based (one factorize, then a lookup per distinct value), so fast on a million rows
    and on one.
    """
    data = values if isinstance(values, pd.Series) else np.asarray(values, dtype=object).ravel()
    codes, uniques = pd.factorize(data)
    position = {level: i for i, level in enumerate(levels)}
    lookup = np.array(
        [position.get(u, -1) if isinstance(u, str) else -1 for u in uniques] + [-1], dtype=np.int64
    )
    # factorize marks nulls with -1, which indexes the trailing -1 of the lookup
    return np.asarray(lookup[codes], dtype=np.int64)


def _level(applications: Table, column: str, levels: tuple[str, ...]) -> IntArray:
    return level_codes(applications[column], levels)


def _is_true(applications: Table, column: str) -> BoolArray:
    """True only where the value is true; null counts as false, values that are not booleans raise."""
    raw = applications[column]
    if isinstance(raw, np.ndarray):
        if raw.dtype == np.bool_:
            return raw
        if raw.dtype == np.float64 and ((raw == 0.0) | (raw == 1.0) | np.isnan(raw)).all():
            return np.asarray(raw == 1.0, dtype=bool)  # 0/1/NaN, as the boolean conversion reads them
        raw = pd.Series(raw)
    series = raw
    if series.dtype == np.bool_:
        return np.asarray(series.to_numpy(dtype=bool), dtype=bool)
    try:
        flags = series.astype("boolean")
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{column}: expected booleans (true/false/null), got {series.dtype}: {exc}"
        ) from None
    return np.asarray(flags.to_numpy(dtype=bool, na_value=False), dtype=bool)


def _joined_codes(flags: list[tuple[str, BoolArray]], n: int) -> npt.NDArray[np.object_]:
    """';'-joined codes per row; builds one string per distinct combination, not per row."""
    bits = np.zeros(n, dtype=np.int64)
    for position, (_, mask) in enumerate(flags):
        bits |= mask.astype(np.int64) << position
    combos, inverse = np.unique(bits, return_inverse=True)
    labels = np.array(
        [
            REASON_SEPARATOR.join(code for position, (code, _) in enumerate(flags) if (combo >> position) & 1)
            for combo in combos.tolist()
        ],
        dtype=object,
    )
    return np.asarray(labels[inverse.reshape(-1)], dtype=object)


def _knock_out_settings(settings: PolicySettings | KnockOutSettings) -> KnockOutSettings:
    return settings.knock_outs if isinstance(settings, PolicySettings) else settings


# --------------------------------------------------------------------------- market caps

PRODUCT_COLUMNS: tuple[str, ...] = ("vehicle_condition", "vehicle_segment", "vehicle_use")
"""The columns that name the product (new or used, segment, use): they set the market LTV cap."""


def max_ltv_for(applications: Table, settings: PolicySettings | KnockOutSettings) -> FloatArray:
    """The market's maximum loan share of the vehicle price for each row.

    Used cars get ``used``; new cars get the private/commercial, conventional/new-energy cap.
    A missing or unknown condition, segment or use gives the lowest cap among the products the
    row could be, so an incomplete record never gets a looser cap.
    """
    _require(applications, PRODUCT_COLUMNS, "max_ltv_for")
    caps = _knock_out_settings(settings).max_ltv
    condition = _level(applications, "vehicle_condition", VEHICLE_CONDITIONS)
    segment = _level(applications, "vehicle_segment", VEHICLE_SEGMENTS)
    use = _level(applications, "vehicle_use", VEHICLE_USES)

    used, new = VEHICLE_CONDITIONS.index("used"), VEHICLE_CONDITIONS.index("new")
    condition_missing, segment_missing, use_missing = condition < 0, segment < 0, use < 0
    new_energy = np.isin(segment, [VEHICLE_SEGMENTS.index(s) for s in caps.new_energy_segments])

    out = np.where((condition == used) | condition_missing, caps.used, np.inf)
    could_be_new = (condition == new) | condition_missing
    products = (
        ("private", False, caps.private_conventional),
        ("commercial", False, caps.commercial_conventional),
        ("private", True, caps.private_new_energy),
        ("commercial", True, caps.commercial_new_energy),
    )
    for use_level, is_new_energy, cap in products:
        possible = (
            could_be_new
            & ((use == VEHICLE_USES.index(use_level)) | use_missing)
            & ((new_energy == is_new_energy) | segment_missing)
        )
        out = np.where(possible, np.minimum(out, cap), out)
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- knock-outs


def knock_out_reasons(
    applications: pd.DataFrame,
    settings: PolicySettings | KnockOutSettings,
    rules: Collection[str] | None = None,
) -> pd.Series:
    """Knock-out reason codes per application: '' when none fires, else codes joined with ';'.

    The result is a string Series on the applications' index, named ``knock_out_reasons``.
    See the module docstring for the codes and for how missing values are handled; ``rules``
    as in :func:`knock_out_codes`.
    """
    return pd.Series(
        knock_out_codes(applications, settings, rules=rules),
        index=applications.index,
        dtype=str,
        name="knock_out_reasons",
    )


def knock_out_rule_columns(settings: PolicySettings | KnockOutSettings) -> dict[str, tuple[str, ...]]:
    """The columns each knock-out rule reads (``KO_DATA_MISSING`` aside), in code order."""
    ko = _knock_out_settings(settings)
    loan_column = "down_payment" if ko.ltv_basis == "price_less_down_payment" else "loan_amount"
    return {
        KO_AGE_MIN: ("age",),
        KO_AGE_MAX: ("age",),
        KO_AGE_MATURITY: ("age", "term_months"),
        KO_INCOME_MIN: ("monthly_income",),
        KO_INCOME_PROOF: ("employment_type", "income_verified"),
        KO_LTV_MAX: ("vehicle_price", loan_column, *PRODUCT_COLUMNS),
        KO_TERM_MAX: ("term_months", "vehicle_condition"),
        KO_DPD_SEVERE: ("max_dpd_24m",),
        KO_DELINQ_COUNT: ("delinquencies_24m",),
    }


def knock_out_scope(
    columns: Collection[str], settings: PolicySettings | KnockOutSettings
) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(rules in force, {rule switched off: the columns it lacks}) for data with ``columns``.

    A dataset without some of the data contract's columns (a bring-your-own file) cannot run
    the rules that read them: they are switched off, never silently skipped, and the caller
    reports the second element. ``KO_DATA_MISSING`` is in force whenever another rule is.
    """
    present = set(columns)
    in_force: list[str] = []
    off: dict[str, tuple[str, ...]] = {}
    for code, needs in knock_out_rule_columns(settings).items():
        lacking = tuple(c for c in needs if c not in present)
        if lacking:
            off[code] = lacking
        else:
            in_force.append(code)
    if in_force:
        in_force.insert(0, KO_DATA_MISSING)
    return tuple(in_force), off


# Fields whose null adds KO_DATA_MISSING (see the module docstring): every rule input except the
# three whose null has a meaning of its own.
_NULL_MEANS_NOTHING = frozenset({"income_verified", "max_dpd_24m", "delinquencies_24m"})


def knock_out_codes(
    applications: Table,
    settings: PolicySettings | KnockOutSettings,
    market_ltv: FloatArray | None = None,
    rules: Collection[str] | None = None,
) -> npt.NDArray[np.object_]:
    """:func:`knock_out_reasons` as an object array of text, for a DataFrame or arrays by column.

    ``market_ltv``: :func:`max_ltv_for` of the same rows when the caller has it already.
    ``rules``: the codes in force (:func:`knock_out_scope`); ``None`` = every rule. The
    columns of the rules in force are required (a ValueError names the absent ones).
    """
    ko = _knock_out_settings(settings)
    rule_columns = knock_out_rule_columns(ko)
    active = set(KNOCK_OUT_CODES) if rules is None else set(rules)
    unknown = sorted(active - set(KNOCK_OUT_CODES))
    if unknown:
        raise ValueError(
            f"knock_out_codes: rules {unknown} are not knock-out codes; expected {KNOCK_OUT_CODES}"
        )
    needed = tuple(dict.fromkeys(c for code, cols in rule_columns.items() if code in active for c in cols))
    _require(applications, needed, "knock_out_reasons")
    n = n_rows(applications)
    loan_column = rule_columns[KO_LTV_MAX][1]
    levels = {
        "employment_type": EMPLOYMENT_TYPES,
        "vehicle_condition": VEHICLE_CONDITIONS,
        "vehicle_segment": VEHICLE_SEGMENTS,
        "vehicle_use": VEHICLE_USES,
    }

    def numeric(column: str) -> FloatArray:
        return numeric_column(applications, column) if column in needed else np.full(n, np.nan)

    def level(column: str) -> IntArray:
        return _level(applications, column, levels[column]) if column in needed else np.full(n, -1)

    age, term, income = numeric("age"), numeric("term_months"), numeric("monthly_income")
    price, loan_input = numeric("vehicle_price"), numeric(loan_column)
    employment, condition = level("employment_type"), level("vehicle_condition")
    segment, use = level("vehicle_segment"), level("vehicle_use")
    verified = _is_true(applications, "income_verified") if "income_verified" in needed else np.zeros(n, bool)
    dpd, delinquencies = numeric("max_dpd_24m"), numeric("delinquencies_24m")

    values: dict[str, FloatArray | IntArray] = {
        "age": age,
        "term_months": term,
        "monthly_income": income,
        "vehicle_price": price,
        loan_column: loan_input,
        "employment_type": employment,
        "vehicle_condition": condition,
        "vehicle_segment": segment,
        "vehicle_use": use,
    }
    missing = np.zeros(n, dtype=bool)
    for column in needed:
        if column in _NULL_MEANS_NOTHING:
            continue
        column_values = values[column]
        missing |= np.isnan(column_values) if column_values.dtype.kind == "f" else column_values < 0

    loan = price - loan_input if loan_column == "down_payment" else loan_input
    with np.errstate(divide="ignore", invalid="ignore"):
        # a non-positive price makes any loan an infinite share (it fails the cap); NaN stays NaN
        share = np.where(price > 0, loan / price, np.where(np.isnan(price), np.nan, np.inf))
    if KO_LTV_MAX not in active:
        market_cap: FloatArray = np.full(n, np.inf)
    else:
        market_cap = max_ltv_for(applications, ko) if market_ltv is None else market_ltv
    product_known = (condition >= 0) & (segment >= 0) & (use >= 0)
    max_term = np.where(
        condition == VEHICLE_CONDITIONS.index("used"), ko.max_term_months_used, ko.max_term_months_new
    )

    # comparisons with NaN are false, so a rule never fires on a missing input (KO_DATA_MISSING does)
    with np.errstate(invalid="ignore"):
        flags: list[tuple[str, BoolArray]] = [
            (KO_DATA_MISSING, missing),
            (KO_AGE_MIN, age < ko.min_age),
            (KO_AGE_MAX, age > ko.max_age_at_application),
            (KO_AGE_MATURITY, age + term / 12.0 > ko.max_age_at_maturity),
            (KO_INCOME_MIN, income < ko.min_monthly_income),
            (
                KO_INCOME_PROOF,
                np.isin(employment, [EMPLOYMENT_TYPES.index(e) for e in ko.income_proof_required_for])
                & ~verified,
            ),
            (KO_LTV_MAX, product_known & (share > market_cap + _LTV_TOLERANCE)),
            (KO_TERM_MAX, (condition >= 0) & (term > max_term)),
            (KO_DPD_SEVERE, dpd >= ko.severe_dpd_days),
            (KO_DELINQ_COUNT, delinquencies > ko.max_delinquencies_24m),
        ]
    flags = [(code, np.asarray(mask, dtype=bool)) for code, mask in flags if code in active]
    return _joined_codes(flags, n)


# --------------------------------------------------------------------------- decisions


def as_grades(grades: npt.ArrayLike, n_grades: int | None = None) -> IntArray:
    """Grades as int64, checked: whole numbers from 1 (to ``n_grades`` when given)."""
    raw = np.asarray(grades).ravel()
    upper = np.inf if n_grades is None else n_grades
    if raw.dtype.kind in "iu" and ((raw >= 1) & (raw <= upper)).all():
        return raw.astype(np.int64)  # integers in range: what the checks below would accept
    values = np.asarray(pd.to_numeric(pd.Series(raw), errors="coerce"), dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 1) | (values > upper)
    if bad.any():
        found = sorted({str(v) for v in np.asarray(grades).ravel()[bad][:5]})
        expected = "whole numbers >= 1" if n_grades is None else f"whole numbers 1..{n_grades}"
        raise ValueError(f"grades: {int(bad.sum())} values are not {expected} (e.g. {found})")
    return values.astype(np.int64)


def decide(
    grades: npt.ArrayLike, knock_outs: pd.Series, settings: PolicySettings | DecisionSettings
) -> pd.DataFrame:
    """Decision and policy reasons per application, on the knock-outs' index.

    Columns ``decision`` (approve / refer / decline) and ``policy_reasons``: the knock-out codes
    when any fired, else ``GRADE_REFER`` or ``GRADE_DECLINE`` by the grade cut-offs, else ''.
    """
    reasons = knock_outs.astype(str).where(knock_outs.notna(), "")
    decision, policy_reasons = decision_values(grades, reasons.to_numpy(dtype=object), settings)
    return pd.DataFrame(
        {
            "decision": pd.Series(decision, index=knock_outs.index, dtype=str),
            "policy_reasons": pd.Series(policy_reasons, index=knock_outs.index, dtype=str),
        },
        index=knock_outs.index,
    )


def decision_values(
    grades: npt.ArrayLike, knock_outs: npt.NDArray[np.object_], settings: PolicySettings | DecisionSettings
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """:func:`decide` as object arrays (decision, policy_reasons) from knock-out codes as text ('' none)."""
    cut = settings.decisions if isinstance(settings, PolicySettings) else settings
    grade = as_grades(grades)
    if len(grade) != len(knock_outs):
        raise ValueError(f"grades has {len(grade)} rows, knock_outs {len(knock_outs)}: expected the same")
    knocked_out = np.asarray(knock_outs != "", dtype=bool)
    # 0 approve, 1 refer, 2 decline (the order of DECISIONS)
    by_grade = np.where(grade <= cut.approve_max_grade, 0, np.where(grade <= cut.refer_max_grade, 1, 2))
    decision = np.where(knocked_out, 2, by_grade)
    grade_reasons = np.array(["", GRADE_REFER, GRADE_DECLINE], dtype=object)[by_grade]
    return (
        np.asarray(np.array(DECISIONS, dtype=object)[decision], dtype=object),
        np.asarray(np.where(knocked_out, knock_outs, grade_reasons), dtype=object),
    )
