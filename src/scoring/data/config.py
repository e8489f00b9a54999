"""Typed params of the data stages: the source, the validation gate, the split."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from scoring.core.contract import AUTO_LOAN_BY_NAME
from scoring.core.settings import StrictModel


class SyntheticDataConfig(StrictModel):
    """The embedded synthetic auto-loan portfolio (see the data contract)."""

    n_applications: int = Field(100_000, ge=100)
    start_date: dt.date = dt.date(2019, 1, 1)
    months: int = Field(60, ge=24, description="application months covered")
    immature_months: int = Field(
        12, ge=0, description="the last months whose 12-month outcome is not known yet (null target)"
    )
    repeat_customer_share: float = Field(0.04, ge=0.0, lt=0.5)
    n_dealers: int = Field(300, ge=1)
    bad_dealer_share: float = Field(0.03, ge=0.0, le=1.0)
    n_regions: int = Field(31, ge=1, le=99)
    macro_cycle: bool = Field(
        True, description="the downturn late in the window; false = a stable simulation (no cycle)"
    )
    performance_history: bool = Field(
        True,
        description="generate the loans' monthly performance history (about 20 rows per loan); false: "
        "none, as for a file without one (monitoring covers stability only, collections has no queue)",
    )
    block_rows: int = Field(
        1_000_000,
        ge=1_000,
        description="rows per generation block, each drawn from its own seeded stream (the unit the "
        "dask engine generates in parallel, one part file each); the same seed and block_rows give "
        "the same rows whatever the engine or the number of workers",
    )

    @property
    def extract_date(self) -> dt.date:
        """The portfolio's extract date: the last day of its last application month."""
        month = self.start_date.month - 1 + self.months
        first_after = dt.date(self.start_date.year + month // 12, month % 12 + 1, 1)
        return first_after - dt.timedelta(days=1)

    @model_validator(mode="after")
    def _immature_inside_window(self) -> SyntheticDataConfig:
        if self.immature_months >= self.months:
            raise ValueError(
                f"immature_months ({self.immature_months}) must be below months ({self.months}): "
                "otherwise no application has an outcome"
            )
        return self


class FileDataConfig(StrictModel):
    """An analyst's own CSV or Parquet file."""

    path: Path = Path("data/external")
    format: Literal["csv", "parquet"] | None = Field(
        None, description="inferred from the file suffix when null"
    )
    id_column: str | None = Field(
        None, description="unique application key; null = number the rows in file order"
    )
    target_column: str = "default_12m"
    date_column: str | None = None
    customer_column: str | None = None
    categorical_columns: list[str] = Field(
        default_factory=list, description="columns to treat as categories even if numeric"
    )
    drop_columns: list[str] = Field(
        default_factory=list, description="columns never to use (leaky, post-application, free text)"
    )
    contract: Literal["auto", "auto_loan", "none"] = Field(
        "auto", description="check the auto-loan contract: auto = when every contract column is present"
    )
    positive_label: int | str | None = Field(
        None, description="target value that means default when the target is not already 0/1"
    )
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="data contract column -> the file's column holding it, e.g. {monthly_income: "
        "MonthlyIncome}: the contract's derived features, policy rules and limit constraints "
        "then use it; roles left out switch off what needs them",
    )
    na_values: list[str] = Field(
        default_factory=lambda: ["?"],
        description="CSV cells read as missing, besides pandas' defaults (empty, NA, NaN, null, ...)",
    )
    decision_column: str | None = Field(
        None,
        description="the lender's past decision per application (reject inference): rows whose value "
        "is in declined_values were turned down and have no outcome; never a model input",
    )
    declined_values: list[str] = Field(
        default_factory=lambda: ["declined"],
        min_length=1,
        description="decision_column values (compared as text) that mean declined; any other: accepted",
    )
    rejects_path: Path | None = Field(
        None,
        description="a second CSV/Parquet file of declined applications, the main file's columns "
        "with no outcome (reject inference); read with the main file's format and settings",
    )

    @model_validator(mode="after")
    def _roles_are_contract_columns(self) -> FileDataConfig:
        unknown = sorted(set(self.roles) - set(AUTO_LOAN_BY_NAME))
        if unknown:
            raise ValueError(
                f"roles: {unknown} are not data contract columns; expected names from "
                f"{sorted(AUTO_LOAN_BY_NAME)}"
            )
        sources = list(self.roles.values())
        repeated = sorted({c for c in sources if sources.count(c) > 1})
        if repeated:
            raise ValueError(f"roles: columns {repeated} are given more than one role; expected one each")
        return self


class PerformanceFileConfig(StrictModel):
    """The monthly performance history (see the data contract): generated with the synthetic
    portfolio, or the analyst's own file for a bring-your-own dataset."""

    path: Path | None = Field(
        None,
        description="CSV/Parquet history of the applications' loans; null = generated (synthetic) or none",
    )
    format: Literal["csv", "parquet"] | None = None
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="history contract column -> the file's column holding it, e.g. {loan_id: AccountNo}",
    )


class DataConfig(StrictModel):
    source: Literal["synthetic", "file"] = "synthetic"
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    file: FileDataConfig = FileDataConfig()
    performance: PerformanceFileConfig = PerformanceFileConfig()


class HistoryGateConfig(StrictModel):
    """The performance history's gate (scoring.data.history_gate)."""

    max_quarantine_share: float = Field(
        0.1, ge=0.0, le=1.0, description="more rows held back than this means a broken file: stop"
    )
    amount_tolerance: float = Field(1.0, ge=0.0, description="currency units allowed for rounding")


class RangeRule(StrictModel):
    min: float | None = None
    max: float | None = None


Severity = Literal["critical", "quarantine", "warn"]


class DefaultRateBounds(StrictModel):
    min: float = Field(0.001, ge=0.0, le=1.0)
    max: float = Field(0.6, ge=0.0, le=1.0)


class LeakageConfig(StrictModel):
    post_application_columns: list[str] = Field(
        default_factory=list,
        description="columns known only after the application date; dropped before features, always",
    )
    max_single_feature_auc: float = Field(
        0.95,
        gt=0.5,
        le=1.0,
        description="a feature ranking defaults better than this alone is a suspected leak",
    )
    stop_on_suspected_leak: bool = False


class DriftConfig(StrictModel):
    recent_months: int = Field(6, ge=1, description="the latest application months compared with the rest")
    bins: int = Field(10, ge=2, le=50)
    moderate: float = Field(0.1, gt=0.0, description="PSI from which a shift is flagged moderate")
    significant: float = Field(0.25, gt=0.0, description="PSI from which a shift is flagged significant")


class ValidateConfig(StrictModel):
    """The validation gate: which rules stop the pipeline and which rows go to quarantine."""

    min_rows: int = Field(1, ge=1)
    ranges: dict[str, RangeRule] = Field(
        default_factory=dict,
        description="inclusive bounds per column, applied where the column exists; override the contract's",
    )
    default_rate: DefaultRateBounds = DefaultRateBounds()
    max_null_share: dict[str, float] = Field(
        # dealer_id is null for every direct and online application, a growing share over time.
        default_factory=lambda: {"dealer_id": 0.9},
        description="per nullable column, the largest share of nulls before the gate stops",
    )
    default_max_null_share: float = Field(
        0.5, ge=0.0, lt=1.0, description="for columns not in max_null_share (a column beyond it is broken)"
    )
    max_unseen_level_share: float = Field(
        0.01, ge=0.0, lt=1.0, description="share of category values outside the contract's levels tolerated"
    )
    max_ltv: float = Field(1.2, gt=0.0, description="loan amount / vehicle price above this is quarantined")
    loan_amount_tolerance: float = Field(
        0.05, ge=0.0, description="|loan - (price - down payment)| / price above this is quarantined"
    )
    performance_months: int = Field(12, ge=0, description="outcome window: a target needs this many months")
    terms_new: list[int] = Field(
        default_factory=lambda: [12, 24, 36, 48, 60], description="allowed, new cars"
    )
    terms_used: list[int] = Field(
        default_factory=lambda: [12, 24, 36], description="allowed terms, used cars"
    )
    as_of_date: dt.date | None = Field(
        None,
        description="date of the data extract: dates after it are in the future, and a target needs "
        "performance_months before it; null = the synthetic portfolio's own extract date with the "
        "synthetic source (so a run does not depend on the calendar), today with a file",
    )
    max_quarantine_share: float = Field(
        0.1, ge=0.0, le=1.0, description="more rows than this in quarantine means a broken file: stop"
    )
    severity: dict[str, Severity] = Field(
        default_factory=dict,
        description="override a rule's severity by rule kind (out_of_range) or full code (age_out_of_range)",
    )
    leakage: LeakageConfig = LeakageConfig()
    drift: DriftConfig = DriftConfig()
    performance: HistoryGateConfig = HistoryGateConfig()

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ValidateConfig:
        if self.default_rate.min > self.default_rate.max:
            raise ValueError("default_rate.min must not exceed default_rate.max")
        for name, share in self.max_null_share.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"max_null_share.{name}={share}: expected a share between 0 and 1")
        return self


class SplitConfig(StrictModel):
    oot_months: int = Field(
        6, ge=0, description="the latest labelled months held out as out-of-time (needs a date column)"
    )
    valid_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    oot_fraction_without_date: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="without a date column there is no out-of-time split unless this is set",
    )
