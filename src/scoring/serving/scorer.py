"""The full scoring output for raw applications: one code path for the pipeline, the artifact,
batch scoring and HTTP.

:class:`Scorer` holds the PD model, the calibrator, the master scale, the credit policy, the
limit rules, the reason coder (when the model directory has one), the dataset's roles and
the model's identity, and turns raw applications into :data:`OUTPUT_COLUMNS`:

=================  ====================================================================
application_id     the input's id column, as text
pd                 calibrated PD (floored and capped by the calibrator)
score              points from the calibrated PD with the scorecard's scaling
                   (``train.scorecard``: ``pdo``, ``base_score``, ``base_odds``):
                   ``score = offset - factor * ln(pd / (1 - pd))`` with
                   ``factor = pdo / ln 2`` and ``offset = base_score - factor * ln(base_odds)``;
                   so ``base_score`` points at good:bad odds ``base_odds``, ``pdo`` more points
                   double the odds, and the score falls as the PD rises. Not rounded: it maps
                   back to the PD exactly. Same scale as the scorecard's points.
grade              master-scale grade, 1 (lowest PD) .. K
decision           approve / refer / decline (:mod:`scoring.decision.policy`)
policy_reasons     knock-out codes, or GRADE_REFER / GRADE_DECLINE, joined with ';'
suggested_limit    largest principal within the grade's DTI, LTV and amount caps (0 if declined)
limit_constraint   the bound that set it: dti, ltv, grade_cap, declined, no_capacity, missing_data,
                   no_data (the dataset has neither the DTI nor the LTV columns: no limit, NaN)
reason_code_1..4   adverse-action reason codes from :mod:`scoring.explain` ('' where fewer,
reason_text_1..4   or where the model has no reason coder or reasons were not asked for)
input_flags        what training did not show of an inferred (undeclared) field, scored all the
                   same: ``field:code`` joined with ';' (``out_of_range``, ``null_unseen``,
                   ``not_whole``; :data:`scoring.serving.inputs.FLAG_CODES`), '' where none
model_version      the model's content id (:func:`scoring.serving.bundle.content_id`): the same
                   fitted files and settings give the same id on every run and machine
=================  ====================================================================

Raw input goes through the value layer of :mod:`scoring.serving.inputs` first. Policy rules and
limit constraints run where the model's input columns allow (:class:`scoring.decision.risk.RuleScope`:
all of them on the auto-loan contract; a bring-your-own dataset runs those its columns support).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from scoring.core.contract import SYNTHETIC_SPEC, DatasetSpec, row_ids
from scoring.core.io import DataReadError
from scoring.decision.grades import MasterScale
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import PolicySettings
from scoring.decision.risk import RiskLayer, RuleScope, risk_values
from scoring.models.calibration import Calibrator
from scoring.models.candidate import ArrayPath
from scoring.models.model import PDModel
from scoring.serving.bundle import (
    CALIBRATOR_FILE,
    DATASET_FILE,
    LIMITS_FILE,
    MASTER_SCALE_FILE,
    MODEL_INFO_FILE,
    POLICY_FILE,
    REASONS_FILE,
    SCALING_FILE,
    ModelBundle,
    content_id,
)
from scoring.serving.inputs import InputCheck, InputRejected, InputRules, count_flags, id_text

if TYPE_CHECKING:
    from scoring.config import Params

logger = logging.getLogger(__name__)

N_REASONS = 4
REASON_CODE_COLUMNS = tuple(f"reason_code_{i}" for i in range(1, N_REASONS + 1))
REASON_TEXT_COLUMNS = tuple(f"reason_text_{i}" for i in range(1, N_REASONS + 1))
OUTPUT_COLUMNS: tuple[str, ...] = (
    "application_id",
    "pd",
    "score",
    "grade",
    "decision",
    "policy_reasons",
    "suggested_limit",
    "limit_constraint",
    *REASON_CODE_COLUMNS,
    *REASON_TEXT_COLUMNS,
    "input_flags",
    "model_version",
)
OUTPUT_TYPES: dict[str, str] = {
    "application_id": "string",
    "pd": "double",
    "score": "double",
    "grade": "long",
    "decision": "string",
    "policy_reasons": "string",
    "suggested_limit": "double",
    "limit_constraint": "string",
    **{c: "string" for c in (*REASON_CODE_COLUMNS, *REASON_TEXT_COLUMNS)},
    "input_flags": "string",
    "model_version": "string",
}
"""MLflow type of each output column, for the exported model's signature."""


@dataclass(frozen=True)
class ScoreScaling:
    """Points scaling of the score column (the scorecard's ``pdo``, ``base_score``, ``base_odds``)."""

    pdo: float = 20.0
    base_score: float = 600.0
    base_odds: float = 50.0

    def __post_init__(self) -> None:
        for name, value in (("pdo", self.pdo), ("base_odds", self.base_odds)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"score scaling {name}={value!r}: expected a positive number")
        if not math.isfinite(self.base_score):
            raise ValueError(f"score scaling base_score={self.base_score!r}: expected a finite number")

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, pd_values: npt.ArrayLike) -> npt.NDArray[np.float64]:
        p = np.asarray(pd_values, dtype=np.float64)
        return np.asarray(self.offset - self.factor * (np.log(p) - np.log1p(-p)), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pdo": self.pdo,
            "base_score": self.base_score,
            "base_odds": self.base_odds,
            "definition": "score = offset - factor * logit(pd); factor = pdo / ln 2; "
            "offset = base_score - factor * ln(base_odds)",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreScaling:
        return cls(float(data["pdo"]), float(data["base_score"]), float(data["base_odds"]))


def model_info(params: Params) -> dict[str, Any]:
    """The model's name, as the pipeline and the exported artifact both report it; the Scorer
    adds its content id as ``model_version``. Which MLflow run trained it, and when, is the
    run's and the registry's record: a model's files never carry them (the same model gives the
    same bytes on every run)."""
    return {"model_name": params.export.model_name}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _load_reason_coder(bundle: ModelBundle) -> Any | None:
    if not bundle.has(REASONS_FILE):
        return None
    from scoring.explain.reasons import ReasonCoder

    return ReasonCoder.from_dict(bundle.read(REASONS_FILE))


class NothingScored(DataReadError):
    """Every row of a non-empty input was rejected: nothing a stage could go on with. A
    :class:`~scoring.core.io.DataReadError`, so a stage stops on it with its one line."""


def _nothing_scored(n_input: int, first_reason: str, what: str | None = None) -> NothingScored:
    text = (
        f"none of the {n_input} rows could be scored (every one rejected by the model's input "
        f"rules; the first: {first_reason}); expected rows that pass the rules of `scoring.serving.inputs`"
    )
    return NothingScored(f"{what}: {text}" if what else text)


@dataclass(frozen=True)
class ScoredRows:
    """:meth:`Scorer.score_rows`: every input row scored or rejected with its reasons.

    ``scored`` marks the input rows (in order) that ``scores`` holds, so a caller keeps what it
    has beside the scores (targets, splits) aligned.
    """

    scores: pd.DataFrame
    rejected: pd.DataFrame  # row (position in the input), the id, reject_reasons
    scored: npt.NDArray[np.bool_]

    @property
    def n_input(self) -> int:
        return len(self.scored)

    def counts(self, examples: int = 5) -> dict[str, Any]:
        """:func:`scoring_counts` of these rows."""
        return scoring_counts(self.scores, self.rejected, examples)

    def accounted(self, what: str) -> dict[str, Any]:
        """:meth:`counts`, logged under ``what``; stops with one line (:class:`NothingScored`)
        when a non-empty input had no row the model could score."""
        if self.n_input and not len(self.scores):
            raise _nothing_scored(self.n_input, str(self.rejected["reject_reasons"].iloc[0]), what)
        counts = self.counts()
        log_scoring_counts(what, counts)
        return counts


@dataclass
class Scorer:
    """Raw applications in; :data:`OUTPUT_COLUMNS` out (see the module docstring)."""

    model: PDModel
    calibrator: Calibrator
    scale: MasterScale
    policy: PolicySettings
    limits: LimitSettings
    scaling: ScoreScaling
    spec: DatasetSpec = SYNTHETIC_SPEC
    info: dict[str, Any] = field(default_factory=dict)
    reasons: Any | None = None  # scoring.explain.ReasonCoder
    rules: InputRules = field(init=False)
    scope: RuleScope = field(init=False)
    # The champion over the feature array (the candidate's own fast path), built once.
    path: ArrayPath = field(init=False)

    def __post_init__(self) -> None:
        self.rules = InputRules.for_model(self.model.features, self.spec)
        self.path = self.model.estimator.array_path(self.model.features)
        # The policy and limit rules the model's input columns can run (all, on the contract).
        columns = self.spec.role_columns(self.model.features.input_columns_)
        self.scope = RuleScope.for_columns(columns, self.policy)
        for line in self.scope.describe():
            logger.info("scorer: %s", line)
        if self.scale.n_grades > self.limits.n_grades:
            raise ValueError(
                f"the master scale has {self.scale.n_grades} grades but the limit tables only "
                f"{self.limits.n_grades}: expected a limit entry for every grade"
            )

    @property
    def model_version(self) -> str:
        return str(self.info.get("model_version", ""))

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_model_dir(
        cls,
        model_dir: str | Path,
        params: Params,
        spec: DatasetSpec = SYNTHETIC_SPEC,
        info: dict[str, Any] | None = None,
    ) -> Scorer:
        """From the pipeline's model directory (models/) and the params the pipeline ran with.

        ``info`` defaults to :func:`model_info`; without a ``model_version`` of its own it gets the
        model's content id (:meth:`content_id`).
        """
        bundle = ModelBundle(model_dir)
        info = model_info(params) if info is None else info
        card = params.train.scorecard
        scorer = cls(
            model=bundle.load_model(),
            calibrator=Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)),
            scale=MasterScale.from_dict(bundle.read(MASTER_SCALE_FILE)),
            policy=params.policy,
            limits=params.limits,
            scaling=ScoreScaling(card.pdo, card.base_score, card.base_odds),
            spec=spec,
            info=dict(info),
            reasons=_load_reason_coder(bundle),
        )
        scorer.info.setdefault("model_version", scorer.content_id(bundle))
        return scorer

    def content_id(self, bundle: ModelBundle) -> str:
        """The id of what decides this scorer's answers: the files it read from ``bundle`` (the
        model's, the calibrator, the master scale, the reason coder) and its settings and dataset
        roles; never the run, the time or the path (:func:`scoring.serving.bundle.content_id`)."""
        documents = {name: doc for name, doc in self.settings_files().items() if name != MODEL_INFO_FILE}
        documents[DATASET_FILE] = json.loads(self.spec.to_json())
        return content_id(bundle, bundle.scoring_files(), documents)

    @classmethod
    def from_files(cls, directory: str | Path) -> Scorer:
        """From the exported artifact's file directory: everything is in its JSON/UBJSON files.

        The caller checks the manifest first (:func:`scoring.serving.artifact.load_scorer`).
        """
        bundle = ModelBundle(directory)
        return cls(
            model=bundle.load_model(),
            calibrator=Calibrator.from_dict(bundle.read(CALIBRATOR_FILE)),
            scale=MasterScale.from_dict(bundle.read(MASTER_SCALE_FILE)),
            policy=PolicySettings.model_validate(bundle.read(POLICY_FILE)),
            limits=LimitSettings.model_validate(bundle.read(LIMITS_FILE)),
            scaling=ScoreScaling.from_dict(bundle.read(SCALING_FILE)),
            spec=DatasetSpec.from_json(bundle.path(DATASET_FILE).read_text(encoding="utf-8")),
            info=bundle.read(MODEL_INFO_FILE),
            reasons=_load_reason_coder(bundle),
        )

    def settings_files(self) -> dict[str, Any]:
        """The JSON documents :meth:`from_files` reads besides the model directory's own files."""
        return {
            POLICY_FILE: self.policy.model_dump(mode="json"),
            LIMITS_FILE: self.limits.model_dump(mode="json"),
            SCALING_FILE: self.scaling.to_dict(),
            MODEL_INFO_FILE: dict(self.info),
        }

    # ------------------------------------------------------------------ scoring

    def model_input(self, applications: pd.DataFrame, row_offset: int = 0) -> pd.DataFrame:
        """Raw applications under the names the model reads.

        A file whose columns were mapped onto contract roles (``data.file.roles``) arrives with
        its own names: they are renamed as in training (a column already under the role name is
        left as it is). A dataset that had no id column of its own numbered its rows in file
        order (:func:`scoring.core.contract.row_ids`); an input without that column is numbered the
        same way, ``row_offset`` being the position of its first row in the file.
        """
        renames = {
            column: role
            for role, column in self.spec.roles.items()
            if column in applications.columns and role not in applications.columns
        }
        frame = applications.rename(columns=renames) if renames else applications
        if self.spec.generated_id and self.spec.id_column not in frame.columns:
            frame = frame.assign(**{self.spec.id_column: row_ids(len(frame), row_offset)})
        return frame

    def raw_name(self, field_name: str) -> str:
        """The name a field has in the raw file (its column before the role mapping)."""
        return self.spec.roles.get(field_name, field_name)

    def check(self, applications: pd.DataFrame, row_offset: int = 0) -> InputCheck:
        """The value layer's verdict on each row (see :mod:`scoring.serving.inputs`)."""
        return self.rules.check(self.model_input(applications, row_offset))

    def score(self, applications: pd.DataFrame, with_reasons: bool = True) -> pd.DataFrame:
        """Score every row, refusing the whole frame (:class:`InputRejected`) if any row fails the
        checks: a request's answer is all of it or a 400. Stages use :meth:`score_rows`."""
        checked = self.check(applications)
        if checked.n_rejected:
            raise InputRejected(checked)
        return self._score_values(checked.values, checked.id_is_text, with_reasons, checked.flags_of())

    def score_batch(
        self, applications: pd.DataFrame, with_reasons: bool = True, row_offset: int = 0
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Scores of the rows that pass the checks, and the rejected rows with their reasons.

        ``len(scores) + len(rejected) == len(applications)``. ``row_offset``: see :meth:`model_input`.
        """
        scored = self.score_rows(applications, with_reasons, row_offset)
        return scored.scores, scored.rejected

    def score_rows(
        self, applications: pd.DataFrame, with_reasons: bool = True, row_offset: int = 0
    ) -> ScoredRows:
        """Every row accounted for: the scores of those that pass the checks, the rejected ones
        with their reasons, which input rows were scored, and the flag counts."""
        checked = self.check(applications, row_offset)
        keep = ~checked.rejected
        every = bool(keep.all())
        values = checked.values if every else checked.take(keep)
        flags = checked.flags_of(None if every else keep)
        scores = self._score_values(values, checked.id_is_text, with_reasons, flags)
        return ScoredRows(scores, checked.rejected_rows(self.spec.id_column), keep)

    def scorable_both(
        self, applications: pd.DataFrame, changed: pd.DataFrame, what: str
    ) -> tuple[npt.NDArray[np.bool_], dict[str, Any]]:
        """The rows this model scores both as they are and as ``changed`` (the same rows altered,
        a what-if scenario's offer), and the account of the first
        (:meth:`ScoredRows.accounted`, with ``n_rejected_changed``): what a replay can book."""
        rows = self.score_rows(applications, with_reasons=False)
        both = rows.scored & ~self.check(changed).rejected
        return both, {**rows.accounted(what), "n_rejected_changed": int((rows.scored & ~both).sum())}

    def assess(self, applications: pd.DataFrame) -> list[dict[str, Any]]:
        """What a credit committee reads of each application, from the same code as :meth:`score`.

        Per row (every row must pass the checks, as for :meth:`score`): ``output``, the row of
        :meth:`score` with reasons; ``limit``, every bound of the suggested limit (``max_by_dti``,
        ``max_by_ltv``, ``max_by_grade_cap``; NaN where the constraint is not in force), the
        binding one, the suggested rate and the payment at the limit; ``features``, the values the
        model read (its matrix columns, derived ones such as ``payment_to_income`` included);
        ``contributions``, each reason group's log-odds contribution (``code``, ``text``,
        ``value``), largest first, with ``expected_log_odds`` (the model's baseline) and
        ``raw_log_odds`` (their sum: the uncalibrated model's log-odds), or None where the model
        has no reason coder.
        """
        checked = self.check(applications)
        if checked.n_rejected:
            raise InputRejected(checked)
        values = checked.values
        n = len(values[self.spec.id_column])
        output = self._score_values(values, checked.id_is_text, True, checked.flags_of())
        matrix = self.model.features.feature_values(values)
        pd_raw = np.empty(0, dtype=np.float64) if n == 0 else self.path.predict_pd(matrix)
        risk = risk_values(
            values, pd_raw, RiskLayer(self.calibrator, self.scale), self.policy, self.limits, self.scope
        )
        coder = self.reasons
        contributions = None
        if coder is not None and n and list(coder.features) == self.model.features.matrix_columns:
            contributions = np.asarray(self.path.contributions(matrix), dtype=np.float64)
        columns = self.model.features.matrix_columns
        records = []
        for i in range(n):
            record: dict[str, Any] = {
                "output": output.iloc[i].to_dict(),
                "limit": {
                    key: _plain(risk[key][i])
                    for key in (
                        "max_by_dti",
                        "max_by_ltv",
                        "max_by_grade_cap",
                        "binding_constraint",
                        "suggested_rate",
                        "payment_at_limit",
                        "expected_loss",
                    )
                    if key in risk
                },
                "features": {name: float(matrix[i, j]) for j, name in enumerate(columns)},
                "contributions": None,
            }
            if contributions is not None and coder is not None:
                grouped = coder.group_contributions(
                    pd.DataFrame(contributions[i : i + 1], columns=[*coder.features, "bias"])
                ).iloc[0]
                texts = {g.code: g.text for g in coder.groups}
                record["contributions"] = {
                    "expected_log_odds": float(contributions[i, -1]),
                    "raw_log_odds": float(contributions[i].sum()),
                    "groups": sorted(
                        (
                            {"code": str(code), "text": texts[str(code)], "value": float(value)}
                            for code, value in grouped.items()
                        ),
                        key=lambda g: -abs(g["value"]),
                    ),
                }
            records.append(record)
        return records

    def _score_values(
        self,
        values: dict[str, npt.NDArray[Any]],
        id_is_text: bool,
        with_reasons: bool,
        flags: npt.NDArray[np.object_] | None = None,
    ) -> pd.DataFrame:
        """The output for checked rows, from :attr:`InputCheck.values`: NumPy arrays throughout,
        one DataFrame at the end (pandas costs more per call than the arithmetic on one row)."""
        n = len(values[self.spec.id_column])
        features = self.model.features
        matrix = features.feature_values(values)
        # no rows: nothing to predict (XGBoost warns on an empty matrix)
        pd_raw = np.empty(0, dtype=np.float64) if n == 0 else self.path.predict_pd(matrix)
        risk = risk_values(
            values, pd_raw, RiskLayer(self.calibrator, self.scale), self.policy, self.limits, self.scope
        )
        pd_cal = risk["pd"]
        out: dict[str, Any] = {
            "application_id": _id_texts(values[self.spec.id_column], id_is_text),
            "pd": pd_cal,
            "score": self.scaling.points(pd_cal),
            "grade": np.asarray(risk["grade"], dtype=np.int64),
            "decision": risk["decision"],
            "policy_reasons": risk["policy_reasons"],
            "suggested_limit": np.asarray(risk["suggested_limit"], dtype=np.float64),
            "limit_constraint": np.asarray(risk["binding_constraint"], dtype=object),
        }
        if with_reasons and self.reasons is not None and n:
            codes, texts = self._reason_values(matrix)
            for i, column in enumerate(REASON_CODE_COLUMNS):
                out[column] = codes[:, i]
            for i, column in enumerate(REASON_TEXT_COLUMNS):
                out[column] = texts[:, i]
        else:
            blank = np.full(n, "", dtype=object)
            for column in (*REASON_CODE_COLUMNS, *REASON_TEXT_COLUMNS):
                out[column] = blank
        out["input_flags"] = np.full(n, "", dtype=object) if flags is None else flags
        out["model_version"] = np.full(n, self.model_version, dtype=object)
        return _output_frame(out, n)

    def _reason_values(
        self, matrix: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        """Reason codes and texts ``(n, 4)`` each, the coder's reasons for the feature matrix."""
        coder = self.reasons
        assert coder is not None
        if list(coder.features) == self.model.features.matrix_columns:
            return coder.reason_values(self.path.contributions(matrix))  # type: ignore[no-any-return]
        # else the coder's own column check raises, naming the columns
        frame = self.model.features.frame(matrix, pd.RangeIndex(len(matrix)))
        reasons = coder.reasons(self.model, frame)
        codes = np.column_stack(
            [reasons[c].fillna("").astype(str).to_numpy(dtype=object) for c in REASON_CODE_COLUMNS]
        )
        texts = np.column_stack(
            [reasons[c].fillna("").astype(str).to_numpy(dtype=object) for c in REASON_TEXT_COLUMNS]
        )
        return codes, texts


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python value (JSON and templates take these)."""
    return value.item() if isinstance(value, np.generic) else value


def _id_texts(raw: npt.NDArray[Any], id_is_text: bool) -> npt.NDArray[np.object_]:
    """The ids as the output's text: ``str`` of text ids, :func:`id_text` of numbers (45.0 -> "45")."""
    if id_is_text:
        if pd.api.types.infer_dtype(raw, skipna=False) == "string":
            return raw  # text already: str() would give the same strings
        return np.asarray(pd.Series(raw, dtype=object).astype(str).to_numpy(dtype=object), dtype=object)
    return np.array([id_text(v) for v in raw], dtype=object)


def _output_frame(out: dict[str, Any], n: int) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` in order; text columns as object (not pandas' Arrow strings, a copy
    of every string that no caller needs), numbers as float64 / int64."""
    index = pd.RangeIndex(n)
    # One index object for the frame and every Series: pandas then aligns nothing.
    return pd.DataFrame(
        {
            name: pd.Series(out[name], index=index, dtype=object, copy=False)
            if OUTPUT_TYPES[name] == "string"
            else out[name]
            for name in OUTPUT_COLUMNS
        },
        index=index,
        copy=False,
    )


def scored_predictions(
    scorer: Scorer, parts: dict[str, pd.DataFrame], spec: DatasetSpec, raw_scores: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every row of every split through the scorer, beside its split, target and raw PD; and the
    rows the model's input rules rejected, with their reasons (none is lost, none stops a stage).

    ``raw_scores`` is :attr:`scoring.reporting.evaluation.EvaluationResult.scores` (id, split, raw PD of
    the champion, for the same non-empty parts in the same order). Predictions: application_id,
    split, the target under its dataset name, pd_raw, then :data:`OUTPUT_COLUMNS` after the id.
    Rejected: split, row (position in the split), application_id, reject_reasons. Raises
    :class:`NothingScored` only when rows came and none could be scored.
    """
    frames, rejected, kept = [], [], []
    for name, frame in parts.items():
        if frame.empty:
            continue
        scored = scorer.score_rows(frame)
        out = scored.scores
        kept.append(scored.scored)
        if len(scored.rejected):
            rejected.append(
                scored.rejected.rename(columns={spec.id_column: "application_id"}).assign(split=name)
            )
        target = (
            pd.to_numeric(frame[spec.target_column], errors="coerce").to_numpy(dtype=float)[scored.scored]
            if spec.target_column in frame.columns
            else float("nan")
        )
        head = pd.DataFrame({"split": name, spec.target_column: target}, index=out.index)
        frames.append(pd.concat([out[["application_id"]], head, out.drop(columns="application_id")], axis=1))
    rejected_rows = (
        pd.concat(rejected, ignore_index=True)[["split", "row", "application_id", "reject_reasons"]]
        if rejected
        else pd.DataFrame(
            {
                "split": pd.Series(dtype=object),
                "row": pd.Series(dtype=np.int64),
                "application_id": pd.Series(dtype=object),
                "reject_reasons": pd.Series(dtype=object),
            }
        )
    )
    if not frames:
        return (
            pd.DataFrame(
                columns=["application_id", "split", spec.target_column, "pd_raw", *OUTPUT_COLUMNS[1:]]
            ),
            rejected_rows,
        )
    predictions = pd.concat(frames, ignore_index=True)
    n_input = sum(len(k) for k in kept)
    if n_input and predictions.empty:
        raise _nothing_scored(n_input, str(rejected_rows["reject_reasons"].iloc[0]))
    # The champion's raw PD from the evaluation (same rows, same order of splits and rows).
    raw = raw_scores.rename(columns={spec.id_column: "application_id", "pd": "pd_raw"})
    if len(raw) == n_input:
        raw = raw[np.concatenate(kept)]
    if (
        len(raw) != len(predictions)
        or not (
            raw["application_id"].astype(str).to_numpy() == predictions["application_id"].to_numpy()
        ).all()
    ):
        raise ValueError(
            "evaluation scores and scorer output disagree on rows; expected the same rows in order"
        )
    predictions.insert(3, "pd_raw", raw["pd_raw"].to_numpy(dtype=float))
    return predictions, rejected_rows


def accounted_predictions(
    scorer: Scorer, parts: dict[str, pd.DataFrame], spec: DatasetSpec, raw_scores: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`scored_predictions` and its account (:func:`scoring_counts`, logged): what the
    evaluate stage writes, the rows the model refuses reported rather than raised."""
    predictions, rejected = scored_predictions(scorer, parts, spec, raw_scores)
    counts = scoring_counts(predictions, rejected)
    log_scoring_counts("evaluate", counts)
    return predictions, counts


def scoring_counts(predictions: pd.DataFrame, rejected: pd.DataFrame, examples: int = 20) -> dict[str, Any]:
    """What a stage reports of scoring its rows: ``n_input = n_scored + n_rejected`` (by split
    too where there is a ``split`` column), the scored rows that carry a flag and the count of
    each ``field:code``, and the first rejected rows with their reasons."""
    flags = predictions["input_flags"] if "input_flags" in predictions.columns else pd.Series(dtype=object)
    out: dict[str, Any] = {
        "n_input": len(predictions) + len(rejected),
        "n_scored": len(predictions),
        "n_rejected": len(rejected),
        "n_flagged": int((flags.fillna("") != "").sum()),
        "flags": count_flags(flags),
        "rejected_examples": [
            {key: (int(v) if key == "row" else str(v)) for key, v in row.items()}
            for row in rejected.head(examples).to_dict(orient="records")
        ],
    }
    if "split" in predictions.columns:
        splits = list(dict.fromkeys([*predictions["split"], *rejected.get("split", [])]))
        out["by_split"] = {
            str(name): {
                "n_scored": int((predictions["split"] == name).sum()),
                "n_rejected": int((rejected["split"] == name).sum()) if "split" in rejected.columns else 0,
            }
            for name in splits
        }
    return out


def log_scoring_counts(what: str, counts: dict[str, Any]) -> None:
    """One log line of :func:`scoring_counts`: a warning when rows were rejected or flagged."""
    line = (
        f"{what}: input {counts['n_input']:,} = scored {counts['n_scored']:,} + "
        f"rejected {counts['n_rejected']:,}; {counts['n_flagged']:,} scored rows flagged"
    )
    if counts["flags"]:
        line += " (" + ", ".join(f"{flag} {n:,}" for flag, n in counts["flags"].items()) + ")"
    if counts["rejected_examples"]:
        line += f"; first rejected: {counts['rejected_examples'][0]['reasons']}"
    if counts["n_rejected"] or counts["n_flagged"]:
        logger.warning(line)
    else:
        logger.info(line)
