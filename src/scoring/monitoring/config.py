"""Typed params of monitoring (`monitor:` in params.yaml): windows, thresholds, early-warning rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scoring.core.settings import StrictModel


class Thresholds(StrictModel):
    """A traffic light: amber from ``amber``, red from ``red`` (same unit as the rule's value)."""

    amber: float = Field(ge=0.0)
    red: float = Field(ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.amber > self.red:
            raise ValueError(f"amber ({self.amber}) must not exceed red ({self.red})")
        return self


class EarlyDelinquencyRule(StrictModel):
    """Early delinquency against what the PDs lead one to expect (see monitoring.performance)."""

    months_on_book: int = Field(3, ge=1, le=24)
    threshold: Literal["30+", "60+", "90+"] = "30+"
    factor: Thresholds = Thresholds(amber=1.25, red=1.5)
    # the excess must also be unlikely by chance: one-sided binomial p-value below these
    amber_p: float = Field(0.05, gt=0.0, lt=1.0)
    red_p: float = Field(0.01, gt=0.0, lt=1.0)
    min_loans: int = Field(200, ge=1)


class MonitorConfig(StrictModel):
    window: Literal["after_reference", "all"] = Field(
        "after_reference",
        description="months the alerts judge: those after the model's development window, or all",
    )
    profile_bins: int = Field(10, ge=2, le=50, description="bins of the reference profile made at export")
    min_rows_per_month: int = Field(
        200, ge=1, description="months with fewer applications are shown, not judged"
    )
    score_psi: Thresholds = Thresholds(amber=0.10, red=0.25)
    feature_csi: Thresholds = Thresholds(amber=0.10, red=0.25)
    feature_csi_red_needs_score_shift: bool = Field(
        True,
        description="a feature's CSI turns red only while the score PSI is amber or worse; a shifted "
        "input the score does not follow stays amber (to investigate)",
    )
    approval_rate_points: Thresholds = Thresholds(amber=5.0, red=10.0)
    auc_drop: Thresholds = Thresholds(amber=0.05, red=0.10)
    auc_min_defaults: int = Field(
        20, ge=1, description="a matured cohort's AUC is judged from this many defaults"
    )
    backtest_min_rows: int = Field(30, ge=1, description="a grade with fewer matured loans is not tested")
    default_months_on_book: int = Field(
        12, ge=1, description="the outcome window: 90+ within this many months"
    )
    early_delinquency: EarlyDelinquencyRule = EarlyDelinquencyRule()
    retrain_after_red_months: int = Field(
        3, ge=1, description="a rule red this many consecutive months recommends retraining"
    )
    vintage_max_months_on_book: int = Field(36, ge=1)
