"""DVC stage `validate`: the great-expectations gate.

Critical failures stop the pipeline with the reason; rows failing row-level rules go to the
quarantine folder with one reason code per failed rule; the rest go on. Input rows = passed +
quarantined, checked and recorded in the summary.

With ``engine: dask`` the suite runs on every partition on the cluster and the rules across rows
(unique ids, both classes, the default rate, null shares) are computed over all of them
(:mod:`scoring.data.validation_dask`): the same report, quarantine and summary. The drift
report reads the fit sample of the passed rows (params ``sample_rows``; every row up to it).
"""

from __future__ import annotations

from dataclasses import replace

from scoring.core.contract import DatasetSpec
from scoring.core.io import parquet_rows, read_parquet, write_dataset, write_json, write_text
from scoring.data.leakage import with_leaky_columns_dropped
from scoring.data.sampling import fit_sample, fit_sample_dask
from scoring.data.validation import DataValidationError, apply_gate, results_redirect, validate_frame
from scoring.monitoring.stability import drift_report
from scoring.stages import Stage, run


def _gate_spec(stage: Stage, columns: list[str]) -> DatasetSpec:
    config = stage.params.validate_
    spec = with_leaky_columns_dropped(stage.spec, columns, config.leakage)
    # The declared bounds travel with the dataset, so the exported model checks them too.
    return replace(
        spec,
        value_ranges={
            column: {"min": rule.min, "max": rule.max}
            for column, rule in sorted(config.ranges.items())
            if column in columns
        },
    )


def main(stage: Stage) -> None:
    params = stage.params
    config = params.validate_
    docs = stage.path("docs")
    if stage.on_dask:
        from scoring.core.partitioned import read_dask, write_frames_dask
        from scoring.data.validation_dask import apply_gate_dask, validate_dask

        with stage.engine_client():
            frame = read_dask(stage.path("applications"))
            spec = _gate_spec(stage, [str(c) for c in frame.columns])
            report = validate_dask(frame, spec, config, docs_dir=docs)
            write_text(stage.path("results_page"), results_redirect(docs, stage.path("results_page").parent))
            # Written before the gate decides, so a stopped run still leaves the full outcome to read.
            write_json(stage.path("report"), report.to_dict())
            dask_gate = apply_gate_dask(frame, report, config)
            write_frames_dask(
                {"out": dask_gate.passed, "quarantine": dask_gate.quarantine},
                {"out": stage.path("out"), "quarantine": stage.path("quarantine")},
            )
            passed = read_dask(stage.path("out"))
            sample = fit_sample_dask(
                passed, spec, params.sample_rows, params.seed, parquet_rows(stage.path("out"))
            )
        gate_summary = dask_gate.summary
    else:
        frame = read_parquet(stage.path("applications"))
        spec = _gate_spec(stage, list(frame.columns))
        report = validate_frame(frame, spec, config, docs_dir=docs)
        write_text(stage.path("results_page"), results_redirect(docs, stage.path("results_page").parent))
        write_json(stage.path("report"), report.to_dict())
        gate = apply_gate(frame, report, config)
        write_dataset(stage.path("out"), gate.passed)
        write_dataset(stage.path("quarantine"), gate.quarantine)
        sample = fit_sample(gate.passed, spec, params.sample_rows, params.seed)
        gate_summary = gate.summary
    drift = drift_report(sample, spec, config.drift)
    summary = {
        **gate_summary,
        "n_expectations": len(report.outcomes),
        "dropped_as_leaky": sorted(set(spec.drop_columns) - set(stage.spec.drop_columns)),
        "drift_max_psi": drift.get("max_psi"),
        "drift_n_moderate": drift.get("n_moderate"),
        "drift_n_significant": drift.get("n_significant"),
    }
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
