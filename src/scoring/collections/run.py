"""Collections end to end on a performance history: the behaviour score (trained and chosen by the
PD model's candidate machinery, calibrated on valid), its out-of-time evaluation, the month's
queue, the queue's capture of realised losses against naive orders, and the Markov back-tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.collections.behaviour import account_snapshots, car_value
from scoring.collections.config import CollectionsConfig
from scoring.collections.queue import (
    actions_for,
    evaluate_queue,
    net_exposure,
    priority,
    queue_order,
    split_snapshots,
)
from scoring.collections.roll import backtest_forecast, fit_chain
from scoring.collections.scorer import BehaviourScorer
from scoring.explain.reasons import CODE_COLUMNS, TEXT_COLUMNS, ReasonCoder
from scoring.features.transformer import ApplicationFeatures
from scoring.models.calibration import Calibrator, fit_calibrator
from scoring.models.candidate import FittedModel, sigmoid
from scoring.models.model import PDModel
from scoring.models.training import fit_candidates
from scoring.monitoring.performance import month_label, month_number, transitions

logger = logging.getLogger(__name__)

NOT_FEATURES = ("loan_id", "as_of_month", "outstanding_principal")
CURVE_SHARES = tuple(round(0.01 * k, 2) for k in range(1, 101))
REPORTED_SHARES = ("top_5%", "top_10%", "top_20%")  # the capture_by_month columns and the summary
CALIBRATION_BINS = 10


@dataclass
class CollectionsResult:
    features: ApplicationFeatures
    models: dict[str, FittedModel]
    champion: str
    calibrator: Calibrator
    summary: dict[str, Any]
    queue: pd.DataFrame
    capture_by_month: pd.DataFrame
    forecast_backtest: pd.DataFrame
    chain_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    scorer: BehaviourScorer | None = None
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)
    """out of time, by behaviour-PD decile: accounts, mean PD, observed 90+ rate"""
    capture_curve: pd.DataFrame = field(default_factory=pd.DataFrame)
    """share of accounts worked (1%..100%) -> share of losses captured per order, mean over months"""
    auc_by_bucket: pd.DataFrame = field(default_factory=pd.DataFrame)
    queue_rows: pd.DataFrame = field(default_factory=pd.DataFrame)
    """the queue month's delinquent account-month snapshots (the score's input rows)"""


def behaviour_pd(result: CollectionsResult, rows: pd.DataFrame) -> np.ndarray:
    """The calibrated behaviour PD of account-month ``rows`` (the result's scorer)."""
    assert result.scorer is not None
    return result.scorer.predict_pd(rows)


def _calibration_table(pd_: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS) -> pd.DataFrame:
    """Accounts, mean PD and observed rate per PD decile (ties kept together)."""
    if len(pd_) == 0:
        return pd.DataFrame(columns=["bin", "accounts", "mean_pd", "observed_rate"])
    ranks = pd.Series(pd_).rank(method="first").to_numpy()
    group = np.minimum((ranks - 1) * bins // len(pd_), bins - 1).astype(int)
    frame = pd.DataFrame({"bin": group + 1, "pd": pd_, "y": y})
    table = frame.groupby("bin").agg(
        accounts=("y", "size"), mean_pd=("pd", "mean"), observed_rate=("y", "mean")
    )
    return table.reset_index()


def _exposure(
    rows: pd.DataFrame, applications: pd.DataFrame, config: CollectionsConfig
) -> tuple[np.ndarray, np.ndarray]:
    terms = applications.reindex(rows["loan_id"].astype(str))
    value = car_value(
        terms["vehicle_price"].to_numpy(dtype=np.float64),
        terms["vehicle_condition"].astype(str).to_numpy(),
        terms["vehicle_age_years"].to_numpy(dtype=np.float64)
        + rows["months_on_book"].to_numpy(dtype=np.float64) / 12,
        config.depreciation,
    )
    balance = rows["outstanding_principal"].to_numpy(dtype=np.float64)
    return net_exposure(balance, value, config.repossession_cost_share), value


def _actions(
    rows: pd.DataFrame, pd_: np.ndarray, value: np.ndarray, config: CollectionsConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The strategy's action for each account (same order), its cost and its assumed uplift."""
    balance = rows["outstanding_principal"].to_numpy(dtype=np.float64)
    cover = np.where(balance > 0, value / np.where(balance > 0, balance, 1.0), np.inf)
    rules = [rule.model_dump() for rule in config.strategy]
    action = actions_for(rows["bucket"].to_numpy(), pd_, cover, rules, config.strategy[-1].action)
    cost = np.array([config.actions[a].cost for a in action], dtype=np.float64)
    uplift = np.array([config.actions[a].cure_uplift for a in action], dtype=np.float64)
    return action, cost, uplift


def _plan(
    rows: pd.DataFrame,
    pd_: np.ndarray,
    exposure: np.ndarray,
    value: np.ndarray,
    config: CollectionsConfig,
    reasons: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Each delinquent account's action, priority, rank and whether its action has capacity left."""
    balance = rows["outstanding_principal"].to_numpy(dtype=np.float64)
    action, cost, uplift = _actions(rows, pd_, value, config)
    priorities = priority(pd_, exposure, uplift, cost)
    plan = pd.DataFrame(
        {
            "loan_id": rows["loan_id"].to_numpy(),
            "as_of_month": rows["as_of_month"].to_numpy(),
            "bucket": rows["bucket"].to_numpy(dtype=np.int64),
            "days_past_due": rows["days_past_due"].to_numpy(dtype=np.int64),
            "outstanding_principal": balance,
            "car_value": value,
            "net_exposure": exposure,
            "behaviour_pd": pd_,
            "expected_loss": pd_ * exposure,
            "action": action,
            "action_cost": cost,
            "cure_uplift": uplift,
            "priority": priorities,
        }
    )
    if reasons is not None:  # what raises each account's behaviour PD (the score's reason codes)
        for column in (*CODE_COLUMNS, *TEXT_COLUMNS):
            plan[column] = reasons[column].to_numpy()
    plan = plan.iloc[queue_order(priorities, pd_)].reset_index(drop=True)
    plan.insert(0, "rank", np.arange(1, len(plan) + 1))
    place = plan.groupby("action").cumcount().to_numpy() + 1
    capacity = plan["action"].map({name: a.capacity for name, a in config.actions.items()}).to_numpy()
    plan["within_capacity"] = place <= capacity
    plan["reason"] = [
        f"PD {p:.1%} x net exposure {e:,.0f} (balance {b:,.0f} less the car's recovery)"
        f" x uplift {u:.0%} / cost {c:,.0f}"
        for p, e, b, u, c in zip(plan["behaviour_pd"], plan["net_exposure"], plan["outstanding_principal"],
                                 plan["cure_uplift"], plan["action_cost"], strict=True)
    ]  # fmt: skip
    return plan


def month_queue(
    rows: pd.DataFrame,
    applications: pd.DataFrame,
    scored: pd.DataFrame,
    config: CollectionsConfig,
    id_column: str = "application_id",
) -> pd.DataFrame:
    """The queue of one month's delinquent accounts ``rows`` (account snapshots, bucket M1..M3),
    from their scores ``scored`` (same order: ``behaviour_pd`` and the reason codes) and the loans'
    applications (for the car's value); ranked by expected loss avoided per unit of cost."""
    rows = rows.reset_index(drop=True)
    apps = applications.set_index(applications[id_column].astype(str))
    exposure, value = _exposure(rows, apps, config)
    pd_ = scored["behaviour_pd"].to_numpy(dtype=np.float64)
    reasons = scored.reset_index(drop=True) if set(CODE_COLUMNS) <= set(scored.columns) else None
    return _plan(rows, pd_, exposure, value, config, reasons)


def run_collections(
    history: pd.DataFrame,
    applications: pd.DataFrame,
    application_scores: pd.DataFrame | None,
    config: CollectionsConfig,
    seed: int,
    id_column: str = "application_id",
) -> CollectionsResult:
    from sklearn.metrics import roc_auc_score

    behaviour = config.behaviour
    target = f"default_{behaviour.horizon_months}m"
    snapshots = account_snapshots(
        history, applications, application_scores, config.depreciation, behaviour.horizon_months, id_column
    )
    split = split_snapshots(
        snapshots, target, behaviour.oot_months, behaviour.valid_fraction, behaviour.current_share, seed
    )
    features = ApplicationFeatures(exclude_columns=(*NOT_FEATURES, target)).fit(split.train)
    fitted = fit_candidates(
        features.transform(split.train),
        split.train[target].astype(int),
        features.transform(split.valid),
        split.valid[target].astype(int),
        behaviour.train,
        seed,
    )
    champion = fitted.decision.champion
    models = dict(fitted.models)
    raw_valid = sigmoid(models[champion].log_odds(features.transform(split.valid)))
    calibrator = fit_calibrator(raw_valid, split.valid[target].astype(int).to_numpy(), seed=seed)
    model = PDModel(features, models[champion], champion)
    # the reason map names the snapshot's features; not strict: a history without the
    # application score leaves those entries out (logged)
    reason_coder = ReasonCoder.fit(model, split.train, behaviour.reasons, strict=False)
    scorer = BehaviourScorer(model, calibrator, reason_coder, config.model_dump(mode="json"))
    result = CollectionsResult(
        features, models, champion, calibrator, {}, pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    )
    result.scorer = scorer

    # out of time: the score, and the queue of each month against what happened
    apps = applications.set_index(applications[id_column].astype(str))
    oot = split.oot
    oot_pd = behaviour_pd(result, oot)
    y = oot[target].astype(int).to_numpy()
    by_bucket = {
        int(b): float(roc_auc_score(y[mask], oot_pd[mask])) if 0 < y[mask].sum() < mask.sum() else None
        for b in range(1, 4)
        for mask in [oot["bucket"].to_numpy() == b]
    }
    capture_rows = []
    curves: list[pd.DataFrame] = []
    months = month_number(oot["as_of_month"])
    for month in np.unique(months):
        rows = oot.loc[(months == month) & (oot["bucket"].to_numpy() > 0)].reset_index(drop=True)
        if rows.empty:
            continue
        pd_ = oot_pd[(months == month) & (oot["bucket"].to_numpy() > 0)]
        exposure, value = _exposure(rows, apps, config)
        _, cost, uplift = _actions(rows, pd_, value, config)
        outcome = rows[target].astype(float).to_numpy()
        evaluated = evaluate_queue(rows, pd_, exposure, uplift, cost, outcome, CURVE_SHARES)
        entry: dict[str, Any] = {
            "month": month_label(np.array([month]))[0],
            "accounts": evaluated["accounts"],
            "defaults": evaluated["defaults"],
            "loss": evaluated["loss"],
        }
        for infix, kind in (("", "capture"), ("count_", "capture_count")):
            for name, curve in evaluated[kind].items():
                for share in REPORTED_SHARES:
                    entry[f"{name}_{infix}{share}"] = curve[share]
        capture_rows.append(entry)
        curves.extend(
            pd.DataFrame({"order": name, "share": CURVE_SHARES, "capture": list(curve.values())})
            for name, curve in evaluated["capture"].items()
        )
    capture = pd.DataFrame(capture_rows)
    if curves:
        pooled = pd.concat(curves, ignore_index=True)
        result.capture_curve = pooled.groupby(["order", "share"], sort=False)["capture"].mean().reset_index()
    result.calibration = _calibration_table(oot_pd, y)
    result.auc_by_bucket = pd.DataFrame(
        [
            {
                "bucket": b,
                "accounts": int((oot["bucket"].to_numpy() == b).sum()),
                "defaults": int(y[oot["bucket"].to_numpy() == b].sum()),
                "auc": by_bucket[b],
            }
            for b in by_bucket
        ]
    )

    # the operational queue: the history's last month, every delinquent account on book
    last = int(month_number(snapshots["as_of_month"]).max())
    latest = snapshots.loc[(month_number(snapshots["as_of_month"]) == last) & (snapshots["bucket"] > 0)]
    latest = latest.reset_index(drop=True)
    queue = month_queue(latest, applications, scorer.score(latest), config, id_column)
    result.queue_rows = latest

    # delinquency grading: the last year's chains, and the forecast back-tests
    segment = apps[config.forecast.segment] if config.forecast.segment else None
    moves = transitions(history)
    chain = fit_chain(
        moves.take(moves.month > int(month_number(history["as_of_month"]).max()) - config.forecast.fit_months)
    )
    history_last = int(month_number(history["as_of_month"]).max())
    backtests = []
    for k in range(config.forecast.origins):
        origin = history_last - config.forecast.months - 6 * k
        table = backtest_forecast(
            history, origin, config.forecast.months, config.forecast.fit_months, segment
        )
        backtests.append(table["by_month"].assign(origin=table["origin"]))
    forecast_table = pd.concat(backtests, ignore_index=True) if backtests else pd.DataFrame()
    six = (
        forecast_table[forecast_table["months_ahead"] == config.forecast.months]
        if len(forecast_table)
        else forecast_table
    )

    result.summary = {
        "behaviour": {
            "champion": champion,
            "decision": fitted.decision.reason,
            "rows": {"train": len(split.train), "valid": len(split.valid), "oot": len(oot)},
            "oot_auc": float(roc_auc_score(y, oot_pd)) if 0 < y.sum() < len(y) else None,
            "oot_auc_by_bucket": by_bucket,
            "oot_default_rate": float(y.mean()) if len(y) else None,
            "oot_mean_pd": float(oot_pd.mean()) if len(y) else None,
            "calibration": calibrator.method,
        },
        "capture_mean": {c: float(capture[c].mean()) for c in capture.columns if "_top_" in c},
        "queue": {
            "month": month_label(np.array([last]))[0],
            "accounts": len(queue),
            "by_action": {str(k): int(v) for k, v in queue["action"].value_counts().sort_index().items()},
            "within_capacity": int(queue["within_capacity"].sum()),
        },
        "cure_rates": chain.cure_rates(),
        "forecast_90_balance_error_at_horizon": {
            str(row["origin"]): float(row["balance_90_error"]) for _, row in six.iterrows()
        },
    }
    result.queue, result.capture_by_month, result.forecast_backtest = queue, capture, forecast_table
    result.chain_tables = {"count": chain.table("count"), "balance": chain.table("balance")}
    logger.info(
        "collections: behaviour champion %s, OOT AUC %s", champion, result.summary["behaviour"]["oot_auc"]
    )
    return result
