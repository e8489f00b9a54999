"""A bring-your-own dataset through the library stages in process: no contract columns, no date."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from scoring.config import load_params
from scoring.data.config import FileDataConfig, SplitConfig, ValidateConfig
from scoring.data.prepare import prepare_file
from scoring.data.split import split_applications
from scoring.data.validation import validate_frame
from scoring.explain.reasons import ReasonCoder
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidates.xgboost import BoosterEstimator, train_xgboost
from scoring.models.config import XGBoostConfig
from scoring.models.model import PDModel
from scoring.reporting.evaluation import evaluate_model

REPO = Path(__file__).resolve().parents[1]


def test_other_credit_data_runs_through_every_stage(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "LIMIT": rng.lognormal(10, 0.5, n).round(),
            "PAY_0": rng.integers(-2, 5, n),
            "JOB": rng.choice(["Office", "Sales", "Self", "Mgr"], n),
            "DEBTINC": np.where(rng.uniform(size=n) < 0.2, np.nan, rng.uniform(5, 60, n)),
        }
    )
    logit = -2 + 0.6 * frame["PAY_0"] + 0.03 * frame["DEBTINC"].fillna(60) + (frame["JOB"] == "Sales")
    frame["BAD"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path / "hmeq_like.csv"
    frame.to_csv(path, index=False)

    prepared = prepare_file(FileDataConfig(path=path, target_column="BAD"))
    report = validate_frame(prepared.applications, prepared.spec, ValidateConfig())
    assert report.success, report.failures()
    parts = split_applications(prepared.applications, prepared.spec, SplitConfig(), seed=1).parts
    assert len(parts["oot"]) == 0  # no date column: no out-of-time split
    features = ApplicationFeatures(exclude_columns=prepared.spec.non_feature_columns).fit(parts["train"])
    assert list(features.categories_) == ["JOB"] and features.derived_columns_ == []
    result = train_xgboost(
        features.transform(parts["train"]),
        parts["train"]["BAD"],
        features.transform(parts["valid"]),
        parts["valid"]["BAD"],
        XGBoostConfig(n_estimators=200),
        seed=1,
    )
    metrics = evaluate_model(
        PDModel(features, BoosterEstimator(result.booster)), parts, prepared.spec
    ).metrics
    assert set(metrics) == {"train", "valid", "test"}
    assert metrics["test"]["auc"] > 0.75
    assert "true_pd_auc" not in metrics["test"]

    # The shipped reason map describes the auto-loan contract: fitted to these features
    # (generic codes for the ones it does not know); strict or not, since none of these
    # names is a contract feature the map should have covered.
    model = PDModel(features, BoosterEstimator(result.booster))
    reasons_config = load_params(REPO / "params.yaml").reasons
    strict = ReasonCoder.fit(model, parts["train"], reasons_config)
    coder = ReasonCoder.fit(model, parts["train"], reasons_config, strict=False)
    assert strict.to_dict() == coder.to_dict()
    reasons = coder.reasons(model, features.transform(parts["test"]))
    codes = set(reasons[[f"reason_code_{i}" for i in range(1, 5)]].to_numpy().ravel()) - {""}
    assert codes and codes <= {f"F_{name}" for name in features.feature_names_out_}
