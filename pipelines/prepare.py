"""DVC stage `prepare`: load the source (synthetic generator or the analyst's file) and the loans'
monthly performance history (generated from the same truth, or `data.performance.path`).

Outputs are dataset folders (one Parquet part per partition). The synthetic portfolio is written
block by block, one part each; with ``engine: dask`` the blocks are generated in parallel on the
cluster, with the same rows.
"""

from __future__ import annotations

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import write_dataset, write_text
from scoring.data.performance import empty_history, load_history
from scoring.data.prepare import prepare_source, write_synthetic_portfolio
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    if params.data.source == "synthetic" and params.data.performance.path is None:
        config = params.data.synthetic
        names = (
            ("applications", "truth", "performance")
            if config.performance_history
            else ("applications", "truth")
        )
        with stage.engine_client():
            write_synthetic_portfolio(
                config,
                params.seed,
                {n: stage.path(n) for n in names},
                parallel=stage.on_dask,
                policy=params.reject_inference.policy if params.reject_inference.enabled else None,
            )
        if not config.performance_history:
            write_dataset(stage.path("performance"), empty_history())
        write_text(stage.path("dataset"), SYNTHETIC_SPEC.to_json() + "\n")
        return
    # An analyst's file is read whole, here, on either engine (one part).
    prepared = prepare_source(params.data, params.seed)
    write_dataset(stage.path("applications"), prepared.applications)
    write_dataset(stage.path("truth"), prepared.truth)
    write_text(stage.path("dataset"), prepared.spec.to_json() + "\n")
    # The history is drawn from the truth, so it is made here, the one stage before evaluation
    # that may read it; no history (a file source without one) is an empty frame.
    history, _ = load_history(params.data, prepared.applications, prepared.truth, params.seed)
    write_dataset(stage.path("performance"), empty_history() if history is None else history)


if __name__ == "__main__":
    run(__doc__, main, "applications", "dataset", "truth", "performance")
