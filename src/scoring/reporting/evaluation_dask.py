"""The evaluate stage on the dask engine (``engine: dask``): the same metrics and predictions as
:mod:`scoring.reporting.evaluation` and the pandas stage, for splits too large for one process.

Everything row-level runs on the workers, partition by partition of the split folders
(:func:`scoring.core.partitioned.read_dask`, one partition per part file):

1. :func:`evaluate_candidates_dask`: every candidate's PD of each row of the labelled splits,
   with the row's id (as text) and target; only these columns come back to this process, where
   :func:`scoring.reporting.evaluation.evaluate_scores` computes the figures (the pandas
   engine's own code) and :func:`scoring.reporting.evaluation.calibrated_metrics` the calibrated
   ones. The truth is joined here by id.
2. :func:`predictions_dask`: the predictions file's rows (the champion's raw PD and the
   :class:`~scoring.serving.scorer.Scorer`'s output, through
   :func:`scoring.serving.scorer.scored_predictions`, as the pandas engine), written by the workers
   as a dataset folder (:func:`write_predictions_dask`).

Each worker loads the model folder itself, as :mod:`scoring.serving.batch_dask` loads the
exported model: nothing of the model travels through pickle; the client sends the folder's path
and the SHA-256 digest of the files it read (:class:`WorkerBundle`), and a worker that sees other
files refuses them. The models are loaded once per worker process and reused by its partitions.
On a cluster, the model folder and the split folders must be readable at the same paths on every
worker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from scoring.core.contract import DatasetSpec
from scoring.core.io import parquet_parts, read_parquet, write_dataset
from scoring.data.split import LABELLED_PARTS
from scoring.reporting.evaluation import (
    EvaluationResult,
    SplitScores,
    TruthLookup,
    evaluate_scores,
    split_scores,
    target_values,
    true_pds,
)
from scoring.serving.bundle import (
    CALIBRATOR_FILE,
    MASTER_SCALE_FILE,
    REASONS_FILE,
    ArtifactIntegrityError,
    ModelBundle,
    sha256_of,
)
from scoring.serving.scorer import (
    OUTPUT_COLUMNS,
    OUTPUT_TYPES,
    Scorer,
    log_scoring_counts,
    scored_predictions,
    scoring_counts,
)

if TYPE_CHECKING:
    from scoring.config import Params
    from scoring.models.model import PDModel

logger = logging.getLogger(__name__)

ID = "_id"
TARGET = "_target"


def _pd_column(number: int) -> str:
    return f"_pd_{number}"


# ---------------------------------------------------------------------------- the model on the workers


def files_digest(model_dir: str | Path, files: tuple[str, ...]) -> str:
    """SHA-256 over the names and SHA-256 digests of ``files`` (relative to ``model_dir``), in order."""
    root = Path(model_dir)
    digest = hashlib.sha256()
    for name in files:
        path = root / name
        if not path.is_file():
            raise ArtifactIntegrityError(f"model file '{name}' is missing from {root}; refusing to load")
        digest.update(f"{name}\x1f{sha256_of(path)}\n".encode())
    return digest.hexdigest()


def evaluated_files(bundle: ModelBundle, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The files of the model folder the evaluation reads: every candidate's, the calibrator, the
    master scale and the reason codes (when there are)."""
    names = {CALIBRATOR_FILE, MASTER_SCALE_FILE}
    for kind in candidates:
        names.update(bundle.model_files(kind))
    if bundle.has(REASONS_FILE):
        names.add(REASONS_FILE)
    return tuple(sorted(names))


@dataclass(frozen=True)
class WorkerBundle:
    """What a worker needs to load the model folder itself (:meth:`of`), and the digest that pins
    its files: the path, the files and their digest, the candidates, and the settings of the
    scorer that are not in the folder (params' policy, limits and points scaling, the dataset
    spec, the model's identity)."""

    model_dir: str
    files: tuple[str, ...]
    digest: str
    candidates: tuple[str, ...]
    params: Params
    spec: DatasetSpec
    info: dict[str, Any]
    settings: str
    """SHA-256 of the scorer's settings (params, spec, info): with the digest, the workers' cache key."""

    @classmethod
    def of(
        cls, model_dir: str | Path, params: Params, spec: DatasetSpec, info: Mapping[str, Any]
    ) -> WorkerBundle:
        """The bundle at ``model_dir`` (its candidates in ``train.candidates`` order), its files'
        digest as read here."""
        root = Path(model_dir).resolve()
        bundle = ModelBundle(root)
        candidates = tuple(bundle.candidate_names())
        files = evaluated_files(bundle, candidates)
        settings = json.dumps(
            [params.model_dump(mode="json"), spec.to_json(), dict(info)], sort_keys=True, default=str
        )
        return cls(
            model_dir=str(root),
            files=files,
            digest=files_digest(root, files),
            candidates=candidates,
            params=params,
            spec=spec,
            info=dict(info),
            settings=hashlib.sha256(settings.encode()).hexdigest(),
        )


@dataclass
class _Loaded:
    models: dict[str, PDModel]
    scorer: Scorer | None = None


# one model folder per worker process (the latest asked for): verified and loaded once, reused
# by every partition; a lock, as a worker may run several threads
_LOADED: dict[tuple[str, str, str], _Loaded] = {}
_LOCK = threading.Lock()


def _verified(source: WorkerBundle) -> _Loaded:
    key = (source.model_dir, source.digest, source.settings)
    loaded = _LOADED.get(key)
    if loaded is None:
        actual = files_digest(source.model_dir, source.files)
        if actual != source.digest:
            raise ArtifactIntegrityError(
                f"{source.model_dir}: the model files here have digest {actual}, expected "
                f"{source.digest} (the files the evaluation read); refusing to load"
            )
        _LOADED.clear()
        loaded = _LOADED[key] = _Loaded(models={})
    return loaded


def worker_models(source: WorkerBundle) -> dict[str, PDModel]:
    """Every candidate's PD model, loaded (once per process) from the verified folder."""
    with _LOCK:
        loaded = _verified(source)
        if not loaded.models:
            bundle = ModelBundle(source.model_dir)
            loaded.models = {kind: bundle.load_model(kind) for kind in source.candidates}
        return loaded.models


def worker_scorer(source: WorkerBundle) -> Scorer:
    """The pipeline's scorer (:meth:`Scorer.from_model_dir`), loaded (once per process) from the
    verified folder."""
    with _LOCK:
        loaded = _verified(source)
        if loaded.scorer is None:
            loaded.scorer = Scorer.from_model_dir(source.model_dir, source.params, source.spec, source.info)
        return loaded.scorer


# ---------------------------------------------------------------------------- partitions


def _map_partitions(frame: Any, func: Any, *args: Any, meta: Any) -> Any:
    # dask's collections are untyped (mypy's disallow_untyped_calls): called through Any here
    return frame.map_partitions(func, *args, meta=meta)


def _part_rows(path: Path) -> list[int]:
    """Rows of each part file of a split (from the footers: nothing else is read)."""
    return [int(pq.ParquetFile(part).metadata.num_rows) for part in parquet_parts(path)]


def _split_frame(path: Path) -> Any:
    """The split's non-empty part files as a Dask DataFrame (one partition each), or None."""
    from scoring.core.partitioned import read_dask

    keep = [number for number, rows in enumerate(_part_rows(path)) if rows]
    if not keep:
        return None
    frame: Any = read_dask(path)
    return frame if len(keep) == frame.npartitions else frame.partitions[keep]


def _candidate_pds(part: pd.DataFrame, source: WorkerBundle) -> pd.DataFrame:
    """One partition of a labelled split: id (text), target, each candidate's PD."""
    models = worker_models(source)
    spec = source.spec
    columns: dict[str, Any] = {
        ID: part[spec.id_column].astype(str).to_numpy(),
        TARGET: target_values(part, spec),
    }
    for number, kind in enumerate(source.candidates):
        columns[_pd_column(number)] = models[kind].predict_pd(part)
    return pd.DataFrame(columns)


def _candidate_meta(source: WorkerBundle) -> pd.DataFrame:
    columns: dict[str, Any] = {ID: pd.Series(dtype=object), TARGET: pd.Series(dtype=np.float64)}
    for number in range(len(source.candidates)):
        columns[_pd_column(number)] = pd.Series(dtype=np.float64)
    return pd.DataFrame(columns)


def _predictions_partition(part: pd.DataFrame, name: str, source: WorkerBundle) -> pd.DataFrame:
    """One partition's rows of the predictions file, as the pandas engine makes them; rows the
    model's input rules reject are left out and logged (:func:`dask_scoring_counts` counts them)."""
    scorer = worker_scorer(source)
    part = part.reset_index(drop=True)
    raw = split_scores(scorer.model, name, part, source.spec)
    predictions, rejected = scored_predictions(scorer, {name: part}, source.spec, raw)
    if len(rejected):
        logger.warning(
            "%s: %d of %d rows of a partition rejected by the model's input rules; the first: %s",
            name,
            len(rejected),
            len(part),
            rejected["reject_reasons"].iloc[0],
        )
    return predictions


def dask_scoring_counts(splits: Mapping[str, Path], predictions_path: str | Path) -> dict[str, Any]:
    """:func:`scoring.serving.scorer.scoring_counts` of the Dask engine, the pandas engine's
    figures: the split files' rows against the predictions written, whose ``split`` and
    ``input_flags`` columns are read back (the rejected rows' reasons are in the workers' log)."""
    rows = {name: sum(_part_rows(Path(path))) for name, path in splits.items()}
    written = read_parquet(predictions_path, columns=["split", "input_flags"])
    empty = pd.DataFrame({"split": pd.Series(dtype=object), "row": pd.Series(dtype=np.int64)})
    counts = scoring_counts(written, empty)
    scored = written["split"].value_counts()
    counts.update(n_input=sum(rows.values()), n_rejected=sum(rows.values()) - len(written))
    counts["by_split"] = {
        name: {"n_scored": int(scored.get(name, 0)), "n_rejected": n - int(scored.get(name, 0))}
        for name, n in rows.items()
        if n
    }
    log_scoring_counts("evaluate", counts)
    return counts


def predictions_meta(spec: DatasetSpec) -> pd.DataFrame:
    """The predictions file's columns (:func:`scoring.serving.scorer.scored_predictions`), no rows."""
    kinds = {"string": object, "double": np.float64, "long": np.int64}
    columns: dict[str, Any] = {
        "application_id": pd.Series(dtype=object),
        "split": pd.Series(dtype=object),
        spec.target_column: pd.Series(dtype=np.float64),
        "pd_raw": pd.Series(dtype=np.float64),
    }
    for column in OUTPUT_COLUMNS[1:]:
        columns[column] = pd.Series(dtype=kinds[OUTPUT_TYPES[column]])
    return pd.DataFrame(columns)


# ---------------------------------------------------------------------------- the stage's two passes


def evaluate_candidates_dask(
    source: WorkerBundle,
    splits: Mapping[str, Path],
    truth: TruthLookup | None = None,
    calibration_bins: int = 10,
) -> dict[str, EvaluationResult]:
    """:func:`scoring.reporting.evaluation.evaluate_model` of every candidate, on the cluster.

    ``splits``: split name -> its Parquet file or dataset folder (the labelled ones are read);
    ``truth``: :func:`scoring.reporting.evaluation.truth_lookup` of the truth file. Each
    candidate's result has the pandas engine's metrics, ROC points, calibration tables and
    :attr:`~scoring.reporting.evaluation.EvaluationResult.labelled` arrays; its ``scores`` is empty
    (:func:`predictions_dask` scores every row on the workers).
    """
    import dask

    from scoring.core.cluster import keep_pandas_types

    keep_pandas_types()
    untyped: Any = dask  # dask's functions are untyped (mypy's disallow_untyped_calls)
    meta = _candidate_meta(source)
    pending: dict[str, Any] = {}
    for name in LABELLED_PARTS:
        if name not in splits:
            continue
        frame = _split_frame(splits[name])
        if frame is not None:
            pending[name] = _map_partitions(frame, _candidate_pds, source, meta=meta)
    started = time.perf_counter()
    collected = {
        name: frame
        for name, frame in zip(pending, untyped.compute(*pending.values()), strict=True)
        if len(frame)
    }
    logger.info(
        "dask: %d candidates' PDs of %s collected in %.1f s",
        len(source.candidates),
        ", ".join(f"{name} ({len(frame)} rows)" for name, frame in collected.items()),
        time.perf_counter() - started,
    )
    started = time.perf_counter()
    # the true PDs joined once per split, for every candidate
    joined = {
        name: None if truth is None else true_pds(truth, frame[ID], name) for name, frame in collected.items()
    }
    results: dict[str, EvaluationResult] = {}
    for number, kind in enumerate(source.candidates):
        labelled = {
            name: SplitScores(
                frame[ID],
                frame[TARGET].to_numpy(dtype=np.float64),
                frame[_pd_column(number)].to_numpy(dtype=np.float64),
                joined[name],
            )
            for name, frame in collected.items()
        }
        results[kind] = evaluate_scores(labelled, truth, calibration_bins)
    logger.info("dask: the candidates' figures computed in %.1f s", time.perf_counter() - started)
    return results


def predictions_dask(source: WorkerBundle, splits: Mapping[str, Path]) -> Any:
    """The predictions file's rows as a Dask DataFrame (splits in the order given, rows in file
    order, one partition per non-empty part file), or None when every split is empty."""
    import dask.dataframe as dd

    from scoring.core.cluster import keep_pandas_types

    keep_pandas_types()
    meta = predictions_meta(source.spec)
    pieces = []
    for name, path in splits.items():
        frame = _split_frame(path)
        if frame is not None:
            pieces.append(_map_partitions(frame, _predictions_partition, name, source, meta=meta))
    if not pieces:
        return None
    untyped: Any = dd
    return pieces[0] if len(pieces) == 1 else untyped.concat(pieces)


def write_predictions_dask(
    source: WorkerBundle, splits: Mapping[str, Path], path: str | Path
) -> dict[str, Any]:
    """Write :func:`predictions_dask` as a dataset folder at ``path`` (the workers write the
    parts); returns the account of the rows (:func:`dask_scoring_counts`)."""
    from scoring.core.partitioned import write_dask

    started = time.perf_counter()
    frame = predictions_dask(source, splits)
    if frame is None:
        write_dataset(path, predictions_meta(source.spec))
    else:
        rows = sum(write_dask(frame, path))
        logger.info("dask: %d predictions written to %s in %.1f s", rows, path, time.perf_counter() - started)
    return dask_scoring_counts(splits, path)
