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

from scoring.core.contract import DECLINED, DatasetSpec
from scoring.data.config import SplitConfig

logger = logging.getLogger(__name__)

PARTS = ("train", "valid", "test", "oot", "unlabelled", "excluded")
LABELLED_PARTS = ("train", "valid", "test", "oot")


@dataclass
class SplitResult:
    parts: dict[str, pd.DataFrame]
    summary: dict[str, Any] = field(default_factory=dict)


def uniform_from_keys(keys: pd.Series, seed: int) -> np.ndarray:
    """Deterministic U[0, 1) per key, from a seeded 64-bit hash of the key's text.

    The same key and seed always give the same draw, whatever the row order or the other rows
    present. The split draws its parts with it (``seed`` and ``seed + 1``); the fit sample
    (:mod:`scoring.data.sampling`, :mod:`scoring.models.training_dask`) draws with an offset seed,
    so that which keys are sampled does not line up with which went to valid or test.
    """
    hash_key = f"{seed:016d}"[-16:]
    hashed = pd.util.hash_pandas_object(keys.astype(str), index=False, hash_key=hash_key)
    return hashed.to_numpy(dtype=np.uint64) / np.float64(2**64)


def calendar_month_index(dates: pd.Series) -> pd.Series:
    """Each date's month as ``year * 12 + month - 1``: the month index of the out-of-time cutoff
    (:func:`oot_cutoff_month`, :func:`month_text`), shared with :mod:`scoring.data.split_dask`.

    Absolute, unlike :func:`scoring.data.synthetic.month_index` (months since the synthetic start).
    """
    d = pd.to_datetime(dates)
    return d.dt.year * 12 + d.dt.month - 1


def oot_cutoff_month(labelled_months_min: int, labelled_months_max: int, config: SplitConfig) -> int:
    """The first out-of-time month index (year * 12 + month - 1), from the labelled months' range."""
    cutoff = labelled_months_max - config.oot_months + 1
    if cutoff <= labelled_months_min:
        raise ValueError(
            f"split.oot_months={config.oot_months} covers every labelled month; "
            "expected fewer out-of-time months than the labelled history holds"
        )
    return cutoff


def month_text(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def uses_dates(spec: DatasetSpec, config: SplitConfig) -> bool:
    return spec.date_column is not None and config.oot_months > 0


@dataclass(frozen=True)
class PartRule:
    """What the row-by-row assignment needs from the whole data: the out-of-time cut-off month
    (with dates) and the customers seen both in development and out of time."""

    cutoff: int | None
    straddling_customers: frozenset[str] = frozenset()


def out_of_time(
    frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int, rule: PartRule
) -> np.ndarray:
    """Labelled rows that are out of time (before the straddling customers are set aside)."""
    labelled = frame[spec.target_column].notna().to_numpy()
    if rule.cutoff is not None and spec.date_column is not None:
        return np.asarray(
            labelled & (calendar_month_index(frame[spec.date_column]).to_numpy() >= rule.cutoff)
        )
    group_col = spec.customer_column or spec.id_column
    if config.oot_fraction_without_date > 0 and not uses_dates(spec, config):
        return np.asarray(
            labelled & (uniform_from_keys(frame[group_col], seed + 1) < config.oot_fraction_without_date)
        )
    return np.zeros(len(frame), dtype=bool)


def assign_parts(
    frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int, rule: PartRule
) -> np.ndarray:
    """The part of every row (rules 1-4 of the module docstring), row by row given ``rule``: the
    same for the whole frame at once or for each of its partitions."""
    n_input = len(frame)
    labelled = frame[spec.target_column].notna().to_numpy()
    groups = frame[spec.customer_column or spec.id_column]
    part = np.full(n_input, "", dtype=object)
    part[~labelled] = "unlabelled"
    oot = out_of_time(frame, spec, config, seed, rule)
    development = labelled & ~oot
    if spec.customer_column is not None and rule.straddling_customers:
        straddling = oot & groups.astype(str).isin(rule.straddling_customers).to_numpy()
    else:
        straddling = np.zeros(n_input, dtype=bool)
    part[oot & ~straddling] = "oot"
    part[straddling] = "excluded"
    u = uniform_from_keys(groups, seed)
    valid_cut = config.valid_fraction
    test_cut = config.valid_fraction + config.test_fraction
    part[development & (u < valid_cut)] = "valid"
    part[development & (u >= valid_cut) & (u < test_cut)] = "test"
    part[development & (u >= test_cut)] = "train"
    return part


def part_rule(frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int) -> PartRule:
    """:class:`PartRule` from a whole frame (the pandas engine)."""
    labelled = frame[spec.target_column].notna().to_numpy()
    cutoff = None
    if uses_dates(spec, config) and labelled.any():
        assert spec.date_column is not None
        months = calendar_month_index(frame[spec.date_column]).to_numpy()[labelled]
        cutoff = oot_cutoff_month(int(months.min()), int(months.max()), config)
    rule = PartRule(cutoff)
    if spec.customer_column is None:
        return rule
    oot = out_of_time(frame, spec, config, seed, rule)
    groups = frame[spec.customer_column].astype(str)
    development = labelled & ~oot
    oot_customers = set(groups[oot].unique())
    straddling = groups[development & groups.isin(oot_customers).to_numpy()].unique()
    return PartRule(cutoff, frozenset(straddling))


def part_summary(name: str, df: pd.DataFrame, spec: DatasetSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"n": len(df)}
    if name in LABELLED_PARTS and len(df):
        entry["default_rate"] = float(pd.to_numeric(df[spec.target_column]).mean())
    if spec.date_column is not None and len(df):
        dates = pd.to_datetime(df[spec.date_column])
        entry["first_date"] = dates.min().date().isoformat()
        entry["last_date"] = dates.max().date().isoformat()
    return entry


def check_counts(counts: dict[str, int], n_input: int) -> None:
    if sum(counts.values()) != n_input:
        raise AssertionError(f"split lost rows: {counts} from {n_input} input rows")
    for name in ("train", "valid"):
        if counts[name] == 0:
            raise ValueError(f"split '{name}' is empty: the data has too few labelled rows for the fractions")


def split_applications(frame: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int) -> SplitResult:
    """Split validated applications into train/valid/test/oot/unlabelled/excluded."""
    n_input = len(frame)
    rule = part_rule(frame, spec, config, seed)
    part = assign_parts(frame, spec, config, seed, rule)
    parts = {
        name: frame.loc[part == name].sort_values(spec.id_column, kind="stable").reset_index(drop=True)
        for name in PARTS
    }
    counts = {name: len(df) for name, df in parts.items()}
    if (part == "").any():
        raise AssertionError(f"split left rows without a part: {counts} from {n_input} input rows")
    check_counts(counts, n_input)
    summary: dict[str, Any] = {
        "n_input": n_input,
        "oot_from_month": None if rule.cutoff is None else month_text(rule.cutoff),
        "parts": {name: part_summary(name, df, spec) for name, df in parts.items()},
    }
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


def development_rejects(
    unlabelled: pd.DataFrame, spec: DatasetSpec, config: SplitConfig, seed: int, last_development_date: Any
) -> dict[str, pd.DataFrame]:
    """The declined applications of the development period, each where rule 4 would put it.

    Which rows were declined: with a decision column (:attr:`DatasetSpec.decision_column`, a
    file that declares the lender's decisions) those it marks :data:`DECLINED`; without one (the
    synthetic portfolio), every row without an outcome is taken for a declined application.
    With a date column only those dated inside the development period (up to
    ``last_development_date``, the last date of the labelled development parts) count:
    applications too recent to have matured come later. The same seeded hash of its customer as
    rule 4 sends each to ``train``, ``valid`` or ``test``, so the train stage uses the training
    period's rejects and evaluation the test period's.
    """
    declined = unlabelled
    if spec.decision_column is not None:
        declined = declined.loc[(declined[spec.decision_column] == DECLINED).to_numpy()]
    elif spec.date_column is None:
        raise ValueError(
            "reject inference: without a decision column the declined applications are the unlabelled "
            "rows of the development period, which needs a date column; declare data.file.decision_column "
            "(or data.file.rejects_path), or data.file.date_column"
        )
    if spec.date_column is not None and last_development_date is not None:
        dates = pd.to_datetime(declined[spec.date_column])
        declined = declined.loc[(dates <= pd.Timestamp(last_development_date)).to_numpy()]
    u = uniform_from_keys(declined[spec.customer_column or spec.id_column], seed)
    valid_cut = config.valid_fraction
    test_cut = config.valid_fraction + config.test_fraction
    where = np.where(u < valid_cut, "valid", np.where(u < test_cut, "test", "train"))
    return {
        name: declined.loc[where == name].sort_values(spec.id_column, kind="stable").reset_index(drop=True)
        for name in ("train", "valid", "test")
    }
