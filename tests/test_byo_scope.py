"""A dataset without the auto-loan columns: rules and constraints switch off, the exported model
checks and scores the file's own columns, ids and role names round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.config import LimitSettings, Params, parse_params
from scoring.core.contract import SYNTHETIC_SPEC, DatasetSpec, row_ids
from scoring.core.io import DataReadError
from scoring.data.config import FileDataConfig, SyntheticDataConfig
from scoring.data.prepare import prepare_file
from scoring.data.synthetic import generate_portfolio
from scoring.decision.config import CalibrateConfig
from scoring.decision.limits import BINDING_NO_DATA, constraint_scope, limit_values
from scoring.decision.policy import (
    KNOCK_OUT_CODES,
    KO_DATA_MISSING,
    PolicySettings,
    knock_out_codes,
    knock_out_scope,
)
from scoring.decision.risk import RuleScope, fit_risk_layer
from scoring.explain.config import ReasonsConfig
from scoring.explain.reasons import fit_reason_map, readable_name
from scoring.features.transformer import ApplicationFeatures, derived_not_computed
from scoring.models.candidates.xgboost import BoosterEstimator, train_xgboost
from scoring.models.config import XGBoostConfig
from scoring.models.model import PDModel
from scoring.serving.batch import score_file
from scoring.serving.scorer import Scorer, ScoreScaling

POLICY = PolicySettings()


@pytest.fixture(scope="module")
def portfolio() -> pd.DataFrame:
    apps, _ = generate_portfolio(SyntheticDataConfig(n_applications=2000, months=24, immature_months=0), 3)
    return apps


# --------------------------------------------------------------------------- policy scope


def test_knock_out_scope_switches_off_exactly_the_rules_whose_columns_are_absent() -> None:
    rules, off = knock_out_scope(["age", "monthly_income", "max_dpd_24m"], POLICY)
    assert rules == (KO_DATA_MISSING, "KO_AGE_MIN", "KO_AGE_MAX", "KO_INCOME_MIN", "KO_DPD_SEVERE")
    assert off["KO_AGE_MATURITY"] == ("term_months",)
    assert off["KO_LTV_MAX"] == (
        "vehicle_price",
        "down_payment",
        "vehicle_condition",
        "vehicle_segment",
        "vehicle_use",
    )
    assert set(rules[1:]) | set(off) == set(KNOCK_OUT_CODES) - {KO_DATA_MISSING}
    none, all_off = knock_out_scope(["LIMIT_BAL", "PAY_0"], POLICY)
    assert none == () and set(all_off) == set(KNOCK_OUT_CODES) - {KO_DATA_MISSING}


def test_rules_in_scope_give_the_codes_the_full_policy_gives_for_them(portfolio: pd.DataFrame) -> None:
    kept = ["age", "monthly_income", "employment_type", "income_verified", "delinquencies_24m"]
    rules, _ = knock_out_scope(kept, POLICY)
    frame = portfolio.copy()
    frame.loc[frame.index[:40], "monthly_income"] = np.nan  # a required field: KO_DATA_MISSING
    frame.loc[frame.index[40:80], "age"] = 17
    narrow = knock_out_codes(frame[kept], POLICY, rules=rules)
    wide = knock_out_codes(frame, POLICY, rules=rules)
    assert (narrow == wide).all()
    assert (narrow[:40] != "").all() and all(KO_DATA_MISSING in c for c in narrow[:40])
    assert all("KO_AGE_MIN" in c for c in narrow[40:80])
    # every rule in force: the same as the policy with no scope
    all_rules, off = knock_out_scope(frame.columns, POLICY)
    assert not off
    assert (knock_out_codes(frame, POLICY, rules=all_rules) == knock_out_codes(frame, POLICY)).all()
    with pytest.raises(ValueError, match="missing columns"):
        knock_out_codes(frame[kept], POLICY)  # no scope: every rule, so every column, is required


def test_limits_without_dti_or_ltv_columns_suggest_no_limit_and_say_no_data() -> None:
    settings = LimitSettings()
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    constraints, off = constraint_scope(frame.columns)
    assert constraints == ("grade_cap",) and set(off) == {"dti", "ltv"}
    out = limit_values(
        frame,
        [0.01, 0.05, 0.4],
        [1, 5, 10],
        np.array([0, 1, 2]),
        settings,
        None,
        coded=True,
        constraints=constraints,
    )
    assert out["binding_constraint"].tolist() == [BINDING_NO_DATA, BINDING_NO_DATA, "declined"]
    assert np.isnan(out["suggested_limit"][:2]).all() and out["suggested_limit"][2] == 0.0
    assert np.isnan(out["max_by_dti"]).all() and np.isnan(out["max_by_ltv"]).all()


def test_limits_with_the_ltv_columns_only_are_bound_by_ltv_or_the_grade_cap() -> None:
    settings = LimitSettings()
    frame = pd.DataFrame({"vehicle_price": [100_000.0, 5_000_000.0]})
    out = limit_values(
        frame,
        [0.01, 0.01],
        [1, 1],
        np.array([0, 0]),
        settings,
        np.array([0.8, 0.8]),
        coded=True,
        constraints=("ltv", "grade_cap"),
    )
    assert out["binding_constraint"].tolist() == ["ltv", "grade_cap"]
    assert out["suggested_limit"].tolist() == [80_000.0, settings.amount_cap[0]]


def test_rule_scope_describes_what_is_off_and_is_complete_on_the_contract(portfolio: pd.DataFrame) -> None:
    assert RuleScope.for_columns(portfolio.columns, POLICY).complete
    scope = RuleScope.for_columns(["age"], POLICY)
    lines = scope.describe()
    assert "knock-out rule KO_INCOME_MIN switched off: no column monthly_income" in lines
    assert any(line.startswith("no limit is suggested") for line in lines)
    record = scope.to_dict()
    assert record["knock_outs_in_force"] == [KO_DATA_MISSING, "KO_AGE_MIN", "KO_AGE_MAX"]
    assert record["limit_constraints_switched_off"]["dti"][0] == "monthly_income"


# --------------------------------------------------------------------------- prepare


def _write(frame: pd.DataFrame, path: Path, index: bool = False) -> Path:
    frame.to_csv(path, index=index)
    return path


def test_roles_rename_file_columns_and_refuse_what_cannot_be_mapped(tmp_path: Path) -> None:
    frame = pd.DataFrame({"MonthlyIncome": [5000.0, 7000.0], "Age": [30, 40], "BAD": [0, 1]})
    path = _write(frame, tmp_path / "f.csv")
    roles = {"monthly_income": "MonthlyIncome", "age": "Age"}
    prepared = prepare_file(FileDataConfig(path=path, target_column="BAD", roles=roles))
    assert {"monthly_income", "age"} <= set(prepared.applications.columns)
    assert "MonthlyIncome" not in prepared.applications.columns
    assert prepared.spec.roles == roles
    with pytest.raises(DataReadError, match=r"not in the file \(monthly_income: 'Income'\)"):
        prepare_file(FileDataConfig(path=path, target_column="BAD", roles={"monthly_income": "Income"}))
    with pytest.raises(DataReadError, match="declared as the id, target"):
        prepare_file(FileDataConfig(path=path, target_column="BAD", roles={"age": "BAD"}))
    with pytest.raises(ValueError, match="not data contract columns"):
        FileDataConfig(path=path, roles={"salary": "MonthlyIncome"})


def test_a_saved_row_index_is_the_id_and_question_marks_are_missing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ratio": ["0.5", "?", "1.5"], "BAD": [0, 1, 0]}, index=[11, 12, 13])
    path = _write(frame, tmp_path / "ratios.csv", index=True)  # header starts with an empty name
    prepared = prepare_file(FileDataConfig(path=path, target_column="BAD"))
    assert prepared.spec.id_column == "Unnamed: 0" and not prepared.spec.generated_id
    assert prepared.applications["ratio"].dtype == np.float64
    assert prepared.applications["ratio"].isna().tolist() == [False, True, False]
    # declared as a column to drop: not taken for the id, rows are numbered instead
    dropped = prepare_file(FileDataConfig(path=path, target_column="BAD", drop_columns=["Unnamed: 0"]))
    assert dropped.spec.generated_id and dropped.applications["row_id"].tolist() == row_ids(3)


# --------------------------------------------------------------------------- features


def test_a_declared_id_leaves_the_contracts_id_out_of_the_model_inputs(portfolio: pd.DataFrame) -> None:
    frame = portfolio.assign(row_id=[f"X{i}" for i in range(len(portfolio))])
    spec = DatasetSpec(
        id_column="row_id",
        target_column="default_12m",
        date_column="application_date",
        customer_column="customer_id",
    )
    features = ApplicationFeatures(exclude_columns=spec.non_feature_columns).fit(frame)
    assert "application_id" in features.unused_columns_
    assert "application_id" not in features.input_columns_
    matrix = features.transform(frame.drop(columns="application_id"))  # not needed any more
    assert list(matrix.columns) == list(features.get_feature_names_out())
    assert derived_not_computed(features) == {}
    restored = ApplicationFeatures.from_dict(features.to_dict())
    assert restored.unused_columns_ == features.unused_columns_
    assert restored.input_profile_ == features.input_profile_


# --------------------------------------------------------------------------- reason map


def test_generated_reason_codes_are_valid_unique_and_readable() -> None:
    features = ["Unnamed: 0", "NumberOfTime30-59DaysPastDueNotWorse", "age", "a b", "a_b"]
    fitted = fit_reason_map(features, parse_params({}).reasons)
    codes = [fitted.config.reason_map[f].code for f in features]
    assert len(set(codes)) == len(codes)
    assert all(c.startswith("F_") for c in codes)
    assert (
        fitted.config.reason_map["a b"].code == "F_a_b" and fitted.config.reason_map["a_b"].code == "F_a_b_2"
    )
    assert fitted.config.reason_map["NumberOfTime30-59DaysPastDueNotWorse"].text == (
        "Number of time 30 59 days past due not worse"
    )
    assert readable_name("LIMIT_BAL") == "Limit bal"
    # a configured entry for a feature the model has wins over generation
    config = ReasonsConfig(reason_map={"age": {"code": "R18", "text": "Age"}})  # type: ignore[dict-item]
    fitted = fit_reason_map(["age", "x"], config)
    assert fitted.config.reason_map["age"].code == "R18" and fitted.generated == ("x",)


# --------------------------------------------------------------------------- serving


def _credit_file(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "Age": rng.integers(21, 70, n),
            "MonthlyIncome": np.where(rng.uniform(size=n) < 0.15, np.nan, rng.lognormal(8.5, 0.6, n).round()),
            "Late90": rng.poisson(0.2, n),
            "Utilisation": rng.lognormal(-1.0, 1.0, n),
            "Score": rng.normal(0, 1, n),  # takes negative values
            "Job": rng.choice(["a", "b", "c"], n),
        }
    )
    logit = -2.5 + 0.8 * frame["Late90"] + 0.5 * np.log(frame["Utilisation"]) - 0.3 * frame["Score"]
    frame["BAD"] = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


@pytest.fixture(scope="module")
def byo_scorer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scorer, pd.DataFrame, Path]:
    """A scorer trained on a file with no id column and two contract roles (age, monthly_income)."""
    directory = tmp_path_factory.mktemp("byo")
    raw = _credit_file(3000, 1)
    path = _write(raw, directory / "credit.csv")
    roles = {"age": "Age", "monthly_income": "MonthlyIncome"}
    prepared = prepare_file(FileDataConfig(path=path, target_column="BAD", roles=roles))
    spec = DatasetSpec(
        **{**prepared.spec.__dict__, "value_ranges": {"Utilisation": {"min": 0.0, "max": 50.0}}}
    )
    frame = prepared.applications
    train, cal = frame.iloc[:2000], frame.iloc[2000:]
    features = ApplicationFeatures(exclude_columns=spec.non_feature_columns).fit(train)
    booster = train_xgboost(
        features.transform(train),
        train["BAD"],
        features.transform(cal),
        cal["BAD"],
        XGBoostConfig(n_estimators=40),
        1,
    ).booster
    model = PDModel(features, BoosterEstimator(booster))
    layer = fit_risk_layer(model.predict_pd(cal), cal["BAD"].to_numpy(dtype=float), CalibrateConfig(), seed=1)
    params = Params()
    scorer = Scorer(model, layer.calibrator, layer.scale, params.policy, params.limits, ScoreScaling(), spec)
    return scorer, raw, path


def test_the_scope_follows_the_model_inputs_with_roles(byo_scorer: tuple[Scorer, pd.DataFrame, Path]) -> None:
    scorer, _, _ = byo_scorer
    assert scorer.scope.knock_outs == (KO_DATA_MISSING, "KO_AGE_MIN", "KO_AGE_MAX", "KO_INCOME_MIN")
    assert scorer.scope.constraints == ("grade_cap",)


def test_the_raw_file_scores_under_its_own_names_with_numbered_ids(
    byo_scorer: tuple[Scorer, pd.DataFrame, Path], tmp_path: Path
) -> None:
    scorer, raw, path = byo_scorer
    out = scorer.score(raw.drop(columns="BAD").head(50))
    assert out["application_id"].tolist() == row_ids(50)
    approved = out["decision"] != "decline"
    assert (out.loc[approved, "limit_constraint"] == BINDING_NO_DATA).all()
    assert out.loc[approved, "suggested_limit"].isna().all()
    old = raw.drop(columns="BAD").head(5).assign(Age=70)
    assert all("KO_AGE_MAX" in r for r in scorer.score(old)["policy_reasons"])

    # in chunks, the ids continue across chunks as prepare numbered the file
    output, rejected = tmp_path / "scores.parquet", tmp_path / "rejected.parquet"
    counts = score_file(scorer, path, output, rejected, chunk_rows=700)
    scores = pd.read_parquet(output)
    assert counts.n_input == len(raw) == counts.n_scored and counts.n_rejected == 0
    assert scores["application_id"].tolist() == row_ids(len(raw))
    expected = scorer.score(raw.drop(columns="BAD"))
    pd.testing.assert_series_equal(scores["pd"], expected["pd"], check_exact=True, check_names=False)


def test_what_training_did_not_show_is_scored_and_flagged_and_declared_bounds_reject(
    byo_scorer: tuple[Scorer, pd.DataFrame, Path],
) -> None:
    scorer, raw, _ = byo_scorer
    rows = raw.drop(columns="BAD").head(6).reset_index(drop=True).astype({"Late90": object})
    rows.loc[0, "Late90"] = -1.0  # a count training never saw negative: scored, flagged
    rows.loc[1, "Late90"] = 1.5  # a fraction in a column of whole numbers: scored, flagged
    rows.loc[2, "Utilisation"] = 60.0  # above the declared maximum: rejected
    rows.loc[3, "Score"] = 1e6  # far beyond training's maximum: scored, flagged
    rows.loc[4, "Late90"] = "two"  # text in a number: rejected
    scored = scorer.score_rows(rows)
    reasons = dict(zip(scored.rejected["row"], scored.rejected["reject_reasons"], strict=True))
    assert reasons == {
        2: "Utilisation: got 60, expected a number in 0..50 or null",
        4: "Late90: got 'two', expected a number or null",
    }
    assert scored.scored.tolist() == [True, True, False, True, False, True]
    flags = dict(zip(scored.scores["application_id"], scored.scores["input_flags"], strict=True))
    ids = row_ids(6)
    assert flags == {
        ids[0]: "Late90:out_of_range",
        ids[1]: "Late90:not_whole",
        ids[3]: "Score:out_of_range",
        ids[5]: "",
    }
    counts = scored.counts()
    assert (counts["n_input"], counts["n_scored"], counts["n_rejected"], counts["n_flagged"]) == (6, 4, 2, 3)
    assert counts["flags"] == {"Late90:not_whole": 1, "Late90:out_of_range": 1, "Score:out_of_range": 1}
    # a flagged row's score is the model's on its value: the same as scoring it alone
    alone = scorer.score(rows.iloc[[0]])
    assert (
        alone["pd"].iloc[0] == scored.scores["pd"].iloc[0] and alone["input_flags"].iloc[0] == flags[ids[0]]
    )
    # beyond the range the booster saw, its answer is that of the range's edge
    edge = rows.iloc[[0]].assign(Late90=float(raw["Late90"].min()))
    assert scorer.score(edge)["pd"].iloc[0] == alone["pd"].iloc[0]
    assert scorer.score(edge)["input_flags"].iloc[0] == ""


def test_monitoring_counts_the_values_training_did_not_show(
    byo_scorer: tuple[Scorer, pd.DataFrame, Path],
) -> None:
    from scoring.monitoring.monitor import score_for_monitoring

    scorer, raw, _ = byo_scorer
    batch = raw.drop(columns="BAD").head(5).reset_index(drop=True).astype({"Late90": float})
    batch.loc[1, "Late90"] = -3.0
    batch.loc[2, "Late90"] = np.nan
    batch.loc[2, "Score"] = 1e9
    scored = score_for_monitoring(scorer, batch)
    assert scored.flag_counts() == {
        "batch_flagged": 2,
        "batch_flags": {"Late90:null_unseen": 1, "Late90:out_of_range": 1, "Score:out_of_range": 1},
    }
    # a batch that came scored keeps its own flags; one scored without them has none to count
    again = score_for_monitoring(
        scorer,
        scorer.model_input(batch).join(
            scorer.score(batch)[["pd", "score", "grade", "decision", "input_flags"]]
        ),
    )
    assert again.flag_counts() == scored.flag_counts()
    bare = batch.assign(pd=0.1, score=600.0, grade=1, decision="approve")
    assert score_for_monitoring(scorer, bare).flag_counts() == {"batch_flagged": None, "batch_flags": {}}


def test_only_mapped_roles_count_outside_the_contract() -> None:
    columns = ["age", "monthly_income", "x"]
    plain = DatasetSpec(id_column="id", target_column="y")
    assert plain.role_columns(columns) == []  # named like the contract, but nobody said they are
    mapped = DatasetSpec(id_column="id", target_column="y", roles={"age": "age"})
    assert mapped.role_columns(columns) == ["age"]
    assert SYNTHETIC_SPEC.role_columns(columns) == columns


def test_a_contract_layout_file_with_extra_and_unused_columns_gets_reason_codes(
    portfolio: pd.DataFrame,
) -> None:
    """A small contract file: dealer_id has no level frequent enough (not a model feature), and
    the file carries an extra column. The strict map leaves the first out, generates a code for
    the second, and still refuses a name that is nobody's."""
    from scoring.config import load_params
    from scoring.explain.reasons import ReasonCoder, ReasonConfigError

    frame = portfolio.assign(extra_score=np.linspace(0, 1, len(portfolio)))
    spec = DatasetSpec(
        id_column="application_id",
        target_column="default_12m",
        date_column="application_date",
        customer_column="customer_id",
        follows_auto_loan_contract=True,
    )
    features = ApplicationFeatures(exclude_columns=spec.non_feature_columns, min_category_count=200).fit(
        frame
    )
    assert "dealer_id" in features.unused_columns_ and "extra_score" in features.input_columns_
    matrix = features.transform(frame)
    booster = train_xgboost(
        matrix, frame["default_12m"], matrix, frame["default_12m"], XGBoostConfig(n_estimators=5), 1
    )
    model = PDModel(features, BoosterEstimator(booster.booster))
    config = load_params(Path(__file__).resolve().parents[1] / "params.yaml").reasons
    coder = ReasonCoder.fit(model, frame, config)
    codes = {g.name: g.code for g in coder.groups}
    assert codes["extra_score"] == "F_extra_score" and "dealer_id" not in codes
    assert codes["credit_bureau"] == "R01"
    typo = config.model_copy(
        update={"reason_map": {**config.reason_map, "bureau_scor": config.reason_map["region"]}}
    )
    with pytest.raises(ReasonConfigError, match="bureau_scor"):
        ReasonCoder.fit(model, frame, typo)


def test_fields_training_always_saw_filled_must_be_columns_and_a_null_is_flagged(
    byo_scorer: tuple[Scorer, pd.DataFrame, Path],
) -> None:
    from scoring.serving.inputs import InputSchemaError

    scorer, raw, _ = byo_scorer
    rows = raw.drop(columns="BAD").head(3).reset_index(drop=True)
    with pytest.raises(InputSchemaError, match=r"missing required fields \['Late90'\]"):
        scorer.score(rows.drop(columns="Late90"))  # another file's columns fail by name
    rows = rows.astype({"Late90": float, "MonthlyIncome": float})
    rows.loc[0, "Late90"] = np.nan  # never empty in training: scored as missing, flagged
    rows.loc[1, "MonthlyIncome"] = np.nan  # empty in training too: scored as missing
    scores, rejected = scorer.score_batch(rows)
    assert rejected.empty and scores["application_id"].tolist() == row_ids(3)
    assert scores["input_flags"].tolist() == ["Late90:null_unseen", "", ""]
