"""DVC stage `prepare`: load the source (synthetic generator or the analyst's file) and the loans'
monthly performance history (generated from the same truth, or `data.performance.path`)."""

from __future__ import annotations

from scoring.core.io import write_parquet, write_text
from scoring.data.performance import empty_history, load_history
from scoring.data.prepare import prepare_source
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    prepared = prepare_source(params.data, params.seed)
    write_parquet(stage.path("applications"), prepared.applications)
    write_parquet(stage.path("truth"), prepared.truth)
    write_text(stage.path("dataset"), prepared.spec.to_json() + "\n")
    # The history is drawn from the truth, so it is made here, the one stage before evaluation
    # that may read it; no history (a file source without one) is an empty frame.
    history, _ = load_history(params.data, prepared.applications, prepared.truth, params.seed)
    write_parquet(stage.path("performance"), empty_history() if history is None else history)


if __name__ == "__main__":
    run(__doc__, main, "applications", "dataset", "truth", "performance")
