"""Typed params of the reporting stages: evaluate's calibration bins and the fair-lending screen
(fairness)."""

from __future__ import annotations

import itertools
import math
from typing import Literal

from pydantic import Field, field_validator

from scoring.core.settings import StrictModel


class EvaluateConfig(StrictModel):
    """The evaluate stage: how many bins its calibration tables and plots use."""

    calibration_bins: int = Field(10, ge=2)


DEFAULT_AGE_BANDS: tuple[float, ...] = (18, 25, 35, 50, 65, 120)


class GroupSpec(StrictModel):
    """One group variable: a categorical column as it is, or a numeric column cut into bands.

    ``bands`` are the band edges, strictly increasing; each band is right-open, so
    ``[18, 25, 35]`` gives "18-24" and "25-34" (with whole-number edges a label names the first
    and last whole value of its band; otherwise it reads ``[0.5, 1)``). Values below the first
    edge are labelled ``<18``, values at or above the last ``>=35``.
    """

    column: str = Field(min_length=1)
    bands: list[float] | None = None

    @field_validator("bands")
    @classmethod
    def _bands_increasing(cls, bands: list[float] | None) -> list[float] | None:
        if bands is None:
            return None
        if len(bands) < 2:
            raise ValueError(f"bands {bands}: expected at least 2 edges (one band)")
        if not all(math.isfinite(b) for b in bands):
            raise ValueError(f"bands {bands}: expected finite numbers")
        if any(hi <= lo for lo, hi in itertools.pairwise(bands)):
            raise ValueError(f"bands {bands}: expected edges sorted strictly increasing")
        return bands


def _default_groups() -> dict[str, GroupSpec]:
    return {
        "age_band": GroupSpec(column="age", bands=list(DEFAULT_AGE_BANDS)),
        "marital_status": GroupSpec(column="marital_status"),
        "region": GroupSpec(column="region"),
    }


class FairnessConfig(StrictModel):
    """Fair-lending screening (scoring.reporting.fairness): the group variables and the thresholds."""

    groups: dict[str, GroupSpec] = Field(
        default_factory=_default_groups,
        description="group variable name -> the column it reads (and its bands, for a numeric column)",
    )
    splits: list[str] = Field(
        default_factory=lambda: ["test", "oot"], description="the splits whose decisions are screened"
    )
    air_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="flag a group whose adverse impact ratio is below this (4/5 rule)"
    )
    min_group_size: int = Field(
        30,
        ge=1,
        description="groups with fewer applications are reported but not flagged; the equalized odds "
        "difference counts only groups with at least this many good and this many bad customers",
    )
    reference: Literal["most_favoured"] = Field(
        "most_favoured",
        description="AIR denominator: the highest approval rate among groups of at least min_group_size",
    )

    @field_validator("groups")
    @classmethod
    def _some_groups(cls, groups: dict[str, GroupSpec]) -> dict[str, GroupSpec]:
        if not groups:
            raise ValueError("groups: empty; expected at least one group variable")
        blank = [name for name in groups if not name.strip()]
        if blank:
            raise ValueError(f"groups: {blank}: expected non-empty group variable names")
        return groups

    @field_validator("splits")
    @classmethod
    def _splits_unique(cls, splits: list[str]) -> list[str]:
        if not splits:
            raise ValueError("splits: empty; expected at least one split name")
        repeated = sorted({s for s in splits if splits.count(s) > 1})
        if repeated:
            raise ValueError(f"splits: {repeated} listed more than once; expected each split once")
        return splits
