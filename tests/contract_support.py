"""A clean frame of the auto-loan contract, shared by the validation and gate tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scoring.core.contract import (
    AUTO_LOAN_COLUMNS,
    CHANNELS,
    EMPLOYMENT_TYPES,
    HOUSING_STATUSES,
    MARITAL_STATUSES,
    REPAYMENT_METHODS,
    VEHICLE_CONDITIONS,
    VEHICLE_SEGMENTS,
    VEHICLE_USES,
)


def contract_frame(n: int = 50, seed: int = 0) -> pd.DataFrame:
    """``n`` valid rows of the auto-loan contract, ids APP00000, APP00001, ..."""
    rng = np.random.default_rng(seed)

    def cycle(levels: tuple[str, ...]) -> list[str]:
        return [levels[i % len(levels)] for i in range(n)]

    def with_nulls(values: np.ndarray, every: int) -> np.ndarray:
        out = values.astype(float)
        out[::every] = np.nan
        return out

    channel = cycle(CHANNELS)
    vehicle_price = rng.uniform(8_000, 60_000, n).round(2)
    down_payment = (vehicle_price * rng.uniform(0.0, 0.4, n)).round(2)
    df = pd.DataFrame(
        {
            "application_id": [f"APP{i:05d}" for i in range(n)],
            "customer_id": [f"CUS{i // 2:05d}" for i in range(n)],
            "application_date": pd.date_range("2021-01-01", periods=n, freq="D"),
            "age": rng.integers(18, 81, n),
            "employment_type": cycle(EMPLOYMENT_TYPES),
            "employment_years": rng.uniform(0, 30, n).round(1),
            "monthly_income": rng.uniform(1_500, 12_000, n).round(2),
            "income_verified": rng.random(n) < 0.7,
            "housing_status": cycle(HOUSING_STATUSES),
            "residence_years": rng.uniform(0, 20, n).round(1),
            "marital_status": cycle(MARITAL_STATUSES),
            "dependents": rng.integers(0, 9, n),
            "region": [f"R{i % 31:02d}" for i in range(n)],
            "bureau_score": with_nulls(rng.integers(300, 901, n), every=7),
            "credit_history_months": rng.integers(0, 400, n),
            "open_accounts": rng.integers(0, 15, n),
            "delinquencies_24m": rng.integers(0, 4, n),
            "max_dpd_24m": rng.integers(0, 90, n),
            "inquiries_6m": rng.integers(0, 8, n),
            "revolving_utilization": with_nulls(rng.uniform(0, 1.2, n), every=9),
            "existing_monthly_debt": rng.uniform(0, 2_000, n).round(2),
            "avg_monthly_spend_6m": with_nulls(rng.uniform(200, 5_000, n), every=11),
            "vehicle_price": vehicle_price,
            "vehicle_condition": cycle(VEHICLE_CONDITIONS),
            "vehicle_age_years": rng.uniform(0, 10, n).round(1),
            "vehicle_segment": cycle(VEHICLE_SEGMENTS),
            "vehicle_use": cycle(VEHICLE_USES),
            "down_payment": down_payment,
            "loan_amount": (vehicle_price - down_payment).round(2),
            # vehicle_condition alternates new/used: used cars get at most 36 months
            "term_months": [
                (12, 24, 36, 48, 60)[i % 5] if i % 2 == 0 else (12, 24, 36)[i % 3] for i in range(n)
            ],
            "annual_rate": rng.uniform(0.03, 0.2, n).round(4),
            "repayment_method": cycle(REPAYMENT_METHODS),
            "channel": channel,
            "dealer_id": [f"D{i % 7:03d}" if c == "dealer" else None for i, c in enumerate(channel)],
            "default_12m": with_nulls(rng.integers(0, 2, n), every=5),  # null = not matured
        }
    )
    assert list(df.columns) == [c.name for c in AUTO_LOAN_COLUMNS]
    return df
