"""The explanation figures the explain stage reports: global importance, reason frequencies."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.explain.reasons import BIAS, CODE_COLUMNS, ReasonCoder


def global_importance(contributions: pd.DataFrame) -> list[dict[str, Any]]:
    """Mean |contribution| per feature (``bias`` left out), largest first; ties by name."""
    values = contributions.drop(columns=[BIAS], errors="ignore").abs().mean(axis=0)
    ranked = sorted(values.items(), key=lambda kv: (-float(kv[1]), str(kv[0])))
    return [{"feature": str(name), "mean_abs_contribution": float(value)} for name, value in ranked]


def reason_frequencies(reasons: pd.DataFrame, coder: ReasonCoder) -> list[dict[str, Any]]:
    """How often each code appears among the rows' reasons (any position); share of the rows."""
    n = len(reasons)
    codes = reasons[CODE_COLUMNS].to_numpy().ravel()
    counts = pd.Series(codes[codes != ""]).value_counts()
    texts = {g.code: g.text for g in coder.groups}
    ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return [
        {
            "code": str(code),
            "text": texts[str(code)],
            "count": int(count),
            "share": int(count) / n if n else 0.0,
        }
        for code, count in ranked
    ]


def explanation_summary(
    contributions: pd.DataFrame,
    log_odds: npt.ArrayLike,
    reasons: pd.DataFrame,
    declined: npt.ArrayLike,
    coder: ReasonCoder,
    method: str,
) -> dict[str, Any]:
    """The explain stage's summary.json (the report reads it).

    ``contributions`` and ``reasons`` cover the explained rows; ``log_odds`` is the model's
    logit(PD) for them (the additivity check); ``declined`` marks the declined rows, over
    which reason frequencies are counted.
    """
    declined_mask = np.asarray(declined, dtype=bool)
    sums = contributions.to_numpy(dtype=np.float64).sum(axis=1)
    gap = np.abs(sums - np.asarray(log_odds, dtype=np.float64))
    declined_reasons = reasons[declined_mask]
    n_codes = (declined_reasons[CODE_COLUMNS] != "").sum(axis=1)
    total = contributions.drop(columns=[BIAS]).sum(axis=1)[declined_mask]
    return {
        "global_importance": global_importance(contributions),
        "reason_frequencies": reason_frequencies(declined_reasons, coder),
        "n_explained": len(contributions),
        "method": method,
        "additivity_max_error": float(gap.max()) if len(gap) else 0.0,
        "baseline": coder.baseline,
        "max_reasons": coder.max_reasons,
        "n_declined": int(declined_mask.sum()),
        "declined_reason_counts": {str(k): int((n_codes == k).sum()) for k in range(coder.max_reasons + 1)},
        # Declines the model's contributions cannot explain (risk below the average applicant:
        # declined by a policy knock-out); their policy reasons explain them instead.
        "declined_without_reason": int((n_codes == 0).sum()),
        "declined_without_reason_and_positive_total": int(((n_codes == 0) & (total > 0)).sum()),
    }
