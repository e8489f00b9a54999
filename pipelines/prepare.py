"""DVC stage `prepare`: load the source (synthetic generator or the analyst's file)."""

from __future__ import annotations

from scoring.core.io import write_parquet, write_text
from scoring.data.prepare import prepare_source
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    prepared = prepare_source(params.data, params.seed)
    write_parquet(stage.path("applications"), prepared.applications)
    write_parquet(stage.path("truth"), prepared.truth)
    write_text(stage.path("dataset"), prepared.spec.to_json() + "\n")


if __name__ == "__main__":
    run(__doc__, main, "applications", "dataset", "truth")
