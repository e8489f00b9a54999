"""Reject inference: the legacy policy of the synthetic lender, the methods, and their measure on
everyone who applied (issue 18)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from scoring.core.contract import OUTCOME_COLUMN, TRUE_PD_COLUMN
from scoring.data.config import SyntheticDataConfig
from scoring.data.legacy_policy import ACCEPTED_COLUMN, LegacyPolicyConfig, apply_legacy_policy
from scoring.data.synthetic import generate_portfolio
from scoring.models.reject_inference import (
    METHODS,
    RejectInferenceMethodConfig,
    augment,
)
from scoring.reporting.reject_inference import through_the_door

SEED = 11


@pytest.fixture(scope="module")
def portfolio() -> tuple[pd.DataFrame, pd.DataFrame]:
    config = SyntheticDataConfig(n_applications=20_000, performance_history=False)
    return generate_portfolio(config, SEED)


# ------------------------------------------------------------------ the legacy policy


def test_policy_hides_the_rejects_outcomes_and_keeps_everything_else(portfolio):
    applications, truth = portfolio
    observed, truth_out = apply_legacy_policy(applications, truth, LegacyPolicyConfig(), SEED)
    accepted = truth_out[ACCEPTED_COLUMN].to_numpy()
    assert observed[~accepted]["default_12m"].isna().all()
    # accepted rows keep their outcome, null only where immature
    pd.testing.assert_series_equal(
        observed.loc[accepted, "default_12m"], applications.loc[accepted, "default_12m"]
    )
    pd.testing.assert_frame_equal(
        observed.drop(columns="default_12m"), applications.drop(columns="default_12m")
    )
    pd.testing.assert_frame_equal(truth_out.drop(columns=ACCEPTED_COLUMN), truth)
    assert (
        "default_12m" in applications
        and applications["default_12m"].notna().sum() > observed["default_12m"].notna().sum()
    )


def test_policy_books_the_acceptance_rate_and_is_seeded(portfolio):
    applications, truth = portfolio
    for rate in (0.4, 0.6, 0.8):
        _, out = apply_legacy_policy(applications, truth, LegacyPolicyConfig(acceptance_rate=rate), SEED)
        assert out[ACCEPTED_COLUMN].mean() == pytest.approx(rate, abs=0.01)
    _, first = apply_legacy_policy(applications, truth, LegacyPolicyConfig(), SEED)
    _, again = apply_legacy_policy(applications, truth, LegacyPolicyConfig(), SEED)
    _, other = apply_legacy_policy(applications, truth, LegacyPolicyConfig(), SEED + 1)
    assert first[ACCEPTED_COLUMN].equals(again[ACCEPTED_COLUMN])
    assert not first[ACCEPTED_COLUMN].equals(other[ACCEPTED_COLUMN])


def test_policy_strength_sets_how_much_riskier_the_rejects_are(portfolio):
    applications, truth = portfolio
    gaps = []
    for strength in (0.0, 0.5, 0.9):
        _, out = apply_legacy_policy(
            applications, truth, LegacyPolicyConfig(strength=strength, knockouts={}), SEED
        )
        accepted = out[ACCEPTED_COLUMN].to_numpy()
        gaps.append(out.loc[~accepted, TRUE_PD_COLUMN].mean() / out.loc[accepted, TRUE_PD_COLUMN].mean())
    assert gaps[0] == pytest.approx(1.0, abs=0.08)  # random decisions: no selection
    assert gaps[0] < gaps[1] < gaps[2]
    assert gaps[2] > 3.0


def test_knockouts_decline_except_for_overrides(portfolio):
    applications, truth = portfolio
    knocked = (applications["max_dpd_24m"] > 30).to_numpy()
    config = LegacyPolicyConfig(knockouts={"max_dpd_24m": 30}, override_share=0.0)
    _, out = apply_legacy_policy(applications, truth, config, SEED)
    assert knocked.any() and not out.loc[knocked, ACCEPTED_COLUMN].any()
    config = LegacyPolicyConfig(knockouts={"max_dpd_24m": 30}, override_share=0.1)
    _, out = apply_legacy_policy(applications, truth, config, SEED)
    # a manual override books some of them, both ways, and the rate holds
    assert out.loc[knocked, ACCEPTED_COLUMN].any()
    assert out[ACCEPTED_COLUMN].mean() == pytest.approx(0.6, abs=0.01)


def test_a_knockout_on_an_unknown_column_names_it(portfolio):
    applications, truth = portfolio
    with pytest.raises(ValueError, match="'no_such_column'"):
        apply_legacy_policy(applications, truth, LegacyPolicyConfig(knockouts={"no_such_column": 1}), SEED)


# ------------------------------------------------------------------ the methods


def _logistic_learner(X: pd.DataFrame, y: np.ndarray, w: np.ndarray):
    model = LogisticRegression(max_iter=500).fit(X.to_numpy(), y, sample_weight=w)
    return lambda rows: model.predict_proba(rows.to_numpy())[:, 1]


@pytest.fixture(scope="module")
def selected() -> dict[str, object]:
    """A toy lender: one risk factor seen by everyone, an old policy that accepted the safest 60%
    on a noisy view of the truth (x plus a factor the data does not show)."""
    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame({"x": rng.standard_normal(n), "noise": rng.standard_normal(n)})
    hidden = rng.standard_normal(n)
    true_pd = 1 / (1 + np.exp(-(-2.5 + 1.2 * X["x"].to_numpy() + 0.8 * hidden)))
    y = (rng.random(n) < true_pd).astype(float)
    legacy = X["x"].to_numpy() + hidden + 0.5 * rng.standard_normal(n)
    accepted = legacy < np.quantile(legacy, 0.6)
    return {"X": X, "y": y, "true_pd": true_pd, "accepted": accepted}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_on_the_accepts_and_uses_the_rejects_as_it_says(method, selected):
    X, y, acc = selected["X"], selected["y"], selected["accepted"]
    Xa, ya, Xr = X[acc], y[acc], X[~acc]
    out = augment(method, Xa, ya, Xr, _logistic_learner, seed=1)
    assert list(out.X.columns) == ["x", "noise"]
    assert len(out.X) == len(out.y) == len(out.weight)
    assert set(np.unique(out.y)) <= {0.0, 1.0}
    assert (out.weight > 0).all()
    # the accepts are always there, with their own outcomes, first
    np.testing.assert_array_equal(out.y[: len(ya)], ya)
    n_a, n_r = len(ya), len(Xr)
    if method in ("accepts_only", "reweighting"):
        assert len(out.y) == n_a
    elif method in ("hard_cutoff", "parcelling"):
        assert len(out.y) == n_a + n_r
    elif method == "fuzzy":
        assert len(out.y) == n_a + 2 * n_r
        np.testing.assert_allclose(out.weight[n_a : n_a + n_r] + out.weight[n_a + n_r :], 1.0)
    else:
        assert n_a < len(out.y) < n_a + n_r  # only the confident rejects, after filtering
    # rejects added as bad are a larger share than the accepts' bad rate (they are riskier)
    if method in ("hard_cutoff", "parcelling", "self_learning"):
        assert out.y[n_a:].mean() > ya.mean()


def test_reweighting_gives_accepts_like_the_rejects_more_weight(selected):
    X, y, acc = selected["X"], selected["y"], selected["accepted"]
    out = augment(
        "reweighting", X[acc], y[acc], X[~acc], _logistic_learner, RejectInferenceMethodConfig(max_weight=20)
    )
    assert out.weight.mean() == pytest.approx(1.0)
    x = X[acc]["x"].to_numpy()
    # accepts near the old cut-off (high x) stand in for the rejects: heavier
    assert out.weight[x > np.quantile(x, 0.9)].mean() > 2 * out.weight[x < np.quantile(x, 0.1)].mean()


def test_hard_cutoff_labels_the_expected_share_of_bads(selected):
    X, y, acc = selected["X"], selected["y"], selected["accepted"]
    Xa, ya, Xr = X[acc], y[acc], X[~acc]
    p = _logistic_learner(Xa, ya, np.ones(len(ya)))(Xr)
    for factor in (1.0, 2.0):
        out = augment(
            "hard_cutoff", Xa, ya, Xr, _logistic_learner, RejectInferenceMethodConfig(bad_rate_factor=factor)
        )
        assert out.y[len(ya) :].mean() == pytest.approx(min(1.0, factor * p.mean()), abs=1 / len(Xr))


def test_methods_refuse_what_they_cannot_use(selected):
    X, y, acc = selected["X"], selected["y"], selected["accepted"]
    with pytest.raises(ValueError, match="'magic'"):
        augment("magic", X[acc], y[acc], X[~acc], _logistic_learner)
    with pytest.raises(ValueError, match="missing \\['noise'\\]"):
        augment("fuzzy", X[acc], y[acc], X[~acc][["x"]], _logistic_learner)
    labels = y[acc].copy()
    labels[3] = np.nan
    with pytest.raises(ValueError, match="row 3"):
        augment("fuzzy", X[acc], labels, X[~acc], _logistic_learner)


def test_a_method_is_seeded(selected):
    X, y, acc = selected["X"], selected["y"], selected["accepted"]
    first = augment("parcelling", X[acc], y[acc], X[~acc], _logistic_learner, seed=5)
    again = augment("parcelling", X[acc], y[acc], X[~acc], _logistic_learner, seed=5)
    other = augment("parcelling", X[acc], y[acc], X[~acc], _logistic_learner, seed=6)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.y, other.y)


# ------------------------------------------------------------------ the measure on everyone


def test_through_the_door_of_the_truth_itself_has_no_bias(selected):
    truth, y, acc = selected["true_pd"], selected["y"], selected["accepted"]
    out = through_the_door(truth, y, truth, acc)
    assert out["pd_bias"] == out["pd_bias_rejected"] == 0.0
    rates = [b["expected_bad_rate"] for b in out["at_acceptance_rate"]]
    assert rates == sorted(rates)  # approving more of a ranked book takes in riskier loans
    shuffled = through_the_door(np.random.default_rng(0).permutation(truth), y, truth, acc)
    assert shuffled["auc"] < out["auc"] - 0.1
    assert shuffled["at_acceptance_rate"][0]["expected_bad_rate"] > rates[0]


def test_through_the_door_refuses_misaligned_inputs(selected):
    with pytest.raises(ValueError, match="one value per applicant"):
        through_the_door(selected["true_pd"][:-1], selected["y"], selected["true_pd"], selected["accepted"])


def test_the_accepts_only_model_underestimates_the_rejects(selected):
    """The selection bias the issue is about, on the toy lender: a model of the accepts thinks the
    rejects safer than they are; the same model on everyone's outcomes (the oracle) does not."""
    X, y, acc, truth = selected["X"], selected["y"], selected["accepted"], selected["true_pd"]
    accepts_only = _logistic_learner(X[acc], y[acc], np.ones(acc.sum()))(X)
    oracle = _logistic_learner(X, y, np.ones(len(y)))(X)
    biased = through_the_door(accepts_only, y, truth, acc)
    fair = through_the_door(oracle, y, truth, acc)
    assert biased["pd_bias_rejected"] < -0.02
    assert abs(fair["pd_bias_rejected"]) < abs(biased["pd_bias_rejected"]) / 2


def test_the_synthetic_policy_biases_an_accepts_only_view(portfolio):
    """On the generator's own portfolio: the booked loans' bad rate is far below everyone's."""
    applications, truth = portfolio
    observed, out = apply_legacy_policy(applications, truth, LegacyPolicyConfig(), SEED)
    labelled = observed["default_12m"].notna()
    everyone = applications["default_12m"].notna()
    assert (
        observed.loc[labelled, "default_12m"].mean() < 0.6 * applications.loc[everyone, "default_12m"].mean()
    )
    assert out[OUTCOME_COLUMN].equals(truth[OUTCOME_COLUMN])


def test_the_comparison_with_accepts_only_is_the_method_minus_the_reference():
    from scoring.reporting.reject_inference import compared_with_reference

    rng = np.random.default_rng(3)
    true_pd = rng.uniform(0.01, 0.3, 2_000)
    outcome = (rng.uniform(size=2_000) < true_pd).astype(float)
    accepted = true_pd < 0.15
    good = through_the_door(true_pd, outcome, true_pd, accepted)
    noisy = through_the_door(
        np.clip(true_pd + rng.normal(0, 0.1, 2_000), 0.001, 0.999), outcome, true_pd, accepted
    )
    diff = compared_with_reference(good, noisy)
    assert diff["auc"] == pytest.approx(good["auc"] - noisy["auc"]) and diff["auc"] > 0.02
    assert diff["brier"] < 0
    assert diff["abs_pd_bias_rejected"] == pytest.approx(
        abs(good["pd_bias_rejected"]) - abs(noisy["pd_bias_rejected"])
    )
    # the true PD approves a safer book at every acceptance rate
    assert all(v < 0 for v in diff["expected_bad_rate_at_acceptance_rate"].values())
    assert set(diff["expected_bad_rate_at_acceptance_rate"]) == {
        "accept_40pct",
        "accept_50pct",
        "accept_60pct",
        "accept_70pct",
        "accept_80pct",
    }
    with pytest.raises(ValueError, match="same through-the-door holdout"):
        compared_with_reference(
            good, through_the_door(true_pd[:10], outcome[:10], true_pd[:10], accepted[:10])
        )


def test_prepare_writes_the_policy_data_and_no_history_for_declined_loans(tmp_path):
    from scoring.core.io import read_parquet
    from scoring.data.prepare import write_synthetic_portfolio

    config = SyntheticDataConfig(n_applications=3_000, block_rows=1_000)
    plain = {n: tmp_path / "plain" / f"{n}.parquet" for n in ("applications", "truth", "performance")}
    booked = {n: tmp_path / "policy" / f"{n}.parquet" for n in ("applications", "truth", "performance")}
    write_synthetic_portfolio(config, SEED, plain, parallel=False)
    write_synthetic_portfolio(config, SEED, booked, parallel=False, policy=LegacyPolicyConfig())
    truth = read_parquet(booked["truth"])
    accepted_ids = set(truth.loc[truth[ACCEPTED_COLUMN], "application_id"])
    history, plain_history = read_parquet(booked["performance"]), read_parquet(plain["performance"])
    assert set(history["loan_id"]) <= accepted_ids
    # the booked loans' history is the one they have without the policy, row for row
    expected = plain_history[plain_history["loan_id"].isin(accepted_ids)].reset_index(drop=True)
    pd.testing.assert_frame_equal(history, expected)
    applications = read_parquet(booked["applications"])
    assert applications.loc[~truth[ACCEPTED_COLUMN].to_numpy(), "default_12m"].isna().all()
    assert truth[ACCEPTED_COLUMN].mean() == pytest.approx(0.6, abs=0.01)  # in every block


def _commit_with_fuzzy(copy: Path, params: dict[str, Any]) -> None:
    """The repository copy with two candidates and the fuzzy method in its params, committed."""
    import yaml

    from pipeline_support import run

    params["train"].update({"candidates": ["scorecard", "xgboost"], "candidate_params": {}})
    params["reject_inference"].update({"enabled": True, "method": "fuzzy", "helper_rounds": 50})
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    for cmd in (["git", "init", "-q"], [*git, "add", "-A"], [*git, "commit", "-q", "-m", "copy"]):
        run(cmd, copy)


@pytest.mark.slow
def test_the_train_stage_learns_from_the_declined_applications(tmp_path):
    """The real prepare..train stages with the legacy policy on and the fuzzy method: the
    candidates train on the booked loans plus the training period's declined applications, and
    the champion record says on which population the models and the calibration were fitted."""
    import json
    import shutil

    import yaml

    from pipeline_support import REPO, dvc, repo_files

    for name in repo_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["data"]["synthetic"].update({"n_applications": 8000, "performance_history": False})
    params["tune"]["enabled"] = False
    # a few hundred valid rows: too few to fit ten grades, so the grades' bounds are given
    params["calibrate"]["master_scale"]["boundaries"] = [
        0.005,
        0.01,
        0.02,
        0.035,
        0.05,
        0.08,
        0.12,
        0.2,
        0.35,
    ]
    _commit_with_fuzzy(tmp_path, params)
    dvc(tmp_path, "repro", "evaluate")
    record = json.loads((tmp_path / "models" / "champion.json").read_text())["reject_inference"]
    truth = pd.read_parquet(tmp_path / "data" / "truth" / "true_pd.parquet")
    train = pd.read_parquet(tmp_path / "data" / "split" / "train.parquet")
    assert record["method"] == "fuzzy" and record["accepts"] == len(train)
    # every booked training loan was accepted by the old policy; the rejects are declined ones
    accepted = set(truth.loc[truth[ACCEPTED_COLUMN], "application_id"])
    assert set(train["application_id"]) <= accepted
    assert record["rejects_available"] > 0.3 * len(train)
    assert record["training_rows"] == record["accepts"] + 2 * record["rejects_available"]
    assert record["champion_selection"] == "valid" and record["fit_on"] == "train"
    # evaluation measures the exported model on the test period's booked and declined applicants
    door = json.loads((tmp_path / "reports" / "metrics.json").read_text())["through_the_door"]
    test = pd.read_parquet(tmp_path / "data" / "split" / "test.parquet")
    assert door["method"] == "fuzzy" and door["booked"] == len(test)
    assert door["declined"] > 0.3 * len(test)
    assert door["applicants"] == door["booked"] + door["declined"]
    assert 0.5 < door["auc"] < 1.0 and np.isfinite(door["pd_bias_rejected"])
    # beside it, the train stage's accepts-only reference on the same applicants, and the difference
    reference = door["accepts_only"]
    assert reference["applicants"] == door["applicants"] and reference["auc"] != door["auc"]
    assert door["vs_accepts_only"]["auc"] == pytest.approx(door["auc"] - reference["auc"])
    assert json.loads((tmp_path / "models" / "accepts_only" / "reference.json").read_text())["fitted"]
    # accepts-only runs the same protocol, so its champion is that reference, figure for figure
    params["reject_inference"]["method"] = "accepts_only"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc(tmp_path, "repro", "evaluate")
    record = json.loads((tmp_path / "models" / "champion.json").read_text())["reject_inference"]
    assert record["method"] == "accepts_only" and record["training_rows"] == len(train)
    assert not json.loads((tmp_path / "models" / "accepts_only" / "reference.json").read_text())["fitted"]
    again = json.loads((tmp_path / "reports" / "metrics.json").read_text())["through_the_door"]
    assert again["method"] == "accepts_only" and "accepts_only" not in again
    for key in ("auc", "auc_rejected", "brier", "pd_bias_rejected"):
        assert again[key] == pytest.approx(reference[key], abs=1e-9), key


# ------------------------------------------------------------------ bring your own rejects


def _loans(n: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(start + 1)
    return pd.DataFrame(
        {
            "loan": [f"L{i:05d}" for i in range(start, start + n)],
            "income": rng.uniform(1_000, 9_000, n).round(),
            "bad": (rng.uniform(size=n) < 0.1).astype(int),
        }
    )


def test_a_decision_column_marks_the_declined_applications(tmp_path):
    from scoring.core.contract import ACCEPTED, DECLINED
    from scoring.data.config import FileDataConfig, SplitConfig
    from scoring.data.prepare import prepare_file
    from scoring.data.split import development_rejects

    frame = _loans(400)
    frame["decision"] = np.where(np.arange(400) % 4 == 0, "REJ", "OK")
    frame.loc[frame["decision"] == "REJ", "bad"] = np.nan
    path = tmp_path / "apps.csv"
    frame.to_csv(path, index=False)
    config = FileDataConfig(
        path=path, id_column="loan", target_column="bad", decision_column="decision", declined_values=["REJ"]
    )
    prepared = prepare_file(config)
    spec = prepared.spec
    assert spec.decision_column == "decision" and "decision" in spec.non_feature_columns
    decisions = prepared.applications["decision"]
    assert (decisions == DECLINED).sum() == 100 and (decisions == ACCEPTED).sum() == 300
    # no date column: every declined row is a reject of the development period, split by hash
    unlabelled = prepared.applications[prepared.applications["bad"].isna()]
    rejects = development_rejects(unlabelled, spec, SplitConfig(), SEED, None)
    assert sum(len(v) for v in rejects.values()) == 100 and len(rejects["train"]) > 50

    # a declined application with an outcome, an empty decision, a decision column not in the file
    frame.loc[0, "bad"] = 1
    frame.to_csv(path, index=False)
    with pytest.raises(
        Exception, match=r"1 declined applications have an outcome in 'bad' \(first: loan 'L00000'"
    ):
        prepare_file(config)
    frame.loc[0, "bad"] = np.nan
    frame.loc[5, "decision"] = np.nan
    frame.to_csv(path, index=False)
    with pytest.raises(Exception, match=r"decision_column 'decision' is empty in 1 rows \(first: row 6\)"):
        prepare_file(config)
    with pytest.raises(Exception, match="decision_column 'verdict' is not in the file"):
        prepare_file(config.model_copy(update={"decision_column": "verdict"}))


def test_a_second_file_brings_the_declined_applications(tmp_path):
    from scoring.core.contract import ACCEPTED, DECISION_COLUMN, DECLINED
    from scoring.data.config import FileDataConfig
    from scoring.data.prepare import prepare_file

    booked, declined = _loans(300), _loans(120, start=300).drop(columns="bad")
    booked.to_csv(tmp_path / "booked.csv", index=False)
    declined.to_csv(tmp_path / "declined.csv", index=False)
    config = FileDataConfig(
        path=tmp_path / "booked.csv", target_column="bad", rejects_path=tmp_path / "declined.csv"
    )
    prepared = prepare_file(config)
    apps = prepared.applications
    assert len(apps) == 420 and prepared.spec.decision_column == DECISION_COLUMN
    assert (apps[DECISION_COLUMN] == ACCEPTED).sum() == 300 and (
        apps[DECISION_COLUMN] == DECLINED
    ).sum() == 120
    assert apps.loc[apps[DECISION_COLUMN] == DECLINED, "bad"].isna().all()
    # the generated ids go on numbering the declined rows after the booked ones
    assert apps[prepared.spec.id_column].is_unique
    # the declined file must have the booked file's columns, and no outcomes
    declined.drop(columns="income").to_csv(tmp_path / "declined.csv", index=False)
    with pytest.raises(Exception, match=r"missing \['income'\]"):
        prepare_file(config)
    _loans(120, start=300).to_csv(tmp_path / "declined.csv", index=False)
    with pytest.raises(Exception, match="120 declined applications have an outcome in 'bad'"):
        prepare_file(config)


@pytest.mark.slow
def test_the_pipeline_learns_from_a_file_of_declined_applications(tmp_path):
    """The real DVC pipeline on HMEQ split the way a lender's extract would come: the booked
    loans with outcomes in one file and the applications it declined (no outcome) in a second
    (data.file.rejects_path). The fuzzy method trains on both; with no truth for the declined,
    evaluation and the reviewer report say the through-the-door figures cannot be measured."""
    import json
    import shutil

    import yaml

    from pipeline_support import REPO, dvc, repo_files

    hmeq = pd.read_csv(REPO.parent / "shared" / "data" / "hmeq.csv")
    rng = np.random.default_rng(SEED)
    # the old policy: declines more of the delinquent and the indebted, and some at random
    risk = hmeq["DELINQ"].fillna(0) + hmeq["DEROG"].fillna(0) + rng.normal(0, 1, len(hmeq))
    declined = (risk > np.quantile(risk, 0.7)).to_numpy()
    for name in repo_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    hmeq[~declined].to_csv(tmp_path / "data" / "external" / "booked.csv", index=False)
    hmeq[declined].drop(columns="BAD").to_csv(tmp_path / "data" / "external" / "declined.csv", index=False)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["data"]["source"] = "file"
    params["data"]["file"].update(
        {
            "path": "data/external/booked.csv",
            "target_column": "BAD",
            "rejects_path": "data/external/declined.csv",
        }
    )
    params["tune"]["enabled"] = False
    _commit_with_fuzzy(tmp_path, params)
    dvc(tmp_path, "repro", "report")
    split = json.loads((tmp_path / "reports" / "split.json").read_text())
    assert split["parts"]["unlabelled"]["n"] == int(declined.sum())
    record = json.loads((tmp_path / "models" / "champion.json").read_text())["reject_inference"]
    train = pd.read_parquet(tmp_path / "data" / "split" / "train.parquet")
    # no date column: the declined applications the customer hash sends to train (about 70%)
    assert record["accepts"] == len(train) and 0.6 < record["rejects_available"] / declined.sum() < 0.8
    assert record["training_rows"] == record["accepts"] + 2 * record["rejects_available"]
    door = json.loads((tmp_path / "reports" / "metrics.json").read_text())["through_the_door"]
    assert door["method"] == "fuzzy" and door["measured"] is False and door["declined_in_test_period"] > 0
    page = (tmp_path / "reports" / "review.html").read_text()
    section = page.split('<section id="reject-inference">', 1)[1].split("</section>", 1)[0]
    assert "Method <b>fuzzy</b>" in section and "Not measured" in section
