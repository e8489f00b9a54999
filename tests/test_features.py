"""The feature transformer on tiny frames: derived features, edge cases, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scoring.core.finance import annuity_payment
from scoring.features.transformer import ApplicationFeatures, FeatureInputError, feature_summary


def applications(n: int = 3) -> pd.DataFrame:
    base = {
        "vehicle_use": ["private", "private", "commercial"],
        "application_id": ["A1", "A2", "A3"],
        "age": [30, 45, 62],
        "monthly_income": [10_000.0, 0.0, 8_000.0],
        "existing_monthly_debt": [1_000.0, 500.0, 0.0],
        "dependents": [0, 2, 1],
        "bureau_score": pd.array([700, pd.NA, 610], dtype="Int64"),
        "vehicle_price": [200_000.0, 100_000.0, 150_000.0],
        "down_payment": [40_000.0, 30_000.0, 45_000.0],
        "loan_amount": [160_000.0, 70_000.0, 105_000.0],
        "term_months": [60, 36, 24],
        "annual_rate": [0.06, 0.0, 0.12],
        "repayment_method": ["equal_installment", "equal_installment", "equal_principal"],
        "channel": ["dealer", "online", "dealer"],
        "income_verified": [True, False, True],
        "default_12m": [0, 1, 0],
    }
    return pd.DataFrame(base).head(n)


def fitted(frame: pd.DataFrame | None = None, **kwargs: object) -> ApplicationFeatures:
    params = {"exclude_columns": ("application_id", "default_12m"), "min_category_count": 1, **kwargs}
    return ApplicationFeatures(**params).fit(frame if frame is not None else applications())  # type: ignore[arg-type]


def test_derived_features_follow_the_formulas() -> None:
    out = fitted().transform(applications())
    payment0 = float(annuity_payment(160_000, 0.06, 60))
    assert out.loc[0, "monthly_payment"] == pytest.approx(payment0)
    assert out.loc[0, "payment_to_income"] == pytest.approx(payment0 / 10_000)
    assert out.loc[0, "debt_to_income"] == pytest.approx((1_000 + payment0) / 10_000)
    assert out.loc[0, "loan_to_value"] == pytest.approx(0.8)
    assert out.loc[0, "down_payment_ratio"] == pytest.approx(0.2)
    assert out.loc[0, "age_at_maturity"] == pytest.approx(35.0)
    assert out.loc[1, "income_per_dependent"] == pytest.approx(0.0)
    # equal principal: first payment = P/n + P*r/12
    assert out.loc[2, "monthly_payment"] == pytest.approx(105_000 / 24 + 105_000 * 0.01)


def test_zero_income_gives_missing_ratios_not_infinity() -> None:
    out = fitted().transform(applications())
    assert np.isnan(out.loc[1, "payment_to_income"])
    assert np.isnan(out.loc[1, "debt_to_income"])
    assert np.isfinite(out.loc[0, "payment_to_income"])


def test_missing_bureau_score_sets_thin_file_and_stays_missing() -> None:
    out = fitted().transform(applications())
    assert out["thin_file"].tolist() == [0.0, 1.0, 0.0]
    assert np.isnan(out.loc[1, "bureau_score"])


def test_ids_target_are_not_features_and_types_are_model_ready() -> None:
    transformer = fitted()
    names = list(transformer.get_feature_names_out())
    assert "application_id" not in names and "default_12m" not in names
    out = transformer.transform(applications())
    assert list(out.columns) == names
    assert isinstance(out["channel"].dtype, pd.CategoricalDtype)
    assert out["income_verified"].tolist() == [1.0, 0.0, 1.0]


def test_unseen_and_rare_levels_become_missing() -> None:
    train = pd.concat([applications()] * 10, ignore_index=True)
    train.loc[0, "channel"] = "kiosk"  # seen once: rarer than min_category_count
    transformer = fitted(train, min_category_count=5)
    assert transformer.categories_["channel"] == ["dealer", "online"]
    new = applications()
    new.loc[0, "channel"] = "broker"
    new.loc[1, "channel"] = "kiosk"
    out = transformer.transform(new)
    assert out["channel"].isna().tolist() == [True, True, False]


def test_derived_features_only_where_sources_exist() -> None:
    frame = applications()[["application_id", "age", "monthly_income", "default_12m"]]
    transformer = fitted(frame)
    assert transformer.derived_columns_ == []
    assert list(transformer.get_feature_names_out()) == ["age", "monthly_income"]


def test_json_round_trip_transforms_identically() -> None:
    transformer = fitted()
    # sort_keys as the project writes JSON: the column order must survive unordered objects
    restored = ApplicationFeatures.from_dict(json.loads(json.dumps(transformer.to_dict(), sort_keys=True)))
    assert list(restored.transform(applications()).columns) == list(transformer.get_feature_names_out())
    pd.testing.assert_frame_equal(transformer.transform(applications()), restored.transform(applications()))


def test_numeric_levels_from_csv_and_json_agree() -> None:
    frame = applications()
    frame["grade_code"] = [1, 2, 1]
    transformer = fitted(frame, categorical_columns=("grade_code",))
    as_float = frame.copy()
    as_float["grade_code"] = [1.0, 2.0, np.nan]
    out = transformer.transform(as_float)
    assert out["grade_code"].astype(object).tolist()[:2] == ["1", "2"]
    assert pd.isna(out["grade_code"].iloc[2])


def test_missing_input_column_is_named() -> None:
    transformer = fitted()
    with pytest.raises(FeatureInputError, match=r"missing input columns \['age'\]"):
        transformer.transform(applications().drop(columns="age"))


def test_text_in_numeric_column_is_named_with_value() -> None:
    transformer = fitted()
    bad = applications()
    bad["monthly_income"] = ["10000", "abc", "8000"]
    with pytest.raises(FeatureInputError, match=r"column 'monthly_income': values \['abc'\] are not numbers"):
        transformer.transform(bad)


def test_numbers_sent_as_text_are_accepted() -> None:
    transformer = fitted()
    as_text = applications()
    as_text["monthly_income"] = ["10000", "0", "8000"]
    pd.testing.assert_frame_equal(transformer.transform(as_text), transformer.transform(applications()))


def test_unfitted_and_wrong_input_are_refused() -> None:
    with pytest.raises(FeatureInputError, match="not fitted"):
        ApplicationFeatures().transform(applications())
    with pytest.raises(FeatureInputError, match="expected a pandas DataFrame"):
        ApplicationFeatures().fit(np.zeros((3, 2)))  # type: ignore[arg-type]


def test_spec_from_other_version_is_refused() -> None:
    spec = fitted().to_dict()
    spec["version"] = 99
    with pytest.raises(FeatureInputError, match="version 99"):
        ApplicationFeatures.from_dict(spec)


def test_summary_reports_missing_rates() -> None:
    transformer = fitted()
    summary = feature_summary(transformer, transformer.transform(applications()))
    assert summary["features"]["bureau_score"]["missing_rate"] == pytest.approx(1 / 3, abs=1e-6)
    assert summary["features"]["thin_file"]["kind"] == "derived"
    assert summary["features"]["channel"] == {"kind": "categorical", "levels": 2, "missing_rate": 0.0}


def test_categorical_with_only_rare_levels_is_left_out() -> None:
    frame = applications()
    frame["dealer_id"] = ["D1", "D2", "D3"]
    transformer = fitted(frame, min_category_count=2)
    assert "dealer_id" not in transformer.get_feature_names_out()
    assert "dealer_id" not in transformer.transform(frame).columns


def test_feature_values_are_the_matrix_as_the_booster_reads_it() -> None:
    from scoring.models.treeshap import feature_array

    transformer = fitted()
    frame = applications()
    frame.loc[1, "vehicle_use"] = "spaceship"  # unseen: missing
    frame.loc[2, "channel"] = None
    values = transformer.feature_values(transformer.input_arrays(frame))
    matrix = transformer.transform(frame)
    assert values.shape == matrix.shape and list(matrix.columns) == transformer.matrix_columns
    pd.testing.assert_frame_equal(transformer.frame(values, frame.index), matrix, check_exact=True)
    np.testing.assert_array_equal(values.astype(np.float32), feature_array(matrix))
    column = transformer.matrix_columns.index("vehicle_use")
    assert np.isnan(values[1, column]) and values[0, column] == transformer.categories_["vehicle_use"].index(
        "private"
    )
    assert np.isnan(values[2, transformer.matrix_columns.index("channel")])
