"""Batch scoring of a CSV or Parquet file in chunks, so memory stays bounded on any file size.

Each chunk is read (pyarrow record batches for Parquet, pandas chunks for CSV), checked and
scored by the :class:`~scoring.serving.scorer.Scorer`, and appended to the output Parquet file; rows
that fail the value checks go to the rejected file with their reasons and their row number in
the input (0-based, header not counted). Both files are written under temporary names and
renamed into place at the end, so an interrupted run leaves no partial output. The counts
reconcile: ``scored + rejected == input`` (checked before the files are moved into place).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scoring.core.io import DataReadError, atomic_path, infer_format, parquet_parts, parquet_rows
from scoring.serving.scorer import OUTPUT_COLUMNS, OUTPUT_TYPES, Scorer

DEFAULT_CHUNK_ROWS = 100_000

_ARROW_TYPES = {"string": pa.string(), "double": pa.float64(), "long": pa.int64()}
OUTPUT_SCHEMA = pa.schema([(name, _ARROW_TYPES[OUTPUT_TYPES[name]]) for name in OUTPUT_COLUMNS])
REJECTED_SCHEMA_FIELDS = ("row", "reject_reasons")


@dataclass(frozen=True)
class BatchCounts:
    n_input: int
    n_scored: int
    n_rejected: int
    n_flagged: int = 0
    """Scored rows with an ``input_flags`` entry (a value training did not show, scored)."""

    @property
    def reconciles(self) -> bool:
        return self.n_scored + self.n_rejected == self.n_input


def check_input(path: str | Path) -> Path:
    """Refuse a missing or empty input file (its format is checked as it is read); a folder is
    read as a partitioned Parquet dataset (``part-*.parquet``, as the pipeline's stages write)."""
    path = Path(path)
    if path.is_dir():
        parquet_parts(path)  # refuses a folder without parts
        return path
    if not path.is_file():
        raise DataReadError(f"{path}: file not found (expected a CSV or Parquet file of applications)")
    infer_format(path, None)
    if path.stat().st_size == 0:
        raise DataReadError(f"{path}: the file is empty (expected a header row and data rows)")
    return path


def count_rows(path: Path) -> int:
    """Rows of a Parquet file from its footer; of a CSV, its lines less the header.

    The CSV count streams the file in 1 MiB blocks (bounded memory); a quoted field holding a
    line break makes it an overestimate, which only a progress bar sees.
    """
    if path.is_dir() or infer_format(path, None) == "parquet":
        return parquet_rows(path)
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)


def read_chunks(
    path: str | Path, scorer: Scorer, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Generator[pd.DataFrame, None, None]:
    """Chunks of at most ``chunk_rows`` applications; text fields of a CSV are read as text."""
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise DataReadError(f"{path}: file not found (expected a CSV or Parquet file of applications)")
    if path.is_dir() or infer_format(path, None) == "parquet":
        for part in parquet_parts(path):
            try:
                source = pq.ParquetFile(part)
            except (pa.ArrowInvalid, OSError) as exc:
                raise DataReadError(f"{part}: not a readable Parquet file ({exc})") from None
            for batch in source.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        return
    text = {
        scorer.rules.id_column,
        *(scorer.raw_name(f.name) for f in scorer.rules.fields if f.kind == "category"),
    }
    typed = {scorer.raw_name(f.name): f.kind for f in scorer.rules.fields if f.kind != "category"}
    na_values = list(scorer.spec.na_values) or None  # as the training file was read
    try:
        first = True
        with pd.read_csv(
            path, chunksize=chunk_rows, dtype={name: str for name in text}, na_values=na_values
        ) as reader:
            for chunk in reader:
                first = False
                yield csv_values(chunk, typed)
        if first:
            raise DataReadError(f"{path}: no data rows (expected at least one application)")
    except pd.errors.EmptyDataError:
        raise DataReadError(f"{path}: the file is empty (expected a header row and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataReadError(f"{path}: not a readable CSV file ({exc})") from None


_CSV_BOOLEANS = {"True": True, "False": False, "true": True, "false": False}


def csv_values(chunk: pd.DataFrame, kinds: Mapping[str, str]) -> pd.DataFrame:
    """A CSV chunk's numeric and boolean fields as values, whatever else the column holds.

    A CSV has no types: pandas reads a column as numbers only when every token of the chunk is
    one, so a single bad token ("abc" in age) would turn the whole column into text and every
    row of the chunk would fail the number check. Here the tokens that read as numbers (or as
    pandas' own True / False) become values again, and only the bad token's row stays text and
    is rejected with its own value.
    """
    for name, kind in kinds.items():
        if name not in chunk.columns:
            continue
        column = chunk[name]
        if not (pd.api.types.is_object_dtype(column.dtype) or pd.api.types.is_string_dtype(column.dtype)):
            continue
        raw = column.astype(object)
        present = raw.notna()
        if kind == "bool":
            flags = raw.map(_CSV_BOOLEANS)
            readable = present & flags.notna()
            values = flags
        else:
            values = pd.to_numeric(raw.where(present), errors="coerce")
            readable = present & values.notna()
        chunk[name] = raw.where(~readable, values.astype(object))
    return chunk


def score_file(
    scorer: Scorer,
    input_path: str | Path,
    output_path: str | Path,
    rejected_path: str | Path,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    with_reasons: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BatchCounts:
    """Score ``input_path`` into ``output_path`` (Parquet) and ``rejected_path`` (Parquet), chunk by chunk."""
    id_column = scorer.spec.id_column
    rejected_schema = pa.schema(
        [("row", pa.int64()), (id_column, pa.string()), ("reject_reasons", pa.string())]
    )
    n_input = n_scored = n_rejected = n_flagged = 0
    with atomic_path(output_path) as out_tmp, atomic_path(rejected_path) as rej_tmp:
        with (
            pq.ParquetWriter(out_tmp, OUTPUT_SCHEMA, compression="zstd") as out_writer,
            pq.ParquetWriter(rej_tmp, rejected_schema, compression="zstd") as rej_writer,
            contextlib.closing(read_chunks(input_path, scorer, chunk_rows)) as chunks,
        ):
            for chunk in chunks:
                chunk = chunk.reset_index(drop=True)
                scores, rejected = scorer.score_batch(chunk, with_reasons=with_reasons, row_offset=n_input)
                rejected["row"] += n_input
                if len(scores):
                    out_writer.write_table(
                        pa.Table.from_pandas(scores, schema=OUTPUT_SCHEMA, preserve_index=False)
                    )
                if len(rejected):
                    rej_writer.write_table(
                        pa.Table.from_pandas(rejected, schema=rejected_schema, preserve_index=False)
                    )
                n_input += len(chunk)
                n_scored += len(scores)
                n_rejected += len(rejected)
                n_flagged += int((scores["input_flags"] != "").sum())
                if progress is not None:
                    progress(len(chunk))
        counts = BatchCounts(n_input, n_scored, n_rejected, n_flagged)
        if not counts.reconciles:
            raise RuntimeError(
                f"counts do not reconcile: {n_scored} scored + {n_rejected} rejected != {n_input} input rows"
            )
    return counts
