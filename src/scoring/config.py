"""Typed configuration: params.yaml parsed into pydantic models that refuse unknown keys.

Every stage reads the whole file through :func:`load_params` so that a typo anywhere
stops the pipeline at once with the key's name and where it was found, instead of being
silently ignored by the one stage that would have used it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(ValueError):
    """params.yaml does not match the expected schema."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


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
    positive_label: int | str | None = Field(
        None, description="target value that means default when the target is not already 0/1"
    )


class DataConfig(StrictModel):
    source: Literal["synthetic", "file"] = "synthetic"
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    file: FileDataConfig = FileDataConfig()


# --------------------------------------------------------------------------- validate


class RangeRule(StrictModel):
    min: float | None = None
    max: float | None = None


class ValidateConfig(StrictModel):
    """The first validation gate; every failure here is critical (stops the pipeline)."""

    ranges: dict[str, RangeRule] = Field(
        default_factory=dict, description="inclusive bounds per column; applied where the column exists"
    )
    min_rows: int = Field(1, ge=1)


# --------------------------------------------------------------------------- split


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


# --------------------------------------------------------------------------- features


class FeaturesConfig(StrictModel):
    max_category_levels: int = Field(
        500, ge=2, description="levels kept per categorical column; rarer ones become 'other'"
    )
    min_category_count: int = Field(20, ge=1, description="levels seen fewer times in train become 'other'")


# --------------------------------------------------------------------------- train


class XGBoostConfig(StrictModel):
    n_estimators: int = Field(2000, ge=1, description="upper bound; early stopping picks the number")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    max_depth: int = Field(4, ge=1, le=16)
    min_child_weight: float = Field(5.0, ge=0.0)
    subsample: float = Field(0.8, gt=0.0, le=1.0)
    colsample_bytree: float = Field(0.8, gt=0.0, le=1.0)
    reg_lambda: float = Field(1.0, ge=0.0)
    reg_alpha: float = Field(0.0, ge=0.0)
    max_cat_to_onehot: int = Field(8, ge=1)
    early_stopping_rounds: int = Field(100, ge=1)
    n_jobs: int = Field(2, ge=1, description="threads; results are identical for any value")


class TrainConfig(StrictModel):
    xgboost: XGBoostConfig = XGBoostConfig()


# --------------------------------------------------------------------------- evaluate / export


class EvaluateConfig(StrictModel):
    calibration_bins: int = Field(10, ge=2)


class ExportConfig(StrictModel):
    model_name: str = Field("auto_loan_pd", pattern=r"^[A-Za-z0-9_.-]+$")
    experiment_name: str = "credit-scoring"


# --------------------------------------------------------------------------- root


class Params(StrictModel):
    seed: int = Field(20261128, ge=0, lt=2**32)
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _allowed_keys(path: tuple[Any, ...]) -> list[str]:
    """Keys accepted in the section that holds ``path``'s last element."""
    model: Any = Params
    for part in path[:-1]:
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        field = fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _format_error(err: Any, source: str) -> str:
    location = ".".join(str(part) for part in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(tuple(err["loc"]))
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"{source}: unknown key '{location}'{hint}"
    return f"{source}: '{location}': {err['msg']} (got {err.get('input')!r})"


def parse_params(raw: dict[str, Any] | None, source: str = "params") -> Params:
    """Validate a params mapping; raise :class:`ConfigError` naming every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = [_format_error(e, source) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (expected the pipeline's params.yaml)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return parse_params(raw, source=str(path))
