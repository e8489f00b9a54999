"""The behaviour score's rows split out of time, and the collections queue with its capture curve.

Split: the snapshot months of the last ``oot_months`` whose 6-month outcome is known are the
out-of-time set; earlier months are development, divided into train and valid by account (an
account's months never straddle the two). Current accounts dominate the rows (about 97% on the
default data) and default rarely, so train keeps every delinquent account-month and a
``current_share`` sample of the current ones; valid keeps its accounts' months as they are, so
the champion is chosen, and the PD calibrated, on the portfolio's own mix.

The queue of a month ranks its delinquent accounts (M1..M3) by expected loss avoided per unit of
an action's cost: ``pd x max(balance - recovery, 0) x uplift(action) / cost(action)``, where the
recovery is the car's depreciated value less the repossession costs; equal priorities (zero where
the car covers the balance) are worked by PD, highest first. Evaluation against what
happened: the share of the next six months' losses (``max(balance - recovery, 0)`` of the accounts
that reached 90+) captured by the first 5%, 10% and 20% of accounts, for the queue, the expected
loss alone, and two naive orders: days past due then balance, and balance alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scoring.monitoring.performance import month_number


@dataclass(frozen=True)
class BehaviourSplit:
    train: pd.DataFrame
    valid: pd.DataFrame
    oot: pd.DataFrame


def split_snapshots(
    snapshots: pd.DataFrame,
    target: str,
    oot_months: int,
    valid_fraction: float,
    current_share: float,
    seed: int,
) -> BehaviourSplit:
    """Out of time by snapshot month, train/valid by account, current months sampled (module docstring)."""
    known = snapshots.dropna(subset=[target])
    months = month_number(known["as_of_month"])
    cutoff = int(months.max()) - oot_months if len(known) else 0
    oot = known.loc[months > cutoff]
    development = known.loc[months <= cutoff]
    rng = np.random.default_rng(seed)
    loans = np.sort(development["loan_id"].unique())
    valid_loans = rng.choice(loans, size=round(valid_fraction * len(loans)), replace=False)
    in_valid = development["loan_id"].isin(valid_loans).to_numpy()
    train = development.loc[~in_valid]
    keep = (train["bucket"].to_numpy() > 0) | (rng.random(len(train)) < current_share)
    return BehaviourSplit(
        train.loc[keep].reset_index(drop=True),
        development.loc[in_valid].reset_index(drop=True),
        oot.reset_index(drop=True),
    )


def net_exposure(balance: np.ndarray, car_value: np.ndarray, repossession_cost_share: float) -> np.ndarray:
    """What a default would lose: the balance less what the repossessed car would bring."""
    recovery = car_value * (1.0 - repossession_cost_share)
    return np.asarray(np.maximum(balance - recovery, 0.0), dtype=np.float64)


def capture_curve(
    order: np.ndarray, loss: np.ndarray, shares: tuple[float, ...] = (0.05, 0.1, 0.2)
) -> dict[str, float]:
    """Share of the total ``loss`` in the first ``share`` of accounts when worked in ``order``."""
    total = float(loss.sum())
    out = {}
    for share in shares:
        top = order[: max(1, round(share * len(order)))]
        out[f"top_{round(share * 100)}%"] = float(loss[top].sum() / total) if total > 0 else float("nan")
    return out


def priority(pd_: np.ndarray, exposure: np.ndarray, uplift: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Expected loss avoided per unit of the action's cost: ``pd x exposure x uplift / cost``."""
    return np.asarray(pd_ * exposure * uplift / np.maximum(cost, 1e-9), dtype=np.float64)


def queue_order(priority: np.ndarray, pd_: np.ndarray) -> np.ndarray:
    """Row positions by priority, then by PD where priorities tie (accounts whose car covers the
    balance all have priority 0: the likelier to roll to 90+ is worked first)."""
    return np.lexsort((-np.asarray(pd_, dtype=np.float64), -np.asarray(priority, dtype=np.float64)))


def orders(
    frame: pd.DataFrame, priority: np.ndarray, expected_loss: np.ndarray, pd_: np.ndarray
) -> dict[str, np.ndarray]:
    """The queue's order and its comparators, as row positions, first worked first."""
    balance = frame["outstanding_principal"].to_numpy(dtype=np.float64)
    dpd = frame["days_past_due"].to_numpy(dtype=np.float64)
    return {
        "queue": queue_order(priority, pd_),
        "expected_loss": queue_order(expected_loss, pd_),
        "dpd_then_balance": np.lexsort((-balance, -dpd)),
        "balance": np.argsort(-balance, kind="stable"),
    }


def evaluate_queue(
    frame: pd.DataFrame,
    pd_: np.ndarray,
    exposure: np.ndarray,
    uplift: np.ndarray,
    cost: np.ndarray,
    outcome: np.ndarray,
    shares: tuple[float, ...] = (0.05, 0.1, 0.2),
) -> dict[str, Any]:
    """Capture of realised losses (``outcome`` x exposure) in the first ``shares`` of each order,
    and of the accounts that reached 90+ (``capture_count``)."""
    expected_loss = pd_ * exposure
    loss = np.asarray(outcome, dtype=np.float64) * exposure
    defaults = np.nan_to_num(np.asarray(outcome, dtype=np.float64))
    ordered = orders(frame, priority(pd_, exposure, uplift, cost), expected_loss, pd_)
    return {
        "accounts": len(frame),
        "defaults": int(defaults.sum()),
        "loss": float(loss.sum()),
        "capture": {name: capture_curve(order, loss, shares) for name, order in ordered.items()},
        # the same orders judged by accounts that reached 90+, whatever their exposure
        "capture_count": {name: capture_curve(order, defaults, shares) for name, order in ordered.items()},
    }


def actions_for(
    bucket: np.ndarray,
    pd_: np.ndarray,
    cover: np.ndarray,
    rules: Sequence[Mapping[str, Any]],
    default_action: str,
) -> np.ndarray:
    """The first matching rule's action per account (rules: buckets, min_pd, max_pd, min_cover)."""
    action = np.full(len(bucket), default_action, dtype=object)
    assigned = np.zeros(len(bucket), dtype=bool)
    for rule in rules:
        match = np.isin(bucket, rule.get("buckets", [1, 2, 3]))
        match &= pd_ >= rule.get("min_pd", 0.0)
        match &= pd_ < rule.get("max_pd", 1.01)
        if rule.get("min_cover") is not None:
            match &= cover >= rule["min_cover"]
        take = match & ~assigned
        action[take] = rule["action"]
        assigned |= take
    return action
