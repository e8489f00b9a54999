"""The evidence behind the scorecard's variables: what was kept, what was dropped and why, what
the analysts' overrides cost, and a stepwise check beside the IV rule.

:func:`selection_evidence` refits the scorecard's binning on the rows the scorecard was fitted on
twice (optbinning's ``BinningProcess``, a few seconds each): once as the optimiser would bin every
candidate variable (no override), once as the scorecard did (with the overrides). From these:

- the IV ranking of every candidate variable, each with its status and, when dropped, the reason:
  ``low_iv`` (below ``min_iv``), ``max_features`` (not among the highest IVs kept),
  ``high_correlation`` (``max_correlation``: its WoE correlates with a stronger kept one's),
  ``override_exclude`` (an analyst's entry, with its reason), ``config_exclude``
  (``train.scorecard.exclude_features``), ``all_missing``, ``leakage`` (a post-application column
  the validate stage drops, never a feature); each variable's single-feature AUC, for the
  leakage guard's threshold;
- the optimiser's own bins of every candidate (``scoring bins suggest`` starts from them);
- the correlation of the kept variables' WoE on the fit rows, the pairs above
  :data:`CORRELATION_FLAG` and each one's VIF (the diagonal of the inverse correlation matrix);
- a backward elimination by AIC of the logistic regression on the kept variables' WoE: which
  variables a likelihood rule would remove that the IV rule keeps (a check, not applied);
- each override's cost: the variable's IV under the optimiser's bins and under the override, and
  the scorecard's AUC with the override and with that one override undone, both scorecards fitted
  on ``cost_data``'s first rows and measured on its second (the validation split in the stage).

Rows are taken unweighted: with reject inference the scorecard's own fit weighs inferred rows, so
its stored IVs may differ slightly from the ones here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.models.scorecard import (
    MISSING_BIN,
    ScorecardModel,
    ScorecardSettings,
    correlation_drops,
    correlation_woe,
    fit_binning_process,
    fit_scorecard,
    held_variables,
)
from scoring.models.scorecard_bins import BinOverride

logger = logging.getLogger(__name__)

CORRELATION_FLAG = 0.6
"""|r| of two kept variables' WoE at which the pair is listed."""
VIF_LIMIT = 10.0
"""A kept variable's VIF above this fails its check: its coefficient is not to be read alone."""
STEPWISE_METHOD = "backward elimination by AIC (unpenalised logistic regression on the kept variables' WoE)"

CostData = tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]


def binning_tables(process: Any) -> dict[str, dict[str, Any]]:
    """Per variable of a fitted BinningProcess: kind, splits or groups, and its bin table (each
    bin, then Missing: count, event rate, WoE, IV)."""
    from scoring.models.scorecard import interval_labels, quiet_optbinning

    out: dict[str, dict[str, Any]] = {}
    with quiet_optbinning():
        for name in process.variable_names:
            optb = process.get_binned_variable(name)
            built = optb.binning_table.build(add_totals=False)
            rows = built[built["Bin"].astype(str) != "Special"]
            if optb.dtype == "numerical":
                points = [float(s) for s in np.asarray(optb.splits, dtype=np.float64)]
                splits: list[float] | None = points
                groups: list[list[str]] | None = None
                labels = interval_labels(tuple(points))
            else:
                splits = None
                groups = [[str(level) for level in group] for group in optb.splits]
                labels = [", ".join(g) for g in groups]
            labels = [*labels, MISSING_BIN]
            table = []
            for label, (_, row) in zip(labels, rows.iterrows(), strict=True):
                count = int(row["Count"])
                table.append(
                    {
                        "bin": label,
                        "count": count,
                        "event_rate": float(row["Event"]) / count if count else None,
                        "woe": _finite(row["WoE"]),
                        "iv": _finite(row["IV"]),
                    }
                )
            out[str(name)] = {
                "kind": "numeric" if splits is not None else "categorical",
                "splits": splits,
                "groups": groups,
                "iv": float(optb.binning_table.iv),
                "table": table,
            }
    return out


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def woe_frame(model: ScorecardModel, X: pd.DataFrame) -> pd.DataFrame:
    """The WoE of each of the scorecard's variables for each row of ``X``, model order."""
    return pd.DataFrame({f.name: f.woe(X[f.name]) for f in model.features}, index=X.index)


def correlation_and_vif(woe: pd.DataFrame) -> tuple[dict[str, Any], dict[str, float | None]]:
    """Pearson correlation of the WoE columns, the pairs with |r| >= CORRELATION_FLAG, and each
    column's VIF (diagonal of the inverse correlation matrix; None where it is singular)."""
    names = [str(c) for c in woe.columns]
    values = woe.to_numpy(dtype=np.float64)
    constant = values.std(axis=0) == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(values, rowvar=False) if len(names) > 1 else np.ones((1, 1))
    corr = np.where(np.isnan(corr), 0.0, np.atleast_2d(corr))
    np.fill_diagonal(corr, 1.0)
    pairs: list[dict[str, Any]] = [
        {"a": names[i], "b": names[j], "r": float(corr[i, j])}
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if abs(corr[i, j]) >= CORRELATION_FLAG
    ]
    pairs.sort(key=lambda p: -abs(p["r"]))
    off = np.abs(corr - np.eye(len(names)))
    vif: dict[str, float | None] = {}
    try:
        inverse = np.linalg.inv(corr) if np.linalg.cond(corr) < 1e12 else None
    except np.linalg.LinAlgError:
        inverse = None
    for k, name in enumerate(names):
        vif[name] = None if inverse is None or constant[k] else float(inverse[k, k])
    return {
        "variables": names,
        "matrix": [[float(v) for v in row] for row in corr],
        "max_abs": float(off.max()) if len(names) > 1 else 0.0,
        "flag": CORRELATION_FLAG,
        "pairs_above": pairs,
    }, vif


def _aic(woe: pd.DataFrame, y: npt.NDArray[np.int64], columns: Sequence[str]) -> float:
    from sklearn.linear_model import LogisticRegression

    if not columns:
        rate = float(y.mean())
        loglik = float(np.sum(y * np.log(rate) + (1 - y) * np.log(1 - rate)))
        return 2.0 - 2.0 * loglik
    X = woe[list(columns)].to_numpy(dtype=np.float64)
    fitted = LogisticRegression(C=np.inf, solver="newton-cholesky", max_iter=100, tol=1e-8).fit(X, y)
    p = np.clip(fitted.predict_proba(X)[:, 1], 1e-15, 1 - 1e-15)
    loglik = float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return 2.0 * (len(columns) + 1) - 2.0 * loglik


def backward_stepwise(woe: pd.DataFrame, y: npt.ArrayLike) -> dict[str, Any]:
    """Backward elimination by AIC from every column of ``woe``: at each step the column whose
    removal lowers the AIC most goes, until no removal lowers it."""
    labels = np.asarray(y, dtype=np.int64)
    kept = [str(c) for c in woe.columns]
    current = _aic(woe, labels, kept)
    start = current
    removed: list[dict[str, Any]] = []
    while len(kept) > 1:
        trials = {name: _aic(woe, labels, [c for c in kept if c != name]) for name in kept}
        best = min(trials, key=lambda name: (trials[name], name))
        if not trials[best] < current:
            break
        removed.append({"variable": best, "aic_before": current, "aic_after": trials[best]})
        kept.remove(best)
        current = trials[best]
    return {
        "method": STEPWISE_METHOD,
        "aic_start": start,
        "aic_end": current,
        "kept": kept,
        "removed": removed,
        "agrees": not removed,
        "differs": [r["variable"] for r in removed],
    }


def _auc(y: pd.Series, pd_: npt.NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(y, dtype=np.int64), pd_))


def _override_bins(override: BinOverride, model: ScorecardModel, actual: Mapping[str, Any]) -> list[str]:
    for f in model.features:
        if f.name == override.variable:
            return [b.label for b in f.bins]
    table = actual.get(override.variable)
    return [] if table is None else [row["bin"] for row in table["table"] if row["bin"] != MISSING_BIN]


def override_costs(
    model: ScorecardModel,
    settings: ScorecardSettings,
    optimiser: Mapping[str, Any],
    actual: Mapping[str, Any],
    cost_data: CostData | None,
    seed: int,
) -> list[dict[str, Any]]:
    """Each override's IV and AUC cost against the optimiser's bins (positive: the override loses)."""
    costs: list[dict[str, Any]] = []
    base_auc = None
    if cost_data is not None and settings.overrides:
        X_fit, y_fit, X_test, y_test = cost_data
        base_auc = _auc(y_test, fit_scorecard(X_fit, y_fit, settings, seed).predict_pd(X_test))
    for name in sorted(settings.overrides):
        override = settings.overrides[name]
        iv_opt = optimiser.get(name, {}).get("iv")
        iv_over = None if override.exclude else actual.get(name, {}).get("iv")
        auc_opt = None
        if cost_data is not None:
            X_fit, y_fit, X_test, y_test = cost_data
            undone = {k: v for k, v in settings.overrides.items() if k != name}
            auc_opt = _auc(
                y_test,
                fit_scorecard(X_fit, y_fit, replace(settings, overrides=undone), seed).predict_pd(X_test),
            )
        opt_table = optimiser.get(name, {}).get("table", [])
        costs.append(
            {
                "variable": name,
                "kind": override.kind,
                "entry": override.entry(),
                "reason": override.reason,
                "iv_optimiser": iv_opt,
                "iv_override": iv_over if iv_over is not None else (0.0 if override.exclude else None),
                "iv_cost": None if iv_opt is None else iv_opt - (iv_over if iv_over is not None else 0.0),
                "auc_optimiser": auc_opt,
                "auc_override": base_auc,
                "auc_cost": None if auc_opt is None or base_auc is None else auc_opt - base_auc,
                "auc_on": None if cost_data is None else "valid, scorecards fitted on train",
                "bins_optimiser": [row["bin"] for row in opt_table if row["bin"] != MISSING_BIN],
                "bins_override": [] if override.exclude else _override_bins(override, model, actual),
            }
        )
    return costs


def selection_evidence(
    model: ScorecardModel,
    X: pd.DataFrame,
    y: pd.Series | npt.ArrayLike,
    seed: int,
    *,
    config_excluded: Sequence[str] = (),
    leakage_dropped: Sequence[str] = (),
    cost_data: CostData | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The selection evidence of ``model`` (fitted with ``model.settings`` on the rows ``X, y``).

    ``X``: every candidate variable (the feature matrix, config exclusions included); ``context``:
    extra settings to record (the overrides file, the data source). See the module docstring.
    """
    from scoring.data.leakage import single_feature_auc

    settings = model.settings
    labels = pd.Series(np.asarray(y), index=X.index)
    candidates = [str(c) for c in X.columns]
    plain = replace(settings, overrides={})
    optimiser_process, optimiser_frame = fit_binning_process(X, labels, plain)
    optimiser = binning_tables(optimiser_process)
    usable = X.drop(columns=[c for c in config_excluded if c in X.columns])
    # uncapped: the correlation filter runs down the whole IV ranking before max_features, as the fit's
    actual_process, actual_frame = fit_binning_process(
        usable, labels.loc[usable.index], replace(settings, max_features=None)
    )
    actual = binning_tables(actual_process)
    correlated: dict[str, tuple[str, float]] = {}
    if settings.max_correlation is not None:  # the fit's own filter, on the same rows
        ivs = {name: float(table["iv"]) for name, table in actual.items()}
        correlated = correlation_drops(
            correlation_woe(actual_process, actual_frame),
            ivs,
            settings.max_correlation,
            held_variables(settings),
        )
    aucs = single_feature_auc(X, labels.to_numpy(dtype=np.float64))

    selected = set(model.selected_features)
    removed_by_sign = {r.variable: r for r in model.sign_rule.removed}
    variables: list[dict[str, Any]] = []
    for name in candidates:
        override = settings.overrides.get(name)
        iv = actual.get(name, {}).get("iv")
        iv_optimiser = optimiser.get(name, {}).get("iv")
        status, reason, detail = "kept", None, ""
        if name not in selected:
            status = "dropped"
            if name in config_excluded:
                reason, detail = "config_exclude", "train.scorecard.exclude_features"
            elif override is not None and override.exclude:
                reason, detail = "override_exclude", override.reason
            elif name not in optimiser_frame.columns:
                reason, detail = "all_missing", "missing on every fit row"
            elif name in removed_by_sign:
                removal = removed_by_sign[name]
                reason = "wrong_sign"
                detail = (
                    f"coefficient {removal.coefficient:+.4f} against risk beside {removal.collinear_with}"
                    + ("" if removal.r is None else f" (WoE r {removal.r:+.2f})")
                    + f"; AUC on the fit rows {removal.auc_before:.4f} -> {removal.auc_after:.4f}"
                )
            elif name in correlated:
                other, r = correlated[name]
                detail = (
                    f"|r| {abs(r):.2f} > max_correlation {settings.max_correlation:g} with {other} "
                    f"(IV {actual[other]['iv']:.4f})"
                )
                reason = "high_correlation"
            elif iv is not None and iv < settings.min_iv:
                reason, detail = "low_iv", f"IV {iv:.4f} < min_iv {settings.min_iv:g}"
            else:
                reason, detail = "max_features", f"not among the {settings.max_features} highest IVs"
        variables.append(
            {
                "variable": name,
                "kind": optimiser.get(name, {}).get("kind", "numeric"),
                "iv": iv if iv is not None else iv_optimiser,
                "iv_optimiser": iv_optimiser,
                "status": status,
                "reason": reason,
                "detail": detail,
                "overridden": override is not None,
                "single_feature_auc": aucs.get(name),
                "kept_against_sign_rule": name in model.sign_rule.kept_against,
            }
        )
    variables.sort(key=lambda v: (-(v["iv"] if v["iv"] is not None else -1.0), v["variable"]))
    for rank, row in enumerate(variables, start=1):
        row["rank"] = rank
    for name in leakage_dropped:
        variables.append(
            {
                "variable": str(name),
                "kind": None,
                "iv": None,
                "iv_optimiser": None,
                "status": "dropped",
                "reason": "leakage",
                "detail": "known only after the application (validate.leakage.post_application_columns)",
                "overridden": False,
                "single_feature_auc": None,
                "kept_against_sign_rule": False,
                "rank": None,
            }
        )

    woe = woe_frame(model, X)
    correlation, vif = correlation_and_vif(woe)
    stepwise = backward_stepwise(woe, labels.to_numpy())
    costs = override_costs(model, settings, optimiser, actual, cost_data, seed)
    logger.info(
        "scorecard selection: %d of %d candidates kept; %d overrides; stepwise %s",
        len(selected),
        len(candidates),
        len(costs),
        "agrees" if stepwise["agrees"] else f"would remove {stepwise['differs']}",
    )
    return {
        "computed": True,
        "why": None,
        "rows": len(X),
        "settings": {
            "min_iv": settings.min_iv,
            "max_features": settings.max_features,
            "max_correlation": settings.max_correlation,
            "consistent_signs": settings.consistent_signs,
            **dict(context or {}),
        },
        "variables": variables,
        "optimiser_bins": optimiser,
        "correlation": correlation,
        "vif": vif,
        "sign_rule": model.sign_rule.to_dict(),
        "checks": characteristic_checks(model, vif),
        "stepwise": stepwise,
        "overrides": costs,
    }


def characteristic_checks(
    model: ScorecardModel, vif: Mapping[str, float | None] | None = None
) -> dict[str, dict[str, Any]]:
    """Per characteristic, what a committee asks before it reads the points: does the sign follow
    risk (coefficient <= 0: a safer bin, higher WoE, earns more points), do the points order the
    bins as their event rates do (every pair of bins with training rows), and is its VIF within
    :data:`VIF_LIMIT` (None when not computed). ``failures`` says what failed, in words; the
    report, the workbook and ``scoring bins show`` all read this."""
    kept_against = set(model.sign_rule.kept_against)
    out: dict[str, dict[str, Any]] = {}
    for card in model.features:
        failures: list[str] = []
        sign_ok = card.coefficient <= 0
        if not sign_ok:
            held = " (kept by an analyst's keep override)" if card.name in kept_against else ""
            failures.append(f"coefficient {card.coefficient:+.4f} against risk{held}")
        against = card.points_against_risk()
        if against:
            risky, safe = against[0]
            more = f" and {len(against) - 1} more pairs" if len(against) > 1 else ""
            failures.append(f"bin {risky} (riskier) earns more points than {safe}{more}")
        value = None if vif is None else vif.get(card.name)
        if value is not None and value > VIF_LIMIT:
            failures.append(f"VIF {value:.1f} > {VIF_LIMIT:g}")
        out[card.name] = {
            "sign_ok": sign_ok,
            "points_follow_risk": not against,
            "vif": value,
            "failures": failures,
        }
    return out


def not_computed(why: str, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The evidence file of a run that has none (no scorecard candidate, or the dask engine)."""
    return {"computed": False, "why": why, "settings": dict(context or {})}


@dataclass(frozen=True)
class VariableBins:
    """One variable's bins as ``scoring bins show`` prints them."""

    title: str
    table: pd.DataFrame
    notes: tuple[str, ...]


def variable_bins(model: ScorecardModel, evidence: Mapping[str, Any], variable: str) -> VariableBins:
    """The bin table of ``variable``: the scorecard's (count, event rate, WoE, IV, points) when it
    is in the card, else the optimiser's (no points) with the reason it was dropped."""
    rows = {str(v["variable"]): v for v in evidence.get("variables", [])}
    overrides = {str(o["variable"]): o for o in evidence.get("overrides", [])}
    notes: list[str] = []
    if variable in overrides:
        o = overrides[variable]
        notes.append(f"override ({o['kind']} {o['entry']}): {o['reason']}")
    for f in model.features:
        if f.name == variable:
            table = model.table()
            table = table[table["variable"] == variable].drop(columns="variable").reset_index(drop=True)
            iv = model.information_value.get(variable, float("nan"))
            title = f"{variable}: in the scorecard, IV {iv:.4f}, coefficient {f.coefficient:.4f}"
            check = characteristic_checks(model, evidence.get("vif"))[variable]
            vif = "n/a" if check["vif"] is None else f"{check['vif']:.1f}"
            notes.append(
                f"check: FAILED: {'; '.join(check['failures'])}"
                if check["failures"]
                else f"check: ok (points follow risk, sign follows risk, VIF {vif})"
            )
            return VariableBins(title, table, tuple(notes))
    if variable not in rows:
        known = sorted(name for name, row in rows.items() if row.get("rank") is not None)
        raise KeyError(f"variable {variable!r} is not a scorecard candidate; expected one of {known}")
    row = rows[variable]
    notes.insert(0, f"not in the scorecard: {row['reason']} ({row['detail']})")
    bins = evidence.get("optimiser_bins", {}).get(variable)
    if bins is None:
        return VariableBins(f"{variable}: not binned", pd.DataFrame(), tuple(notes))
    table = pd.DataFrame(bins["table"], columns=["bin", "count", "event_rate", "woe", "iv"])
    table = table.astype({"event_rate": np.float64, "woe": np.float64, "iv": np.float64})
    title = f"{variable}: the optimiser's bins, IV {bins['iv']:.4f}"
    return VariableBins(title, table, tuple(notes))
