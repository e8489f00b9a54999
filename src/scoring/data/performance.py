"""The synthetic portfolio's monthly performance history: one row per booked loan and month on book.

:func:`generate_performance` follows the columns of
:data:`scoring.core.contract.PERFORMANCE_COLUMNS`. Every application of the synthetic portfolio is
a booked loan (the generator has no historical policy yet); its first instalment falls in the
month after the application month, and the history stops at the last application month (the
extract date), at the loan's end (closed, prepaid, written off, repossessed) or both.

How a loan moves (all vectorised over loans, one step per month on book)
--------------------------------------------------------------------------
State: the instalments paid so far ``P``. The loan's bucket index ``j`` (0 current, 1 M1 ..
4 M4+) is the months since the oldest unpaid instalment fell due: ``j = m - P`` at month on book
``m`` while something is overdue, else 0. Each month the borrower pays ``x`` whole instalments
(``j`` then moves to ``j + 1 - x``): none (a roll forward), one (the bucket stays), two (a roll
back) or all that is due (a cure, back to current). Days past due are ``30 * (j - 1)`` plus the
loan's own due-day offset (1..30); amounts come from :mod:`scoring.core.finance`, so balances
never rise, and interest on arrears is not charged (documented simplification).

* The 12-month outcome is the truth's drawn ``outcome_12m``. A loan drawn to default reaches
  M4+ (over 90 days) at a month on book ``D`` in 4..12 (weights peak at 7-8 months, tilted by
  the macro cycle of the calendar month), missing every instalment from ``D - 3``; it cannot
  prepay before. Any other loan may still default later: a monthly hazard from its true PD
  (``1 - (1 - pd) ** (1 / 12)``, halved after the first year, moved by the macro cycle) places
  ``D`` after month 12 and within the term.
* Outside those streaks delinquency episodes start and end: a current loan misses an instalment
  with probability ``sigmoid(logit(pd) - 1.5 + macro)``; from M1..M3 it cures, rolls back, stays
  or rolls forward (:data:`EPISODE_MOVES`), but never past M3, so only the planned streaks reach
  M4+ and ``default_12m`` equals "M4+ within 12 months on book" exactly.
* After M4+: a cure (6% a month), repossession of the car (12% a month) or, beyond 180 days, a
  write-off; repossessed and written-off loans end in bucket ``written_off`` with the balance
  they had.
* A current loan prepays in full with probability ``PREPAY_BASE + PREPAY_LOW_RISK * (1 - pd)``
  a month; a loan whose last instalment is paid closes.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import BUCKETS, OUTCOME_COLUMN, PERFORMANCE_COLUMNS, TRUE_PD_COLUMN
from scoring.core.finance import balance_after, instalment, paid_through
from scoring.data.config import DataConfig, SyntheticDataConfig
from scoring.data.synthetic import macro_effect, month_index, month_starts

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# ------------------------------------------------------------------ behaviour parameters (documented above)

DEFAULT_MONTH_WEIGHTS = {4: 0.7, 5: 0.85, 6: 0.95, 7: 1.0, 8: 1.0, 9: 0.95, 10: 0.9, 11: 0.85, 12: 0.8}
LATE_HAZARD_FACTOR = 0.5
MISS_SHIFT = -1.5
# (cure, roll back, stay, roll forward) from M1, M2, M3; forward from M3 is turned into a stay
EPISODE_MOVES = np.array(
    [
        [0.55, 0.00, 0.25, 0.20],
        [0.35, 0.25, 0.20, 0.20],
        [0.30, 0.30, 0.40, 0.00],
    ]
)
DEFAULTED_CURE = 0.06
DEFAULTED_REPOSSESSION = 0.12
DEFAULTED_STAY = 0.10
WRITE_OFF_BUCKET = 7  # j = 7: more than 180 days past due
PREPAY_BASE = 0.004
PREPAY_LOW_RISK = 0.008

_STATUS_CODES = ("active", "prepaid", "closed", "written_off", "repossessed")


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def history_stream(seed: int, block: int = 0) -> np.random.Generator:
    """The history's own random stream: the third child of the seed, so the applications'
    streams (the first two) and hence the applications themselves do not change. Block k > 0 of
    the portfolio (:func:`scoring.data.synthetic.portfolio_blocks`) draws from its own child of it."""
    if block == 0:
        return np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2, block)))


def _default_months(
    rng: np.random.Generator,
    outcome: IntArray,
    pd_: FloatArray,
    start: IntArray,
    term: IntArray,
    macro: FloatArray,
) -> IntArray:
    """Month on book at which each loan first reaches M4+, or 0 when it never does."""
    n = len(outcome)
    months = np.array(sorted(DEFAULT_MONTH_WEIGHTS), dtype=np.int64)
    weights = np.array([DEFAULT_MONTH_WEIGHTS[m] for m in months])
    calendar = np.minimum(start[:, None] + months[None, :], len(macro) - 1)
    logits = np.log(weights)[None, :] + macro[calendar]
    logits = np.where(months[None, :] <= term[:, None], logits, -np.inf)
    cum = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
    pick = (rng.random(n)[:, None] * cum[:, -1:] >= cum).sum(axis=1)
    early = months[np.minimum(pick, len(months) - 1)]
    # later defaults of loans that survived their first year, within the term
    hazard = -np.expm1(np.log1p(-np.clip(pd_, 0.0, 0.999)) / 12.0) * LATE_HAZARD_FACTOR
    late = np.zeros(n, dtype=np.int64)
    for m in range(13, int(term.max(initial=12)) + 1):
        calendar_m = np.minimum(start + m, len(macro) - 1)
        rate = hazard * np.exp(macro[calendar_m] - macro[np.minimum(start, len(macro) - 1)])
        hit = (late == 0) & (m <= term) & (rng.random(n) < rate)
        late[hit] = m
    return np.asarray(np.where(outcome == 1, early, late), dtype=np.int64)


def generate_performance(
    applications: pd.DataFrame, truth: pd.DataFrame, config: SyntheticDataConfig, seed: int, block: int = 0
) -> pd.DataFrame:
    """The monthly history of every application in ``applications`` (the synthetic portfolio's).

    ``block``: which generation block of the portfolio the applications are (its own stream);
    :func:`portfolio_history` draws a whole multi-block portfolio block by block.

    ``truth`` must hold ``application_id``, the true PD and the drawn ``outcome_12m`` (as
    :func:`scoring.data.synthetic.generate_portfolio` returns it). Rows are sorted by loan, then
    month; the same applications, config and seed give the same frame.
    """
    started = time.perf_counter()
    truth_by_id = truth.set_index("application_id")
    ids = applications["application_id"].astype(str)
    pd_ = truth_by_id[TRUE_PD_COLUMN].reindex(ids).to_numpy(dtype=np.float64)
    outcome = truth_by_id[OUTCOME_COLUMN].reindex(ids).to_numpy(dtype=np.int64)
    principal = applications["loan_amount"].to_numpy(dtype=np.float64)
    rate = applications["annual_rate"].to_numpy(dtype=np.float64)
    term = applications["term_months"].to_numpy(dtype=np.int64)
    equal_principal = (applications["repayment_method"].astype(str) == "equal_principal").to_numpy()
    start = month_index(applications["application_date"], config)
    n, last_month = len(applications), config.months - 1

    rng = history_stream(seed, block)
    macro = macro_effect(np.arange(config.months + 1), config.months) * float(config.macro_cycle)
    default_month = _default_months(rng, outcome, pd_, start, term, macro)
    offset = rng.integers(1, 31, size=n)
    miss_logit = np.log(pd_ / (1.0 - pd_)) + MISS_SHIFT
    prepay = PREPAY_BASE + PREPAY_LOW_RISK * (1.0 - pd_)

    paid = np.zeros(n, dtype=np.int64)  # instalments paid
    bucket = np.zeros(n, dtype=np.int64)  # j
    alive = start < last_month
    defaulted = np.zeros(n, dtype=bool)
    pieces: list[dict[str, np.ndarray]] = []
    horizon = int(last_month - start.min(initial=last_month))
    for m in range(1, horizon + 1):
        rows = np.flatnonzero(alive & (start + m <= last_month))
        if rows.size == 0:
            break
        j, p_prev = bucket[rows], paid[rows]
        due = np.minimum(m, term[rows]) - p_prev  # instalments due now, this month's included
        d = default_month[rows]
        u = rng.random(rows.size)
        v = rng.random(rows.size)
        x = np.ones(rows.size, dtype=np.int64)  # pay this month's instalment
        status = np.zeros(rows.size, dtype=np.int64)

        # episodes: current loans miss or prepay, delinquent ones move by EPISODE_MOVES
        current = j == 0
        macro_now = macro[np.minimum(start[rows] + m, config.months)]
        miss = current & (u < _sigmoid(miss_logit[rows] + macro_now))
        x[miss] = 0
        late = ~current & ~defaulted[rows]
        moves = np.cumsum(EPISODE_MOVES[np.clip(j - 1, 0, 2)], axis=1)
        move = (u[:, None] >= moves).sum(axis=1)
        x = np.where(
            late, np.choose(np.minimum(move, 3), [due, np.full_like(due, 2), np.ones_like(due), 0 * due]), x
        )

        # planned streak towards M4+ at month D: target bucket m - D + 4 over D-3..D
        in_streak = (d > 0) & (m >= d - 3) & (m <= d) & ~defaulted[rows]
        target = m - d + 4
        x = np.where(in_streak, 1 + j - target, x)
        # outside a streak nothing goes past M3 before the loan has defaulted
        x = np.where(~in_streak & ~defaulted[rows], np.maximum(x, j - 2), x)

        # defaulted loans: mostly no payment; cure, stay or repossession
        was_default = defaulted[rows]
        cure_d = was_default & (u < DEFAULTED_CURE)
        stay_d = was_default & (u >= DEFAULTED_CURE) & (u < DEFAULTED_CURE + DEFAULTED_STAY)
        x = np.where(was_default, np.where(cure_d, due, np.where(stay_d, 1, 0)), x)

        x = np.clip(x, 0, due)
        p_new = p_prev + x
        cured = p_new >= np.minimum(m, term[rows])
        j_new = np.where(cured, 0, m - p_new)

        # prepayment: a loan current before and after the month, never ahead of a planned streak
        may_prepay = (
            current & cured & (p_new < term[rows]) & ((d == 0) | ((outcome[rows] == 0) & (m < d - 3)))
        )
        prepaid = may_prepay & (v < prepay[rows])
        opening = balance_after(principal[rows], rate[rows], term[rows], equal_principal[rows], p_prev)
        closing = balance_after(principal[rows], rate[rows], term[rows], equal_principal[rows], p_new)
        amount = paid_through(
            principal[rows], rate[rows], term[rows], equal_principal[rows], p_new
        ) - paid_through(principal[rows], rate[rows], term[rows], equal_principal[rows], p_prev)
        amount = np.where(prepaid, opening * (1.0 + rate[rows] / 12.0), amount)
        closing = np.where(prepaid, 0.0, closing)

        repossessed = was_default & ~cure_d & ~stay_d & (v < DEFAULTED_REPOSSESSION)
        written_off = was_default & ~cure_d & ~repossessed & (j_new >= WRITE_OFF_BUCKET)
        closed = ~prepaid & cured & (p_new >= term[rows])
        status[prepaid] = 1
        status[closed] = 2
        status[written_off] = 3
        status[repossessed] = 4
        bucket_index = np.where(status >= 3, 5, np.minimum(j_new, 4))
        dpd = np.where(j_new > 0, 30 * (j_new - 1) + offset[rows], 0)
        pieces.append(
            {
                "row": rows,
                "month": start[rows] + m,
                "mob": np.full(rows.size, m, dtype=np.int64),
                "scheduled": instalment(principal[rows], rate[rows], term[rows], equal_principal[rows], m),
                "paid": amount,
                "balance": closing,
                "dpd": dpd,
                "bucket": bucket_index,
                "status": status,
            }
        )
        paid[rows] = p_new
        bucket[rows] = j_new
        defaulted[rows] = (was_default & ~cured) | (j_new >= 4)
        alive[rows[status > 0]] = False

    history = _assemble(pieces, ids.to_numpy(), config)
    logger.info(
        "performance history: %d rows for %d loans, %.2fs", len(history), n, time.perf_counter() - started
    )
    return history


def _assemble(
    pieces: list[dict[str, np.ndarray]], ids: np.ndarray, config: SyntheticDataConfig
) -> pd.DataFrame:
    if pieces:
        parts = {key: np.concatenate([piece[key] for piece in pieces]) for key in pieces[0]}
    else:
        parts = {
            key: np.empty(0, dtype=np.int64) for key in ("row", "month", "mob", "dpd", "bucket", "status")
        }
        parts.update({key: np.empty(0) for key in ("scheduled", "paid", "balance")})
    order = np.lexsort((parts["mob"], parts["row"]))
    starts = month_starts(config.start_date, config.months)
    frame = pd.DataFrame(
        {
            "loan_id": pd.Series(ids[parts["row"][order]], dtype="str"),
            "as_of_month": pd.Series(starts[parts["month"][order]].astype("datetime64[ns]")),
            "months_on_book": parts["mob"][order].astype(np.int64),
            "scheduled_payment": np.round(parts["scheduled"][order], 2),
            "amount_paid": np.round(parts["paid"][order], 2),
            "outstanding_principal": np.round(parts["balance"][order], 2),
            "days_past_due": parts["dpd"][order].astype(np.int64),
            "bucket": pd.Series(np.array(BUCKETS, dtype=object)[parts["bucket"][order]], dtype="str"),
            "status": pd.Series(np.array(_STATUS_CODES, dtype=object)[parts["status"][order]], dtype="str"),
        }
    )
    return frame[[c.name for c in PERFORMANCE_COLUMNS]]


def portfolio_history(
    applications: pd.DataFrame, truth: pd.DataFrame, config: SyntheticDataConfig, seed: int
) -> pd.DataFrame:
    """The history of a whole synthetic portfolio, in generation order: one
    :func:`generate_performance` per block (the dask engine draws the blocks in parallel)."""
    from scoring.data.synthetic import portfolio_blocks

    layout = portfolio_blocks(config)
    if len(applications) != config.n_applications:
        raise ValueError(
            f"the history of a synthetic portfolio needs its {config.n_applications} applications in "
            f"generation order; got {len(applications)}"
        )
    if len(layout) == 1:
        return generate_performance(applications, truth, config, seed)
    parts = [
        generate_performance(
            applications.iloc[first : first + rows], truth.iloc[first : first + rows], config, seed, block
        )
        for block, (first, rows) in enumerate(layout)
    ]
    return pd.concat(parts, ignore_index=True)


def empty_history() -> pd.DataFrame:
    """A history with the contract's columns and no rows (a dataset without one)."""
    kinds = {"string": "str", "date": "datetime64[ns]", "int": "int64", "float": "float64", "category": "str"}
    return pd.DataFrame({c.name: pd.Series(dtype=kinds[c.kind]) for c in PERFORMANCE_COLUMNS})


def load_history(
    config: DataConfig, applications: pd.DataFrame, truth: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame | None, str]:
    """The history the pipeline monitors and where it came from.

    ``data.performance.path`` set: the analyst's file, its columns renamed by
    ``data.performance.columns``; else the synthetic portfolio's generated history; else none
    (a bring-your-own dataset without a history: monitoring then covers stability only).
    """
    if config.performance.path is not None:
        from scoring.core.io import DataReadError, read_table

        frame = read_table(config.performance.path, config.performance.format)
        absent = {role: col for role, col in config.performance.columns.items() if col not in frame.columns}
        if absent:
            raise DataReadError(
                f"{config.performance.path}: data.performance.columns names columns not in the file "
                f"({absent}); the file has {list(frame.columns)[:30]}"
            )
        frame = frame.rename(columns={col: role for role, col in config.performance.columns.items()})
        return frame, str(config.performance.path)
    if config.source == "synthetic" and config.synthetic.performance_history:
        return portfolio_history(applications, truth, config.synthetic, seed), "synthetic"
    return None, "none"
