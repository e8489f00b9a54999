"""Typed params of the decision stages: calibration, master scale and tests (calibrate), and the
what-if replay (whatif)."""

from __future__ import annotations

from pydantic import Field

from scoring.core.settings import StrictModel
from scoring.decision.grades import MasterScaleSettings, ValidationTestSettings
from scoring.models.calibration import CalibrationSettings


class CalibrateConfig(StrictModel):
    """PD calibration and the master scale on held-out predictions (see ``train.fit_on``), and the
    supervisory tests."""

    calibration: CalibrationSettings = CalibrationSettings()
    master_scale: MasterScaleSettings = MasterScaleSettings()
    tests: ValidationTestSettings = ValidationTestSettings()
    swap_set_approval_rate: float = Field(
        0.7, gt=0.0, lt=1.0, description="approval rate of the scorecard/challenger swap set"
    )


class WhatIfScenario(StrictModel):
    """The change to replay (``whatif.scenario`` in params). All zero / null: the current params."""

    rate_shift: float = Field(
        0.0, ge=-1.0, le=1.0, description="added to every application's annual_rate (0.02: +2 points)"
    )
    max_ltv_shift: float = Field(
        0.0, ge=-1.0, le=1.0, description="added to every market LTV cap and every grade's LTV cap"
    )
    dti_cap_shift: float = Field(0.0, ge=-1.0, le=1.0, description="added to every grade's DTI cap")
    approve_max_grade: int | None = Field(None, ge=0, description="another approval cut-off grade")
    refer_max_grade: int | None = Field(None, ge=0, description="another refer cut-off grade")

    def is_current(self) -> bool:
        return self == WhatIfScenario()


class WhatIfConfig(StrictModel):
    """The what-if stage (``whatif`` in params; docs/whatif.md)."""

    splits: list[str] = Field(
        default_factory=lambda: ["test", "oot"], min_length=1, description="the applications replayed"
    )
    scenario: WhatIfScenario = WhatIfScenario()
    operating_cost: float = Field(
        0.01, ge=0.0, le=1.0, description="annual operating cost as a share of the average balance"
    )
    capital_charge: float = Field(
        0.012,
        ge=0.0,
        le=1.0,
        description="annual cost of the capital a loan ties up, as a share of the balance "
        "(capital ratio x hurdle rate: 8% x 15%)",
    )
