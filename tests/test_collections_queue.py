"""The behaviour score as served and the month's queue from a raw history: the score's own input
checks, the exported MLflow model (from code, no pickle, every file under its manifest), the queue
of any month with every account accounted for, and `scoring collect` on bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.collections.config import CollectionsConfig
from scoring.collections.month import OUTCOMES, QueueInputError, parse_month, queue_for_month
from scoring.collections.month import REFUSALS as QUEUE_REFUSALS
from scoring.collections.run import CollectionsResult, run_collections
from scoring.collections.scorer import (
    OUTPUT_COLUMNS,
    ROW_CHECKS,
    BehaviourInputError,
    BehaviourScorer,
    load_verified_behaviour,
)
from scoring.collections.scorer import REFUSALS as SCORE_REFUSALS
from scoring.data.config import SyntheticDataConfig
from scoring.data.performance import generate_performance
from scoring.data.synthetic import generate_portfolio
from scoring.serving.integrity import ModelIntegrityError

CONFIG = SyntheticDataConfig(n_applications=8000, months=36, immature_months=12)
SEED = 11
runner = CliRunner()


@pytest.fixture(scope="module")
def fitted() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, CollectionsResult]:
    apps, truth = generate_portfolio(CONFIG, SEED)
    history = generate_performance(apps, truth, CONFIG, SEED)
    scores = pd.DataFrame({"application_id": apps["application_id"], "pd": 0.05, "score": 600.0})
    return apps, history, scores, run_collections(history, apps, scores, CollectionsConfig(), seed=5)


@pytest.fixture(scope="module")
def exported(fitted, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from scoring.export import export_behaviour_model

    _, _, _, result = fitted
    assert result.scorer is not None
    result.scorer.info = {"model_name": "behaviour-test", "model_version": "abc123"}
    return export_behaviour_model(
        result.scorer, tmp_path_factory.mktemp("behaviour") / "model", result.queue_rows
    )


def _last(history: pd.DataFrame) -> str:
    return f"{pd.Timestamp(history['as_of_month'].max()):%Y-%m}"


# --------------------------------------------------------------------------- the score's checks


def test_the_score_names_the_field_the_value_and_what_was_expected(fitted) -> None:
    _, _, _, result = fitted
    scorer = result.scorer
    rows = result.queue_rows.head(5).copy()
    rows.loc[0, "bucket"] = 7
    rows.loc[1, "current_ltv"] = -0.5
    rows["days_past_due"] = rows["days_past_due"].astype(object)
    rows.loc[2, "days_past_due"] = "ninety"
    scored, rejected = scorer.score_valid(rows)
    assert len(scored) + len(rejected) == len(rows) and len(scored) == 2
    by_row = dict(zip(rejected["row"], rejected["reasons"], strict=True))
    assert by_row[0] == "bucket: got 7.0, expected a number in [0, 3]"
    assert by_row[1] == "current_ltv: got -0.5, expected a number in [0, inf]"
    assert by_row[2] == "days_past_due: got 'ninety', expected a number"
    assert list(scored["loan_id"]) == rows["loan_id"].iloc[3:].astype(str).tolist()
    with pytest.raises(BehaviourInputError, match=r"3 of 5 rows rejected: row 0: bucket: got 7\.0"):
        scorer.score(rows)
    with pytest.raises(BehaviourInputError, match=r"columns \['current_ltv'\] are missing"):
        scorer.score(rows.drop(columns="current_ltv"))


def test_the_queue_carries_the_scores_reason_codes(fitted) -> None:
    _, _, _, result = fitted
    queue = result.queue
    assert (queue["reason_code_1"] != "").mean() > 0.9  # delinquent accounts: something raises the PD
    known = {g.code for g in result.scorer.reasons.groups}
    codes = {c for column in ("reason_code_1", "reason_code_2") for c in queue[column] if c}
    assert codes <= known and "B01" in known
    # the scorer's output is the queue's PD, account by account
    scored = result.scorer.score(result.queue_rows).set_index("loan_id").loc[queue["loan_id"]]
    np.testing.assert_array_equal(scored["behaviour_pd"].to_numpy(), queue["behaviour_pd"].to_numpy())
    assert list(scored.reset_index().columns) == list(OUTPUT_COLUMNS)


# --------------------------------------------------------------------------- the exported model


def test_the_exported_model_loads_in_mlflow_without_pickle_and_scores_like_the_stage(
    fitted, exported
) -> None:
    import mlflow

    _, _, _, result = fitted
    assert not [p for p in exported.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib")]
    rows = result.queue_rows.head(50).copy()
    rows["as_of_month"] = pd.to_datetime(rows["as_of_month"]).dt.strftime("%Y-%m-%d")
    served = mlflow.pyfunc.load_model(str(exported)).predict(rows)
    expected = result.scorer.score(result.queue_rows.head(50))
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected, check_exact=True)
    assert (served["model_version"] == "abc123").all()
    bad = rows.copy()
    bad.loc[3, "bucket"] = 9
    with pytest.raises(Exception, match="bucket: got 9"):
        mlflow.pyfunc.load_model(str(exported)).predict(bad)


def test_a_changed_file_of_the_exported_model_is_refused(exported, tmp_path: Path) -> None:
    import shutil

    scorer, digest = load_verified_behaviour(exported)
    assert len(digest) == 64 and scorer.reasons is not None
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    settings = copy / "artifacts" / "model_files" / "collections.json"
    settings.write_text(settings.read_text().replace('"cost": 2.0', '"cost": 0.5'))
    with pytest.raises(ModelIntegrityError, match=r"collections\.json' was modified"):
        load_verified_behaviour(copy)
    with pytest.raises(ModelIntegrityError, match=r"expected 0{64}"):
        load_verified_behaviour(exported, expect_digest="0" * 64)


# --------------------------------------------------------------------------- a month's queue


def test_the_month_queue_is_the_stages_queue_and_every_account_is_accounted_for(fitted) -> None:
    apps, history, scores, result = fitted
    month = queue_for_month(history, apps, _last(history), result.scorer, scores)
    pd.testing.assert_frame_equal(month.queue, result.queue, check_exact=True)
    counts = month.counts
    in_month = history[history["as_of_month"] == history["as_of_month"].max()]
    assert counts["accounts"] == in_month["loan_id"].nunique() == sum(counts[o] for o in OUTCOMES)
    active = in_month["status"] == "active"
    assert counts["not_delinquent"] == int(((in_month["bucket"] == "current") & active).sum())
    assert counts["past_queue"] == int((~active | in_month["bucket"].isin(["M4+", "written_off"])).sum())
    assert counts["quarantined"] == counts["rejected"] == counts["not_in_history"] == 0
    assert sorted(month.held["loan_id"]) == sorted(set(in_month["loan_id"]) - set(month.queue["loan_id"]))


def test_an_earlier_month_uses_only_the_history_up_to_it(fitted) -> None:
    apps, history, scores, result = fitted
    month = "2021-06"
    queue = queue_for_month(history, apps, month, result.scorer, scores).queue
    cut = history[pd.to_datetime(history["as_of_month"]) <= "2021-06-01"]
    # the same month's queue from the history cut at that month: nothing later leaks in
    pd.testing.assert_frame_equal(queue, queue_for_month(cut, apps, month, result.scorer, scores).queue)
    assert (queue["as_of_month"] == pd.Timestamp("2021-06-01")).all() and len(queue) > 20


def test_bad_accounts_are_quarantined_with_their_reasons_and_the_counts_reconcile(fitted) -> None:
    apps, history, scores, result = fitted
    last = history["as_of_month"].max()
    queued = result.queue["loan_id"].tolist()
    negative, unknown, untouched = queued[0], queued[1], queued[2]
    broken = history.copy()
    broken.loc[
        (broken["loan_id"] == negative) & (broken["as_of_month"] == last), "outstanding_principal"
    ] = -50.0
    first = broken.loc[broken["loan_id"] == unknown, "as_of_month"].min()
    broken.loc[(broken["loan_id"] == unknown) & (broken["as_of_month"] == first), "bucket"] = "M9"
    listed = [negative, unknown, untouched, "NOT-A-LOAN"]
    month = queue_for_month(broken, apps, _last(history), result.scorer, scores, accounts=listed)
    counts = month.counts
    assert counts["accounts"] == 4 and sum(counts[o] for o in OUTCOMES) == 4
    assert (counts["queued"], counts["quarantined"], counts["not_in_history"]) == (1, 2, 1)
    assert month.queue["loan_id"].tolist() == [untouched]
    reasons = month.held.set_index("loan_id")["reasons"]
    assert reasons[negative] == (
        f"outstanding_principal_out_of_range: outstanding_principal=-50.0 in {_last(history)}, "
        "expected 0..50,000,000"
    )
    assert reasons[unknown].startswith(f"bucket_not_allowed: bucket='M9' in {pd.Timestamp(first):%Y-%m}")
    assert reasons["NOT-A-LOAN"] == f"no history row of this loan in {_last(history)}"
    assert set(month.held["outcome"]) == {"quarantined", "not_in_history"}


def test_a_month_outside_the_history_or_not_a_month_is_refused(fitted) -> None:
    apps, history, scores, result = fitted
    with pytest.raises(
        QueueInputError, match=r"--month 2031-01: the history has no row in that month \(its months"
    ):
        queue_for_month(history, apps, "2031-01", result.scorer, scores)
    with pytest.raises(QueueInputError, match="expected a month as YYYY-MM"):
        parse_month("2023-13")
    assert parse_month("2023-12") == parse_month("2023-12-01") == 2023 * 12 + 11


# --------------------------------------------------------------------------- scoring collect


def test_scoring_collect_writes_the_queue_and_reports_bad_input(fitted, exported, tmp_path: Path) -> None:
    apps, history, scores, result = fitted
    paths = {name: tmp_path / f"{name}.parquet" for name in ("history", "apps", "scores")}
    history.to_parquet(paths["history"])
    apps.to_parquet(paths["apps"])
    scores.to_parquet(paths["scores"])
    common = [
        "--applications",
        str(paths["apps"]),
        "--scores",
        str(paths["scores"]),
        "--model",
        str(exported),
    ]
    out = tmp_path / "queue.parquet"
    month = _last(history)
    done = runner.invoke(
        app, ["collect", "--history", str(paths["history"]), "--month", month, "--output", str(out), *common]
    )
    assert done.exit_code == 0, done.output
    queue = pd.read_parquet(out)
    pd.testing.assert_frame_equal(queue, result.queue.reset_index(drop=True), check_exact=True)
    held = pd.read_parquet(tmp_path / "queue.held.parquet")
    total = history.loc[history["as_of_month"] == history["as_of_month"].max(), "loan_id"].nunique()
    assert len(queue) + len(held) == total
    assert f"accounts {total:,} = queued {len(queue):,}" in " ".join(done.output.split())

    missing_month = runner.invoke(
        app,
        ["collect", "--history", str(paths["history"]), "--month", "2031-01", "--output", str(out), *common],
    )
    assert missing_month.exit_code == 1 and "the history has no row in that month" in missing_month.output
    no_column = tmp_path / "no_bucket.parquet"
    history.drop(columns="bucket").to_parquet(no_column)
    broken = runner.invoke(
        app, ["collect", "--history", str(no_column), "--month", month, "--output", str(out), *common]
    )
    assert broken.exit_code == 1 and "missing columns ['bucket']" in broken.output
    assert "Traceback" not in broken.output


def test_a_blend_champion_exports_with_its_parts(fitted, tmp_path: Path) -> None:
    """The exported behaviour model carries the champion's own files, and a blend's parts."""
    from scoring.export import export_behaviour_model

    apps, history, scores, _ = fitted
    base = CollectionsConfig()
    train = base.behaviour.train.model_copy(
        update={
            "candidates": ["scorecard", "xgboost_defaults", "blend"],
            "candidate_params": {"blend": {"parts": ["scorecard", "best"], "weights": [0.0, 0.5, 1.0]}},
        }
    )
    config = base.model_copy(update={"behaviour": base.behaviour.model_copy(update={"train": train})})
    result = run_collections(history, apps, scores, config, seed=5)
    assert result.scorer is not None
    result.scorer.model.kind = "blend"  # judge the blend whatever the champion rule chose
    result.scorer.model.estimator = result.models["blend"]
    exported = export_behaviour_model(result.scorer, tmp_path / "model", result.queue_rows)
    scorer, _ = load_verified_behaviour(exported)
    assert scorer.model.kind == "blend"
    pd.testing.assert_frame_equal(
        scorer.score(result.queue_rows), result.scorer.score(result.queue_rows), check_exact=True
    )


def test_the_behaviour_model_over_http_scores_like_the_stage_and_answers_400_to_a_bad_row(
    fitted, exported
) -> None:
    """`mlflow models serve` on the exported behaviour model, real requests on loopback."""
    from scoring.serving.http import dataframe_split, post_json, predictions_frame, start_server, stop_server

    _, _, _, result = fitted
    rows = result.queue_rows.head(20).drop(columns=["outstanding_principal", "default_6m"])
    rows["as_of_month"] = pd.to_datetime(rows["as_of_month"]).dt.strftime("%Y-%m-%d")
    process, url = start_server(exported)
    try:
        status, answer = post_json(url, dataframe_split(rows))
        assert status == 200, answer
        served = predictions_frame(answer)
        expected = result.scorer.score(result.queue_rows.head(20))
        assert served["loan_id"].tolist() == expected["loan_id"].tolist()
        assert served["behaviour_pd"].tolist() == expected["behaviour_pd"].tolist()
        assert served["reason_code_1"].tolist() == expected["reason_code_1"].tolist()
        bad = rows.head(2).copy()
        bad.loc[1, "bucket"] = 7
        status, answer = post_json(url, dataframe_split(bad))
        assert status == 400 and "1 of 2 rows rejected: row 1: bucket: got 7" in answer["message"]
    finally:
        stop_server(process)


# --------------------------------------------------------------------------- every refusal, by its code
#
# The queue's refusals (month.REFUSALS), the score's (scorer.REFUSALS) and the checks that reject a
# row (scorer.ROW_CHECKS) are tables in the library; each code has a case here, run by a test
# parametrized over the library's table, so a code added there without a case fails, named.

Fitted = tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, CollectionsResult]


def scorer_of(result: CollectionsResult) -> BehaviourScorer:
    assert result.scorer is not None
    return result.scorer


def _refused(
    call: Callable[[], object], error: type[QueueInputError | BehaviourInputError]
) -> tuple[str, str]:
    with pytest.raises(error) as raised:
        call()
    return raised.value.code, str(raised.value)


def _month_not_a_month(fitted: Fitted, tmp_path: Path) -> None:
    apps, history, scores, result = fitted
    code, message = _refused(
        lambda: queue_for_month(history, apps, "2023-13", scorer_of(result), scores), QueueInputError
    )
    assert (code, message) == (
        "month_not_a_month",
        "--month '2023-13': expected a month as YYYY-MM (e.g. 2023-12)",
    )
    assert _refused(lambda: parse_month("soon"), QueueInputError)[0] == "month_not_a_month"


def _month_not_in_history(fitted: Fitted, tmp_path: Path) -> None:
    apps, history, scores, result = fitted
    months = pd.to_datetime(history["as_of_month"])
    code, message = _refused(
        lambda: queue_for_month(history, apps, "2031-01", scorer_of(result), scores), QueueInputError
    )
    assert (code, message) == (
        "month_not_in_history",
        f"--month 2031-01: the history has no row in that month (its months run {months.min():%Y-%m}.."
        f"{months.max():%Y-%m})",
    )


def _accounts_empty(fitted: Fitted, tmp_path: Path) -> None:
    apps, history, scores, result = fitted
    code, message = _refused(
        lambda: queue_for_month(history, apps, _last(history), scorer_of(result), scores, accounts=[]),
        QueueInputError,
    )
    assert (code, message) == ("accounts_empty", "--accounts: the list holds no loan_id")


def _accounts_without_loan_id(fitted: Fitted, tmp_path: Path) -> None:
    """Refused by `scoring collect` as it reads the file, before the model is loaded."""
    apps, history, _, _ = fitted
    paths = {name: tmp_path / f"{name}.csv" for name in ("history", "apps", "accounts")}
    history.head(20).to_csv(paths["history"], index=False)
    apps.head(20).to_csv(paths["apps"], index=False)
    pd.DataFrame({"account": ["A1"]}).to_csv(paths["accounts"], index=False)
    done = runner.invoke(
        app,
        [
            "collect", "--history", str(paths["history"]), "--month", _last(history),
            "--output", str(tmp_path / "queue.parquet"), "--applications", str(paths["apps"]),
            "--accounts", str(paths["accounts"]), "--model", str(tmp_path / "no-model"),
        ],
    )  # fmt: skip
    assert done.exit_code == 1, done.output
    # the console wraps long lines anywhere, a path included: compare without whitespace
    text = "".join(done.output.split())
    expected = f"error: --accounts {paths['accounts']}: no loan_id column (found ['account'])"
    assert "".join(expected.split()) in text, done.output
    assert "Traceback" not in done.output


QUEUE_CASES: dict[str, Callable[[Fitted, Path], None]] = {
    "month_not_a_month": _month_not_a_month,
    "month_not_in_history": _month_not_in_history,
    "accounts_empty": _accounts_empty,
    "accounts_without_loan_id": _accounts_without_loan_id,
}


@pytest.mark.parametrize("code", sorted(QUEUE_REFUSALS))
def test_each_refusal_of_the_queue_has_its_code_and_message(
    code: str, fitted: Fitted, tmp_path: Path
) -> None:
    assert code in QUEUE_CASES, f"the queue's refusal {code!r} has no case"
    QUEUE_CASES[code](fitted, tmp_path)


def test_every_case_of_the_queue_and_the_score_is_a_refusal_of_the_library() -> None:
    """The other way round: no case for a code the library no longer has."""
    assert set(QUEUE_CASES) == set(QUEUE_REFUSALS), sorted(set(QUEUE_CASES) ^ set(QUEUE_REFUSALS))
    assert set(ROW_CASES) == set(ROW_CHECKS), sorted(set(ROW_CASES) ^ set(ROW_CHECKS))
    assert set(SCORE_CASES) == set(SCORE_REFUSALS), sorted(set(SCORE_CASES) ^ set(SCORE_REFUSALS))


def _as_object(rows: pd.DataFrame, column: str, row: int, value: Any) -> pd.DataFrame:
    out = rows.copy()
    out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


# each check that rejects a row: the damage (of the queue's rows) and the reason it must give
ROW_CASES: dict[str, tuple[str, Any, str]] = {
    "key_missing": ("loan_id", None, "loan_id: got null, expected a value (the account and its month)"),
    "month_not_a_date": ("as_of_month", "June", "as_of_month: got 'June', expected a month (a date)"),
    "not_a_number": ("days_past_due", "ninety", "days_past_due: got 'ninety', expected a number"),
    "out_of_range": ("current_ltv", -0.5, "current_ltv: got -0.5, expected a number in [0, inf]"),
    "bucket_not_whole": (
        "bucket",
        2.5,
        "bucket: got 2.5, expected a whole number: 0 current, 1 M1, 2 M2, 3 M3",
    ),
    "bucket_missing": ("bucket", None, "bucket: got null, expected 0 current .. 3 M3"),
}


@pytest.mark.parametrize("check", sorted(ROW_CHECKS))
def test_each_check_of_the_score_rejects_its_row_naming_field_value_and_expectation(
    check: str, fitted: Fitted
) -> None:
    assert check in ROW_CASES, f"the score's row check {check!r} has no case"
    column, value, reason = ROW_CASES[check]
    _, _, _, result = fitted
    rows = _as_object(result.queue_rows.head(4), column, 2, value)
    assert scorer_of(result).check(rows).tolist() == ["", "", reason, ""]
    scored, rejected = scorer_of(result).score_valid(rows)
    assert rejected["row"].tolist() == [2] and rejected["reasons"].tolist() == [reason]
    assert len(scored) == 3


def _columns_missing(result: CollectionsResult) -> None:
    rows = result.queue_rows.head(3).drop(columns=["current_ltv", "as_of_month"])
    code, message = _refused(lambda: scorer_of(result).score(rows), BehaviourInputError)
    assert code == "columns_missing"
    assert message.startswith(
        "columns ['as_of_month', 'current_ltv'] are missing: expected the account-month columns ['loan_id', "
    ), message


def _rows_rejected(result: CollectionsResult) -> None:
    rows = _as_object(result.queue_rows.head(3), "bucket", 1, 2.5)
    code, message = _refused(lambda: scorer_of(result).score(rows), BehaviourInputError)
    assert (code, message) == (
        "rows_rejected",
        "1 of 3 rows rejected: row 1: bucket: got 2.5, expected a whole number: 0 current, 1 M1, 2 M2, 3 M3",
    )


SCORE_CASES: dict[str, Callable[[CollectionsResult], None]] = {
    "columns_missing": _columns_missing,
    "rows_rejected": _rows_rejected,
}


@pytest.mark.parametrize("code", sorted(SCORE_REFUSALS))
def test_each_refusal_of_the_score_has_its_code_and_message(code: str, fitted: Fitted) -> None:
    assert code in SCORE_CASES, f"the score's refusal {code!r} has no case"
    SCORE_CASES[code](fitted[3])
