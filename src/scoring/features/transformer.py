"""Feature engineering: one fitted transformer that the exported model carries.

:class:`ApplicationFeatures` turns raw application records into the model matrix:
numeric inputs as float64, categorical inputs as pandas categoricals with the levels seen
in training, and the auto-finance derived features of the data contract wherever their
source columns exist. It serialises to plain JSON (:meth:`to_dict` / :meth:`from_dict`),
so serving computes exactly the same features without pickle.

Documented rules for values the training data never showed:
- a categorical level unseen in training, or seen fewer than ``min_category_count`` times,
  becomes missing (NaN), which the booster routes down its learned default branch;
- a missing optional numeric value stays NaN (the booster's missing branch), and so does an
  infinite one (a ratio divided by zero upstream);
- a derived feature whose inputs are missing or whose denominator is not positive is NaN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from scoring.core.finance import monthly_payment

logger = logging.getLogger(__name__)

FEATURE_SPEC_VERSION = 1


class FeatureInputError(ValueError):
    """Raw input cannot be turned into features (missing column, non-numeric value, ...)."""


FloatArray = npt.NDArray[np.float64]
Columns = Mapping[str, npt.NDArray[Any]]
"""Input columns by name as NumPy arrays: numbers as float64 (NaN for missing), categories as
object arrays of their raw values (None for missing). One array per column, no index."""


def _safe_ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(denominator > 0, numerator / denominator, np.nan), dtype=np.float64)


def _payment(d: Columns) -> FloatArray:
    return monthly_payment(d["loan_amount"], d["annual_rate"], d["term_months"], d["repayment_method"])


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed from input columns (and earlier derived ones), as float64 values."""

    name: str
    sources: tuple[str, ...]
    compute: Callable[[Columns], FloatArray]
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
            lambda d: _safe_ratio(d["existing_monthly_debt"] + d["monthly_payment"], d["monthly_income"]),
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
            lambda d: d["age"] + d["term_months"] / 12.0,
            "age in years when the loan ends",
        ),
        DerivedFeature(
            "income_per_dependent",
            ("monthly_income", "dependents"),
            lambda d: _safe_ratio(d["monthly_income"], d["dependents"] + 1.0),
            "monthly income / (dependents + 1)",
        ),
        DerivedFeature(
            "thin_file",
            ("bureau_score",),
            lambda d: pd.isna(d["bureau_score"]).astype(np.float64),
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
    return pd.Series(_level_values(series.to_numpy(dtype=object)), index=series.index, dtype=object)


def _level_values(values: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    """Raw category values (an object array) as text levels, None where missing."""
    if pd.api.types.infer_dtype(values, skipna=True) in {"string", "empty"}:
        missing = pd.isna(values)
        if missing.any():  # fast path: text already
            values = values.copy()
            values[missing] = None
        return values
    return np.array([_level_text(v) for v in values], dtype=object)


def raw_category_values(series: pd.Series) -> npt.NDArray[np.object_]:
    """A category column's values as an object array, None for every kind of null (NaN, NA)."""
    values = series.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values = values.copy()  # to_numpy may return the column's own (read-only) array
        values[missing] = None
    return values


def level_positions(levels: npt.NDArray[Any], positions: Mapping[str, int]) -> npt.NDArray[np.intp]:
    """The position of each value in ``positions``; -1 for nulls and values not in it.

    One hash pass (``pd.factorize``) and a dictionary look-up per distinct value: as fast on
    one row as on a million (``Index.get_indexer`` costs ~0.15 ms even for one value).
    """
    codes, uniques = pd.factorize(levels)
    lookup = np.array(
        [positions.get(u, -1) if isinstance(u, str) else -1 for u in uniques] + [-1], dtype=np.intp
    )
    # factorize marks nulls with -1, which indexes the trailing -1 of the look-up
    return np.asarray(lookup[codes], dtype=np.intp)


def _numeric_profile(series: pd.Series) -> dict[str, Any]:
    """What training showed of a numeric input column: its kind and range, and whether it had nulls.

    ``kind`` is ``bool``, ``int`` (an integer dtype: a count, an age) or ``float``. The serving
    checks of a dataset outside the auto-loan contract read it (:mod:`scoring.serving.inputs`).
    """
    if pd.api.types.is_bool_dtype(series.dtype):
        kind = "bool"
    elif pd.api.types.is_integer_dtype(series.dtype):
        kind = "int"
    else:
        kind = "float"
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = values[np.isfinite(values)]
    return {
        "kind": kind,
        "min": float(finite.min()) if finite.size else None,
        "max": float(finite.max()) if finite.size else None,
        "has_nulls": bool(np.isnan(values).any()),
    }


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
            elif pd.api.types.is_datetime64_any_dtype(series.dtype):
                # A calendar date ranks rows by time, not by risk: never a feature as it is.
                logger.warning(
                    "column '%s' holds dates: not used (declare it as data.file.date_column for an "
                    "out-of-time split)",
                    column,
                )
            else:
                raise FeatureInputError(
                    f"column '{column}': dtype {series.dtype} is neither numeric nor categorical; "
                    "declare it in data.file.categorical_columns or drop it in data.file.drop_columns"
                )
        used = set(numeric) | set(categories)
        unused = [c for c in inputs if c not in used]
        derived = [f.name for f in DERIVED_FEATURES if set(f.sources) <= used]
        # Only the columns a feature reads are inputs: the exported model then neither requires
        # nor checks a column it ignores (an id-like text column, a level-less category).
        self.input_columns_ = [c for c in inputs if c in used]
        self.unused_columns_ = unused
        self.input_profile_ = {column: _numeric_profile(X[column]) for column in numeric}
        self.numeric_columns_ = numeric
        self.categories_ = categories
        self.__dict__.pop("_category_dtypes", None)
        self.__dict__.pop("_level_indexes", None)
        self.derived_columns_ = derived
        self.feature_names_out_ = np.array([*numeric, *derived, *categories], dtype=object)
        self.n_features_in_ = len(self.input_columns_)
        self.feature_names_in_ = np.array(self.input_columns_, dtype=object)
        logger.info(
            "features: %d numeric, %d derived, %d categorical", len(numeric), len(derived), len(categories)
        )
        if unused:
            logger.warning("features: columns %s carry no usable values and are not model inputs", unused)
        return self

    def _levels(self, series: pd.Series) -> list[str]:
        counts = _as_levels(series).dropna().value_counts()
        counts = counts[counts >= self.min_category_count]
        # Most frequent first, ties by name, so the kept set is deterministic; stored sorted.
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.max_category_levels]
        return sorted(str(level) for level, _ in ordered)

    # ------------------------------------------------------------------ transform

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The model matrix of raw applications: :meth:`input_arrays`, then :meth:`feature_values`,
        then :meth:`frame`."""
        self._check_fitted()
        if not isinstance(X, pd.DataFrame):
            raise FeatureInputError(f"expected a pandas DataFrame of applications, got {type(X).__name__}")
        missing = [c for c in self.input_columns_ if c not in X.columns]
        if missing:
            raise FeatureInputError(f"missing input columns {missing}; the model was trained with them")
        return self.frame(self.feature_values(self.input_arrays(X)), X.index)

    def input_arrays(self, X: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
        """The columns the features read, as :data:`Columns` (numbers checked and made float64)."""
        arrays: dict[str, npt.NDArray[Any]] = {
            column: self._to_float(X[column], column) for column in self.numeric_columns_
        }
        for column in self.categories_:
            arrays[column] = raw_category_values(X[column])
        return arrays

    @property
    def matrix_columns(self) -> list[str]:
        """The columns of :meth:`transform`'s matrix, in order: numeric, derived, categorical."""
        return [*self.numeric_columns_, *self.derived_columns_, *self.categories_]

    def feature_values(self, columns: Columns) -> FloatArray:
        """The model matrix as one float64 array ``(n_rows, len(matrix_columns))``, column-major.

        ``columns`` holds at least the numeric input columns as float64 and the categorical
        ones as raw values (see :data:`Columns`). Categorical columns hold the code of the
        fitted level (NaN for a null or an unseen level), as XGBoost reads them; numeric and
        derived columns their values. :meth:`frame` turns it into the DataFrame of
        :meth:`transform`; :func:`scoring.models.treeshap.feature_array` of that frame is this
        array in float32.
        """
        n = len(next(iter(columns.values()))) if columns else 0
        names = self.matrix_columns
        out = np.empty((n, len(names)), dtype=np.float64, order="F")
        work: dict[str, npt.NDArray[Any]] = dict(columns)
        i = 0
        for column in self.numeric_columns_:
            values = columns[column]
            # an infinite ratio (a division by zero upstream) says nothing a model can rank on
            out[:, i] = np.where(np.isinf(values), np.nan, values)
            i += 1
        for name in self.derived_columns_:
            values = DERIVED_BY_NAME[name].compute(work)
            work[name] = values  # later derived features read earlier ones (payment -> ratios)
            out[:, i] = values
            i += 1
        for column in self.categories_:
            # Codes through the fitted levels: unseen levels and nulls get -1, i.e. missing.
            codes = level_positions(_level_values(columns[column]), self._level_index(column))
            out[:, i] = np.where(codes < 0, np.nan, codes)
            i += 1
        return out

    def frame(self, values: FloatArray, index: pd.Index) -> pd.DataFrame:
        """:meth:`feature_values` as the matrix DataFrame: float64 columns, then pandas categoricals."""
        names = self.matrix_columns
        n_numeric = len(self.numeric_columns_) + len(self.derived_columns_)
        data: dict[str, Any] = {name: values[:, i] for i, name in enumerate(names[:n_numeric])}
        for i, column in enumerate(self.categories_, start=n_numeric):
            codes = np.where(np.isnan(values[:, i]), -1, values[:, i]).astype(np.intp)
            data[column] = pd.Categorical.from_codes(codes, dtype=self._category_dtype(column))
        return pd.DataFrame(data, index=index, copy=False)

    def _category_dtype(self, column: str) -> pd.CategoricalDtype:
        """The fitted levels of ``column`` as a dtype, built once per transformer."""
        cache: dict[str, pd.CategoricalDtype] = self.__dict__.setdefault("_category_dtypes", {})
        if column not in cache:
            cache[column] = pd.CategoricalDtype(pd.Index(self.categories_[column]))
        return cache[column]

    def _level_index(self, column: str) -> dict[str, int]:
        """Fitted level -> its code, built once per transformer."""
        cache: dict[str, dict[str, int]] = self.__dict__.setdefault("_level_indexes", {})
        if column not in cache:
            cache[column] = {level: i for i, level in enumerate(self.categories_[column])}
        return cache[column]

    @staticmethod
    def _to_float(series: pd.Series, column: str) -> FloatArray:
        if pd.api.types.is_bool_dtype(series.dtype):
            return np.asarray(series.astype(np.float64).to_numpy(), dtype=np.float64)
        if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf":
            return np.asarray(series.to_numpy(), dtype=np.float64)  # no nulls to map but NaN
        if pd.api.types.is_numeric_dtype(series.dtype):
            return np.asarray(series.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            examples = series[bad].astype(str).unique()[:3].tolist()
            raise FeatureInputError(
                f"column '{column}': values {examples} are not numbers (expected numeric)"
            )
        return np.asarray(converted.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)

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
            "unused_columns": list(self.unused_columns_),
            "input_profile": {k: dict(v) for k, v in self.input_profile_.items()},
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
        self.unused_columns_ = list(spec.get("unused_columns", []))
        self.input_profile_ = {k: dict(v) for k, v in spec.get("input_profile", {}).items()}
        self.numeric_columns_ = list(spec["numeric_columns"])
        self.derived_columns_ = list(spec["derived_columns"])
        # JSON objects carry no order (the project writes them with sorted keys): the column
        # order the booster was trained on is the one in feature_names_out.
        names = list(spec["feature_names_out"])
        levels = spec["categories"]
        self.categories_ = {name: list(levels[name]) for name in names if name in levels}
        self.__dict__.pop("_category_dtypes", None)
        self.__dict__.pop("_level_indexes", None)
        self.feature_names_out_ = np.array(names, dtype=object)
        self.n_features_in_ = len(self.input_columns_)
        self.feature_names_in_ = np.array(self.input_columns_, dtype=object)
        return self


def derived_not_computed(transformer: ApplicationFeatures) -> dict[str, list[str]]:
    """Each derived feature of the contract the fitted transformer does not compute, with the
    source columns its data lacks."""
    available = set(transformer.input_columns_)
    return {
        f.name: [c for c in f.sources if c not in available]
        for f in DERIVED_FEATURES
        if f.name not in transformer.derived_columns_
    }


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
        "unused_columns": list(transformer.unused_columns_),
        "derived_not_computed": derived_not_computed(transformer),
    }
