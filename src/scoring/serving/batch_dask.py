"""Batch scoring on Dask: the same rows, the same scorer, the same outputs as :mod:`scoring.serving.batch`.

The input (CSV or Parquet) is read by Dask in partitions of about ``partition_rows`` rows; each
partition is scored on a worker by the :class:`~scoring.serving.scorer.Scorer` of the exported
model, which the worker loads itself from the model directory after checking its files against
the digest the client verified (nothing of the model travels through pickle, and a worker that
sees other files refuses them). Each partition writes its scores and its rejected rows (with
their 0-based row numbers in the whole input) as one Parquet file each, into two directories
built beside the destinations and moved into place when every partition has reconciled:
``scored + rejected == input``.

A CSV is read as text and typed per field by the model's own input rules
(:func:`scoring.serving.batch.csv_values`), so a partition boundary cannot change a value's type
and the output equals the pandas path's, row for row, bit for bit. On a cluster, the model
directory and the files must be readable at the same paths on every worker.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.core.io import DataReadError, infer_format, parquet_parts
from scoring.serving.batch import OUTPUT_SCHEMA, BatchCounts, csv_values

if TYPE_CHECKING:
    from distributed import Client

    from scoring.serving.scorer import Scorer

logger = logging.getLogger(__name__)

# one scorer per worker process and model: loaded (and verified) once, reused by every partition
_SCORERS: dict[tuple[str, str], Scorer] = {}


def _worker_scorer(model_dir: str, digest: str) -> Scorer:
    key = (model_dir, digest)
    if key not in _SCORERS:
        from scoring.serving.registry import load_verified_scorer

        _SCORERS[key] = load_verified_scorer(model_dir, digest)[0]
    return _SCORERS[key]


def _rejected_schema(id_column: str) -> pa.Schema:
    return pa.schema([("row", pa.int64()), (id_column, pa.string()), ("reject_reasons", pa.string())])


def _score_partition(
    part: pd.DataFrame,
    number: int,
    offset: int,
    model_dir: str,
    digest: str,
    kinds: dict[str, str],
    scores_dir: str,
    rejected_dir: str,
    with_reasons: bool,
) -> tuple[int, int, int, int]:
    """Score one partition on a worker and write its two part files; (input, scored, rejected,
    scored rows flagged)."""
    scorer = _worker_scorer(model_dir, digest)
    chunk = csv_values(part.reset_index(drop=True), kinds) if kinds else part.reset_index(drop=True)
    scores, rejected = scorer.score_batch(chunk, with_reasons=with_reasons, row_offset=offset)
    rejected["row"] += offset
    name = f"part-{number:06d}.parquet"
    pq.write_table(
        pa.Table.from_pandas(scores, schema=OUTPUT_SCHEMA, preserve_index=False), Path(scores_dir) / name
    )
    pq.write_table(
        pa.Table.from_pandas(rejected, schema=_rejected_schema(scorer.spec.id_column), preserve_index=False),
        Path(rejected_dir) / name,
    )
    return len(chunk), len(scores), len(rejected), int((scores["input_flags"] != "").sum())


def _read_row_groups(piece: tuple[str, list[int]]) -> pd.DataFrame:
    path, groups = piece
    frame: pd.DataFrame = pq.ParquetFile(path).read_row_groups(groups).to_pandas()
    return frame


def read_partitions(path: Path, scorer: Scorer, partition_rows: int) -> Any:
    """The input as a Dask DataFrame: Parquet by consecutive row groups of about ``partition_rows``
    rows (a file written as one row group is one partition), CSV as text in blocks of about
    ``partition_rows`` rows."""
    import dask.dataframe as dd

    if not path.is_file() and not path.is_dir():
        raise DataReadError(f"{path}: file not found (expected a CSV or Parquet file of applications)")
    if path.is_dir() or infer_format(path, None) == "parquet":
        # consecutive row groups of about partition_rows rows of each file (a dataset folder's
        # parts in order): a worker reads only its own groups, so its memory is bounded by the
        # partition, not by the file
        pieces: list[tuple[str, list[int]]] = []
        for part in parquet_parts(path):
            try:
                metadata = pq.ParquetFile(part).metadata
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataReadError(f"{part}: not a readable Parquet file ({exc})") from None
            groups: list[list[int]] = [[]]
            rows = 0
            for i in range(metadata.num_row_groups):
                if groups[-1] and rows + metadata.row_group(i).num_rows > partition_rows:
                    groups.append([])
                    rows = 0
                groups[-1].append(i)
                rows += metadata.row_group(i).num_rows
            pieces.extend((str(part), g) for g in groups if g)
        meta = pq.read_schema(parquet_parts(path)[0]).empty_table().to_pandas()
        return dd.from_map(_read_row_groups, pieces, meta=meta, enforce_metadata=False)
    with path.open("rb") as handle:
        header = handle.readline()
        sample = handle.read(1 << 20)
    lines = max(sample.count(b"\n"), 1)
    blocksize = max(int(len(sample) / lines * partition_rows), 1 << 16)
    na_values = list(scorer.spec.na_values) or None
    return dd.read_csv(
        str(path), blocksize=blocksize, dtype=object, na_values=na_values, sample=len(header) + 4096
    )


def score_file_dask(
    client: Client,
    model_dir: str | Path,
    digest: str,
    scorer: Scorer,
    input_path: str | Path,
    output_dir: str | Path,
    rejected_dir: str | Path,
    partition_rows: int = 100_000,
    with_reasons: bool = True,
) -> BatchCounts:
    """Score ``input_path`` on the cluster of ``client`` into two Parquet directories (module
    docstring). ``scorer``: the model's scorer on the client (its input rules type a CSV)."""
    input_path, output_dir, rejected_dir = Path(input_path), Path(output_dir), Path(rejected_dir)
    frame = read_partitions(input_path, scorer, partition_rows)
    csv = infer_format(input_path, None) == "csv"
    kinds = (
        {scorer.raw_name(f.name): f.kind for f in scorer.rules.fields if f.kind != "category"} if csv else {}
    )
    lengths = [int(n) for n in frame.map_partitions(len).compute()]
    offsets = [sum(lengths[:i]) for i in range(len(lengths))]
    staging: list[Path] = []
    try:
        for target in (output_dir, rejected_dir):
            target.parent.mkdir(parents=True, exist_ok=True)
            staging.append(
                Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
            )
        from dask.delayed import delayed

        model = str(Path(model_dir).resolve())
        tasks = [
            delayed(_score_partition, pure=False)(
                part, i, offsets[i], model, digest, kinds, str(staging[0]), str(staging[1]), with_reasons
            )
            for i, part in enumerate(frame.to_delayed())
        ]
        results = client.gather(client.compute(tasks))
        n_input = sum(r[0] for r in results)
        counts = BatchCounts(
            n_input, sum(r[1] for r in results), sum(r[2] for r in results), sum(r[3] for r in results)
        )
        if not counts.reconciles or n_input != sum(lengths):
            raise RuntimeError(f"counts do not reconcile: {counts} over {sum(lengths)} input rows")
        for source, target in zip(staging, (output_dir, rejected_dir), strict=True):
            source.chmod(0o755)
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            source.rename(target)
    finally:
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
    logger.info("dask: scored %s in %d partitions: %s", input_path, len(lengths), counts)
    return counts
