"""The dask engine's cluster: a LocalCluster sized to this machine, or an existing cluster.

``engine: dask`` in params (or ``--engine dask`` on a command) runs the work on Dask's
distributed scheduler. ``dask.scheduler`` empty starts a LocalCluster here (one worker process per
core, one thread each: the libraries the workers call, XGBoost and NumPy, bring their own
threads); an address (``tcp://scheduler:8786``) connects to a running cluster instead, whose
workers need the same Python packages (this project installed from its lock file) and must see
the input and output paths (a shared file system).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from scoring.core.settings import ConfigError, StrictModel

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

logger = logging.getLogger(__name__)

Engine = Literal["pandas", "dask"]
ENGINES: tuple[str, ...] = ("pandas", "dask")
_MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"


class DaskConfig(StrictModel):
    """Where the dask engine runs (``dask:`` in params)."""

    scheduler: str = Field(
        "", description="empty: a LocalCluster on this machine; else a scheduler address, tcp://host:8786"
    )
    n_workers: int | None = Field(None, ge=1, description="LocalCluster workers (default: one per core)")
    threads_per_worker: int = Field(1, ge=1)
    memory_limit: str = Field(
        "auto", description="per LocalCluster worker: auto (the machine's / workers) or e.g. 8GiB"
    )
    partition_rows: int = Field(100_000, ge=1_000, description="rows per partition of the data")
    connect_timeout_seconds: float = Field(30.0, gt=0.0)
    malloc_trim_threshold: int | None = Field(
        65536,
        ge=0,
        description="LocalCluster workers' glibc MALLOC_TRIM_THRESHOLD_ in bytes (65536: distributed's "
        "default); null leaves it unset: glibc's adaptive default, faster, more memory held",
    )


def keep_pandas_types() -> None:
    """Frames on the dask engine keep the pandas engine's column types.

    Dask turns text columns into pyarrow strings by default; the engines must give equal
    frames (and the model the same inputs), so that conversion is off.
    """
    import dask

    dask.config.set({"dataframe.convert-string": False})


def local_cluster(config: DaskConfig) -> LocalCluster:
    """A LocalCluster of ``config``'s workers, each process started with its malloc setting.

    distributed starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so that memory they free
    goes back to the system at once; the default here is the same. Setting it at all turns off
    glibc's adaptive thresholds: every large array is then a fresh ``mmap`` whose pages are faulted
    in again. ``malloc_trim_threshold: null`` leaves the variable unset: on the 1M-application
    pipeline (benchmarks/bench_scale.py, docs/scale.md) the whole run took 10% less time (train
    19%, calibrate and explain a third less) and its peak memory was 19% higher, the workers
    holding what they had freed. A variable already in the environment wins, as distributed
    documents.
    """
    import dask
    from distributed import LocalCluster

    workers = config.n_workers or os.cpu_count() or 1
    before = os.environ.get(_MALLOC_TRIM)
    try:
        with dask.config.set(
            {f"distributed.nanny.pre-spawn-environ.{_MALLOC_TRIM}": config.malloc_trim_threshold}
        ):
            return LocalCluster(
                n_workers=workers,
                threads_per_worker=config.threads_per_worker,
                memory_limit=config.memory_limit,
                processes=True,
                dashboard_address=":0",  # any free port: two clusters on one machine do not clash
            )
    finally:
        # distributed writes the workers' variables into this process's environment to spawn them
        # (and leaves them there); put it back, so that a later cluster here gets its own setting
        if before is None:
            os.environ.pop(_MALLOC_TRIM, None)
        else:
            os.environ[_MALLOC_TRIM] = before


@contextmanager
def dask_client(config: DaskConfig | None = None) -> Iterator[Client]:
    """A client on the configured cluster, closed (and a LocalCluster shut down) on exit."""
    from distributed import Client

    config = config or DaskConfig()
    keep_pandas_types()
    if config.scheduler:
        try:
            client = Client(config.scheduler, timeout=config.connect_timeout_seconds)
        except OSError as exc:
            raise ConfigError(
                f"dask.scheduler {config.scheduler!r}: no scheduler answered within "
                f"{config.connect_timeout_seconds:g} s ({exc}); expected the address of a running "
                "cluster (tcp://host:8786), or leave it empty for a LocalCluster on this machine"
            ) from None
        logger.info(
            "dask: connected to %s (%d workers)", config.scheduler, len(client.scheduler_info()["workers"])
        )
        try:
            yield client
        finally:
            client.close()
        return
    with local_cluster(config) as cluster, Client(cluster) as client:
        logger.info(
            "dask: LocalCluster of %d workers x %d threads", len(cluster.workers), config.threads_per_worker
        )
        yield client
