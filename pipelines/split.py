"""DVC stage `split`: out-of-time and train/valid/test splits, customers never on two sides."""

from __future__ import annotations

from scoring.core.io import read_parquet, write_json, write_parquet
from scoring.data.split import split_applications
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    spec = stage.spec
    result = split_applications(read_parquet(stage.path("applications")), spec, params.split, params.seed)
    for name, part in result.parts.items():
        write_parquet(stage.path("out_dir") / f"{name}.parquet", part)
    write_json(stage.path("summary"), result.summary)


if __name__ == "__main__":
    run(__doc__, main, "applications", "dataset", "out_dir", "summary")
