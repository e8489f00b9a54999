"""The synthetic auto-loan portfolio: contract, market rules, structure and the known truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import AUTO_LOAN_COLUMNS, OUTCOME_COLUMN, TERMS_NEW, TERMS_USED, TRUE_PD_COLUMN
from scoring.core.finance import monthly_payment
from scoring.data.config import SyntheticDataConfig
from scoring.data.synthetic import (
    dealer_table,
    generate_portfolio,
    macro_effect,
    max_loan_share,
    month_index,
    observable_log_odds,
    true_log_odds,
)

SEED = 20261128
CONFIG = SyntheticDataConfig(n_applications=30_000)
NULLABLE_INT = {"bureau_score", "default_12m"}


@pytest.fixture(scope="module")
def portfolio() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_portfolio(CONFIG, SEED)


@pytest.fixture(scope="module")
def apps(portfolio: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return portfolio[0]


@pytest.fixture(scope="module")
def truth(portfolio: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return portfolio[1]


@pytest.fixture(scope="module")
def derived(apps: pd.DataFrame) -> pd.DataFrame:
    payment = monthly_payment(
        apps["loan_amount"], apps["annual_rate"], apps["term_months"], apps["repayment_method"].astype(object)
    )
    return pd.DataFrame(
        {
            "pti": payment / apps["monthly_income"],
            "ltv": apps["loan_amount"] / apps["vehicle_price"],
            "month": month_index(apps["application_date"], CONFIG),
        }
    )


def _cutoff(config: SyntheticDataConfig) -> pd.Timestamp:
    """First immature application date, computed independently of the generator."""
    return pd.Timestamp(config.start_date) + pd.DateOffset(months=config.months - config.immature_months)


# ------------------------------------------------------------------ determinism and contract


def test_same_seed_gives_identical_frames_and_another_seed_differs(
    portfolio: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    again = generate_portfolio(CONFIG, SEED)
    pd.testing.assert_frame_equal(portfolio[0], again[0])
    pd.testing.assert_frame_equal(portfolio[1], again[1])
    other_apps, other_truth = generate_portfolio(CONFIG, SEED + 1)
    assert not other_apps["monthly_income"].equals(portfolio[0]["monthly_income"])
    assert not other_apps["application_date"].equals(portfolio[0]["application_date"])
    assert not np.allclose(other_truth[TRUE_PD_COLUMN].to_numpy(), portfolio[1][TRUE_PD_COLUMN].to_numpy())


def test_columns_and_dtypes_follow_the_contract(apps: pd.DataFrame) -> None:
    assert list(apps.columns) == [c.name for c in AUTO_LOAN_COLUMNS]
    assert len(apps) == CONFIG.n_applications
    for spec in AUTO_LOAN_COLUMNS:
        dtype = apps[spec.name].dtype
        if spec.kind in ("string", "category"):
            assert pd.api.types.is_string_dtype(dtype), (spec.name, dtype)
            assert not isinstance(dtype, pd.CategoricalDtype), spec.name
        elif spec.kind == "date":
            assert dtype == np.dtype("datetime64[ns]"), spec.name
            assert (apps[spec.name] == apps[spec.name].dt.normalize()).all(), "dates carry a time"
        elif spec.kind == "int":
            expected = "Int64" if spec.name in NULLABLE_INT else np.dtype("int64")
            assert dtype == expected, (spec.name, dtype)
        elif spec.kind == "float":
            assert dtype == np.dtype("float64"), (spec.name, dtype)
        elif spec.kind == "bool":
            assert dtype == np.dtype("bool"), (spec.name, dtype)
        if not spec.nullable:
            assert apps[spec.name].notna().all(), f"{spec.name} has nulls"


def test_values_within_contract_ranges_and_levels(apps: pd.DataFrame) -> None:
    for spec in AUTO_LOAN_COLUMNS:
        col = apps[spec.name].dropna()
        if spec.min is not None:
            assert col.min() >= spec.min, spec.name
        if spec.max is not None:
            assert col.max() <= spec.max, spec.name
        if spec.levels is not None:
            assert set(col.unique()) <= set(spec.levels), spec.name
            assert set(col.unique()) == set(spec.levels), f"{spec.name}: a level never occurs"
    for name in ("monthly_income", "vehicle_price", "loan_amount"):
        assert (apps[name] > 0).all(), name
    assert apps["bureau_score"].dropna().between(300, 900).all()
    assert apps["annual_rate"].between(0.03, 0.25).all()
    assert apps["region"].str.fullmatch(r"R\d{2}").all()
    assert apps["region"].nunique() <= CONFIG.n_regions
    assert apps["region"].nunique() >= CONFIG.n_regions - 3
    assert apps["customer_id"].str.fullmatch(r"C\d{7}").all()
    dealer_rows = apps["channel"] == "dealer"
    assert apps.loc[dealer_rows, "dealer_id"].notna().all()
    assert apps.loc[~dealer_rows, "dealer_id"].isna().all()
    assert apps.loc[dealer_rows, "dealer_id"].str.fullmatch(r"D\d{4}").all()
    # realistic scale: median monthly income 8-10k, median vehicle price within 80k-500k
    assert 8_000 <= apps["monthly_income"].median() <= 10_000
    assert 80_000 <= apps["vehicle_price"].median() <= 500_000


def test_ids_unique_and_numbered_in_date_order(apps: pd.DataFrame) -> None:
    assert apps["application_id"].is_unique
    expected = [f"A{i:07d}" for i in range(1, len(apps) + 1)]
    assert apps["application_id"].tolist() == expected
    assert apps["application_date"].is_monotonic_increasing
    assert apps["application_date"].min() >= pd.Timestamp(CONFIG.start_date)
    assert apps["application_date"].max() < pd.Timestamp(CONFIG.start_date) + pd.DateOffset(
        months=CONFIG.months
    )


# ------------------------------------------------------------------ bureau and loan rules


def test_thin_file_and_delinquency_consistency(apps: pd.DataFrame) -> None:
    thin = apps["bureau_score"].isna()
    assert 0.08 <= thin.mean() <= 0.16
    assert (apps.loc[thin, ["credit_history_months", "open_accounts", "delinquencies_24m"]] == 0).all().all()
    assert apps.loc[thin, "revolving_utilization"].isna().all()
    assert (apps.loc[~thin, "credit_history_months"] > 0).all()
    assert thin[apps["age"] < 25].mean() > 3 * thin[apps["age"] >= 40].mean()
    assert set(apps["max_dpd_24m"].unique()) <= {0, 30, 60, 90, 120}
    assert ((apps["max_dpd_24m"] == 0) == (apps["delinquencies_24m"] == 0)).all()
    # the score is tied to the delinquency record
    with_file = apps[~thin]
    assert (
        with_file.loc[with_file["delinquencies_24m"] == 0, "bureau_score"].mean()
        > with_file.loc[with_file["delinquencies_24m"] >= 2, "bureau_score"].mean() + 40
    )


def test_vehicle_terms_and_down_payment_follow_market_rules(apps: pd.DataFrame) -> None:
    used = apps["vehicle_condition"] == "used"
    assert (apps.loc[~used, "vehicle_age_years"] == 0).all()
    assert (apps.loc[used, "vehicle_age_years"] > 0).all()
    assert set(apps.loc[~used, "term_months"].unique()) <= set(TERMS_NEW)
    assert set(apps.loc[used, "term_months"].unique()) <= set(TERMS_USED)
    price, down = apps["vehicle_price"], apps["down_payment"]
    assert (down >= 0).all()
    assert (down < price).all()
    cap = max_loan_share(apps["vehicle_condition"], apps["vehicle_use"], apps["vehicle_segment"])
    financed_share = (price - down) / price
    assert (financed_share <= cap + 1e-9).all(), "down payment below the market minimum"
    assert (financed_share > cap - 0.005).mean() > 0.2, "the cap should bind for many applicants"
    # the electric private cap (85%) is used, and used cars never exceed 70%
    electric_private = (
        ~used & (apps["vehicle_segment"] == "electric") & (apps["vehicle_use"] == "private")
    ).to_numpy()
    assert financed_share[electric_private].max() > 0.80
    assert financed_share[used.to_numpy()].max() <= 0.70 + 1e-9
    fees = apps["loan_amount"] - (price - down)
    assert (fees >= 0).all()
    assert (fees <= 0.02 * price + 1).all()
    assert (apps["loan_amount"] > 0).all()


# ------------------------------------------------------------------ customers, time and target


def test_repeat_customers_share_and_stable_attributes(apps: pd.DataFrame) -> None:
    repeat = apps["customer_id"].duplicated(keep="first")
    assert abs(repeat.mean() - CONFIG.repeat_customer_share) < 0.01
    first = apps[~repeat].set_index("customer_id")
    later = apps[repeat]
    root = first.loc[later["customer_id"]]
    for name in ("region", "employment_type", "marital_status"):
        assert (later[name].to_numpy() == root[name].to_numpy()).all(), name
    assert (later["application_date"].to_numpy() > root["application_date"].to_numpy()).all()
    elapsed = (later["application_date"].to_numpy() - root["application_date"].to_numpy()) / np.timedelta64(
        1, "D"
    )
    extra_years = later["age"].to_numpy() - root["age"].to_numpy() - np.floor(elapsed / 365.25)
    not_capped = later["age"].to_numpy() < 80
    assert np.isin(extra_years[not_capped], (0, 1)).all()


def test_default_rate_in_single_digit_range(apps: pd.DataFrame) -> None:
    labelled = apps["default_12m"].dropna()
    assert set(labelled.unique()) == {0, 1}
    assert 0.02 <= labelled.mean() <= 0.12


def test_target_is_null_exactly_in_the_immature_months(apps: pd.DataFrame) -> None:
    immature = apps["application_date"] >= _cutoff(CONFIG)
    assert immature.any()
    assert (~immature).any()
    assert apps.loc[immature, "default_12m"].isna().all()
    assert apps.loc[~immature, "default_12m"].notna().all()


def test_truth_is_aligned_and_calibrated(apps: pd.DataFrame, truth: pd.DataFrame) -> None:
    assert list(truth.columns) == ["application_id", TRUE_PD_COLUMN, OUTCOME_COLUMN]
    assert truth["application_id"].tolist() == apps["application_id"].tolist()
    # the drawn outcome is kept for every row; the applications show it only where it matured
    labelled_rows = apps["default_12m"].notna().to_numpy()
    assert (
        truth.loc[labelled_rows, OUTCOME_COLUMN].to_numpy()
        == apps.loc[labelled_rows, "default_12m"].to_numpy()
    ).all()
    assert truth[OUTCOME_COLUMN].notna().all() and set(truth[OUTCOME_COLUMN].unique()) == {0, 1}
    pd_true = truth[TRUE_PD_COLUMN]
    assert pd_true.dtype == np.dtype("float64")
    assert ((pd_true > 0) & (pd_true < 1)).all()
    labelled = apps["default_12m"].notna()
    observed = apps.loc[labelled, "default_12m"].astype(float).mean()
    assert abs(pd_true[labelled].mean() - observed) < 0.01, "outcomes are not drawn from the truth"


def test_true_log_odds_recomputes_the_truth_from_the_columns(apps: pd.DataFrame, truth: pd.DataFrame) -> None:
    pd_true = truth[TRUE_PD_COLUMN].to_numpy()
    logit = np.log(pd_true / (1 - pd_true))
    residual = logit - true_log_odds(apps, CONFIG, dealer_table(CONFIG, SEED))
    assert abs(residual.mean()) < 0.01
    assert 0.1 < residual.std() < 0.3, "only the small unobserved noise should be left"


# ------------------------------------------------------------------ effect directions on the real data


def _rate(apps: pd.DataFrame, mask: pd.Series) -> float:
    labelled = apps["default_12m"].notna() & mask
    assert labelled.sum() >= 150, "too few rows to compare"
    return float(apps.loc[labelled, "default_12m"].astype(float).mean())


def test_observed_default_rates_follow_the_main_effects(apps: pd.DataFrame, derived: pd.DataFrame) -> None:
    thin = apps["bureau_score"].isna()
    assert _rate(apps, thin) > 1.2 * _rate(apps, ~thin)
    score = apps["bureau_score"].astype(float)
    bottom, top = score <= score.quantile(0.2), score >= score.quantile(0.8)
    assert _rate(apps, bottom) > 5 * _rate(apps, top)
    assert _rate(apps, derived["pti"] > 0.4) > 2 * _rate(apps, derived["pti"] < 0.2)
    used = apps["vehicle_condition"] == "used"
    assert _rate(apps, used & (derived["ltv"] > 0.65)) > 2 * _rate(apps, ~used & (derived["ltv"] < 0.6))


def test_truth_follows_interaction_and_dealer_effects(apps: pd.DataFrame, truth: pd.DataFrame) -> None:
    pd_true = truth[TRUE_PD_COLUMN]
    self_employed = apps["employment_type"] == "self_employed"
    verified = apps["income_verified"]
    assert pd_true[self_employed & ~verified].mean() > 1.4 * pd_true[self_employed & verified].mean()
    dealers = dealer_table(CONFIG, SEED)
    assert dealers["is_bad"].sum() == round(CONFIG.bad_dealer_share * CONFIG.n_dealers)
    assert set(apps["dealer_id"].dropna()) <= set(dealers["dealer_id"])
    bad = apps["dealer_id"].isin(dealers.loc[dealers["is_bad"], "dealer_id"])
    other = (apps["channel"] == "dealer") & ~bad
    assert bad.sum() > 50
    assert pd_true[bad].mean() > 1.4 * pd_true[other].mean()
    # dealers are mostly local
    dealer_region = apps["dealer_id"].map(dealers.set_index("dealer_id")["region"])
    assert (
        dealer_region[apps["channel"] == "dealer"] == apps.loc[apps["channel"] == "dealer", "region"]
    ).mean() > 0.8


def test_observable_log_odds_responds_to_each_signal(apps: pd.DataFrame) -> None:
    sample = apps[apps["bureau_score"].notna()].head(2000).reset_index(drop=True)
    base = observable_log_odds(sample)

    better = sample.assign(bureau_score=(sample["bureau_score"] + 40).clip(upper=900))
    moved = (sample["bureau_score"] <= 860).to_numpy()
    assert (observable_log_odds(better)[moved] < base[moved]).all()

    thin = sample.assign(
        bureau_score=pd.array([pd.NA] * len(sample), dtype="Int64"), revolving_utilization=np.nan
    )
    good = (sample["bureau_score"] >= 700).to_numpy()
    assert (observable_log_odds(thin)[good] > base[good]).all()

    more_debt = sample.assign(
        existing_monthly_debt=sample["existing_monthly_debt"] + 0.3 * sample["monthly_income"]
    )
    assert (observable_log_odds(more_debt) > base).all()

    more_inquiries = sample.assign(inquiries_6m=sample["inquiries_6m"] + 2)
    assert (observable_log_odds(more_inquiries) > base).all()

    def at_age(age: int) -> np.ndarray:
        return observable_log_odds(sample.assign(age=age))

    assert (at_age(21) > at_age(45)).all() and (at_age(72) > at_age(45)).all()

    # used x high LTV: financing more of a used car costs more than the same change on a new car
    high_ltv = sample.assign(loan_amount=sample["vehicle_price"] * 0.72)
    low_ltv = sample.assign(loan_amount=sample["vehicle_price"] * 0.62)
    step = observable_log_odds(high_ltv) - observable_log_odds(low_ltv)
    used = (sample["vehicle_condition"] == "used").to_numpy()
    assert np.median(step[used]) > np.median(step[~used]) + 0.3


# ------------------------------------------------------------------ time


def test_population_drifts_towards_online_used_and_electric(
    apps: pd.DataFrame, derived: pd.DataFrame
) -> None:
    first = derived["month"] < 12
    last = derived["month"] >= CONFIG.months - 12
    for column, level, margin in (
        ("channel", "online", 0.10),
        ("vehicle_condition", "used", 0.07),
        ("vehicle_segment", "electric", 0.08),
    ):
        share = apps[column] == level
        assert share[last].mean() > share[first].mean() + margin, column
    assert last.sum() > first.sum(), "volume should grow"


def test_macro_downturn_raises_defaults_late_in_the_window(apps: pd.DataFrame, truth: pd.DataFrame) -> None:
    effect = macro_effect(np.arange(CONFIG.months), CONFIG.months)
    assert (effect[: CONFIG.months // 2] == 0).all()
    assert effect.max() >= 0.2
    assert int(effect.argmax()) > CONFIG.months // 2
    month = month_index(apps["application_date"], CONFIG)
    peak = np.abs(month - effect.argmax()) <= 3
    early = month < 12
    assert truth[TRUE_PD_COLUMN][peak].mean() > 1.1 * truth[TRUE_PD_COLUMN][early].mean()


# ------------------------------------------------------------------ other configurations


def test_small_config_without_immature_months_or_repeats() -> None:
    config = SyntheticDataConfig(
        n_applications=800,
        start_date=dt.date(2020, 3, 15),
        months=24,
        immature_months=0,
        repeat_customer_share=0.0,
        n_dealers=5,
        bad_dealer_share=0.0,
        n_regions=3,
    )
    apps, truth = generate_portfolio(config, 3)
    assert len(apps) == len(truth) == 800
    assert apps["default_12m"].notna().all()
    assert apps["customer_id"].is_unique
    assert set(apps["region"]) <= {"R01", "R02", "R03"}
    assert apps["dealer_id"].nunique() <= 5
    assert not dealer_table(config, 3)["is_bad"].any()
    assert apps["application_date"].min() >= pd.Timestamp("2020-03-15")
    assert apps["application_date"].max() < pd.Timestamp("2022-03-15")


def test_immature_window_follows_config() -> None:
    config = SyntheticDataConfig(n_applications=3_000, months=36, immature_months=6)
    apps, _ = generate_portfolio(config, 11)
    immature = apps["application_date"] >= _cutoff(config)
    assert immature.mean() == pytest.approx(6 / 36, abs=0.06)
    assert (apps["default_12m"].isna() == immature).all()
