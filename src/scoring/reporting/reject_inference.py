"""How a PD model does on everyone who applied (through the door), not only on the booked loans.

Only the synthetic truth makes this measurable: it holds every applicant's true PD and drawn
outcome, rejected or not. :func:`through_the_door` compares a model's PDs on a through-the-door
holdout with that truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.core.contract import OUTCOME_COLUMN, TRUE_PD_COLUMN
from scoring.reporting.evaluation import TRUTH_ID_COLUMN

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


def test_period_holdout(
    test: pd.DataFrame,
    test_period_rejects: pd.DataFrame,
    predictions: pd.DataFrame,
    truth: pd.DataFrame,
    id_column: str,
    amount_column: str | None = "loan_amount",
) -> dict[str, Any]:
    """:func:`through_the_door` of the exported model on the test period: the booked loans of
    ``test`` and the declined applications the split's hash sends to test, with their calibrated
    PDs from the evaluate stage's ``predictions`` (``application_id``, ``pd``) and their outcomes
    and true PDs from ``truth`` (:data:`TRUTH_ID_COLUMN`, :data:`OUTCOME_COLUMN`,
    :data:`TRUE_PD_COLUMN`)."""
    ids = pd.concat([test[id_column], test_period_rejects[id_column]], ignore_index=True).astype(str)
    predicted = predictions.assign(application_id=predictions["application_id"].astype(str)).set_index(
        "application_id"
    )["pd"]
    known = truth.assign(**{TRUTH_ID_COLUMN: truth[TRUTH_ID_COLUMN].astype(str)}).set_index(TRUTH_ID_COLUMN)
    missing = ids[~ids.isin(known.index) | ~ids.isin(predicted.index)]
    if len(missing):
        raise ValueError(
            f"through-the-door holdout: {len(missing)} applications (first {missing.iloc[0]!r}) have no "
            "prediction or no truth; expected every test-period application in both"
        )
    rows = pd.concat([test, test_period_rejects], ignore_index=True)
    amount = rows[amount_column] if amount_column and amount_column in rows.columns else None
    out = through_the_door(
        predicted.reindex(ids).to_numpy(dtype=float),
        known[OUTCOME_COLUMN].reindex(ids).to_numpy(dtype=float),
        known[TRUE_PD_COLUMN].reindex(ids).to_numpy(dtype=float),
        np.concatenate([np.ones(len(test), dtype=bool), np.zeros(len(test_period_rejects), dtype=bool)]),
        None if amount is None else amount.to_numpy(dtype=float),
    )
    out["booked"] = len(test)
    out["declined"] = len(test_period_rejects)
    return out


COMPARED: tuple[str, ...] = ("auc", "auc_accepted", "auc_rejected", "brier", "pd_bias", "pd_bias_rejected")


def compared_with_reference(method: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, Any]:
    """What a reject-inference method gained or cost against accepts-only on the same applicants
    (both :func:`through_the_door` results): the method's figure minus the reference's for
    :data:`COMPARED` (AUC up is better, Brier down; bias toward zero, hence the absolute
    biases' difference too), and the difference in the approved book's true bad rate at each
    acceptance rate (down is better)."""
    if method["applicants"] != reference["applicants"]:
        raise ValueError(
            f"compared_with_reference: {method['applicants']} applicants against {reference['applicants']}; "
            "expected the same through-the-door holdout"
        )
    out: dict[str, Any] = {name: float(method[name] - reference[name]) for name in COMPARED}
    out["abs_pd_bias_rejected"] = float(abs(method["pd_bias_rejected"]) - abs(reference["pd_bias_rejected"]))
    out["expected_bad_rate_at_acceptance_rate"] = {
        f"accept_{a['acceptance_rate'] * 100:.0f}pct": float(a["expected_bad_rate"] - b["expected_bad_rate"])
        for a, b in zip(method["at_acceptance_rate"], reference["at_acceptance_rate"], strict=True)
    }
    return out
