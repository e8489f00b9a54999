"""DVC stage `validate`: the great-expectations gate.

Critical failures stop the pipeline with the reason; rows failing row-level rules go to the
quarantine file with one reason code per failed rule; the rest go on. Input rows = passed +
quarantined, checked and recorded in the summary.
"""

from __future__ import annotations

from dataclasses import replace

from scoring.core.io import read_parquet, write_dataset, write_json, write_text
from scoring.data.leakage import with_leaky_columns_dropped
from scoring.data.validation import DataValidationError, apply_gate, results_redirect, validate_frame
from scoring.monitoring.stability import drift_report
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    config = params.validate_
    frame = read_parquet(stage.path("applications"))
    prepared_spec = stage.spec
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
    report = validate_frame(frame, spec, config, docs_dir=stage.path("docs"))
    write_text(
        stage.path("results_page"), results_redirect(stage.path("docs"), stage.path("results_page").parent)
    )
    # Written before the gate decides, so a stopped run still leaves the full outcome to read.
    write_json(stage.path("report"), report.to_dict())
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
    write_dataset(stage.path("out"), gate.passed)
    write_dataset(stage.path("quarantine"), gate.quarantine)
    write_text(stage.path("out_dataset"), spec.to_json() + "\n")
    write_json(stage.path("drift"), drift)
    write_json(stage.path("summary"), summary)


if __name__ == "__main__":
    run(
        __doc__,
        main,
        "applications",
        "dataset",
        "out",
        "quarantine",
        "out_dataset",
        "summary",
        "report",
        "drift",
        "docs",
        "results_page",
        user_errors=(DataValidationError,),
    )
