"""Feature engineering: one fitted transformer that the exported model carries.

:class:`ApplicationFeatures` turns raw application records into the model matrix:
numeric inputs as float64, categorical inputs as pandas categoricals with the levels seen
in training, and the auto-finance derived features of the data contract wherever their
source columns exist. It serialises to plain JSON (:meth:`to_dict` / :meth:`from_dict`),
so serving computes exactly the same features without pickle.

Documented rules for values the training data never showed:
- a categorical level unseen in training, or seen fewer than ``min_category_count`` times,
  becomes missing (NaN), which the booster routes down its learned default branch;
- a missing optional numeric value stays NaN (the booster's missing branch);
- a derived feature whose inputs are missing or whose denominator is not positive is NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from scoring.finance import monthly_payment

logger = logging.getLogger(__name__)

FEATURE_SPEC_VERSION = 1


class FeatureInputError(ValueError):
    """Raw input cannot be turned into features (missing column, non-numeric value, ...)."""


def _safe_ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    num = numerator.to_numpy(dtype=np.float64, na_value=np.nan)
    den = denominator.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return pd.Series(out, index=numerator.index, dtype=np.float64)


def _payment(df: pd.DataFrame) -> pd.Series:
    values = monthly_payment(
        df["loan_amount"].to_numpy(dtype=np.float64, na_value=np.nan),
        df["annual_rate"].to_numpy(dtype=np.float64, na_value=np.nan),
        df["term_months"].to_numpy(dtype=np.float64, na_value=np.nan),
        df["repayment_method"].astype(object).where(df["repayment_method"].notna(), None).to_numpy(),
    )
    return pd.Series(values, index=df.index, dtype=np.float64)


@dataclass(frozen=True)
class DerivedFeature:
    name: str
    sources: tuple[str, ...]
    compute: Callable[[pd.DataFrame], pd.Series]
    description: str


def _derived_features() -> tuple[DerivedFeature, ...]:
    loan_terms = ("loan_amount", "annual_rate", "term_months", "repayment_method")
    return (
        DerivedFeature(
            "monthly_payment",
            loan_terms,
            _payment,
            "annuity payment (equal_installment) or first payment (equal_principal)",
        ),
        DerivedFeature(
            "payment_to_income",
            (*loan_terms, "monthly_income"),
            lambda d: _safe_ratio(d["monthly_payment"], d["monthly_income"]),
            "monthly payment / monthly income",
        ),
        DerivedFeature(
            "debt_to_income",
            (*loan_terms, "monthly_income", "existing_monthly_debt"),
            lambda d: _safe_ratio(
                d["existing_monthly_debt"].astype(np.float64) + d["monthly_payment"], d["monthly_income"]
            ),
            "(existing monthly debt + new payment) / monthly income",
        ),
        DerivedFeature(
            "loan_to_value",
            ("loan_amount", "vehicle_price"),
            lambda d: _safe_ratio(d["loan_amount"], d["vehicle_price"]),
            "loan amount / vehicle price",
        ),
        DerivedFeature(
            "down_payment_ratio",
            ("down_payment", "vehicle_price"),
            lambda d: _safe_ratio(d["down_payment"], d["vehicle_price"]),
            "down payment / vehicle price",
        ),
        DerivedFeature(
            "age_at_maturity",
            ("age", "term_months"),
            lambda d: d["age"].astype(np.float64) + d["term_months"].astype(np.float64) / 12.0,
            "age in years when the loan ends",
        ),
        DerivedFeature(
            "income_per_dependent",
            ("monthly_income", "dependents"),
            lambda d: _safe_ratio(d["monthly_income"], d["dependents"].astype(np.float64) + 1.0),
            "monthly income / (dependents + 1)",
        ),
        DerivedFeature(
            "thin_file",
            ("bureau_score",),
            lambda d: d["bureau_score"].isna().astype(np.float64),
            "1 when there is no bureau score (no credit history)",
        ),
    )


DERIVED_FEATURES: tuple[DerivedFeature, ...] = _derived_features()
DERIVED_BY_NAME = {f.name: f for f in DERIVED_FEATURES}


def _level_text(value: Any) -> str | None:
    """Category level as text; 3.0 and 3 give the same level so CSV and JSON inputs agree."""
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _as_levels(series: pd.Series) -> pd.Series:
    return pd.Series(_level_values(series), index=series.index, dtype=object)


def _level_values(series: pd.Series) -> npt.NDArray[np.object_]:
    """The levels of ``series`` as an object array of text, None where missing."""
    values = series.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) in {"string", "empty"}:
        missing = pd.isna(values)
        if missing.any():  # fast path: text already
            values = values.copy()
            values[missing] = None
        return values
    return np.array([_level_text(v) for v in values], dtype=object)


def _is_categorical(series: pd.Series) -> bool:
    return bool(
        isinstance(series.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(series.dtype)
        or pd.api.types.is_string_dtype(series.dtype)
    )


class ApplicationFeatures(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Raw applications -> model features (derived ratios, numeric floats, categoricals).

    Parameters
    ----------
    exclude_columns
        Columns that are never features: ids, target, dates, customer keys, declared drops.
    categorical_columns
        Columns to treat as categorical even when they hold numbers.
    max_category_levels
        Most levels kept per categorical column (the most frequent ones).
    min_category_count
        Levels seen fewer times than this in training are treated as unseen.
    """

    def __init__(
        self,
        exclude_columns: Sequence[str] = (),
        categorical_columns: Sequence[str] = (),
        max_category_levels: int = 500,
        min_category_count: int = 20,
    ) -> None:
        self.exclude_columns = exclude_columns
        self.categorical_columns = categorical_columns
        self.max_category_levels = max_category_levels
        self.min_category_count = min_category_count

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: Any = None) -> Self:
        if not isinstance(X, pd.DataFrame):
            raise FeatureInputError(f"expected a pandas DataFrame of applications, got {type(X).__name__}")
        excluded = set(self.exclude_columns)
        inputs = [c for c in X.columns if c not in excluded]
        if not inputs:
            raise FeatureInputError("no feature columns left after excluding ids, target, dates and drops")
        declared = set(self.categorical_columns)
        categories: dict[str, list[str]] = {}
        numeric: list[str] = []
        for column in inputs:
            series = X[column]
            if column in declared or _is_categorical(series):
                levels = self._levels(series)
                if levels:
                    categories[column] = levels
                else:
                    # Every level is rarer than min_category_count: nothing to learn from it.
                    logger.warning(
                        "column '%s': no level seen %d times; not used", column, self.min_category_count
                    )
            elif pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
                numeric.append(column)
            else:
                raise FeatureInputError(
                    f"column '{column}': dtype {series.dtype} is neither numeric nor categorical; "
                    "declare it in data.file.categorical_columns or drop it in data.file.drop_columns"
                )
        available = set(inputs)
        derived = [f.name for f in DERIVED_FEATURES if set(f.sources) <= available]
        self.input_columns_ = inputs
        self.numeric_columns_ = numeric
        self.categories_ = categories
        self.__dict__.pop("_category_dtypes", None)
        self.derived_columns_ = derived
        self.feature_names_out_ = np.array([*numeric, *derived, *categories], dtype=object)
        self.n_features_in_ = len(inputs)
        self.feature_names_in_ = np.array(inputs, dtype=object)
        logger.info(
            "features: %d numeric, %d derived, %d categorical", len(numeric), len(derived), len(categories)
        )
        return self

    def _levels(self, series: pd.Series) -> list[str]:
        counts = _as_levels(series).dropna().value_counts()
        counts = counts[counts >= self.min_category_count]
        # Most frequent first, ties by name, so the kept set is deterministic; stored sorted.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_category_levels]
        return sorted(str(level) for level, _ in ordered)

    # ------------------------------------------------------------------ transform

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        self._check_fitted()
        if not isinstance(X, pd.DataFrame):
            raise FeatureInputError(f"expected a pandas DataFrame of applications, got {type(X).__name__}")
        missing = [c for c in self.input_columns_ if c not in X.columns]
        if missing:
            raise FeatureInputError(f"missing input columns {missing}; the model was trained with them")
        # Columns are gathered in dicts and each frame is built once: inserting them one by one
        # costs pandas a block rebuild per column, which dominates single-application latency.
        numeric = {column: self._to_float(X[column], column) for column in self.numeric_columns_}
        frame = pd.DataFrame(
            {**numeric, **{column: X[column] for column in self.categories_}}, index=X.index, copy=False
        )
        derived: dict[str, pd.Series] = {}
        for name in self.derived_columns_:
            values = DERIVED_BY_NAME[name].compute(frame)
            frame[name] = values  # later derived features read earlier ones (payment -> ratios)
            derived[name] = values.astype(np.float64)
        categorical: dict[str, pd.Categorical] = {}
        for column in self.categories_:
            # Codes through the fitted levels: unseen levels and nulls get -1, i.e. missing.
            dtype = self._category_dtype(column)
            codes = dtype.categories.get_indexer(pd.Index(_level_values(X[column]), dtype=object))
            categorical[column] = pd.Categorical.from_codes(codes, dtype=dtype)
        return pd.DataFrame({**numeric, **derived, **categorical}, index=X.index, copy=False)

    def _category_dtype(self, column: str) -> pd.CategoricalDtype:
        """The fitted levels of ``column`` as a dtype, built once per transformer."""
        cache: dict[str, pd.CategoricalDtype] = self.__dict__.setdefault("_category_dtypes", {})
        if column not in cache:
            cache[column] = pd.CategoricalDtype(pd.Index(self.categories_[column]))
        return cache[column]

    @staticmethod
    def _to_float(series: pd.Series, column: str) -> pd.Series:
        if pd.api.types.is_bool_dtype(series.dtype):
            return series.astype(np.float64)
        if pd.api.types.is_numeric_dtype(series.dtype):
            return pd.Series(series.to_numpy(dtype=np.float64, na_value=np.nan), index=series.index)
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            examples = series[bad].astype(str).unique()[:3].tolist()
            raise FeatureInputError(
                f"column '{column}': values {examples} are not numbers (expected numeric)"
            )
        return converted.astype(np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        self._check_fitted()
        return self.feature_names_out_.copy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_names_out_"):
            raise FeatureInputError("ApplicationFeatures is not fitted yet; call fit first")

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable description from which :meth:`from_dict` rebuilds the fitted transformer."""
        self._check_fitted()
        return {
            "version": FEATURE_SPEC_VERSION,
            "params": {
                "exclude_columns": list(self.exclude_columns),
                "categorical_columns": list(self.categorical_columns),
                "max_category_levels": self.max_category_levels,
                "min_category_count": self.min_category_count,
            },
            "input_columns": list(self.input_columns_),
            "numeric_columns": list(self.numeric_columns_),
            "derived_columns": list(self.derived_columns_),
            "categories": {k: list(v) for k, v in self.categories_.items()},
            "feature_names_out": [str(c) for c in self.feature_names_out_],
            "derived_definitions": {
                name: DERIVED_BY_NAME[name].description for name in self.derived_columns_
            },
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ApplicationFeatures:
        if spec.get("version") != FEATURE_SPEC_VERSION:
            raise FeatureInputError(
                f"feature spec version {spec.get('version')!r} is not supported "
                f"(expected {FEATURE_SPEC_VERSION})"
            )
        unknown = [n for n in spec["derived_columns"] if n not in DERIVED_BY_NAME]
        if unknown:
            raise FeatureInputError(
                f"feature spec names derived features this code does not define: {unknown}"
            )
        self = cls(**spec["params"])
        self.input_columns_ = list(spec["input_columns"])
        self.numeric_columns_ = list(spec["numeric_columns"])
        self.derived_columns_ = list(spec["derived_columns"])
        # JSON objects carry no order (the project writes them with sorted keys): the column
        # order the booster was trained on is the one in feature_names_out.
        names = list(spec["feature_names_out"])
        levels = spec["categories"]
        self.categories_ = {name: list(levels[name]) for name in names if name in levels}
        self.__dict__.pop("_category_dtypes", None)
        self.feature_names_out_ = np.array(names, dtype=object)
        self.n_features_in_ = len(self.input_columns_)
        self.feature_names_in_ = np.array(self.input_columns_, dtype=object)
        return self


def feature_summary(transformer: ApplicationFeatures, matrix: pd.DataFrame) -> dict[str, Any]:
    """Kind, missing rate and (for categoricals) level count of every model feature."""
    per_feature: dict[str, dict[str, Any]] = {}
    for name in transformer.get_feature_names_out():
        column = matrix[name]
        if name in transformer.categories_:
            entry: dict[str, Any] = {"kind": "categorical", "levels": len(transformer.categories_[name])}
        elif name in transformer.derived_columns_:
            entry = {"kind": "derived"}
        else:
            entry = {"kind": "numeric"}
        entry["missing_rate"] = round(float(column.isna().mean()), 6)
        per_feature[str(name)] = entry
    return {
        "n_rows": len(matrix),
        "n_features": len(per_feature),
        "n_derived": len(transformer.derived_columns_),
        "n_categorical": len(transformer.categories_),
        "features": per_feature,
    }
