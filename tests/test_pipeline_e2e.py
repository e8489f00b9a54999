"""The real DVC pipeline, end to end, on a small synthetic sample in a temporary copy of the repo.

Nothing is mocked: DVC runs every stage, great-expectations validates, MLflow records into
a SQLite store inside the copy, and the exported model is loaded back by MLflow.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_support import N_APPLICATIONS, N_TRIALS, REPO, dvc, ran_stages, run, stage_env

pytestmark = pytest.mark.slow


def test_pipeline_tests_share_one_worker(pipeline: Path, request: pytest.FixtureRequest) -> None:
    """Every collected test of the pipeline fixture is in the xdist group "pipeline" (tests/conftest.py),
    so under `make test` (pytest-xdist, --dist loadgroup) they run on one worker, which builds the
    pipeline once. Checked in every mode; on an xdist worker, the run must group by it too (the
    group shows in the node id): another --dist would build the pipeline on every worker."""
    takers = [item for item in request.session.items if "pipeline" in getattr(item, "fixturenames", ())]
    assert request.node in takers
    for item in takers:
        groups = [m.args[0] if m.args else m.kwargs.get("name") for m in item.iter_markers("xdist_group")]
        assert groups == ["pipeline"], (item.nodeid, groups)
    if hasattr(request.config, "workerinput"):  # an xdist worker: grouping only works with loadgroup
        assert request.config.option.loadgroup, (
            "pytest-xdist without --dist loadgroup builds the pipeline per worker"
        )
        assert request.node.nodeid.endswith("@pipeline"), request.node.nodeid


def test_outputs_exist_and_metrics_are_sane(pipeline: Path) -> None:
    metrics = json.loads((pipeline / "reports/metrics.json").read_text())
    for split in ("test", "oot"):
        m = metrics[split]
        assert 0.75 < m["auc"] <= m["true_pd_auc"] + 0.02, m
        assert m["gini"] == pytest.approx(2 * m["auc"] - 1)
        assert 0 < m["brier"] < 0.15 and 0 < m["ks"] < 1
        assert abs(m["mean_pd"] - m["default_rate"]) < 0.04
    assert metrics["test"]["auc_gap_to_truth"] < 0.06
    for path in (
        "models/pd_model/MLmodel",
        "models/candidates/xgboost/booster.ubj",
        "reports/figures/roc.png",
        "reports/plots/roc_test.csv",
        "reports/validation/docs/index.html",
        "reports/validation/index.html",
    ):
        assert (pipeline / path).is_file(), path


def test_every_row_is_accounted_for(pipeline: Path) -> None:
    validation = json.loads((pipeline / "reports/validation/summary.json").read_text())
    split = json.loads((pipeline / "reports/split.json").read_text())
    assert validation["n_input"] == N_APPLICATIONS
    assert validation["n_passed"] + validation["n_quarantined"] == N_APPLICATIONS
    assert validation["n_quarantined"] == 0  # the synthetic portfolio breaks no rule
    quarantine = pd.read_parquet(pipeline / "data/validated/quarantine.parquet")
    assert len(quarantine) == 0 and "quarantine_reasons" in quarantine.columns
    drift = json.loads((pipeline / "reports/validation/drift.json").read_text())
    assert drift["available"] and drift["max_psi"] > 0  # the portfolio drifts over time
    page = (pipeline / "reports/validation/index.html").read_text()
    target = re.search(r"url=([^'\"]+)", page)
    assert target and (pipeline / "reports/validation" / target.group(1)).is_file()
    assert sum(p["n"] for p in split["parts"].values()) == N_APPLICATIONS
    scores = pd.read_parquet(pipeline / "data/scores/predictions.parquet")
    assert len(scores) == N_APPLICATIONS and scores["application_id"].is_unique


def test_metrics_are_visible_to_dvc(pipeline: Path) -> None:
    shown = json.loads(dvc(pipeline, "metrics", "show", "--json"))
    data = next(iter(shown.values()))["data"]
    headline = data["reports/metrics.json"]["data"]
    assert {"auc", "true_pd_auc"} <= set(headline["test"]) and "auc" in headline["oot"]


def test_mlflow_run_records_params_metrics_commit_digest_and_artifacts(pipeline: Path) -> None:
    from mlflow.tracking import MlflowClient

    run_id = json.loads((pipeline / "models/run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    run = client.get_run(run_id)
    assert run.data.params["train.xgboost.learning_rate"] == "0.05"
    assert run.data.params["data.synthetic.n_applications"] == str(N_APPLICATIONS)
    assert "test.auc" in run.data.metrics and "oot.true_pd_auc" in run.data.metrics
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", run.data.tags["git_commit"])
    assert re.fullmatch(r"[0-9a-f]{64}", run.data.tags["train_data_sha256"])
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"model_files", "figures", "pd_model", "metrics"} <= artifacts


def test_the_model_digest_is_in_the_registry_the_metrics_and_the_report(pipeline: Path) -> None:
    """One digest, the SHA-256 of models/pd_model/manifest.json, recorded where the exported
    folder's writer does not reach it: the registered version's tag (which loads by alias check),
    the export stage's DVC metrics file and the reviewer report."""
    from mlflow.tracking import MlflowClient

    from scoring.serving.integrity import DIGEST_TAG, verify_model_dir

    digest = verify_model_dir(pipeline / "models/pd_model").digest
    exported = json.loads((pipeline / "reports/export.json").read_text())
    assert exported["model_digest"] == digest and exported["uri"] == "models:/auto_loan_pd@champion"
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    version = client.get_model_version_by_alias("auto_loan_pd", "champion")
    assert str(version.version) == exported["registered_version"]
    assert version.tags[DIGEST_TAG] == digest
    run_id = json.loads((pipeline / "models/run.json").read_text())["run_id"]
    assert client.get_run(run_id).data.tags[DIGEST_TAG] == digest
    assert f"exported model digest {digest}" in (pipeline / "reports/review.html").read_text()
    shown = json.loads(dvc(pipeline, "metrics", "show", "--json"))
    assert "reports/export.json" in next(iter(shown.values()))["data"]


def test_the_history_reproduces_default_12m_and_the_monitor_ran(pipeline: Path) -> None:
    """`make run` builds the performance history and the monitoring page; 90+ within 12 months on
    book equals default_12m for every labelled loan."""
    from mlflow.tracking import MlflowClient

    applications = pd.read_parquet(pipeline / "data/validated/applications.parquet")
    history = pd.read_parquet(pipeline / "data/validated/performance.parquet")
    gate = json.loads((pipeline / "reports/validation/performance.json").read_text())
    assert gate["n_input"] == gate["n_passed"] + gate["n_quarantined"] and gate["n_quarantined"] == 0
    assert len(history) == gate["n_passed"] > 0
    early = history[history["months_on_book"] <= 12]
    defaulted = early["bucket"].isin(["M4+", "written_off"]).groupby(early["loan_id"]).any()
    labelled = applications.dropna(subset=["default_12m"]).set_index("application_id")["default_12m"]
    reached = defaulted.reindex(labelled.index, fill_value=False).astype(int)
    assert labelled.sum() > 0
    assert (reached == labelled.astype(int)).all()
    alerts = json.loads((pipeline / "reports/monitoring/alerts.json").read_text())
    assert set(alerts["rules"]) >= {"score_psi", "backtest", "early_delinquency"}
    page = (pipeline / "reports/monitoring/index.html").read_text()
    assert 'id="alerts"' in page and "<script src" not in page
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("credit-scoring")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'monitor'")
    assert runs and runs[0].data.tags["monitoring.overall"] == alerts["overall"]


def test_scoring_monitor_by_alias_matches_the_stage_and_logs_to_mlflow(
    pipeline: Path, tmp_path: Path
) -> None:
    """The command a scheduler runs, on the registered champion by alias, gives the monitor
    stage's alerts for the same batch and history, and records its own MLflow run."""
    from mlflow.tracking import MlflowClient

    out = tmp_path / "monitoring"
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "scoring"), "monitor",
            "--model", "models:/auto_loan_pd@champion",
            "--batch", "data/validated/applications.parquet",
            "--performance", "data/validated/performance.parquet", "--output-dir", str(out),
        ],
        cwd=pipeline, env=stage_env(pipeline), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    stage_alerts = json.loads((pipeline / "reports/monitoring/alerts.json").read_text())
    expected_exit = 3 if stage_alerts["overall"] == "red" else 0
    assert proc.returncode == expected_exit, proc.stderr[-3000:]
    assert json.loads((out / "alerts.json").read_text()) == stage_alerts
    stage_lights = pd.read_csv(pipeline / "reports/monitoring/lights.csv")
    pd.testing.assert_frame_equal(pd.read_csv(out / "lights.csv"), stage_lights)
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("credit-scoring")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "attributes.run_name = 'monitor-cli'")
    assert runs and runs[0].data.tags["monitoring.overall"] == stage_alerts["overall"]
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id, "monitoring")}
    assert {"monitoring/alerts.json", "monitoring/index.html"} <= artifacts


def test_collections_stage_writes_the_behaviour_model_and_the_queue(pipeline: Path) -> None:
    summary = json.loads((pipeline / "reports/collections.json").read_text())
    assert summary["behaviour"]["oot_auc"] > 0.7
    assert set(summary["capture_mean"]) >= {"queue_top_10%", "dpd_then_balance_top_10%", "balance_top_10%"}
    queue = pd.read_parquet(pipeline / "data/collections/queue.parquet")
    history = pd.read_parquet(pipeline / "data/validated/performance.parquet")
    last = history[history["as_of_month"] == history["as_of_month"].max()]
    delinquent = last[last["bucket"].isin(["M1", "M2", "M3"]) & (last["status"] == "active")]
    assert len(queue) == summary["queue"]["accounts"] == len(delinquent)
    champion = json.loads((pipeline / "models/behaviour/champion.json").read_text())["champion"]
    assert (pipeline / "models/behaviour/candidates" / champion).is_dir()
    assert not list((pipeline / "models/behaviour").rglob("*.pkl"))
    assert not list((pipeline / "models/behaviour_model").rglob("*.pkl"))
    page = (pipeline / "reports/collections/index.html").read_text()
    assert summary["model"]["digest"] in page and "Roll rates" in page


def test_the_behaviour_score_is_registered_and_scoring_collect_reproduces_the_queue(
    pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered behaviour model (by alias, its digest checked) scores the stage's queue rows
    as the stage did, and `scoring collect` on the pipeline's history and scores writes the same
    queue, every account of the month accounted for."""
    import mlflow

    summary = json.loads((pipeline / "reports/collections.json").read_text())
    model = summary["model"]
    assert model["uri"] == "models:/auto_loan_behaviour@champion"
    scoring = str(Path(sys.executable).parent / "scoring")
    verified = run([scoring, "verify", "--model", model["uri"]], pipeline)
    assert model["digest"] in " ".join(verified.stdout.split() + verified.stderr.split())
    out = tmp_path / "queue.parquet"
    history = pd.read_parquet(pipeline / "data/validated/performance.parquet")
    month = f"{pd.Timestamp(history['as_of_month'].max()):%Y-%m}"
    run(
        [
            scoring, "collect", "--history", "data/validated/performance.parquet", "--month", month,
            "--scores", "data/scores/predictions.parquet", "--output", str(out),
        ],
        pipeline,
    )  # fmt: skip
    stage_queue = pd.read_parquet(pipeline / "data/collections/queue.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), stage_queue, check_exact=True)
    held = pd.read_parquet(tmp_path / "queue.held.parquet")
    assert (
        len(stage_queue) + len(held)
        == history.loc[history["as_of_month"] == history["as_of_month"].max(), "loan_id"].nunique()
    )
    # the registered pyfunc, loaded by MLflow from the copy's registry
    monkeypatch.chdir(pipeline)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    served = mlflow.pyfunc.load_model(model["uri"]).predict(_queue_rows(pipeline, stage_queue))
    np.testing.assert_array_equal(served["behaviour_pd"].to_numpy(), stage_queue["behaviour_pd"].to_numpy())
    assert served["loan_id"].tolist() == stage_queue["loan_id"].tolist()


def _queue_rows(pipeline: Path, queue: pd.DataFrame) -> pd.DataFrame:
    """The account-month snapshots of the queue's accounts, in the queue's order, as a caller sends them."""
    from scoring.collections.behaviour import account_snapshots
    from scoring.config import load_params

    history = pd.read_parquet(pipeline / "data/validated/performance.parquet")
    apps = pd.read_parquet(pipeline / "data/validated/applications.parquet")
    scores = pd.read_parquet(
        pipeline / "data/scores/predictions.parquet", columns=["application_id", "pd", "score"]
    )
    snaps = account_snapshots(
        history, apps, scores, load_params(pipeline / "params.yaml").collections.depreciation
    )
    last = snaps[snaps["as_of_month"] == history["as_of_month"].max()].set_index("loan_id")
    rows = last.loc[queue["loan_id"]].reset_index()
    rows["as_of_month"] = pd.to_datetime(rows["as_of_month"]).dt.strftime("%Y-%m-%d")
    return rows


def test_truth_reaches_evaluation_only() -> None:
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    readers = [
        name for name, stage in stages.items() if any("data/truth" in d for d in stage.get("deps", []))
    ]
    assert readers == ["evaluate"]
    for name, stage in stages.items():
        if name != "evaluate" and name != "prepare":
            assert "truth" not in stage["cmd"], name


def test_exported_model_reproduces_pipeline_pds_from_csv(pipeline: Path, tmp_path: Path) -> None:
    test = pd.read_parquet(pipeline / "data/split/test.parquet").drop(columns="default_12m")
    raw_csv = tmp_path / "applications.csv"
    test.head(500).to_csv(raw_csv, index=False)
    out = tmp_path / "scores.parquet"
    run(
        [
            str(Path(sys.executable).parent / "scoring"),
            "score",
            "--model",
            "models/pd_model",
            "--input",
            str(raw_csv),
            "--output",
            str(out),
        ],
        pipeline,
    )
    from scoring.serving.scorer import OUTPUT_COLUMNS

    scored = pd.read_parquet(out)
    predictions = pd.read_parquet(pipeline / "data/scores/predictions.parquet")
    assert {"split", "default_12m", "pd_raw", *OUTPUT_COLUMNS} <= set(predictions.columns)
    expected = predictions.set_index("application_id").loc[scored["application_id"]].reset_index()
    assert len(scored) == 500 and list(scored.columns) == list(OUTPUT_COLUMNS)
    assert (expected["split"] == "test").all()
    # every output column, exactly: the CLI on the exported model against the evaluate stage
    pd.testing.assert_frame_equal(scored, expected[list(OUTPUT_COLUMNS)], check_exact=True)
    assert {"approve", "decline"} <= set(scored["decision"])
    assert (scored.loc[scored["decision"] == "decline", "suggested_limit"] == 0).all()
    np.testing.assert_array_equal(scored["pd"].to_numpy(), expected["pd"].to_numpy())


# The folders the stages from train on write into (dvc.yaml's outs of train ... report).
RERUN_OUTPUTS = ("models", "reports", "data/scores", "data/collections")


def test_second_repro_runs_nothing_and_training_param_reruns_only_downstream(
    pipeline: Path, tmp_path: Path
) -> None:
    assert ran_stages(dvc(pipeline, "repro")) == []
    params_path = pipeline / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["train"]["scorecard"]["pdo"] = 40
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # What the rerun rewrites, kept aside and put back afterwards: cheaper than rerunning the
    # downstream stages once more, and the copy is the fixture's pipeline again, byte for byte.
    kept = tmp_path / "kept"
    for name in RERUN_OUTPUTS:
        shutil.copytree(pipeline / name, kept / name)
    shutil.copy2(pipeline / "dvc.lock", kept / "dvc.lock")
    try:
        assert ran_stages(dvc(pipeline, "repro")) == [
            "train", "calibrate", "explain", "evaluate", "export", "monitor", "collect", "whatif",
            "fairness", "report",
        ]  # fmt: skip
    finally:
        params_path.write_text(original)
        for name in RERUN_OUTPUTS:
            shutil.rmtree(pipeline / name)
            shutil.copytree(kept / name, pipeline / name)
        shutil.copy2(kept / "dvc.lock", pipeline / "dvc.lock")
    assert ran_stages(dvc(pipeline, "repro")) == []  # back to the original parameters and outputs


def test_more_trials_resume_the_stored_study(pipeline: Path) -> None:
    first = json.loads((pipeline / "models/tuned_xgboost.json").read_text())
    assert first["n_trials_total"] == N_TRIALS
    params_path = pipeline / "params.yaml"
    original = params_path.read_text()
    params = yaml.safe_load(original)
    params["tune"]["n_trials"] = N_TRIALS + 2
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # The resumed study may find better parameters; the tune stage's outputs and dvc.lock are
    # put back afterwards so that the copy stays the fixture's pipeline for the tests that follow.
    plots = sorted(p for p in (pipeline / "reports/tuning").rglob("*") if p.is_file())
    kept = {
        path: path.read_bytes()
        for path in [
            *(
                pipeline / name
                for name in ("models/tuned_xgboost.json", "models/tuning/study.journal", "dvc.lock")
            ),
            *plots,
        ]
    }
    try:
        assert ran_stages(dvc(pipeline, "repro", "tune"))[0] == "tune"
        resumed = json.loads((pipeline / "models/tuned_xgboost.json").read_text())
        assert resumed["study_name"] == first["study_name"]
        assert resumed["n_trials_total"] == N_TRIALS + 2 and "n_trials_new" not in resumed
        assert resumed["best_value"] >= first["best_value"]
    finally:
        params_path.write_text(original)
        for stale in (pipeline / "reports/tuning").rglob("*"):
            if stale.is_file() and stale not in kept:
                stale.unlink()
        for path, content in kept.items():
            path.write_bytes(content)
    assert ran_stages(dvc(pipeline, "repro")) == []  # the pipeline as the fixture left it


def test_champion_is_chosen_by_the_rule_and_both_models_are_reported(pipeline: Path) -> None:
    from scoring.config import load_params
    from scoring.models.training import choose_champion
    from scoring.serving.bundle import ModelBundle

    champion = json.loads((pipeline / "models/champion.json").read_text())
    metrics = json.loads((pipeline / "reports/metrics.json").read_text())
    train = json.loads((pipeline / "reports/train.json").read_text())
    config = load_params(pipeline / "params.yaml").train
    rule = config.champion
    # The rule over every candidate's recorded figure (cv: out-of-fold over train) gives the champion.
    assert champion["selection"] == rule.selection
    assert champion["candidates"] == config.candidates and set(champion["auc"]) == set(config.candidates)
    assert champion["champion"] == choose_champion(champion["auc"], rule, config.candidates)[0]
    blend = champion["details"]["blend"]
    assert blend["weight"] in config.candidate_settings("blend").weights  # type: ignore[attr-defined]
    assert champion["auc"]["blend"] == max(blend["auc_by_weight"].values())
    assert train["champion"] == metrics["champion"] == champion["champion"]
    bundle = ModelBundle(pipeline / "models")
    assert bundle.load_model().kind == champion["champion"]
    assert all((pipeline / "models" / name).is_file() for name in bundle.model_files())
    for kind in config.candidates:
        assert train[kind][f"{rule.selection}_auc"] == champion["auc"][kind]
        assert {"valid", "test", "oot"} <= set(metrics["models"][kind])
    assert metrics["test"]["auc"] == metrics["models"][champion["champion"]]["test"]["auc"]
    # fit_on train_valid (params default): chosen out of fold over train+valid, refitted there,
    # and calibrated on exactly those out-of-fold predictions.
    assert champion["fit_on"] == train["fit_on"] == "train_valid"
    assert champion["fit_splits"] == metrics["in_sample_splits"] == ["train", "valid"]
    assert champion["n_fit"] == champion["n_rows"] == train["n_train"] + train["n_valid"]
    held_out = pd.read_parquet(pipeline / "data/scores/calibration_set.parquet")
    counts = held_out["split"].value_counts().to_dict()
    assert counts == {"train": train["n_train"], "valid": train["n_valid"]}
    calibration = json.loads((pipeline / "reports/calibration_report.json").read_text())
    assert calibration["fitted_on"]["source"] == "out_of_fold"
    assert calibration["calibrator"]["n_fit"] == calibration["fitted_on"]["rows"] == len(held_out)
    table = pd.read_csv(pipeline / "reports/scorecard/table.csv")
    assert {"variable", "bin", "woe", "iv", "points"} <= set(table.columns)


# What a forced rerun rewrites with other bytes, and why: neither is a DVC output. Every file the
# stages write must come back byte for byte (a run id or a time lives in MLflow and the logs).
CARRIES_TIME_OR_RUN_ID = {
    "models/run.json": "the new MLflow run's id (a record of the workspace, not an output)",
    "models/tuning/study.journal": "optuna's log, not a DVC output: each run appends its session",
}


def _stage_files(pipeline: Path) -> dict[str, str]:
    import hashlib

    files = {}
    for top in ("data", "models", "reports"):
        for path in (pipeline / top).rglob("*"):
            name = path.relative_to(pipeline).as_posix()
            if path.is_file() and "__pycache__" not in name:
                files[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def test_a_forced_full_repro_gives_the_same_bytes(pipeline: Path) -> None:
    """`dvc repro --force`: every stage reruns from the same data and params; every model file,
    the exported model's files (so its digest), every report and dvc.lock come back byte for
    byte; the registry keeps its version (the same digest is not registered again). Only the two
    listed files, which are not outputs, differ. A second repro is a no-op."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    versions = len(client.search_model_versions("name = 'auto_loan_pd'"))
    lock = (pipeline / "dvc.lock").read_bytes()
    before = _stage_files(pipeline)
    assert "models/candidates/xgboost/booster.ubj" in before
    assert "models/pd_model/artifacts/model_files/candidates/xgboost/booster.ubj" in before
    stages = list(yaml.safe_load((pipeline / "dvc.yaml").read_text())["stages"])
    assert ran_stages(dvc(pipeline, "repro", "--force")) == stages
    after = _stage_files(pipeline)
    assert sorted(after) == sorted(before), "the forced rerun wrote other files"
    changed = sorted(name for name in before if before[name] != after[name])
    unexpected = [name for name in changed if name not in CARRIES_TIME_OR_RUN_ID]
    assert not unexpected, f"rewritten with other bytes: {unexpected}"
    assert "models/run.json" in changed  # a new run: the comparison saw the rewrite
    assert (pipeline / "dvc.lock").read_bytes() == lock, "dvc.lock changed: an output is not the same"
    assert len(client.search_model_versions("name = 'auto_loan_pd'")) == versions
    tuned = json.loads((pipeline / "models/tuned_xgboost.json").read_text())
    assert tuned["n_trials_total"] == N_TRIALS and not tuned["stopped_by_time_limit"]  # the same study
    assert ran_stages(dvc(pipeline, "repro")) == []


def test_the_age_override_is_trained_exported_reported_and_in_the_workbook(pipeline: Path) -> None:
    """Issue 20 on the pipeline: scorecard_bins.yaml's age entry (the optimiser's [23.5, 25.5) and
    [25.5, 28.5) merged) is the trained and the exported scorecard's age bins, the exported model
    scores two ages of the merged bin alike, the report shows the entry with its reason and its
    IV and AUC cost, and the workbook's points reproduce the exported scorecard's score of the
    golden applications. (The forced full repro above reran every stage with the file in place
    and gave the same bytes: the override survives retraining.)"""
    import openpyxl

    from scoring.models.scorecard import ScorecardModel
    from scoring.reporting.workbook import BINS_SHEET
    from scoring.serving.registry import load_verified_scorer
    from test_scorecard_report import score_by_hand

    entry = yaml.safe_load((pipeline / "scorecard_bins.yaml").read_text())["synthetic"]["age"]
    splits = tuple(entry["splits"])
    trained = json.loads((pipeline / "models/candidates/scorecard/scorecard.json").read_text())
    age = next(f for f in trained["features"] if f["name"] == "age")
    assert tuple(age["splits"]) == splits
    assert {o["variable"]: o["reason"] for o in trained["settings"]["overrides"]} == {"age": entry["reason"]}

    scorer, _ = load_verified_scorer(pipeline / "models/pd_model")  # the files' hashes are checked
    estimator = scorer.model.estimator
    exported = estimator if isinstance(estimator, ScorecardModel) else estimator.parts()["scorecard"]
    assert isinstance(exported, ScorecardModel)
    assert next(f for f in exported.features if f.name == "age").splits == splits
    golden = pd.read_csv(REPO / "tests/data/golden_applications.csv")
    two = pd.concat([golden.head(1)] * 3, ignore_index=True).assign(age=[24, 27, 23])
    points = exported.points(scorer.model.feature_matrix(two))["age"].to_numpy()
    assert points[0] == points[1] != points[2]  # 24 and 27 share the merged bin; 23 is below it

    selection = json.loads((pipeline / "reports/scorecard/selection.json").read_text())
    (cost,) = selection["overrides"]
    assert cost["variable"] == "age" and cost["kind"] == "splits" and cost["reason"] == entry["reason"]
    assert cost["bins_override"][1] == "[23.5, 28.5)"
    for figure in ("iv_optimiser", "iv_override", "iv_cost", "auc_optimiser", "auc_override", "auc_cost"):
        assert isinstance(cost[figure], float), figure
    page = (pipeline / "reports/review.html").read_text()
    assert 'id="scorecard"' in page
    assert "a two-year band cannot be defended" in page
    assert f"(cost {cost['iv_cost']:.4f})" in page and f"(cost {cost['auc_cost']:.4f})" in page

    book = openpyxl.load_workbook(pipeline / "reports/scorecard/scorecard.xlsx", data_only=True)
    rows = list(book[BINS_SHEET].iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    bins = [dict(zip(header, r, strict=False)) for r in rows[1:] if any(v is not None for v in r)]
    X = scorer.model.feature_matrix(golden)
    np.testing.assert_allclose(score_by_hand(bins, X), exported.score(X), rtol=0, atol=1e-6)


def test_a_bad_override_stops_train_before_any_fit(pipeline: Path, tmp_path: Path) -> None:
    """An entry that does not fit the data stops the train stage with the variable and the entry
    named, before anything is fitted or written. The stage runs as dvc.yaml runs it, on the
    pipeline's inputs, with params pointing at a bad bins file and its outputs in tmp_path (dvc
    repro would delete the pipeline's own outputs before the stage failed)."""
    command = yaml.safe_load((pipeline / "dvc.yaml").read_text())["stages"]["train"]["cmd"].split()
    outputs = {"--model-dir", "--scorecard-table", "--run-info", "--summary", "--calibration-set"}
    outputs |= {"--reference-dir", "--selection"}
    for i, arg in enumerate(command[:-1]):
        if arg in outputs:
            command[i + 1] = str(tmp_path / "out" / arg.removeprefix("--"))
    shutil.copy(pipeline / "models/features.json", tmp_path / "features.json")
    command[command.index("--features") + 1] = str(tmp_path / "features.json")
    bins = tmp_path / "bins.yaml"
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["train"]["scorecard"]["bins_file"] = str(bins)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cases = [
        ("agee: {splits: [30], reason: typo}", "variable 'agee', entry splits: no such variable"),
        ("age: {splits: [30, 25], reason: r}", "cut points [30, 25] are not in increasing order"),
        ("age: {splits: [25, 150], reason: r}", "cut point 150 is out of range"),
        ("housing_status: {groups: [[own, rent], [rent]], reason: r}", "level 'rent' is already in group 1"),
        ("age: {trend: upwards, reason: r}", "'upwards' is not a trend"),
    ]
    for entry, message in cases:
        bins.write_text(f"synthetic:\n  {entry}\n")
        proc = subprocess.run(
            [*command[:2], "--params", str(tmp_path / "params.yaml"), *command[2:]],
            cwd=pipeline, env=stage_env(pipeline), capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1, output[-3000:]
        assert f"error: {bins} synthetic: " in output and message in output, output[-3000:]
        assert "scorecard: " not in output  # no scorecard was fitted (its fit logs this line)
        assert not (tmp_path / "out").exists()  # nothing written
    assert ran_stages(dvc(pipeline, "repro")) == []


def test_grades_decisions_and_tests_are_produced(pipeline: Path) -> None:
    metrics = json.loads((pipeline / "reports/calibration.json").read_text())
    report = json.loads((pipeline / "reports/calibration_report.json").read_text())
    scale = json.loads((pipeline / "models/master_scale.json").read_text())
    assert metrics["n_grades"] >= 3
    table = pd.read_csv(pipeline / "reports/grades/grades_test.csv")
    assert (
        table["count"].sum()
        == json.loads((pipeline / "reports/split.json").read_text())["parts"]["test"]["n"]
    )
    tests = report["test"]["tests"]
    assert len(tests["grades"]) == metrics["n_grades"] == len(scale["boundaries"]) + 1
    assert {"jeffreys", "binomial"} <= set(tests["summary"])
    portfolio = report["test"]["portfolio"]
    assert 0 < portfolio["approval_rate"] < 1
    swap = report["swap_set"]
    parts = ("both_approve", "only_a", "only_b", "both_decline")
    assert sum(swap[k]["count"] for k in parts) == table["count"].sum()
    evaluated = json.loads((pipeline / "reports/metrics.json").read_text())["calibrated"]["test"]
    assert 0 <= evaluated["mae_true"] < 0.05 and evaluated["ece"] < 0.05
