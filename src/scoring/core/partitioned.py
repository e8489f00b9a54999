"""Partitioned datasets between stages, on either engine.

A stage's table output is a folder of ``part-NNNNN.parquet`` files (:func:`scoring.core.io.write_dataset`),
one per partition, read back in order by :func:`scoring.core.io.read_parquet` (pandas) or
:func:`read_dask` (a Dask DataFrame, one partition per part). :func:`write_parts` runs one task per
part, in this process or on the Dask cluster, each writing its own part of every output into a
staging folder; the folders replace the outputs only when every task has succeeded, so a failed
run leaves the previous outputs whole.

On an existing cluster the workers write the parts themselves: the output folders must be on a
file system they share with this process.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import pyarrow.parquet as pq

from scoring.core.cluster import keep_pandas_types
from scoring.core.io import atomic_folder, parquet_parts, part_name, write_parquet_file

if TYPE_CHECKING:
    import dask.dataframe as dd

T = TypeVar("T")


def write_part(path: str | Path, frame: pd.DataFrame) -> int:
    """Write one part file (deterministic bytes, as every stage output); returns its rows."""
    write_parquet_file(Path(path), frame)
    return len(frame)


def _read_part(path: str, columns: Sequence[str] | None) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path, columns=None if columns is None else list(columns)).to_pandas()
    return frame


def read_dask(path: str | Path, columns: Sequence[str] | None = None) -> dd.DataFrame:
    """A Parquet file or dataset folder as a Dask DataFrame, one partition per part file, in order.

    Each worker reads its own part; the index of every partition starts at 0 (as the pandas
    engine's frames do once read), so positions are per partition.
    """
    import dask.dataframe as dd

    keep_pandas_types()
    files = parquet_parts(path)
    meta = pq.read_schema(files[0]).empty_table().to_pandas()
    if columns is not None:
        meta = meta[list(columns)]
    lazy: dd.DataFrame = dd.from_map(
        _read_part, [str(f.resolve()) for f in files], columns=columns, meta=meta, enforce_metadata=False
    )
    return lazy


def write_parts(
    outputs: Mapping[str, Path],
    task: Callable[[int, Mapping[str, Path]], T],
    n_parts: int,
    parallel: bool,
) -> list[T]:
    """Run ``task(number, targets)`` for each part; ``targets`` maps each output name to the part
    file it must write. With ``parallel``, the tasks run on the active Dask client.

    ``task`` must be picklable for the parallel run (a module-level function, or a
    ``functools.partial`` of one). Returns the tasks' results in part order.
    """
    if n_parts < 1:
        raise ValueError(f"n_parts: expected at least 1, got {n_parts}")
    with ExitStack() as stack:
        # absolute paths: the workers of an existing cluster do not share this process's cwd
        staging = {
            name: stack.enter_context(atomic_folder(Path(path).resolve())) for name, path in outputs.items()
        }
        targets = [{name: folder / part_name(k) for name, folder in staging.items()} for k in range(n_parts)]
        if parallel:
            from dask.base import compute
            from dask.delayed import delayed

            results: list[T] = list(
                compute(*[delayed(task, pure=False)(k, t) for k, t in enumerate(targets)])
            )
        else:
            results = [task(k, t) for k, t in enumerate(targets)]
    return results


def write_dask(frame: dd.DataFrame, path: str | Path) -> list[int]:
    """Write a Dask DataFrame as a dataset folder, one part per partition; rows per part."""
    return write_frames_dask({"out": frame}, {"out": Path(path)})["out"]


def write_frames_dask(frames: Mapping[str, dd.DataFrame], paths: Mapping[str, Path]) -> dict[str, list[int]]:
    """Write several Dask DataFrames (computed together, so shared work runs once) as dataset folders."""
    from dask.base import compute
    from dask.delayed import delayed

    with ExitStack() as stack:
        staging = {name: stack.enter_context(atomic_folder(Path(paths[name]).resolve())) for name in frames}
        tasks: dict[str, list[Any]] = {
            name: [
                delayed(write_part, pure=False)(staging[name] / part_name(k), part)
                for k, part in enumerate(frame.to_delayed())
            ]
            for name, frame in frames.items()
        }
        (counts,) = compute(tasks)
    return {name: [int(c) for c in rows] for name, rows in counts.items()}
