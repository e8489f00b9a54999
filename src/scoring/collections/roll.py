"""Delinquency grading on the performance history: transition matrices by segment, cure rates, and
a Markov forecast of the next months' buckets and balance at risk, back-tested against what happened.

States are :data:`scoring.monitoring.performance.ROLL_STATES`: the buckets current..M4+ and
written_off, then paid_off (prepaid or closed). written_off and paid_off absorb. The count matrix
``P[i, j]`` is the share of accounts in state ``i`` one month that are in ``j`` the next; the
balance matrix ``B[i, j]`` is the outstanding principal that accounts moving from ``i`` to ``j``
carry after the move, per unit of what state ``i`` held before it (so amortisation, prepayment
and write-off are in it). Both are fitted on the moves of a window of months. The forecast rolls
the accounts on book at an origin month forward, ``n_{t+1} = n_t P`` and ``b_{t+1} = b_t B``;
"balance 90+" is what sits in M4+ or was written off, the balance at risk of loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import BUCKETS
from scoring.core.frames import level_codes
from scoring.monitoring.performance import ROLL_STATES, Transitions, month_label, month_number, transitions

N_STATES = len(ROLL_STATES)
WRITTEN_OFF = ROLL_STATES.index("written_off")
PAID_OFF = ROLL_STATES.index("paid_off")
AT_RISK = (BUCKETS.index("M4+"), WRITTEN_OFF)
LIVE = tuple(range(BUCKETS.index("M4+") + 1))


@dataclass(frozen=True)
class MarkovChain:
    """Fitted transition matrices (rows: from state, columns: to state, both ROLL_STATES)."""

    counts: np.ndarray
    by_count: np.ndarray
    by_balance: np.ndarray

    def table(self, which: str = "count") -> pd.DataFrame:
        matrix = self.by_count if which == "count" else self.by_balance
        index = pd.Index(list(ROLL_STATES), name="from")
        return pd.DataFrame(matrix, index=index, columns=list(ROLL_STATES))

    def cure_rates(self) -> dict[str, float]:
        """The share of each delinquent bucket's accounts back to current the next month."""
        return {ROLL_STATES[i]: float(self.by_count[i, 0]) for i in range(1, len(LIVE))}


def fit_chain(moves: Transitions) -> MarkovChain:
    """Transition matrices from a set of moves; absorbing states map to themselves, and a live
    state that no account left stays where it is (so the forecast keeps it rather than losing it)."""
    cell = moves.from_state * N_STATES + moves.to_state
    counts = np.bincount(cell, minlength=N_STATES * N_STATES).reshape(N_STATES, N_STATES).astype(np.float64)
    carried = np.bincount(cell, weights=moves.balance_to, minlength=N_STATES * N_STATES).reshape(
        N_STATES, N_STATES
    )
    held = np.bincount(moves.from_state, weights=moves.balance_from, minlength=N_STATES)
    by_count = np.zeros((N_STATES, N_STATES))
    by_balance = np.zeros((N_STATES, N_STATES))
    for state in range(N_STATES):
        total = counts[state].sum()
        if state in (WRITTEN_OFF, PAID_OFF) or total == 0:
            by_count[state, state] = 1.0
            by_balance[state, state] = 0.0 if state == PAID_OFF else 1.0
            continue
        by_count[state] = counts[state] / total
        by_balance[state] = carried[state] / held[state] if held[state] > 0 else by_count[state]
    return MarkovChain(counts, by_count, by_balance)


@dataclass(frozen=True)
class _Timeline:
    """The history's rows sorted by loan then month, as arrays: built once, read at many months."""

    loans: pd.Index
    loan: np.ndarray
    month: np.ndarray
    rank: np.ndarray
    paid: np.ndarray
    balance: np.ndarray
    later_same_loan: np.ndarray  # the next row's month if it belongs to the same loan, else a sentinel

    @classmethod
    def of(cls, history: pd.DataFrame) -> _Timeline:
        codes, loans = pd.factorize(history["loan_id"].astype(str), sort=True)
        months = month_number(history["as_of_month"])
        order = np.lexsort((months, codes))
        loan, month = codes[order], months[order]
        later = np.full(len(order), np.iinfo(np.int64).max, dtype=np.int64)
        same = np.zeros(len(order), dtype=bool)
        same[:-1] = loan[1:] == loan[:-1]
        later[:-1] = np.where(same[:-1], month[1:], later[:-1])
        return cls(
            loans=pd.Index(loans, name="loan_id"),
            loan=loan,
            month=month,
            rank=level_codes(history["bucket"], BUCKETS)[order],
            paid=history["status"].isin(("prepaid", "closed")).to_numpy()[order],
            balance=history["outstanding_principal"].to_numpy(dtype=np.float64)[order],
            later_same_loan=later,
        )


def _state_at(timeline: _Timeline, month: int) -> pd.DataFrame:
    """Each loan's state and balance in ``month``; loans that ended before keep their last
    (terminal) state; loans that start later are absent."""
    t = timeline
    last = (t.month <= month) & (t.later_same_loan > month)  # each loan's latest row up to the month
    paid = t.paid[last]
    state = np.where(paid, PAID_OFF, t.rank[last])
    ended_earlier = (t.month[last] < month) & ~np.isin(state, (PAID_OFF, WRITTEN_OFF))
    frame = pd.DataFrame(
        {"state": state, "balance": np.where(paid, 0.0, t.balance[last])},
        index=t.loans[t.loan[last]],
    )
    return frame[~ended_earlier]


def forecast(
    chain: MarkovChain, counts: np.ndarray, balances: np.ndarray, months: int
) -> list[dict[str, Any]]:
    """The distribution of accounts and balance over the states for each of the next ``months``."""
    n, b = np.asarray(counts, dtype=np.float64), np.asarray(balances, dtype=np.float64)
    out = []
    for h in range(1, months + 1):
        n, b = n @ chain.by_count, b @ chain.by_balance
        out.append({"months_ahead": h, "accounts": n.copy(), "balance": b.copy()})
    return out


def _segment_labels(loans: pd.Index, segment: pd.Series | None) -> np.ndarray:
    """The segment of each loan of ``loans`` as text (one segment, "all", without a segment column)."""
    if segment is None:
        return np.full(len(loans), "all", dtype=object)
    labels = segment.reindex(loans).astype(object)
    return np.asarray(labels.where(labels.notna(), "<missing>").astype(str).to_numpy(), dtype=object)


def backtest_forecast(
    history: pd.DataFrame,
    origin: int,
    months: int = 6,
    fit_months: int = 12,
    segment: pd.Series | None = None,
) -> dict[str, Any]:
    """Fit the chains (per segment) on the moves of the ``fit_months`` before ``origin`` (a month
    number), roll the accounts on book at ``origin`` forward ``months`` and compare with their
    actual states then. Returns per months ahead the forecast and actual balance 90+, accounts per
    state, and the relative error of the balance 90+."""
    last = int(month_number(history["as_of_month"]).max())
    if origin + months > last:
        raise ValueError(
            f"forecast back-test: origin {month_label(np.array([origin]))[0]} + {months} months is after "
            f"the history's last month {month_label(np.array([last]))[0]}; expected an earlier origin"
        )
    moves = transitions(history)
    window = (moves.month > origin - fit_months) & (moves.month <= origin)
    timeline = _Timeline.of(history)
    start = _state_at(timeline, origin)
    start = start[np.isin(start["state"], LIVE)]
    move_segment = _segment_labels(moves.loans, segment)[moves.loan]
    start_segment = _segment_labels(pd.Index(start.index), segment)
    names = sorted(set(move_segment[window]) | set(start_segment))
    rows = []
    totals: dict[int, dict[str, np.ndarray]] = {}
    for name in names:
        chain = fit_chain(moves.take(window & (move_segment == name)))
        part = start[start_segment == name]
        counts = np.bincount(part["state"].to_numpy(), minlength=N_STATES).astype(np.float64)
        balances = np.bincount(
            part["state"].to_numpy(), weights=part["balance"].to_numpy(), minlength=N_STATES
        )
        for step in forecast(chain, counts, balances, months):
            entry = totals.setdefault(
                step["months_ahead"], {"accounts": np.zeros(N_STATES), "balance": np.zeros(N_STATES)}
            )
            entry["accounts"] += step["accounts"]
            entry["balance"] += step["balance"]
    for h, predicted in sorted(totals.items()):
        actual_states = _state_at(timeline, origin + h).reindex(start.index)
        actual_states = actual_states.dropna()
        actual_counts = np.bincount(actual_states["state"].astype(int), minlength=N_STATES).astype(np.float64)
        actual_balance = np.bincount(
            actual_states["state"].astype(int), weights=actual_states["balance"], minlength=N_STATES
        )
        at_risk_forecast = float(predicted["balance"][list(AT_RISK)].sum())
        at_risk_actual = float(actual_balance[list(AT_RISK)].sum())
        rows.append(
            {
                "months_ahead": h,
                "month": month_label(np.array([origin + h]))[0],
                "balance_90_forecast": at_risk_forecast,
                "balance_90_actual": at_risk_actual,
                "balance_90_error": (at_risk_forecast - at_risk_actual) / at_risk_actual
                if at_risk_actual
                else float("nan"),
                **{
                    f"accounts_{s}_forecast": float(v)
                    for s, v in zip(ROLL_STATES, predicted["accounts"], strict=True)
                },
                **{f"accounts_{s}_actual": float(v) for s, v in zip(ROLL_STATES, actual_counts, strict=True)},
            }
        )
    return {
        "origin": month_label(np.array([origin]))[0],
        "fit_months": fit_months,
        "accounts_on_book": len(start),
        "segments": names,
        "by_month": pd.DataFrame(rows),
    }
