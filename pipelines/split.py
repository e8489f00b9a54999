"""DVC stage `split`: out-of-time and train/valid/test splits, customers never on two sides."""

from __future__ import annotations

import argparse
from pathlib import Path

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_parquet, write_json, write_parquet
from scoring.data.split import split_applications
from scoring.runtime import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--applications", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    result = split_applications(read_parquet(args.applications), spec, params.split, params.seed)
    for name, part in result.parts.items():
        write_parquet(Path(args.out_dir) / f"{name}.parquet", part)
    write_json(args.summary, result.summary)


if __name__ == "__main__":
    run_stage(main)
