"""Typed params of the feature transformer."""

from __future__ import annotations

from pydantic import Field

from scoring.core.settings import StrictModel


class FeaturesConfig(StrictModel):
    max_category_levels: int = Field(
        500, ge=2, description="levels kept per categorical column; rarer ones become 'other'"
    )
    min_category_count: int = Field(20, ge=1, description="levels seen fewer times in train become 'other'")
