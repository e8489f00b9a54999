"""An independent check of the golden answers (issue 35, item 5).

tests/test_golden.py pins the scorer's output on the 100 golden applications, but the pins were
written by that same scorer: a wrong formula would be pinned as right. Here every checked field
is recomputed without the ``scoring`` package (this module and its support module import nothing
from it), from the committed
model files under tests/data/golden/ and the frozen params.yaml beside them, with the plain
formulas of tests/golden_independent_support.py:

* the model matrix, with the derived features of the data contract (annuity or equal-principal
  first payment, PTI, DTI, LTV, down-payment ratio, age at maturity, income per dependent,
  thin-file flag) and the category codes among the levels features.json keeps;
* the scorecard's points from its bins (split points, groups of levels, Missing and Unseen
  bins), summed and turned into log-odds through the points scaling;
* the booster's margin by walking its trees (XGBoost is used only to turn booster.ubj into its
  JSON document, and, as a cross-check, its own margin must equal the walk bit for bit), and
  for the booster champion XGBoost's float32 logistic transform;
* the blend's weighted log-odds, the calibrator, the PD floor and cap, the score's points
  scaling, the grade from the master scale's PD bounds, the knock-out rules and grade cut-offs,
  and the suggested limit from the instalment formulas and the per-grade caps.

For each champion and application, the recomputed ``pd``, ``score``, ``grade``, ``decision``,
``policy_reasons``, ``suggested_limit`` and ``limit_constraint`` must equal the pinned ones; for
the champions with a scorecard, so must the scorecard's total points, against the points the
pinned PD implies (the output has no points column: the pinned PD is mapped back through the
calibrator, and for the blend through its weights with the recomputed booster margin, to the
scorecard's log-odds and so to points; rows at the PD floor or cap imply nothing and are left
out). A failure names the champion, the application, the field, the pinned and the recomputed
value.

Tolerances. Text, grades and limits (multiples of the rounding unit) are compared exactly.
PDs to 1e-9 relative: the recomputation differs from the scorer only by float64 rounding (at
most 4e-15 relative here), and numpy's exp and log differ by CPU in the last place (see
test_golden.py), so 1e-9 leaves six orders of magnitude for that while any real change (one
point in one bin moves the PD by about 3%) is far outside it. The booster champion's raw PD is
XGBoost's float32 probability; the recomputation emulates its float32 arithmetic and matched
all 100 bit for bit, but a C library's expf may round an ulp differently, so that champion's PD
may also differ by one float32 ulp (6e-8 to 1.2e-7 relative). The score and the implied points get the
PD's tolerance carried through their derivatives (d score = factor * d pd / (pd (1 - pd)); the
points divide that by the calibration slope and the scorecard's blend weight).

What is not recomputed independently: the reason codes (TreeSHAP of the booster, and the
reason coder's grouping and baselines: a reimplementation of TreeSHAP is out of proportion here;
tests/test_explain.py checks the library's TreeSHAP against XGBoost's pred_contribs), the input
flags and the model version (bookkeeping, no formula). XGBoost still reads booster.ubj (its
UBJSON) for us. The contract's category levels (data-contract.md) and the order in which
knock-out codes are joined (the policy's documentation) are copied, not imported.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import golden_independent_support as gi

FLOAT_RTOL = 1e-9
EXACT_FIELDS = ("grade", "decision", "policy_reasons", "suggested_limit", "limit_constraint")
SHOWN = 12  # differences listed in a failure message


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    return gi.read_applications()


@pytest.fixture(scope="module")
def params() -> dict[str, Any]:
    return gi.load_params()


@pytest.fixture(scope="module")
def files() -> dict[str, gi.ModelFiles]:
    return {champion: gi.load_model_files(champion) for champion in gi.CHAMPIONS}


@pytest.fixture(scope="module")
def recomputed(
    files: dict[str, gi.ModelFiles], params: dict[str, Any], applications: pd.DataFrame
) -> dict[str, gi.Recomputed]:
    return {champion: gi.recompute(files[champion], params, applications) for champion in gi.CHAMPIONS}


def pd_tolerance(got: gi.Recomputed) -> gi.FloatArray:
    """Absolute tolerance of each row's PD (see the module docstring)."""
    tolerance = FLOAT_RTOL * got.pd
    if got.pd_raw_float32:
        tolerance = np.maximum(tolerance, np.spacing(got.pd.astype(np.float32)).astype(np.float64))
    return np.asarray(tolerance, dtype=np.float64)


def differences(champion: str, got: gi.Recomputed, pinned: dict[str, list[Any]]) -> list[str]:
    """Every field of every row where the recomputation and the pins disagree, one line each."""
    ids = pinned["application_id"]
    if ids != got.application_id:
        return [
            f"{champion}: application ids differ: pinned {ids[:5]}..., recomputed {got.application_id[:5]}..."
        ]
    out: list[str] = []

    def note(row: int, field: str, expected: Any, value: Any, tolerance: float | None = None) -> None:
        within = "" if tolerance is None else f" (tolerance {tolerance:.3g})"
        out.append(f"{champion} {ids[row]} {field}: pinned {expected!r}, recomputed {value!r}{within}")

    pd_tol = pd_tolerance(got)
    score_tol = got.factor * pd_tol / (got.pd * (1.0 - got.pd)) + 1e-12 * np.abs(got.score)
    for row in range(len(ids)):
        expected_pd, expected_score = pinned["pd"][row], pinned["score"][row]
        if not abs(got.pd[row] - expected_pd) <= pd_tol[row]:
            note(row, "pd", expected_pd, float(got.pd[row]), float(pd_tol[row]))
        if not abs(got.score[row] - expected_score) <= score_tol[row]:
            note(row, "score", expected_score, float(got.score[row]), float(score_tol[row]))
        for field in EXACT_FIELDS:
            value = getattr(got, field)[row]
            value = value.item() if isinstance(value, np.generic) else value
            if value != pinned[field][row]:
                note(row, field, pinned[field][row], value)
    return out


def implied_points_differences(
    champion: str, files: gi.ModelFiles, got: gi.Recomputed, pinned: dict[str, list[Any]]
) -> tuple[list[str], int]:
    """The recomputed scorecard points against those the pinned PD implies, and the rows compared."""
    assert files.scorecard is not None and got.scorecard is not None
    settings = files.scorecard["settings"]
    factor, offset = gi.scaling(settings["pdo"], settings["base_score"], settings["base_odds"])
    calibrator = files.calibrator
    if calibrator["method"] == "platt":
        slope, intercept = float(calibrator["platt"]["slope"]), float(calibrator["platt"]["intercept"])
    else:
        assert calibrator["method"] == "none", "an isotonic map cannot be inverted to one log-odds"
        slope, intercept = 1.0, 0.0
    p = np.asarray(pinned["pd"], dtype=np.float64)
    inside = (p > calibrator["pd_floor"]) & (p < calibrator["pd_cap"])
    z_model = (gi.logit(p) - intercept) / slope  # the raw model's log-odds
    weight = 1.0 if got.blend_weight is None else got.blend_weight
    other = 0.0 if got.booster_margin is None or got.blend_weight is None else got.booster_margin
    z_card = (z_model - (1.0 - weight) * other) / weight
    implied = offset - factor * z_card
    tolerance = factor * FLOAT_RTOL * p / (p * (1.0 - p) * slope * weight) + 1e-12 * np.abs(implied)
    total = got.scorecard.total
    out = [
        f"{champion} {pinned['application_id'][row]} scorecard_points: implied by the pinned pd "
        f"{implied[row]!r}, recomputed {total[row]!r} (tolerance {tolerance[row]:.3g}; bins: "
        + ", ".join(
            f"{f['name']} {label} {points:.4f}"
            for f, label, points in zip(
                files.scorecard["features"], got.scorecard.labels[row], got.scorecard.points[row], strict=True
            )
        )
        + ")"
        for row in np.flatnonzero(inside)
        if not abs(total[row] - implied[row]) <= tolerance[row]
    ]
    return out, int(inside.sum())


def report(lines: list[str]) -> str:
    return f"{len(lines)} differences: " + "\n".join(lines[:SHOWN])


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize("champion", gi.CHAMPIONS)
def test_recomputed_answers_equal_the_pinned_ones(
    champion: str, recomputed: dict[str, gi.Recomputed]
) -> None:
    """PD, score, grade, decision, policy reasons, limit and its constraint of every application."""
    lines = differences(champion, recomputed[champion], gi.read_expected(champion))
    assert not lines, report(lines)


@pytest.mark.parametrize("champion", ["scorecard", "blend"])
def test_recomputed_scorecard_points_equal_the_points_the_pins_imply(
    champion: str, files: dict[str, gi.ModelFiles], recomputed: dict[str, gi.Recomputed]
) -> None:
    lines, compared = implied_points_differences(
        champion, files[champion], recomputed[champion], gi.read_expected(champion)
    )
    assert compared >= 90, f"{champion}: only {compared} pinned PDs away from the floor and cap"
    assert not lines, report(lines)


@pytest.mark.parametrize("champion", ["scorecard", "blend"])
def test_the_scorecard_points_are_its_logistic_regression(
    champion: str,
    files: dict[str, gi.ModelFiles],
    params: dict[str, Any],
    recomputed: dict[str, gi.Recomputed],
) -> None:
    """The points summed above are the model: every bin's points are ``(offset - factor x intercept)
    / n - factor x coefficient x WoE``, the stored scaling is params' pdo / base score / base odds,
    and each row's points give the same log-odds as intercept + sum of coefficient x WoE."""
    card = files[champion].scorecard
    assert card is not None
    settings, scale = card["settings"], params["train"]["scorecard"]
    assert [settings[k] for k in ("pdo", "base_score", "base_odds")] == [
        scale[k] for k in ("pdo", "base_score", "base_odds")
    ], "the scorecard's scaling is not the score column's"
    factor, offset = gi.scaling(settings["pdo"], settings["base_score"], settings["base_odds"])
    assert math.isclose(card["scaling"]["factor"], factor, rel_tol=1e-12)
    assert math.isclose(card["scaling"]["offset"], offset, rel_tol=1e-12)
    neutral = (offset - factor * card["intercept"]) / len(card["features"])
    wrong = [
        f"{f['name']} {b['label']}: points {b['points']!r}, expected {expected!r}"
        for f in card["features"]
        for b in [*f["bins"], f["missing"], *([f["unseen"]] if "unseen" in f else [])]
        if not math.isclose(
            b["points"], expected := neutral - factor * f["coefficient"] * b["woe"], rel_tol=0, abs_tol=1e-9
        )
    ]
    assert not wrong, f"{champion}: " + "; ".join(wrong[:SHOWN])
    result = recomputed[champion].scorecard
    assert result is not None
    z_points = (offset - result.total) / factor
    assert np.allclose(z_points, result.woe_log_odds, rtol=0.0, atol=1e-9), champion


@pytest.mark.parametrize("champion", ["xgboost", "blend"])
def test_the_tree_walk_is_xgboosts_margin(
    champion: str,
    files: dict[str, gi.ModelFiles],
    applications: pd.DataFrame,
    recomputed: dict[str, gi.Recomputed],
) -> None:
    """Cross-check of the tree walk: XGBoost's own prediction of the margin, bit for bit (both
    add float32 leaf values in the same order)."""
    model = files[champion]
    assert model.booster_path is not None
    walked = recomputed[champion].booster_margin
    assert walked is not None
    own = gi.xgboost_margin(model.booster_path, gi.feature_values(model.features, applications))
    ids = recomputed[champion].application_id
    wrong = [f"{ids[i]}: xgboost {own[i]!r}, walk {walked[i]!r}" for i in np.flatnonzero(own != walked)]
    assert not wrong, f"{champion}: " + "; ".join(wrong[:SHOWN])


# --------------------------------------------------------------------------- the check can fail


def _bump_a_bin(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    assert files.scorecard is not None
    feature = next(f for f in files.scorecard["features"] if f["name"] == "bureau_score")
    feature["bins"][4]["points"] += 1.0  # [624.5, 696.5): a bin many golden applicants fall in
    return "pd"


def _move_a_grade_bound(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    bounds = files.master_scale["boundaries"]
    bounds[2] = (bounds[1] + bounds[2]) / 2.0  # G3 shrinks: some of its rows move to G4
    return "grade"


def _change_a_platt_slope(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    files.calibrator["platt"]["slope"] *= 1.0 + 1e-6
    return "pd"


def _raise_the_income_floor(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    params["policy"]["knock_outs"]["min_monthly_income"] = 6000.0
    return "decision"


def _tighten_a_dti_cap(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    params["limits"]["dti_cap"][1] -= 0.01  # G2
    return "suggested_limit"


def _shift_a_tree(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    assert files.booster is not None
    tree = files.booster["learner"]["gradient_booster"]["model"]["trees"][0]
    for node, child in enumerate(tree["left_children"]):
        if child == -1:  # a leaf: its value is stored as its split condition
            tree["split_conditions"][node] += 1e-3
    return "pd"


def _swap_categorical_branches(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    """The categorical rule turned round (a category in the node's set going left): the golden
    rows do reach categorical splits with a known category, so the rule is checked."""
    assert files.booster is not None
    for tree in files.booster["learner"]["gradient_booster"]["model"]["trees"]:
        for node in tree["categories_nodes"]:
            tree["left_children"][node], tree["right_children"][node] = (
                tree["right_children"][node],
                tree["left_children"][node],
            )
            tree["default_left"][node] = 1 - tree["default_left"][node]
    return "pd"


def _reweigh_the_blend(files: gi.ModelFiles, params: dict[str, Any]) -> str:
    assert files.blend is not None
    files.blend["weights"] = {"scorecard": 0.31, "xgboost": 0.69}
    return "pd"


PERTURBATIONS: dict[str, tuple[str, Callable[[gi.ModelFiles, dict[str, Any]], str]]] = {
    "scorecard bin points": ("scorecard", _bump_a_bin),
    "master-scale bound": ("scorecard", _move_a_grade_bound),
    "platt slope by 1e-6": ("scorecard", _change_a_platt_slope),
    "knock-out threshold": ("scorecard", _raise_the_income_floor),
    "dti cap": ("scorecard", _tighten_a_dti_cap),
    "booster leaves by 1e-3": ("xgboost", _shift_a_tree),
    "booster categorical branches swapped": ("xgboost", _swap_categorical_branches),
    "blend weight": ("blend", _reweigh_the_blend),
}


@pytest.mark.parametrize("name", list(PERTURBATIONS))
def test_a_perturbed_model_or_policy_disagrees_with_the_pins(
    name: str, files: dict[str, gi.ModelFiles], params: dict[str, Any], applications: pd.DataFrame
) -> None:
    """The comparison is not vacuous: a small change to the files or the policy is reported,
    under the field it moves."""
    champion, perturb = PERTURBATIONS[name]
    changed_files, changed_params = files[champion].copy(), copy.deepcopy(params)
    field = perturb(changed_files, changed_params)
    lines = differences(
        champion, gi.recompute(changed_files, changed_params, applications), gi.read_expected(champion)
    )
    assert any(f" {field}: pinned " in line for line in lines), f"{name}: not caught; {lines[:3]}"
