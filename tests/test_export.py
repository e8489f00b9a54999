"""The exported MLflow model: loads without pickle, scores like the pipeline, refuses tampering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.config import SyntheticDataConfig, XGBoostConfig
from scoring.contract import SYNTHETIC_SPEC
from scoring.export import export_model
from scoring.features import ApplicationFeatures
from scoring.model import BoosterEstimator, PDModel
from scoring.synthetic import generate_portfolio
from scoring.train import train_xgboost


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PDModel, pd.DataFrame]:
    root = tmp_path_factory.mktemp("export")
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=4000, months=24, immature_months=0), 5)
    train, valid = apps.iloc[:3000], apps.iloc[3000:]
    features = ApplicationFeatures(exclude_columns=SYNTHETIC_SPEC.non_feature_columns).fit(train)
    target = SYNTHETIC_SPEC.target_column
    result = train_xgboost(
        features.transform(train),
        train[target],
        features.transform(valid),
        valid[target],
        XGBoostConfig(n_estimators=50),
        seed=1,
    )
    model = PDModel(features, BoosterEstimator(result.booster))
    model.save(root / "models")
    info = {"model_name": "test", "model_version": "v-test"}
    export_model(root / "models", root / "pd_model", SYNTHETIC_SPEC, valid, info)
    raw = valid.drop(columns=target).reset_index(drop=True)
    raw["bureau_score"] = raw["bureau_score"].astype("float64")  # as read from CSV or Parquet
    return root / "pd_model", model, raw


def _load(path: Path) -> object:
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))


def test_loads_with_pickle_off_and_matches_pipeline_scores(
    exported: tuple[Path, PDModel, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, model, raw = exported
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    out = _load(path).predict(raw)  # type: ignore[attr-defined]
    assert list(out.columns) == ["application_id", "pd", "model_version"]
    assert out["application_id"].tolist() == raw["application_id"].tolist()
    np.testing.assert_array_equal(out["pd"].to_numpy(), model.predict_pd(raw))
    assert (out["model_version"] == "v-test").all()


def test_model_directory_holds_no_pickle(exported: tuple[Path, PDModel, pd.DataFrame]) -> None:
    path, _, _ = exported
    files = [p for p in path.rglob("*") if p.is_file()]
    assert files
    for file in files:
        assert file.suffix in {".json", ".ubj", ".py", ".yaml", ".txt", ".typed", ""}, file
        assert not file.read_bytes().startswith(b"\x80"), f"{file} looks like a pickle"
    assert (path / "artifacts" / "booster.ubj").is_file()
    assert (path / "artifacts" / "champion.json").is_file()


def test_signature_requires_contract_fields(exported: tuple[Path, PDModel, pd.DataFrame]) -> None:
    path, _, raw = exported
    with pytest.raises(Exception, match="monthly_income"):
        _load(path).predict(raw.drop(columns="monthly_income"))  # type: ignore[attr-defined]


def test_tampered_booster_refuses_to_load(
    exported: tuple[Path, PDModel, pd.DataFrame], tmp_path: Path
) -> None:
    import shutil

    path, _, _ = exported
    copy = tmp_path / "pd_model"
    shutil.copytree(path, copy)
    booster = copy / "artifacts" / "booster.ubj"
    booster.write_bytes(booster.read_bytes() + b" ")
    with pytest.raises(Exception, match=r"model file 'estimator' \(booster.ubj\) was modified"):
        _load(copy)


def test_a_scorecard_champion_exports_and_scores_identically(
    exported: tuple[Path, PDModel, pd.DataFrame], tmp_path: Path
) -> None:
    from scoring.config import ScorecardConfig
    from scoring.train import train_scorecard

    _, xgb_model, raw = exported
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=4000, months=24, immature_months=0), 5)
    train = apps.iloc[:3000]
    features = xgb_model.features
    card = train_scorecard(
        features.transform(train), train["default_12m"], ScorecardConfig(), {"bureau_score": "decreasing"}, 1
    )
    model = PDModel(features, card, "scorecard")
    model.save(tmp_path / "models")
    export_model(tmp_path / "models", tmp_path / "pd_model", SYNTHETIC_SPEC, raw, {"model_version": "sc"})
    assert not (tmp_path / "pd_model" / "artifacts" / "booster.ubj").exists()
    out = _load(tmp_path / "pd_model").predict(raw)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(out["pd"].to_numpy(), model.predict_pd(raw))
