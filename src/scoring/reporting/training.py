"""What the train stage reports: each candidate's held-out figures and what settling found."""

from __future__ import annotations

from typing import Any

from scoring.models.training import FittedCandidates
from scoring.reporting.metrics import discrimination_metrics


def held_out_metrics(fitted: FittedCandidates) -> dict[str, dict[str, float]]:
    """Each candidate's discrimination on the held-out predictions calibration reads (out of
    fold over train+valid, or valid): the exported models' own figures on valid would be
    in-sample once they are refitted on it."""
    from scipy.special import expit

    held_out = fitted.calibration
    y = held_out["target"].to_numpy(dtype=float)
    return {c.name: discrimination_metrics(y, expit(held_out[c.name].to_numpy())) for c in fitted.candidates}


def training_summary(fitted: FittedCandidates, n_train: int, n_valid: int, tuned: bool) -> dict[str, Any]:
    """reports/train.json: the champion and, per candidate, what settling found and its held-out figures."""
    decision = fitted.decision
    held_out_key = "oof" if fitted.calibration_source == "out_of_fold" else "valid"
    selection_key = f"{decision.selection}_auc"
    metrics = held_out_metrics(fitted)
    candidates: dict[str, Any] = {}
    for candidate in fitted.candidates:
        entry: dict[str, Any] = {
            **candidate.plugin.describe(fitted.models[candidate.name]),
            **decision.details.get(candidate.name, {}),
        }
        entry.pop("auc_by_weight", None)  # in champion.json
        if candidate.name == "xgboost":
            entry["tuned"] = tuned
        entry[selection_key] = decision.auc[candidate.name]
        entry[held_out_key] = metrics[candidate.name]
        candidates[candidate.name] = entry
    return {
        "champion": decision.champion,
        "champion_reason": decision.reason,
        "champion_selection": decision.selection,
        **candidates,
        "n_train": n_train,
        "n_valid": n_valid,
        "fit_on": fitted.fit_on,
        "n_fit": fitted.n_fit,
        "calibration_source": fitted.calibration_source,
    }
