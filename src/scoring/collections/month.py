"""One month's collections queue from a raw performance history: what ``scoring collect`` runs.

The history goes through its gate first (:func:`scoring.data.history_gate.check_history`): a
loan with a broken month (a negative balance, an unknown bucket, a gap, a row after the loan
ended, a loan that is no application, ...) is held back whole, with its reason codes. The
accounts of the month (every loan with a row in it, or the accounts a caller lists) then end up
in exactly one place:

==================  =====================================================================
queued              delinquent and on book (M1..M3, status active): scored and ranked
not_delinquent      current this month: nothing to collect
past_queue          at M4+, written off, or closed / prepaid / repossessed: recovery's business
quarantined         the loan was held back by the history's gate (its reason codes)
rejected            its row failed the behaviour score's own checks (field, value, expectation)
not_in_history      listed by the caller, but the history has no row of it in that month
==================  =====================================================================

and the counts reconcile: accounts = the sum of the six.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.collections.behaviour import account_snapshots
from scoring.collections.config import CollectionsConfig
from scoring.collections.run import month_queue
from scoring.collections.scorer import BehaviourScorer
from scoring.core.contract import BUCKETS, PERFORMANCE_BY_NAME
from scoring.core.refusals import CodedError
from scoring.data.config import HistoryGateConfig
from scoring.data.history_gate import LOAN_QUARANTINED, QUARANTINE_REASONS, RULES, check_history
from scoring.monitoring.performance import month_label, month_number

logger = logging.getLogger(__name__)

OUTCOMES = ("queued", "not_delinquent", "past_queue", "quarantined", "rejected", "not_in_history")
HELD_COLUMNS = ("loan_id", "as_of_month", "outcome", "reasons")


REFUSALS: dict[str, str] = {
    "month_not_a_month": "--month is not a month (YYYY-MM)",
    "month_not_in_history": "the history has no row in --month",
    "accounts_without_loan_id": "the --accounts file has no loan_id column",
    "accounts_empty": "the --accounts list holds no loan_id",
}
"""The ways the queue refuses to be built (:class:`QueueInputError`'s codes)."""


class QueueInputError(CodedError):
    """The queue cannot be built at all (a month the history lacks, an unusable accounts list);
    ``code``: one of :data:`REFUSALS`."""

    CODES = REFUSALS


@dataclass
class MonthQueue:
    queue: pd.DataFrame
    """the ranked queue (:func:`scoring.collections.run.month_queue`)"""
    held: pd.DataFrame
    """every account of the month not queued: loan_id, as_of_month, outcome, reasons"""
    counts: dict[str, Any] = field(default_factory=dict)
    """the month, the accounts and how many ended in each of :data:`OUTCOMES` (they add up)"""


def parse_month(value: str) -> int:
    """``2023-12`` (or any date in that month) as a month number; a clear error otherwise."""
    stamp: Any
    try:
        stamp = pd.Timestamp(str(value).strip())
    except (ValueError, TypeError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise QueueInputError(
            f"--month {value!r}: expected a month as YYYY-MM (e.g. 2023-12)", "month_not_a_month"
        )
    return int(stamp.year * 12 + stamp.month - 1)


def _held(loans: Iterable[str], month: str, outcome: str, reasons: Iterable[str] | str) -> pd.DataFrame:
    ids = [str(x) for x in loans]
    reasons_list = [reasons] * len(ids) if isinstance(reasons, str) else [str(r) for r in reasons]
    return pd.DataFrame({"loan_id": ids, "as_of_month": month, "outcome": outcome, "reasons": reasons_list})


def _describe(row: pd.Series, code: str) -> str:
    """A gate reason code with the value and what was expected, e.g. ``bucket_not_allowed:
    bucket='M9' in 2023-06, expected one of [...]``."""
    when = pd.to_datetime(row["as_of_month"], errors="coerce")
    at = f" in {when:%Y-%m}" if pd.notna(when) else ""
    for suffix, rule in (("_out_of_range", "out_of_range"), ("_not_a_number", "not_a_number")):
        column = code.removesuffix(suffix)
        if code.endswith(suffix) and column in PERFORMANCE_BY_NAME:
            spec = PERFORMANCE_BY_NAME[column]
            expected = f"{spec.min:,.0f}..{spec.max:,.0f}" if rule == "out_of_range" else "a number"
            return f"{code}: {column}={row[column]!r}{at}, expected {expected}"
    if code.endswith("_missing"):
        return f"{code}{at}: expected a value"
    if code in ("bucket_not_allowed", "status_not_allowed"):
        column = code.removesuffix("_not_allowed")
        return f"{code}: {column}={row[column]!r}{at}, expected {RULES[code].split('expected ')[-1]}"
    description = RULES.get(code)
    return f"{code}{at}: expected {description.split(': ', 1)[-1]}" if description else f"{code}{at}"


def queue_for_month(
    history: pd.DataFrame,
    applications: pd.DataFrame,
    month: str,
    scorer: BehaviourScorer,
    application_scores: pd.DataFrame | None = None,
    config: CollectionsConfig | None = None,
    accounts: Iterable[str] | None = None,
    passed_application_ids: Iterable[str] | None = None,
    gate_config: HistoryGateConfig | None = None,
    id_column: str = "application_id",
) -> MonthQueue:
    """The queue of ``month`` (module docstring). ``config``: the strategy, actions and
    depreciation (default: those the model was built with); ``accounts``: queue only these loans;
    ``passed_application_ids``: applications the caller accepted (others' loans are quarantined)."""
    config = config or CollectionsConfig.model_validate(scorer.settings)
    target = parse_month(month)
    label = month_label(np.array([target]))[0]
    app_ids = applications[id_column].astype(str)
    amounts = (
        applications.set_index(app_ids)["loan_amount"] if "loan_amount" in applications.columns else None
    )
    gate = check_history(history, app_ids, passed_application_ids, amounts, gate_config)
    months_all = pd.to_datetime(history["as_of_month"], errors="coerce")
    known = months_all.notna().to_numpy()
    numbers = np.full(len(history), -1, dtype=np.int64)
    numbers[known] = month_number(months_all[known])
    if not (numbers == target).any():
        span = (
            f"its months run {month_label(np.array([numbers[known].min()]))[0]}.."
            f"{month_label(np.array([numbers[known].max()]))[0]}"
            if known.any()
            else "it has no readable month"
        )
        raise QueueInputError(
            f"--month {label}: the history has no row in that month ({span})", "month_not_in_history"
        )

    in_month = numbers == target
    month_loans = pd.Index(history.loc[in_month, "loan_id"].astype(str).unique())
    wanted = month_loans
    pieces: list[pd.DataFrame] = []
    if accounts is not None:
        listed = pd.Index(pd.Series(list(accounts), dtype=object).astype(str).unique())
        if listed.empty:
            raise QueueInputError("--accounts: the list holds no loan_id", "accounts_empty")
        missing = listed.difference(month_loans, sort=False)
        pieces.append(_held(missing, label, "not_in_history", f"no history row of this loan in {label}"))
        wanted = listed.intersection(month_loans, sort=False)

    # held back by the gate, with the reason codes of the loan's failing months
    quarantine = gate.quarantine
    if len(quarantine):
        q_ids = quarantine["loan_id"].astype(str)
        own = quarantine[QUARANTINE_REASONS] != LOAN_QUARANTINED
        held_ids = pd.Index(q_ids.unique()).intersection(wanted, sort=False)
        failing = quarantine.loc[own.to_numpy() & q_ids.isin(held_ids).to_numpy()]
        failing = failing.assign(code=failing[QUARANTINE_REASONS].str.split(";")).explode("code")
        # each loan's reasons: every failing code once, with its first failing month's value
        first = failing.drop_duplicates(subset=["loan_id", "code"])
        described = pd.Series([_describe(row, row["code"]) for _, row in first.iterrows()], dtype=object)
        reasons = described.groupby(first["loan_id"].astype(str).to_numpy()).agg("; ".join)
        pieces.append(
            _held(held_ids, label, "quarantined", [reasons.get(i, LOAN_QUARANTINED) for i in held_ids])
        )
        wanted = wanted.difference(held_ids, sort=False)

    passed = gate.passed
    p_months = month_number(pd.to_datetime(passed["as_of_month"]))
    upto = passed.loc[(p_months <= target) & passed["loan_id"].astype(str).isin(wanted).to_numpy()]
    current = upto.loc[month_number(pd.to_datetime(upto["as_of_month"])) == target]
    rank = pd.Series(current["bucket"].astype(str)).map({b: i for i, b in enumerate(BUCKETS)}).to_numpy()
    active = (current["status"].astype(str) == "active").to_numpy()
    delinquent_ids = current.loc[active & (rank >= 1) & (rank <= 3), "loan_id"].astype(str)
    current_ids = current.loc[active & (rank == 0), "loan_id"].astype(str)
    past_rows = current.loc[~(active & (rank <= 3))]
    pieces.append(_held(current_ids, label, "not_delinquent", "current this month"))
    pieces.append(
        _held(
            past_rows["loan_id"].astype(str),
            label,
            "past_queue",
            [
                f"{b}, {s}: past the queue (recovery)"
                for b, s in zip(past_rows["bucket"], past_rows["status"], strict=True)
            ],
        )
    )

    snapshots = account_snapshots(
        upto.loc[upto["loan_id"].astype(str).isin(delinquent_ids).to_numpy()],
        applications,
        application_scores,
        config.depreciation,
        config.behaviour.horizon_months,
        id_column,
    )
    rows = snapshots.loc[month_number(snapshots["as_of_month"]) == target].reset_index(drop=True)
    scored, rejected = scorer.score_valid(rows)
    if len(rejected):
        pieces.append(_held(rejected["loan_id"], label, "rejected", rejected["reasons"]))
    good = rows.drop(index=rejected["row"].to_numpy()).reset_index(drop=True)
    queue = month_queue(good, applications, scored, config, id_column)
    held = pd.concat([p for p in pieces if len(p)], ignore_index=True) if any(len(p) for p in pieces) else (
        pd.DataFrame({c: pd.Series(dtype=object) for c in HELD_COLUMNS})
    )  # fmt: skip

    by_outcome = held["outcome"].value_counts()
    counts: dict[str, Any] = {"month": label}
    counts["queued"] = len(queue)
    for outcome in OUTCOMES[1:]:
        counts[outcome] = int(by_outcome.get(outcome, 0))
    counts["accounts"] = int(len(listed) if accounts is not None else len(month_loans))
    if sum(counts[o] for o in OUTCOMES) != counts["accounts"]:
        raise AssertionError(f"the month's accounts do not reconcile: {counts}")
    logger.info("queue %s: %s", label, counts)
    return MonthQueue(queue, held, counts)
