"""The exported MLflow model: loads without pickle, scores exactly like the library Scorer on the
golden applications, checks its inputs, refuses tampering, and registers under an alias."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.export import CHAMPION_ALIAS, export_model, register_model
from scoring.serving.artifact import ArtifactIntegrityError, files_dir, load_scorer
from scoring.serving.bundle import ModelBundle
from scoring.serving.integrity import DIGEST_TAG, model_digest
from scoring.serving.scorer import OUTPUT_COLUMNS, Scorer
from serving_support import RUN_ID, build_model_dir, repo_params

GOLDEN = Path(__file__).parent / "data" / "golden_applications.csv"
INFO = {"model_name": "test", "model_version": RUN_ID[:12], "mlflow_run_id": RUN_ID}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("export")
    model_dir, raw = build_model_dir(root / "models")
    export_model(model_dir, root / "pd_model", SYNTHETIC_SPEC, raw, INFO, repo_params())
    return root / "pd_model", model_dir, raw


def _load(path: Path) -> object:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))


def _library(model_dir: Path) -> Scorer:
    return Scorer.from_model_dir(model_dir, repo_params(), SYNTHETIC_SPEC, INFO)


def test_golden_applications_score_identically_in_library_and_artifact_with_pickle_off(
    exported: tuple[Path, Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, model_dir, _ = exported
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    golden = pd.read_csv(GOLDEN)
    out = _load(path).predict(golden)  # type: ignore[attr-defined]
    expected = _library(model_dir).score(golden)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    pd.testing.assert_frame_equal(out, expected, check_exact=True)
    assert out["application_id"].tolist() == golden["application_id"].tolist()
    assert {"approve", "decline"} <= set(out["decision"])
    assert (out.loc[out["decision"] == "decline", "reason_code_1"] != "").all()
    # and the artifact's own files, without MLflow, give the same
    pd.testing.assert_frame_equal(load_scorer(files_dir(path)).score(golden), expected, check_exact=True)


def test_model_directory_holds_no_pickle_and_a_manifest_of_every_file(
    exported: tuple[Path, Path, pd.DataFrame],
) -> None:
    path, _, _ = exported
    files = [p for p in path.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert file.suffix in {".json", ".ubj", ".py", ".yaml", ".txt", ".typed", ""}, file
        assert not file.read_bytes().startswith(b"\x80"), f"{file} looks like a pickle"
    assert "python_model.pkl" not in {p.name for p in files}
    manifest = json.loads((files_dir(path) / "manifest.json").read_text())
    listed = set(manifest["files"])
    assert {
        "candidates/xgboost/booster.ubj",
        "champion.json",
        "features.json",
        "calibrator.json",
        "master_scale.json",
        "policy.json",
        "limits.json",
        "score_scaling.json",
        "reasons.json",
        "dataset.json",
        "model_info.json",
    } <= listed
    root = files_dir(path)
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {"manifest.json"}
    assert on_disk == listed
    assert json.loads((files_dir(path) / "limits.json").read_text())["rounding_unit"] == 1000.0


def test_signature_names_inputs_and_the_full_output(exported: tuple[Path, Path, pd.DataFrame]) -> None:
    path, _, raw = exported
    model = _load(path)
    signature = model.metadata.signature  # type: ignore[attr-defined]
    assert signature.outputs.input_names() == list(OUTPUT_COLUMNS)
    required = set(signature.inputs.required_input_names())
    assert {"application_id", "age", "monthly_income"} <= required
    assert "bureau_score" not in required and "dealer_id" not in required
    assert (path / "input_example.json").is_file()
    with pytest.raises(Exception, match="monthly_income"):
        model.predict(raw.drop(columns="monthly_income"))  # type: ignore[attr-defined]


def test_artifact_rejects_impossible_values_and_accepts_integral_floats(
    exported: tuple[Path, Path, pd.DataFrame],
) -> None:
    from mlflow.exceptions import MlflowException

    path, model_dir, raw = exported
    model = _load(path)
    rows = raw.head(10)
    as_float = rows.astype({"age": "float64", "term_months": "float64"})
    pd.testing.assert_frame_equal(model.predict(as_float), _library(model_dir).score(rows), check_exact=True)  # type: ignore[attr-defined]
    bad = as_float.copy()
    bad.loc[2, "age"] = 45.5
    bad.loc[4, "term_months"] = 0.0
    with pytest.raises(MlflowException, match=r"2 of 10 applications rejected") as info:
        model.predict(bad)  # type: ignore[attr-defined]
    assert "row 2: age: got 45.5, expected a whole number in 18..80" in str(info.value)
    assert "row 4: term_months: got 0, expected a whole number in 1..120" in str(info.value)
    assert info.value.get_http_status_code() == 400


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "candidates/xgboost/booster.ubj",
            lambda p: p.write_bytes(p.read_bytes() + b" "),
            r"'candidates/xgboost/booster.ubj' was modified",
        ),
        (
            "limits.json",
            lambda p: p.write_text(p.read_text().replace("1000.0", "1.0")),
            r"'limits.json' was modified",
        ),
        ("policy.json", lambda p: p.unlink(), r"'policy.json' is missing"),
        ("extra.json", lambda p: p.write_text("{}"), r"\['extra.json'\] are not in the manifest"),
    ],
)
def test_tampered_artifact_refuses_to_load(
    exported: tuple[Path, Path, pd.DataFrame], tmp_path: Path, name: str, change: object, message: str
) -> None:
    path, _, _ = exported
    copy = tmp_path / "pd_model"
    shutil.copytree(path, copy)
    change(files_dir(copy) / name)  # type: ignore[operator]
    with pytest.raises(ArtifactIntegrityError, match=message):
        load_scorer(files_dir(copy))
    # MLflow's own load: the whole directory's manifest names the file by its path in the model
    with pytest.raises(Exception, match=re.escape(f"artifacts/model_files/{name}")):
        _load(copy)


def test_a_scorecard_champion_exports_and_scores_identically(
    exported: tuple[Path, Path, pd.DataFrame], tmp_path: Path
) -> None:
    from scoring.data.synthetic import generate_portfolio
    from scoring.models.candidates.scorecard import train_scorecard
    from scoring.models.config import ScorecardConfig
    from scoring.models.model import PDModel

    _, model_dir, raw = exported
    models = tmp_path / "models"
    shutil.copytree(model_dir, models)
    from scoring.data.config import SyntheticDataConfig

    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=4000, months=24, immature_months=0), 5)
    train = apps.iloc[:2400]
    features = ModelBundle(model_dir).load_features()
    card = train_scorecard(
        features.transform(train), train["default_12m"], ScorecardConfig(), {"bureau_score": "decreasing"}, 1
    )
    ModelBundle(models).save_model(PDModel(features, card, "scorecard"))  # the booster's folder goes
    (models / "reasons.json").unlink()  # fitted for the booster's features
    assert not (models / "candidates" / "xgboost").exists()
    export_model(models, tmp_path / "pd_model", SYNTHETIC_SPEC, raw, INFO, repo_params())
    assert not (files_dir(tmp_path / "pd_model") / "candidates" / "xgboost").exists()
    out = _load(tmp_path / "pd_model").predict(raw)  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(out, _library(models).score(raw), check_exact=True)
    assert (out["reason_code_1"] == "").all()


def test_export_registers_the_model_under_the_champion_alias(
    exported: tuple[Path, Path, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    path, model_dir, raw = exported
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", None)
    mlflow.set_experiment("registry-test")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(path), artifact_path="pd_model")
    digest = model_digest(path)
    first = register_model(run.info.run_id, "pd_model", "auto_loan_pd", digest)
    # the same digest again (a retrain that gave the same model): the version it already has
    again = register_model(run.info.run_id, "pd_model", "auto_loan_pd", digest)
    client = mlflow.MlflowClient()
    assert (first, again) == ("1", "1")
    assert len(client.search_model_versions("name = 'auto_loan_pd'")) == 1
    # another digest is another model: a new version, and the alias follows it; back to the first
    # digest, the alias returns to version 1 without registering a third
    other = register_model(run.info.run_id, "pd_model", "auto_loan_pd", "0" * 64)
    assert other == "2"
    assert str(client.get_model_version_by_alias("auto_loan_pd", CHAMPION_ALIAS).version) == "2"
    assert register_model(run.info.run_id, "pd_model", "auto_loan_pd", digest) == "1"
    assert len(client.search_model_versions("name = 'auto_loan_pd'")) == 2
    version = client.get_model_version_by_alias("auto_loan_pd", CHAMPION_ALIAS)
    assert str(version.version) == "1"
    assert version.tags[DIGEST_TAG] == digest
    loaded = mlflow.pyfunc.load_model(f"models:/auto_loan_pd@{CHAMPION_ALIAS}")
    np.testing.assert_array_equal(
        loaded.predict(raw.head(20))["pd"].to_numpy(),
        _library(model_dir).score(raw.head(20))["pd"].to_numpy(),
    )


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_model_exported_twice_gives_the_same_bytes_digest_and_version(tmp_path: Path) -> None:
    """Nothing of when or where a model was exported is in its files: two exports of the same
    model directory into different folders are byte for byte the same (MLmodel keeps no time, no
    absolute path, no random uuid), so the digest and the content id (model_version) are the
    same; a change to what decides the answers (the policy) gives another id and digest."""
    import yaml

    from scoring.serving.scorer import model_info

    params = repo_params()
    model_dir, raw = build_model_dir(tmp_path / "models")
    first, second = tmp_path / "one" / "pd_model", tmp_path / "two" / "pd_model"
    for target in (first, second):
        export_model(model_dir, target, SYNTHETIC_SPEC, raw, model_info(params), params)
    assert _tree(first) == _tree(second)
    assert model_digest(first) == model_digest(second)
    mlmodel = yaml.safe_load((first / "MLmodel").read_text())
    assert "utc_time_created" not in mlmodel
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["model_code_path"] == "pyfunc_model.py"
    assert {entry["uri"] for entry in flavor["artifacts"].values()} == {"artifacts/model_files"}
    assert str(tmp_path) not in (first / "MLmodel").read_text()
    version = load_scorer(files_dir(first)).model_version
    assert re.fullmatch(r"[0-9a-f]{12}", version)
    assert version == Scorer.from_model_dir(model_dir, params, SYNTHETIC_SPEC).model_version
    assert (_load(first).predict(raw.head(3))["model_version"] == version).all()  # type: ignore[attr-defined]

    knock_outs = params.policy.knock_outs
    older = knock_outs.model_copy(update={"min_age": knock_outs.min_age + 1})
    stricter = params.model_copy(update={"policy": params.policy.model_copy(update={"knock_outs": older})})
    changed = tmp_path / "three" / "pd_model"
    export_model(model_dir, changed, SYNTHETIC_SPEC, raw, model_info(stricter), stricter)
    assert load_scorer(files_dir(changed)).model_version != version
    assert model_digest(changed) != model_digest(first)


def test_the_stages_that_export_a_model_depend_on_every_file_it_carries(
    exported: tuple[Path, Path, pd.DataFrame],
) -> None:
    """The exported model carries a copy of the whole package (models-from-code), so a change to
    any module changes its bytes: the stages that export one (the PD model, the behaviour model)
    must depend on all of src/scoring, or a fresh clone would rebuild a model whose bytes differ
    from what dvc.lock records."""
    import yaml

    path, _, _ = exported
    package = Path(__file__).resolve().parents[1] / "src" / "scoring"
    carried = {
        p.relative_to(path / "code" / "scoring").as_posix() for p in (path / "code" / "scoring").rglob("*.py")
    }
    assert carried == {p.relative_to(package).as_posix() for p in package.rglob("*.py")}
    stages = yaml.safe_load((package.parents[1] / "dvc.yaml").read_text())["stages"]
    for name, out in (("export", "models/pd_model"), ("collect", "models/behaviour_model")):
        assert out in stages[name]["outs"], name
        assert "src/scoring" in stages[name]["deps"], (
            f"stage {name} exports a model but does not depend on src/scoring"
        )
