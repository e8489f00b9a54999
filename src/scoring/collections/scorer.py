"""The behaviour score as it is served: account-month rows in, calibrated PD and reason codes out.

One code path for the collect stage, the exported MLflow model (``auto_loan_behaviour``) and
``scoring collect``. A row is one account in one month, with the features of
:func:`scoring.collections.behaviour.account_snapshots` (payment history up to that month, the
loan's terms, the application score). :class:`BehaviourScorer` holds the fitted features, the
champion candidate, its calibrator, the reason coder and the collections settings (strategy,
actions, depreciation) the model was built with, all read from JSON / UBJSON files of a model
bundle (:mod:`scoring.serving.bundle`), never pickle.

Rows are checked before they are scored (:meth:`BehaviourScorer.check`): a missing column stops
the call; a row whose bucket is not an on-book delinquency grade (0 current .. 3 M3), or whose
value is not a number, negative or out of its range, is rejected with one message naming the
field, the value and what was expected. :meth:`BehaviourScorer.score` refuses a batch with any
rejected row (the served model answers 400); :meth:`BehaviourScorer.score_valid` scores the rest
and returns the rejected rows with their reasons, so input = scored + rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.refusals import CodedError
from scoring.explain.reasons import CODE_COLUMNS, TEXT_COLUMNS, ReasonCoder
from scoring.models.calibration import Calibrator
from scoring.models.candidate import sigmoid
from scoring.models.model import PDModel
from scoring.serving.bundle import (
    CALIBRATOR_FILE,
    CHAMPION_FILE,
    MODEL_INFO_FILE,
    REASONS_FILE,
    ModelBundle,
    content_id,
)

COLLECTIONS_FILE = "collections.json"
"""The collections settings (``collections:`` of params) the model was built with."""
KEY_COLUMNS = ("loan_id", "as_of_month")
OUTPUT_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "behaviour_pd",
    *CODE_COLUMNS,
    *TEXT_COLUMNS,
    "model_version",
)
OUTPUT_TYPES: dict[str, str] = {
    "loan_id": "string",
    "as_of_month": "string",
    "behaviour_pd": "double",
    **{c: "string" for c in (*CODE_COLUMNS, *TEXT_COLUMNS)},
    "model_version": "string",
}

# Range of each snapshot feature the score is defined on (inclusive); other numeric inputs must
# be finite numbers (or missing, which the model's missing branch handles).
RANGES: dict[str, tuple[float, float]] = {
    "bucket": (0, 3),
    "days_past_due": (0, 120),
    "worst_bucket_6m": (0, 5),  # a cured account may have been at M4+ (4) in the window
    "worst_bucket_12m": (0, 5),
    "months_delinquent_12m": (0, 12),
    "months_since_delinq": (0, 999),
    "paid_ratio_3m": (0, math.inf),
    "paid_ratio_6m": (0, math.inf),
    "months_on_book": (1, 600),
    "remaining_term": (0, 600),
    "balance_share": (0, math.inf),
    "current_ltv": (0, math.inf),
    "payment_to_income": (0, math.inf),
    "application_pd": (0, 1),
    "loan_amount": (0, math.inf),
    "annual_rate": (0, 1),
    "term_months": (1, 600),
    "outstanding_principal": (0, math.inf),
}


ROW_CHECKS: dict[str, str] = {
    "key_missing": "a value (the account and its month)",
    "month_not_a_date": "a month (a date)",
    "not_a_number": "a number",
    "out_of_range": "a number in [{low:g}, {high:g}]",
    "bucket_not_whole": "a whole number: 0 current, 1 M1, 2 M2, 3 M3",
    "bucket_missing": "0 current .. 3 M3",
}
"""The checks that reject a row: code -> what was expected, as a rejected row's reason says it
(``<field>: got <value>, expected <this>``)."""
REFUSALS: dict[str, str] = {
    "columns_missing": "the rows lack columns the score reads",
    "rows_rejected": "rows failed the checks of ROW_CHECKS (BehaviourScorer.score takes only clean batches)",
}
"""The ways the score refuses a batch (:class:`BehaviourInputError`'s codes)."""


class BehaviourInputError(CodedError):
    """Rows the behaviour score cannot take: one message per field, naming value and expectation;
    ``code``: one of :data:`REFUSALS`."""

    CODES = REFUSALS


@dataclass
class BehaviourScorer:
    """Account-month rows in, :data:`OUTPUT_COLUMNS` out (module docstring)."""

    model: PDModel
    calibrator: Calibrator
    reasons: ReasonCoder | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_columns(self) -> list[str]:
        return list(self.model.features.input_columns_)

    @property
    def categorical_columns(self) -> set[str]:
        return set(self.model.features.categories_)

    # ------------------------------------------------------------------ checks

    def check(self, rows: pd.DataFrame) -> pd.Series:
        """Per row, the reasons it cannot be scored ('' where it can); raises on missing columns."""
        missing = [c for c in (*KEY_COLUMNS, *self.input_columns) if c not in rows.columns]
        if missing:
            raise BehaviourInputError(
                f"columns {missing} are missing: expected the account-month columns "
                f"{[*KEY_COLUMNS, *self.input_columns]} (scoring.collections.behaviour.account_snapshots)",
                "columns_missing",
            )
        problems: list[list[str]] = [[] for _ in range(len(rows))]

        def flag(mask: npt.NDArray[np.bool_], column: str, check: str, **bounds: float) -> None:
            expected = ROW_CHECKS[check].format(**bounds)
            values = rows[column].to_numpy()
            for i in np.flatnonzero(mask):
                value = values[i].item() if isinstance(values[i], np.generic) else values[i]
                shown = (
                    "null"
                    if value is None or (isinstance(value, float) and math.isnan(value))
                    else repr(value)
                )
                problems[i].append(f"{column}: got {shown}, expected {expected}")

        for column in KEY_COLUMNS:
            flag(rows[column].isna().to_numpy(), column, "key_missing")
        months = pd.to_datetime(rows["as_of_month"], errors="coerce")
        flag((months.isna() & rows["as_of_month"].notna()).to_numpy(), "as_of_month", "month_not_a_date")
        checked = [c for c in self.input_columns if c not in self.categorical_columns]
        if "outstanding_principal" in rows.columns:
            checked.append("outstanding_principal")
        for column in checked:
            numbers = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=np.float64)
            not_number = np.isnan(numbers) & rows[column].notna().to_numpy()
            flag(not_number, column, "not_a_number")
            low, high = RANGES.get(column, (-math.inf, math.inf))
            with np.errstate(invalid="ignore"):
                outside = ~np.isnan(numbers) & ((numbers < low) | (numbers > high) | np.isinf(numbers))
            flag(outside, column, "out_of_range", low=low, high=high)
            if column == "bucket":
                whole = ~np.isnan(numbers) & ~outside & (numbers != np.round(numbers))
                flag(whole, column, "bucket_not_whole")
                flag(np.isnan(numbers) & rows[column].isna().to_numpy(), column, "bucket_missing")
        return pd.Series(["; ".join(p) for p in problems], index=rows.index, dtype=object)

    # ------------------------------------------------------------------ scoring

    def predict_pd(self, rows: pd.DataFrame) -> npt.NDArray[np.float64]:
        raw = sigmoid(self.model.log_odds(rows))
        return np.asarray(self.calibrator.predict(raw), dtype=np.float64)

    def score(self, rows: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """Score every row, or raise :class:`BehaviourInputError` naming each row that fails."""
        scored, rejected = self.score_valid(rows, with_reasons)
        if len(rejected):
            shown = "; ".join(
                f"row {r}: {text}" for r, text in zip(rejected["row"], rejected["reasons"], strict=True)
            )
            raise BehaviourInputError(
                f"{len(rejected)} of {len(rows)} rows rejected: {shown[:2000]}", "rows_rejected"
            )
        return scored

    def score_valid(self, rows: pd.DataFrame, with_reasons: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(scored rows, rejected rows with reasons): every input row is in exactly one of them."""
        rows = rows.reset_index(drop=True)
        reasons = self.check(rows)
        bad = (reasons != "").to_numpy()
        rejected = pd.DataFrame(
            {
                "loan_id": rows.loc[bad, "loan_id"].astype(str).to_numpy(),
                "as_of_month": rows.loc[bad, "as_of_month"].astype(str).to_numpy(),
                "row": np.flatnonzero(bad),
                "reasons": reasons[bad].to_numpy(),
            }
        )
        good = rows.loc[~bad].reset_index(drop=True)
        out = pd.DataFrame(
            {
                "loan_id": good["loan_id"].astype(str).to_numpy(),
                "as_of_month": pd.to_datetime(good["as_of_month"]).dt.strftime("%Y-%m").to_numpy(),
                "behaviour_pd": self.predict_pd(good) if len(good) else np.array([], dtype=np.float64),
            }
        )
        codes = pd.DataFrame("", index=out.index, columns=[*CODE_COLUMNS, *TEXT_COLUMNS], dtype=object)
        if with_reasons and self.reasons is not None and len(good):
            codes = self.reasons.reasons(self.model, self.model.feature_matrix(good)).reset_index(drop=True)
        out = pd.concat([out, codes], axis=1)
        out["model_version"] = str(self.info.get("model_version", ""))
        return out[list(OUTPUT_COLUMNS)], rejected

    # ------------------------------------------------------------------ files

    def settings_files(self) -> dict[str, Any]:
        """The JSON documents besides the model's own files that the artifact carries."""
        files: dict[str, Any] = {
            CALIBRATOR_FILE: self.calibrator.to_dict(),
            COLLECTIONS_FILE: self.settings,
            MODEL_INFO_FILE: self.info,
        }
        if self.reasons is not None:
            files[REASONS_FILE] = self.reasons.to_dict()
        return files

    def save(self, directory: str | Path, models: dict[str, Any] | None = None) -> ModelBundle:
        """Write the bundle: features, the candidates (``models``, default: the champion alone),
        champion record, calibrator, reasons, settings and model info."""
        bundle = ModelBundle(directory)
        bundle.root.mkdir(parents=True, exist_ok=True)
        bundle.save_features(self.model.features)
        if models:
            candidates = dict(models)
        else:  # the champion alone, with a blend's parts (as ModelBundle.save_model keeps them)
            parts = getattr(self.model.estimator, "parts", None)
            candidates = dict(parts()) if callable(parts) else {}
            candidates[self.model.kind] = self.model.estimator
        bundle.save_candidates(candidates)
        bundle.write(CHAMPION_FILE, {"champion": self.model.kind, "candidates": list(candidates)})
        for name, document in self.settings_files().items():
            bundle.write(name, document)
        if "model_version" not in self.info:
            self.info["model_version"] = self.content_id(bundle)
            bundle.write(MODEL_INFO_FILE, self.info)
        return bundle

    def content_id(self, bundle: ModelBundle) -> str:
        """The id of what decides the answers: the champion's files in ``bundle`` and the
        calibrator, reason coder and settings (:func:`scoring.serving.bundle.content_id`); the same
        fit gives the same id on every run."""
        documents = {name: doc for name, doc in self.settings_files().items() if name != MODEL_INFO_FILE}
        return content_id(bundle, bundle.model_files(), documents)

    @classmethod
    def from_files(cls, directory: str | Path) -> BehaviourScorer:
        """Build from a bundle's JSON / UBJSON files (the stage's folder or the artifact's)."""
        bundle = ModelBundle(directory)
        reasons = ReasonCoder.from_dict(bundle.read(REASONS_FILE)) if bundle.has(REASONS_FILE) else None
        return cls(
            model=bundle.load_model(),
            calibrator=Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)),
            reasons=reasons,
            settings=dict(bundle.read(COLLECTIONS_FILE)) if bundle.has(COLLECTIONS_FILE) else {},
            info=dict(bundle.read(MODEL_INFO_FILE)) if bundle.has(MODEL_INFO_FILE) else {},
        )


def load_verified_behaviour(
    model: str | Path, expect_digest: str | None = None
) -> tuple[BehaviourScorer, str]:
    """The behaviour scorer of an exported model (directory or ``models:/`` URI) whose files match
    its manifest and digest (:func:`scoring.serving.registry.resolve_model`), and the digest."""
    import tempfile

    from scoring.serving.artifact import files_dir
    from scoring.serving.registry import is_registry_uri, resolve_model

    if is_registry_uri(model):
        with tempfile.TemporaryDirectory(prefix="scoring-model-") as download:
            verified = resolve_model(model, expect_digest, download_dir=download)
            return BehaviourScorer.from_files(files_dir(verified.path)), verified.digest
    verified = resolve_model(model, expect_digest)
    return BehaviourScorer.from_files(files_dir(verified.path)), verified.digest
