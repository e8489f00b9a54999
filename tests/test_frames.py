"""Membership and level codes for text columns (Arrow kernels), against plain Python."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.core.frames import level_codes, member_mask


def test_member_mask_matches_python_sets_for_every_input_kind() -> None:
    allowed = ["A1", "A3", "7"]
    for values in (
        pd.Series(["A1", "A2", None, "A3"], dtype="str"),
        pd.Series(["A1", "A2", None, "A3"], dtype=object),
        pd.Index(["A1", "A2", "A3", "x"]),
        np.array([7, 8]),
    ):
        expected = [
            v is not None and not (isinstance(v, float) and np.isnan(v)) and str(v) in allowed for v in values
        ]
        assert member_mask(values, allowed).tolist() == expected


def test_level_codes_give_positions_and_minus_one_for_unknown_or_missing() -> None:
    levels = ["current", "M1", "M2"]
    values = pd.Series(["M2", "M9", None, "current", "M1"], dtype="str")
    assert level_codes(values, levels).tolist() == [2, -1, -1, 0, 1]
    assert level_codes(pd.Series([True, False, None], dtype=object), ["False", "True"]).tolist() == [1, 0, -1]
    assert level_codes(pd.Series([], dtype="str"), levels).tolist() == []


def test_a_large_column_agrees_with_pandas() -> None:
    rng = np.random.default_rng(0)
    values = pd.Series(rng.choice(["a", "b", "c", "zz"], 50_000), dtype="str")
    allowed = pd.Series(["a", "c"], dtype="str")
    assert (member_mask(values, allowed) == values.isin(["a", "c"]).to_numpy()).all()
    assert (level_codes(values, ["a", "b", "c"]) == pd.Index(["a", "b", "c"]).get_indexer(values)).all()
