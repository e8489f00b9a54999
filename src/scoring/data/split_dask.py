"""The split on the dask engine: the same parts as :func:`scoring.data.split.split_applications`.

The rules need two facts about the whole data: the last labelled month (for the out-of-time
cut-off) and the customers seen both in development and out of time (set aside as
``excluded``). Both are computed on the cluster first (the second from the out-of-time
customers, a few months' worth); then every partition is assigned row by row with
:func:`scoring.data.split.assign_parts`, the pandas engine's own function, and each part keeps
the input's partitions, sorted by id within each. With partitions in id order (the prepared
synthetic data) the parts are the pandas engine's row for row; otherwise the same rows.

The customers-on-one-side check of the pandas engine is not repeated here (it would shuffle
every customer id across the cluster): it holds by construction, as the assignment is a seeded
hash of the customer and out-of-time customers seen in development are excluded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.data.config import SplitConfig
from scoring.data.split import (
    LABELLED_PARTS,
    PARTS,
    PartRule,
    assign_parts,
    calendar_month_index,
    check_counts,
    month_text,
    oot_cutoff_month,
    out_of_time,
    uses_dates,
)

if TYPE_CHECKING:
    import dask.dataframe as dd

logger = logging.getLogger(__name__)

PART_COLUMN = "__part__"


@dataclass
class DaskSplit:
    """Each part as a Dask DataFrame (lazy) and the summary (computed)."""

    parts: dict[str, dd.DataFrame]
    summary: dict[str, Any]


def _labelled_month_range(frame: pd.DataFrame, target: str, date_column: str) -> pd.DataFrame:
    months = calendar_month_index(frame[date_column])[frame[target].notna()]
    return pd.DataFrame({"lo": [months.min()], "hi": [months.max()], "n": [len(months)]})


def _straddling(
    frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int, rule: PartRule, want: str
) -> pd.Series:
    """Customers of the partition's out-of-time rows (``want="oot"``), or those of its development
    rows (``want="development"``)."""
    assert spec.customer_column is not None
    labelled = frame[spec.target_column].notna().to_numpy()
    oot = out_of_time(frame, spec, config, seed, rule)
    mask = oot if want == "oot" else labelled & ~oot
    return pd.Series(frame[spec.customer_column].astype(str)[mask].unique(), dtype=object)


def part_rule_dask(frame: dd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int) -> PartRule:
    """:class:`scoring.data.split.PartRule` computed on the cluster."""
    from dask.base import compute

    cutoff = None
    if uses_dates(spec, config):
        assert spec.date_column is not None
        ranges = frame.map_partitions(
            _labelled_month_range,
            spec.target_column,
            spec.date_column,
            meta={"lo": "float64", "hi": "float64", "n": "int64"},
        ).compute()
        ranges = ranges[ranges["n"] > 0]
        if len(ranges):
            cutoff = oot_cutoff_month(int(ranges["lo"].min()), int(ranges["hi"].max()), config)
    rule = PartRule(cutoff)
    if spec.customer_column is None:
        return rule
    meta = pd.Series(dtype=object)
    oot_customers = set(
        frame.map_partitions(_straddling, spec, config, seed, rule, "oot", meta=meta).compute().unique()
    )
    if not oot_customers:
        return rule
    development = frame.map_partitions(_straddling, spec, config, seed, rule, "development", meta=meta)
    (seen,) = compute(development[development.isin(oot_customers)].unique())
    return PartRule(cutoff, frozenset(str(c) for c in seen))


def _with_parts(
    frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int, rule: PartRule
) -> pd.DataFrame:
    return frame.assign(**{PART_COLUMN: assign_parts(frame, spec, config, seed, rule)})


def _select(frame: pd.DataFrame, name: str, id_column: str) -> pd.DataFrame:
    part = frame.loc[frame[PART_COLUMN] == name].drop(columns=[PART_COLUMN])
    return part.sort_values(id_column, kind="stable").reset_index(drop=True)


def _part_stats(frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """Per part of one partition: rows, labelled target sum and count, first and last date."""
    rows = []
    for name in PARTS:
        rows_of = frame[frame[PART_COLUMN] == name]
        target = pd.to_numeric(rows_of[spec.target_column])
        dates = pd.to_datetime(rows_of[spec.date_column]) if spec.date_column is not None else None
        rows.append(
            {
                "part": name,
                "n": len(rows_of),
                "target_sum": float(target.sum()),
                "target_n": int(target.notna().sum()),
                "first": dates.min() if dates is not None and len(rows_of) else pd.NaT,
                "last": dates.max() if dates is not None and len(rows_of) else pd.NaT,
            }
        )
    return pd.DataFrame(rows)


def split_applications_dask(
    frame: dd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int
) -> DaskSplit:
    """Split on the cluster: the parts (lazy, to be written) and the pandas engine's summary.

    The default rate of a part is its target sum over its labelled rows added up across
    partitions, so it can differ from the pandas engine's mean in the last bits of a float.
    """
    rule = part_rule_dask(frame, spec, config, seed)
    meta_frame = frame._meta.assign(**{PART_COLUMN: pd.Series(dtype=object)})
    with_parts = frame.map_partitions(_with_parts, spec, config, seed, rule, meta=meta_frame)
    stats_meta = {
        "part": object,
        "n": "int64",
        "target_sum": "float64",
        "target_n": "int64",
        "first": "datetime64[ns]",
        "last": "datetime64[ns]",
    }
    stats = with_parts.map_partitions(_part_stats, spec, meta=stats_meta).compute()
    totals = stats.groupby("part", sort=False).agg(
        n=("n", "sum"),
        target_sum=("target_sum", "sum"),
        target_n=("target_n", "sum"),
        first=("first", "min"),
        last=("last", "max"),
    )
    counts = {name: int(totals.loc[name, "n"]) for name in PARTS}
    n_input = int(stats["n"].sum())
    check_counts(counts, n_input)
    summary: dict[str, Any] = {
        "n_input": n_input,
        "oot_from_month": None if rule.cutoff is None else month_text(rule.cutoff),
        "parts": {},
    }
    for name in PARTS:
        row = totals.loc[name]
        entry: dict[str, Any] = {"n": counts[name]}
        if name in LABELLED_PARTS and counts[name]:
            entry["default_rate"] = (
                float(row["target_sum"] / row["target_n"]) if row["target_n"] else float(np.nan)
            )
        if spec.date_column is not None and counts[name]:
            entry["first_date"] = pd.Timestamp(row["first"]).date().isoformat()
            entry["last_date"] = pd.Timestamp(row["last"]).date().isoformat()
        summary["parts"][name] = entry
    meta_part = frame._meta
    parts = {name: with_parts.map_partitions(_select, name, spec.id_column, meta=meta_part) for name in PARTS}
    logger.info("split on dask: %s", counts)
    return DaskSplit(parts=parts, summary=summary)
