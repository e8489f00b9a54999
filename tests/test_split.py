"""Splits: every row in one part, out-of-time by date, customers on one side, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import DatasetSpec
from scoring.data.config import SplitConfig
from scoring.data.split import LABELLED_PARTS, PARTS, split_applications

SPEC = DatasetSpec(
    id_column="application_id",
    target_column="default_12m",
    date_column="application_date",
    customer_column="customer_id",
)


def portfolio(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = rng.integers(0, 36, n)
    dates = pd.to_datetime("2020-01-01") + pd.to_timedelta(months * 30 + 1, unit="D")
    customers = rng.integers(0, int(n * 0.8), n)  # about a fifth of customers apply twice or more
    target = pd.array(rng.integers(0, 2, n), dtype="Int64")
    target[months >= 30] = pd.NA  # the last months are immature
    return pd.DataFrame(
        {
            "application_id": [f"A{i:06d}" for i in range(n)],
            "customer_id": [f"C{c:06d}" for c in customers],
            "application_date": dates,
            "x": rng.normal(size=n),
            "default_12m": target,
        }
    )


def test_every_row_lands_in_exactly_one_part() -> None:
    frame = portfolio()
    result = split_applications(frame, SPEC, SplitConfig(oot_months=6), seed=1)
    ids = pd.concat([result.parts[p]["application_id"] for p in PARTS])
    assert len(ids) == len(frame)
    assert set(ids) == set(frame["application_id"])
    assert result.summary["n_input"] == sum(v["n"] for v in result.summary["parts"].values())


def test_unlabelled_rows_are_kept_aside() -> None:
    frame = portfolio()
    parts = split_applications(frame, SPEC, SplitConfig(), seed=1).parts
    assert parts["unlabelled"]["default_12m"].isna().all()
    assert len(parts["unlabelled"]) == int(frame["default_12m"].isna().sum())
    for name in LABELLED_PARTS:
        assert parts[name]["default_12m"].notna().all()


def test_out_of_time_is_the_latest_labelled_months() -> None:
    parts = split_applications(portfolio(), SPEC, SplitConfig(oot_months=6), seed=1).parts
    oot_start = parts["oot"]["application_date"].min()
    for name in ("train", "valid", "test"):
        assert parts[name]["application_date"].max() < oot_start
    labelled_months = parts["oot"]["application_date"].dt.to_period("M").nunique()
    assert labelled_months == 6


def test_customers_never_straddle_parts_and_straddlers_are_counted() -> None:
    parts = split_applications(portfolio(), SPEC, SplitConfig(oot_months=6), seed=1).parts
    owners: dict[str, str] = {}
    for name in LABELLED_PARTS:
        for customer in parts[name]["customer_id"]:
            assert owners.setdefault(customer, name) == name
    dev_customers = set(pd.concat([parts[p]["customer_id"] for p in ("train", "valid", "test")]))
    assert len(parts["excluded"]) > 0
    assert set(parts["excluded"]["customer_id"]) <= dev_customers


def test_fractions_are_respected_roughly() -> None:
    parts = split_applications(
        portfolio(20_000), SPEC, SplitConfig(valid_fraction=0.2, test_fraction=0.1), seed=3
    ).parts
    dev = sum(len(parts[p]) for p in ("train", "valid", "test"))
    assert len(parts["valid"]) / dev == pytest.approx(0.2, abs=0.03)
    assert len(parts["test"]) / dev == pytest.approx(0.1, abs=0.03)


def test_same_seed_same_split_other_seed_other_split() -> None:
    frame = portfolio()
    a = split_applications(frame, SPEC, SplitConfig(), seed=7).parts
    b = split_applications(frame.sample(frac=1.0, random_state=5), SPEC, SplitConfig(), seed=7).parts
    c = split_applications(frame, SPEC, SplitConfig(), seed=8).parts
    for name in PARTS:
        pd.testing.assert_frame_equal(a[name], b[name])
    assert set(a["train"]["application_id"]) != set(c["train"]["application_id"])


def test_without_date_there_is_no_oot_unless_asked() -> None:
    frame = portfolio().drop(columns="application_date")
    spec = DatasetSpec(id_column="application_id", target_column="default_12m")
    parts = split_applications(frame, spec, SplitConfig(), seed=1).parts
    assert len(parts["oot"]) == 0 and len(parts["excluded"]) == 0
    parts = split_applications(frame, spec, SplitConfig(oot_fraction_without_date=0.2), seed=1).parts
    labelled = int(frame["default_12m"].notna().sum())
    assert len(parts["oot"]) / labelled == pytest.approx(0.2, abs=0.04)


def test_oot_covering_all_history_is_refused() -> None:
    with pytest.raises(ValueError, match="oot_months=40 covers every labelled month"):
        split_applications(portfolio(), SPEC, SplitConfig(oot_months=40), seed=1)
