"""DVC stage `validate`: the great-expectations gate; a failure stops the pipeline with the reason."""

from __future__ import annotations

import argparse
from pathlib import Path

from scoring.config import load_params
from scoring.contract import DatasetSpec
from scoring.io import read_parquet, write_json, write_parquet
from scoring.runtime import run_stage
from scoring.validation import DataValidationError, raise_for_failures, validate_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--applications", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--summary", required=True)
    parser.add_argument("--docs", required=True)
    args = parser.parse_args()

    params = load_params(args.params)
    spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    frame = read_parquet(args.applications)
    report = validate_frame(frame, spec, params.validate_, docs_dir=Path(args.docs))
    summary = report.to_dict()
    summary["n_input"] = len(frame)
    summary["n_passed"] = len(frame) if report.success else 0
    write_json(args.summary, summary)
    raise_for_failures(report)
    write_parquet(args.out, frame)


if __name__ == "__main__":
    run_stage(main, user_errors=(DataValidationError,))
