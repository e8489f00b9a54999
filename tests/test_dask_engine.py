"""The dask engine (issue 17, first part): batch scoring on a real LocalCluster gives the pandas
path's output and rejected rows bit for bit, whatever the partitioning, from CSV and Parquet, and
a scheduler that does not answer is one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from scoring.cli import app
from scoring.config import load_params
from scoring.core.cluster import DaskConfig, dask_client
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.settings import ConfigError
from scoring.export import export_model
from scoring.serving.artifact import files_dir, load_scorer
from scoring.serving.batch import score_file
from scoring.serving.batch_dask import score_file_dask
from scoring.serving.integrity import model_digest
from serving_support import RUN_ID, build_model_dir, repo_params

runner = CliRunner()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("dask_engine")
    model_dir, raw = build_model_dir(root / "models")
    info = {"model_name": "test", "model_version": RUN_ID[:12]}
    export_model(model_dir, root / "pd_model", SYNTHETIC_SPEC, raw, info, repo_params())
    return root / "pd_model", raw


@pytest.fixture(scope="module")
def client():
    with dask_client(DaskConfig(n_workers=2)) as connected:
        yield connected


def _inputs(raw: pd.DataFrame, tmp_path: Path) -> dict[str, Path]:
    frame = pd.concat([raw] * 6, ignore_index=True).drop(columns="default_12m", errors="ignore")
    frame["application_id"] = [f"A{i:07d}" for i in range(len(frame))]
    frame.loc[[5, len(frame) - 2], "monthly_income"] = -1.0
    parquet = tmp_path / "apps.parquet"
    frame.to_parquet(parquet, index=False, row_group_size=700)  # partitions of whole row groups
    text = frame.astype({"age": object, "income_verified": object})
    text.loc[40, "age"] = "forty"
    text.loc[len(frame) // 2, "income_verified"] = "maybe"
    csv = tmp_path / "apps.csv"
    text.to_csv(csv, index=False)
    return {"csv": csv, "parquet": parquet}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_dask_scoring_equals_the_pandas_path_bit_for_bit(exported, client, kind: str, tmp_path: Path) -> None:
    model, raw = exported
    scorer = load_scorer(files_dir(model))
    source = _inputs(raw, tmp_path)[kind]
    expected = score_file(scorer, source, tmp_path / "p.parquet", tmp_path / "p.rej.parquet", chunk_rows=97)
    counts = score_file_dask(
        client, model, model_digest(model), scorer, source, tmp_path / "scores", tmp_path / "rejected", 1_000
    )
    assert counts == expected and counts.reconciles
    assert counts.n_rejected == (4 if kind == "csv" else 2)
    parts = sorted(p.name for p in (tmp_path / "scores").iterdir())
    assert len(parts) >= 3 and all(name.startswith("part-") for name in parts)
    for ours, theirs in (("scores", "p.parquet"), ("rejected", "p.rej.parquet")):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / ours).reset_index(drop=True),
            pd.read_parquet(tmp_path / theirs),
            check_exact=True,
        )
    rejected = pd.read_parquet(tmp_path / "rejected")
    assert rejected["row"].is_monotonic_increasing and 5 in set(rejected["row"])


def test_workers_refuse_a_model_whose_files_changed(exported, client, tmp_path: Path) -> None:
    model, raw = exported
    scorer = load_scorer(files_dir(model))
    source = _inputs(raw, tmp_path)["parquet"]
    with pytest.raises(Exception, match=r"expected 0{64}"):
        score_file_dask(client, model, "0" * 64, scorer, source, tmp_path / "s", tmp_path / "r", 1_000)
    assert not (tmp_path / "s").exists() and not list(tmp_path.glob(".s.*"))  # nothing partial left


def test_scoring_score_engine_dask_on_the_command_line(exported, tmp_path: Path) -> None:
    model, raw = exported
    source = _inputs(raw, tmp_path)["csv"]
    out, rejected = tmp_path / "scores", tmp_path / "rejected"
    result = runner.invoke(
        app,
        ["score", "--model", str(model), "--input", str(source), "--output", str(out), "--rejected",
         str(rejected), "--engine", "dask", "--workers", "2", "--chunk-rows", "1000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    n = 6 * len(raw)
    assert f"input {n:,} = scored {n - 4:,} + rejected 4" in " ".join(result.output.split())
    assert len(pd.read_parquet(out)) == n - 4
    wrong = runner.invoke(app, ["score", "--model", str(model), "--input", str(source), "--output", str(out),
                                "--engine", "spark"])  # fmt: skip
    assert wrong.exit_code == 1 and "--engine 'spark': expected pandas or dask" in wrong.output
    # params.yaml's engine and dask sections are the defaults of the command
    params = tmp_path / "params.yaml"
    params.write_text("engine: dask\ndask: {n_workers: 1, partition_rows: 1000}\n")
    from_params = tmp_path / "from_params"
    result = runner.invoke(
        app, ["score", "--model", str(model), "--input", str(source), "--output", str(from_params),
              "--params", str(params)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert from_params.is_dir() and len(pd.read_parquet(from_params)) == n - 4


def _malloc_trim_threshold() -> str | None:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_local_cluster_workers_start_with_the_configured_malloc_trim_threshold(
    client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # another module's plain LocalCluster may have left distributed's setting in this environment
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert set(client.run(_malloc_trim_threshold).values()) == {"65536"}  # distributed's, by default
    with dask_client(DaskConfig(n_workers=1, malloc_trim_threshold=None)) as other:
        assert list(other.run(_malloc_trim_threshold).values()) == [None]  # unset: glibc's own
    with dask_client(DaskConfig(n_workers=1, malloc_trim_threshold=1 << 20)) as other:
        assert list(other.run(_malloc_trim_threshold).values()) == [str(1 << 20)]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ  # this process's environment is left as it was


def test_a_scheduler_that_does_not_answer_is_one_clear_error() -> None:
    config = DaskConfig(scheduler="tcp://127.0.0.1:9", connect_timeout_seconds=2)
    with (
        pytest.raises(ConfigError, match=r"dask\.scheduler 'tcp://127\.0\.0\.1:9': no scheduler answered"),
        dask_client(config),
    ):
        pass


def test_engine_and_dask_settings_are_typed_params(tmp_path: Path) -> None:
    params = load_params()
    assert params.engine == "pandas" and params.dask.scheduler == ""
    bad = tmp_path / "params.yaml"
    bad.write_text("engine: spark\n")
    with pytest.raises(ConfigError, match="engine"):
        load_params(bad)
    bad.write_text("dask: {schedular: tcp://x:8786}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'dask\.schedular'"):
        load_params(bad)
