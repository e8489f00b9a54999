"""Out-of-time and random splits that keep each customer on one side.

Rules, in order:
1. Rows without an outcome (null target) are kept aside as ``unlabelled``.
2. With a date column, the latest ``oot_months`` labelled months are out-of-time (``oot``);
   everything before is the development period.
3. A customer seen in the development period cannot also be in ``oot``: such rows are
   set aside as ``excluded`` (reason ``customer_in_development``), so out-of-time stays
   strictly unseen both in time and in people.
4. The development period is split into train / valid / test by customer (by application
   when there is no customer column), through a seeded hash of the key, so a customer's
   side does not depend on row order or on which other rows are present.
Every input row ends up in exactly one part; :func:`split_applications` checks it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.data.config import SplitConfig

logger = logging.getLogger(__name__)

PARTS = ("train", "valid", "test", "oot", "unlabelled", "excluded")
LABELLED_PARTS = ("train", "valid", "test", "oot")


@dataclass
class SplitResult:
    parts: dict[str, pd.DataFrame]
    summary: dict[str, Any] = field(default_factory=dict)


def _uniform_from_keys(keys: pd.Series, seed: int) -> np.ndarray:
    """Deterministic U[0, 1) per key, from a seeded 64-bit hash."""
    hash_key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False, hash_key=hash_key)
    return hashed.to_numpy(dtype=np.uint64) / np.float64(2**64)


def _month_index(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates)
    return d.dt.year * 12 + d.dt.month - 1


def split_applications(frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int) -> SplitResult:
    """Split validated applications into train/valid/test/oot/unlabelled/excluded."""
    n_input = len(frame)
    target = frame[spec.target_column]
    labelled = target.notna().to_numpy()
    group_col = spec.customer_column or spec.id_column
    groups = frame[group_col]

    part = np.full(n_input, "", dtype=object)
    part[~labelled] = "unlabelled"

    oot = np.zeros(n_input, dtype=bool)
    oot_cutoff: str | None = None
    if spec.date_column is not None and config.oot_months > 0 and labelled.any():
        months = _month_index(frame[spec.date_column]).to_numpy()
        last = months[labelled].max()
        cutoff = last - config.oot_months + 1
        if cutoff <= months[labelled].min():
            raise ValueError(
                f"split.oot_months={config.oot_months} covers every labelled month; "
                "expected fewer out-of-time months than the labelled history holds"
            )
        oot = labelled & (months >= cutoff)
        oot_cutoff = f"{cutoff // 12:04d}-{cutoff % 12 + 1:02d}"
    elif config.oot_fraction_without_date > 0:
        oot = labelled & (_uniform_from_keys(groups, seed + 1) < config.oot_fraction_without_date)

    development = labelled & ~oot
    if spec.customer_column is not None:
        dev_customers = pd.Index(groups[development].unique())
        straddling = oot & groups.isin(dev_customers).to_numpy()
    else:
        straddling = np.zeros(n_input, dtype=bool)
    part[oot & ~straddling] = "oot"
    part[straddling] = "excluded"

    u = _uniform_from_keys(groups, seed)
    valid_cut = config.valid_fraction
    test_cut = config.valid_fraction + config.test_fraction
    part[development & (u < valid_cut)] = "valid"
    part[development & (u >= valid_cut) & (u < test_cut)] = "test"
    part[development & (u >= test_cut)] = "train"

    parts = {
        name: frame.loc[part == name].sort_values(spec.id_column, kind="stable").reset_index(drop=True)
        for name in PARTS
    }
    counts = {name: len(df) for name, df in parts.items()}
    if sum(counts.values()) != n_input or (part == "").any():
        raise AssertionError(f"split lost rows: {counts} from {n_input} input rows")
    for name in ("train", "valid"):
        if counts[name] == 0:
            raise ValueError(f"split '{name}' is empty: the data has too few labelled rows for the fractions")

    summary: dict[str, Any] = {"n_input": n_input, "oot_from_month": oot_cutoff, "parts": {}}
    for name, df in parts.items():
        entry: dict[str, Any] = {"n": len(df)}
        if name in LABELLED_PARTS and len(df):
            entry["default_rate"] = float(pd.to_numeric(df[spec.target_column]).mean())
        if spec.date_column is not None and len(df):
            dates = pd.to_datetime(df[spec.date_column])
            entry["first_date"] = dates.min().date().isoformat()
            entry["last_date"] = dates.max().date().isoformat()
        summary["parts"][name] = entry
    if spec.customer_column is not None:
        _check_customers_disjoint(parts, spec.customer_column)
    logger.info("split: %s", counts)
    return SplitResult(parts=parts, summary=summary)


def _check_customers_disjoint(parts: dict[str, pd.DataFrame], customer_column: str) -> None:
    seen: dict[str, str] = {}
    for name in LABELLED_PARTS:
        for customer in parts[name][customer_column].unique():
            other = seen.setdefault(str(customer), name)
            if other != name:
                raise AssertionError(f"customer {customer} is in both '{other}' and '{name}'")
