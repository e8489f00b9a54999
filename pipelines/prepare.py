"""DVC stage `prepare`: load the source (synthetic generator or the analyst's file)."""

from __future__ import annotations

import argparse

from scoring.config import load_params
from scoring.core.io import write_parquet, write_text
from scoring.data.prepare import prepare_source
from scoring.runtime import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--applications", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--truth", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    prepared = prepare_source(params.data, params.seed)
    write_parquet(args.applications, prepared.applications)
    write_parquet(args.truth, prepared.truth)
    write_text(args.dataset, prepared.spec.to_json() + "\n")


if __name__ == "__main__":
    run_stage(main)
