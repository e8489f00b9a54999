"""The application record: the auto-loan data contract and the roles of a dataset's columns.

The synthetic portfolio and the exported model's input follow :data:`AUTO_LOAN_COLUMNS`.
A bring-your-own dataset is described by a :class:`DatasetSpec` naming its id, target,
date and customer columns; every other column is a candidate feature.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ColumnKind = Literal["string", "date", "int", "float", "bool", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: ColumnKind
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    levels: tuple[str, ...] | None = None
    description: str = ""


EMPLOYMENT_TYPES = ("salaried", "self_employed", "civil_servant", "retired", "other")
HOUSING_STATUSES = ("own", "mortgage", "rent", "family")
MARITAL_STATUSES = ("single", "married", "divorced", "widowed")
VEHICLE_CONDITIONS = ("new", "used")
VEHICLE_SEGMENTS = ("economy", "midsize", "suv", "luxury", "electric")
VEHICLE_USES = ("private", "commercial")
REPAYMENT_METHODS = ("equal_installment", "equal_principal")
CHANNELS = ("dealer", "direct", "online")
TERMS_NEW = (12, 24, 36, 48, 60)
TERMS_USED = (12, 24, 36)

# Bounds are of what is possible, not of what is usual: values outside them are data errors
# (quarantined by the validation gate), not outliers a model should learn from.
AUTO_LOAN_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("application_id", "string", description="unique key"),
    ColumnSpec("customer_id", "string", description="a customer may apply more than once"),
    ColumnSpec("application_date", "date"),
    ColumnSpec("age", "int", min=18, max=80),
    ColumnSpec("employment_type", "category", levels=EMPLOYMENT_TYPES),
    ColumnSpec("employment_years", "float", min=0, max=70),
    ColumnSpec("monthly_income", "float", min=0, max=10_000_000, description="gross monthly income, > 0"),
    ColumnSpec("income_verified", "bool"),
    ColumnSpec("housing_status", "category", levels=HOUSING_STATUSES),
    ColumnSpec("residence_years", "float", min=0, max=100),
    ColumnSpec("marital_status", "category", levels=MARITAL_STATUSES),
    ColumnSpec("dependents", "int", min=0, max=8),
    ColumnSpec("region", "category"),
    ColumnSpec("bureau_score", "int", nullable=True, min=300, max=900, description="null = thin file"),
    ColumnSpec("credit_history_months", "int", min=0, max=1000),
    ColumnSpec("open_accounts", "int", min=0, max=200),
    ColumnSpec("delinquencies_24m", "int", min=0, max=100),
    ColumnSpec("max_dpd_24m", "int", min=0, max=3650),
    ColumnSpec("inquiries_6m", "int", min=0, max=200),
    ColumnSpec("revolving_utilization", "float", nullable=True, min=0, max=20),
    ColumnSpec("existing_monthly_debt", "float", min=0, max=10_000_000),
    ColumnSpec("avg_monthly_spend_6m", "float", nullable=True, min=0, max=10_000_000),
    ColumnSpec("vehicle_price", "float", min=0, max=50_000_000, description="> 0"),
    ColumnSpec("vehicle_condition", "category", levels=VEHICLE_CONDITIONS),
    ColumnSpec("vehicle_age_years", "float", min=0, max=50),
    ColumnSpec("vehicle_segment", "category", levels=VEHICLE_SEGMENTS),
    ColumnSpec("vehicle_use", "category", levels=VEHICLE_USES),
    ColumnSpec("down_payment", "float", min=0, max=50_000_000),
    ColumnSpec("loan_amount", "float", min=0, max=50_000_000, description="> 0"),
    ColumnSpec("term_months", "int", min=1, max=120),
    ColumnSpec("annual_rate", "float", min=0, max=1),
    ColumnSpec("repayment_method", "category", levels=REPAYMENT_METHODS),
    ColumnSpec("channel", "category", levels=CHANNELS),
    ColumnSpec("dealer_id", "category", nullable=True, description="null for direct and online"),
    ColumnSpec("default_12m", "int", nullable=True, min=0, max=1, description="target; null = not matured"),
)

AUTO_LOAN_BY_NAME: dict[str, ColumnSpec] = {c.name: c for c in AUTO_LOAN_COLUMNS}


@dataclass(frozen=True)
class DatasetSpec:
    """Roles of a dataset's columns, written by `prepare` and read by every later stage."""

    id_column: str
    target_column: str
    date_column: str | None = None
    customer_column: str | None = None
    categorical_columns: tuple[str, ...] = ()
    drop_columns: tuple[str, ...] = ()
    source: str = "synthetic"
    follows_auto_loan_contract: bool = False
    value_ranges: dict[str, dict[str, float | None]] = field(default_factory=dict)
    """Declared inclusive bounds per column ({"min": .., "max": ..}; params validate.ranges): the
    gate quarantines values outside them and the exported model rejects them."""
    generated_id: bool = False
    """The file had no id column: ``id_column`` numbers its rows in file order (:func:`row_ids`),
    and the exported model numbers the rows of an input without that column the same way."""
    na_values: tuple[str, ...] = ()
    """CSV cells the file reads as missing besides pandas' defaults; batch scoring reads the same."""
    roles: dict[str, str] = field(default_factory=dict)
    """Contract role -> the file's own column name (params data.file.roles); the stages see the
    role names, and the exported model renames the file's columns the same way."""
    decision_column: str | None = None
    """The lender's past decision, :data:`ACCEPTED` or :data:`DECLINED` per row (reject
    inference, a file source); not a model input."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def non_feature_columns(self) -> tuple[str, ...]:
        """Columns that identify, date or label a row, or were declared unusable."""
        roles = [
            self.id_column,
            self.target_column,
            self.date_column,
            self.customer_column,
            self.decision_column,
        ]
        return tuple(c for c in roles if c is not None) + tuple(self.drop_columns)

    def role_columns(self, columns: Iterable[str]) -> list[str]:
        """Those of ``columns`` that hold what the data contract means by their name.

        All of them for the contract's own data; for any other file only the roles mapped in
        ``data.file.roles`` (``age: age`` counts a column already named so): the policy's rules
        and the limit constraints read these, never a column that merely shares a name.
        """
        if self.follows_auto_loan_contract:
            return list(columns)
        return [c for c in columns if c in self.roles]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetSpec:
        raw = json.loads(text)
        raw["categorical_columns"] = tuple(raw.get("categorical_columns", ()))
        raw["drop_columns"] = tuple(raw.get("drop_columns", ()))
        raw["na_values"] = tuple(raw.get("na_values", ()))
        return cls(**raw)


ACCEPTED, DECLINED = "accepted", "declined"
"""The values of a dataset's decision column once prepared (:attr:`DatasetSpec.decision_column`)."""

DECISION_COLUMN = "application_decision"
"""The decision column prepare adds when the declined applications come as a second file."""

ROW_ID_COLUMN = "row_id"
"""The id column of a file that has none of its own."""


def row_ids(n: int, start: int = 0) -> list[str]:
    """Ids for rows ``start`` .. ``start + n - 1`` (0-based) of a file: R00000001 for the first."""
    return [f"R{i:08d}" for i in range(start + 1, start + n + 1)]


SYNTHETIC_SPEC = DatasetSpec(
    id_column="application_id",
    target_column="default_12m",
    date_column="application_date",
    customer_column="customer_id",
    source="synthetic",
    follows_auto_loan_contract=True,
)

STRICTLY_POSITIVE_COLUMNS: frozenset[str] = frozenset({"monthly_income", "vehicle_price", "loan_amount"})
"""Contract columns whose lower bound (0) is exclusive: the gate and the serving checks share it."""


@dataclass(frozen=True)
class DeclaredBounds:
    """A column's declared value bounds: values outside them are data errors."""

    min: float | None
    max: float | None
    strict_min: bool = False
    source: Literal["contract", "params"] = "params"


def declared_bounds(
    name: str, spec: DatasetSpec, ranges: Mapping[str, Mapping[str, float | None]] | None = None
) -> DeclaredBounds | None:
    """The one rule set of a column's bounds, read by the validation gate and the exported
    model's value layer alike: ``ranges`` (params ``validate.ranges``; by default the dataset's
    own :attr:`DatasetSpec.value_ranges`, which the gate writes from them) where declared, else
    the data contract's where the dataset follows it, else None: a bring-your-own column nobody
    declared has no bounds that reject (the model flags values outside what training saw).
    """
    declared = (spec.value_ranges if ranges is None else ranges).get(name)
    if declared is not None:  # replaces the contract's, {min: null, max: null} included
        low, high = declared.get("min"), declared.get("max")
        return None if low is None and high is None else DeclaredBounds(low, high, False, "params")
    column = AUTO_LOAN_BY_NAME.get(name) if spec.follows_auto_loan_contract else None
    if column is not None and (column.min is not None or column.max is not None):
        return DeclaredBounds(column.min, column.max, name in STRICTLY_POSITIVE_COLUMNS, "contract")
    return None


TRUE_PD_COLUMN = "true_pd"
"""Column of the ground-truth file; only evaluation may read it."""

OUTCOME_COLUMN = "outcome_12m"
"""Column of the ground-truth file: the drawn 12-month outcome of every application, matured or
not (``default_12m`` shows it only where it has matured); the performance history follows it."""

# ------------------------------------------------------------------ the monthly performance history

BUCKETS = ("current", "M1", "M2", "M3", "M4+", "written_off")
"""Delinquency buckets, in order: M1 1-30 days past due, M2 31-60, M3 61-90, M4+ over 90."""
BUCKET_DPD_UPPER = (0, 30, 60, 90)
"""Upper days-past-due bound of current, M1, M2 and M3; M4+ is everything above 90."""
DEFAULT_BUCKET = "M4+"
"""The default definition shared by ``default_12m``, the monitoring back-test and collections:
more than 90 days past due (bucket M4+) or written off."""
LOAN_STATUSES = ("active", "prepaid", "closed", "written_off", "repossessed")
TERMINAL_STATUSES = ("prepaid", "closed", "written_off", "repossessed")

PERFORMANCE_COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("loan_id", "string", description="the application's id"),
    ColumnSpec("as_of_month", "date", description="first day of the calendar month of the record"),
    ColumnSpec("months_on_book", "int", min=1, max=600, description="1 for the first instalment month"),
    ColumnSpec("scheduled_payment", "float", min=0, max=50_000_000, description="instalment due this month"),
    ColumnSpec(
        "amount_paid", "float", min=0, max=50_000_000, description="paid this month, arrears included"
    ),
    ColumnSpec(
        "outstanding_principal", "float", min=0, max=50_000_000, description="after the month's payments"
    ),
    ColumnSpec("days_past_due", "int", min=0, max=3650, description="0 when current"),
    ColumnSpec("bucket", "category", levels=BUCKETS),
    ColumnSpec("status", "category", levels=LOAN_STATUSES),
)
PERFORMANCE_BY_NAME: dict[str, ColumnSpec] = {c.name: c for c in PERFORMANCE_COLUMNS}


def bucket_of_dpd(days_past_due: Any) -> Any:
    """Bucket index (0 current .. 4 M4+) of each days-past-due value (a numpy array)."""
    import numpy as np

    dpd = np.asarray(days_past_due)
    return np.searchsorted(np.asarray(BUCKET_DPD_UPPER), dpd, side="left")
