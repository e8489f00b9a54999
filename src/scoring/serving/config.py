"""Typed params of the export stage: the registered model's name and the MLflow experiment."""

from __future__ import annotations

from pydantic import Field

from scoring.core.settings import StrictModel


class ExportConfig(StrictModel):
    model_name: str = Field("auto_loan_pd", pattern=r"^[A-Za-z0-9_.-]+$")
    experiment_name: str = "credit-scoring"
