"""DVC stage `validate`: the great-expectations gate.

Critical failures stop the pipeline with the reason; rows failing row-level rules go to the
quarantine file with one reason code per failed rule; the rest go on. Input rows = passed +
quarantined, checked and recorded in the summary.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from scoring.config import load_params
from scoring.core.contract import DatasetSpec
from scoring.core.io import read_parquet, write_json, write_parquet, write_text
from scoring.data.leakage import with_leaky_columns_dropped
from scoring.data.validation import DataValidationError, apply_gate, results_redirect, validate_frame
from scoring.monitoring.stability import drift_report
from scoring.runtime import run_stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--applications", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True, help="rows that passed")
    parser.add_argument("--quarantine", required=True, help="rows held back, with their reasons")
    parser.add_argument("--out-dataset", required=True, help="dataset spec with leaky columns dropped")
    parser.add_argument("--summary", required=True)
    parser.add_argument("--report", required=True, help="every expectation's outcome")
    parser.add_argument("--drift", required=True)
    parser.add_argument("--docs", required=True)
    parser.add_argument("--results-page", required=True, help="a page that opens this run's results")
    args = parser.parse_args()

    params = load_params(args.params)
    config = params.validate_
    frame = read_parquet(args.applications)
    prepared_spec = DatasetSpec.from_json(Path(args.dataset).read_text(encoding="utf-8"))
    spec = with_leaky_columns_dropped(prepared_spec, list(frame.columns), config.leakage)
    # The declared bounds travel with the dataset, so the exported model checks them too.
    spec = replace(
        spec,
        value_ranges={
            column: {"min": rule.min, "max": rule.max}
            for column, rule in sorted(config.ranges.items())
            if column in frame.columns
        },
    )
    report = validate_frame(frame, spec, config, docs_dir=Path(args.docs))
    write_text(args.results_page, results_redirect(Path(args.docs), Path(args.results_page).parent))
    # Written before the gate decides, so a stopped run still leaves the full outcome to read.
    write_json(args.report, report.to_dict())
    gate = apply_gate(frame, report, config)
    drift = drift_report(gate.passed, spec, config.drift)
    summary = {
        **gate.summary,
        "n_expectations": len(report.outcomes),
        "dropped_as_leaky": sorted(set(spec.drop_columns) - set(prepared_spec.drop_columns)),
        "drift_max_psi": drift.get("max_psi"),
        "drift_n_moderate": drift.get("n_moderate"),
        "drift_n_significant": drift.get("n_significant"),
    }
    write_parquet(args.out, gate.passed)
    write_parquet(args.quarantine, gate.quarantine)
    write_text(args.out_dataset, spec.to_json() + "\n")
    write_json(args.drift, drift)
    write_json(args.summary, summary)


if __name__ == "__main__":
    run_stage(main, user_errors=(DataValidationError,))
