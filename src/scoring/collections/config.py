"""Typed params of collections (`collections:` in params.yaml): the behaviour score, the car's
depreciation, the actions with their cost, capacity and assumed cure uplift, and the strategy."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scoring.core.settings import StrictModel
from scoring.explain.config import ReasonEntry, ReasonsConfig
from scoring.models.config import ChampionConfig, TrainConfig


class ActionConfig(StrictModel):
    cost: float = Field(gt=0.0, description="cost of working one account this way")
    capacity: int = Field(ge=0, description="accounts that can be worked this way in a month")
    cure_uplift: float = Field(ge=0.0, le=1.0, description="assumed cut in the chance of rolling to 90+")


def _all_delinquent() -> list[Literal[1, 2, 3]]:
    return [1, 2, 3]


class StrategyRule(StrictModel):
    """Accounts matching every condition get ``action``; the first matching rule wins."""

    action: str
    buckets: list[Literal[1, 2, 3]] = Field(default_factory=_all_delinquent, description="1 M1, 2 M2, 3 M3")
    min_pd: float = Field(0.0, ge=0.0, le=1.0)
    max_pd: float = Field(1.01, ge=0.0, le=1.01, description="exclusive; 1.01 = no upper bound")
    min_cover: float | None = Field(None, description="car value over balance at least this")


def _behaviour_train() -> TrainConfig:
    return TrainConfig(
        candidates=["scorecard", "xgboost_defaults"],
        fit_on="train",
        champion=ChampionConfig(selection="valid"),
        monotone_risk={
            "bucket": "increasing",
            "worst_bucket_12m": "increasing",
            "application_pd": "increasing",
        },
    )


def _behaviour_reasons() -> ReasonsConfig:
    """Why an account ranks high: what raises its behaviour PD, in a collector's words."""
    entry = ReasonEntry
    return ReasonsConfig(
        groups={
            "arrears_now": ["bucket", "days_past_due"],
            "arrears_past": ["worst_bucket_6m", "worst_bucket_12m", "months_delinquent_12m"],
            "payments": ["paid_ratio_3m", "paid_ratio_6m"],
            "seasoning": ["months_on_book", "remaining_term"],
            "balance": ["balance_share", "loan_amount"],
            "affordability": ["payment_to_income", "monthly_payment"],
            "application_risk": ["application_pd", "application_score"],
        },
        reason_map={
            "arrears_now": entry(code="B01", text="Days past due now"),
            "arrears_past": entry(code="B02", text="Delinquent often or deeply over the last year"),
            "months_since_delinq": entry(code="B03", text="Delinquent recently"),
            "payments": entry(code="B04", text="Paid less than scheduled over recent months"),
            "current_ltv": entry(code="B05", text="Balance high against the car's depreciated value"),
            "balance": entry(code="B06", text="Much of the loan still outstanding"),
            "seasoning": entry(code="B07", text="Early in the loan, or much of the term still to run"),
            "affordability": entry(code="B08", text="Instalment high against income"),
            "application_risk": entry(code="B09", text="High risk already at application"),
            "annual_rate": entry(code="B10", text="Interest rate of the loan"),
            "term_months": entry(code="B11", text="Term of the loan"),
            "repayment_method": entry(code="B12", text="Repayment method of the loan"),
            "vehicle_condition": entry(code="B13", text="The car was bought used"),
        },
    )


class BehaviourConfig(StrictModel):
    horizon_months: int = Field(6, ge=1, le=24, description="the target: 90+ within this many months")
    oot_months: int = Field(6, ge=1, description="the latest snapshot months with a known outcome, held out")
    valid_fraction: float = Field(
        0.2, gt=0.0, lt=0.5, description="accounts of the development months for valid"
    )
    current_share: float = Field(
        0.05, gt=0.0, le=1.0, description="share of the current (not delinquent) train rows kept"
    )
    train: TrainConfig = Field(default_factory=_behaviour_train)
    reasons: ReasonsConfig = Field(
        default_factory=_behaviour_reasons,
        description="the queue's reason codes: features (or groups) that raise an account's behaviour PD",
    )
    model_name: str = Field(
        "auto_loan_behaviour", min_length=1, description="registered model name of the behaviour score"
    )


DEFAULT_ACTIONS = {
    "reminder": ActionConfig(cost=2.0, capacity=100_000, cure_uplift=0.05),
    "call": ActionConfig(cost=15.0, capacity=5_000, cure_uplift=0.15),
    "field_visit": ActionConfig(cost=120.0, capacity=600, cure_uplift=0.30),
    "repossession": ActionConfig(cost=2_500.0, capacity=150, cure_uplift=0.60),
}
DEFAULT_STRATEGY = [
    StrategyRule(action="reminder", buckets=[1], max_pd=0.3),
    StrategyRule(action="call", buckets=[1, 2], max_pd=0.6),
    StrategyRule(action="repossession", buckets=[3], min_pd=0.6, min_cover=1.0),
    StrategyRule(action="field_visit"),
]


class ForecastConfig(StrictModel):
    months: int = Field(6, ge=1, le=24)
    fit_months: int = Field(12, ge=1)
    origins: int = Field(3, ge=1, description="back-tests at this many origins, six months apart")
    segment: str | None = Field(
        "vehicle_condition", description="application column the chains are fitted by"
    )


class CollectionsConfig(StrictModel):
    depreciation: dict[str, float] = Field(
        default_factory=lambda: {"new": 0.15, "used": 0.10},
        description="yearly loss of the car's value, by vehicle_condition",
    )
    repossession_cost_share: float = Field(
        0.15, ge=0.0, le=1.0, description="of the car's value, lost in recovery"
    )
    behaviour: BehaviourConfig = BehaviourConfig()
    actions: dict[str, ActionConfig] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    strategy: list[StrategyRule] = Field(default_factory=lambda: list(DEFAULT_STRATEGY))
    forecast: ForecastConfig = ForecastConfig()

    @model_validator(mode="after")
    def _rules_name_actions(self) -> CollectionsConfig:
        unknown = sorted({rule.action for rule in self.strategy} - set(self.actions))
        if unknown:
            raise ValueError(
                f"strategy names actions {unknown} that collections.actions does not define; "
                f"expected one of {sorted(self.actions)}"
            )
        return self
