"""Typed configuration: params.yaml parsed into pydantic models that refuse unknown keys.

Every stage reads the whole file through :func:`load_params` so that a typo anywhere
stops the pipeline at once with the key's name and where it was found, instead of being
silently ignored by the one stage that would have used it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring.collections.config import CollectionsConfig
from scoring.core.cluster import DaskConfig, Engine
from scoring.core.settings import ConfigError, StrictModel
from scoring.data.config import DataConfig, SplitConfig, ValidateConfig
from scoring.decision.config import CalibrateConfig, WhatIfConfig
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import PolicySettings
from scoring.explain.config import ReasonsConfig
from scoring.features.config import FeaturesConfig
from scoring.models.config import RejectInferenceConfig, TrainConfig, TuneConfig
from scoring.monitoring.config import MonitorConfig
from scoring.reporting.config import EvaluateConfig, FairnessConfig
from scoring.serving.config import ExportConfig


class Params(StrictModel):
    seed: int = Field(20261128, ge=0, lt=2**32)
    engine: Engine = Field("pandas", description="pandas: one process; dask: partitions on a Dask cluster")
    dask: DaskConfig = DaskConfig()
    sample_rows: int | None = Field(
        1_000_000,
        ge=1_000,
        description="steps that fit in one process (feature levels, tuning trials, the scorecard's "
        "bins, explanations) read a seeded sample by customer of about this many rows when the data "
        "is larger, on either engine (scoring.data.sampling); null: every row",
    )
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    tune: TuneConfig = TuneConfig()
    train: TrainConfig = TrainConfig()
    calibrate: CalibrateConfig = CalibrateConfig()
    policy: PolicySettings = PolicySettings()
    limits: LimitSettings = LimitSettings()
    evaluate: EvaluateConfig = EvaluateConfig()
    whatif: WhatIfConfig = WhatIfConfig()
    fairness: FairnessConfig = FairnessConfig()
    export: ExportConfig = ExportConfig()
    reasons: ReasonsConfig = ReasonsConfig()
    monitor: MonitorConfig = MonitorConfig()
    collections: CollectionsConfig = CollectionsConfig()
    reject_inference: RejectInferenceConfig = RejectInferenceConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _synthetic_extract_date(self) -> Params:
        # The synthetic portfolio has an extract date of its own; "today" there would make the
        # gate's text (and so the validate stage's outputs) change with the calendar.
        if self.data.source == "synthetic" and self.validate_.as_of_date is None:
            dated = self.validate_.model_copy(update={"as_of_date": self.data.synthetic.extract_date})
            object.__setattr__(self, "validate_", dated)  # frozen: set once, while validating
        return self


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
