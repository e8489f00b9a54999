"""The `scoring` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.export import export_model
from scoring.serving.scorer import Scorer
from serving_support import RUN_ID, as_output_types, build_model_dir, repo_params

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
        "in_sample_splits": ["train", "valid"],
        "models": {
            "scorecard": {"valid": entry, "test": entry, "oot": entry},
            "xgboost": {"test": {**entry, "auc": 0.8456}},
        },
    }
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    result = runner.invoke(app, ["summary", "--metrics", str(path)])
    assert result.exit_code == 0, result.output
    assert "champion: scorecard" in result.output
    assert result.output.count("scorecard") >= 4 and "0.8456" in result.output and "0.8123" in result.output
    assert "valid*" in result.output and "test*" not in result.output and "* in-sample" in result.output
    missing = runner.invoke(app, ["summary", "--metrics", str(tmp_path / "none.json")])
    assert missing.exit_code == 1 and "run the pipeline first" in missing.output


def _split_metrics(n: int, auc: float) -> dict[str, float | int]:
    """One split's entry as the evaluate stage writes it (scoring.reporting.evaluation.evaluate_model)."""
    return {
        "n": n, "default_rate": 0.071234, "mean_pd": 0.069876, "auc": auc, "gini": 2 * auc - 1,
        "ks": 0.512345, "brier": 0.061234, "log_loss": 0.234567, "true_pd_auc": 0.834567,
        "auc_gap_to_truth": 0.834567 - auc, "true_pd_brier": 0.060123,
    }  # fmt: skip


def test_summary_fits_80_columns_without_cutting_a_name_or_a_figure(tmp_path: Path) -> None:
    import json

    rows = {"train": 70_123, "valid": 15_045, "test": 14_987, "oot": 100_000}
    names = ("xgboost", "scorecard", "blend", "champion", "xgboost_monotone")
    models = {
        name: {split: _split_metrics(n, 0.7 + i / 10 + j / 100) for j, (split, n) in enumerate(rows.items())}
        for i, name in enumerate(names)
    }
    metrics = {
        **models["scorecard"],
        "champion": "scorecard",
        "in_sample_splits": ["train", "valid"],
        "models": models,
        "calibrated": {"test": {"n": 14_987, "ece": 0.004}},
    }
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    result = runner.invoke(app, ["summary", "--metrics", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80, result.output
    assert "…" not in result.output
    for name, splits in models.items():
        for split, m in splits.items():
            # one row per model and split, the name and every figure whole on it
            row = [
                cells for cells in map(str.split, lines) if cells[:2] in ([name, split], [name, split + "*"])
            ]
            assert len(row) == 1, (name, split, result.output)
            assert row[0][2:] == [
                f"{m['n']:,}", f"{m['default_rate']:.4f}", f"{m['auc']:.4f}",
                f"{m['true_pd_auc']:.4f}", f"{m['ks']:.4f}", f"{m['brier']:.4f}",
            ]  # fmt: skip


def test_summary_folds_a_model_name_too_long_for_80_columns(tmp_path: Path) -> None:
    import json

    name = "xgboost_monotone_constrained_v2"
    entry = _split_metrics(100_000, 0.8123)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"champion": name, "models": {name: {"test": entry}}}))
    result = runner.invoke(app, ["summary", "--metrics", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in result.output
    first = next(i for i, line in enumerate(lines) if line.startswith(name[:10]))
    # the name over two lines, whole; the figures whole on its first
    assert lines[first].split()[0] + lines[first + 1].split()[0] == name
    assert "0.8123" in lines[first] and "100,000" in lines[first]


# --------------------------------------------------------------------------- scoring score


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Scorer, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cli_score")
    model_dir, raw = build_model_dir(root / "models")
    info = {"model_name": "test", "model_version": RUN_ID[:12]}
    export_model(model_dir, root / "pd_model", SYNTHETIC_SPEC, raw, info, repo_params())
    return root / "pd_model", Scorer.from_model_dir(model_dir, repo_params(), SYNTHETIC_SPEC, info), raw


def _score_csv(model: Path, frame: pd.DataFrame, tmp_path: Path) -> tuple[Path, Path, Path, Any]:
    """`scoring score` on ``frame`` as a CSV, chunks of 20 rows: (input, scores, rejected, result)."""
    source = tmp_path / "apps.csv"
    frame.to_csv(source, index=False)
    out, rejected = tmp_path / "scores.parquet", tmp_path / "rejected.parquet"
    result = runner.invoke(
        app,
        ["score", "--model", str(model), "--input", str(source), "--output", str(out), "--rejected",
         str(rejected), "--chunk-rows", "20"],
    )  # fmt: skip
    return source, out, rejected, result


def test_score_csv_in_chunks_writes_scores_rejects_and_reconciles(
    exported_model: tuple[Path, Scorer, pd.DataFrame], tmp_path: Path
) -> None:
    model, scorer, raw = exported_model
    frame = raw.head(95).astype({"age": "float64"})
    frame.loc[[4, 60], "age"] = [12.0, 45.5]
    frame.loc[71, "monthly_income"] = -1.0
    source, out, rejected, result = _score_csv(model, frame, tmp_path)
    assert result.exit_code == 0, result.output
    assert "input 95 = scored 92 + rejected 3" in result.output
    scores, bad = pd.read_parquet(out), pd.read_parquet(rejected)
    assert bad["row"].tolist() == [4, 60, 71]
    assert bad["application_id"].tolist() == frame["application_id"].iloc[[4, 60, 71]].tolist()
    assert bad["reject_reasons"].tolist() == [
        "age: got 12, expected a whole number in 18..80",
        "age: got 45.5, expected a whole number in 18..80",
        "monthly_income: got -1, expected a number > 0 and <= 10000000",
    ]
    expected = scorer.score(pd.read_csv(source).drop(index=[4, 60, 71]).reset_index(drop=True))
    pd.testing.assert_frame_equal(as_output_types(scores), expected, check_exact=True)


def test_a_bad_token_in_a_csv_column_rejects_its_own_row_only(
    exported_model: tuple[Path, Scorer, pd.DataFrame], tmp_path: Path
) -> None:
    """CSV has no types: one text token in a numeric (or boolean) column used to turn the whole
    chunk's column into text, and every row of the chunk failed the number check."""
    model, scorer, raw = exported_model
    frame = raw.head(40).astype({"age": object, "income_verified": object})
    frame.loc[7, "age"] = "abc"
    frame.loc[25, "income_verified"] = "maybe"
    _, out, rejected, result = _score_csv(model, frame, tmp_path)
    assert result.exit_code == 0, result.output
    assert "input 40 = scored 38 + rejected 2" in result.output
    bad = pd.read_parquet(rejected)
    assert bad["row"].tolist() == [7, 25]
    assert bad["reject_reasons"].str.startswith(("age: got 'abc'", "income_verified: got 'maybe'")).all()
    # the other rows score exactly as the clean rows do
    expected = scorer.score(raw.head(40).drop(index=[7, 25]).reset_index(drop=True))
    pd.testing.assert_frame_equal(as_output_types(pd.read_parquet(out)), expected, check_exact=True)


def test_score_parquet_chunked_equals_one_pass_and_defaults_the_rejected_file(
    exported_model: tuple[Path, Scorer, pd.DataFrame], tmp_path: Path
) -> None:
    model, scorer, raw = exported_model
    source = tmp_path / "apps.parquet"
    raw.to_parquet(source, index=False)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(
        app,
        ["score", "--model", str(model), "--input", str(source), "--output", str(out), "--chunk-rows", "64"],
    )
    assert result.exit_code == 0, result.output
    assert f"input {len(raw)} = scored {len(raw)} + rejected 0" in result.output
    pd.testing.assert_frame_equal(as_output_types(pd.read_parquet(out)), scorer.score(raw), check_exact=True)
    assert len(pd.read_parquet(tmp_path / "scores.rejected.parquet")) == 0


def test_score_refuses_a_tampered_model_and_a_missing_required_column(
    exported_model: tuple[Path, Scorer, pd.DataFrame], tmp_path: Path
) -> None:
    import shutil

    model, _, raw = exported_model
    source = tmp_path / "apps.csv"
    raw.head(10).drop(columns="age").to_csv(source, index=False)
    result = runner.invoke(
        app, ["score", "--model", str(model), "--input", str(source), "-o", str(tmp_path / "o.pq")]
    )
    assert result.exit_code == 1 and "missing required fields ['age']" in result.output
    assert not (tmp_path / "o.pq").exists()
    copy = tmp_path / "pd_model"
    shutil.copytree(model, copy)
    limits = copy / "artifacts" / "model_files" / "limits.json"
    limits.write_text(limits.read_text().replace("0.45", "0.05"))
    raw.head(10).to_csv(source, index=False)
    result = runner.invoke(
        app, ["score", "--model", str(copy), "--input", str(source), "-o", str(tmp_path / "o.pq")]
    )
    assert result.exit_code == 1 and "'artifacts/model_files/limits.json' was modified" in result.output
    assert "Traceback" not in result.output
