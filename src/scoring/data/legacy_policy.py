"""The lender's historical accept/reject decisions on the synthetic portfolio (reject inference).

A lender only observes the outcome of loans it booked. :func:`apply_legacy_policy` replays an
older credit process over every application of a block and hides the outcome of those it turned
down, so that the training data carries the selection bias reject inference addresses, while the
truth (``true_pd`` and the drawn outcome of every applicant) stays whole for evaluation.

The legacy process, in order (every figure a param of :class:`LegacyPolicyConfig`):

1. **Knock-out rules** on what the application shows: a declared maximum per column (for
   example ``max_dpd_24m: 60``); a value above it declines, a missing value passes.
2. **An older, noisier score with a cut-off.** The legacy risk score is
   ``strength * z + sqrt(1 - strength**2) * e``, with ``z`` the standardised true default
   log-odds of the application (dealer effects, the macro cycle and the unobserved noise
   included: the old process saw things the data does not, such as the interview) and ``e``
   independent standard normal noise; ``strength`` is its correlation with the truth (0: the
   old decisions were random, so there is no selection bias; 1: they followed the truth). Of the
   applications that pass the knock-outs, the lowest-risk ones are accepted, as many as make
   ``acceptance_rate`` of the block (all of them if the knock-outs already decline more).
3. **Manual overrides both ways.** ``override_share`` of the block's applications have their
   decision flipped, chosen at random, half from each side (as far as each side has rows).

Declined applications get a null target; accepted ones keep their drawn outcome (immature ones
stay null either way). The truth gains :data:`ACCEPTED_COLUMN`; the applications' columns are
unchanged. Draws come from the block's own stream, the fourth child of the seed, so every other
column and every accepted outcome is that of the portfolio without the policy, and turning the
policy off gives the portfolio bit for bit.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from pydantic import Field

from scoring.core.contract import OUTCOME_COLUMN, TRUE_PD_COLUMN
from scoring.core.settings import StrictModel

logger = logging.getLogger(__name__)

ACCEPTED_COLUMN = "legacy_accepted"
"""Truth column: True where the legacy process booked the loan (its outcome is observed)."""

_POLICY_STREAM = 3  # children 0-1 are the applications', 2 the performance history's


class LegacyPolicyConfig(StrictModel):
    """The historical accept/reject process of the synthetic lender (``reject_inference.policy``)."""

    acceptance_rate: float = Field(0.6, gt=0.0, le=1.0, description="share of applications booked")
    strength: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="correlation of the legacy risk score with the true log-odds (0: random decisions)",
    )
    override_share: float = Field(
        0.04, ge=0.0, le=0.5, description="share of applications whose decision an underwriter flipped"
    )
    knockouts: dict[str, float] = Field(
        default_factory=lambda: {"max_dpd_24m": 90.0, "inquiries_6m": 8.0},
        description="column -> highest value the legacy rules accepted (above it: declined)",
    )


def policy_stream(seed: int, block: int) -> np.random.Generator:
    """The legacy policy's own random stream for one block of the portfolio."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_POLICY_STREAM, block)))


def legacy_accepted(
    applications: pd.DataFrame,
    true_pd: np.ndarray,
    config: LegacyPolicyConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """The legacy decision of every application (True = accepted), as the module docstring says."""
    n = len(applications)
    if n == 0:
        return np.zeros(0, dtype=bool)
    passes = np.ones(n, dtype=bool)
    for column, highest in config.knockouts.items():
        if column not in applications.columns:
            raise ValueError(
                f"reject_inference.policy.knockouts: column {column!r} is not in the applications; "
                f"expected one of {list(applications.columns)}"
            )
        values = pd.to_numeric(applications[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        passes &= ~(values > highest)  # a missing value passes
    pd_clipped = np.clip(np.asarray(true_pd, dtype=float), 1e-9, 1 - 1e-9)
    log_odds = np.log(pd_clipped / (1 - pd_clipped))
    spread = float(log_odds.std())
    z = (log_odds - log_odds.mean()) / (spread if spread > 0 else 1.0)
    noise = rng.standard_normal(n)
    risk = config.strength * z + math.sqrt(1.0 - config.strength**2) * noise
    n_accept = min(round(config.acceptance_rate * n), int(passes.sum()))
    accepted = np.zeros(n, dtype=bool)
    candidates = np.flatnonzero(passes)
    # a stable sort on the risk: ties (none in practice) keep row order
    accepted[candidates[np.argsort(risk[candidates], kind="stable")[:n_accept]]] = True
    flips = round(config.override_share * n / 2)
    if flips:
        accepted_rows, declined_rows = np.flatnonzero(accepted), np.flatnonzero(~accepted)
        up = rng.choice(declined_rows, size=min(flips, len(declined_rows)), replace=False)
        down = rng.choice(accepted_rows, size=min(flips, len(accepted_rows)), replace=False)
        accepted[up] = True
        accepted[down] = False
    return accepted


def apply_legacy_policy(
    applications: pd.DataFrame,
    truth: pd.DataFrame,
    config: LegacyPolicyConfig,
    seed: int,
    block: int = 0,
    target_column: str = "default_12m",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One block's applications with the declined ones' target nulled, and its truth with the
    decision (:data:`ACCEPTED_COLUMN`). The inputs are not changed."""
    if len(applications) != len(truth):
        raise ValueError(f"applications ({len(applications)} rows) and truth ({len(truth)} rows) must align")
    accepted = legacy_accepted(
        applications, truth[TRUE_PD_COLUMN].to_numpy(), config, policy_stream(seed, block)
    )
    out = applications.copy()
    target = out[target_column].astype("Int64").array
    out[target_column] = pd.arrays.IntegerArray(
        np.asarray(target.to_numpy(dtype="int64", na_value=0)), np.asarray(target.isna()) | ~accepted
    )
    truth_out = truth.copy()
    truth_out[ACCEPTED_COLUMN] = accepted
    labelled = out[target_column].notna().to_numpy()
    logger.info(
        "legacy policy: %d of %d applications accepted (%.1f%%); bad rate of the labelled accepted "
        "%.4f, of every applicant with an outcome %.4f",
        int(accepted.sum()),
        len(accepted),
        100.0 * float(accepted.mean()) if len(accepted) else 0.0,
        float(truth_out.loc[labelled, OUTCOME_COLUMN].mean()) if labelled.any() else float("nan"),
        float(truth_out[OUTCOME_COLUMN].mean()) if len(truth_out) else float("nan"),
    )
    return out, truth_out
