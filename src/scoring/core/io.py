"""Disk access: atomic writes, table reading with clear errors, and content digests.

Every write goes to a temporary file in the destination folder and is renamed into place,
so an interrupted stage never leaves a half-written data or model file behind.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


class DataReadError(ValueError):
    """An input file is missing, empty, truncated or not in the expected format."""


def _put_in_place(new: Path, path: Path) -> None:
    """Rename ``new`` (a file or a folder) onto ``path``, whatever ``path`` is now: a folder there
    (a dataset of the other layout) is set aside first, then removed."""
    if path.is_dir() and not path.is_symlink():
        retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        path.replace(retired / "old")
        new.replace(path)
        shutil.rmtree(retired, ignore_errors=True)
        return
    if new.is_dir() and (path.exists() or path.is_symlink()):
        path.unlink()  # a folder cannot be renamed onto a file
    new.replace(path)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o644)  # mkstemp creates 0600; outputs are ordinary files others may read
    try:
        yield tmp
        _put_in_place(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON with sorted keys, so equal content gives equal bytes."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


PART_GLOB = "part-*.parquet"


def part_name(number: int) -> str:
    """The file name of a dataset's ``number``-th part (zero-padded, so names sort in order)."""
    return f"part-{number:05d}.parquet"


def parquet_parts(path: str | Path) -> list[Path]:
    """The Parquet files of a table, in order: the file itself, or a dataset folder's parts.

    A dataset folder (the layout stages write, one ``part-NNNNN.parquet`` per partition) is read
    as the parts one after the other; nothing else in the folder is read.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        parts = sorted(path.glob(PART_GLOB))
        if not parts:
            raise DataReadError(f"{path}: no {PART_GLOB} in the folder (expected a partitioned dataset)")
        return parts
    raise DataReadError(f"{path}: not found (expected a Parquet file or a folder of {PART_GLOB} files)")


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a frame to Parquet deterministically (no pandas index, fixed compression)."""
    with atomic_path(path) as tmp:
        write_parquet_file(tmp, frame)


def write_parquet_file(path: Path, frame: pd.DataFrame) -> None:
    """Write ``path`` in place (not atomic: for a file inside a staging folder)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # pandas metadata embeds the library version; drop it so the bytes depend on data only.
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd")


@contextlib.contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; put it in place of ``path`` if the block
    succeeds (whatever ``path`` was: a file, a folder or nothing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    staging.chmod(0o755)
    try:
        yield staging
        _put_in_place(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_dataset(path: str | Path, parts: pd.DataFrame | Iterable[pd.DataFrame]) -> int:
    """Write a table as a dataset folder of ``part-NNNNN.parquet`` files, one per frame, atomically.

    The stages' outputs use this layout whatever the engine (the pandas engine writes one part per
    partition of rows it holds); :func:`read_parquet` reads it back as one frame. Returns the
    number of rows written.
    """
    frames = [parts] if isinstance(parts, pd.DataFrame) else parts
    rows = 0
    with atomic_folder(path) as staging:
        for number, frame in enumerate(frames):
            write_parquet_file(staging / part_name(number), frame)
            rows += len(frame)
        if not any(staging.iterdir()):
            raise ValueError(f"{path}: no parts to write (expected at least one frame, possibly empty)")
    return rows


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file, or a dataset folder's parts concatenated in order, as one frame."""
    files = parquet_parts(path)
    try:
        tables = [pq.read_table(file, columns=columns) for file in files]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
        frame: pd.DataFrame = table.to_pandas()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataReadError(f"{path}: not a readable Parquet file ({exc})") from None
    return frame


def parquet_rows(path: str | Path) -> int:
    """Rows of a Parquet file or dataset folder, from the footers (nothing else is read)."""
    return sum(int(pq.ParquetFile(file).metadata.num_rows) for file in parquet_parts(path))


def infer_format(path: Path, declared: str | None) -> str:
    if declared is not None:
        return declared
    suffix = path.suffix.lower()
    if suffix in {".csv", ".txt"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    raise DataReadError(f"{path}: cannot tell the format from suffix '{suffix}'; expected .csv or .parquet")


def read_table(path: str | Path, fmt: str | None = None, na_values: Sequence[str] = ()) -> pd.DataFrame:
    """Read an analyst's CSV or Parquet file, refusing empty or unreadable files with the reason.

    ``na_values``: CSV cells read as missing besides pandas' defaults (``?`` in UCI exports).
    """
    path = Path(path)
    if path.is_dir() and fmt in (None, "parquet"):
        return read_parquet(path)  # a dataset folder, as the stages write
    if not path.is_file():
        raise DataReadError(f"{path}: file not found (expected a CSV or Parquet file of applications)")
    fmt = infer_format(path, fmt)
    if fmt == "parquet":
        return read_parquet(path)
    try:
        frame = pd.read_csv(path, low_memory=False, na_values=list(na_values) or None)
    except pd.errors.EmptyDataError:
        raise DataReadError(f"{path}: the file is empty (expected a header row and data rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataReadError(f"{path}: not a readable CSV file ({exc})") from None
    if frame.empty:
        raise DataReadError(f"{path}: no data rows (expected at least one application)")
    _check_not_truncated(path, frame.shape[1])
    return frame


def _check_not_truncated(path: Path, n_columns: int, tail_bytes: int = 1 << 16) -> None:
    """Refuse a CSV cut off mid-row: no final newline and a last line short of fields.

    pandas fills the missing fields of a short last row with nulls, silently; an export that
    stopped half-way should instead fail loudly.
    """
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - tail_bytes))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return
    last_line = tail.splitlines()[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader([last_line]), [])
    if len(fields) < n_columns:
        raise DataReadError(
            f"{path}: the file looks truncated: its last line has {len(fields)} of {n_columns} fields "
            "and no line end (expected complete rows; was the export interrupted?)"
        )


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def path_sha256(path: str | Path) -> str:
    """SHA-256 of a file, or of a dataset folder (its parts' names and digests, in order)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for part in parquet_parts(path):
        digest.update(f"{part.name}\x1f{file_sha256(part)}\n".encode())
    return digest.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's content (values, column names and order), independent of file format."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
