"""Typed params of the reason codes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from scoring.core.settings import StrictModel


class ReasonEntry(StrictModel):
    """One adverse-action reason: its code and the plain-language text shown to the applicant."""

    code: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1)


class ReasonsConfig(StrictModel):
    """Reason codes (scoring.explain): which contributions become reasons and how they read.

    ``reason_map`` is keyed by model feature or group name; every model input feature must be
    covered (by its own entry or its group's), and every key must be a feature or a group:
    both are checked against the model when the coder is fitted.
    """

    max_reasons: int = Field(4, ge=1, le=4, description="most reasons per applicant")
    baseline: Literal["expected_value", "training_mean"] = Field(
        "expected_value",
        description="expected_value: contributions as they are, i.e. against the model's expected "
        "log-odds over the training population; training_mean: each feature's contribution "
        "minus its mean over the training split",
    )
    min_contribution: float = Field(
        0.0, ge=0.0, description="a reason must raise the log-odds by more than this against the baseline"
    )
    reference_rows: int = Field(
        50_000, ge=100, description="training rows (evenly spaced) the baseline is measured on"
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group name -> correlated features reported as one reason"
    )
    reason_map: dict[str, ReasonEntry] = Field(
        default_factory=dict, description="feature or group name -> reason code and text"
    )

    @model_validator(mode="after")
    def _codes_and_groups_consistent(self) -> ReasonsConfig:
        seen: dict[str, str] = {}
        for key, entry in self.reason_map.items():
            if entry.code in seen:
                raise ValueError(
                    f"reason_map: code {entry.code!r} used by both {seen[entry.code]!r} and {key!r}; "
                    "expected one code per reason"
                )
            seen[entry.code] = key
        owner: dict[str, str] = {}
        for group, members in self.groups.items():
            if len(members) < 2:
                raise ValueError(f"groups.{group}: {members}: expected at least two features")
            for member in members:
                if member in owner:
                    raise ValueError(
                        f"groups: feature {member!r} is in both {owner[member]!r} and {group!r}; "
                        "expected each feature in at most one group"
                    )
                owner[member] = group
        clash = sorted(set(owner) & set(self.reason_map))
        if clash:
            raise ValueError(
                f"reason_map: {clash} are grouped features; their reason is their group's entry "
                f"({sorted({owner[c] for c in clash})})"
            )
        named = sorted(set(self.groups) & set(owner))
        if named:
            raise ValueError(f"groups: {named} are both a group name and a grouped feature")
        return self
