"""The analysts' bin overrides (scoring.models.scorecard_bins), the selection evidence
(scoring.models.scorecard_selection) and `scoring bins show|suggest`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from scoring.cli import app
from scoring.models.scorecard import ScorecardError, ScorecardModel, ScorecardSettings, fit_scorecard
from scoring.models.scorecard_bins import (
    BinOverrideError,
    check_against_features,
    load_bin_overrides,
    parse_bin_overrides,
    write_entry,
)
from scoring.models.scorecard_selection import backward_stepwise, correlation_and_vif, selection_evidence
from scoring.serving.bundle import ModelBundle
from test_scorecard import SEED, TRENDS, make_data

runner = CliRunner()


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    return make_data(6000)


def overrides(entries: dict[str, Any]) -> dict[str, Any]:
    return parse_bin_overrides({"synthetic": entries}, "synthetic")


# ---------------------------------------------------------------------------- bad input, named


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"splits": [0.5, -0.5], "reason": "r"},
            "entry splits: cut points [0.5, -0.5] are not in increasing order",
        ),
        ({"splits": [0.0, 0.0], "reason": "r"}, "not in increasing order"),
        ({"splits": [0.0, "x"], "reason": "r"}, "cut point 'x' is not a finite number"),
        (
            {"groups": [["a", "b"], ["b", "c"]], "reason": "r"},
            "entry groups[2]: level 'b' is already in group 1",
        ),
        ({"trend": "upwards", "reason": "r"}, "entry trend: 'upwards' is not a trend"),
        ({"splits": [0.0]}, "entry reason: None; expected the analyst's reason"),
        ({"splits": [0.0], "reason": "  "}, "expected the analyst's reason"),
        ({"split": [0.0], "reason": "r"}, "entry split: unknown key"),
        ({"exclude": True, "keep": True, "reason": "r"}, "entry exclude: cannot join"),
        ({"splits": [0.0], "trend": "ascending", "reason": "r"}, "entry trend: cannot join splits"),
        ({"reason": "r"}, "nothing to override"),
    ],
)
def test_a_malformed_entry_is_refused_naming_the_variable_and_the_entry(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(BinOverrideError) as error:
        overrides({"driver": entry})
    assert "variable 'driver'" in str(error.value)
    assert message in str(error.value)


def test_malformed_entries_of_the_other_source_are_refused_too() -> None:
    document = {"synthetic": {}, "file": {"x": {"splits": [2, 1], "reason": "r"}}}
    with pytest.raises(BinOverrideError, match="file: variable 'x', entry splits"):
        parse_bin_overrides(document, "synthetic")
    with pytest.raises(BinOverrideError, match="section 'synthetc'"):
        parse_bin_overrides({"synthetc": {}}, "synthetic")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"drivr": {"splits": [0.0], "reason": "r"}}, "variable 'drivr', entry splits: no such variable"),
        ({"driver": {"splits": [-0.5, 99.0], "reason": "r"}}, "cut point 99 is out of range"),
        ({"driver": {"splits": [-99.0], "reason": "r"}}, "cut point -99 is out of range"),
        ({"cat": {"splits": [0.0], "reason": "r"}}, "the variable is categorical; give groups"),
        ({"driver": {"groups": [["a"]], "reason": "r"}}, "the variable is numeric; give splits"),
        ({"cat": {"groups": [["a", "b"], ["c"]], "reason": "r"}}, "levels ['d'] are in no group"),
        ({"cat": {"groups": [["a", "b", "z"], ["c", "d"]], "reason": "r"}}, "level 'z' is not a level"),
        ({"cat": {"trend": "ascending", "reason": "r"}}, "a trend applies to numeric variables only"),
        ({"noise": {"exclude": True, "reason": "r"}}, "excluded by train.scorecard.exclude_features"),
    ],
)
def test_an_entry_that_does_not_fit_the_data_is_refused_before_training(
    data: tuple[pd.DataFrame, pd.Series], entries: dict[str, Any], message: str
) -> None:
    X, _ = data
    with pytest.raises(BinOverrideError, match="bin overrides") as error:
        check_against_features(overrides(entries), X, excluded=["noise"])
    assert message in str(error.value)


def test_the_file_is_read_for_the_data_source_only(tmp_path: Path) -> None:
    path = tmp_path / "bins.yaml"
    path.write_text(
        "synthetic:\n  driver: {splits: [0.0], reason: round}\n"
        "file:\n  x: {exclude: true, reason: not ours}\n"
    )
    assert list(load_bin_overrides(path, "synthetic")) == ["driver"]
    assert list(load_bin_overrides(path, "file")) == ["x"]
    assert load_bin_overrides(None, "file") == {}
    with pytest.raises(BinOverrideError, match="does not exist"):
        load_bin_overrides(tmp_path / "absent.yaml", "synthetic")


# ---------------------------------------------------------------------------- applied by the fit


def test_fixed_cut_points_and_groups_are_the_scorecards_bins(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    plain = fit_scorecard(X, y, ScorecardSettings(monotonic_trends=TRENDS), SEED)
    plain_driver = next(f for f in plain.features if f.name == "driver")
    assert len(plain_driver.splits) >= 3
    # merge the optimiser's two lowest bins (drop its first cut point), and two categories
    merged = list(plain_driver.splits[1:])
    entries = {
        "driver": {"splits": merged, "reason": "merge the two lowest bins"},
        "cat": {"groups": [["a", "b"], ["c"], ["d"]], "reason": "a and b are one segment"},
    }
    settings = ScorecardSettings(monotonic_trends=TRENDS, overrides=overrides(entries))
    model = fit_scorecard(X, y, settings, SEED)
    driver = next(f for f in model.features if f.name == "driver")
    cat = next(f for f in model.features if f.name == "cat")
    assert driver.splits == tuple(merged)
    assert sorted(map(sorted, cat.groups)) == [["a", "b"], ["c"], ["d"]]
    # the merged bin holds the rows of both of the optimiser's bins
    assert driver.bins[0].count == plain_driver.bins[0].count + plain_driver.bins[1].count
    # the overrides travel with the scorecard's JSON, reasons included, and score the same
    again = ScorecardModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.settings.overrides["driver"].reason == "merge the two lowest bins"
    np.testing.assert_array_equal(again.predict_pd(X), model.predict_pd(X))
    # a scorecard without overrides keeps its old JSON (no overrides key)
    assert "overrides" not in plain.to_dict()["settings"]


def test_exclude_keep_and_trend(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    entries = {
        "cat": {"exclude": True, "reason": "not allowed in the policy"},
        "noise": {"keep": True, "reason": "the committee asked to see it"},
        "driver": {"trend": "descending", "reason": "risk falls as it rises"},
    }
    model = fit_scorecard(X, y, ScorecardSettings(min_iv=0.02, overrides=overrides(entries)), SEED)
    assert "cat" not in model.selected_features and "cat" not in model.information_value
    assert "noise" in model.selected_features and model.information_value["noise"] < 0.02
    driver = next(f for f in model.features if f.name == "driver")
    rates = [b.n_event / b.count for b in driver.bins]
    assert rates == sorted(rates, reverse=True)


def test_a_trend_on_a_categorical_is_refused_by_the_fit(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    with pytest.raises(ScorecardError, match="'cat': a trend applies to numeric"):
        fit_scorecard(
            X, y, ScorecardSettings(overrides=overrides({"cat": {"trend": "ascending", "reason": "r"}})), 1
        )


# ---------------------------------------------------------------------------- the evidence


def test_the_selection_evidence_ranks_explains_and_costs(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    rng = np.random.default_rng(3)
    X = X.assign(driver_copy=X["driver"] + rng.normal(scale=0.05, size=len(X)), weak=rng.normal(size=len(X)))
    entries = {
        "driver": {"splits": [-1.0, 0.0, 1.0], "reason": "round cut points"},
        "partial": {"exclude": True, "reason": "not available at the branch"},
    }
    settings = ScorecardSettings(monotonic_trends=TRENDS, overrides=overrides(entries))
    fit_rows, test_rows = X.index < 4000, X.index >= 4000
    usable = X.drop(columns=["noise"])
    model = fit_scorecard(usable, y, settings, SEED)
    evidence = selection_evidence(
        model,
        X,
        y.to_numpy(),
        SEED,
        config_excluded=["noise"],
        leakage_dropped=["months_on_book"],
        cost_data=(usable[fit_rows], y[fit_rows], usable[test_rows], y[test_rows]),
    )
    json.dumps(evidence)  # plain JSON
    rows = {v["variable"]: v for v in evidence["variables"]}
    ranked = [v for v in evidence["variables"] if v["rank"] is not None]
    assert [v["rank"] for v in ranked] == list(range(1, len(ranked) + 1))
    assert [v["iv"] for v in ranked] == sorted((v["iv"] for v in ranked), reverse=True)
    assert rows["noise"]["reason"] == "config_exclude"
    assert (
        rows["partial"]["reason"] == "override_exclude"
        and rows["partial"]["detail"] == "not available at the branch"
    )
    assert rows["months_on_book"]["reason"] == "leakage"
    assert rows["weak"]["reason"] == "low_iv" and rows["weak"]["iv"] < 0.02
    assert {v["variable"] for v in evidence["variables"] if v["status"] == "kept"} == set(
        model.selected_features
    )
    # the near copy of the driver is flagged by the correlation and the VIF, and the stepwise check
    assert any({p["a"], p["b"]} == {"driver", "driver_copy"} for p in evidence["correlation"]["pairs_above"])
    assert evidence["vif"]["driver"] > 5 and evidence["vif"]["cat"] < 2
    # each override's cost against the optimiser's bins
    cost = {o["variable"]: o for o in evidence["overrides"]}
    assert cost["driver"]["bins_override"] == ["(-inf, -1)", "[-1, 0)", "[0, 1)", "[1, inf)"]
    assert cost["driver"]["bins_optimiser"] == [
        row["bin"] for row in evidence["optimiser_bins"]["driver"]["table"] if row["bin"] != "Missing"
    ]
    assert cost["driver"]["iv_cost"] == pytest.approx(
        cost["driver"]["iv_optimiser"] - cost["driver"]["iv_override"]
    )
    assert cost["partial"]["iv_override"] == 0.0 and cost["partial"]["iv_cost"] > 0.02
    # undoing the exclusion brings back a signal variable: the exclusion costs AUC
    assert cost["partial"]["auc_cost"] > 0
    assert cost["driver"]["auc_override"] == cost["partial"]["auc_override"]


def test_the_correlation_filter_drops_the_weaker_of_a_pair(data: tuple[pd.DataFrame, pd.Series]) -> None:
    X, y = data
    rng = np.random.default_rng(5)
    X = X.assign(driver_echo=X["driver"] + rng.normal(scale=0.3, size=len(X)))
    kept_both = fit_scorecard(X, y, ScorecardSettings(), SEED)
    assert {"driver", "driver_echo"} <= set(kept_both.selected_features)
    settings = ScorecardSettings(max_correlation=0.8)
    model = fit_scorecard(X, y, settings, SEED)
    assert "driver" in model.selected_features and "driver_echo" not in model.selected_features
    assert ScorecardModel.from_dict(model.to_dict()).settings.max_correlation == 0.8
    evidence = selection_evidence(model, X, y.to_numpy(), SEED)
    echo = next(v for v in evidence["variables"] if v["variable"] == "driver_echo")
    assert echo["reason"] == "high_correlation" and "with driver" in echo["detail"]
    assert echo["iv"] < next(v["iv"] for v in evidence["variables"] if v["variable"] == "driver")
    with pytest.raises(ScorecardError, match="max_correlation"):
        ScorecardSettings(max_correlation=1.5)


def test_stepwise_removes_a_variable_that_adds_nothing() -> None:
    rng = np.random.default_rng(0)
    n = 4000
    signal = rng.normal(size=n)
    frame = pd.DataFrame({"signal": signal, "pure_noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 1.2 * signal)))).astype(int)
    result = backward_stepwise(frame, y)
    assert result["kept"] == ["signal"] and result["differs"] == ["pure_noise"]
    assert result["aic_end"] < result["aic_start"]
    _, vif = correlation_and_vif(frame)
    assert vif["signal"] == pytest.approx(1.0, abs=0.01)


# ---------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data: tuple[pd.DataFrame, pd.Series]) -> Path:
    """A model folder with a scorecard and the selection evidence beside it, as the train stage
    writes them; an overrides file with comments."""
    X, y = data
    root = tmp_path_factory.mktemp("trained")
    settings = ScorecardSettings(
        overrides=overrides({"driver": {"splits": [0.0], "reason": "one cut at zero"}})
    )
    model = fit_scorecard(X, y, settings, SEED)
    ModelBundle(root / "models").save_candidates({"scorecard": model})
    evidence = selection_evidence(model, X, y.to_numpy(), SEED)
    (root / "selection.json").write_text(json.dumps(evidence))
    (root / "bins.yaml").write_text(
        "# kept comment\nsynthetic:\n  driver:\n    splits: [0.0]  # cut\n"
        "    reason: one cut at zero\nfile: {}\n"
    )
    return root


def test_bins_show_prints_the_scorecards_bins_and_a_dropped_variables_reason(trained: Path) -> None:
    args = [
        "bins",
        "show",
        "--model-dir",
        str(trained / "models"),
        "--selection",
        str(trained / "selection.json"),
    ]
    shown = runner.invoke(app, [*args, "--variable", "driver"])
    assert shown.exit_code == 0, shown.output
    assert "[0, inf)" in shown.output and "points" in shown.output and "one cut at zero" in shown.output
    dropped = runner.invoke(app, [*args, "--variable", "noise"])
    assert dropped.exit_code == 0, dropped.output
    assert "not in the scorecard: low_iv" in dropped.output and "optimiser" in dropped.output
    unknown = runner.invoke(app, [*args, "--variable", "nope"])
    assert unknown.exit_code == 1 and "'nope' is not a scorecard candidate" in unknown.output


def test_bins_suggest_writes_the_optimisers_bins_keeping_the_file(trained: Path, tmp_path: Path) -> None:
    file = tmp_path / "bins.yaml"
    file.write_text((trained / "bins.yaml").read_text())
    base = [
        "bins",
        "suggest",
        "--file",
        str(file),
        "--source",
        "synthetic",
        "--selection",
        str(trained / "selection.json"),
    ]
    done = runner.invoke(app, [*base, "--variable", "cat"])
    assert done.exit_code == 0, done.output
    text = file.read_text()
    assert "# kept comment" in text and "# cut" in text
    parsed = load_bin_overrides(file, "synthetic")
    evidence = json.loads((trained / "selection.json").read_text())
    assert [list(g) for g in parsed["cat"].groups or ()] == evidence["optimiser_bins"]["cat"]["groups"]
    assert parsed["driver"].splits == (0.0,)
    # an existing entry is kept unless --force
    again = runner.invoke(app, [*base, "--variable", "driver"])
    assert again.exit_code == 1 and "already has an entry" in again.output
    forced = runner.invoke(app, [*base, "--variable", "driver", "--force"])
    assert forced.exit_code == 0, forced.output
    assert (
        list(load_bin_overrides(file, "synthetic")["driver"].splits or ())
        == evidence["optimiser_bins"]["driver"]["splits"]
    )
    assert yaml.safe_load(file.read_text())["file"] == {}


def test_write_entry_refuses_what_train_would_refuse(tmp_path: Path) -> None:
    file = tmp_path / "bins.yaml"
    with pytest.raises(BinOverrideError, match="not in increasing order"):
        write_entry(file, "synthetic", "x", {"splits": [2.0, 1.0], "reason": "r"})
    assert not file.exists()
