"""How a PD model does on everyone who applied (through the door), not only on the booked loans.

Only the synthetic truth makes this measurable: it holds every applicant's true PD and drawn
outcome, rejected or not. :func:`through_the_door` compares a model's PDs on a through-the-door
holdout with that truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import brier_score_loss, roc_auc_score

FloatArray = npt.NDArray[np.float64]

ACCEPTANCE_RATES: tuple[float, ...] = (0.4, 0.5, 0.6, 0.7, 0.8)


def _auc(outcome: FloatArray, score: FloatArray) -> float:
    return float(roc_auc_score(outcome, score)) if len(np.unique(outcome)) == 2 else float("nan")


def through_the_door(
    predicted_pd: Any,
    outcome: Any,
    true_pd: Any,
    accepted: Any,
    amount: Any | None = None,
    acceptance_rates: Sequence[float] = ACCEPTANCE_RATES,
) -> dict[str, Any]:
    """Discrimination, accuracy, calibration bias and the approved book at fixed acceptance rates.

    ``outcome`` is every applicant's drawn outcome (0/1), ``true_pd`` their true probability,
    ``accepted`` the old policy's decision, ``amount`` the loan amounts (volume; rows count
    otherwise). Bias is the mean predicted PD minus the mean true PD (positive: the model thinks
    them riskier than they are). At each acceptance rate the applicants with the lowest predicted
    PD are approved; the book's bad rate is read from the drawn outcomes and, less noisily, from
    the true PDs.
    """
    p = np.asarray(predicted_pd, dtype=float)
    y = np.asarray(outcome, dtype=float)
    truth = np.asarray(true_pd, dtype=float)
    acc = np.asarray(accepted, dtype=bool)
    n = len(p)
    if not (len(y) == len(truth) == len(acc) == n):
        raise ValueError(
            f"through_the_door: every input needs one value per applicant; got {n} PDs, {len(y)} "
            f"outcomes, {len(truth)} true PDs and {len(acc)} decisions"
        )
    if n == 0:
        raise ValueError("through_the_door: no applicants")
    if np.isnan(p).any() or np.isnan(y).any():
        raise ValueError("through_the_door: predicted PDs and outcomes must have no missing values")
    volume = np.ones(n) if amount is None else np.asarray(amount, dtype=float)
    rejected = ~acc
    out: dict[str, Any] = {
        "applicants": n,
        "accepted_share": float(acc.mean()),
        "auc": _auc(y, p),
        "auc_accepted": _auc(y[acc], p[acc]),
        "auc_rejected": _auc(y[rejected], p[rejected]),
        "brier": float(brier_score_loss(y, np.clip(p, 0.0, 1.0))),
        "pd_bias": float(p.mean() - truth.mean()),
        "pd_bias_accepted": float(p[acc].mean() - truth[acc].mean()) if acc.any() else float("nan"),
        "pd_bias_rejected": float(p[rejected].mean() - truth[rejected].mean())
        if rejected.any()
        else float("nan"),
        "mean_true_pd_rejected": float(truth[rejected].mean()) if rejected.any() else float("nan"),
    }
    order = np.argsort(p, kind="stable")
    books = []
    for rate in acceptance_rates:
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"acceptance rate {rate!r}: expected a share in (0, 1]")
        approved = order[: max(1, round(rate * n))]
        books.append(
            {
                "acceptance_rate": float(rate),
                "bad_rate": float(y[approved].mean()),
                "expected_bad_rate": float(truth[approved].mean()),
                "volume": float(volume[approved].sum()),
            }
        )
    out["at_acceptance_rate"] = books
    return out
