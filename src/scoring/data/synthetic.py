"""Synthetic auto-loan portfolio with a known default truth (the embedded default dataset).

:func:`generate_portfolio` returns ``(applications, truth)``: the applications follow
:data:`scoring.core.contract.AUTO_LOAN_COLUMNS` column for column, and the truth holds each
application's true probability of default (:data:`scoring.core.contract.TRUE_PD_COLUMN`), which only
evaluation may read. Everything is drawn from ``np.random.default_rng`` streams spawned from the
seed and is vectorised, so the same seed and config give identical frames and a million rows take
a few seconds.

Population (amounts on a CNY-like scale)
----------------------------------------
* Time: application months ``start_date .. start_date + months``; volume grows about 40% over
  the window. Drift with ``t`` = month / (months - 1): the online channel share rises from about
  10% to 30%, the used-car share from about 20% to 35%, the electric (new-energy) share of new
  cars from about 5% to 35%.
* Repeat customers: ``repeat_customer_share`` of applications belong to a customer who applied on
  an earlier date; they keep that customer's region, employment type and marital status, their
  age advances by the elapsed time, and their latent creditworthiness is correlated (0.85).
* Age 18..80 (right-skewed, median about 35); employment type tied to age (retirement from the
  late fifties); marital status tied to age.
* Monthly income: lognormal, median about 9k, with an age hump (peak near 45), employment
  (self-employed higher and more dispersed, retired and other lower), a region level and the
  latent creditworthiness ``z``.
* Bureau: thin file (null score, no history, no accounts, no utilisation) for about 12% of
  applicants, far more often for the young. Otherwise delinquencies, worst days past due,
  inquiries, utilisation and history length depend on ``z``, and the score (300..900) is built
  from ``z`` minus delinquency and inquiry penalties plus a history-length bonus.
* Vehicle: condition and segment depend on time, income and each other; the price on the segment,
  income (elasticity 0.8) and, for used cars, the vehicle's age. The down payment is at least the
  market minimum (the loan share cap applies to price minus down payment: private conventional
  80%, commercial conventional 70%, private electric 85%, commercial electric 75%, used 70%),
  about a third of applicants pay exactly the minimum; the loan is price minus down payment plus
  fees of 0..2% of the price. Terms are 12..60 months for new cars, at most 36 for used ones;
  applicants lean towards terms whose payment stays below about a quarter of their income, so the
  payment-to-income ratio has a median near 0.25 and a 99th percentile near 0.7.
* Rate: priced on the bureau score, thin file, condition, term and channel, with dealer promotions
  on some new cars; 0.03..0.25.
* Dealers: ``n_dealers`` with long-tailed (lognormal) volume, each in a region; 90% of dealer-channel
  applicants use a dealer in their own region. Direct and online applications have no dealer.

Truth: default log-odds (then the logistic function)
----------------------------------------------------
``relu(x) = max(x, 0)``; payments come from :func:`scoring.core.finance.monthly_payment`.

=========================  ==================================================================
term                       effect on the log-odds
=========================  ==================================================================
intercept                  ``INTERCEPT`` (-5.6; the terms below are not centred): about 7%
                           defaults on labelled rows, true-pd AUC about 0.89
bureau score ``s``         ``-2.0 * tanh((s - 650) / 120) + 0.8 * relu((540 - s) / 50)``:
                           about +2.3 at 500, 0 at 650, -1.7 at 800
thin file (null score)     +2.1 (missingness carries signal); it stands in for the score,
                           utilisation and delinquency terms, which thin files lack: they
                           default about 1.6 times as often as applicants with a file
payment-to-income ``pti``  ``0.8 * pti + 3.0 * relu(pti - 0.35)`` (kink at 0.35; pti capped 1.5)
debt-to-income ``dti``     ``0.6 * dti + 2.0 * relu(dti - 0.5)`` with the new payment
                           (kink at 0.5; dti capped at 2)
loan-to-value ``ltv``      ``1.5 * (ltv - 0.6) + 3.0 * relu(ltv - 0.75)``
used x high LTV            ``+5.0 * relu(ltv - 0.55)`` for used cars (+0.85 at the 72% maximum)
revolving utilisation      ``0.8 * min(u, 1.5) + 1.0 * relu(u - 0.8)``; null with a file: +0.15
inquiries (6m)             ``0.35 * log1p(min(n, 10))``
delinquencies (24m)        ``0.3 * min(n, 5)`` plus worst dpd 30: +0.25, 60: +0.55, 90: +0.95,
                           120: +1.2
age                        U-shape ``0.0008 * (age - 45) ** 2`` (+0.5 at 20 and at 70)
employment years           ``-0.3 * log1p(min(years, 30))``
employment type            self_employed +0.15, civil_servant -0.35, other +0.3
unverified income          +0.15, and +0.6 more for the self-employed
housing                    own -0.15, mortgage -0.05, rent +0.15
dealer                     normal dealers N(0, 0.15); ``bad_dealer_share`` of dealers U(0.8, 1.2)
macro cycle                ``+0.35`` at the peak of a downturn centred at 70% of the window
                           (raised cosine, half-width 15% of the window; by application month);
                           ``macro_cycle: false`` turns it off (a stable simulation)
unobserved noise           N(0, 0.15) per application
=========================  ==================================================================

:func:`observable_log_odds` is the part computed from the application columns alone (every row
above except dealer, macro and noise); :func:`true_log_odds` adds dealer and macro effects, and
:func:`generate_portfolio` adds the noise. ``default_12m`` is a Bernoulli draw from the true
probability, null for applications in the last ``immature_months`` months.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import (
    AUTO_LOAN_COLUMNS,
    CHANNELS,
    EMPLOYMENT_TYPES,
    HOUSING_STATUSES,
    MARITAL_STATUSES,
    OUTCOME_COLUMN,
    REPAYMENT_METHODS,
    TERMS_NEW,
    TERMS_USED,
    TRUE_PD_COLUMN,
    VEHICLE_CONDITIONS,
    VEHICLE_SEGMENTS,
    VEHICLE_USES,
)
from scoring.core.finance import monthly_payment
from scoring.data.config import SyntheticDataConfig

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# ------------------------------------------------------------------ truth parameters (documented above)

INTERCEPT = -5.6
THIN_FILE_EFFECT = 2.1
NO_REVOLVING_EFFECT = 0.15
DPD_EFFECTS: dict[int, float] = {0: 0.0, 30: 0.25, 60: 0.55, 90: 0.95, 120: 1.2}
EMPLOYMENT_EFFECTS: dict[str, float] = {
    "salaried": 0.0,
    "self_employed": 0.15,
    "civil_servant": -0.35,
    "retired": 0.0,
    "other": 0.3,
}
HOUSING_EFFECTS: dict[str, float] = {"own": -0.15, "mortgage": -0.05, "rent": 0.15, "family": 0.0}
UNVERIFIED_EFFECT = 0.15
SELF_EMPLOYED_UNVERIFIED_EFFECT = 0.6
NORMAL_DEALER_SD = 0.15
BAD_DEALER_EFFECT = (0.8, 1.2)
MACRO_PEAK = 0.35
MACRO_CENTRE = 0.70
MACRO_HALF_WIDTH = 0.15
NOISE_SD = 0.15

# ------------------------------------------------------------------ market rules (loan share caps)

# maximum (price - down payment) / price
CAP_NEW_PRIVATE = 0.80
CAP_NEW_COMMERCIAL = 0.70
CAP_ELECTRIC_PRIVATE = 0.85
CAP_ELECTRIC_COMMERCIAL = 0.75
CAP_USED = 0.70
MAX_FEE_SHARE = 0.02

_SEGMENT_BASE_PRICE = np.array(
    [75_000.0, 130_000.0, 170_000.0, 350_000.0, 150_000.0]
)  # VEHICLE_SEGMENTS order
_REFERENCE_INCOME = 9_000.0


# ------------------------------------------------------------------ small helpers


def _relu(x: FloatArray) -> FloatArray:
    return np.maximum(x, 0.0)


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _draw_categories(rng: np.random.Generator, logits: FloatArray) -> IntArray:
    """One category index per row from an (n, k) matrix of unnormalised log-probabilities."""
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(logits)) * cum[:, -1]
    codes = (u[:, None] >= cum).sum(axis=1)
    return np.asarray(np.minimum(codes, logits.shape[1] - 1), dtype=np.int64)


def _levels(codes: IntArray, levels: Sequence[str]) -> pd.Series:
    """Codes to a plain pandas string column; code -1 becomes null."""
    table = np.array([*levels, None], dtype=object)
    return pd.Series(table[np.where(codes < 0, len(levels), codes)], dtype="str")


def _ids(prefix: str, numbers: IntArray, width: int) -> pd.Series:
    return prefix + pd.Series(numbers).astype("str").str.zfill(width)


def month_starts(start_date: dt.date, months: int) -> npt.NDArray[np.datetime64]:
    """First day of each application month and of the month after the window (months + 1 dates)."""
    start = pd.Timestamp(start_date)
    return np.array(
        [(start + pd.DateOffset(months=k)).to_datetime64() for k in range(months + 1)], dtype="datetime64[D]"
    )


def month_index(dates: pd.Series | npt.NDArray[np.datetime64], config: SyntheticDataConfig) -> IntArray:
    """Application month of each date, 0 = the month starting at ``config.start_date``."""
    starts = month_starts(config.start_date, config.months)
    days = np.asarray(dates, dtype="datetime64[D]")
    return np.asarray(np.searchsorted(starts, days, side="right") - 1, dtype=np.int64)


def maturity_cutoff(config: SyntheticDataConfig) -> pd.Timestamp:
    """First application date whose ``default_12m`` is null (the immature months start here)."""
    return pd.Timestamp(
        month_starts(config.start_date, config.months)[config.months - config.immature_months]
    )


def macro_effect(months_index: npt.ArrayLike, months: int) -> FloatArray:
    """Log-odds added by the macro cycle: a raised-cosine downturn late in the window."""
    t = np.asarray(months_index, dtype=np.float64) / max(months - 1, 1)
    x = (t - MACRO_CENTRE) / MACRO_HALF_WIDTH
    return np.asarray(np.where(np.abs(x) < 1.0, MACRO_PEAK * 0.5 * (1.0 + np.cos(np.pi * x)), 0.0))


def _loan_share_cap(used: BoolArray, commercial: BoolArray, electric: BoolArray) -> FloatArray:
    new_cap = np.where(
        electric,
        np.where(commercial, CAP_ELECTRIC_COMMERCIAL, CAP_ELECTRIC_PRIVATE),
        np.where(commercial, CAP_NEW_COMMERCIAL, CAP_NEW_PRIVATE),
    )
    return np.asarray(np.where(used, CAP_USED, new_cap), dtype=np.float64)


def max_loan_share(condition: npt.ArrayLike, use: npt.ArrayLike, segment: npt.ArrayLike) -> FloatArray:
    """Market cap on (vehicle_price - down_payment) / vehicle_price for each application."""
    return _loan_share_cap(
        np.asarray(condition, dtype=object) == "used",
        np.asarray(use, dtype=object) == "commercial",
        np.asarray(segment, dtype=object) == "electric",
    )


# ------------------------------------------------------------------ dealers and regions


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the applications and for the portfolio's regions and dealers."""
    main, meta = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(main), np.random.default_rng(meta)


def _regions_and_dealers(
    config: SyntheticDataConfig, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray, pd.DataFrame]:
    """Region volume weights, region log-income levels and the dealer table."""
    region_weights = np.asarray(rng.dirichlet(np.full(config.n_regions, 3.0)), dtype=np.float64)
    region_income = np.asarray(rng.normal(0.0, 0.18, config.n_regions), dtype=np.float64)
    region_income -= region_income @ region_weights  # regions differ, the national level does not
    n = config.n_dealers
    region = rng.choice(config.n_regions, size=n, p=region_weights)
    weight = rng.lognormal(0.0, 1.4, n)
    effect = rng.normal(0.0, NORMAL_DEALER_SD, n)
    n_bad = round(config.bad_dealer_share * n)
    is_bad = np.zeros(n, dtype=bool)
    is_bad[rng.choice(n, size=n_bad, replace=False)] = True
    effect[is_bad] = rng.uniform(*BAD_DEALER_EFFECT, size=n_bad)
    width = max(4, len(str(n)))
    dealers = pd.DataFrame(
        {
            "dealer_id": _ids("D", np.arange(1, n + 1, dtype=np.int64), width),
            "region": _levels(region.astype(np.int64), _region_names(config.n_regions)),
            "region_code": region.astype(np.int64),
            "weight": weight / weight.sum(),
            "effect": effect,
            "is_bad": is_bad,
        }
    )
    return region_weights, region_income, dealers


def dealer_table(config: SyntheticDataConfig, seed: int) -> pd.DataFrame:
    """The dealers of a portfolio: dealer_id, region, region_code, volume weight, log-odds effect, is_bad.

    Deterministic from (config, seed): the same table that :func:`generate_portfolio` uses.
    """
    return _regions_and_dealers(config, _streams(seed)[1])[2]


def _region_names(n_regions: int) -> list[str]:
    return [f"R{k:02d}" for k in range(1, n_regions + 1)]


def _pick_dealers(
    rng: np.random.Generator,
    region: IntArray,
    dealers: pd.DataFrame,
    n_regions: int,
    local_share: float = 0.9,
) -> IntArray:
    """A dealer index per row, usually one in the row's region (weighted by dealer volume)."""
    n = len(region)
    order = np.argsort(dealers["region_code"].to_numpy(), kind="stable")
    dealer_region = dealers["region_code"].to_numpy()[order]
    cum = np.cumsum(dealers["weight"].to_numpy()[order])
    lo_idx = np.searchsorted(dealer_region, np.arange(n_regions), side="left")
    hi_idx = np.searchsorted(dealer_region, np.arange(n_regions), side="right")
    cum0 = np.concatenate([[0.0], cum])
    lo, hi = cum0[lo_idx][region], cum0[hi_idx][region]
    local = (rng.random(n) < local_share) & (hi > lo)
    lo = np.where(local, lo, 0.0)
    hi = np.where(local, hi, cum0[-1])
    target = lo + rng.random(n) * (hi - lo)
    pos = np.minimum(np.searchsorted(cum, target, side="right"), len(cum) - 1)
    return np.asarray(order[pos], dtype=np.int64)


# ------------------------------------------------------------------ truth


def _col(frame: pd.DataFrame, name: str) -> FloatArray:
    return np.asarray(frame[name].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _str_col(frame: pd.DataFrame, name: str) -> npt.NDArray[np.object_]:
    return np.asarray(frame[name].astype(object).to_numpy(), dtype=object)


def observable_log_odds(applications: pd.DataFrame) -> FloatArray:
    """The part of the true default log-odds that the application columns determine.

    Includes the intercept; excludes dealer effects, the macro cycle and the unobserved noise
    (see the module docstring for every term and its size).
    """
    score = _col(applications, "bureau_score")
    thin = np.isnan(score)
    income = _col(applications, "monthly_income")
    price = _col(applications, "vehicle_price")
    loan = _col(applications, "loan_amount")
    payment = monthly_payment(
        loan,
        _col(applications, "annual_rate"),
        _col(applications, "term_months"),
        _str_col(applications, "repayment_method"),
    )
    pti = np.minimum(payment / income, 1.5)
    dti = np.minimum((_col(applications, "existing_monthly_debt") + payment) / income, 2.0)
    ltv = loan / price
    used = _str_col(applications, "vehicle_condition") == "used"
    util = _col(applications, "revolving_utilization")
    dpd = _col(applications, "max_dpd_24m")
    employment = _str_col(applications, "employment_type")
    verified = applications["income_verified"].to_numpy(dtype=bool)

    s = np.where(thin, 650.0, score)
    out = np.full(len(applications), INTERCEPT)
    out += np.where(
        thin, THIN_FILE_EFFECT, -2.0 * np.tanh((s - 650.0) / 120.0) + 0.8 * _relu((540.0 - s) / 50.0)
    )
    out += 0.8 * pti + 3.0 * _relu(pti - 0.35)
    out += 0.6 * dti + 2.0 * _relu(dti - 0.5)
    out += 1.5 * (ltv - 0.6) + 3.0 * _relu(ltv - 0.75)
    out += np.where(used, 5.0 * _relu(ltv - 0.55), 0.0)
    u = np.minimum(np.nan_to_num(util, nan=0.0), 1.5)
    out += np.where(np.isnan(util), np.where(thin, 0.0, NO_REVOLVING_EFFECT), 0.8 * u + 1.0 * _relu(u - 0.8))
    out += 0.35 * np.log1p(np.minimum(_col(applications, "inquiries_6m"), 10.0))
    out += 0.3 * np.minimum(_col(applications, "delinquencies_24m"), 5.0)
    dpd_levels = np.array(sorted(DPD_EFFECTS))
    dpd_pos = np.clip(np.searchsorted(dpd_levels, dpd, side="right") - 1, 0, len(dpd_levels) - 1)
    out += np.array([DPD_EFFECTS[k] for k in dpd_levels])[dpd_pos]
    out += 0.0008 * (_col(applications, "age") - 45.0) ** 2
    out += -0.3 * np.log1p(np.minimum(_col(applications, "employment_years"), 30.0))
    for level, effect in EMPLOYMENT_EFFECTS.items():
        out += np.where(employment == level, effect, 0.0)
    out += np.where(
        verified,
        0.0,
        UNVERIFIED_EFFECT + np.where(employment == "self_employed", SELF_EMPLOYED_UNVERIFIED_EFFECT, 0.0),
    )
    housing = _str_col(applications, "housing_status")
    for level, effect in HOUSING_EFFECTS.items():
        out += np.where(housing == level, effect, 0.0)
    return np.asarray(out, dtype=np.float64)


def true_log_odds(
    applications: pd.DataFrame,
    config: SyntheticDataConfig,
    dealers: pd.DataFrame,
    noise: FloatArray | None = None,
) -> FloatArray:
    """Observable log-odds plus the dealer effect (``dealers`` from :func:`dealer_table`), the macro
    cycle of the application month and, when given, the unobserved per-application noise."""
    effects = pd.Series(dealers["effect"].to_numpy(), index=dealers["dealer_id"].to_numpy())
    dealer = applications["dealer_id"].map(effects).to_numpy(dtype=np.float64, na_value=0.0)
    macro = macro_effect(month_index(applications["application_date"], config), config.months)
    macro = macro * float(config.macro_cycle)
    out = observable_log_odds(applications) + np.nan_to_num(dealer, nan=0.0) + macro
    if noise is not None:
        out = out + noise
    return np.asarray(out, dtype=np.float64)


# ------------------------------------------------------------------ the generator


def portfolio_blocks(config: SyntheticDataConfig) -> list[tuple[int, int]]:
    """(first row, rows) of each generation block: ``block_rows`` rows each, the last one shorter."""
    n, size = config.n_applications, config.block_rows
    return [(first, min(size, n - first)) for first in range(0, n, size)]


def block_stream(seed: int, block: int) -> np.random.Generator:
    """The generator of one block's applications: block 0 draws from the portfolio's main stream
    (so a portfolio of one block is the single-stream portfolio), block k > 0 from its own child
    of that stream; nothing depends on how many blocks there are or who generates them."""
    if block == 0:
        return _streams(seed)[0]
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, block)))


def generate_portfolio(config: SyntheticDataConfig, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (applications, truth): every block of :func:`generate_block`, in order.

    With ``n_applications <= block_rows`` (the embedded default) that is one block: sorted by
    application_date then application_id. Larger portfolios are sorted so within each block.
    """
    started = time.perf_counter()
    blocks = [generate_block(config, seed, number) for number in range(len(portfolio_blocks(config)))]
    if len(blocks) == 1:
        applications, truth = blocks[0]
    else:
        applications = pd.concat([b[0] for b in blocks], ignore_index=True)
        truth = pd.concat([b[1] for b in blocks], ignore_index=True)
    labelled = applications["default_12m"].notna().to_numpy()
    outcome = truth[OUTCOME_COLUMN].to_numpy()
    logger.info(
        "synthetic portfolio: %d applications in %d blocks, %d labelled, default rate %.4f, "
        "mean true_pd %.4f, %.2fs",
        len(applications),
        len(blocks),
        int(labelled.sum()),
        float(outcome[labelled].mean()) if labelled.any() else float("nan"),
        float(truth[TRUE_PD_COLUMN].mean()),
        time.perf_counter() - started,
    )
    return applications, truth


def generate_block(config: SyntheticDataConfig, seed: int, block: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (applications, truth) of one block of the portfolio (see :func:`portfolio_blocks`).

    applications has exactly the columns of contract.AUTO_LOAN_COLUMNS in that order, sorted by
    application_date then application_id; truth has columns application_id, true_pd
    (contract.TRUE_PD_COLUMN) and the drawn 12-month outcome of every application, matured or not
    (contract.OUTCOME_COLUMN), one row per application, same order.

    Each block is a whole sub-portfolio over the full window, drawn from its own stream
    (:func:`block_stream`); application ids number the rows portfolio-wide, and customer numbers
    start after the block's first row, so ids are unique across blocks. A repeat customer's
    earlier application is in the same block. Regions and dealers are the portfolio's.
    """
    layout = portfolio_blocks(config)
    if not 0 <= block < len(layout):
        raise ValueError(f"block {block}: expected 0..{len(layout) - 1} for {config.n_applications} rows")
    first_row, n = layout[block]
    rng = block_stream(seed, block)
    _, meta_rng = _streams(seed)
    months = config.months
    region_weights, region_income, dealers = _regions_and_dealers(config, meta_rng)

    # --- dates: volume grows mildly; months have their real length
    starts = month_starts(config.start_date, months)
    days_in = (starts[1:] - starts[:-1]).astype(np.int64)
    volume = days_in * np.exp(0.35 * np.arange(months) / max(months - 1, 1))
    month = np.sort(rng.choice(months, size=n, p=volume / volume.sum()))
    day = np.floor(rng.random(n) * days_in[month]).astype(np.int64)
    date_days = np.sort(starts[month] + day.astype("timedelta64[D]"))
    month = np.searchsorted(starts, date_days, side="right") - 1
    t = month / max(months - 1, 1)

    # --- repeat customers: a row points at an earlier-dated row of the same customer
    earlier = np.searchsorted(date_days, date_days, side="left")
    eligible = np.flatnonzero(earlier > 0)
    n_repeat = min(round(config.repeat_customer_share * n), len(eligible))
    repeat_rows = np.sort(rng.choice(eligible, size=n_repeat, replace=False))
    root = np.arange(n, dtype=np.int64)
    root[repeat_rows] = np.floor(rng.random(n_repeat) * earlier[repeat_rows]).astype(np.int64)
    while True:  # pointer jumping to the customer's first application; depth is small
        nxt = root[root]
        if np.array_equal(nxt, root):
            break
        root = nxt
    is_repeat = root != np.arange(n)
    customer_number = np.cumsum(~is_repeat)[root]

    # --- stable attributes (copied for repeat customers)
    age_exact = np.minimum(18.0 + rng.gamma(3.0, 6.0, n), 80.99)
    elapsed_years = (date_days - date_days[root]).astype(np.float64) / 365.25
    age_exact = np.where(is_repeat, np.minimum(age_exact[root] + elapsed_years, 80.99), age_exact)
    age = np.floor(age_exact).astype(np.int64)
    region = rng.choice(config.n_regions, size=n, p=region_weights)[root]
    z = rng.standard_normal(n)
    z = np.where(is_repeat, 0.85 * z[root] + np.sqrt(1 - 0.85**2) * z, z)
    first_age = age_exact  # only a customer's first row is read below ([root])
    retired_logit = (first_age - 60.0) / 2.5
    emp_logits = np.column_stack(
        [
            np.full(n, 1.6) + 0.2 * z,  # salaried
            np.full(n, 0.7) - 0.1 * z,  # self_employed
            np.full(n, 0.1) + 0.3 * z,  # civil_servant
            retired_logit + 1.6,  # retired
            np.full(n, 0.0) - 0.3 * z,  # other
        ]
    )
    employment = _draw_categories(rng, emp_logits)[root]
    mar_logits = np.column_stack(
        [
            -(first_age - 29.0) / 3.5,  # single
            np.full(n, 0.8),  # married
            np.full(n, -2.3) + 0.02 * (first_age - 40.0),  # divorced
            (first_age - 72.0) / 5.0,  # widowed
        ]
    )
    marital = _draw_categories(rng, mar_logits)[root]
    is_self_employed = employment == 1
    is_retired = employment == 3

    # --- channel: online rises over time and among the young
    ch_logits = np.column_stack(
        [np.zeros(n), np.full(n, -1.6), -2.1 + 1.65 * t - 0.03 * (age - 35.0)]  # dealer, direct, online
    )
    channel = _draw_categories(rng, ch_logits)

    # --- income and employment years
    emp_income = np.array([0.0, 0.15, 0.05, -0.35, -0.3])[employment]
    emp_sd = np.array([0.4, 0.6, 0.3, 0.35, 0.5])[employment]
    log_income = (
        np.log(_REFERENCE_INCOME)
        - 0.0009 * (np.minimum(age_exact, 70.0) - 45.0) ** 2
        + 0.17
        + emp_income
        + region_income[region]
        + 0.2 * z
        + emp_sd * rng.standard_normal(n)
    )
    monthly_income = np.round(np.clip(np.exp(log_income), 1_500.0, 500_000.0), -1)
    working_years = np.maximum(age_exact - 18.0, 0.0)
    emp_years = rng.gamma(
        1.4, 1.0 + 0.22 * working_years * np.where(employment == 2, 1.6, 1.0) + 0.4 * z.clip(0)
    )
    emp_years = np.where(is_retired, 0.0, np.round(np.minimum(emp_years, working_years), 1))
    verified_logit = np.array([1.8, 0.0, 3.0, 2.2, 0.4])[employment] - 0.6 * (channel == 2) + 0.2 * z
    income_verified = rng.random(n) < _sigmoid(verified_logit)

    # --- household
    li = np.log(monthly_income / _REFERENCE_INCOME)
    married = marital == 1
    house_logits = np.column_stack(
        [
            0.04 * (age - 35.0) + 0.2 * li + 0.3,  # own
            -0.04 * np.abs(age - 40.0) + 0.8 * li + 0.3 * married,  # mortgage
            -0.03 * (age - 30.0) - 0.5 * li - 0.3 * z,  # rent
            -0.12 * (age - 26.0) - 0.6 * married - 0.5,  # family
        ]
    )
    housing = _draw_categories(rng, house_logits)
    res_mean = np.array([9.0, 5.0, 2.5, 12.0])[housing] + 0.05 * working_years
    residence_years = np.round(np.minimum(rng.gamma(1.5, res_mean / 1.5), age_exact), 1)
    dep_lambda = 0.15 + 1.1 * married + 0.4 * ((age >= 28) & (age <= 55)) + 0.3 * (marital == 2)
    dependents = np.minimum(rng.poisson(dep_lambda), 8).astype(np.int64)

    # --- bureau
    thin_logit = -1.35 - 0.11 * (age_exact - 25.0) + 0.5 * (employment == 4) - 0.3 * z + 0.3 * (channel == 2)
    thin = rng.random(n) < _sigmoid(thin_logit)
    history_cap = np.maximum((age_exact - 17.5) * 12.0, 6.0)
    history = np.maximum(np.round(history_cap * rng.beta(2.0, 1.6, n)), 6.0)
    open_accounts = 1 + rng.poisson(np.exp(0.5 + 0.25 * li + 0.004 * np.minimum(history, 240.0) - 0.1 * z))
    delinquencies = np.minimum(rng.poisson(np.exp(-2.1 - 0.95 * z + 0.1 * np.log1p(open_accounts))), 15)
    severity = np.minimum(1 + rng.poisson(np.exp(-0.8 - 0.45 * z + 0.15 * (delinquencies - 1))), 4)
    max_dpd = np.where(delinquencies > 0, 30 * severity, 0)
    inquiries = np.minimum(rng.poisson(np.exp(-0.2 - 0.35 * z + 0.25 * (age < 28) - 0.2 * thin)), 20)
    util_raw = _sigmoid(-0.5 - 0.9 * z + 0.8 * rng.standard_normal(n)) * 1.25
    has_revolving = rng.random(n) > 0.07
    utilization = np.where(thin | ~has_revolving, np.nan, np.round(util_raw, 3))
    score_raw = (
        600.0
        + 62.0 * (0.8 * z + 0.6 * rng.standard_normal(n))
        - 22.0 * np.minimum(delinquencies, 6)
        - 0.12 * max_dpd
        - 7.0 * np.minimum(inquiries, 8)
        + 11.0 * np.log1p(history)
    )
    bureau_score = np.clip(np.round(score_raw), 300, 900)
    bureau_score = np.where(thin, np.nan, bureau_score)
    history = np.where(thin, 0, history).astype(np.int64)
    open_accounts = np.where(thin, 0, open_accounts).astype(np.int64)
    delinquencies = np.where(thin, 0, delinquencies).astype(np.int64)
    max_dpd = np.where(thin, 0, max_dpd).astype(np.int64)
    inquiries = inquiries.astype(np.int64)

    # --- other debts and spending
    has_debt = rng.random(n) < np.where(housing == 1, 0.95, np.where(thin, 0.15, 0.55))
    debt_ratio = np.exp(np.log(np.where(housing == 1, 0.25, 0.10)) - 0.15 * z + 0.5 * rng.standard_normal(n))
    existing_debt = np.where(has_debt, np.round(monthly_income * np.minimum(debt_ratio, 1.2), -1), 0.0)
    spend_ratio = np.exp(np.log(0.35) - 0.12 * z + 0.35 * rng.standard_normal(n))
    spend_missing = rng.random(n) < np.where(thin, 0.45, 0.12)
    avg_spend = np.where(spend_missing, np.nan, np.round(monthly_income * spend_ratio, 0))

    # --- vehicle
    used = rng.random(n) < _sigmoid(-1.45 + 0.85 * t - 0.5 * li + 0.2 * (channel == 2))
    seg_logits = np.column_stack(
        [
            np.zeros(n) - 0.9 * li,  # economy
            0.2 + 0.5 * li,  # midsize
            0.1 + 0.5 * li,  # suv
            -2.6 + 2.0 * li,  # luxury
            -2.1 + 3.0 * t + 0.3 * li - 1.5 * used,  # electric
        ]
    )
    segment = _draw_categories(rng, seg_logits)
    electric = segment == 4
    commercial = rng.random(n) < np.where(is_self_employed, 0.22, np.where(employment == 4, 0.15, 0.05))
    vehicle_age = np.where(used, np.round(np.clip(rng.gamma(2.0, 2.2, n), 0.5, 15.0), 1), 0.0)
    price = (
        _SEGMENT_BASE_PRICE[segment]
        * np.exp(0.8 * li + 0.2 * rng.standard_normal(n))
        * np.exp(-0.12 * vehicle_age)
    )
    price = np.round(np.clip(price, 20_000.0, 3_000_000.0), -2)

    # --- loan structure
    # applicants lean towards a term whose payment they can afford (approximate payment share)
    cap = _loan_share_cap(used, commercial, electric)
    rough_loan = price * cap * 0.85

    def term_logits(terms: Sequence[int], preference: Sequence[float]) -> FloatArray:
        cols = [
            pref - 8.0 * _relu(rough_loan * (1.0 / k + 0.006) / monthly_income - 0.25)
            for k, pref in zip(terms, preference, strict=True)
        ]
        return np.asarray(np.column_stack(cols), dtype=np.float64)

    term_new = _draw_categories(rng, term_logits(TERMS_NEW, (-1.2, -0.3, 0.3, -0.1, -0.2)))
    term_used = _draw_categories(rng, term_logits(TERMS_USED, (-0.6, 0.1, 0.3)))
    term = np.where(used, np.array(TERMS_USED)[term_used], np.array(TERMS_NEW)[term_new]).astype(np.int64)
    min_down = np.ceil(price * (1.0 - cap) / 100.0) * 100.0
    at_minimum = rng.random(n) < _sigmoid(-0.7 - 0.4 * z - 0.5 * li)
    extra_share = rng.beta(1.3, 3.5, n) * 0.85 * cap * _sigmoid(0.4 + 0.6 * li + 0.3 * z)
    down_payment = np.where(
        at_minimum, min_down, np.maximum(min_down, np.round(price * (1 - cap + extra_share), -2))
    )
    down_payment = np.minimum(down_payment, price - 1_000.0)
    fees = np.where(rng.random(n) < 0.4, 0.0, np.round(rng.uniform(0.0, MAX_FEE_SHARE, n) * price, 0))
    loan_amount = price - down_payment + fees
    repayment = (rng.random(n) < np.where(channel == 1, 0.35, 0.15)).astype(np.int64)

    # --- dealers
    dealer_idx = _pick_dealers(rng, region, dealers, config.n_regions)
    dealer_idx = np.where(channel == 0, dealer_idx, -1)

    # --- rate: priced on risk, condition, term and channel
    score_for_rate = np.where(thin, 600.0, np.nan_to_num(bureau_score, nan=600.0))
    promo = (channel == 0) & ~used & (rng.random(n) < 0.15)
    rate = (
        0.055
        + 0.035 * used
        + 0.00012 * np.clip(700.0 - score_for_rate, -150.0, 300.0)
        + 0.02 * thin
        + 0.01 * (channel == 2)
        + 0.0025 * (term / 12.0 - 3.0)
        + 0.012 * np.minimum(delinquencies, 3)
        + 0.006 * rng.standard_normal(n)
    )
    rate = np.where(promo, rng.uniform(0.03, 0.045, n), rate)
    rate = np.round(np.clip(rate, 0.03, 0.25), 4)

    # --- assemble in contract order
    width = max(7, len(str(config.n_applications)))
    applications = pd.DataFrame(
        {
            "application_id": _ids("A", np.arange(first_row + 1, first_row + n + 1, dtype=np.int64), width),
            "customer_id": _ids("C", first_row + customer_number.astype(np.int64), width),
            "application_date": pd.Series(date_days.astype("datetime64[ns]")),
            "age": age,
            "employment_type": _levels(employment, EMPLOYMENT_TYPES),
            "employment_years": emp_years.astype(np.float64),
            "monthly_income": monthly_income,
            "income_verified": income_verified,
            "housing_status": _levels(housing, HOUSING_STATUSES),
            "residence_years": residence_years.astype(np.float64),
            "marital_status": _levels(marital, MARITAL_STATUSES),
            "dependents": dependents,
            "region": _levels(region.astype(np.int64), _region_names(config.n_regions)),
            "bureau_score": pd.array(bureau_score, dtype="Int64"),
            "credit_history_months": history,
            "open_accounts": open_accounts,
            "delinquencies_24m": delinquencies,
            "max_dpd_24m": max_dpd,
            "inquiries_6m": inquiries,
            "revolving_utilization": utilization,
            "existing_monthly_debt": existing_debt,
            "avg_monthly_spend_6m": avg_spend,
            "vehicle_price": price,
            "vehicle_condition": _levels(used.astype(np.int64), VEHICLE_CONDITIONS),
            "vehicle_age_years": vehicle_age,
            "vehicle_segment": _levels(segment, VEHICLE_SEGMENTS),
            "vehicle_use": _levels(commercial.astype(np.int64), VEHICLE_USES),
            "down_payment": down_payment,
            "loan_amount": loan_amount,
            "term_months": term,
            "annual_rate": rate,
            "repayment_method": _levels(repayment, REPAYMENT_METHODS),
            "channel": _levels(channel, CHANNELS),
            "dealer_id": _levels(dealer_idx, dealers["dealer_id"].tolist()),
        }
    )

    # --- truth and outcome
    noise = NOISE_SD * rng.standard_normal(n)
    true_pd = _sigmoid(true_log_odds(applications, config, dealers, noise))
    outcome = (rng.random(n) < true_pd).astype(np.int64)
    immature = month >= months - config.immature_months
    applications["default_12m"] = pd.arrays.IntegerArray(np.where(immature, 0, outcome), immature.copy())
    applications = applications[[c.name for c in AUTO_LOAN_COLUMNS]]
    truth = pd.DataFrame(
        {"application_id": applications["application_id"], TRUE_PD_COLUMN: true_pd, OUTCOME_COLUMN: outcome}
    )
    return applications, truth
