"""Fair-lending screening figures: approval rates, adverse impact ratios and error-rate gaps by group.

What the figures mean
---------------------
- **Approval rate** of a group: the share of its applications whose decision is ``approve``.
  Only ``approve`` counts as approved; ``refer`` and ``decline`` both count as not approved
  (a referral is not an approval until someone approves it).
- **Adverse impact ratio (AIR)** of a group: its approval rate divided by the approval rate
  of the most favoured group, the group with the highest approval rate among those with at
  least ``min_group_size`` applications. The most favoured group's AIR is 1.0; a variable
  with a single group has AIR 1.0.
- **Four-fifths rule**: a group whose AIR is below ``air_threshold`` (0.8, four fifths) is
  flagged for review. Groups smaller than ``min_group_size`` are reported with their AIR but
  never flagged: their rates are too noisy to screen on.
- **True-positive and false-positive rates** (on the labelled rows only, those with a known
  outcome): the decision "approve" is treated as a prediction that the applicant is a *good*
  customer (no default). TPR = share of a group's good customers that were approved; FPR =
  share of its bad (defaulted) customers that were approved. A rate is ``None`` where the group
  has no labelled good (TPR) or bad (FPR) customers.
- **Equalized odds difference** of a variable: the larger of the TPR gap and the FPR gap
  (largest minus smallest across its groups); 0 means every group's good customers are
  approved at the same rate and so are its bad customers. It is taken over the groups with at
  least ``min_group_size`` labelled good *and* ``min_group_size`` labelled bad customers
  (``equalized_odds_groups``; None when there are none): a rate measured on a few customers
  swings between 0 and 1 by chance, and a group without bad customers has no FPR at all
  (fairlearn would count it as 0). With defaults rare, small groups often have too few bad
  customers: their per-group rates are still reported, with their counts.

The rates come from fairlearn (``MetricFrame`` with ``selection_rate``, ``true_positive_rate``,
``false_positive_rate``; ``equalized_odds_difference``).

These are screening figures for a reviewer, not legal conclusions: a flag says "look here",
not that the decisions discriminate, and the absence of a flag does not show that they do not
(differences can hide in groups too small to flag, in other variables, or in the terms offered).

:func:`reason_codes_check` screens the adverse-action reasons: every reason must name a factor
the model scores, and reasons whose factor is a protected column are listed for review.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.reporting.config import FairnessConfig, GroupSpec

logger = logging.getLogger(__name__)

MISSING_LABEL = "missing"

DECISIONS: tuple[str, ...] = ("approve", "refer", "decline")

APPROVED_DECISION = "approve"


# ------------------------------------------------------------------ group labels


def _edge_text(edge: float) -> str:
    return str(int(edge)) if float(edge).is_integer() else f"{edge:g}"


def band_labels(bands: Sequence[float]) -> list[str]:
    """The labels of the bands between consecutive edges, in order (outer bands excluded)."""
    whole = all(float(b).is_integer() for b in bands)
    labels = []
    for lo, hi in itertools.pairwise(bands):
        if whole:
            last = int(hi) - 1
            labels.append(_edge_text(lo) if last == int(lo) else f"{_edge_text(lo)}-{last}")
        else:
            labels.append(f"[{_edge_text(lo)}, {_edge_text(hi)})")
    return labels


def _label_order(spec: GroupSpec) -> list[str]:
    """Every label a banded variable can take, in reading order."""
    assert spec.bands is not None
    return [
        f"<{_edge_text(spec.bands[0])}",
        *band_labels(spec.bands),
        f">={_edge_text(spec.bands[-1])}",
        MISSING_LABEL,
    ]


def _category_text(value: Any) -> str:
    # 3.0 and 3 are the same level (a column read from CSV against one from JSON)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def group_labels(applications: pd.DataFrame, spec: GroupSpec, name: str) -> pd.Series:
    """The group of every row of ``applications`` under one group variable (index kept).

    A categorical column gives each value as text; a banded column gives the label of the band
    the value falls in (see :class:`GroupSpec`). Missing values are labelled ``"missing"``.
    Raises ValueError when the column is absent, or when a banded column is not numeric.
    """
    if spec.column not in applications.columns:
        raise ValueError(
            f"fairness group {name!r}: column {spec.column!r} is not in the applications; expected "
            f"a column of {'numbers to band' if spec.bands is not None else 'group values'} "
            f"(columns present: {sorted(map(str, applications.columns))})"
        )
    column = applications[spec.column]
    missing = column.isna().to_numpy()
    if spec.bands is None:
        values = column.to_numpy(dtype=object)
        labels = np.array(
            [MISSING_LABEL if m else _category_text(v) for v, m in zip(values, missing, strict=True)],
            dtype=object,
        )
        return pd.Series(labels, index=applications.index, name=name, dtype=object)
    try:
        numbers = (
            pd.to_numeric(column, errors="raise").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"fairness group {name!r}: column {spec.column!r} has values that are not numbers "
            f"({column.dtype}); expected a numeric column to cut into bands {spec.bands}"
        ) from exc
    order = _label_order(spec)
    # searchsorted(side="right") - 1: band i holds edges[i] <= x < edges[i + 1]; -1 is below
    # the first edge and len(edges) - 1 at or above the last, which map to the outer labels.
    position = np.searchsorted(np.asarray(spec.bands, dtype=float), numbers, side="right")
    labels = np.array(order[:-1], dtype=object)[np.clip(position, 0, len(order) - 2)]
    labels[np.isnan(numbers)] = MISSING_LABEL
    return pd.Series(labels, index=applications.index, name=name, dtype=object)


def _ordered_groups(labels: pd.Series, spec: GroupSpec) -> list[str]:
    present = set(labels.unique())
    if spec.bands is not None:
        return [label for label in _label_order(spec) if label in present]
    return sorted(present - {MISSING_LABEL}) + ([MISSING_LABEL] if MISSING_LABEL in present else [])


# ------------------------------------------------------------------ the report


def _approved(decisions: Any, n: int) -> npt.NDArray[np.int64]:
    values = pd.Series(np.asarray(decisions, dtype=object))
    if len(values) != n:
        raise ValueError(
            f"decisions: {len(values)} values for {n} applications; expected one per application"
        )
    missing = values.isna()
    if missing.any():
        raise ValueError(
            f"decisions: {int(missing.sum())} missing (first at position {int(np.argmax(missing))}); "
            f"expected one of {list(DECISIONS)} for every application"
        )
    bad = values[~values.isin(DECISIONS)]
    if len(bad):
        shown = sorted({str(v) for v in bad.unique()})[:10]
        raise ValueError(f"decisions: values {shown} (at {len(bad)} rows); expected one of {list(DECISIONS)}")
    return np.asarray(values == APPROVED_DECISION, dtype=np.int64)


def _outcomes(y_true: Any, n: int) -> npt.NDArray[np.float64]:
    series = y_true if isinstance(y_true, pd.Series) else pd.Series(np.asarray(y_true, dtype=object))
    if len(series) != n:
        raise ValueError(f"y_true: {len(series)} values for {n} applications; expected one per application")
    try:
        values = (
            pd.to_numeric(series, errors="raise").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "y_true: values that are not numbers; expected 0 (good), 1 (default) or NaN"
        ) from exc
    known = values[~np.isnan(values)]
    odd = sorted(set(known[(known != 0.0) & (known != 1.0)].tolist()))
    if odd:
        raise ValueError(f"y_true: values {odd[:10]}; expected 0 (good), 1 (default) or NaN (unlabelled)")
    return np.asarray(values, dtype=np.float64)


def _number(value: Any) -> float | None:
    """A float for JSON: None for NaN (an undefined rate)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _by_group(
    metrics: dict[str, Callable[..., Any]], y_true: Any, y_pred: Any, groups: Any
) -> dict[str, dict[str, float]]:
    """fairlearn's MetricFrame per group: {group: {metric: value}}."""
    from fairlearn.metrics import MetricFrame

    frame = MetricFrame(metrics=metrics, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    table = frame.by_group
    return {str(group): {k: float(v) for k, v in row.items()} for group, row in table.iterrows()}


def _variable_report(
    spec: GroupSpec,
    labels: pd.Series,
    approved: npt.NDArray[np.int64],
    outcome: npt.NDArray[np.float64],
    config: FairnessConfig,
) -> dict[str, Any]:
    # fairlearn only here: every stage reads the config (scoring.reporting.config), not fairlearn
    from fairlearn.metrics import (
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    groups = _ordered_groups(labels, spec)
    label_values = labels.to_numpy(dtype=object)
    rates = _by_group({"selection_rate": selection_rate}, approved, approved, label_values)
    labelled = ~np.isnan(outcome)
    # "positive" = a good customer (no default); approval is the positive prediction
    good = (outcome[labelled] == 0.0).astype(np.int64)
    approved_labelled = approved[labelled]
    labels_labelled = label_values[labelled]
    error_rates = (
        _by_group(
            {"true_positive_rate": true_positive_rate, "false_positive_rate": false_positive_rate},
            good,
            approved_labelled,
            labels_labelled,
        )
        if labelled.any()
        else {}
    )
    counts = pd.Series(label_values).value_counts()
    n_good = pd.Series(labels_labelled[good == 1]).value_counts()
    n_bad = pd.Series(labels_labelled[good == 0]).value_counts()
    n_labelled = pd.Series(labels_labelled).value_counts()

    big = [g for g in groups if int(counts[g]) >= config.min_group_size]
    reference = max(big, key=lambda g: rates[g]["selection_rate"]) if big else None
    reference_rate = rates[reference]["selection_rate"] if reference is not None else None

    rows: dict[str, dict[str, Any]] = {}
    for g in groups:
        rate = rates[g]["selection_rate"]
        air = rate / reference_rate if reference_rate else None
        size = int(counts[g])
        goods, bads = int(n_good.get(g, 0)), int(n_bad.get(g, 0))
        # fairlearn returns 0 for a rate with an empty denominator: None says "undefined"
        tpr = error_rates[g]["true_positive_rate"] if g in error_rates and goods else None
        fpr = error_rates[g]["false_positive_rate"] if g in error_rates and bads else None
        rows[g] = {
            "n": size,
            "n_approved": int(approved[label_values == g].sum()),
            "approval_rate": _number(rate),
            "air": _number(air),
            "small": size < config.min_group_size,
            "flagged": bool(air is not None and air < config.air_threshold and size >= config.min_group_size),
            "n_labelled": int(n_labelled.get(g, 0)),
            "n_good": goods,
            "n_bad": bads,
            "true_positive_rate": _number(tpr),
            "false_positive_rate": _number(fpr),
        }

    # a rate measured on a handful of customers swings between 0 and 1 by chance: the gap is
    # taken only over groups with enough good and enough bad customers for both rates
    odds_groups = [
        g
        for g in groups
        if rows[g]["n_good"] >= config.min_group_size and rows[g]["n_bad"] >= config.min_group_size
    ]
    eod: float | None = None
    if odds_groups:
        keep = np.isin(labels_labelled, odds_groups)
        eod = _number(
            equalized_odds_difference(
                good[keep], approved_labelled[keep], sensitive_features=labels_labelled[keep]
            )
        )
    return {
        "column": spec.column,
        "bands": list(spec.bands) if spec.bands is not None else None,
        "reference_group": reference,
        "reference_approval_rate": _number(reference_rate),
        "equalized_odds_difference": eod,
        "equalized_odds_groups": odds_groups,
        "groups": rows,
    }


def fairness_report(
    applications: pd.DataFrame,
    decisions: pd.Series | npt.ArrayLike,
    y_true: pd.Series | npt.ArrayLike,
    config: FairnessConfig,
) -> dict[str, Any]:
    """Approval rates, adverse impact ratios and error-rate gaps for every group variable.

    Parameters
    ----------
    applications
        The applications, with the columns the group variables read.
    decisions
        One decision per row of ``applications`` (by position): ``approve``, ``refer`` or
        ``decline``. Only ``approve`` counts as approved.
    y_true
        One outcome per row (by position): 1 default (bad), 0 no default (good), NaN (or NA)
        where the outcome is unknown; unlabelled rows count in the approval rates only.
    config
        The group variables and thresholds.

    Returns
    -------
    dict
        JSON-serialisable (undefined figures are None). Top level: the threshold and minimum
        group size, the counts, each variable's reference group (``reference_groups``), the
        flagged groups (``flagged``: variable, group, approval rate, AIR) and ``variables``:
        per variable its column, bands, reference group, equalized odds difference and
        ``groups`` (per group: n, approvals, approval rate, AIR, small, flagged, labelled /
        good / bad counts, TPR, FPR). See the module docstring for what they mean.
    """
    n = len(applications)
    if n == 0:
        raise ValueError("applications: no rows; expected the applications whose decisions are screened")
    approved = _approved(decisions, n)
    outcome = _outcomes(y_true, n)
    variables: dict[str, Any] = {}
    for name, spec in config.groups.items():
        labels = group_labels(applications, spec, name)
        variables[name] = _variable_report(spec, labels, approved, outcome, config)
    flagged = [
        {"variable": name, "group": group, "approval_rate": row["approval_rate"], "air": row["air"]}
        for name, variable in variables.items()
        for group, row in variable["groups"].items()
        if row["flagged"]
    ]
    labelled = ~np.isnan(outcome)
    logger.info(
        "fairness: %d applications (%d labelled), %d group variables, %d groups flagged at AIR < %.2f",
        n,
        int(labelled.sum()),
        len(variables),
        len(flagged),
        config.air_threshold,
    )
    return {
        "approved_decision": APPROVED_DECISION,
        "approval_definition": "only 'approve' counts as approved; 'refer' and 'decline' count as "
        "not approved",
        "positive_outcome": "good customer (no default, y_true == 0); TPR and FPR are the shares of good "
        "and of bad customers approved",
        "air_threshold": config.air_threshold,
        "min_group_size": config.min_group_size,
        "reference": config.reference,
        "n": n,
        "n_labelled": int(labelled.sum()),
        "n_approved": int(approved.sum()),
        "approval_rate": float(approved.mean()),
        "reference_groups": {name: v["reference_group"] for name, v in variables.items()},
        "flagged": flagged,
        "variables": variables,
    }


# ------------------------------------------------------------------ reason codes


def reason_codes_check(
    reason_map_features: Iterable[str],
    groups: Mapping[str, Sequence[str]],
    model_features: Iterable[str],
    protected_columns: Iterable[str],
    *,
    derived_sources: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Do the adverse-action reasons name only scored factors, and which name a protected column?

    Parameters
    ----------
    reason_map_features
        The reason map's keys (params ``reasons.reason_map``): model features or group names.
    groups
        Group name -> member features (params ``reasons.groups``).
    model_features
        The features the model scores.
    protected_columns
        Columns a reviewer treats as protected (e.g. the fairness groups' columns).
    derived_sources
        Optional: derived feature -> the columns it is computed from (so ``age_at_maturity``,
        from ``age``, counts as naming ``age``).

    Returns
    -------
    dict
        ``not_scored``: reason keys none of whose factors (the feature itself, or any member of
        its group) the model uses, sorted; ``protected``: ``{"reason", "columns"}`` for every
        reason whose factor (or a member of its group, or a source of a derived member) is a
        protected column, in reason-map order, whether scored or not; ``ok``: no reason is
        unscored. Protected reasons do not make ``ok`` false: they are listed for review.
    """
    scored = set(model_features)
    protected_set = set(protected_columns)
    sources = derived_sources or {}
    not_scored: list[str] = []
    protected: list[dict[str, Any]] = []
    for key in reason_map_features:
        members = list(groups[key]) if key in groups else [key]
        if not any(m in scored for m in members):
            not_scored.append(key)
        named = [c for m in members for c in (m, *sources.get(m, ())) if c in protected_set]
        if named:
            protected.append({"reason": key, "columns": sorted(set(named))})
    return {"ok": not not_scored, "not_scored": sorted(not_scored), "protected": protected}
