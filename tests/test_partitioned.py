"""The partitioned layout between stages (issue 17): dataset folders written atomically and read
back in order, the synthetic portfolio drawn block by block (the same rows however many blocks
are generated, or who generates them), and the fit sample, the same on both engines."""

from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from scoring.config import load_params
from scoring.core.cluster import keep_pandas_types
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import (
    DataReadError,
    parquet_parts,
    parquet_rows,
    path_sha256,
    read_parquet,
    read_table,
    write_dataset,
    write_parquet,
)
from scoring.core.partitioned import read_dask, write_dask, write_parts
from scoring.data.performance import generate_performance, portfolio_history
from scoring.data.prepare import write_synthetic_portfolio
from scoring.data.sampling import fit_sample, fit_sample_dask
from scoring.data.synthetic import generate_block, generate_portfolio, portfolio_blocks

keep_pandas_types()  # as the engine does: Dask keeps pandas' column types
PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
SEED = 11


def _config(n: int, block: int = 1_000):
    return PARAMS.data.synthetic.model_copy(update={"n_applications": n, "block_rows": block})


def test_a_dataset_folder_reads_back_as_its_parts_in_order(tmp_path: Path) -> None:
    frames = [pd.DataFrame({"a": np.arange(k * 10, k * 10 + 10), "b": list("xyzxyzxyzx")}) for k in range(12)]
    path = tmp_path / "table.parquet"
    assert write_dataset(path, frames) == 120
    assert [p.name for p in parquet_parts(path)][:3] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert len(parquet_parts(path)) == 12  # part-00010 sorts after part-00009
    back = read_parquet(path)
    pd.testing.assert_frame_equal(back, pd.concat(frames, ignore_index=True))
    assert parquet_rows(path) == 120
    pd.testing.assert_frame_equal(read_table(path), back)
    with dask.config.set(scheduler="synchronous"):
        lazy = read_dask(path)
        assert lazy.npartitions == 12
        pd.testing.assert_frame_equal(lazy.compute().reset_index(drop=True), back)


def test_a_folder_replaces_a_file_and_a_failed_write_keeps_the_old_output(tmp_path: Path) -> None:
    path = tmp_path / "table.parquet"
    write_parquet(path, pd.DataFrame({"a": [1, 2]}))  # the old single-file layout
    old_digest = path_sha256(path)
    write_dataset(path, pd.DataFrame({"a": [3]}))
    assert path.is_dir() and read_parquet(path)["a"].tolist() == [3]
    assert path_sha256(path) != old_digest

    def failing(number: int, targets):
        if number == 1:
            raise RuntimeError("worker lost")
        return write_dataset  # never reached for the swap

    write_parquet(path, pd.DataFrame({"a": [4]}))  # and a file replaces a folder
    assert path.is_file() and read_parquet(path)["a"].tolist() == [4]
    write_dataset(path, pd.DataFrame({"a": [3]}))
    with pytest.raises(RuntimeError, match="worker lost"):
        write_parts({"out": path}, failing, 3, parallel=False)
    assert read_parquet(path)["a"].tolist() == [3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.parquet"]  # no staging left behind


def test_a_folder_without_parts_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "empty.parquet").mkdir()
    with pytest.raises(DataReadError, match=r"empty\.parquet: no part-\*\.parquet"):
        read_parquet(tmp_path / "empty.parquet")
    with pytest.raises(DataReadError, match="not found"):
        read_parquet(tmp_path / "missing.parquet")


def test_write_dask_writes_one_part_per_partition(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": np.arange(50), "b": np.arange(50) * 0.5})
    with dask.config.set(scheduler="synchronous"):
        rows = write_dask(dd.from_pandas(frame, npartitions=4), tmp_path / "t.parquet")
    assert sum(rows) == 50 and len(rows) == len(parquet_parts(tmp_path / "t.parquet"))
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "t.parquet"), frame)


def test_blocks_do_not_depend_on_how_many_there_are() -> None:
    small, large = _config(2_000), _config(3_500)
    assert portfolio_blocks(large) == [(0, 1_000), (1_000, 1_000), (2_000, 1_000), (3_000, 500)]
    apps_small, truth_small = generate_portfolio(small, SEED)
    apps_large, truth_large = generate_portfolio(large, SEED)
    pd.testing.assert_frame_equal(apps_small, apps_large.iloc[:2_000])
    pd.testing.assert_frame_equal(truth_small, truth_large.iloc[:2_000])
    assert apps_large["application_id"].is_unique
    # customers are numbered after their block's first row: unique across blocks
    firsts = apps_large.groupby("customer_id")["application_id"].min()
    assert (apps_large.groupby("customer_id").size() > 1).any()
    block_of = (apps_large.set_index("application_id").index.str[1:].astype(int) - 1) // 1_000
    assert apps_large.assign(block=block_of).groupby("customer_id")["block"].nunique().max() == 1
    assert len(firsts) == apps_large["customer_id"].nunique()
    # block 0 alone is the single-stream portfolio (the embedded default is one block)
    one_block, _ = generate_portfolio(_config(1_000, block=1_000), SEED)
    pd.testing.assert_frame_equal(one_block, generate_block(large, SEED, 0)[0])
    other_seed, _ = generate_portfolio(small, SEED + 1)
    assert not other_seed["monthly_income"].equals(apps_small["monthly_income"])


def test_the_history_is_drawn_block_by_block() -> None:
    config = _config(2_500)
    apps, truth = generate_portfolio(config, SEED)
    history = portfolio_history(apps, truth, config, SEED)
    second = generate_performance(apps.iloc[1_000:2_000], truth.iloc[1_000:2_000], config, SEED, block=1)
    ids = set(apps["application_id"].iloc[1_000:2_000])
    pd.testing.assert_frame_equal(
        history[history["loan_id"].isin(ids)].reset_index(drop=True),
        second.reset_index(drop=True),
    )
    with pytest.raises(ValueError, match="generation order"):
        portfolio_history(apps.iloc[:10], truth.iloc[:10], config, SEED)


def test_the_portfolio_written_in_parallel_equals_the_sequential_one(tmp_path: Path) -> None:
    config = _config(3_000)
    names = ("applications", "truth", "performance")
    sequential = {n: tmp_path / "seq" / n for n in names}
    threaded = {n: tmp_path / "par" / n for n in names}
    counts = write_synthetic_portfolio(config, SEED, sequential, parallel=False)
    with dask.config.set(scheduler="threads"):
        write_synthetic_portfolio(config, SEED, threaded, parallel=True)
    assert counts.applications == 3_000 and counts.parts == 3 and counts.performance > 3_000
    for name in names:
        for left, right in zip(parquet_parts(sequential[name]), parquet_parts(threaded[name]), strict=True):
            assert left.read_bytes() == right.read_bytes()
    apps, _ = generate_portfolio(config, SEED)
    assert (
        read_parquet(sequential["applications"])["application_id"].tolist() == apps["application_id"].tolist()
    )


def test_the_fit_sample_keeps_customers_whole_and_is_the_same_on_dask() -> None:
    apps, _ = generate_portfolio(_config(20_000, block=5_000), SEED)
    labelled = apps[apps["default_12m"].notna()].reset_index(drop=True)
    assert fit_sample(labelled, SYNTHETIC_SPEC, None, SEED) is labelled
    assert fit_sample(labelled, SYNTHETIC_SPEC, len(labelled), SEED) is labelled
    sample = fit_sample(labelled, SYNTHETIC_SPEC, 5_000, SEED)
    assert 4_000 < len(sample) < 6_000
    assert abs(sample["default_12m"].mean() - labelled["default_12m"].mean()) < 0.02
    chosen = set(sample["customer_id"])
    assert labelled[labelled["customer_id"].isin(chosen)].shape[0] == len(sample)  # whole customers
    assert sample["application_id"].is_monotonic_increasing  # the input's row order
    with dask.config.set(scheduler="synchronous"):
        for npartitions in (1, 7):
            lazy = dd.from_pandas(labelled, npartitions=npartitions, sort=False)
            got = fit_sample_dask(lazy, SYNTHETIC_SPEC, 5_000, SEED, len(labelled))
            pd.testing.assert_frame_equal(got, sample)
    assert not fit_sample(labelled, SYNTHETIC_SPEC, 5_000, SEED + 1).equals(sample)
