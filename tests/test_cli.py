"""The `scoring` command line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from scoring.cli import app

runner = CliRunner()


def test_generate_writes_a_deterministic_sample(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    truth = tmp_path / "truth.parquet"
    for out in (first, second):
        result = runner.invoke(
            app, ["generate", "--n", "300", "--seed", "4", "--output", str(out), "--truth", str(truth)]
        )
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    frame = pd.read_csv(first)
    assert len(frame) == 300 and frame["application_id"].is_unique
    assert len(pd.read_parquet(truth)) == 300


def test_score_reports_unreadable_input_without_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = runner.invoke(
        app, ["score", "--model", str(tmp_path), "--input", str(empty), "--output", "x.parquet"]
    )
    assert result.exit_code == 1
    assert "the file is empty" in result.output
    assert "Traceback" not in result.output


def test_summary_prints_every_model_and_split(tmp_path: Path) -> None:
    import json

    entry = {"n": 1000, "default_rate": 0.07, "auc": 0.8123, "true_pd_auc": 0.83, "ks": 0.5, "brier": 0.05}
    metrics = {
        "champion": "scorecard",
        "test": entry,
        "models": {"scorecard": {"test": entry, "oot": entry}, "xgboost": {"test": {**entry, "auc": 0.8456}}},
    }
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    result = runner.invoke(app, ["summary", "--metrics", str(path)])
    assert result.exit_code == 0, result.output
    assert "champion: scorecard" in result.output
    assert result.output.count("scorecard") >= 3 and "0.8456" in result.output and "0.8123" in result.output
    missing = runner.invoke(app, ["summary", "--metrics", str(tmp_path / "none.json")])
    assert missing.exit_code == 1 and "run the pipeline first" in missing.output
