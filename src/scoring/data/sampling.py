"""The fit sample: the rows a step that fits in one process reads when the data is larger.

Some steps fit on one machine whatever the engine: the feature transformer's levels and
profiles, the tuning trials, the scorecard's binning, explanations. Past ``sample_rows`` rows
they read a seeded sample: every customer (or application, without a customer column) is in or
out as a whole, by a seeded hash of its key against the rate ``sample_rows / rows``. The rate is
the same for every class, so the default rate is kept (in expectation), and the sample depends
on neither the row order nor the partitioning, so both engines read the same rows. Up to
``sample_rows`` rows, every row is read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scoring.core.contract import DatasetSpec
from scoring.data.split import uniform_from_keys

if TYPE_CHECKING:
    import dask.dataframe as dd

logger = logging.getLogger(__name__)

# Offsets the seed of the sample's hash from the split's (seed and seed + 1), so that which
# customers are sampled does not line up with which went to valid or test.
SAMPLE_SEED_OFFSET = 7


def sample_rate(n_rows: int, max_rows: int | None) -> float:
    """The share of keys kept: 1 up to ``max_rows`` rows (or with no cap)."""
    if max_rows is None or n_rows <= max_rows:
        return 1.0
    return max_rows / n_rows


def sample_key(spec: DatasetSpec) -> str:
    return spec.customer_column or spec.id_column


def in_sample(frame: pd.DataFrame, key_column: str, rate: float, seed: int) -> np.ndarray:
    """Rows whose key's seeded hash falls below ``rate`` (every row when ``rate`` >= 1)."""
    if rate >= 1.0:
        return np.ones(len(frame), dtype=bool)
    return np.asarray(uniform_from_keys(frame[key_column], seed + SAMPLE_SEED_OFFSET) < rate)


def _sampled(frame: pd.DataFrame, key_column: str, rate: float, seed: int) -> pd.DataFrame:
    return frame.loc[in_sample(frame, key_column, rate, seed)]


def fit_sample(frame: pd.DataFrame, spec: DatasetSpec, max_rows: int | None, seed: int) -> pd.DataFrame:
    """The fit sample of a pandas frame, in its row order (the frame itself when small enough)."""
    rate = sample_rate(len(frame), max_rows)
    if rate >= 1.0:
        return frame
    sample = _sampled(frame, sample_key(spec), rate, seed).reset_index(drop=True)
    logger.info("fit sample: %d of %d rows (sample_rows %s)", len(sample), len(frame), max_rows)
    return sample


def fit_sample_dask(
    frame: dd.DataFrame, spec: DatasetSpec, max_rows: int | None, seed: int, n_rows: int
) -> pd.DataFrame:
    """The fit sample of a Dask DataFrame of ``n_rows`` rows, filtered on the cluster and
    collected here: the same rows, in the same order, as :func:`fit_sample` on the whole frame."""
    rate = sample_rate(n_rows, max_rows)
    if rate < 1.0:
        frame = frame.map_partitions(_sampled, sample_key(spec), rate, seed, meta=frame._meta)
    sample: pd.DataFrame = frame.compute().reset_index(drop=True)
    if rate < 1.0:
        logger.info("fit sample on dask: %d of %d rows (sample_rows %s)", len(sample), n_rows, max_rows)
    return sample
