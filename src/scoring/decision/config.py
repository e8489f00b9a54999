"""Typed params of the calibrate stage: PD calibration, master scale and tests."""

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
