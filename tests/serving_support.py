"""A small trained model directory, built in process in seconds, for the serving tests.

It has what the pipeline's models/ has after `calibrate` and `explain`: the feature spec, the
booster, champion.json, calibrator.json, master_scale.json and (unless asked not to)
reasons.json fitted with the reason map of the repository's params.yaml, plus run.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scoring.config import Params, load_params
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import write_json
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.decision.config import CalibrateConfig
from scoring.decision.risk import fit_risk_layer
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidates.xgboost import BoosterEstimator, train_xgboost
from scoring.models.config import XGBoostConfig
from scoring.models.model import PDModel
from scoring.serving.bundle import ModelBundle

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "0123456789abcdef0123456789abcdef"


def build_model_dir(
    directory: Path, n: int = 4000, n_estimators: int = 50, reasons: bool = True
) -> tuple[Path, pd.DataFrame]:
    """Train on the first 60%, calibrate on the next 25%; return the dir and the last 15% (raw, no target)."""
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=n, months=24, immature_months=0), 5)
    n_train, n_cal = int(n * 0.6), int(n * 0.85)
    train, cal, rest = apps.iloc[:n_train], apps.iloc[n_train:n_cal], apps.iloc[n_cal:]
    target = SYNTHETIC_SPEC.target_column
    features = ApplicationFeatures(exclude_columns=SYNTHETIC_SPEC.non_feature_columns).fit(train)
    result = train_xgboost(
        features.transform(train),
        train[target],
        features.transform(cal),
        cal[target],
        XGBoostConfig(n_estimators=n_estimators),
        seed=1,
    )
    model = PDModel(features, BoosterEstimator(result.booster))
    ModelBundle(directory).save_model(model)
    layer = fit_risk_layer(
        model.predict_pd(cal), cal[target].to_numpy(dtype=np.float64), CalibrateConfig(), seed=1
    )
    write_json(directory / "calibrator.json", layer.calibrator.to_dict())
    write_json(directory / "master_scale.json", layer.scale.to_dict())
    if reasons:
        from scoring.explain.reasons import ReasonCoder

        coder = ReasonCoder.fit(model, train, repo_params().reasons)
        write_json(directory / "reasons.json", coder.to_dict())
    return directory, rest.drop(columns=target).reset_index(drop=True)


def repo_params() -> Params:
    """The repository's params.yaml (its reason map covers the synthetic portfolio's features)."""
    return load_params(REPO / "params.yaml")


def as_output_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as object, as the scorer returns them (Parquet and JSON decode them as pandas strings)."""
    from scoring.serving.scorer import OUTPUT_COLUMNS, OUTPUT_TYPES

    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    return frame.astype({c: object for c, kind in OUTPUT_TYPES.items() if kind == "string"})
