"""The gate of the monthly performance history: its own rules, reason codes and reconciliation.

The application gate (:mod:`scoring.data.validation`) runs great-expectations suites, whose
expectations look at one row or one column at a time. Nearly every rule of a history is about a
loan's sequence of months (a month without its predecessor, a bucket that skips, a balance that
rises, a row after the loan ended), which no great-expectations expectation expresses; so the
history gate is one vectorised pass in pandas over rows sorted by loan and month, at about the
cost of a sort (see benchmarks/bench_monitoring.py).

A loan with any failing month is quarantined whole (a path with a hole cannot be rolled forward):
its failing rows carry their own reason codes, its other rows ``other_month_of_loan_quarantined``.
Missing or unusable columns stop the stage with an error naming them. Every input row ends up
passed or quarantined; the summary reconciles rows and loans.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import (
    BUCKETS,
    LOAN_STATUSES,
    PERFORMANCE_COLUMNS,
    TERMINAL_STATUSES,
    bucket_of_dpd,
)
from scoring.core.frames import level_codes, member_mask
from scoring.core.refusals import CodedError
from scoring.data.config import HistoryGateConfig

logger = logging.getLogger(__name__)

QUARANTINE_REASONS = "quarantine_reasons"
LOAN_QUARANTINED = "other_month_of_loan_quarantined"
MAX_EXAMPLES = 5
NUMERIC_COLUMNS = (
    "months_on_book",
    "scheduled_payment",
    "amount_paid",
    "outstanding_principal",
    "days_past_due",
)
"""The columns read as numbers: each has a ``_not_a_number`` and an ``_out_of_range`` rule."""
_WRITTEN_OFF = BUCKETS.index("written_off")

RULES: dict[str, str] = {
    "missing_value": "{column}_missing: a required value is empty",
    "not_a_number": "{column}_not_a_number: expected a number",
    "not_a_date": "as_of_month_not_a_date: expected a date (the month of the record)",
    "out_of_range": "{column}_out_of_range: outside the contract's bounds",
    "bucket_not_allowed": f"bucket_not_allowed: expected one of {list(BUCKETS)}",
    "status_not_allowed": f"status_not_allowed: expected one of {list(LOAN_STATUSES)}",
    "bucket_does_not_match_dpd": (
        "bucket_does_not_match_dpd: current 0, M1 1-30, M2 31-60, M3 61-90, M4+ over 90 days past due"
    ),
    "duplicate_loan_month": "duplicate_loan_month: one row per loan and month",
    "months_on_book_inconsistent": (
        "months_on_book_inconsistent: as_of_month - months_on_book is one month per loan"
    ),
    "month_gap": "month_gap: each month after a loan's first follows the month before it",
    "bucket_skip": "bucket_skip: a bucket rises at most one step a month (and starts at current or M1)",
    "balance_rise": "balance_rise: outstanding principal rises only by the month's unpaid amount",
    "paid_more_than_owed": "paid_more_than_owed: at most the opening balance plus the instalments due",
    "row_after_loan_ended": (
        "row_after_loan_ended: no month after prepaid, closed, written off or repossessed"
    ),
    "loan_not_in_applications": "loan_not_in_applications: every loan_id is an application id",
    "application_quarantined": "application_quarantined: the loan's application was held back by the gate",
}
"""Rule -> its description, which starts with its reason code (``{column}`` where one per column)."""
RULE_COLUMNS: dict[str, tuple[str, ...]] = {
    "missing_value": tuple(c.name for c in PERFORMANCE_COLUMNS),
    "not_a_number": NUMERIC_COLUMNS,
    "out_of_range": NUMERIC_COLUMNS,
}
"""The columns of each per-column rule of :data:`RULES`."""


def _rule_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for rule, text in RULES.items():
        code = text.split(":", 1)[0]
        if ("{column}" in code) != (rule in RULE_COLUMNS):
            raise AssertionError(
                f"history gate rule {rule!r}: {{column}} in its code {code!r} without columns"
            )
        for column in RULE_COLUMNS.get(rule, ("",)):
            codes[code.replace("{column}", column)] = rule
    return codes


RULE_CODES: dict[str, str] = _rule_codes()
"""Every reason code the gate gives -> its rule in :data:`RULES`; the gate gives no other."""


STOPS: dict[str, str] = {
    "columns_missing": "the file lacks columns of the contract",
    "quarantine_share_exceeded": (
        "more rows would be quarantined than validate.performance.max_quarantine_share allows"
    ),
}
"""The ways the gate stops instead of quarantining (:class:`HistoryInputError`'s codes)."""


class HistoryInputError(CodedError):
    """The history file cannot be checked at all (missing columns), or looks broken (too many
    rows would be quarantined); ``code``: one of :data:`STOPS`."""

    CODES = STOPS


@dataclass
class HistoryGateResult:
    passed: pd.DataFrame
    quarantine: pd.DataFrame
    summary: dict[str, Any]


def _text(value: Any) -> Any:
    """A cell as text; missing stays missing."""
    return value if pd.isna(value) or isinstance(value, str) else str(value)


def _typed(history: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """The columns parsed to their contract types, and a mask per parse failure."""
    missing = [c.name for c in PERFORMANCE_COLUMNS if c.name not in history.columns]
    if missing:
        raise HistoryInputError(
            f"performance history: missing columns {missing}; expected the columns "
            f"{[c.name for c in PERFORMANCE_COLUMNS]} (found {list(history.columns)[:20]})",
            "columns_missing",
        )
    frame = history.reset_index(drop=True)
    typed = pd.DataFrame(index=frame.index)
    failures: dict[str, np.ndarray] = {}
    for column in NUMERIC_COLUMNS:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce") if raw.dtype == object else raw
        if pd.api.types.is_bool_dtype(values.dtype) or not pd.api.types.is_numeric_dtype(values.dtype):
            values = pd.to_numeric(raw.astype(object).where(raw.notna()), errors="coerce")
        number = values.astype("float64")
        failures[f"{column}_not_a_number"] = (number.isna() & raw.notna()).to_numpy()
        typed[column] = number
    raw_month = frame["as_of_month"]
    month = pd.to_datetime(raw_month, errors="coerce")
    failures["as_of_month_not_a_date"] = (month.isna() & raw_month.notna()).to_numpy()
    typed["as_of_month"] = month
    for column in ("loan_id", "bucket", "status"):
        values = frame[column]
        if values.dtype == object or not pd.api.types.is_string_dtype(values.dtype):
            values = values.map(_text).astype("str")
        typed[column] = values
    return typed, failures


def _known(code: str) -> None:
    """Every reason code is one of :data:`RULE_CODES`, checked whether or not a row breaks it."""
    if code not in RULE_CODES:
        raise AssertionError(
            f"history gate: reason code {code!r} is not in RULE_CODES (add its rule to RULES)"
        )


def _examples(typed: pd.DataFrame, mask: np.ndarray, column: str | None) -> list[str]:
    rows = typed.loc[mask].head(MAX_EXAMPLES)
    out = []
    for _, row in rows.iterrows():
        month = row["as_of_month"]
        where = f"{row['loan_id']} {month:%Y-%m}" if pd.notna(month) else f"{row['loan_id']}"
        out.append(f"{where}: {column}={row[column]!r}" if column else where)
    return out


def check_history(
    history: pd.DataFrame,
    application_ids: Iterable[str],
    passed_application_ids: Iterable[str] | None = None,
    loan_amounts: pd.Series | None = None,
    config: HistoryGateConfig | None = None,
) -> HistoryGateResult:
    """Check ``history`` against its rules and the applications; quarantine whole loans that fail.

    ``application_ids``: every application the file could refer to; ``passed_application_ids``:
    those the application gate let through (None = all); ``loan_amounts``: loan amount by
    application id, the opening balance of month on book 1 (None = not checked there).
    """
    config = config or HistoryGateConfig()
    typed, parse_failures = _typed(history)
    for code in parse_failures:
        _known(code)
    n = len(typed)
    flags: dict[str, np.ndarray] = {code: mask for code, mask in parse_failures.items() if mask.any()}
    columns: dict[str, str | None] = {code: code.rsplit("_not_", 1)[0] for code in flags}

    def add(code: str, mask: np.ndarray | pd.Series, column: str | None = None) -> None:
        _known(code)
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            flags[code] = flags.get(code, np.zeros(n, dtype=bool)) | mask
            columns.setdefault(code, column)

    for spec in PERFORMANCE_COLUMNS:
        add(f"{spec.name}_missing", history[spec.name].isna().to_numpy(), spec.name)
    for column in NUMERIC_COLUMNS:
        spec = next(c for c in PERFORMANCE_COLUMNS if c.name == column)
        values = typed[column].to_numpy()
        add(f"{column}_out_of_range", (values < spec.min) | (values > spec.max), column)  # NaN compares False
    bucket_codes = level_codes(typed["bucket"], BUCKETS)  # -1: not a bucket (or missing)
    add("bucket_not_allowed", typed["bucket"].notna().to_numpy() & (bucket_codes < 0), "bucket")
    add(
        "status_not_allowed",
        typed["status"].notna().to_numpy() & (level_codes(typed["status"], LOAN_STATUSES) < 0),
        "status",
    )
    dpd = typed["days_past_due"].to_numpy()
    known_dpd = ~np.isnan(dpd) & (dpd >= 0)
    expected_bucket = np.where(known_dpd, bucket_of_dpd(np.where(known_dpd, dpd, 0)), -1)
    rank = np.where(bucket_codes >= 0, bucket_codes, np.nan)
    add(
        "bucket_does_not_match_dpd",
        known_dpd & ~np.isnan(rank) & (rank < _WRITTEN_OFF) & (rank != expected_bucket),
        "bucket",
    )

    # sequence rules: rows sorted by loan and month, each compared with the row before it
    month_number = (typed["as_of_month"].dt.year * 12 + typed["as_of_month"].dt.month).to_numpy(
        dtype=np.float64
    )
    loan_codes, loan_names = pd.factorize(typed["loan_id"].fillna(""))
    order = np.lexsort((month_number, loan_codes))
    codes_s = loan_codes[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = codes_s[1:] == codes_s[:-1]
    first_of_loan = ~same

    def back(values: np.ndarray) -> np.ndarray:
        shifted = np.empty_like(values, dtype=np.float64)
        shifted[:1] = np.nan
        shifted[1:] = values[:-1]
        return np.where(same, shifted, np.nan)

    def unsort(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        out[order] = mask
        return out

    month_s = month_number[order]
    month_prev = back(month_s)
    duplicated = same & (month_s == month_prev)
    duplicated[:-1] |= duplicated[1:]
    add("duplicate_loan_month", unsort(duplicated))
    add("month_gap", unsort(same & (month_s - month_prev > 1)))
    mob_s = typed["months_on_book"].to_numpy()[order]
    origin = month_s - mob_s
    loan_start = np.maximum.accumulate(np.where(first_of_loan, np.arange(n), 0))
    add(
        "months_on_book_inconsistent",
        unsort(~np.isnan(origin) & (origin != origin[loan_start]) & ~np.isnan(origin[loan_start])),
        "months_on_book",
    )
    rank_s = rank[order]
    rank_prev = back(rank_s)
    skip = (same & (rank_s - rank_prev > 1)) | (first_of_loan & (mob_s == 1) & (rank_s > 1))
    add("bucket_skip", unsort(skip), "bucket")
    balance = typed["outstanding_principal"].to_numpy()[order]
    scheduled = typed["scheduled_payment"].to_numpy()[order]
    paid = typed["amount_paid"].to_numpy()[order]
    opening = back(balance)
    unpaid = np.maximum(np.nan_to_num(scheduled) - np.nan_to_num(paid), 0.0)
    add("balance_rise", unsort(balance > opening + unpaid + config.amount_tolerance), "outstanding_principal")
    if loan_amounts is not None:
        amounts = pd.Series(loan_amounts.to_numpy(dtype=np.float64), index=loan_amounts.index.astype(str))
        first_opening = amounts.reindex(loan_names).to_numpy()[codes_s]
        opening = np.where(first_of_loan & (mob_s == 1), first_opening, opening)
    missed_before = np.ceil(np.maximum(back(dpd[order]), 0.0) / 30.0)
    missed_before = np.where(first_of_loan, 0.0, missed_before)
    # the largest instalment so far bounds each overdue one (equal principal falls; after the
    # term nothing new is scheduled but the arrears are still owed)
    largest = pd.Series(np.nan_to_num(scheduled)).groupby(codes_s).cummax().to_numpy()
    owed = opening + largest * (1.0 + missed_before)
    add("paid_more_than_owed", unsort(paid > owed + config.amount_tolerance), "amount_paid")
    ended = member_mask(typed["status"], TERMINAL_STATUSES)[order].astype(np.float64)
    # terminal rows earlier in the same loan: the running count less the count where the loan began
    terminal_so_far = np.cumsum(ended)
    loan_base = (terminal_so_far - ended)[loan_start]
    add("row_after_loan_ended", unsort((terminal_so_far - ended - loan_base) > 0), "status")

    # membership per distinct loan, then spread to its rows
    known_loan = member_mask(loan_names, application_ids)
    in_applications = known_loan[loan_codes] & typed["loan_id"].notna().to_numpy()
    add("loan_not_in_applications", typed["loan_id"].notna().to_numpy() & ~in_applications, "loan_id")
    if passed_application_ids is not None:
        passed_loan = member_mask(loan_names, passed_application_ids)
        add("application_quarantined", in_applications & ~passed_loan[loan_codes], "loan_id")

    return _gate(history.reset_index(drop=True), typed, flags, columns, config)


def _gate(
    frame: pd.DataFrame,
    typed: pd.DataFrame,
    flags: dict[str, np.ndarray],
    columns: dict[str, str | None],
    config: HistoryGateConfig,
) -> HistoryGateResult:
    n = len(frame)
    codes = sorted(flags)
    failing = np.zeros(n, dtype=bool)
    for code in codes:
        failing |= flags[code]
    loans, _ = pd.factorize(typed["loan_id"].fillna("<missing>"))
    bad = np.zeros(loans.max(initial=-1) + 1, dtype=bool)
    bad[loans[failing]] = True
    held = bad[loans]
    share = held.sum() / n if n else 0.0
    by_reason = {code: int(flags[code].sum()) for code in codes}
    examples = {code: _examples(typed, flags[code], columns.get(code)) for code in codes}
    if share > config.max_quarantine_share:
        top = sorted(by_reason.items(), key=lambda kv: -kv[1])[:5]
        detail = "; ".join(
            f"{code} ({count} rows, e.g. {', '.join(examples[code][:2])})" for code, count in top
        )
        raise HistoryInputError(
            f"performance history: {int(held.sum())} of {n} rows ({share:.1%}) would be quarantined, "
            f"expected at most {config.max_quarantine_share:.0%} "
            f"(validate.performance.max_quarantine_share): the file looks broken. "
            f"Most frequent reasons: {detail}",
            "quarantine_share_exceeded",
        )
    reasons = np.full(n, "", dtype=object)
    for code in codes:
        reasons[flags[code]] = np.where(reasons[flags[code]] == "", code, reasons[flags[code]] + ";" + code)
    reasons[held & (reasons == "")] = LOAN_QUARANTINED
    quarantine = frame.loc[held].copy()
    quarantine[QUARANTINE_REASONS] = reasons[held]
    passed = frame.loc[~held].reset_index(drop=True)
    summary: dict[str, Any] = {
        "n_input": n,
        "n_passed": len(passed),
        "n_quarantined": int(held.sum()),
        "n_loans_input": len(bad),
        "n_loans_passed": int(np.unique(loans[~held]).size),
        "n_loans_quarantined": int(bad.sum()),
        "quarantine_by_reason": by_reason,
        "rows_held_with_their_loan": int((held & ~failing).sum()),
        "examples": examples,
        "rules": RULES,
    }
    if summary["n_passed"] + summary["n_quarantined"] != n or (
        summary["n_loans_passed"] + summary["n_loans_quarantined"] != summary["n_loans_input"]
    ):
        raise AssertionError(f"history gate lost rows or loans: {summary}")
    logger.info(
        "history gate: %d rows passed, %d quarantined (%d loans) of %d",
        len(passed),
        summary["n_quarantined"],
        int(bad.sum()),
        n,
    )
    return HistoryGateResult(passed=passed, quarantine=quarantine.reset_index(drop=True), summary=summary)
