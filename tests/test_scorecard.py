"""The scorecard baseline: optbinning fit, JSON scorer, scaling, selection, edge values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring.models.scorecard import (
    MISSING_BIN,
    UNSEEN_BIN,
    ScorecardError,
    ScorecardModel,
    ScorecardSettings,
    fit_optbinning_scorecard,
    fit_scorecard,
    optbinning_frame,
)

SEED = 7
LEVELS = ["a", "b", "c", "d"]
TRENDS = {"driver": "descending"}


def make_data(n: int = 5000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A falling risk driver, a 4-level categorical (some missing), a numeric whose missingness
    carries signal, and pure noise."""
    rng = np.random.default_rng(seed)
    driver = rng.normal(size=n)
    cat = rng.choice(LEVELS, size=n, p=[0.3, 0.3, 0.2, 0.2]).astype(object)
    cat_missing = rng.random(n) < 0.06
    cat[cat_missing] = None
    partial = rng.normal(size=n)
    partial_missing = rng.random(n) < 0.25
    noise = rng.normal(size=n)
    cat_effect = pd.Series(cat).map({"a": 0.9, "b": 0.3, "c": -0.3, "d": -0.9}).fillna(1.2).to_numpy()
    logit = -2.2 - 1.0 * driver + cat_effect + np.where(partial_missing, 1.0, 0.4 * partial)
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "driver": driver,
            "cat": pd.Categorical(cat, categories=LEVELS),
            "partial": np.where(partial_missing, np.nan, partial),
            "noise": noise,
        }
    )
    return X, pd.Series(y, name="default")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return make_data()


@pytest.fixture(scope="module")
def settings() -> ScorecardSettings:
    return ScorecardSettings(monotonic_trends=TRENDS)


@pytest.fixture(scope="module")
def fitted(data: tuple[pd.DataFrame, pd.Series], settings: ScorecardSettings) -> tuple[Any, ScorecardModel]:
    """The optbinning Scorecard and the JSON scorecard read from it."""
    X, y = data
    reference = fit_optbinning_scorecard(X, y, settings, SEED)
    return reference, ScorecardModel.from_optbinning(reference, settings)


@pytest.fixture(scope="module")
def model(data: tuple[pd.DataFrame, pd.Series], settings: ScorecardSettings) -> ScorecardModel:
    X, y = data
    return fit_scorecard(X, y, settings, SEED)


def new_data(X: pd.DataFrame, model: ScorecardModel) -> pd.DataFrame:
    """Fresh rows plus edge cases: split points, values just below them, missing, unseen levels."""
    fresh, _ = make_data(n=400, seed=99)
    fresh["cat"] = fresh["cat"].astype(object)
    fresh.loc[fresh.index[:20], "cat"] = "zz"  # a level never seen in training
    fresh.loc[fresh.index[20:40], "driver"] = np.nan
    fresh.loc[fresh.index[40:60], "partial"] = np.nan
    edges = []
    for f in model.features:
        if f.kind == "numeric":
            for s in f.splits:
                for value in (s, float(np.nextafter(s, -np.inf)), float(np.nextafter(s, np.inf))):
                    row = X.iloc[0].to_dict()
                    row[f.name] = value
                    edges.append(row)
    edge_frame = pd.DataFrame(edges)
    edge_frame["cat"] = edge_frame["cat"].astype(object)
    return pd.concat([fresh, edge_frame], ignore_index=True)


def table_points(model: ScorecardModel, variable: str, label: str) -> float:
    table = model.table()
    row = table[(table["variable"] == variable) & (table["bin"] == label)]
    assert len(row) == 1
    return float(row["points"].iloc[0])


# ---------------------------------------------------------------------------------- exactness


def test_pd_equals_optbinning_predict_proba(
    data: tuple[pd.DataFrame, pd.Series], fitted: tuple[Any, ScorecardModel]
) -> None:
    X, _ = data
    reference, model = fitted
    fresh = new_data(X, model)
    assert (fresh["cat"] == "zz").any() and fresh["driver"].isna().any()
    for frame in (X, fresh):
        theirs = reference.predict_proba(optbinning_frame(frame))[:, 1]
        ours = model.predict_pd(frame)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_score_is_the_sum_of_points_and_inverts_to_pd(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    frame = new_data(X, model)
    score = model.score(frame)
    pd_ = model.predict_pd(frame)
    np.testing.assert_allclose(score, model.points(frame).sum(axis=1).to_numpy(), rtol=0, atol=1e-9)
    # The scaling written out from the settings: 20 points double the good:bad odds, 600 at 50:1.
    factor = 20.0 / math.log(2.0)
    offset = 600.0 - factor * math.log(50.0)
    np.testing.assert_allclose(pd_, 1.0 / (1.0 + np.exp((score - offset) / factor)), rtol=0, atol=1e-9)
    np.testing.assert_allclose(score, offset + factor * np.log((1 - pd_) / pd_), rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.score_to_pd(score), pd_, rtol=0, atol=1e-9)
    assert np.corrcoef(score, pd_)[0, 1] < 0  # higher score, lower risk


def test_points_and_score_match_optbinning_scorecard_table(
    data: tuple[pd.DataFrame, pd.Series], fitted: tuple[Any, ScorecardModel]
) -> None:
    """optbinning's own pdo_odds scaling is an independent check of our points formula."""
    X, _ = data
    reference, model = fitted
    theirs = reference.table(style="detailed")
    for f in model.features:
        rows = theirs[theirs["Variable"] == f.name]
        assert list(rows["Bin"].iloc[-2:]) == ["Special", "Missing"]
        expected = [*rows["Points"].iloc[: len(f.bins)], rows["Points"].iloc[-1]]
        ours = [b.points for b in (*f.bins, f.missing)]
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    # optbinning's own score() agrees wherever every level is known (it scores unseen levels
    # with the Missing row's points, unlike its predict_proba; we follow predict_proba).
    np.testing.assert_allclose(model.score(X), reference.score(optbinning_frame(X)), rtol=0, atol=1e-6)


def test_numeric_bins_are_right_open_like_optbinning(fitted: tuple[Any, ScorecardModel]) -> None:
    reference, model = fitted
    card = next(f for f in model.features if f.name == "driver")
    splits = np.array(card.splits)
    assert len(splits) >= 2
    values = np.concatenate([splits, np.nextafter(splits, -np.inf), [-np.inf, np.inf, np.nan]])
    optb = reference.binning_process_.get_binned_variable("driver")
    theirs = optb.transform(values, metric="indices", metric_missing="empirical")
    ours = card.bin_index(pd.Series(values))
    # optbinning numbers the Missing bin after its (always empty) Special bin.
    theirs = np.where(theirs == len(card.bins) + 1, len(card.bins), theirs)
    np.testing.assert_array_equal(ours, theirs)
    # A value equal to split i lies in bin i + 1; the float just below it in bin i.
    np.testing.assert_array_equal(ours[: len(splits)], np.arange(1, len(splits) + 1))
    np.testing.assert_array_equal(ours[len(splits) : 2 * len(splits)], np.arange(len(splits)))


# ---------------------------------------------------------------------------------- binning


def test_declared_descending_trend_is_honoured(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    falling = fit_scorecard(X, y, ScorecardSettings(monotonic_trends={"driver": "descending"}), SEED)
    card = next(f for f in falling.features if f.name == "driver")
    rates = [b.n_event / b.count for b in card.bins]
    assert len(card.bins) >= 4
    assert all(np.diff(rates) < 0), rates  # default rate falls as the value rises
    assert all(np.diff([b.woe for b in card.bins]) > 0)
    assert card.coefficient < 0
    assert all(np.diff([b.points for b in card.bins]) > 0)  # more points, less risk
    # Declaring the opposite trend must reach the solver: it forces rising rates, which the
    # data does not support, so the bins collapse (the sign rule off: what is asked here is the
    # binning, and a collapsed driver may well end against risk in the regression).
    rising = fit_scorecard(
        X,
        y,
        ScorecardSettings(monotonic_trends={"driver": "ascending"}, min_iv=0.0, consistent_signs=False),
        SEED,
    )
    card = next(f for f in rising.features if f.name == "driver")
    rates = [b.n_event / b.count for b in card.bins]
    assert all(np.diff(rates) >= 0)
    assert len(card.bins) <= 2


def test_iv_selection_drops_noise_and_keeps_the_driver(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, y = data
    assert model.information_value["noise"] < 0.02 < model.information_value["driver"]
    assert "noise" not in model.selected_features
    assert {"driver", "cat", "partial"} <= set(model.selected_features)
    assert set(model.information_value) == set(X.columns)  # IV reported for every candidate
    everything = fit_scorecard(X, y, ScorecardSettings(monotonic_trends=TRENDS, min_iv=0.0), SEED)
    assert "noise" in everything.selected_features
    top2 = fit_scorecard(X, y, ScorecardSettings(monotonic_trends=TRENDS, max_features=2), SEED)
    ranked = sorted(model.information_value, key=lambda k: -model.information_value[k])
    assert set(top2.selected_features) == set(ranked[:2])


def test_no_feature_above_min_iv_is_an_error(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    with pytest.raises(ScorecardError, match="no feature reaches min_iv=5"):
        fit_scorecard(X, y, ScorecardSettings(min_iv=5.0), SEED)


def test_missing_values_get_the_missing_bin_points(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    card = next(f for f in model.features if f.name == "partial")
    assert card.missing.count == int(X["partial"].isna().sum())
    assert card.missing.woe < -0.3  # missing is riskier in this data: the bin carries signal
    points = model.points(X)["partial"]
    missing_points = table_points(model, "partial", MISSING_BIN)
    np.testing.assert_array_equal(points[X["partial"].isna()].unique(), [missing_points])
    assert not np.isclose(points[X["partial"].notna()], missing_points).any()


def test_unseen_category_gets_the_neutral_woe_like_optbinning(
    data: tuple[pd.DataFrame, pd.Series], fitted: tuple[Any, ScorecardModel]
) -> None:
    X, _ = data
    reference, model = fitted
    card = next(f for f in model.features if f.name == "cat")
    assert card.unseen is not None
    assert abs(card.unseen.woe) < 1e-12  # WoE of the overall default rate
    assert abs(card.missing.woe) > 0.1  # so the rule is not "score as missing"
    neutral = (model.offset - model.factor * model.intercept) / len(model.features)
    assert table_points(model, "cat", UNSEEN_BIN) == pytest.approx(neutral, abs=1e-9)
    rows = pd.concat([X.head(3)] * 3, ignore_index=True)
    rows["cat"] = ["zz"] * 3 + [None] * 3 + ["a"] * 3
    points = model.points(rows)["cat"].to_numpy()
    np.testing.assert_allclose(points[:3], neutral, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(points[3:6], table_points(model, "cat", MISSING_BIN))
    assert not np.isclose(points[6:], neutral).any()
    # Exactly optbinning's predict_proba for unseen, missing and seen levels.
    pd_ = model.predict_pd(rows)
    frame = optbinning_frame(rows)
    np.testing.assert_allclose(pd_, reference.predict_proba(frame)[:, 1], rtol=0, atol=1e-9)
    # A Categorical column with a level added after fit behaves the same.
    as_categorical = rows.assign(cat=pd.Categorical(rows["cat"], categories=[*LEVELS, "zz"]))
    np.testing.assert_array_equal(model.predict_pd(as_categorical), pd_)


# ---------------------------------------------------------------------------------- artefacts


def test_json_round_trip_gives_identical_pds(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    text = json.dumps(model.to_dict(), sort_keys=True, allow_nan=False)
    loaded = ScorecardModel.from_dict(json.loads(text))
    frame = new_data(X, model)
    np.testing.assert_array_equal(loaded.predict_pd(frame), model.predict_pd(frame))
    np.testing.assert_array_equal(loaded.score(frame), model.score(frame))
    assert json.dumps(loaded.to_dict(), sort_keys=True) == text
    pd.testing.assert_frame_equal(loaded.table(), model.table())
    assert loaded.settings == model.settings


def test_from_dict_rejects_inconsistent_or_foreign_specs(model: ScorecardModel) -> None:
    spec = json.loads(json.dumps(model.to_dict()))
    spec["features"][0]["bins"][0]["points"] += 5.0
    with pytest.raises(ScorecardError, match="do not match"):
        ScorecardModel.from_dict(spec)
    spec = json.loads(json.dumps(model.to_dict()))
    spec["version"] = 99
    with pytest.raises(ScorecardError, match="version 99"):
        ScorecardModel.from_dict(spec)


def test_table_columns_and_points_match_points(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    table = model.table()
    assert list(table.columns) == ["variable", "bin", "count", "event_rate", "woe", "iv", "points"]
    assert list(table["variable"].unique()) == model.selected_features
    points = model.points(X)
    assert list(points.columns) == model.selected_features
    for name, rows in table.groupby("variable", sort=False):
        tail = [MISSING_BIN, UNSEEN_BIN] if name == "cat" else [MISSING_BIN]
        assert list(rows["bin"].iloc[-len(tail) :]) == tail
        assert rows["count"].sum() == len(X)
        assert rows["iv"].sum() == pytest.approx(model.information_value[str(name)])
        # Every training row's points are the points of its bin, in the counts the table shows.
        observed = points[name].value_counts()
        for _, row in rows[rows["count"] > 0].iterrows():
            assert observed.get(row["points"], 0) == row["count"]
    _, y = data
    woe_rows = table[table["variable"] == "driver"]
    event_rate = (woe_rows["count"] * woe_rows["event_rate"]).sum() / len(X)
    assert event_rate == pytest.approx(y.mean())


def test_same_data_and_seed_give_identical_dict(
    data: tuple[pd.DataFrame, pd.Series], settings: ScorecardSettings, model: ScorecardModel
) -> None:
    X, y = data
    again = fit_scorecard(X, y, settings, SEED)
    assert json.dumps(again.to_dict(), sort_keys=True) == json.dumps(model.to_dict(), sort_keys=True)


# ---------------------------------------------------------------------------------- failures


def test_bad_settings_and_inputs_are_rejected(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    with pytest.raises(ScorecardError, match="pdo=0"):
        ScorecardSettings(pdo=0)
    with pytest.raises(ScorecardError, match=r"monotonic_trends\['driver'\]='down'"):
        ScorecardSettings(monotonic_trends={"driver": "down"})
    with pytest.raises(ScorecardError, match="categorical features"):
        fit_scorecard(X, y, ScorecardSettings(monotonic_trends={"cat": "ascending"}), SEED)
    with pytest.raises(ScorecardError, match="0 or 1"):
        fit_scorecard(X, y.replace(1, 2), ScorecardSettings(), SEED)


def test_scoring_needs_the_selected_columns(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    with pytest.raises(ScorecardError, match=r"missing feature columns \['driver'\]"):
        model.predict_pd(X.drop(columns=["driver"]))
    assert len(model.predict_pd(X.drop(columns=["noise"]))) == len(X)  # unselected columns are not needed


def test_scoring_from_json_needs_neither_optbinning_nor_sklearn(tmp_path: Any, model: ScorecardModel) -> None:
    spec = tmp_path / "scorecard.json"
    spec.write_text(json.dumps(model.to_dict(), sort_keys=True), encoding="utf-8")
    script = (
        "import json, sys, numpy as np, pandas as pd\n"
        "from scoring.models.scorecard import ScorecardModel\n"
        f"m = ScorecardModel.from_dict(json.loads(open({str(spec)!r}).read()))\n"
        "X = pd.DataFrame({'driver': [0.0, np.nan], 'cat': ['a', 'zz'], 'partial': [1.0, np.nan]})\n"
        "assert np.all((m.predict_pd(X) > 0) & (m.predict_pd(X) < 1))\n"
        "loaded = sorted(k for k in sys.modules if k.split('.')[0] in ('optbinning', 'sklearn'))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)


def test_categorical_and_text_inputs_fall_in_the_same_bins(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    X, _ = data
    fresh = new_data(X, model)  # text levels, an unseen one and missing ones
    as_categorical = fresh.assign(cat=pd.Categorical(fresh["cat"], categories=[*LEVELS, "zz"]))
    feature = next(f for f in model.features if f.name == "cat")
    np.testing.assert_array_equal(feature.bin_index(as_categorical["cat"]), feature.bin_index(fresh["cat"]))
    assert {len(feature.bins), len(feature.bins) + 1} <= set(feature.bin_index(fresh["cat"]).tolist())
    np.testing.assert_array_equal(model.log_odds(as_categorical), model.log_odds(fresh))


def test_values_path_equals_the_frame_path_bit_for_bit(
    data: tuple[pd.DataFrame, pd.Series], model: ScorecardModel
) -> None:
    """The serving path (one float64 array, category codes, NaN missing) gives the DataFrame
    path's log-odds, PDs and contributions exactly, on split edges, missing and unseen levels."""
    X, _ = data
    fresh = new_data(X, model)
    levels = [*LEVELS, "zz"]  # "zz" is a level of the matrix the scorecard never saw
    frame = fresh.assign(cat=pd.Categorical(fresh["cat"], categories=levels))
    columns = list(frame.columns)
    codes = frame["cat"].cat.codes.to_numpy()
    matrix = np.column_stack(
        [
            np.where(codes < 0, np.nan, codes).astype(np.float64)
            if c == "cat"
            else frame[c].to_numpy(np.float64)
            for c in columns
        ]
    )
    path = model.values_path(columns, {"cat": levels})
    assert model.values_path(columns, {"cat": levels}) is path  # built once per layout
    np.testing.assert_array_equal(path.log_odds(matrix), model.log_odds(frame))
    np.testing.assert_array_equal(path.predict_pd(matrix), model.predict_pd(frame))
    np.testing.assert_array_equal(path.contributions(matrix), model.contributions(frame).to_numpy())
    assert np.isnan(matrix[:, columns.index("cat")]).any() and (codes == levels.index("zz")).any()

    with pytest.raises(ScorecardError, match="missing feature columns"):
        model.values_path([c for c in columns if c != "driver"], {"cat": levels})
    with pytest.raises(ScorecardError, match="categorical in the matrix, numeric in the scorecard"):
        model.values_path(columns, {"cat": levels, "driver": ["x"]})
    with pytest.raises(ScorecardError, match="numeric in the matrix, categorical in the scorecard"):
        model.values_path(columns, {})
    with pytest.raises(ScorecardError, match=r"expected \(rows, 4\)"):
        path.log_odds(matrix[:, :3])


# --------------------------------------------------------------------------- the sign rule


def suppressor_data(n: int = 20000, seed: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    """Risk rises with ``a`` and falls with ``b`` given ``a``, but ``b`` follows ``a`` closely
    (r 0.95), so on its own ``b`` looks risky too: binned alone its WoE falls as it rises, and
    fitted beside ``a`` its coefficient turns positive (a riskier bin of ``b`` earning more
    points). ``c`` is an independent driver."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = 0.95 * a + math.sqrt(1 - 0.95**2) * rng.normal(size=n)
    c = rng.normal(size=n)
    logit = -2.5 + 1.6 * a - 0.9 * b + 0.5 * c
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"a": a, "b": b, "c": c}), pd.Series(y, name="default")


def test_the_sign_rule_removes_a_characteristic_collinearity_turned_against_risk() -> None:
    from dataclasses import replace

    from scoring.models.scorecard_bins import BinOverride

    X, y = suppressor_data()
    plain = ScorecardSettings(consistent_signs=False)
    unruled = fit_scorecard(X, y, plain, SEED)
    coefficient = {f.name: f.coefficient for f in unruled.features}
    assert coefficient["b"] > 0 > coefficient["a"]  # the data does turn b: the rule has work to do
    assert unruled.against_risk() == ["b"] and not unruled.sign_rule.applied

    ruled = fit_scorecard(X, y, replace(plain, consistent_signs=True), SEED)
    assert ruled.selected_features == ["a", "c"] and ruled.against_risk() == []
    assert all(f.coefficient <= 0 for f in ruled.features)
    (removal,) = ruled.sign_rule.removed
    assert (
        (removal.variable, removal.collinear_with) == ("b", "a")
        and removal.r is not None
        and removal.r > 0.85
    )
    assert removal.coefficient == pytest.approx(coefficient["b"])
    # the cost is measured, on the fit rows, and small next to what b's removal buys
    assert removal.auc_before > removal.auc_after and removal.auc_cost < 0.01
    # every bin's points fall as its event rate rises
    for feature in ruled.features:
        bins = [b for b in feature.all_bins() if b.count]
        for x in bins:
            for other in bins:
                if x.n_event / x.count < other.n_event / other.count:
                    assert x.points >= other.points - 1e-9, (feature.name, x.label, other.label)
    # it round-trips with the scorecard
    again = ScorecardModel.from_dict(json.loads(json.dumps(ruled.to_dict())))
    assert again.sign_rule == ruled.sign_rule

    # an analyst's keep holds b against the rule: kept, and said so
    keep = {"b": BinOverride("b", "kept for the committee's comparison", keep=True)}
    held = fit_scorecard(X, y, replace(plain, consistent_signs=True, overrides=keep), SEED)
    assert "b" in held.selected_features and held.sign_rule.kept_against == ("b",)
    assert held.against_risk() == ["b"] and held.sign_rule.removed == ()


def test_the_correlation_filter_runs_down_the_whole_ranking_before_the_cap() -> None:
    """IV order a, a2 (a's twin), b, b2 (b's twin). Capped at 3 and filtered at 0.9, neither twin
    may enter: filtering the top 3 first would drop a2, then let the cap pull in b2 from below."""
    rng = np.random.default_rng(11)
    n = 12000
    a, b = rng.normal(size=n), rng.normal(size=n)
    X = pd.DataFrame(
        {
            "a": a,
            "a2": a + 0.15 * rng.normal(size=n),
            "b": b,
            "b2": b + 0.15 * rng.normal(size=n),
            "c": rng.normal(size=n),
        }
    )
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 1.5 * a + 0.8 * b + 0.2 * X["c"])))).astype(int))
    from scoring.models.scorecard import fit_binning_process

    process, _ = fit_binning_process(X, y, ScorecardSettings())
    ivs = {str(row["name"]): float(row["iv"]) for _, row in process.summary().iterrows()}
    assert sorted(ivs, key=lambda k: -ivs[k])[:4] == ["a", "a2", "b", "b2"]  # the order the case needs
    model = fit_scorecard(X, y, ScorecardSettings(max_features=3, max_correlation=0.9), SEED)
    assert model.selected_features == ["a", "b", "c"]
    # an analyst's keep on the weaker twin holds it ahead of the filter: the stronger one goes
    from scoring.models.scorecard_bins import BinOverride

    keep = {"a2": BinOverride("a2", "the committee reads a2", keep=True)}
    held = fit_scorecard(X, y, ScorecardSettings(max_features=3, max_correlation=0.9, overrides=keep), SEED)
    assert "a2" in held.selected_features and "a" not in held.selected_features
