"""The real DVC pipeline on a public credit file that follows none of the auto-loan contract.

HMEQ (../shared/data, read by path) goes through every stage with the README's own
`dvc exp run` command to the exported model and the reviewer report; the exported model then
scores the raw file with `scoring score`, every row accounted for, and gives the pipeline's
own predictions for the rows the pipeline scored.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline_support import REPO, ran_stages, repo_files, run

pytestmark = pytest.mark.slow

HMEQ = REPO.parent / "shared" / "data" / "hmeq.csv"
HMEQ_ROWS = 5960


@pytest.fixture(scope="module")
def hmeq_pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not HMEQ.is_file():
        pytest.fail(f"{HMEQ} is missing: the shared datasets must sit beside the repository (../shared/data)")
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
        "-S", f"data.file.path={HMEQ}",
        "-S", "data.file.id_column=null",
        "-S", "data.file.target_column=BAD",
        "-S", "tune.n_trials=3", "-S", "train.champion.cv_folds=3"],
        copy,
    )  # fmt: skip
    return copy, proc.stdout + proc.stderr  # the stages log to stderr


def test_every_stage_runs_to_the_exported_model_and_the_report(hmeq_pipeline: tuple[Path, str]) -> None:
    copy, output = hmeq_pipeline
    stages = list(yaml.safe_load((copy / "dvc.yaml").read_text())["stages"])
    assert ran_stages(output) == stages
    assert (copy / "models" / "pd_model" / "MLmodel").is_file()
    spec = json.loads((copy / "data" / "validated" / "dataset.json").read_text())
    assert spec["generated_id"] and spec["id_column"] == "row_id" and not spec["follows_auto_loan_contract"]
    metrics = json.loads((copy / "reports" / "metrics.json").read_text())
    assert metrics["models"][metrics["champion"]]["test"]["auc"] > 0.85


def test_what_the_data_cannot_support_is_switched_off_and_reported(hmeq_pipeline: tuple[Path, str]) -> None:
    copy, output = hmeq_pipeline
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
    hmeq_pipeline: tuple[Path, str], tmp_path: Path
) -> None:
    copy, _ = hmeq_pipeline
    scores_path, rejected_path = tmp_path / "scores.parquet", tmp_path / "rejected.parquet"
    scoring = str(Path(sys.executable).parent / "scoring")
    proc = subprocess.run(
        [scoring, "score", "--model", "models/pd_model", "--input", str(HMEQ), "--output", str(scores_path),
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

    # the same rows as the pipeline numbered them, with the pipeline's own output
    predictions = pd.read_parquet(copy / "data" / "scores" / "predictions.parquet")
    merged = predictions.merge(scores, on="application_id", suffixes=("_pipeline", "_served"))
    assert len(merged) == len(predictions) > 0
    for column in ("pd", "score", "grade", "decision", "policy_reasons", "reason_code_1"):
        pd.testing.assert_series_equal(
            merged[f"{column}_pipeline"], merged[f"{column}_served"], check_names=False, check_dtype=False
        )


def test_the_exported_model_loads_without_pickle_scores_raw_rows_and_refuses_tampering(
    hmeq_pipeline: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow.pyfunc

    from scoring.serving.artifact import ArtifactIntegrityError, files_dir, load_scorer

    copy, _ = hmeq_pipeline
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
    hmeq_pipeline: tuple[Path, str],
) -> None:
    from scoring.serving.artifact import files_dir, load_scorer
    from scoring.serving.http import dataframe_split, post_json, predictions_frame, start_server, stop_server
    from serving_support import as_output_types

    copy, _ = hmeq_pipeline
    model_path = copy / "models" / "pd_model"
    raw = pd.read_csv(HMEQ).drop(columns="BAD").iloc[100:110].reset_index(drop=True)  # nulls included
    assert raw.isna().any().any()
    bad = raw.head(1).assign(LOAN=-5)  # a loan amount training never saw negative
    process, url = start_server(model_path)
    try:
        status, answer = post_json(url, dataframe_split(raw))
        bad_status, bad_answer = post_json(url, dataframe_split(bad))
    finally:
        stop_server(process)
    assert status == 200, answer
    expected = load_scorer(files_dir(model_path)).score(raw)
    pd.testing.assert_frame_equal(as_output_types(predictions_frame(answer)), expected, check_exact=True)
    assert bad_status == 400 and "LOAN: got -5, expected a whole number >= 0" in str(bad_answer)
