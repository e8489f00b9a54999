"""DVC stage `performance`: the gate of the loans' monthly performance history.

`prepare` writes the history (generated with the synthetic portfolio, or the analyst's file); here
its own rules (scoring.data.history_gate) quarantine whole loans with reasons, against the
applications and those the application gate passed. Input rows = passed + quarantined, in the summary.
"""

from __future__ import annotations

from scoring.core.io import read_parquet, write_dataset, write_json
from scoring.data.history_gate import check_history
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    history = read_parquet(stage.path("history"))
    id_column = stage.spec.id_column
    applications = read_parquet(stage.path("applications"))
    generated = params.data.source == "synthetic" and params.data.synthetic.performance_history
    if history.empty and params.data.performance.path is None and not generated:
        reason = (
            "no history generated (data.synthetic.performance_history: false)"
            if params.data.source == "synthetic"
            else "no history given (data.performance.path)"
        )
        write_dataset(stage.path("out"), history)
        write_dataset(stage.path("quarantine"), history)
        write_json(stage.path("summary"), {"available": False, "reason": reason})
        return
    passed_ids = read_parquet(stage.path("validated"), columns=[id_column])[id_column].astype(str)
    amounts = (
        applications.set_index(applications[id_column].astype(str))["loan_amount"]
        if "loan_amount" in applications.columns and stage.spec.follows_auto_loan_contract
        else None
    )
    gate = check_history(
        history, applications[id_column].astype(str), passed_ids, amounts, params.validate_.performance
    )
    source = str(params.data.performance.path or "synthetic")
    write_dataset(stage.path("out"), gate.passed)
    write_dataset(stage.path("quarantine"), gate.quarantine)
    write_json(stage.path("summary"), {"available": True, "source": source, **gate.summary})


if __name__ == "__main__":
    run(__doc__, main, "history", "applications", "validated", "dataset", "out", "quarantine", "summary")
