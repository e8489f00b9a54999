"""The real DVC pipeline on a public credit file that follows none of the auto-loan contract.

HMEQ (../shared/data, read by path) goes through every stage with the README's own
`dvc exp run` command to the exported model and the reviewer report; the exported model then
scores the raw file with `scoring score`, every row accounted for, and gives the pipeline's
own predictions for the rows the pipeline scored.

The file is run with two edits in rows the split puts in test: a negative loan amount and a
null loan amount, neither of which training saw (HMEQ's LOAN is never empty, never below
1,100). Nobody declared bounds for LOAN, so both are values the model can score: every stage
runs, and both rows are scored and flagged, alike in the pipeline, in batch and over HTTP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline_support import REPO, ran_stages, repo_files, run

pytestmark = pytest.mark.slow

HMEQ = REPO.parent / "shared" / "data" / "hmeq.csv"
HMEQ_ROWS = 5960


def unseen_values_file(directory: Path) -> tuple[Path, dict[str, str]]:
    """HMEQ with LOAN -5 in one row of the test split and null in another (the split's own rule
    says which rows those are: it hashes the row ids, not the values); returns the file and
    id -> the flag each edited row must carry."""
    from scoring.config import load_params
    from scoring.core.contract import DatasetSpec, row_ids
    from scoring.data.split import split_applications

    raw = pd.read_csv(HMEQ)
    assert raw["LOAN"].notna().all() and raw["LOAN"].min() > 0  # what the edits rely on
    params = load_params(REPO / "params.yaml")
    keys = pd.DataFrame({"row_id": row_ids(len(raw)), "BAD": raw["BAD"]})
    parts = split_applications(
        keys, DatasetSpec(id_column="row_id", target_column="BAD"), params.split, params.seed
    )
    first, second = (int(i[1:]) - 1 for i in parts.parts["test"]["row_id"].iloc[[3, 7]])
    raw["LOAN"] = raw["LOAN"].astype(float)
    raw.loc[first, "LOAN"] = -5.0
    raw.loc[second, "LOAN"] = np.nan
    path = directory / "hmeq_unseen_values.csv"
    raw.to_csv(path, index=False)
    return path, {f"R{first + 1:08d}": "LOAN:out_of_range", f"R{second + 1:08d}": "LOAN:null_unseen"}


@pytest.fixture(scope="module")
def hmeq_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, dict[str, str]]:
    if not HMEQ.is_file():
        pytest.fail(f"{HMEQ} is missing: the shared datasets must sit beside the repository (../shared/data)")
    edited, flagged = unseen_values_file(tmp_path_factory.mktemp("hmeq-file"))
    copy = tmp_path_factory.mktemp("hmeq")
    for name in repo_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    run(["git", "init", "-q"], copy)
    run([*git, "add", "-A"], copy)
    run([*git, "commit", "-q", "-m", "copy"], copy)
    # The README's command, with fewer tuning trials and champion folds to keep the test short.
    proc = run(
        [str(Path(sys.executable).parent / "dvc"), "exp", "run", "-n", "hmeq",
        "-S", "data.source=file",
        "-S", f"data.file.path={edited}",
        "-S", "data.file.id_column=null",
        "-S", "data.file.target_column=BAD",
        "-S", "tune.n_trials=3", "-S", "train.champion.cv_folds=3"],
        copy,
    )  # fmt: skip
    return copy, proc.stdout + proc.stderr, edited, flagged  # the stages log to stderr


def test_every_stage_runs_to_the_exported_model_and_the_report(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]],
) -> None:
    copy, output, _, _ = hmeq_pipeline
    stages = list(yaml.safe_load((copy / "dvc.yaml").read_text())["stages"])
    assert ran_stages(output) == stages
    assert (copy / "models" / "pd_model" / "MLmodel").is_file()
    spec = json.loads((copy / "data" / "validated" / "dataset.json").read_text())
    assert spec["generated_id"] and spec["id_column"] == "row_id" and not spec["follows_auto_loan_contract"]
    metrics = json.loads((copy / "reports" / "metrics.json").read_text())
    assert metrics["models"][metrics["champion"]]["test"]["auc"] > 0.85


def test_what_the_data_cannot_support_is_switched_off_and_reported(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]],
) -> None:
    copy, output, _, _ = hmeq_pipeline
    scope = json.loads((copy / "reports" / "calibration_report.json").read_text())["rule_scope"]
    assert scope["knock_outs_in_force"] == [] and not scope["complete"]
    assert scope["knock_outs_switched_off"]["KO_AGE_MIN"] == ["age"]
    assert scope["limit_constraints_in_force"] == ["grade_cap"]
    assert "knock-out rule KO_INCOME_MIN switched off: no column monthly_income" in output
    features = json.loads((copy / "reports" / "features.json").read_text())
    assert "loan_to_value" in features["derived_not_computed"]

    summary = json.loads((copy / "reports" / "explanations" / "summary.json").read_text())
    assert summary["reason_map"]["source"] == "generated"
    generated = yaml.safe_load((copy / "reports" / "explanations" / "reason_map.yaml").read_text())
    assert {entry["code"] for entry in generated["reason_map"].values()} >= {"F_DEBTINC", "F_DELINQ"}

    page = (copy / "reports" / "review.html").read_text()
    scope_section = page.split('<section id="scope">', 1)[1].split("</section>", 1)[0]
    for text in (
        "KO_AGE_MIN",
        "KO_LTV_MAX",
        "limit constraint",
        "loan_to_value",
        "reason_map.yaml",
        "no_data",
    ):
        assert text in scope_section, text


def test_the_exported_model_scores_the_raw_file_and_every_row_is_accounted_for(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]], tmp_path: Path
) -> None:
    copy, _, edited, flagged = hmeq_pipeline
    scores_path, rejected_path = tmp_path / "scores.parquet", tmp_path / "rejected.parquet"
    scoring = str(Path(sys.executable).parent / "scoring")
    proc = subprocess.run(
        [scoring, "score", "--model", "models/pd_model", "--input", str(edited), "--output", str(scores_path),
         "--rejected", str(rejected_path)],
        cwd=copy, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores, rejected = pd.read_parquet(scores_path), pd.read_parquet(rejected_path)
    assert len(scores) + len(rejected) == HMEQ_ROWS
    assert (
        f"input {HMEQ_ROWS:,} = scored {len(scores):,} + rejected {len(rejected):,}"
        in proc.stdout + proc.stderr
    )
    not_declined = scores["decision"] != "decline"
    assert (scores.loc[not_declined, "limit_constraint"] == "no_data").all()
    assert scores["reason_code_1"].str.startswith("F_").any()
    # the values training never saw are scored and flagged, and the command says how many
    served_flags = scores.set_index("application_id")["input_flags"]
    assert {i: served_flags[i] for i in flagged} == flagged
    n_flagged = int((scores["input_flags"] != "").sum())
    assert f"{n_flagged:,} scored rows flagged" in proc.stdout + proc.stderr

    # the same rows as the pipeline numbered them, with the pipeline's own output
    predictions = pd.read_parquet(copy / "data" / "scores" / "predictions.parquet")
    merged = predictions.merge(scores, on="application_id", suffixes=("_pipeline", "_served"))
    assert len(merged) == len(predictions) > 0
    for column in ("pd", "score", "grade", "decision", "policy_reasons", "reason_code_1", "input_flags"):
        pd.testing.assert_series_equal(
            merged[f"{column}_pipeline"], merged[f"{column}_served"], check_names=False, check_dtype=False
        )


def test_the_exported_model_loads_without_pickle_scores_raw_rows_and_refuses_tampering(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    from scoring.serving.artifact import ArtifactIntegrityError, files_dir, load_scorer

    copy, _, _, _ = hmeq_pipeline
    model_path = copy / "models" / "pd_model"
    for file in (p for p in model_path.rglob("*") if p.is_file()):
        assert not file.read_bytes().startswith(b"\x80"), f"{file} looks like a pickle"
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    raw = pd.read_csv(HMEQ).drop(columns="BAD").head(20)  # the file's own columns, no id
    served = mlflow.pyfunc.load_model(str(model_path)).predict(raw)
    assert served["application_id"].tolist() == [f"R{i:08d}" for i in range(1, 21)]
    pd.testing.assert_frame_equal(served, load_scorer(files_dir(model_path)).score(raw), check_exact=True)

    tampered = tmp_path / "pd_model"
    shutil.copytree(model_path, tampered)
    features = files_dir(tampered) / "features.json"
    features.write_text(features.read_text().replace('"DEBTINC"', '"DEBTINC_"', 1))
    with pytest.raises(ArtifactIntegrityError, match=r"features\.json"):
        load_scorer(files_dir(tampered))


def test_the_exported_model_answers_over_http_with_the_files_own_rows(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]],
) -> None:
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.http import dataframe_split, post_json, predictions_frame, start_server, stop_server
    from serving_support import as_output_types

    copy, _, edited, flagged = hmeq_pipeline
    model_path = copy / "models" / "pd_model"
    raw = pd.read_csv(HMEQ).drop(columns="BAD").iloc[100:110].reset_index(drop=True)  # nulls included
    assert raw.isna().any().any()
    # the edited rows, with the ids the pipeline gave them
    unseen = pd.read_csv(edited).drop(columns="BAD")
    unseen.insert(0, "row_id", [f"R{i + 1:08d}" for i in range(len(unseen))])
    unseen = unseen[unseen["row_id"].isin(list(flagged))].reset_index(drop=True)
    bad = raw.head(1).astype({"LOAN": object}).assign(LOAN="5,000")  # text in a number
    process, url = start_server(model_path)
    try:
        status, answer = post_json(url, dataframe_split(raw))
        unseen_status, unseen_answer = post_json(url, dataframe_split(unseen))
        bad_status, bad_answer = post_json(url, dataframe_split(bad))
    finally:
        stop_server(process)
    assert status == 200, answer
    expected = load_scorer(files_dir(model_path)).score(raw)
    pd.testing.assert_frame_equal(as_output_types(predictions_frame(answer)), expected, check_exact=True)
    # a value training never saw is scored over HTTP as in the pipeline: same PD, same flag
    assert unseen_status == 200, unseen_answer
    over_http = as_output_types(predictions_frame(unseen_answer)).set_index("application_id")
    assert over_http["input_flags"].to_dict() == flagged
    predictions = pd.read_parquet(copy / "data" / "scores" / "predictions.parquet").set_index(
        "application_id"
    )
    for column in ("pd", "score", "grade", "decision", "input_flags"):
        assert over_http[column].to_dict() == predictions.loc[list(over_http.index), column].to_dict(), column
    assert bad_status == 400 and "LOAN: got '5,000', expected a number or null" in str(bad_answer)


def test_every_split_row_is_scored_or_reported_and_the_report_says_so(
    hmeq_pipeline: tuple[Path, str, Path, dict[str, str]],
) -> None:
    copy, output, _, flagged = hmeq_pipeline
    predictions = pd.read_parquet(copy / "data" / "scores" / "predictions.parquet")
    assert predictions.set_index("application_id").loc[list(flagged), "split"].eq("test").all()
    scoring = json.loads((copy / "reports" / "metrics.json").read_text())["scoring"]
    split_rows = sum(len(pd.read_parquet(p)) for p in (copy / "data" / "split").glob("*.parquet"))
    assert scoring["n_input"] == split_rows == scoring["n_scored"] + scoring["n_rejected"]
    assert scoring["n_scored"] == len(predictions) and scoring["n_rejected"] == 0
    # the two edits, beside the file's own values outside what the train split showed
    assert {k: v for k, v in scoring["flags"].items() if k.startswith("LOAN:")} == {
        "LOAN:null_unseen": 1,
        "LOAN:out_of_range": 1,
    }
    assert scoring["n_flagged"] == int((predictions["input_flags"] != "").sum()) >= 2
    assert "evaluate: input" in output and "LOAN:out_of_range 1" in output  # the stage's warning
    page = (copy / "reports" / "review.html").read_text()
    assert "Scoring the splits" in page and "null_unseen" in page
