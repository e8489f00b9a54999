"""Score every split with the trained model and measure it, against the truth where there is one.

The figures are computed from per-row arrays (:class:`SplitScores`: ids, labels, PDs), so the
pandas engine (:func:`evaluate_model`, frames in this process) and the dask engine
(:mod:`scoring.reporting.evaluation_dask`, PDs computed on the cluster and collected) share
:func:`evaluate_scores` and :func:`calibrated_metrics`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from sklearn.metrics import brier_score_loss, roc_auc_score

from scoring.core.contract import TRUE_PD_COLUMN, DatasetSpec
from scoring.data.split import LABELLED_PARTS
from scoring.models.calibration import Calibrator, calibration_metrics
from scoring.models.model import PDModel
from scoring.reporting.metrics import calibration_table, discrimination_metrics, roc_points

logger = logging.getLogger(__name__)

PLOTTED_PARTS = ("test", "oot")
TRUTH_ID_COLUMN = "application_id"
TRUTH_COLUMNS = (TRUTH_ID_COLUMN, TRUE_PD_COLUMN)
"""The columns of the truth file that evaluation reads."""


@dataclass
class SplitScores:
    """One labelled split's rows as the metrics read them, in row order.

    ``ids``: the rows' ids as text (to look up the true PD); ``y``: the target, 0.0 / 1.0;
    ``pd``: the model's PD; ``true_pd``: the rows' true PDs when already joined (once per split
    for every candidate), else looked up by id.
    """

    ids: pd.Series | npt.NDArray[Any]
    y: npt.NDArray[np.float64]
    pd: npt.NDArray[np.float64]
    true_pd: npt.NDArray[np.float64] | None = None

    def true_pds(self, truth: TruthLookup, name: str) -> npt.NDArray[np.float64]:
        return self.true_pd if self.true_pd is not None else true_pds(truth, self.ids, name)


@dataclass
class EvaluationResult:
    metrics: dict[str, dict[str, Any]]
    scores: pd.DataFrame
    roc: dict[str, pd.DataFrame]
    calibration: dict[str, pd.DataFrame]
    labelled: dict[str, SplitScores] = field(default_factory=dict)
    """The arrays the metrics were computed from, by labelled split (non-empty ones)."""


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class TruthLookup:
    """The truth file's true PD by application id (text), for joining onto a split's rows.

    Held as an Arrow table and joined with Arrow's hash join: on 8M ids against 10M, pandas'
    ``reindex`` over an index of Python strings took 17 s, and 20 times as long as on a tenth of
    the rows (benchmarks/bench_truth_join.py); the join grows with the rows.
    """

    table: pa.Table  # columns "id" (string), "true_pd" (double)

    def __len__(self) -> int:
        return int(self.table.num_rows)


def truth_lookup(truth: pd.DataFrame | None) -> TruthLookup | None:
    """The true PD by application id (text), or None without a truth file (or an empty one)."""
    if truth is None or not len(truth):
        return None
    ids = truth[TRUTH_ID_COLUMN]
    return TruthLookup(
        pa.table(
            {
                "id": pa.array(ids.astype(str).to_numpy(dtype=object), type=pa.string()),
                "true_pd": pa.array(truth[TRUE_PD_COLUMN].to_numpy(dtype=np.float64)),
            }
        )
    )


def true_pds(truth: TruthLookup, ids: pd.Series | npt.NDArray[Any], name: str) -> npt.NDArray[np.float64]:
    """The true PD of each id (text) of split ``name``, in the order of ``ids``; every id must be
    in the truth file."""
    keys = np.asarray(ids, dtype=object)
    rows = pa.table({"id": pa.array(keys, type=pa.string()), "_row": np.arange(len(keys), dtype=np.int64)})
    joined = rows.join(truth.table, "id", join_type="left outer", use_threads=True)
    values = np.full(len(keys), np.nan)
    values[joined["_row"].to_numpy()] = joined["true_pd"].to_numpy(zero_copy_only=False)
    if np.isnan(values).any():
        raise ValueError(f"truth file lacks {int(np.isnan(values).sum())} ids of split '{name}'")
    return values


def split_scores(model: PDModel, name: str, frame: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """A split's rows with the model's PD: the id column, ``split`` and ``pd``."""
    return pd.DataFrame(
        {spec.id_column: frame[spec.id_column].to_numpy(), "split": name, "pd": model.predict_pd(frame)}
    )


def target_values(frame: pd.DataFrame, spec: DatasetSpec) -> npt.NDArray[np.float64]:
    """The target of a labelled split as float (0.0 / 1.0)."""
    return pd.to_numeric(frame[spec.target_column]).to_numpy(dtype=np.float64)


def evaluate_scores(
    labelled: Mapping[str, SplitScores],
    truth: TruthLookup | None = None,
    calibration_bins: int = 10,
    scores: pd.DataFrame | None = None,
) -> EvaluationResult:
    """Metrics of each labelled split (in the order given), ROC points and calibration tables of
    the plotted ones.

    ``truth`` (:func:`truth_lookup`): each split also gets the AUC and Brier score of the true
    default probability on the same rows, the ceiling any model could reach. ``scores`` is kept
    as the result's :attr:`EvaluationResult.scores` (empty if not given).
    """
    metrics: dict[str, dict[str, Any]] = {}
    roc: dict[str, pd.DataFrame] = {}
    calibration: dict[str, pd.DataFrame] = {}
    for name, split in labelled.items():
        y, pd_values = split.y, split.pd
        entry: dict[str, Any] = discrimination_metrics(y, pd_values)
        if truth is not None:
            true_pd = split.true_pds(truth, name)
            ceiling = float(roc_auc_score(y, true_pd)) if 0 < y.sum() < len(y) else float("nan")
            entry["true_pd_auc"] = ceiling
            entry["auc_gap_to_truth"] = ceiling - entry["auc"]
            entry["true_pd_brier"] = float(brier_score_loss(y, true_pd))
        metrics[name] = {k: _clean(v) for k, v in entry.items()}
        if name in PLOTTED_PARTS:
            roc[name] = roc_points(y, pd_values)
            calibration[name] = calibration_table(y, pd_values, bins=calibration_bins)
        logger.info("%s: AUC %.4f on %d rows", name, entry["auc"], len(y))
    return EvaluationResult(
        metrics=metrics,
        scores=pd.DataFrame() if scores is None else scores,
        roc=roc,
        calibration=calibration,
        labelled=dict(labelled),
    )


def evaluate_model(
    model: PDModel,
    parts: dict[str, pd.DataFrame],
    spec: DatasetSpec,
    truth: pd.DataFrame | TruthLookup | None = None,
    calibration_bins: int = 10,
) -> EvaluationResult:
    """Metrics per labelled split; PDs for every row of every split.

    With a truth file (synthetic data; the frame or its :func:`truth_lookup`, made once for
    several models), each split also gets the AUC and Brier score of the true default
    probability on the same rows: the ceiling any model could reach.
    """
    labelled: dict[str, SplitScores] = {}
    score_frames = []
    for name, frame in parts.items():
        if frame.empty:
            continue
        scored = split_scores(model, name, frame, spec)
        score_frames.append(scored)
        if name in LABELLED_PARTS:
            ids = frame[spec.id_column].astype(str)
            labelled[name] = SplitScores(
                ids, target_values(frame, spec), scored["pd"].to_numpy(dtype=np.float64)
            )
    scores = pd.concat(score_frames, ignore_index=True) if score_frames else pd.DataFrame()
    lookup = truth_lookup(truth) if isinstance(truth, pd.DataFrame) else truth
    return evaluate_scores(labelled, lookup, calibration_bins, scores)


def calibrated_metrics(
    calibrator: Calibrator, labelled: Mapping[str, SplitScores], truth: TruthLookup | None = None
) -> dict[str, dict[str, Any]]:
    """The calibrated PDs of the champion's raw PDs (``labelled``, e.g. its
    :attr:`EvaluationResult.labelled`) on the plotted splits: their error against the outcomes
    and, with ``truth`` (:func:`truth_lookup`), against the true PD."""
    out: dict[str, dict[str, Any]] = {}
    for name in PLOTTED_PARTS:
        split = labelled.get(name)
        if split is None or not len(split.y):
            continue
        true_pd = None if truth is None else split.true_pds(truth, name)
        out[name] = calibration_metrics(calibrator.predict(split.pd), split.y, true_pd)
    return out


def plot_curves(result: EvaluationResult) -> dict[str, Any]:
    """ROC and calibration figures for the plotted splits (matplotlib Figures, keyed by name)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, points in result.roc.items():
        auc = result.metrics[name]["auc"]
        ax.plot(points["fpr"], points["tpr"], label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    figures["roc"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    top = 0.0
    for name, table in result.calibration.items():
        ax.plot(table["mean_pd"], table["observed_rate"], marker="o", label=name)
        top = max(top, float(table["mean_pd"].max()), float(table["observed_rate"].max()))
    ax.plot([0, top], [0, top], linestyle=":", color="grey")
    ax.set(xlabel="mean predicted PD", ylabel="observed default rate", title="Calibration (PD deciles)")
    ax.legend(loc="upper left")
    figures["calibration"] = fig
    return figures
