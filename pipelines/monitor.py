"""DVC stage `monitor`: the exported model watched over the portfolio's months.

Scores every validated application with the exported model (verified against its manifest),
compares each application month with the model's reference profile (score PSI, CSI per input,
approval rate, grade mix), back-tests matured cohorts against the performance history, draws
vintages and roll rates, and raises early-warning alerts (scoring.monitoring.monitor). Writes the
tables, reports/monitoring/alerts.json, the page reports/monitoring/index.html and an MLflow run.
A red alert does not fail the stage (it is the pipeline's record); `scoring monitor` exits 3 on red.
"""

from __future__ import annotations

from scoring.core.io import read_parquet
from scoring.monitor_files import log_to_mlflow, monitor_model, write_monitoring
from scoring.stages import Stage, run


def main(stage: Stage) -> None:
    params = stage.params
    # every row up to params sample_rows; beyond, a seeded sample by customer
    batch = stage.read_sample(stage.path("applications"))
    history = read_parquet(stage.path("history"))
    monitored = monitor_model(stage.path("model"), batch, params, history if len(history) else None)
    paths = write_monitoring(monitored, stage.path("out_dir"), params, model_label=params.export.model_name)
    log_to_mlflow(monitored, paths, params.export.experiment_name)


if __name__ == "__main__":
    run(__doc__, main, "model", "applications", "dataset", "history", "out_dir")
