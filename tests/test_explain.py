"""Contributions (booster TreeSHAP, scorecard WoE terms) and adverse-action reason codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from scoring.config import load_params, parse_params
from scoring.core.settings import ConfigError
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import generate_portfolio
from scoring.explain.config import ReasonsConfig
from scoring.explain.reasons import CODE_COLUMNS, TEXT_COLUMNS, ReasonCoder, ReasonConfigError, ReasonGroup
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidates.xgboost import BoosterEstimator, train_booster_rounds
from scoring.models.config import XGBoostConfig
from scoring.models.model import PDModel
from scoring.models.scorecard import ScorecardSettings, fit_scorecard
from scoring.serving.bundle import ModelBundle

SEED = 11
PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
NON_FEATURES = ["application_id", "customer_id", "application_date", "default_12m"]


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=4000), SEED)
    return apps[apps["default_12m"].notna()].reset_index(drop=True)


@pytest.fixture(scope="module")
def features(portfolio: pd.DataFrame) -> ApplicationFeatures:
    return ApplicationFeatures(exclude_columns=NON_FEATURES).fit(portfolio)


def booster_model(portfolio: pd.DataFrame, features: ApplicationFeatures, depth: int, rounds: int) -> PDModel:
    X = features.transform(portfolio)
    config = XGBoostConfig(max_depth=depth, learning_rate=0.2, n_jobs=1, colsample_bytree=0.6)
    booster = train_booster_rounds(X, portfolio["default_12m"], config, rounds, SEED)
    booster.set_param({"nthread": 1})
    return PDModel(features, BoosterEstimator(booster))


@pytest.fixture(scope="module")
def shallow(portfolio: pd.DataFrame, features: ApplicationFeatures) -> PDModel:
    """Depth 2, few trees: leaves several features unused."""
    return booster_model(portfolio, features, depth=2, rounds=15)


@pytest.fixture(scope="module")
def deep(portfolio: pd.DataFrame, features: ApplicationFeatures) -> PDModel:
    return booster_model(portfolio, features, depth=6, rounds=40)


@pytest.fixture(scope="module")
def scorecard(portfolio: pd.DataFrame, features: ApplicationFeatures) -> PDModel:
    X = features.transform(portfolio)
    card = fit_scorecard(X.drop(columns=["thin_file"]), portfolio["default_12m"], ScorecardSettings(), SEED)
    return PDModel(features, card, kind="scorecard")


@pytest.fixture(scope="module")
def reasons_config() -> ReasonsConfig:
    return load_params(PARAMS).reasons


def margin(model: PDModel, apps: pd.DataFrame) -> np.ndarray:
    assert isinstance(model.estimator, BoosterEstimator)
    dmatrix = xgb.DMatrix(model.feature_matrix(apps), enable_categorical=True)
    return np.asarray(model.estimator.booster.predict(dmatrix, output_margin=True), dtype=np.float64)


# ------------------------------------------------------------------------ contributions


@pytest.mark.parametrize("name", ["shallow", "deep"])
def test_booster_contributions_add_up_to_the_margin_and_match_pred_contribs(
    name: str, request: pytest.FixtureRequest, portfolio: pd.DataFrame
) -> None:
    model: PDModel = request.getfixturevalue(name)
    apps = portfolio.iloc[:500]
    contributions = model.contributions(apps)
    matrix = model.feature_matrix(apps)
    assert list(contributions.columns) == [*matrix.columns, "bias"]
    assert contributions.index.equals(apps.index)
    # XGBoost accumulates the margin in float32: agreement to float32 precision.
    np.testing.assert_allclose(contributions.sum(axis=1), margin(model, apps), atol=2e-5)
    assert isinstance(model.estimator, BoosterEstimator)
    reference = model.estimator.reference_contributions(matrix)
    np.testing.assert_allclose(contributions.to_numpy(), reference.to_numpy(), atol=2e-5)


def test_scorecard_contributions_add_up_to_log_odds_and_points_to_score(
    scorecard: PDModel, portfolio: pd.DataFrame
) -> None:
    apps = portfolio.iloc[:500]
    matrix = scorecard.feature_matrix(apps)
    contributions = scorecard.contributions(apps)
    assert list(contributions.columns) == [*matrix.columns, "bias"]
    pd_ = scorecard.predict_pd(apps)
    np.testing.assert_allclose(contributions.sum(axis=1), np.log(pd_ / (1 - pd_)), atol=1e-9)
    # thin_file is not in the scorecard: it contributes nothing.
    assert (contributions["thin_file"] == 0.0).all()
    card = scorecard.estimator
    points = card.points_contributions(matrix)  # type: ignore[attr-defined]
    np.testing.assert_allclose(points.sum(axis=1), card.score(matrix), atol=1e-9)  # type: ignore[attr-defined]
    # Costing points is raising the log-odds.
    worst = contributions[card.selected_features].to_numpy()  # type: ignore[attr-defined]
    assert np.all((points.drop(columns="base").to_numpy() < 0) == (worst > 0))


# ------------------------------------------------------------------------ reason codes


def reason_rows(coder: ReasonCoder, model: PDModel, apps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    matrix = model.feature_matrix(apps)
    return coder.reasons(model, matrix), coder.group_contributions(model.contributions(apps))


@pytest.mark.parametrize("name", ["shallow", "deep", "scorecard"])
def test_reasons_are_at_most_four_each_raising_risk_best_first(
    name: str, request: pytest.FixtureRequest, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    model: PDModel = request.getfixturevalue(name)
    coder = ReasonCoder.fit(model, portfolio, reasons_config)
    apps = portfolio.iloc[:800]
    reasons, grouped = reason_rows(coder, model, apps)
    assert list(reasons.columns) == CODE_COLUMNS + TEXT_COLUMNS
    assert reasons.index.equals(apps.index)
    texts = {g.code: g.text for g in coder.groups}
    n_reasons = (reasons[CODE_COLUMNS] != "").sum(axis=1)
    assert n_reasons.max() == 4
    total = model.contributions(apps).drop(columns="bias").sum(axis=1)
    # Every applicant whose features add up to more risk than the average gets a reason.
    assert (n_reasons[total > 0] >= 1).all()
    for i, row in reasons.iterrows():
        codes = [c for c in row[CODE_COLUMNS] if c]
        assert list(row[CODE_COLUMNS])[: len(codes)] == codes  # no gaps
        assert [row[t] for t in TEXT_COLUMNS[: len(codes)]] == [texts[c] for c in codes]
        values = [grouped.at[i, c] for c in codes]
        assert all(v > 0 for v in values)
        assert values == sorted(values, reverse=True)
        others = [v for c, v in grouped.loc[i].items() if c not in codes and v > 0]
        if len(codes) < 4:
            assert not others  # nothing positive was left out
        else:
            assert max(others, default=0.0) <= values[-1]


def test_reasons_are_deterministic_and_survive_json(
    deep: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    import json

    coder = ReasonCoder.fit(deep, portfolio, reasons_config)
    matrix = deep.feature_matrix(portfolio.iloc[:300])
    first = coder.reasons(deep, matrix)
    again = ReasonCoder.fit(deep, portfolio, reasons_config).reasons(deep, matrix)
    restored = ReasonCoder.from_dict(json.loads(json.dumps(coder.to_dict())))
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, restored.reasons(deep, matrix))
    shuffled = matrix.sample(frac=1.0, random_state=3)
    pd.testing.assert_frame_equal(coder.reasons(deep, shuffled).loc[matrix.index], first)


def test_a_feature_the_model_does_not_use_is_never_a_reason(
    shallow: PDModel, scorecard: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    for model in (shallow, scorecard):
        coder = ReasonCoder.fit(model, portfolio, reasons_config)
        unused = {g.code for g in coder.groups if not g.used}
        assert unused, "the fixture model should leave some features unused"
        reasons, _ = reason_rows(coder, model, portfolio)
        given = set(reasons[CODE_COLUMNS].to_numpy().ravel()) - {""}
        assert given and not (given & unused)
    card = scorecard.estimator
    unselected = set(scorecard.feature_matrix(portfolio.iloc[:1]).columns) - set(card.selected_features)  # type: ignore[attr-defined]
    coder = ReasonCoder.fit(scorecard, portfolio, reasons_config)
    assert all(not g.used for g in coder.groups if set(g.features) <= unselected)


def test_grouped_features_give_one_reason_with_their_summed_contribution(
    deep: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    apps = portfolio.iloc[:500]
    contributions = deep.contributions(apps)
    grouped_coder = ReasonCoder.fit(deep, portfolio, reasons_config)
    by_name = {g.name: g for g in grouped_coder.groups}
    leverage = by_name["leverage"]
    assert set(leverage.features) == {"loan_to_value", "down_payment_ratio"}
    grouped = grouped_coder.group_contributions(contributions)
    np.testing.assert_allclose(
        grouped[leverage.code], contributions["loan_to_value"] + contributions["down_payment_ratio"]
    )
    # Without groups each member has its own code; with them, only the group's code appears.
    ungrouped_map = dict(reasons_config.reason_map)
    for group, members in reasons_config.groups.items():
        entry = ungrouped_map.pop(group)
        for k, member in enumerate(members):
            ungrouped_map[member] = entry.model_copy(update={"code": f"{entry.code}_{k}"})
    ungrouped = reasons_config.model_copy(update={"groups": {}, "reason_map": ungrouped_map})
    split_coder = ReasonCoder.fit(deep, portfolio, ungrouped)
    member_codes = {ungrouped_map[m].code for m in leverage.features}
    split_reasons = reason_rows(split_coder, deep, apps)[0]
    both = split_reasons[CODE_COLUMNS].apply(lambda r: member_codes <= set(r), axis=1)
    assert both.any(), "some applicant should have both leverage features among the reasons"
    merged = reason_rows(grouped_coder, deep, apps)[0]
    codes = merged[CODE_COLUMNS].to_numpy()
    assert not np.isin(codes, sorted(member_codes)).any()
    assert (codes[both.to_numpy()] == leverage.code).any(axis=1).all()


def test_max_reasons_and_min_contribution_are_honoured(
    shallow: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    config = reasons_config.model_copy(update={"max_reasons": 2, "min_contribution": 0.05})
    coder = ReasonCoder.fit(shallow, portfolio, config)
    reasons, grouped = reason_rows(coder, shallow, portfolio.iloc[:500])
    assert (reasons[CODE_COLUMNS[2:]] == "").all().all()
    for i, row in reasons.iterrows():
        for code in row[CODE_COLUMNS[:2]]:
            if code:
                assert grouped.at[i, code] > 0.05


def test_training_mean_baseline_ranks_by_excess_over_the_mean(
    deep: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    config = reasons_config.model_copy(update={"baseline": "training_mean"})
    coder = ReasonCoder.fit(deep, portfolio, config)
    means = deep.contributions(portfolio).drop(columns="bias").mean()
    for g in coder.groups:
        assert g.baseline == pytest.approx(float(means[list(g.features)].sum()), abs=1e-9)
    reasons, grouped = reason_rows(coder, deep, portfolio.iloc[:300])
    baselines = {g.code: g.baseline for g in coder.groups}
    for i, row in reasons.iterrows():
        excess = [grouped.at[i, c] - baselines[c] for c in row[CODE_COLUMNS] if c]
        assert all(e > 0 for e in excess) and excess == sorted(excess, reverse=True)


def tiny_coder(max_reasons: int = 4) -> ReasonCoder:
    groups = [
        ReasonGroup("b", "B", "text b", ("b",), True, 0.0),
        ReasonGroup("a", "A", "text a", ("a",), True, 0.0),
        ReasonGroup("c", "C", "text c", ("c", "d"), True, 0.0),
        ReasonGroup("e", "E", "text e", ("e",), False, 0.0),
    ]
    return ReasonCoder(["a", "b", "c", "d", "e"], groups, max_reasons, 0.0, "expected_value")


def test_ties_break_by_code_and_rows_without_risk_get_no_reason() -> None:
    contributions = pd.DataFrame(
        {
            "a": [0.5, -1.0, 0.2],
            "b": [0.5, -1.0, 0.0],
            "c": [0.25, -1.0, 0.0],
            "d": [0.25, 0.5, 0.0],
            "e": [9.0, 9.0, 0.0],  # unused by the model: never a reason, whatever its value
            "bias": [-3.0, -3.0, -3.0],
        },
        index=[10, 20, 30],
    )
    reasons = tiny_coder().reasons_from_contributions(contributions)
    assert reasons.loc[10, CODE_COLUMNS].tolist() == ["A", "B", "C", ""]
    assert reasons.loc[10, TEXT_COLUMNS].tolist() == ["text a", "text b", "text c", ""]
    assert reasons.loc[20, CODE_COLUMNS].tolist() == ["", "", "", ""]  # c + d = -0.5
    assert reasons.loc[30, CODE_COLUMNS].tolist() == ["A", "", "", ""]
    two = tiny_coder(max_reasons=2).reasons_from_contributions(contributions)
    assert two.loc[10, CODE_COLUMNS].tolist() == ["A", "B", "", ""]


# ------------------------------------------------------------------------ configuration errors


def with_map(config: ReasonsConfig, **changes: Any) -> ReasonsConfig:
    return config.model_copy(update=changes)


def test_unknown_or_missing_features_in_the_map_are_errors_naming_them(
    shallow: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    sample = portfolio.iloc[:200]
    extra = dict(reasons_config.reason_map)
    extra["shoe_size"] = extra["region"].model_copy(update={"code": "R99"})
    with pytest.raises(ReasonConfigError, match="shoe_size"):
        ReasonCoder.fit(shallow, sample, with_map(reasons_config, reason_map=extra))
    missing = {k: v for k, v in reasons_config.reason_map.items() if k != "inquiries_6m"}
    with pytest.raises(ReasonConfigError, match="inquiries_6m"):
        ReasonCoder.fit(shallow, sample, with_map(reasons_config, reason_map=missing))
    groups = {**reasons_config.groups, "leverage": ["loan_to_value", "vehicle_colour"]}
    with pytest.raises(ReasonConfigError, match="vehicle_colour"):
        ReasonCoder.fit(shallow, sample, with_map(reasons_config, groups=groups))


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"reason_map": {"a": {"code": "R1", "text": "x"}, "b": {"code": "R1", "text": "y"}}}, "R1"),
        ({"groups": {"g": ["a", "b"], "h": ["b", "c"]}}, "'b'"),
        ({"groups": {"g": ["a"]}}, "at least two"),
        ({"groups": {"g": ["a", "b"]}, "reason_map": {"a": {"code": "R1", "text": "x"}}}, "grouped"),
        ({"max_reasons": 5}, "max_reasons"),
        ({"baseline": "median"}, "baseline"),
        ({"reason_map": {"a": {"code": "R1", "text": "x", "severity": 2}}}, "severity"),
    ],
)
def test_bad_reasons_section_is_a_config_error(section: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_params({"reasons": section})


def test_json_from_another_version_or_with_uncovered_features_is_refused() -> None:
    spec = tiny_coder().to_dict()
    with pytest.raises(ReasonConfigError, match="version"):
        ReasonCoder.from_dict({**spec, "version": 99})
    with pytest.raises(ReasonConfigError, match="exactly one group"):
        ReasonCoder.from_dict({**spec, "features": [*spec["features"], "f"]})


def test_matrix_with_other_columns_is_refused(
    shallow: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    coder = ReasonCoder.fit(shallow, portfolio.iloc[:200], reasons_config)
    matrix = shallow.feature_matrix(portfolio.iloc[:5]).drop(columns=["region"])
    with pytest.raises(ReasonConfigError, match="region"):
        coder.reasons(shallow, matrix)


# ------------------------------------------------------------------------ fast TreeSHAP


def test_fast_treeshap_matches_pred_contribs_whatever_the_threads(
    deep: PDModel, portfolio: pd.DataFrame
) -> None:
    from scoring.models.treeshap import build_tables, float64_margin, tree_shap_tables

    assert isinstance(deep.estimator, BoosterEstimator)
    matrix = deep.feature_matrix(portfolio)
    # Missing values and categorical splits are both exercised (with their default directions).
    assert matrix["bureau_score"].isna().any() and matrix["dealer_id"].isna().any()
    tables = build_tables(deep.estimator.booster)
    assert tables.leaf_pair.any() and (~tables.leaf_pair).any()
    assert tables.node_categorical.any()
    one = tree_shap_tables(tables, matrix, n_threads=1)
    two = tree_shap_tables(tables, matrix, n_threads=2)
    np.testing.assert_array_equal(one, two)
    reference = deep.estimator.reference_contributions(matrix).to_numpy()
    np.testing.assert_allclose(one, reference, atol=2e-5)
    # Against the margin summed in float64 (XGBoost's own leaves), additivity is to float64 rounding.
    np.testing.assert_allclose(one.sum(axis=1), float64_margin(deep.estimator.booster, matrix), atol=1e-9)
    # Not vacuous: the contributions are far from zero.
    assert np.abs(reference[:, :-1]).max() > 0.5


def test_single_leaf_trees_put_everything_in_the_bias(
    portfolio: pd.DataFrame, features: ApplicationFeatures
) -> None:
    from scoring.models.treeshap import tree_shap

    X = features.transform(portfolio)
    config = XGBoostConfig(max_depth=3, min_child_weight=1e9, n_jobs=1)
    booster = train_booster_rounds(X, portfolio["default_12m"], config, 3, SEED)
    values = tree_shap(booster, X.iloc[:50])
    assert (values[:, :-1] == 0).all()
    margin = booster.predict(xgb.DMatrix(X.iloc[:50], enable_categorical=True), output_margin=True)
    np.testing.assert_allclose(values[:, -1], margin, atol=1e-6)


def test_leaf_table_is_the_brute_force_shapley_value() -> None:
    """One leaf with three path features, against the Shapley formula summed subset by subset."""
    from itertools import combinations
    from math import factorial

    from scoring.models.treeshap import leaf_tables

    value, zero = 0.7, np.array([0.3, 0.55, 0.9])
    table = leaf_tables(np.array([value]), zero[None, :])[0]
    d = 3
    for pattern in range(2**d):
        ones = [(pattern >> j) & 1 for j in range(d)]
        for i in range(d):
            others = [j for j in range(d) if j != i]
            total = 0.0
            for size in range(d):
                for subset in combinations(others, size):
                    weight = factorial(size) * factorial(d - size - 1) / factorial(d)
                    term = np.prod([ones[j] if j in subset else zero[j] for j in others])
                    total += weight * term
            assert table[pattern, i] == pytest.approx(value * (ones[i] - zero[i]) * total, abs=1e-12)


# ------------------------------------------------------------------------ the explain stage


@pytest.mark.slow
def test_explain_stage_writes_coder_summary_and_plots_and_explains_every_decline(pipeline: Path) -> None:
    import json

    from scoring.decision.grades import MasterScale
    from scoring.decision.risk import RiskLayer, decide_and_limit
    from scoring.models.calibration import Calibrator

    out = pipeline / "reports/explanations"
    summary = json.loads((out / "summary.json").read_text())
    assert {
        "global_importance",
        "reason_frequencies",
        "n_explained",
        "method",
        "additivity_max_error",
    } <= set(summary)
    test = pd.read_parquet(pipeline / "data/split/test.parquet").reset_index(drop=True)
    assert summary["n_explained"] == len(test)
    assert summary["additivity_max_error"] < 1e-4
    importance = [d["mean_abs_contribution"] for d in summary["global_importance"]]
    assert importance == sorted(importance, reverse=True) and importance[0] > 0
    counts = [d["count"] for d in summary["reason_frequencies"]]
    assert counts == sorted(counts, reverse=True)

    model = ModelBundle(pipeline / "models").load_model()
    coder = ReasonCoder.from_dict(json.loads((pipeline / "models/reasons.json").read_text()))
    params = load_params(pipeline / "params.yaml")
    layer = RiskLayer(
        Calibrator.from_dict(json.loads((pipeline / "models/calibrator.json").read_text())),
        MasterScale.from_dict(json.loads((pipeline / "models/master_scale.json").read_text())),
    )
    matrix = model.feature_matrix(test)
    decisions = decide_and_limit(
        test, model.estimator.predict_pd(matrix), layer, params.policy, params.limits
    )
    declined = (decisions["decision"] == "decline").to_numpy()
    assert declined.sum() == summary["n_declined"] > 0
    contributions = model.estimator.contributions(matrix)
    reasons = coder.reasons(model, matrix)
    grouped = coder.group_contributions(contributions)
    total = contributions.drop(columns="bias").sum(axis=1).to_numpy()
    n_codes = (reasons[CODE_COLUMNS] != "").sum(axis=1).to_numpy()
    assert ((n_codes[declined & (total > 0)] >= 1) & (n_codes[declined & (total > 0)] <= 4)).all()
    for i in np.flatnonzero(declined):
        for code in reasons.loc[i, CODE_COLUMNS]:
            if code:
                assert grouped.at[i, code] > 0
    assert summary["declined_without_reason_and_positive_total"] == 0

    plots = set(summary["plots"])
    assert {"beeswarm.png", "waterfall_decline_1.png"} <= plots
    assert {f"dependence_{f}.png" for f in summary["dependence_features"]} <= plots
    assert {f"waterfall_grade_{g}.png" for g in set(decisions["grade"].tolist())} <= plots
    for name in plots:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    from mlflow.tracking import MlflowClient

    run_id = json.loads((pipeline / "models/run.json").read_text())["run_id"]
    client = MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    logged = {a.path for a in client.list_artifacts(run_id, "explain")}
    assert {"explain/reasons.json", "explain/summary.json", "explain/beeswarm.png"} <= logged


def test_array_paths_give_the_frame_paths_values(
    shallow: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    """The scorer's NumPy path: predictions, contributions and reasons without frames."""
    apps = portfolio.iloc[:300]
    assert isinstance(shallow.estimator, BoosterEstimator)
    matrix = shallow.feature_matrix(apps)
    values = shallow.features.feature_values(shallow.features.input_arrays(apps))
    path = shallow.estimator.array_path(shallow.features)
    np.testing.assert_array_equal(path.predict_pd(values), shallow.estimator.predict_pd(matrix))
    np.testing.assert_array_equal(path.log_odds(values), shallow.estimator.log_odds(matrix))
    contributions = path.contributions(values)
    np.testing.assert_array_equal(contributions, shallow.estimator.contributions(matrix).to_numpy())
    coder = ReasonCoder.fit(shallow, portfolio, reasons_config)
    codes, texts = coder.reason_values(contributions)
    expected = coder.reasons(shallow, matrix)
    assert codes.tolist() == expected[CODE_COLUMNS].to_numpy().tolist()
    assert texts.tolist() == expected[TEXT_COLUMNS].to_numpy().tolist()
    with pytest.raises(ReasonConfigError, match="expected"):
        coder.reason_values(contributions[:, :-2])


def test_blend_array_paths_and_the_scorer_over_a_blend_give_the_frame_values(
    scorecard: PDModel, deep: PDModel, portfolio: pd.DataFrame, reasons_config: ReasonsConfig
) -> None:
    """The blend's NumPy path (the booster on float32 values, the scorecard on float64 values), and
    the scorer's output over a blend, equal the DataFrame functions exactly."""
    from scoring.core.contract import SYNTHETIC_SPEC
    from scoring.decision.config import CalibrateConfig
    from scoring.decision.limits import LimitSettings
    from scoring.decision.policy import PolicySettings
    from scoring.decision.risk import RiskLayer, decide_and_limit, fit_risk_layer
    from scoring.models.candidates.blend import BlendEstimator
    from scoring.serving.scorer import Scorer, ScoreScaling

    assert isinstance(deep.estimator, BoosterEstimator)
    blend = PDModel(deep.features, BlendEstimator(scorecard.estimator, deep.estimator, 0.3), kind="blend")
    estimator = blend.estimator
    assert isinstance(estimator, BlendEstimator)
    apps = portfolio.iloc[:400]
    matrix = blend.feature_matrix(apps)
    matrix64 = blend.features.feature_values(blend.features.input_arrays(apps))
    path = estimator.array_path(blend.features)
    np.testing.assert_array_equal(path.predict_pd(matrix64), estimator.predict_pd(matrix))
    np.testing.assert_array_equal(path.contributions(matrix64), estimator.contributions(matrix).to_numpy())

    layer = fit_risk_layer(blend.predict_pd(portfolio), portfolio["default_12m"], CalibrateConfig(), SEED)
    coder = ReasonCoder.fit(blend, portfolio, reasons_config)
    policy, limits = PolicySettings(), LimitSettings()
    scorer = Scorer(
        blend, layer.calibrator, layer.scale, policy, limits, ScoreScaling(), SYNTHETIC_SPEC, reasons=coder
    )
    raw = apps.drop(columns="default_12m")
    out = scorer.score(raw)
    risk = decide_and_limit(
        raw, blend.predict_pd(raw), RiskLayer(layer.calibrator, layer.scale), policy, limits
    )
    np.testing.assert_array_equal(out["pd"].to_numpy(), risk["pd"].to_numpy())
    assert out["decision"].tolist() == risk["decision"].tolist()
    assert out["limit_constraint"].tolist() == risk["binding_constraint"].tolist()
    expected = coder.reasons(blend, matrix)
    for column in (*CODE_COLUMNS, *TEXT_COLUMNS):
        assert out[column].tolist() == expected[column].tolist(), column
    one_by_one = pd.concat([scorer.score(raw.iloc[[i]]) for i in range(0, 400, 37)], ignore_index=True)
    pd.testing.assert_frame_equal(one_by_one, out.iloc[::37].reset_index(drop=True), check_exact=True)
