"""Vectorised membership and level codes for text columns.

pandas 3's ``isin`` and ``Index.get_indexer`` on its Arrow-backed strings build a Python object
per value when given about a million values (7 s for 891k loan ids against 1M application ids
here); Arrow's own kernels do the same in a fraction of a second (benchmarks/bench_monitoring.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def _arrow_text(values: Iterable[object]) -> pa.Array:
    """Values as an Arrow string array; missing stays missing, anything else becomes its text."""
    if isinstance(values, pd.Index | pd.Series):
        series = pd.Series(values, copy=False)
    else:
        series = pd.Series(list(values) if not isinstance(values, np.ndarray) else values)
    if not (pd.api.types.is_string_dtype(series.dtype) and series.dtype != object):
        series = series.map(lambda v: v if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        series = series.astype("str")
    try:  # Arrow-backed text hands over its buffers without a Python object per value
        return pa.array(series.array).cast(pa.string())
    except (TypeError, pa.ArrowInvalid):
        cells = [None if pd.isna(v) else v for v in series.to_numpy(dtype=object)]
        return pa.array(cells, type=pa.string())


def member_mask(values: Iterable[object], allowed: Iterable[object]) -> np.ndarray:
    """True where a value is one of ``allowed`` (compared as text); missing values are False."""
    result = pc.is_in(_arrow_text(values), value_set=_arrow_text(allowed), skip_nulls=True)
    return np.asarray(result.to_numpy(zero_copy_only=False), dtype=bool)


def level_codes(values: Iterable[object], levels: Sequence[str]) -> np.ndarray:
    """Position of each value in ``levels``, -1 where it is not one of them or is missing."""
    codes = pc.index_in(_arrow_text(values), value_set=pa.array(list(levels), type=pa.string()))
    return np.asarray(codes.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
