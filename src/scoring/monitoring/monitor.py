"""Monitoring a scored batch (and, where given, the loans' performance history) against the model's
reference profile: stability by month, back-tests, vintages, roll rates and early-warning alerts.

Each rule gives a traffic light per month (green, amber, red; ``n/a`` where the month cannot be
judged) with thresholds from params (:class:`scoring.monitoring.config.MonitorConfig`):

=====================  ======================================================================
score_psi              PSI of the month's scores against the profile's frozen score bins
feature_csi            the largest CSI over the model inputs (the feature is named); red only
                       while the score's PSI is at least amber too, unless
                       ``feature_csi_red_needs_score_shift: false``
approval_rate          approval rate's move against the reference, in percentage points
backtest               matured cohorts (90+ within ``default_months_on_book``): Jeffreys test
                       of the cohort's observed rate against its mean PD, and of every grade
                       with a Bonferroni correction over the grades tested; the calibrate
                       stage's p-value thresholds (red below ``red_p``, amber below ``yellow_p``)
discrimination         the AUC of each matured cohort below the development AUC by more than
                       ``auc_drop`` (cohorts with at least ``auc_min_defaults`` defaults)
early_delinquency      the cohort's share at 30+ by month on book 3 over the share its PDs
                       predict (the reference cohorts' observed/PD ratio), by ``factor``, and
                       unlikely by chance (one-sided binomial p below ``amber_p`` / ``red_p``)
=====================  ======================================================================

Months are application (cohort) months. Only months in the monitoring window (after the model's
development window, unless ``window: all``) with at least ``min_rows_per_month`` rows are judged.
A rule red for ``retrain_after_red_months`` consecutive judged months recommends retraining.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.frames import member_mask
from scoring.decision.grades import ValidationTestSettings
from scoring.monitoring import performance as perf
from scoring.monitoring.config import MonitorConfig, Thresholds
from scoring.monitoring.profile import stability_by_group

logger = logging.getLogger(__name__)

LIGHTS = ("n/a", "green", "amber", "red")
RULES = ("score_psi", "feature_csi", "approval_rate", "backtest", "discrimination", "early_delinquency")
SCORED_COLUMNS = ("pd", "score", "grade", "decision")


@dataclass
class MonitoringResult:
    stability: pd.DataFrame
    csi: pd.DataFrame
    grade_mix: pd.DataFrame
    lights: pd.DataFrame
    alerts: dict[str, Any]
    backtest_cohorts: pd.DataFrame | None = None
    backtest_grades: pd.DataFrame | None = None
    early: pd.DataFrame | None = None
    vintages: pd.DataFrame | None = None
    roll_rates: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def threshold_light(value: Any, thresholds: Thresholds) -> str:
    """The light of a value against amber/red thresholds; n/a for a missing or non-finite value."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not np.isfinite(value):
        return "n/a"
    if value >= thresholds.red:
        return "red"
    if value >= thresholds.amber:
        return "amber"
    return "green"


def _p_light(p_value: float, red_p: float, amber_p: float) -> str:
    if not np.isfinite(p_value):
        return "n/a"
    if p_value < red_p:
        return "red"
    if p_value < amber_p:
        return "amber"
    return "green"


def _worst(lights: list[str]) -> str:
    return max(lights, key=LIGHTS.index) if lights else "n/a"


def _months(batch: pd.DataFrame, date_column: str | None) -> np.ndarray:
    if date_column is None or date_column not in batch.columns:
        return np.zeros(len(batch), dtype=np.int64)
    return perf.month_number(batch[date_column])


def _profile_window(profile: dict[str, Any]) -> tuple[int, int] | None:
    window = profile.get("window") or {}
    if not window.get("first_month") or not window.get("last_month"):
        return None
    first, last = (pd.Period(window[k], freq="M") for k in ("first_month", "last_month"))
    return first.year * 12 + first.month - 1, last.year * 12 + last.month - 1


def stability_by_month(
    batch: pd.DataFrame, months: np.ndarray, profile: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per month: rows, approval rate, mean PD, score PSI, the largest CSI; CSI per feature; grade mix."""
    features = [c for c in profile["features"] if c in batch.columns]
    unique, groups = np.unique(months, return_inverse=True)
    k = len(unique)
    csi = {c: stability_by_group(batch[c], groups, k, profile["features"][c]) for c in features}
    score_psi = stability_by_group(batch["score"], groups, k, profile["score"])
    n = np.bincount(groups, minlength=k)
    approved = np.bincount(
        groups, weights=(batch["decision"].astype(str) == "approve").to_numpy(float), minlength=k
    )
    pd_sum = np.bincount(groups, weights=batch["pd"].to_numpy(dtype=np.float64), minlength=k)
    matrix = np.column_stack([csi[c] for c in features]) if features else np.full((k, 1), np.nan)
    has_value = ~np.isnan(matrix).all(axis=1)
    top = np.where(has_value, np.nanargmax(np.where(np.isnan(matrix), -1.0, matrix), axis=1), -1)
    approval = approved / np.maximum(n, 1)
    stability = pd.DataFrame(
        {
            "month": unique.astype(int),
            "label": perf.month_label(unique),
            "n": n,
            "approval_rate": approval,
            "approval_rate_change_points": 100.0 * (approval - profile["approval_rate"]),
            "mean_pd": pd_sum / np.maximum(n, 1),
            "score_psi": score_psi,
            "max_csi": np.where(top >= 0, matrix[np.arange(k), np.maximum(top, 0)], np.nan),
            "max_csi_feature": [features[t] if t >= 0 and features else "" for t in top],
        }
    )
    csi_table = pd.DataFrame({"month": unique.astype(int), **csi}, columns=["month", *features])
    mix = pd.crosstab(months, batch["grade"].astype(int).to_numpy(), normalize="index")
    mix.columns = [str(c) for c in mix.columns]
    mix = mix.reset_index(drop=True)
    mix.insert(0, "month", unique.astype(int))
    return stability, csi_table, mix


def run_monitoring(
    batch: pd.DataFrame,
    profile: dict[str, Any],
    config: MonitorConfig,
    tests: ValidationTestSettings,
    id_column: str,
    date_column: str | None,
    history: pd.DataFrame | None = None,
) -> MonitoringResult:
    """Monitor ``batch`` (raw inputs plus the scorer's pd, score, grade, decision; one row per
    application) against ``profile``; ``history``: the gated performance history of its loans."""
    missing = [c for c in (id_column, *SCORED_COLUMNS) if c not in batch.columns]
    if missing:
        raise ValueError(
            f"monitoring: the scored batch lacks columns {missing}; expected {list(SCORED_COLUMNS)} too"
        )
    months = _months(batch, date_column)
    stability, csi, mix = stability_by_month(batch, months, profile)
    reference = _profile_window(profile)
    judged = stability["n"] >= config.min_rows_per_month
    if config.window == "after_reference" and reference is not None:
        judged &= stability["month"] > reference[1]
    stability["judged"] = judged
    judged_months = set(stability.loc[judged, "month"].astype(int))

    lights: dict[str, dict[int, str]] = {rule: {} for rule in RULES}
    values: dict[str, dict[int, Any]] = {rule: {} for rule in RULES}
    for row in _records(stability):
        if row["month"] not in judged_months:
            continue
        lights["score_psi"][row["month"]] = threshold_light(row["score_psi"], config.score_psi)
        values["score_psi"][row["month"]] = row["score_psi"]
        csi_light = threshold_light(row["max_csi"], config.feature_csi)
        if csi_light == "red" and config.feature_csi_red_needs_score_shift:
            # a shifted input that leaves the score's distribution where it was is a finding to
            # investigate (amber), not a model failure
            csi_light = "red" if row["score_psi"] >= config.score_psi.amber else "amber"
        lights["feature_csi"][row["month"]] = csi_light
        values["feature_csi"][row["month"]] = f"{row['max_csi_feature']} {row['max_csi']:.3f}"
        lights["approval_rate"][row["month"]] = threshold_light(
            abs(row["approval_rate_change_points"]), config.approval_rate_points
        )
        values["approval_rate"][row["month"]] = row["approval_rate_change_points"]

    result = MonitoringResult(stability=stability, csi=csi, grade_mix=mix, lights=pd.DataFrame(), alerts={})
    if history is not None and len(history):
        _performance_rules(
            result, batch, months, profile, config, tests, id_column, history, judged_months, lights, values
        )

    table = pd.DataFrame(
        [
            {
                "month": m,
                "label": perf.month_label(np.array([m]))[0],
                **{r: lights[r].get(m, "n/a") for r in RULES},
            }
            for m in sorted(judged_months)
        ],
        columns=["month", "label", *RULES],
    )
    result.lights = table
    result.alerts = _alerts(table, values, config)
    result.summary = {
        **result.summary,
        "n_rows": len(batch),
        "n_months": len(stability),
        "n_months_judged": len(judged_months),
        "reference_window": profile.get("window"),
        "history_rows": 0 if history is None else len(history),
        "overall": result.alerts["overall"],
    }
    return result


def _performance_rules(
    result: MonitoringResult,
    batch: pd.DataFrame,
    months: np.ndarray,
    profile: dict[str, Any],
    config: MonitorConfig,
    tests: ValidationTestSettings,
    id_column: str,
    history: pd.DataFrame,
    judged_months: set[int],
    lights: dict[str, dict[int, str]],
    values: dict[str, dict[int, Any]],
) -> None:
    from scipy.stats import binomtest

    outcomes = perf.loan_outcomes(history)
    scored = pd.DataFrame(
        {
            "cohort": months,
            "pd": batch["pd"].to_numpy(dtype=np.float64),
            "grade": batch["grade"].astype(int).to_numpy(),
        },
        index=pd.Index(batch[id_column].astype(str).to_numpy(), name="loan_id"),
    )
    scored = scored[member_mask(scored.index, outcomes.index)]
    last_month = int(perf.month_number(history["as_of_month"]).max())
    observed = perf.defaulted_within(outcomes, config.default_months_on_book, last_month)
    back = perf.backtest(scored, observed, tests, config.backtest_min_rows)
    result.backtest_cohorts, result.backtest_grades = back["cohorts"], back["grades"]
    grades = back["grades"].dropna(subset=["jeffreys_p"])
    development_auc = profile.get("development_auc")
    for row in _records(back["cohorts"]):
        if row["month"] not in judged_months:
            continue
        in_month = grades[grades["month"] == row["month"]]
        adjusted = float(in_month["jeffreys_p"].min() * len(in_month)) if len(in_month) else float("nan")
        cohort_light = _p_light(row["jeffreys_p"], tests.red_p, tests.yellow_p)
        grade_light = _p_light(adjusted, tests.red_p, tests.yellow_p)
        lights["backtest"][row["month"]] = _worst([cohort_light, grade_light])
        values["backtest"][row["month"]] = f"observed {row['observed_rate']:.4f} vs PD {row['mean_pd']:.4f}"
        if (
            development_auc is not None
            and np.isfinite(row["auc"])
            and row["defaults"] >= config.auc_min_defaults
        ):
            drop = float(development_auc) - row["auc"]
            lights["discrimination"][row["month"]] = threshold_light(drop, config.auc_drop)
            values["discrimination"][row["month"]] = f"AUC {row['auc']:.3f} vs {float(development_auc):.3f}"

    rule = config.early_delinquency
    early, ratio = perf.early_delinquency(
        scored, outcomes, rule.months_on_book, rule.threshold, _profile_window(profile), last_month
    )
    result.early = early
    for row in _records(early):
        if (
            row["month"] not in judged_months
            or row["n"] < rule.min_loans
            or not np.isfinite(row["expected_rate"])
        ):
            continue
        p = float(
            binomtest(row["events"], row["n"], min(row["expected_rate"], 1.0), alternative="greater").pvalue
        )
        by_factor = threshold_light(row["ratio"], rule.factor)
        by_chance = _p_light(p, rule.red_p, rule.amber_p)
        lights["early_delinquency"][row["month"]] = min(by_factor, by_chance, key=LIGHTS.index)
        values["early_delinquency"][row["month"]] = (
            f"{row['observed_rate']:.4f} vs expected {row['expected_rate']:.4f}"
        )
    result.vintages = perf.vintage_curves(outcomes, last_month, config.vintage_max_months_on_book)
    window = min(judged_months) if judged_months else None
    result.roll_rates = perf.roll_rates(history, first_month=window)
    result.summary["early_delinquency_reference_ratio"] = ratio


def _alerts(table: pd.DataFrame, values: dict[str, dict[int, Any]], config: MonitorConfig) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    retrain_since: list[tuple[str, str]] = []
    for rule in RULES:
        column = table[rule].tolist() if len(table) else []
        labels = table["label"].tolist() if len(table) else []
        fired = [label for label, light in zip(labels, column, strict=True) if light in ("amber", "red")]
        reds = [label for label, light in zip(labels, column, strict=True) if light == "red"]
        streak, longest, streak_start, since = 0, 0, None, None
        for label, light in zip(labels, column, strict=True):
            if light == "red":
                streak += 1
                streak_start = streak_start or label
                if streak >= config.retrain_after_red_months and since is None:
                    since = label
                longest = max(longest, streak)
            elif light != "n/a":
                streak, streak_start = 0, None
        if since is not None:
            retrain_since.append((since, rule))
        month_values = values[rule]
        rules[rule] = {
            "light": _worst(column),
            "first_fired": fired[0] if fired else None,
            "first_red": reds[0] if reds else None,
            "months_amber_or_red": len(fired),
            "months_red": len(reds),
            "longest_red_streak": longest,
            "latest": (
                {
                    "month": labels[-1],
                    "light": column[-1],
                    "value": _plain(month_values.get(int(table["month"].iloc[-1]))),
                }
                if labels
                else None
            ),
            "first_fired_value": _plain(
                month_values.get(int(table.loc[table["label"] == fired[0], "month"].iloc[0]))
            )
            if fired
            else None,
        }
    overall = _worst([entry["light"] for entry in rules.values()])
    retrain = sorted(retrain_since)
    return {
        "overall": overall,
        "rules": rules,
        "retrain": {
            "recommended": bool(retrain),
            "since": retrain[0][0] if retrain else None,
            "because": [
                f"{rule} red {config.retrain_after_red_months}+ months from {month}"
                for month, rule in retrain
            ],
        },
    }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


@dataclass
class ScoredBatch:
    """A batch with the scorer's columns beside its inputs, and the rows the scorer refused."""

    frame: pd.DataFrame
    rejected: pd.DataFrame
    n_input: int
    scored_here: bool
    flags: pd.Series | None = None
    """Per scored row: what training did not show of an inferred field (the scorer's
    ``input_flags``); None where the batch came scored without them."""

    def flag_counts(self) -> dict[str, Any]:
        """Scored rows that carry a flag, and the rows per ``field:code``: the monitoring count of
        values outside what the model was trained on."""
        from scoring.serving.inputs import count_flags

        if self.flags is None:
            return {"batch_flagged": None, "batch_flags": {}}
        flags = self.flags.fillna("").astype(str)
        return {"batch_flagged": int((flags != "").sum()), "batch_flags": count_flags(flags)}


def score_for_monitoring(scorer: Any, batch: pd.DataFrame) -> ScoredBatch:
    """The batch with pd, score, grade and decision: kept when it already has them (the output of
    ``scoring score`` joined to its inputs), else scored by ``scorer`` (rows failing the input
    checks are returned as rejected with their reasons: input = scored + rejected)."""
    if all(c in batch.columns for c in SCORED_COLUMNS):
        frame = batch.reset_index(drop=True)
        flags = frame["input_flags"] if "input_flags" in frame.columns else None
        return ScoredBatch(frame, batch.iloc[0:0], len(batch), scored_here=False, flags=flags)
    id_column = scorer.spec.id_column
    scores, rejected = scorer.score_batch(batch, with_reasons=False)
    inputs = scorer.model_input(batch)
    keyed = inputs.assign(**{id_column: inputs[id_column].astype(str)})
    joined = scores[["application_id", *SCORED_COLUMNS]].merge(
        keyed, left_on="application_id", right_on=id_column, how="left", validate="one_to_one"
    )
    if id_column != "application_id":
        joined = joined.drop(columns=["application_id"])
    if len(joined) + len(rejected) != len(batch):
        raise AssertionError(
            f"monitoring lost rows: {len(batch)} in, {len(joined)} scored, {len(rejected)} rejected"
        )
    return ScoredBatch(joined, rejected, len(batch), scored_here=True, flags=scores["input_flags"])
