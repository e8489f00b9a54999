"""Golden models and their pinned answers: three small champions (a booster, a scorecard, a blend)
trained deterministically from a fixed seed through the real training protocol, committed
under tests/data/golden/ with the outputs they must give on tests/data/golden_applications.csv.

The parity tests compare path against path; these compare every path against stored numbers,
so a change that moves every output the same way fails too. When a change is meant to move
the answers (new training code, a library upgrade), regenerate and review the diff:

    .venv/bin/python tests/golden_support.py --write

``test_golden.py`` also rebuilds the models here and checks the committed files are what the
seed gives, so the committed files cannot drift from the code that made them unseen.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit

from scoring.config import Params, load_params
from scoring.core.contract import SYNTHETIC_SPEC
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.decision.risk import fit_risk_layer
from scoring.explain.reasons import ReasonCoder
from scoring.features.transformer import ApplicationFeatures
from scoring.models.config import XGBoostConfig
from scoring.models.training import fit_candidates
from scoring.serving.bundle import (
    CALIBRATOR_FILE,
    CHAMPION_FILE,
    MASTER_SCALE_FILE,
    REASONS_FILE,
    ModelBundle,
)
from scoring.serving.scorer import OUTPUT_COLUMNS, Scorer

TESTS = Path(__file__).resolve().parent
GOLDEN_DIR = TESTS / "data" / "golden"
APPLICATIONS = TESTS / "data" / "golden_applications.csv"
PARAMS_FILE = GOLDEN_DIR / "params.yaml"  # a frozen copy: editing params.yaml moves no pinned answer
CHAMPIONS = ("xgboost", "scorecard", "blend")
PARTS = {"xgboost": ["xgboost"], "scorecard": ["scorecard"], "blend": ["scorecard", "xgboost", "blend"]}
N_APPLICATIONS = 3000
SEED = 20261202
INFO = {"model_name": "golden", "model_version": "golden-1", "mlflow_run_id": "0" * 32}


def golden_params() -> Params:
    return load_params(PARAMS_FILE)


def build_models(root: Path) -> dict[str, Path]:
    """Train the candidates once (fit_candidates, train+valid out of fold, customers whole), then
    write one model folder per champion with its own calibration, master scale and reason codes."""
    params = golden_params()
    apps, _ = generate_portfolio(
        SyntheticDataConfig(n_applications=N_APPLICATIONS, months=24, immature_months=0), SEED
    )
    apps = apps[apps[SYNTHETIC_SPEC.target_column].notna()].reset_index(drop=True)
    cut = int(len(apps) * 0.75)
    train, valid = apps.iloc[:cut], apps.iloc[cut:]
    target = SYNTHETIC_SPEC.target_column
    features = ApplicationFeatures(exclude_columns=SYNTHETIC_SPEC.non_feature_columns).fit(train)
    config = params.train.model_copy(
        update={
            "candidates": ["scorecard", "xgboost", "blend"],
            "xgboost": XGBoostConfig(n_estimators=60, early_stopping_rounds=10, n_jobs=1),
        }
    )
    fitted = fit_candidates(
        features.transform(train),
        train[target],
        features.transform(valid),
        valid[target],
        config,
        SEED,
        groups_train=train[SYNTHETIC_SPEC.customer_column],
        groups_valid=valid[SYNTHETIC_SPEC.customer_column],
    )
    held_out = fitted.calibration
    out: dict[str, Path] = {}
    for champion in CHAMPIONS:
        folder = root / champion
        if folder.exists():
            shutil.rmtree(folder)
        bundle = ModelBundle(folder)
        folder.mkdir(parents=True)
        bundle.save_features(features)
        bundle.save_candidates({name: fitted.models[name] for name in PARTS[champion]})
        bundle.write(CHAMPION_FILE, {"champion": champion, "candidates": PARTS[champion]})
        layer = fit_risk_layer(
            expit(held_out[champion].to_numpy(dtype=np.float64)),
            held_out["target"].to_numpy(dtype=np.float64),
            params.calibrate,
            SEED,
        )
        bundle.write(CALIBRATOR_FILE, layer.calibrator.to_dict())
        bundle.write(MASTER_SCALE_FILE, layer.scale.to_dict())
        coder = ReasonCoder.fit(bundle.load_model(), train, params.reasons)
        bundle.write(REASONS_FILE, coder.to_dict())
        out[champion] = folder
    return out


def scorer(champion: str, model_dir: Path | None = None) -> Scorer:
    """The pipeline's scorer for a golden model folder (the committed one by default)."""
    return Scorer.from_model_dir(model_dir or GOLDEN_DIR / champion, golden_params(), SYNTHETIC_SPEC, INFO)


def applications() -> pd.DataFrame:
    return pd.read_csv(APPLICATIONS)


def expected_path(champion: str) -> Path:
    return GOLDEN_DIR / f"expected_{champion}.json"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def to_records(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """Column -> values, floats as Python floats: JSON writes them with repr, which reads back
    to the same bits (json.loads, not pandas' parser, which rounds)."""
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    return {str(c): [_plain(v) for v in frame[c].tolist()] for c in frame.columns}


def read_expected(champion: str) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = json.loads(expected_path(champion).read_text(encoding="utf-8"))
    return data


def write_golden() -> None:
    """Rebuild the committed models and their expected answers."""
    build_models(GOLDEN_DIR)
    for champion in CHAMPIONS:
        records = to_records(scorer(champion).score(applications()))
        expected_path(champion).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {GOLDEN_DIR / champion} and {expected_path(champion)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help="rebuild the golden models and answers")
    if parser.parse_args().write:
        write_golden()
    else:
        parser.print_help()
