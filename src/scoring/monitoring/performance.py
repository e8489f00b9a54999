"""What the performance history says: outcomes per loan, vintage curves, roll rates, back-tests.

Definitions shared with the data contract: 30+ is bucket M2 or worse (over 30 days past due),
60+ is M3 or worse, 90+ is M4+ or written off (the default of ``default_12m``). A loan's cohort
is its origination (application) month: the month before its first instalment month, i.e.
``as_of_month - months_on_book``. Every function takes a history that passed the gate
(:mod:`scoring.data.history_gate`): consecutive months per loan, one row per loan and month.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import BUCKETS, TERMINAL_STATUSES
from scoring.core.frames import level_codes, member_mask
from scoring.decision.grades import ValidationTestSettings, jeffreys_p_value

THRESHOLDS = {"30+": BUCKETS.index("M2"), "60+": BUCKETS.index("M3"), "90+": BUCKETS.index("M4+")}
ROLL_STATES = (*BUCKETS, "paid_off")


def month_number(months: pd.Series) -> np.ndarray:
    """Calendar months as integers (year * 12 + month - 1)."""
    dates = pd.to_datetime(months)
    return np.asarray(dates.dt.year * 12 + dates.dt.month - 1, dtype=np.int64)


def month_label(numbers: np.ndarray | pd.Series) -> list[str]:
    values = np.asarray(numbers, dtype=np.int64)
    return [f"{v // 12:04d}-{v % 12 + 1:02d}" for v in values]


def _ranks(history: pd.DataFrame) -> np.ndarray:
    return level_codes(history["bucket"], BUCKETS)


def _as_int(value: Any) -> int:
    """A group key (numpy or Python integer) as int."""
    return int(value)


def _ordered(history: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Row order by loan then month, the loans' integer codes in that order, and the loan ids."""
    codes, names = pd.factorize(history["loan_id"], sort=True)
    order = np.lexsort((month_number(history["as_of_month"]), codes))
    return order, codes[order], pd.Index(names, name="loan_id")


def loan_outcomes(history: pd.DataFrame) -> pd.DataFrame:
    """One row per loan (indexed by loan id): cohort month, the last month on book observed,
    whether the loan ended, and the first month on book at 30+, 60+ and 90+ (0 = never so far)."""
    codes, names = pd.factorize(history["loan_id"], sort=True)
    k = len(names)
    mob = history["months_on_book"].to_numpy(dtype=np.int64)
    cohort = month_number(history["as_of_month"]) - mob
    rank = _ranks(history)
    out = pd.DataFrame(index=pd.Index(names, name="loan_id"))
    first_cohort = np.full(k, np.iinfo(np.int64).max)
    np.minimum.at(first_cohort, codes, cohort)
    out["cohort"] = first_cohort
    last = np.zeros(k, dtype=np.int64)
    np.maximum.at(last, codes, mob)
    out["last_mob"] = last
    big = np.iinfo(np.int64).max
    for name, threshold in THRESHOLDS.items():
        first = np.full(k, big)
        hit = rank >= threshold
        np.minimum.at(first, codes[hit], mob[hit])
        out[f"first_{name}"] = np.where(first == big, 0, first)
    ended = np.zeros(k, dtype=bool)
    ended[codes[member_mask(history["status"], TERMINAL_STATUSES)]] = True
    out["ended"] = ended
    return out


def defaulted_within(outcomes: pd.DataFrame, months_on_book: int, last_month: int) -> pd.Series:
    """1 where a loan reached 90+ within ``months_on_book`` months, 0 where it did not, NaN where
    its cohort has not had that long yet by ``last_month`` (the history's last month number).

    Maturity is judged per cohort, never per loan: counting the loans of a young cohort that
    already defaulted (or already paid off) would bias its rate.
    """
    hit = (outcomes["first_90+"] > 0) & (outcomes["first_90+"] <= months_on_book)
    matured = outcomes["cohort"] + months_on_book <= last_month
    return hit.astype(float).where(matured)


def vintage_curves(outcomes: pd.DataFrame, last_month: int, max_mob: int = 36) -> pd.DataFrame:
    """Cumulative 30+/60+/90+ shares by months on book, one curve per origination quarter.

    The share at month on book ``m`` counts loans of the quarter that reached the bucket by ``m``
    among the quarter's loans whose month ``m`` lies at or before ``last_month``; loans that
    ended earlier stay in the count (a share of what was booked).
    """
    quarter = pd.PeriodIndex(
        pd.to_datetime([f"{label}-01" for label in month_label(outcomes["cohort"].to_numpy())]), freq="Q"
    ).astype(str)
    rows: list[dict[str, Any]] = []
    cohort = outcomes["cohort"].to_numpy()
    for label in sorted(set(quarter)):
        mask = np.asarray(quarter == label)
        observable_until = last_month - cohort[mask]
        for m in range(1, max_mob + 1):
            seen = observable_until >= m
            n = int(seen.sum())
            if n == 0:
                break
            row: dict[str, Any] = {"vintage": label, "months_on_book": m, "n_loans": n}
            for name in THRESHOLDS:
                first = outcomes[f"first_{name}"].to_numpy()[mask][seen]
                row[name] = float(((first > 0) & (first <= m)).mean())
            rows.append(row)
    return pd.DataFrame(rows, columns=["vintage", "months_on_book", "n_loans", *THRESHOLDS])


@dataclass(frozen=True)
class Transitions:
    """Every month-to-month move of a loan: state codes index :data:`ROLL_STATES` (the buckets,
    then paid_off); ``month`` is the month moved into; balances are the outstanding principal
    before and after; ``loan`` indexes ``loans``."""

    loan: np.ndarray
    loans: pd.Index
    from_state: np.ndarray
    to_state: np.ndarray
    month: np.ndarray
    balance_from: np.ndarray
    balance_to: np.ndarray

    def take(self, mask: np.ndarray) -> Transitions:
        return Transitions(
            self.loan[mask],
            self.loans,
            self.from_state[mask],
            self.to_state[mask],
            self.month[mask],
            self.balance_from[mask],
            self.balance_to[mask],
        )


def transitions(history: pd.DataFrame) -> Transitions:
    """The moves of every loan from one month to the next (written-off months have none)."""
    order, loan, names = _ordered(history)
    rank = _ranks(history)[order]
    month = month_number(history["as_of_month"])[order]
    pairs = np.flatnonzero((loan[1:] == loan[:-1]) & (month[1:] == month[:-1] + 1))
    source, target = pairs, pairs + 1
    paid_off = member_mask(history["status"], ("prepaid", "closed"))[order]
    to_state = np.where(paid_off[target], len(BUCKETS), rank[target])
    balance = history["outstanding_principal"].to_numpy(dtype=np.float64)[order]
    moves = Transitions(
        loan[source], names, rank[source], to_state, month[target], balance[source], balance[target]
    )
    return moves.take(moves.from_state != BUCKETS.index("written_off"))


def roll_rates(history: pd.DataFrame, first_month: int | None = None) -> dict[str, pd.DataFrame]:
    """Month-to-month transitions from each bucket to the next month's bucket (or paid off),
    by count and by balance (the outstanding principal at the start), as row shares; and the
    forward roll rates per month (current->M1, M1->M2, M2->M3, M3->M4+, M4+->written_off).

    ``first_month`` (a :func:`month_number`): only transitions into that month or later.
    """
    moves = transitions(history)
    if first_month is not None:
        moves = moves.take(moves.month >= first_month)
    from_state, to_state, when, balance = moves.from_state, moves.to_state, moves.month, moves.balance_from
    n_from, n_to = len(BUCKETS) - 1, len(ROLL_STATES)
    cell = from_state * n_to + to_state
    counts = np.bincount(cell, minlength=n_from * n_to).reshape(n_from, n_to).astype(np.float64)
    balances = np.bincount(cell, weights=balance, minlength=n_from * n_to).reshape(n_from, n_to)
    index = pd.Index(list(BUCKETS[:-1]), name="from")

    def shares(matrix: np.ndarray) -> pd.DataFrame:
        totals = matrix.sum(axis=1, keepdims=True)
        return pd.DataFrame(
            np.where(totals > 0, matrix / np.where(totals > 0, totals, 1), np.nan),
            index=index,
            columns=list(ROLL_STATES),
        )

    steps = list(itertools.pairwise(BUCKETS))
    months, slot = np.unique(when, return_inverse=True)
    forward: dict[str, Any] = {"month": month_label(months)}
    for step, (a, b) in enumerate(steps):
        start = from_state == step
        at_start = np.bincount(slot[start], minlength=len(months)).astype(np.float64)
        rolled = np.bincount(slot[start & (to_state == step + 1)], minlength=len(months))
        forward[f"{a}->{b}"] = np.where(at_start > 0, rolled / np.maximum(at_start, 1), np.nan)
    return {
        "count": shares(counts),
        "balance": shares(balances),
        "forward_by_month": pd.DataFrame(forward, columns=["month", *[f"{a}->{b}" for a, b in steps]]),
    }


def backtest(
    scored: pd.DataFrame,
    observed: pd.Series,
    settings: ValidationTestSettings,
    min_rows: int = 30,
) -> dict[str, pd.DataFrame]:
    """Observed 12-month default rate against the mean PD, per cohort month and per grade.

    ``scored``: one row per loan with ``cohort`` (a month number), ``pd`` and ``grade``, indexed
    by loan id; ``observed``: :func:`defaulted_within` for the same loans (NaN = not matured).
    Jeffreys p-values (one-sided: the PD underestimates) with the calibrate stage's thresholds;
    the AUC of each matured cohort.
    """
    from sklearn.metrics import roc_auc_score

    frame = scored.assign(y=observed.reindex(scored.index)).dropna(subset=["y"])
    cohorts = []
    for cohort, part in frame.groupby("cohort"):
        n, d = len(part), int(part["y"].sum())
        p = float(part["pd"].mean())
        jeffreys = jeffreys_p_value(d, n, p) if n >= min_rows else float("nan")
        auc = float(roc_auc_score(part["y"], part["pd"])) if 0 < d < n else float("nan")
        cohorts.append(
            {
                "cohort": month_label(np.array([cohort]))[0],
                "month": _as_int(cohort),
                "n": n,
                "defaults": d,
                "observed_rate": d / n,
                "mean_pd": p,
                "jeffreys_p": jeffreys,
                "flag": _flag(jeffreys, settings),
                "auc": auc,
            }
        )
    grades = []
    for key, part in frame.groupby(["cohort", "grade"]):
        key_month, key_grade = key
        n, d = len(part), int(part["y"].sum())
        p = float(part["pd"].mean())
        jeffreys = jeffreys_p_value(d, n, p) if n >= min_rows else float("nan")
        grades.append(
            {
                "cohort": month_label(np.array([key_month]))[0],
                "month": _as_int(key_month),
                "grade": _as_int(key_grade),
                "n": n,
                "defaults": d,
                "observed_rate": d / n,
                "mean_pd": p,
                "jeffreys_p": jeffreys,
            }
        )
    columns = ["cohort", "month", "n", "defaults", "observed_rate", "mean_pd", "jeffreys_p", "flag", "auc"]
    return {
        "cohorts": pd.DataFrame(cohorts, columns=columns),
        "grades": pd.DataFrame(
            grades,
            columns=["cohort", "month", "grade", "n", "defaults", "observed_rate", "mean_pd", "jeffreys_p"],
        ),
    }


def _flag(p_value: float, settings: ValidationTestSettings) -> str:
    if not np.isfinite(p_value):
        return "n/a"
    if p_value < settings.red_p:
        return "red"
    if p_value < settings.yellow_p:
        return "amber"
    return "green"


def early_delinquency(
    scored: pd.DataFrame,
    outcomes: pd.DataFrame,
    months_on_book: int,
    threshold: str,
    reference_months: tuple[int, int] | None,
    last_month: int,
) -> tuple[pd.DataFrame, float | None]:
    """Share of each cohort at ``threshold`` (30+, 60+, 90+) by ``months_on_book``, against the
    share expected from its PDs.

    Expected = the cohort's mean PD times the ratio observed/mean PD over the reference cohorts
    (``reference_months``: first and last month number of the development window); only cohorts
    ``months_on_book`` old by ``last_month`` count; without
    reference cohorts in the history there is no expectation (NaN) and the ratio is None.
    Returns the table and the reference ratio.
    """
    joined = scored.join(outcomes[[f"first_{threshold}"]], how="inner")
    first = joined[f"first_{threshold}"]
    hit = (first > 0) & (first <= months_on_book)
    seen = joined["cohort"] + months_on_book <= last_month  # whole cohorts, as in defaulted_within
    joined = joined.assign(hit=hit.astype(float)).loc[seen]
    ratio: float | None = None
    if reference_months is not None:
        ref = joined[(joined["cohort"] >= reference_months[0]) & (joined["cohort"] <= reference_months[1])]
        if len(ref) and ref["pd"].mean() > 0:
            ratio = float(ref["hit"].mean() / ref["pd"].mean())
    rows = []
    for cohort, part in joined.groupby("cohort"):
        n = len(part)
        rate = float(part["hit"].mean())
        expected = float(part["pd"].mean() * ratio) if ratio is not None else float("nan")
        rows.append(
            {
                "cohort": month_label(np.array([cohort]))[0],
                "month": _as_int(cohort),
                "n": n,
                "events": int(part["hit"].sum()),
                "observed_rate": rate,
                "expected_rate": expected,
                "ratio": rate / expected if expected > 0 else float("nan"),
            }
        )
    columns = ["cohort", "month", "n", "events", "observed_rate", "expected_rate", "ratio"]
    return pd.DataFrame(rows, columns=columns), ratio
