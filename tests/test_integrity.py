"""The whole exported model directory is covered by its manifest, and the manifest by the model digest.

Each tamper case changes a registered version's stored files (where MLflow keeps the run's
artifacts) the way someone with write access to the store could, then loads the model by
``models:/name@champion`` as the CLI and the server do: the load must fail naming the file or
the digest, before any of the model's code runs. File loads are pinned by ``--expect-digest``
or ``SCORING_MODEL_DIGEST``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.export import CHAMPION_ALIAS, export_model, register_model
from scoring.serving.integrity import (
    DIGEST_ENV,
    DIGEST_TAG,
    MODEL_MANIFEST_FILE,
    ModelIntegrityError,
    ModelReferenceError,
    manifest_bytes,
    model_digest,
    model_files,
    verify_model_dir,
)
from scoring.serving.registry import load_verified_scorer, resolve_model
from serving_support import RUN_ID, build_model_dir, repo_params

INFO = {"model_name": "test", "model_version": RUN_ID[:12], "mlflow_run_id": RUN_ID}
NAME = "integrity_pd"
ALIAS_URI = f"models:/{NAME}@{CHAMPION_ALIAS}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("integrity")
    model_dir, raw = build_model_dir(root / "models", n=2000, n_estimators=20)
    export_model(model_dir, root / "pd_model", SYNTHETIC_SPEC, raw, INFO, repo_params())
    return root / "pd_model", raw


@pytest.fixture()
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite registry of the test's own (the same model registered again is the same version,
    so a version one test tampered with must not be the next test's); its artifacts live in a
    temporary folder."""
    import mlflow

    root = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.delenv(DIGEST_ENV, raising=False)
        mp.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
        mlflow.set_tracking_uri(uri)
        mlflow.create_experiment("integrity", artifact_location=(root / "artifacts").as_uri())
        mlflow.set_experiment("integrity")
        yield root / "artifacts"
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]


def _register(model: Path) -> tuple[Path, str, str]:
    """Log ``model`` as a new run's artifacts and register it as the champion; return the stored
    copy, its digest and the version."""
    import mlflow

    digest = model_digest(model)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model), artifact_path="pd_model")
    version = register_model(run.info.run_id, "pd_model", NAME, digest)
    stored = Path(mlflow.get_run(run.info.run_id).info.artifact_uri.removeprefix("file://")) / "pd_model"
    assert (stored / MODEL_MANIFEST_FILE).is_file()
    return stored, digest, version


def test_manifest_covers_every_file_of_the_model_directory(exported: tuple[Path, pd.DataFrame]) -> None:
    path, _ = exported
    listed = json.loads((path / MODEL_MANIFEST_FILE).read_text())["files"]
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
    assert set(listed) == on_disk - {MODEL_MANIFEST_FILE}
    # what runs at load, what MLflow reads, the environment and the model files are all in it
    for name in (
        "MLmodel",
        "pyfunc_model.py",
        "code/scoring/decision/policy.py",
        "code/scoring/serving/integrity.py",
        "requirements.txt",
        "python_env.yaml",
        "artifacts/model_files/manifest.json",
        "artifacts/model_files/candidates/xgboost/booster.ubj",
    ):
        assert name in listed, name
    # the digest is the SHA-256 of the manifest's bytes, which are canonical for the files
    assert (path / MODEL_MANIFEST_FILE).read_bytes() == manifest_bytes(path)
    assert verify_model_dir(path).digest == model_digest(path)


def _append_to(relative: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        target = root / relative
        target.write_bytes(target.read_bytes() + b"\n# edited\n")

    return change


def _edit_policy_code(root: Path) -> None:
    """A change that would alter decisions: the approval code of the policy module."""
    target = root / "code" / "scoring" / "decision" / "policy.py"
    text = target.read_text()
    assert '"approve"' in text
    target.write_text(text.replace('"approve"', '"decline"'))


def _rewrite_manifest(root: Path) -> None:
    """Edit a file, then rewrite the manifest so that the files match it again."""
    _edit_policy_code(root)
    (root / MODEL_MANIFEST_FILE).write_bytes(manifest_bytes(root))


TAMPER_CASES: dict[str, tuple[Callable[[Path], object], str]] = {
    "code file": (_edit_policy_code, r"model file 'code/scoring/decision/policy\.py' was modified"),
    "entry point": (_append_to("pyfunc_model.py"), r"model file 'pyfunc_model\.py' was modified"),
    "MLmodel": (_append_to("MLmodel"), r"model file 'MLmodel' was modified"),
    "environment file": (_append_to("requirements.txt"), r"model file 'requirements\.txt' was modified"),
    "model file": (
        _append_to("artifacts/model_files/calibrator.json"),
        r"model file 'artifacts/model_files/calibrator\.json' was modified",
    ),
    "added file": (
        lambda root: (root / "code" / "scoring" / "sitecustomize.py").write_text("print('hi')\n"),
        r"files \['code/scoring/sitecustomize\.py'\] .* are not in the model's manifest",
    ),
    "removed file": (
        lambda root: (root / "artifacts" / "model_files" / "limits.json").unlink(),
        r"model file 'artifacts/model_files/limits\.json' is missing",
    ),
    "rewritten manifest": (_rewrite_manifest, r"model digest [0-9a-f]{64} .*, expected [0-9a-f]{64}"),
}


@pytest.mark.parametrize("case", list(TAMPER_CASES))
def test_loading_by_alias_refuses_a_tampered_registered_model(
    exported: tuple[Path, pd.DataFrame], store: Path, case: str
) -> None:
    path, raw = exported
    stored, digest, _ = _register(path)
    scorer, loaded_digest = load_verified_scorer(ALIAS_URI)  # untouched: loads, with the registry's digest
    assert loaded_digest == digest
    assert len(scorer.score(raw.head(3))) == 3
    change, message = TAMPER_CASES[case]
    change(stored)
    with pytest.raises(ModelIntegrityError, match=message):
        resolve_model(ALIAS_URI)


def test_a_registered_version_without_a_digest_tag_is_refused(
    exported: tuple[Path, pd.DataFrame], store: Path
) -> None:
    import mlflow

    path, _ = exported
    _, _, version = _register(path)
    mlflow.MlflowClient().delete_model_version_tag(NAME, version, DIGEST_TAG)
    with pytest.raises(
        ModelIntegrityError, match=rf"{NAME}@champion \(version {version}\) has no 'model_digest' tag"
    ):
        resolve_model(ALIAS_URI)


def test_an_expected_digest_must_match_the_registry_tag(
    exported: tuple[Path, pd.DataFrame], store: Path
) -> None:
    path, _ = exported
    _, digest, _ = _register(path)
    assert resolve_model(ALIAS_URI, expect_digest=digest).digest == digest
    other = "0" * 64
    with pytest.raises(ModelIntegrityError, match=f"has digest {digest} in the registry, expected {other}"):
        resolve_model(ALIAS_URI, expect_digest=other)


def test_file_loads_are_pinned_by_argument_or_environment(
    exported: tuple[Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = exported
    monkeypatch.delenv(DIGEST_ENV, raising=False)
    copy = tmp_path / "pd_model"
    shutil.copytree(path, copy)
    digest = model_digest(copy)
    _rewrite_manifest(copy)
    verify_model_dir(copy)  # consistent with itself: only a pinned digest tells
    with pytest.raises(ModelIntegrityError, match=f"expected {digest}"):
        resolve_model(copy, expect_digest=digest)
    monkeypatch.setenv(DIGEST_ENV, digest)
    with pytest.raises(ModelIntegrityError, match=f"expected {digest}"):
        resolve_model(copy)
    # and MLflow's own load of the directory checks the variable from the model's code
    import mlflow.pyfunc

    with pytest.raises(Exception, match=f"expected {digest}"):
        mlflow.pyfunc.load_model(str(copy))
    monkeypatch.setenv(DIGEST_ENV, "not-a-digest")
    with pytest.raises(ModelReferenceError, match="'not-a-digest' is not a SHA-256"):
        resolve_model(path)


def test_bytecode_caches_are_not_model_files_and_are_removed_before_a_verified_load(
    exported: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    path, _ = exported
    copy = tmp_path / "pd_model"
    shutil.copytree(path, copy)
    cache = copy / "code" / "scoring" / "decision" / "__pycache__"
    cache.mkdir()
    (cache / "policy.cpython-311.pyc").write_bytes(b"planted")
    assert not any("__pycache__" in name for name in model_files(copy))
    resolve_model(copy, expect_digest=model_digest(path))
    assert not cache.exists()


def test_malformed_registry_uri_is_refused_with_the_expected_forms() -> None:
    with pytest.raises(
        ModelReferenceError, match=r"expected models:/<name>@<alias> or models:/<name>/<version>"
    ):
        resolve_model("models:/auto_loan_pd@")


def test_cli_scores_by_alias_and_refuses_a_tampered_version_naming_the_file(
    exported: tuple[Path, pd.DataFrame], store: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from scoring.cli import app

    path, raw = exported
    stored, digest, _ = _register(path)
    source = tmp_path / "apps.csv"
    raw.head(20).to_csv(source, index=False)
    out = tmp_path / "scores.parquet"
    runner = CliRunner()
    result = runner.invoke(app, ["score", "--model", ALIAS_URI, "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"model digest {digest}" in " ".join(result.output.split())
    assert len(pd.read_parquet(out)) == 20
    _edit_policy_code(stored)
    result = runner.invoke(app, ["score", "--model", ALIAS_URI, "--input", str(source), "--output", str(out)])
    assert result.exit_code == 1
    assert "code/scoring/decision/policy.py' was modified" in " ".join(result.output.split())
    result = runner.invoke(
        app,
        ["score", "--model", str(path), "-i", str(source), "-o", str(out), "--expect-digest", "f" * 64],
    )
    assert result.exit_code == 1
    assert f"expected {'f' * 64}" in " ".join(result.output.split())


def test_cli_verify_prints_the_digest_and_fails_on_a_mismatch(
    exported: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from scoring.cli import app

    path, _ = exported
    runner = CliRunner()
    result = runner.invoke(app, ["verify", "--model", str(path)])
    assert result.exit_code == 0, result.output
    assert f"model digest {model_digest(path)}" in " ".join(result.output.split())
    copy = tmp_path / "pd_model"
    shutil.copytree(path, copy)
    _edit_policy_code(copy)
    result = runner.invoke(app, ["verify", "--model", str(copy)])
    assert result.exit_code == 1
    assert "'code/scoring/decision/policy.py' was modified" in " ".join(result.output.split())
