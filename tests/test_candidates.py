"""Model candidates as plug-ins: the registry, every built-in candidate's contract, and a toy
candidate added through the registry alone that trains, exports and serves over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.decision.config import CalibrateConfig
from scoring.decision.risk import fit_risk_layer
from scoring.export import export_model, plugin_code
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import (
    CandidatePlugin,
    FitContext,
    UnknownCandidateError,
    plugin,
    register,
    registered,
    unregister,
)
from scoring.models.config import ChampionConfig, TrainConfig
from scoring.models.model import PDModel
from scoring.models.training import champion_record, fit_candidates
from scoring.serving.artifact import files_dir, load_scorer
from scoring.serving.bundle import (
    CALIBRATOR_FILE,
    CHAMPION_FILE,
    MASTER_SCALE_FILE,
    PLUGINS_FILE,
    ModelBundle,
)
from scoring.serving.http import dataframe_split, post_json, predictions_frame, start_server, stop_server
from scoring.serving.scorer import Scorer
from serving_support import RUN_ID, as_output_types, repo_params

GOLDEN = Path(__file__).parent / "data" / "golden_applications.csv"
INFO = {"model_name": "test", "model_version": RUN_ID[:12], "mlflow_run_id": RUN_ID}
TARGET = SYNTHETIC_SPEC.target_column
MONOTONE = {"bureau_score": "decreasing", "debt_to_income": "increasing"}
FITTED_PLUGINS = sorted(name for name, p in registered().items() if isinstance(p, CandidatePlugin))


@pytest.fixture(scope="module")
def data() -> tuple[ApplicationFeatures, pd.DataFrame, pd.DataFrame]:
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=5000, months=24, immature_months=0), 11)
    train, valid = apps.iloc[:3500].reset_index(drop=True), apps.iloc[3500:].reset_index(drop=True)
    features = ApplicationFeatures(exclude_columns=SYNTHETIC_SPEC.non_feature_columns).fit(train)
    return features, train, valid


def test_the_builtin_candidates_are_registered_and_unknown_names_are_refused() -> None:
    assert {"scorecard", "xgboost", "xgboost_defaults", "lightgbm", "blend"} <= set(registered())
    with pytest.raises(UnknownCandidateError, match=r"'forest' is not registered; expected one of \["):
        plugin("forest")
    with pytest.raises(ValidationError, match="'forest' is not registered"):
        TrainConfig(candidates=["scorecard", "forest"])
    with pytest.raises(ValidationError, match=r"candidate_params.lightgbm: num_leavs: Extra inputs"):
        TrainConfig(candidates=["lightgbm"], candidate_params={"lightgbm": {"num_leavs": 7}})
    with pytest.raises(
        ValidationError, match=r"'blend' combines \['scorecard'\]; expected each part listed before it"
    ):
        TrainConfig(candidates=["blend", "scorecard", "xgboost"])
    with pytest.raises(ValidationError, match=r"reads its settings from train\.xgboost"):
        TrainConfig(candidates=["xgboost"], candidate_params={"xgboost": {"max_depth": 3}})
    with pytest.raises(ValidationError, match=r"candidate_params: \['lightgbm'\] are not in candidates"):
        TrainConfig(candidates=["scorecard"], candidate_params={"lightgbm": {}})


@pytest.mark.parametrize("name", FITTED_PLUGINS)
def test_every_fitted_candidate_keeps_the_protocol(
    name: str, data: tuple[ApplicationFeatures, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    """Log-odds, PD, additive contributions, the serving array path, files without pickle that
    load to the same predictions, and the same bytes from the same seed."""
    features, train, valid = data
    found = plugin(name)
    assert isinstance(found, CandidatePlugin)
    config = TrainConfig(candidates=[name], monotone_risk=MONOTONE)
    settings = config.candidate_settings(name)
    X, Xv = features.transform(train), features.transform(valid)
    context = FitContext(7, MONOTONE)
    settings, _ = found.settle(settings, X, train[TARGET], Xv, valid[TARGET], context)
    model = found.fit(settings, X, train[TARGET], context)

    z, pd_ = model.log_odds(Xv), model.predict_pd(Xv)
    np.testing.assert_allclose(pd_, 1 / (1 + np.exp(-z)), rtol=1e-6, atol=1e-7)
    contributions = model.contributions(Xv)
    assert list(contributions.columns) == [*map(str, Xv.columns), "bias"]
    np.testing.assert_allclose(contributions.sum(axis=1), z, atol=1e-5)
    # The serving path over the float64 feature array equals the frame path.
    values = features.feature_values(features.input_arrays(valid))
    path = model.array_path(features)
    np.testing.assert_array_equal(path.predict_pd(values), pd_)
    np.testing.assert_allclose(path.log_odds(values), z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(path.contributions(values), contributions.to_numpy(), rtol=0, atol=1e-12)

    first, second = tmp_path / "first", tmp_path / "second"
    ModelBundle(first).save_model(PDModel(features, model, name))
    ModelBundle(second).save_model(PDModel(features, found.fit(settings, X, train[TARGET], context), name))
    written = sorted(p.relative_to(first).as_posix() for p in first.rglob("*") if p.is_file())
    assert written == sorted(
        ["champion.json", "features.json", PLUGINS_FILE, *(f"candidates/{name}/{f}" for f in found.files)]
    )
    for relative in written:
        content = (first / relative).read_bytes()
        assert not content.startswith(b"\x80"), f"{relative} looks like a pickle"
        assert content == (second / relative).read_bytes(), f"{relative}: another fit, other bytes"
    loaded = ModelBundle(first).load_model()
    assert loaded.kind == name
    np.testing.assert_array_equal(loaded.predict_pd(valid), pd_)


def test_boosted_candidates_honour_the_monotone_risk_directions(
    data: tuple[ApplicationFeatures, pd.DataFrame, pd.DataFrame],
) -> None:
    features, train, _ = data
    X = features.transform(train)
    grid = pd.concat([X.iloc[[0]]] * 50, ignore_index=True)
    grid["bureau_score"] = np.linspace(X["bureau_score"].min(), X["bureau_score"].max(), 50)
    for name in ("xgboost_defaults", "lightgbm"):
        found = plugin(name)
        assert isinstance(found, CandidatePlugin)
        settings = TrainConfig(candidates=[name]).candidate_settings(name)
        model = found.fit(settings, X, train[TARGET], FitContext(3, MONOTONE))
        assert np.all(np.diff(model.log_odds(grid)) <= 1e-12), name  # risk falls as the score rises


@pytest.mark.slow
def test_a_toy_candidate_added_through_the_registry_trains_exports_and_serves(
    data: tuple[ApplicationFeatures, pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    import toy_candidate  # registers "toy_linear" (a module outside the package)

    features, train, valid = data
    assert toy_candidate.NAME in registered()
    config = TrainConfig(
        candidates=["scorecard", "toy_linear", "blend"],
        candidate_params={"toy_linear": {"ridge": 2.0}, "blend": {"parts": ["scorecard", "toy_linear"]}},
        champion=ChampionConfig(cv_folds=3),
        monotone_risk=MONOTONE,
    )
    fitted = fit_candidates(
        features.transform(train), train[TARGET], features.transform(valid), valid[TARGET], config, seed=5
    )
    assert set(fitted.models) == {"scorecard", "toy_linear", "blend"}
    assert set(fitted.calibration.columns) == {
        "split",
        "target",
        "scorecard",
        "toy_linear",
        "blend",
        "champion",
    }

    bundle = ModelBundle(tmp_path / "models")
    bundle.save_features(features)
    bundle.save_candidates(fitted.models)
    # Export the toy itself as champion: it is what must load where the artifact is served.
    record = {**champion_record(fitted, config), "champion": "toy_linear"}
    bundle.write(CHAMPION_FILE, record)
    assert bundle.plugin_modules()["toy_linear"] == "toy_candidate"
    model = bundle.load_model()
    assert model.kind == "toy_linear"
    layer = fit_risk_layer(
        np.asarray(1 / (1 + np.exp(-fitted.calibration["toy_linear"]))),
        fitted.calibration["target"].to_numpy(dtype=np.float64),
        CalibrateConfig(),
        seed=5,
    )
    bundle.write(CALIBRATOR_FILE, layer.calibrator.to_dict())
    bundle.write(MASTER_SCALE_FILE, layer.scale.to_dict())
    from scoring.explain.reasons import ReasonCoder

    bundle.write("reasons.json", ReasonCoder.fit(model, train, repo_params().reasons).to_dict())

    raw = valid.drop(columns=TARGET)
    assert plugin_code(bundle) == [str(Path(toy_candidate.__file__))]
    out = export_model(bundle.root, tmp_path / "pd_model", SYNTHETIC_SPEC, raw, INFO, repo_params())
    assert (out / "code" / "toy_candidate.py").is_file()
    expected = Scorer.from_model_dir(bundle.root, repo_params(), SYNTHETIC_SPEC, INFO).score(raw)
    assert (expected["reason_code_1"] != "").any()
    pd.testing.assert_frame_equal(load_scorer(files_dir(out)).score(raw), expected, check_exact=True)
    manifest = json.loads((files_dir(out) / "manifest.json").read_text())
    assert {"candidates/toy_linear/toy.json", PLUGINS_FILE} <= set(manifest["files"])

    # Served by MLflow in another process, which imports the toy from the artifact's own code.
    process, url = start_server(out)
    try:
        golden = pd.read_csv(GOLDEN)
        status, answer = post_json(url, dataframe_split(golden))
        assert status == 200, answer
        served = as_output_types(predictions_frame(answer))
        pd.testing.assert_frame_equal(
            served, Scorer.from_files(files_dir(out)).score(golden), check_exact=True
        )
    finally:
        stop_server(process)


def test_the_blend_pairs_the_scorecard_with_the_best_other_candidate() -> None:
    from scoring.models.candidates.blend import BlendConfig

    rng = np.random.default_rng(3)
    n = 4000
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-(a + b)))).astype(float)
    found = plugin("blend")
    log_odds = {"scorecard": a, "weak": 0.2 * b + rng.normal(size=n), "strong": b}
    settled, info = found.choose(BlendConfig(), y, log_odds)  # type: ignore[attr-defined]
    assert settled.parts == ("scorecard", "strong") and info["parts"] == ["scorecard", "strong"]
    assert info["weight"] == 0.5  # each part sees half of the risk
    with pytest.raises(ValidationError, match="only the second part may be 'best'"):
        BlendConfig(parts=("best", "scorecard"))


def test_registering_a_second_plugin_under_a_taken_name_is_refused() -> None:
    class Impostor(CandidatePlugin):
        name = "lightgbm"
        settings_type = TrainConfig
        files = ("x.json",)

    with pytest.raises(ValueError, match="'lightgbm' is registered already"):
        register(Impostor())

    class Fresh(Impostor):
        name = "fresh_candidate"

    register(Fresh())
    try:
        assert "fresh_candidate" in registered()
    finally:
        unregister("fresh_candidate")
    assert "fresh_candidate" not in registered()


def test_lightgbm_reads_columns_whose_names_lightgbm_itself_refuses(
    data: tuple[ApplicationFeatures, pd.DataFrame, pd.DataFrame],
) -> None:
    """A file's own column names may hold JSON characters, which LightGBM refuses as feature names."""
    features, train, valid = data
    X, Xv = features.transform(train), features.transform(valid)
    odd = {c: f'{c} [%, "x": {{1}}]' for c in list(X.columns)[:3]}
    found = plugin("lightgbm")
    assert isinstance(found, CandidatePlugin)
    settings = TrainConfig(candidates=["lightgbm"]).candidate_settings("lightgbm")
    plain = found.fit(settings, X, train[TARGET], FitContext(2))
    renamed = found.fit(settings, X.rename(columns=odd), train[TARGET], FitContext(2))
    np.testing.assert_array_equal(renamed.log_odds(Xv.rename(columns=odd)), plain.log_odds(Xv))
    contributions = renamed.contributions(Xv.rename(columns=odd))
    assert list(contributions.columns) == [*(odd.get(c, c) for c in map(str, Xv.columns)), "bias"]


# ------------------------------------------------------------------ weighted rows (reject inference)

WEIGHTED_PLUGINS = sorted(name for name in FITTED_PLUGINS if plugin(name).takes_weights)


def test_the_builtin_fitted_candidates_all_take_weights() -> None:
    assert set(WEIGHTED_PLUGINS) >= {"scorecard", "xgboost", "xgboost_defaults", "lightgbm"}


@pytest.mark.parametrize("name", WEIGHTED_PLUGINS)
def test_a_weight_of_three_counts_a_row_three_times(name, data) -> None:
    from scoring.models.candidate import fit_candidate

    features, train, valid = data
    found = plugin(name)
    assert isinstance(found, CandidatePlugin)
    settings = TrainConfig(candidates=[name]).candidate_settings(name)
    context = FitContext(3, MONOTONE)
    X, y = features.transform(train), train[TARGET]
    bad = y.to_numpy() == 1
    weight = pd.Series(np.where(bad, 3.0, 1.0), index=X.index)
    tripled = np.concatenate([np.arange(len(X)), np.flatnonzero(bad), np.flatnonzero(bad)])
    X_dup, y_dup = X.iloc[tripled].reset_index(drop=True), y.iloc[tripled].reset_index(drop=True)
    X_valid = features.transform(valid)

    def mean_pd(model) -> float:
        return float(np.mean(1.0 / (1.0 + np.exp(-model.log_odds(X_valid)))))

    weighted = mean_pd(fit_candidate(found, settings, X, y, context, weight))
    duplicated = mean_pd(fit_candidate(found, settings, X_dup, y_dup, context))
    unweighted = fit_candidate(found, settings, X, y, context)
    ones = fit_candidate(found, settings, X, y, context, pd.Series(1.0, index=X.index))
    # weights of 1 change nothing; bads weighing 3 raise the PD as three copies of them do
    np.testing.assert_allclose(ones.log_odds(X_valid), unweighted.log_odds(X_valid), rtol=0, atol=1e-9)
    plain = mean_pd(unweighted)
    assert weighted > plain
    assert abs(weighted - duplicated) < 0.5 * abs(plain - duplicated)


def test_weights_for_a_candidate_that_cannot_take_them_name_it(data) -> None:
    from scoring.models.candidate import WeightsNotSupportedError, fit_candidate

    class Unweighted(CandidatePlugin):
        name = "unweighted_toy"

    features, train, _ = data
    X = features.transform(train)
    with pytest.raises(WeightsNotSupportedError, match="'unweighted_toy'"):
        fit_candidate(Unweighted(), None, X, train[TARGET], FitContext(1), pd.Series(1.0, index=X.index))
    with pytest.raises(ValueError, match="finite values >= 0"):
        fit_candidate(
            plugin("xgboost"),
            TrainConfig().xgboost,
            X,
            train[TARGET],
            FitContext(1),
            pd.Series(-1.0, index=X.index),
        )


def test_fit_candidates_trains_every_candidate_on_the_weighted_rows(data) -> None:
    features, train, valid = data
    config = TrainConfig(
        candidates=["scorecard", "xgboost_defaults"],
        fit_on="train",
        champion=ChampionConfig(selection="valid"),
    )
    X, X_valid = features.transform(train), features.transform(valid)
    weight = pd.Series(np.where(train[TARGET].to_numpy() == 1, 3.0, 1.0), index=X.index)
    plain = fit_candidates(X, train[TARGET], X_valid, valid[TARGET], config, 5)
    weighted = fit_candidates(X, train[TARGET], X_valid, valid[TARGET], config, 5, weight_train=weight)
    for name in ("scorecard", "xgboost_defaults"):
        # bads weighted 3x: every model's PD on valid rises
        pd_weighted = 1.0 / (1.0 + np.exp(-weighted.models[name].log_odds(X_valid)))
        pd_plain = 1.0 / (1.0 + np.exp(-plain.models[name].log_odds(X_valid)))
        assert pd_weighted.mean() > 1.1 * pd_plain.mean()
