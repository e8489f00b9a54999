"""Account-month snapshots for the behaviour score: what the payment history says at a month, and
whether the account reaches 90+ in the months after it.

One row per account and month in which the account is on book and not yet in default (bucket
current..M3, status active): the accounts a behaviour score ranks and a collections queue works.
Accounts already at M4+ or written off are past the score's question. Every feature uses the
history up to and including the snapshot month only:

====================  ==========================================================================
bucket                0 current .. 3 M3, and ``days_past_due``
worst_bucket_6m/12m   the worst bucket over the last 6 / 12 months on book (this one included)
months_delinquent_12m months at M1 or worse among the last 12
months_since_delinq   months since the last month at M1 or worse (``NO_DELINQUENCY`` if never)
paid_ratio_3m/6m      paid over scheduled, the last 3 / 6 months (capped at 3; 1 when nothing was due)
months_on_book        and ``remaining_term`` (the term less months on book, 0 after it)
balance_share         outstanding principal over the loan amount
current_ltv           outstanding principal over the car's value now: the price depreciated at the
                      condition's yearly rate (params) for its age at origination plus the months
                      on book
payment_to_income     this month's scheduled payment over the monthly income
application_pd        and ``application_score``: the application model's output at origination
====================  ==========================================================================

plus the loan's terms (rate, term, repayment method, condition). The target
``default_{horizon}m`` is 1 when the account reaches M4+ or is written off within the next
``horizon`` months, 0 when it does not (an account that pays off in that time does not), and
missing when any of those months lies after the history's last month.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scoring.core.contract import BUCKETS
from scoring.core.frames import level_codes
from scoring.monitoring.performance import month_number

NO_DELINQUENCY = 999
PAID_RATIO_CAP = 3.0
M4 = BUCKETS.index("M4+")
TERMS = ("annual_rate", "term_months", "repayment_method", "vehicle_condition", "loan_amount")


def _shift(values: np.ndarray, k: int, same_loan: np.ndarray, fill: float) -> np.ndarray:
    """``values`` k rows back within the same loan (rows sorted by loan then month), else ``fill``."""
    out = np.full(len(values), fill, dtype=np.float64)
    if k < len(values):
        out[k:] = values[:-k] if k else values
        out[:k] = fill
    return np.where(same_loan, out, fill)


def _same_loan_back(loan: np.ndarray, k: int) -> np.ndarray:
    """True where the row k rows back belongs to the same loan."""
    same = np.zeros(len(loan), dtype=bool)
    if 0 < k < len(loan):
        same[k:] = loan[k:] == loan[:-k]
    elif k == 0:
        same[:] = True
    return same


def car_value(
    price: np.ndarray, condition: np.ndarray, age_years: np.ndarray, depreciation: Mapping[str, float]
) -> np.ndarray:
    """The car's value at ``age_years``: the price less ``depreciation[condition]`` a year, compounded."""
    # an unknown condition depreciates at the fastest listed rate (the cautious value)
    known = pd.Series(np.asarray(condition)).astype(str).map(depreciation)
    rates = known.fillna(max(depreciation.values())).to_numpy(dtype=np.float64)
    return np.asarray(price * np.power(1.0 - rates, np.maximum(age_years, 0.0)), dtype=np.float64)


def account_snapshots(
    history: pd.DataFrame,
    applications: pd.DataFrame,
    application_scores: pd.DataFrame | None,
    depreciation: Mapping[str, float],
    horizon: int = 6,
    id_column: str = "application_id",
) -> pd.DataFrame:
    """The behaviour score's rows (module docstring): features, the loan's terms and the target.

    ``application_scores``: the application model's ``pd`` and ``score`` by ``application_id``
    (None: those two features are left out).
    """
    frame = history.sort_values(["loan_id", "as_of_month"], kind="stable").reset_index(drop=True)
    n = len(frame)
    loan_codes, _ = pd.factorize(frame["loan_id"])
    rank = level_codes(frame["bucket"], BUCKETS)
    mob = frame["months_on_book"].to_numpy(dtype=np.int64)
    month = month_number(frame["as_of_month"])
    paid = frame["amount_paid"].to_numpy(dtype=np.float64)
    scheduled = frame["scheduled_payment"].to_numpy(dtype=np.float64)
    delinquent = (rank >= 1).astype(np.float64)

    features: dict[str, np.ndarray] = {"bucket": rank.astype(np.float64)}
    features["days_past_due"] = frame["days_past_due"].to_numpy(dtype=np.float64)
    for window in (6, 12):
        worst = rank.astype(np.float64)
        for k in range(1, window):
            worst = np.maximum(
                worst, _shift(rank.astype(np.float64), k, _same_loan_back(loan_codes, k), -1.0)
            )
        features[f"worst_bucket_{window}m"] = worst
    count = delinquent.copy()
    for k in range(1, 12):
        count += _shift(delinquent, k, _same_loan_back(loan_codes, k), 0.0)
    features["months_delinquent_12m"] = count
    last_index = np.where(rank >= 1, np.arange(n), -1)
    last_index = pd.Series(last_index).groupby(loan_codes).cummax().to_numpy()
    features["months_since_delinq"] = np.where(
        last_index >= 0, mob - mob[np.maximum(last_index, 0)], NO_DELINQUENCY
    ).astype(np.float64)
    for window in (3, 6):
        paid_sum, due_sum = paid.copy(), scheduled.copy()
        for k in range(1, window):
            same = _same_loan_back(loan_codes, k)
            paid_sum += _shift(paid, k, same, 0.0)
            due_sum += _shift(scheduled, k, same, 0.0)
        ratio = np.where(due_sum > 0, paid_sum / np.where(due_sum > 0, due_sum, 1.0), 1.0)
        features[f"paid_ratio_{window}m"] = np.minimum(ratio, PAID_RATIO_CAP)
    features["months_on_book"] = mob.astype(np.float64)

    # the loan's terms and the car, from its application
    # only the columns used: a reindex to every account-month costs a take per column
    used = list(dict.fromkeys((*TERMS, "vehicle_price", "vehicle_age_years", "monthly_income")))
    apps = applications.set_index(applications[id_column].astype(str))[used]
    loan_ids = frame["loan_id"].astype(str)
    terms = apps.reindex(loan_ids)
    term = terms["term_months"].to_numpy(dtype=np.float64)
    balance = frame["outstanding_principal"].to_numpy(dtype=np.float64)
    features["remaining_term"] = np.maximum(term - mob, 0.0)
    amount = terms["loan_amount"].to_numpy(dtype=np.float64)
    features["balance_share"] = np.where(amount > 0, balance / np.where(amount > 0, amount, 1.0), np.nan)
    value = car_value(
        terms["vehicle_price"].to_numpy(dtype=np.float64),
        terms["vehicle_condition"].astype(str).to_numpy(),
        terms["vehicle_age_years"].to_numpy(dtype=np.float64) + mob / 12.0,
        depreciation,
    )
    features["current_ltv"] = np.where(value > 0, balance / np.where(value > 0, value, 1.0), np.nan)
    income = terms["monthly_income"].to_numpy(dtype=np.float64)
    features["payment_to_income"] = np.where(
        income > 0, scheduled / np.where(income > 0, income, 1.0), np.nan
    )
    if application_scores is not None:
        scores = application_scores.set_index(application_scores["application_id"].astype(str)).reindex(
            loan_ids
        )
        features["application_pd"] = scores["pd"].to_numpy(dtype=np.float64)
        features["application_score"] = scores["score"].to_numpy(dtype=np.float64)

    # the target: the next month at M4+ (or written off) after this one, within the same loan
    default_index = np.where(rank >= M4, np.arange(n), n)
    reversed_min = pd.Series(default_index[::-1]).groupby(loan_codes[::-1]).cummin().to_numpy()[::-1]
    following = np.full(n, n)
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = loan_codes[1:] == loan_codes[:-1]
    following[:-1] = np.where(same_next[:-1], reversed_min[1:], n)
    months_to_default = np.where(following < n, mob[np.minimum(following, n - 1)] - mob, np.inf)
    hit = months_to_default <= horizon
    # known only where the whole window lies inside the history: judged by month, never by what
    # the account did (a young month's early defaulters or early payers would bias the rows kept)
    last_month = int(month.max()) if n else 0
    observed = month + horizon <= last_month
    target = np.where(observed, hit.astype(np.float64), np.nan)

    on_book = (rank >= 0) & (rank < M4) & (frame["status"].astype(str) == "active").to_numpy()
    out = pd.DataFrame(
        {"loan_id": loan_ids.to_numpy()[on_book], "as_of_month": frame["as_of_month"].to_numpy()[on_book]}
    )
    for name, values in features.items():
        out[name] = values[on_book]
    kept = terms.iloc[np.flatnonzero(on_book)]
    for name in TERMS:
        out[name] = kept[name].to_numpy()
    out["outstanding_principal"] = balance[on_book]
    target = target[on_book]
    out[f"default_{horizon}m"] = pd.array(
        np.where(np.isnan(target), 0, target).astype(np.int64), dtype="Int64"
    )
    out.loc[np.isnan(target), f"default_{horizon}m"] = pd.NA
    return out
