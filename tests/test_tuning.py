"""Tuning: resuming, seeded reproducibility, CV on train only, pruning, plots, MLflow, workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from scoring.models.config import XGBoostConfig
from scoring.models.tuning import (
    HISTORY_PLOT,
    IMPORTANCE_PLOT,
    SearchDimension,
    TuningSettings,
    default_space,
    load_study,
    mlflow_trial_logger,
    open_storage,
    plot_study,
    storage_label,
    tune_xgboost,
    tuning_document,
)

BASE = XGBoostConfig(n_estimators=40, learning_rate=0.3, early_stopping_rounds=8, n_jobs=1)
SMALL_SPACE = {
    "learning_rate": SearchDimension(0.1, 0.5, log=True),
    "max_depth": SearchDimension(1, 4, kind="int"),
    "min_child_weight": SearchDimension(1.0, 30.0, log=True),
}


def settings(**overrides: object) -> TuningSettings:
    values: dict[str, object] = {
        "n_trials": 8,
        "timeout_seconds": None,
        "cv_folds": 3,
        "space": SMALL_SPACE,
        "n_startup_trials": 4,
        "max_boost_rounds": None,
        "early_stopping_rounds": None,
        "n_jobs": 1,
    }
    values.update(overrides)
    return TuningSettings(**values)  # type: ignore[arg-type]


def data(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": pd.Categorical(rng.choice(["x", "y", "z"], size=n)),
        }
    )
    logit = -1.5 + 1.2 * x["a"] - 0.8 * x["b"] ** 2 + (x["c"] == "x").to_numpy()
    return x, pd.Series((rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int))


@pytest.fixture(scope="module")
def train() -> tuple[pd.DataFrame, pd.Series]:
    return data()


def tune(
    train: tuple[pd.DataFrame, pd.Series], store: Path | str, s: TuningSettings, seed: int = 7, **kw: object
):  # type: ignore[no-untyped-def]
    return tune_xgboost(train[0], train[1], None, None, BASE, s, seed, store, "xgb", **kw)  # type: ignore[arg-type]


def params_by_number(store: Path | str) -> list[dict[str, object]]:
    study = optuna.load_study(study_name="xgb", storage=open_storage(store))
    return [t.params for t in sorted(study.trials, key=lambda t: t.number)]


# --------------------------------------------------------------------------- resume and seeds


def test_rerun_with_more_trials_resumes_the_study(train, tmp_path: Path) -> None:
    store = tmp_path / "tune" / "study.log"
    first = tune(train, store, settings(n_trials=10))
    assert (first.n_trials_new, first.n_trials_total) == (10, 10)
    before = params_by_number(store)

    second = tune(train, store, settings(n_trials=15))
    assert (second.n_trials_new, second.n_trials_total) == (5, 15)
    assert second.best_value >= first.best_value
    after = params_by_number(store)
    assert after[:10] == before  # the old trials are kept, not re-run
    assert len(after) == 15

    again = tune(train, store, settings(n_trials=15))
    assert (again.n_trials_new, again.n_trials_total) == (0, 15)
    assert again.best_params == second.best_params

    # Resumed 10 + 5 samples exactly what one uninterrupted run of 15 samples.
    fresh = tune(train, tmp_path / "fresh.log", settings(n_trials=15))
    assert params_by_number(tmp_path / "fresh.log") == after
    assert fresh.best_params == second.best_params


def test_same_seed_same_best_parameters_other_seed_other_trials(train, tmp_path: Path) -> None:
    a = tune(train, tmp_path / "a.log", settings(n_trials=12), seed=3)
    b = tune(train, tmp_path / "b.log", settings(n_trials=12), seed=3)
    tune(train, tmp_path / "c.log", settings(n_trials=12), seed=4)
    assert a.best_params == b.best_params
    assert a.best_value == b.best_value
    assert a.best_config == b.best_config
    assert params_by_number(tmp_path / "a.log") != params_by_number(tmp_path / "c.log")


def test_best_config_is_base_with_best_parameters(train, tmp_path: Path) -> None:
    result = tune(train, tmp_path / "s.log", settings(n_trials=6))
    assert result.best_config.n_estimators == BASE.n_estimators
    assert result.best_config.early_stopping_rounds == BASE.early_stopping_rounds
    for name, value in result.best_params.items():
        assert getattr(result.best_config, name) == value
    assert isinstance(result.best_config.max_depth, int)
    assert 1 <= result.best_n_rounds <= BASE.n_estimators
    assert result.metric_name == "cv_auc" and result.direction == "maximize"


def test_resuming_with_another_objective_is_refused(train, tmp_path: Path) -> None:
    store = tmp_path / "s.log"
    tune(train, store, settings(n_trials=3))
    with pytest.raises(ValueError, match=r"created for another objective(.|\n)*seed: stored 7, now 8"):
        tune(train, store, settings(n_trials=5), seed=8)
    wider = {**SMALL_SPACE, "max_depth": SearchDimension(1, 8, kind="int")}
    with pytest.raises(ValueError, match="space: stored"):
        tune(train, store, settings(n_trials=5, space=wider))
    x, y = train
    with pytest.raises(ValueError, match="data_digest"):
        tune((x, 1 - y), store, settings(n_trials=5))
    # What does not change the objective may change: the trial count and the thread count.
    assert tune(train, store, settings(n_trials=4, n_jobs=2)).n_trials_new == 1


# --------------------------------------------------------------------------- objective


def test_cv_objective_reads_only_the_training_split(train, tmp_path: Path) -> None:
    reference = tune(train, tmp_path / "none.log", settings(n_trials=4))
    garbage_x = pd.DataFrame({"not": ["a", "feature"]})
    garbage_y = pd.Series(["not", "labels"])
    result = tune_xgboost(
        train[0], train[1], garbage_x, garbage_y, BASE, settings(n_trials=4), 7, tmp_path / "g.log", "xgb"
    )
    assert result.best_params == reference.best_params
    assert result.best_value == reference.best_value


def test_valid_objective_scores_the_validation_split(train, tmp_path: Path) -> None:
    xv, yv = data(600, seed=1)
    s = settings(n_trials=4, objective="valid", report_every=5)
    with pytest.raises(ValueError, match="objective 'valid': expected X_valid"):
        tune(train, tmp_path / "none.log", s)
    result = tune_xgboost(train[0], train[1], xv, yv, BASE, s, 7, tmp_path / "v.log", "xgb")
    assert result.metric_name == "valid_auc"
    other = tune_xgboost(train[0], train[1], *data(600, seed=2), BASE, s, 7, tmp_path / "w.log", "xgb")
    assert other.best_value != result.best_value
    # Per-round reports for the pruner, every report_every rounds.
    for trial in load_study(result).get_trials(states=(TrialState.COMPLETE,)):
        steps = sorted(trial.intermediate_values)
        assert steps and all((step + 1) % 5 == 0 for step in steps)


def test_logloss_metric_is_minimised(train, tmp_path: Path) -> None:
    result = tune(train, tmp_path / "s.log", settings(n_trials=5, metric="logloss"))
    study = load_study(result)
    assert result.direction == "minimize" and study.direction.name == "MINIMIZE"
    values = [t.value for t in study.get_trials(states=(TrialState.COMPLETE,))]
    assert result.best_value == min(values)
    assert 0 < result.best_value < 0.7


def test_pruning_stops_bad_trials_after_a_fold(train, tmp_path: Path) -> None:
    # Half the range makes leaves impossible on 800-row folds: those trials score 0.5.
    space = {"min_child_weight": SearchDimension(1.0, 100_000.0, log=True)}
    pruned = tune(train, tmp_path / "p.log", settings(n_trials=14, space=space, n_startup_trials=3))
    study = load_study(pruned)
    assert pruned.n_trials_pruned >= 1
    for trial in study.get_trials(states=(TrialState.PRUNED,)):
        assert len(trial.intermediate_values) < 3  # stopped before the last fold
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        assert sorted(trial.intermediate_values) == [0, 1, 2]
        assert trial.value == pytest.approx(np.mean(trial.user_attrs["fold_values"]))

    unpruned = tune(
        train, tmp_path / "n.log", settings(n_trials=14, space=space, n_startup_trials=3, pruning=False)
    )
    assert unpruned.n_trials_pruned == 0


def test_grouped_folds_need_one_group_per_row(train, tmp_path: Path) -> None:
    groups = pd.Series(np.arange(len(train[0])) // 3)
    result = tune(train, tmp_path / "g.log", settings(n_trials=3), groups=groups)
    assert result.n_trials_total == 3
    with pytest.raises(ValueError, match="groups: expected one value per training row"):
        tune(train, tmp_path / "h.log", settings(n_trials=3), groups=groups.iloc[:10])


def test_trials_tune_the_monotone_model_the_final_fit_trains(train, tmp_path: Path) -> None:
    free = tune(train, tmp_path / "free.log", settings(n_trials=3))
    # Risk rises with `a` in the data: forcing it to fall leaves `a` almost unusable.
    against = tune(train, tmp_path / "against.log", settings(n_trials=3), monotone={"a": -1})
    assert against.best_value < free.best_value - 0.02
    with pytest.raises(ValueError, match="monotone_constraints: stored None"):
        tune(train, tmp_path / "free.log", settings(n_trials=4), monotone={"a": 1})
    with pytest.raises(ValueError, match=r"monotone: expected training columns(.|\n)*'nope'"):
        tune(train, tmp_path / "bad.log", settings(n_trials=3), monotone={"nope": 1})


def test_time_budget_stops_between_trials_and_says_so(train, tmp_path: Path, caplog) -> None:
    with caplog.at_level("WARNING", logger="scoring.models.tuning"):
        result = tune(train, tmp_path / "t.log", settings(n_trials=50, timeout_seconds=1e-6))
    assert result.n_trials_new == 1  # the first trial starts, the budget is spent after it
    assert result.stopped_by_time_limit and tuning_document(result, "cv")["stopped_by_time_limit"]
    assert "STOPPED BY THE TIME LIMIT" in caplog.text and "1 of 50 finished" in caplog.text
    assert not tune(train, tmp_path / "u.log", settings(n_trials=2)).stopped_by_time_limit


def test_the_best_comes_from_the_first_n_trials_whatever_the_study_holds(train, tmp_path: Path) -> None:
    """A study that an earlier run grew to more trials gives the model params' count asks for."""
    store = tmp_path / "grown.log"
    short = tune(train, tmp_path / "short.log", settings(n_trials=3))
    grown = tune(train, store, settings(n_trials=8))
    back = tune(train, store, settings(n_trials=3))
    assert back.n_trials_new == 0 and back.n_trials_total == 3
    assert (back.best_params, back.best_value, back.best_trial_number) == (
        short.best_params,
        short.best_value,
        short.best_trial_number,
    )
    assert grown.best_value >= back.best_value


def test_settings_refuse_bad_values_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="space: unknown key 'max_dept'"):
        TuningSettings(space={"max_dept": SearchDimension(2, 6, kind="int")})
    with pytest.raises(ValueError, match=r"space\.max_depth: an integer parameter needs kind 'int'"):
        TuningSettings(space={"max_depth": SearchDimension(2, 6)})
    with pytest.raises(ValueError, match="cv_folds: expected >= 2, got 1"):
        TuningSettings(cv_folds=1)
    with pytest.raises(ValueError, match="log scale needs low > 0"):
        SearchDimension(0.0, 1.0, log=True)
    assert set(TuningSettings().space) == set(default_space())


# --------------------------------------------------------------------------- storage


def test_storage_is_a_journal_path_or_an_rdb_url(train, tmp_path: Path) -> None:
    journal = open_storage(tmp_path / "deep" / "study.log")
    assert isinstance(journal, optuna.storages.JournalStorage)
    assert (tmp_path / "deep").is_dir()
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert isinstance(open_storage(url), optuna.storages.RDBStorage)
    result = tune(train, url, settings(n_trials=3))
    assert result.n_trials_total == 3 and result.storage == url
    assert tune(train, url, settings(n_trials=4)).n_trials_new == 1
    with pytest.raises(ValueError, match="pass 'sqlite:///"):
        open_storage(tmp_path / "study.db")
    label = storage_label("postgresql://tuner:s3cret@db.example/optuna")
    assert "s3cret" not in label and "db.example" in label


# --------------------------------------------------------------------------- reports


def test_plots_are_written_even_for_a_single_trial(train, tmp_path: Path) -> None:
    result = tune(train, tmp_path / "s.log", settings(n_trials=6))
    paths = plot_study(result, tmp_path / "reports")
    assert [p.name for p in paths] == [HISTORY_PLOT, IMPORTANCE_PLOT]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted([HISTORY_PLOT, IMPORTANCE_PLOT])

    single = tune(train, tmp_path / "one.log", settings(n_trials=1))
    paths = plot_study(load_study(single), tmp_path / "one")
    assert all(p.stat().st_size > 1000 for p in paths)


def test_each_trial_is_an_mlflow_child_run(train, tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("tuning-test")
    parent = client.create_run(experiment, run_name="tune").info.run_id
    on_trial = mlflow_trial_logger(parent, tracking_uri=uri, tags={"study": "xgb"})
    result = tune(train, tmp_path / "s.log", settings(n_trials=5), on_trial=on_trial)

    children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert len(children) == result.n_trials_new == 5
    assert sorted(int(r.data.tags["optuna.trial_number"]) for r in children) == list(range(5))
    for run in children:
        assert set(run.data.params) == set(SMALL_SPACE)
        assert run.data.tags["study"] == "xgb"
        assert run.info.status == "FINISHED"
        assert run.data.tags["optuna.state"] in {"COMPLETE", "PRUNED"}
    best = next(r for r in children if r.data.tags["optuna.trial_number"] == str(result.best_trial_number))
    assert best.data.metrics["cv_auc"] == pytest.approx(result.best_value)
    assert "best_iteration" in best.data.metrics
    assert float(best.data.params["learning_rate"]) == pytest.approx(result.best_params["learning_rate"])
    assert mlflow.active_run() is None


# --------------------------------------------------------------------------- parallel workers

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[4])
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from test_tuning import BASE, data, settings
    from scoring.models.tuning import tune_xgboost

    store, ready_dir, me = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    (ready_dir / me).touch()
    deadline = time.monotonic() + 60
    while len(list(ready_dir.iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    x, y = data(3000)
    result = tune_xgboost(x, y, None, None, BASE, settings(n_trials=16), 7, store, "xgb")
    print(json.dumps({"pid": os.getpid(), "new": result.n_trials_new}))
    """
)


def test_two_local_workers_share_one_journal_file(tmp_path: Path) -> None:
    store = tmp_path / "study.log"
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
    here = str(Path(__file__).parent)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(store), str(ready), f"w{i}", here],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))

    study = optuna.load_study(study_name="xgb", storage=open_storage(store))
    trials = study.get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    # They stop together at 16 finished trials; a trial still running then may add one.
    assert 16 <= len(trials) <= 17
    assert sum(r["new"] for r in reports) == len(trials)
    pids = {str(t.user_attrs["worker"]).rsplit(":", 1)[1] for t in trials}
    assert pids == {str(r["pid"]) for r in reports}
    assert all(r["new"] >= 1 for r in reports)


def test_data_digest_depends_on_values_not_on_object_identity() -> None:
    from scoring.models.tuning import data_digest

    # Two arrays of equal strings built separately: the same digest, as in another process.
    first = np.array([f"C{i:05d}" for i in range(100)], dtype=object)
    second = np.array([f"C{i:05d}" for i in range(100)], dtype=object)
    assert data_digest(first) == data_digest(second)
    second[3] = "C99999"
    assert data_digest(first) != data_digest(second)
