"""What every DVC stage script shares: its arguments, params, the dataset spec, the MLflow run.

A stage script names its inputs and outputs and calls the library::

    def main(stage: Stage) -> None:
        ...  # read stage.path("train"), call one library function, write outputs

    if __name__ == "__main__":
        run(__doc__, main, "train", "dataset", "out")

Each name becomes a required ``--<name>`` option (underscores as dashes) holding a path;
``--params`` (params.yaml) is always there. Errors in the input or the configuration exit 1
with their message, no traceback (:func:`scoring.runtime.run_stage`). MLflow is imported only
when a stage opens its run.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scoring.config import Params, load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_json
from scoring.runtime import run_stage

if TYPE_CHECKING:
    import pandas as pd

    from scoring.serving.bundle import ModelBundle

logger = logging.getLogger(__name__)


@dataclass
class Stage:
    """One stage invocation: parsed arguments and what they point to, read on first use."""

    args: argparse.Namespace
    params: Params
    name: str = "stage"

    def path(self, name: str) -> Path:
        """The path given as ``--<name>``."""
        value = getattr(self.args, name)
        if value is None:
            raise ValueError(f"--{name.replace('_', '-')}: no path given")
        return Path(value)

    def flag(self, name: str) -> bool:
        return bool(getattr(self.args, name))

    @cached_property
    def spec(self) -> DatasetSpec:
        """The dataset spec of ``--dataset`` (the validate stage's dataset.json)."""
        return DatasetSpec.from_json(self.path("dataset").read_text(encoding="utf-8"))

    @cached_property
    def bundle(self) -> ModelBundle:
        """The model folder of ``--model-dir``."""
        from scoring.serving.bundle import ModelBundle

        return ModelBundle(self.path("model_dir"))

    @cached_property
    def run_info(self) -> dict[str, Any]:
        """The train stage's MLflow run (``--run-info``), which the later stages log into; {} when
        the file is not there. The file is a record of this workspace, not a DVC output: a run id
        is new on every run, and what DVC tracks must come back byte for byte from the same data
        and params."""
        path = self.path("run_info")
        if not path.is_file():
            logger.warning(
                "%s: no %s (the train stage writes it): this stage opens an MLflow run of its own",
                self.name,
                path,
            )
            return {}
        info: dict[str, Any] = read_json(path)
        return info

    @property
    def on_dask(self) -> bool:
        """Whether params choose the dask engine (``engine: dask``)."""
        return self.params.engine == "dask"

    @contextmanager
    def engine_client(self) -> Iterator[Any]:
        """The Dask client of params' cluster with ``engine: dask`` (closed on exit), else None."""
        if not self.on_dask:
            yield None
            return
        from scoring.core.cluster import dask_client

        with dask_client(self.params.dask) as client:
            yield client

    def read_sample(self, path: Path) -> pd.DataFrame:
        """The fit sample (:mod:`scoring.data.sampling`, params ``sample_rows``) of the table at
        ``path``: every row up to ``sample_rows``; on the dask engine filtered partition by
        partition (on the cluster inside :meth:`engine_client`), so only the sample is held here."""
        from scoring.core.io import parquet_rows, read_parquet
        from scoring.data.sampling import fit_sample, fit_sample_dask

        if self.on_dask:
            from scoring.core.partitioned import read_dask

            n_rows = parquet_rows(path)
            return fit_sample_dask(
                read_dask(path), self.spec, self.params.sample_rows, self.params.seed, n_rows
            )
        return fit_sample(read_parquet(path), self.spec, self.params.sample_rows, self.params.seed)

    @contextmanager
    def mlflow_run(self, run_name: str | None = None, new: bool = False) -> Iterator[Any]:
        """The stage's MLflow run: the train stage's run (``--run-info``) unless ``new`` or there is
        none, when a run of its own (named ``run_name`` or after the stage) opens."""
        from scoring.tracking import mlflow_run

        run_id = None if new else self.run_info.get("run_id")
        if run_id is None:
            run_name = run_name or self.name.rsplit(".", 1)[-1]
        with mlflow_run(self.params.export.experiment_name, run_id=run_id, run_name=run_name) as run:
            yield run


def parser(doc: str | None, paths: tuple[str, ...], flags: Mapping[str, str]) -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(description=doc)
    command.add_argument("--params", default="params.yaml")
    for name in paths:
        command.add_argument(f"--{name.replace('_', '-')}", dest=name, required=True)
    for name, help_text in flags.items():
        command.add_argument(f"--{name.replace('_', '-')}", dest=name, action="store_true", help=help_text)
    return command


def run(
    doc: str | None,
    main: Callable[[Stage], None],
    *paths: str,
    flags: Mapping[str, str] | None = None,
    user_errors: tuple[type[BaseException], ...] = (),
    argv: list[str] | None = None,
) -> None:
    """Parse ``--params`` and one required ``--<path>`` per name, then run ``main`` as a stage;
    ``user_errors`` exit 1 with their message, as bad input does."""

    def stage_main() -> None:
        args = parser(doc, paths, flags or {}).parse_args(argv)
        main(Stage(args, load_params(args.params), getattr(main, "__module__", "stage")))

    run_stage(stage_main, user_errors)
