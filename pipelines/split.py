"""DVC stage `split`: out-of-time and train/valid/test splits, customers never on two sides.

With ``engine: dask`` the rows are assigned partition by partition on the cluster (the same
rule and the same parts; :mod:`scoring.data.split_dask`).
"""

from __future__ import annotations

from scoring.core.io import read_parquet, write_dataset, write_json
from scoring.data.split import split_applications
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    spec = stage.spec
    out_dir = stage.path("out_dir")
    if stage.on_dask:
        from scoring.core.partitioned import read_dask, write_frames_dask
        from scoring.data.split_dask import split_applications_dask

        with stage.engine_client():
            split = split_applications_dask(
                read_dask(stage.path("applications")), spec, params.split, params.seed
            )
            write_frames_dask(split.parts, {name: out_dir / f"{name}.parquet" for name in split.parts})
        write_json(stage.path("summary"), split.summary)
        return
    result = split_applications(read_parquet(stage.path("applications")), spec, params.split, params.seed)
    for name, part in result.parts.items():
        write_dataset(out_dir / f"{name}.parquet", part)
    write_json(stage.path("summary"), result.summary)


if __name__ == "__main__":
    run(__doc__, main, "applications", "dataset", "out_dir", "summary")
