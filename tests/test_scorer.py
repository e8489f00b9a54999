"""The full scoring output (scoring.serving.scorer) and the value layer in front of it
(scoring.serving.inputs)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import STRICTLY_POSITIVE_COLUMNS, SYNTHETIC_SPEC
from scoring.core.io import read_json
from scoring.decision.grades import MasterScale
from scoring.decision.risk import RiskLayer, decide_and_limit
from scoring.models.calibration import Calibrator
from scoring.serving.bundle import ModelBundle
from scoring.serving.inputs import STRICTLY_POSITIVE, InputRejected, InputSchemaError
from scoring.serving.scorer import OUTPUT_COLUMNS, REASON_CODE_COLUMNS, Scorer, ScoreScaling
from serving_support import build_model_dir, repo_params


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    return build_model_dir(tmp_path_factory.mktemp("scorer") / "models")


@pytest.fixture(scope="module")
def scorer(built: tuple[Path, pd.DataFrame]) -> Scorer:
    return Scorer.from_model_dir(built[0], repo_params(), SYNTHETIC_SPEC)


def test_output_has_the_agreed_columns_and_types(scorer: Scorer, built: tuple[Path, pd.DataFrame]) -> None:
    raw = built[1]
    out = scorer.score(raw)
    assert list(out.columns) == list(OUTPUT_COLUMNS)
    assert len(out) == len(raw)
    assert out["application_id"].tolist() == raw["application_id"].astype(str).tolist()
    assert out["grade"].dtype == np.int64 and out["pd"].dtype == np.float64
    assert set(out["decision"]) <= {"approve", "refer", "decline"}
    # the model's content id: what it read from its folder, so a second load gives it again
    assert re.fullmatch(r"[0-9a-f]{12}", scorer.model_version)
    assert (out["model_version"] == scorer.model_version).all()
    again = Scorer.from_model_dir(built[0], repo_params(), SYNTHETIC_SPEC)
    assert again.model_version == scorer.model_version
    assert (out.loc[out["decision"] == "decline", "suggested_limit"] == 0).all()
    assert (out.loc[out["decision"] == "decline", "limit_constraint"] == "declined").all()


def test_output_equals_the_risk_layer_on_the_model_pd(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    model_dir, raw = built
    model = ModelBundle(model_dir).load_model()
    layer = RiskLayer(
        Calibrator.from_dict(read_json(model_dir / "calibrator.json")),
        MasterScale.from_dict(read_json(model_dir / "master_scale.json")),
    )
    params = repo_params()
    expected = decide_and_limit(raw, model.predict_pd(raw), layer, params.policy, params.limits)
    out = scorer.score(raw, with_reasons=False)
    np.testing.assert_array_equal(out["pd"].to_numpy(), expected["pd"].to_numpy())
    np.testing.assert_array_equal(out["grade"].to_numpy(), expected["grade"].to_numpy())
    assert out["decision"].tolist() == expected["decision"].tolist()
    assert out["policy_reasons"].tolist() == expected["policy_reasons"].tolist()
    np.testing.assert_array_equal(out["suggested_limit"].to_numpy(), expected["suggested_limit"].to_numpy())
    assert out["limit_constraint"].tolist() == expected["binding_constraint"].tolist()
    assert (out[list(REASON_CODE_COLUMNS)] == "").all().all()


def test_declines_get_reasons_that_the_coder_gives(scorer: Scorer, built: tuple[Path, pd.DataFrame]) -> None:
    raw = built[1]
    out = scorer.score(raw)
    assert scorer.reasons is not None
    expected = scorer.reasons.reasons(scorer.model, scorer.model.feature_matrix(raw))
    for column in expected.columns:
        assert out[column].tolist() == expected[column].tolist()
    declined = out[out["decision"] == "decline"]
    assert len(declined) and (declined["reason_code_1"] != "").all()
    assert declined["reason_text_1"].str.len().min() > 0


def test_score_is_points_from_the_calibrated_pd() -> None:
    scaling = ScoreScaling(pdo=20, base_score=600, base_odds=50)
    at_base = 1 / (1 + 50)  # good:bad odds of 50
    np.testing.assert_allclose(scaling.points([at_base]), [600.0])
    doubled = 1 / (1 + 100)
    np.testing.assert_allclose(scaling.points([doubled]), [620.0])
    p = np.linspace(0.001, 0.999, 50)
    assert (np.diff(scaling.points(p)) < 0).all()
    with pytest.raises(ValueError, match="pdo=0"):
        ScoreScaling(pdo=0)


def test_scores_of_the_pipeline_use_the_scorecard_scaling(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    out = scorer.score(built[1].head(20), with_reasons=False)
    card = repo_params().train.scorecard
    factor = card.pdo / math.log(2)
    offset = card.base_score - factor * math.log(card.base_odds)
    p = out["pd"].to_numpy()
    np.testing.assert_allclose(out["score"].to_numpy(), offset - factor * np.log(p / (1 - p)), rtol=1e-12)


# --------------------------------------------------------------------------- value layer


def _one(raw: pd.DataFrame, **changes: object) -> pd.DataFrame:
    row = raw.head(1).copy()
    for name, value in changes.items():
        row[name] = pd.Series([value], dtype=object, index=row.index)
    return row


def test_impossible_values_are_rejected_with_field_value_and_expectation(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    raw = built[1]
    cases = {
        "age": (17, "age: got 17, expected a whole number in 18..80"),
        "monthly_income": (0.0, "monthly_income: got 0, expected a number > 0 and <= 10000000"),
        "term_months": ("sixty", "term_months: got 'sixty', expected a whole number in 1..120"),
        "income_verified": ("false", "income_verified: got 'false', expected true or false"),
        "employment_years": (None, "employment_years: got null, expected a number in 0..70"),
        "annual_rate": (float("inf"), "annual_rate: got inf, expected a number in 0..1"),
    }
    for field, (value, message) in cases.items():
        with pytest.raises(InputRejected) as info:
            scorer.score(_one(raw, **{field: value}))
        assert message in str(info.value), (field, str(info.value))
    two = _one(raw, age=200, dependents=-1)
    with pytest.raises(
        InputRejected, match=r"age: got 200.*; dependents: got -1, expected a whole number in 0..8"
    ):
        scorer.score(two)


def test_integral_floats_are_accepted_for_int_fields_and_fractions_are_not(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    raw = built[1].head(30)
    as_float = raw.astype({"age": "float64", "term_months": "float64", "dependents": "float64"})
    pd.testing.assert_frame_equal(scorer.score(as_float), scorer.score(raw), check_exact=True)
    with pytest.raises(InputRejected, match=r"age: got 45.5, expected a whole number in 18..80"):
        scorer.score(_one(raw, age=45.5))


def test_missing_required_field_is_a_schema_error_naming_it(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    raw = built[1].head(5)
    with pytest.raises(InputSchemaError, match=r"missing required fields \['monthly_income'\].*a number > 0"):
        scorer.score(raw.drop(columns="monthly_income"))
    with pytest.raises(InputSchemaError, match="application_id"):
        scorer.score(raw.drop(columns="application_id"))


def test_absent_optional_fields_score_as_missing(scorer: Scorer, built: tuple[Path, pd.DataFrame]) -> None:
    raw = built[1].head(40)
    optional = ["bureau_score", "revolving_utilization", "avg_monthly_spend_6m", "dealer_id"]
    nulls = raw.copy()
    for name in optional:
        nulls[name] = np.nan if name != "dealer_id" else None
    pd.testing.assert_frame_equal(
        scorer.score(raw.drop(columns=optional)), scorer.score(nulls), check_exact=True
    )


def test_unseen_category_scores_as_missing_and_policy_declines_it(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    raw = built[1].head(20)
    # an optional field: an unseen level scores exactly as a null
    pd.testing.assert_frame_equal(
        scorer.score(raw.assign(dealer_id="D-NEW")),
        scorer.score(raw.assign(dealer_id=None)),
        check_exact=True,
    )
    # a required field: any unseen level scores the same (as missing), a null is rejected
    pd.testing.assert_frame_equal(
        scorer.score(raw.assign(region="ATLANTIS")), scorer.score(raw.assign(region="MARS")), check_exact=True
    )
    with pytest.raises(InputRejected, match="region: got null"):
        scorer.score(raw.assign(region=None))
    out = scorer.score(raw.assign(employment_type="astronaut"))
    assert (out["decision"] == "decline").all()
    assert out["policy_reasons"].str.contains("KO_DATA_MISSING").all()


def test_batch_rejects_rows_and_counts_reconcile(scorer: Scorer, built: tuple[Path, pd.DataFrame]) -> None:
    raw = built[1].head(50).astype({"age": "float64"})
    raw.loc[[3, 17], "age"] = [12.0, np.nan]
    raw.loc[20, "application_id"] = None
    scores, rejected = scorer.score_batch(raw)
    assert len(scores) + len(rejected) == len(raw)
    assert rejected["row"].tolist() == [3, 17, 20]
    assert rejected["reject_reasons"].tolist()[:2] == [
        "age: got 12, expected a whole number in 18..80",
        "age: got null, expected a whole number in 18..80",
    ]
    assert rejected["reject_reasons"].iloc[2] == "application_id: got null, expected a non-empty id"
    good = raw.drop(index=[3, 17, 20])
    pd.testing.assert_frame_equal(scores, scorer.score(good), check_exact=True)


@pytest.mark.parametrize(
    "ranges", [{}, {"age": {"min": 21.0, "max": 70.0}, "dependents": {"min": None, "max": None}}]
)
def test_the_gate_and_the_value_layer_read_one_rule_set_of_bounds(
    scorer: Scorer, ranges: dict[str, dict[str, float | None]]
) -> None:
    """Every bound the exported model rejects by is a bound of the gate's suite, with the same
    limits and the same exclusive minimum (the contract's, or validate.ranges in their place)."""
    from dataclasses import replace

    from scoring.data.config import ValidateConfig
    from scoring.data.validation import build_suite
    from scoring.serving.inputs import InputRules

    assert STRICTLY_POSITIVE == STRICTLY_POSITIVE_COLUMNS
    spec = replace(SYNTHETIC_SPEC, value_ranges=ranges)
    rules = InputRules.for_model(scorer.model.features, spec)
    config = ValidateConfig.model_validate({"ranges": ranges})
    suite = build_suite([*rules.describe()], spec, config)
    gate = {
        e.column: (e.min_value, e.max_value, bool(e.strict_min))
        for e in suite.expectations
        if e.expectation_type == "expect_column_values_to_be_between" and e.column in rules.describe()
    }
    model = {
        f.name: (f.min, f.max, f.strict_min) for f in rules.fields if f.min is not None or f.max is not None
    }
    assert model == gate
    if ranges:
        assert model["age"] == (21.0, 70.0, False) and "dependents" not in model
    else:
        assert model["monthly_income"] == (0, 10_000_000, True) and model["age"] == (18, 80, False)


def test_predictions_file_rows_carry_split_target_raw_pd_and_the_full_output(
    scorer: Scorer, built: tuple[Path, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    from scoring.reporting.evaluation import evaluate_model
    from scoring.serving.scorer import NothingScored, scored_predictions, scoring_counts

    raw = built[1].head(60).copy()
    raw["default_12m"] = np.arange(60) % 7 == 0
    raw["default_12m"] = raw["default_12m"].astype(int)
    parts = {"train": raw.iloc[:20], "valid": raw.iloc[:0], "test": raw.iloc[20:60]}
    result = evaluate_model(scorer.model, parts, SYNTHETIC_SPEC)
    out, rejected = scored_predictions(scorer, parts, SYNTHETIC_SPEC, result.scores)
    assert rejected.empty
    assert list(out.columns) == ["application_id", "split", "default_12m", "pd_raw", *OUTPUT_COLUMNS[1:]]
    assert out["split"].tolist() == ["train"] * 20 + ["test"] * 40
    assert out["default_12m"].tolist() == raw["default_12m"].astype(float).tolist()
    np.testing.assert_array_equal(out["pd_raw"].to_numpy(), scorer.model.predict_pd(raw))
    pd.testing.assert_frame_equal(
        out[list(OUTPUT_COLUMNS)], scorer.score(raw.reset_index(drop=True)), check_exact=True
    )

    # a row the value layer refuses is reported with its split and reason, not raised; the rest
    # keep their own targets and raw PDs
    bad = raw.copy()
    bad.loc[bad.index[25], "age"] = 12
    parts = {"train": bad.iloc[:20], "valid": bad.iloc[:0], "test": bad.iloc[20:60]}
    result = evaluate_model(scorer.model, parts, SYNTHETIC_SPEC)
    kept, rejected = scored_predictions(scorer, parts, SYNTHETIC_SPEC, result.scores)
    assert rejected[["split", "row"]].values.tolist() == [["test", 5]]
    assert rejected["reject_reasons"].iloc[0] == "age: got 12, expected a whole number in 18..80"
    pd.testing.assert_frame_equal(kept, out.drop(index=25).reset_index(drop=True), check_exact=True)
    counts = scoring_counts(kept, rejected)
    assert (counts["n_input"], counts["n_scored"], counts["n_rejected"]) == (60, 59, 1)
    assert counts["by_split"] == {
        "train": {"n_scored": 20, "n_rejected": 0},
        "test": {"n_scored": 39, "n_rejected": 1},
    }

    # nothing to score: one line that says so (a stage prints it, no traceback)
    from scoring.runtime import run_stage

    every = {"test": bad.iloc[25:26]}
    ids = result.scores[SYNTHETIC_SPEC.id_column].astype(str)
    raw = result.scores[ids == str(bad.iloc[25][SYNTHETIC_SPEC.id_column])].reset_index(drop=True)

    def stage() -> None:
        scored_predictions(scorer, every, SYNTHETIC_SPEC, raw)

    with pytest.raises(SystemExit) as stopped:
        run_stage(stage)
    assert stopped.value.code == 1
    line = capsys.readouterr().err
    assert line.startswith("error: none of the 1 rows") and "age: got 12" in line and line.count("\n") == 1
    with pytest.raises(NothingScored, match=r"none of the 1 rows .* age: got 12"):
        scored_predictions(scorer, every, SYNTHETIC_SPEC, raw)


# ---------------------------------------------------------- the array path against the frame functions

GOLDEN = Path(__file__).parent / "data" / "golden_applications.csv"


def _through_frame_functions(scorer: Scorer, applications: pd.DataFrame) -> pd.DataFrame:
    """The output assembled from the public DataFrame functions, row by row of the checked frame:
    features.transform, the estimator's predict_pd, decide_and_limit and ReasonCoder.reasons (the
    reference for the scorer's NumPy path)."""
    checked = scorer.check(applications)
    valid = checked.frame.loc[~checked.rejected]
    matrix = scorer.model.feature_matrix(valid)
    risk = decide_and_limit(
        valid,
        scorer.model.estimator.predict_pd(matrix),
        RiskLayer(scorer.calibrator, scorer.scale),
        scorer.policy,
        scorer.limits,
    )
    assert scorer.reasons is not None
    reasons = scorer.reasons.reasons(scorer.model, matrix)
    ids = valid[scorer.spec.id_column]
    pd_cal = risk["pd"].to_numpy(dtype=np.float64)
    columns: dict[str, pd.Series | np.ndarray] = {
        "application_id": ids.astype(str).to_numpy(dtype=object),
        "pd": pd_cal,
        "score": scorer.scaling.points(pd_cal),
        "grade": risk["grade"].to_numpy(dtype=np.int64),
        "decision": risk["decision"].to_numpy(dtype=object),
        "policy_reasons": risk["policy_reasons"].to_numpy(dtype=object),
        "suggested_limit": risk["suggested_limit"].to_numpy(dtype=np.float64),
        "limit_constraint": risk["binding_constraint"].to_numpy(dtype=object),
        **{c: reasons[c].to_numpy(dtype=object) for c in reasons.columns},
        "input_flags": checked.flags_of(~checked.rejected),
        "model_version": np.full(len(valid), scorer.model_version, dtype=object),
    }
    return pd.DataFrame(
        {c: pd.Series(columns[c], dtype=object) if c in _TEXT else columns[c] for c in OUTPUT_COLUMNS}
    )


_TEXT = {c for c in OUTPUT_COLUMNS if c not in {"pd", "score", "grade", "suggested_limit"}}


def _mixed_batch(raw: pd.DataFrame) -> pd.DataFrame:
    """Rows with every kind of trouble: rejected ones and odd-but-scorable ones (JSON-like objects)."""
    mixed = raw.head(60).astype({"age": "float64", "term_months": object, "income_verified": object})
    mixed.loc[[2, 9], "age"] = [150.0, np.nan]  # rejected: out of range, null in a required field
    mixed.loc[4, "term_months"] = "36"  # rejected: text in a number
    mixed.loc[5, "term_months"] = 36.0  # an integral float in an int field: accepted
    mixed.loc[6, "income_verified"] = "yes"  # rejected
    mixed.loc[7, "income_verified"] = None  # rejected: a required field
    mixed.loc[8, "monthly_income"] = 0.0  # rejected: must be above 0
    mixed.loc[11, "application_id"] = ""  # rejected: empty id
    mixed.loc[12, "region"] = "R99"  # unseen level: scored as missing
    mixed.loc[13, "vehicle_segment"] = None  # required category null: rejected
    mixed.loc[14, ["bureau_score", "dealer_id"]] = [np.nan, None]  # optional nulls: scored
    mixed.loc[15, "employment_type"] = "astronaut"  # outside the contract: KO_DATA_MISSING
    mixed.loc[16, "income_verified"] = 1  # 1 for true: accepted
    return mixed


def test_the_array_path_gives_the_frame_functions_output_on_golden_and_a_mixed_batch(
    scorer: Scorer, built: tuple[Path, pd.DataFrame]
) -> None:
    golden = pd.read_csv(GOLDEN)
    pd.testing.assert_frame_equal(
        scorer.score(golden), _through_frame_functions(scorer, golden), check_exact=True
    )
    mixed = _mixed_batch(built[1])
    scores, rejected = scorer.score_batch(mixed)
    assert rejected["row"].tolist() == [2, 4, 6, 7, 8, 9, 11, 13]
    assert len(scores) + len(rejected) == len(mixed)
    pd.testing.assert_frame_equal(scores, _through_frame_functions(scorer, mixed), check_exact=True)
    assert (scores["policy_reasons"].str.contains("KO_DATA_MISSING")).sum() == 1  # the astronaut
    without = scorer.score_batch(mixed, with_reasons=False)[0]
    reason_columns = [c for c in OUTPUT_COLUMNS if c.startswith("reason_")]
    pd.testing.assert_frame_equal(
        without.drop(columns=reason_columns), scores.drop(columns=reason_columns), check_exact=True
    )
    assert (without[reason_columns] == "").all().all()


def test_one_application_at_a_time_scores_as_the_batch(scorer: Scorer) -> None:
    golden = pd.read_csv(GOLDEN)
    batch = scorer.score(golden)
    one_by_one = pd.concat([scorer.score(golden.iloc[[i]]) for i in range(len(golden))], ignore_index=True)
    pd.testing.assert_frame_equal(one_by_one, batch, check_exact=True)
    assert scorer.score(golden.iloc[:0]).columns.tolist() == list(OUTPUT_COLUMNS)


def test_json_like_object_columns_score_as_typed_columns(scorer: Scorer) -> None:
    golden = pd.read_csv(GOLDEN)
    as_json = golden.astype(object).where(golden.notna(), None)  # what a JSON decoder hands over
    pd.testing.assert_frame_equal(scorer.score(as_json), scorer.score(golden), check_exact=True)


def test_the_checked_frame_checks_again_to_the_same_values(scorer: Scorer) -> None:
    golden = pd.read_csv(GOLDEN).drop(columns=["bureau_score"])  # an absent optional field
    first = scorer.check(golden)
    again = scorer.check(first.frame)
    assert first.values.keys() == again.values.keys()
    for name, values in first.values.items():
        np.testing.assert_array_equal(again.values[name], values, err_msg=name)
    assert np.isnan(first.values["bureau_score"]).all()
    assert first.frame["income_verified"].dtype == golden["income_verified"].dtype  # bool kept as given
    pd.testing.assert_frame_equal(scorer.score(first.frame), scorer.score(golden), check_exact=True)
