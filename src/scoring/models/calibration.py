"""PD calibration on held-out predictions (a split the model never trained on, or out-of-fold
predictions): isotonic, Platt or none.

The calibrators are fitted with scikit-learn and stored as plain numbers, so the fitted
calibrator is JSON and is applied with numpy at scoring time:

- **isotonic**: :class:`sklearn.isotonic.IsotonicRegression` (increasing, output in [0, 1],
  ``out_of_bounds="clip"``) fitted on the raw PD. Its ``X_thresholds_`` / ``y_thresholds_`` are
  stored, and a PD is mapped with ``np.interp`` over them; ``np.interp`` holds the end values
  outside the stored range, which is what sklearn's clipping does.
- **platt**: :class:`sklearn.linear_model.LogisticRegression` without penalty on the single
  feature ``logit(pd_raw)`` (raw PD clipped to [1e-12, 1 - 1e-12] first), so the calibrated PD is
  ``sigmoid(a * logit(pd_raw) + b)``. The slope ``a`` is held at 0 or above so the map never
  reverses the model's ranking (a negative slope is replaced by the constant default rate, with
  a warning).
- **none**: the raw PD.

Every method then applies the PD floor and cap: ``pd = clip(pd, pd_floor, pd_cap)``. Each step
is non-decreasing, so the calibrated PD never falls when the raw PD rises.

``method="auto"`` scores each candidate (by default none, platt and isotonic) by its
out-of-fold log loss: stratified K-fold cross-validation inside the calibration split, each
fold's calibrator fitted on the other folds, floor and cap applied. The lowest log loss wins;
an exact tie goes to the candidate listed first in ``auto_candidates`` (the simplest first by
default). The winner is then refitted on the whole calibration split.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

logger = logging.getLogger(__name__)

CalibrationMethod = Literal["isotonic", "platt", "none"]
METHODS: tuple[CalibrationMethod, ...] = ("isotonic", "platt", "none")
# Raw PDs of exactly 0 or 1 have an infinite logit; Platt scaling clips them here first.
LOGIT_EPS = 1e-12
FORMAT = "scoring.calibrator"
FORMAT_VERSION = 1


class CalibrationSettings(BaseModel):
    """How raw model PDs become calibrated PDs (the ``calibrate`` section of params.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["auto", "isotonic", "platt", "none"] = Field(
        "auto", description="auto = the candidate with the lowest cross-validated log loss"
    )
    pd_floor: float = Field(0.0003, ge=0.0, lt=1.0, description="lowest calibrated PD (0.03%)")
    pd_cap: float = Field(0.9999, gt=0.0, le=1.0, description="highest calibrated PD")
    cv_folds: int = Field(5, ge=2, le=20, description="folds of the cross-validation that picks the method")
    auto_candidates: tuple[CalibrationMethod, ...] = Field(
        ("none", "platt", "isotonic"),
        min_length=1,
        description="methods compared by method=auto; an exact tie goes to the one listed first",
    )

    @model_validator(mode="after")
    def _floor_below_cap(self) -> CalibrationSettings:
        if self.pd_floor >= self.pd_cap:
            raise ValueError(f"pd_floor ({self.pd_floor}) must be below pd_cap ({self.pd_cap})")
        if len(set(self.auto_candidates)) != len(self.auto_candidates):
            raise ValueError(f"auto_candidates has duplicates: {list(self.auto_candidates)}")
        return self


def as_pd(values: npt.ArrayLike, name: str = "pd") -> np.ndarray:
    """``values`` as a one-dimensional float64 array of probabilities, or a ValueError naming
    ``name`` and the first values outside [0, 1] or null (the calibrator's and the master scale's
    input check)."""
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {p.shape}")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        bad = p[np.isnan(p) | (p < 0) | (p > 1)][:5]
        raise ValueError(f"{name} must lie in [0, 1] with no nulls; got for example {bad.tolist()}")
    return p


def as_labels(values: npt.ArrayLike, n: int) -> np.ndarray:
    """``values`` as ``n`` float64 outcomes, or a ValueError unless every one is 0 or 1."""
    y = np.asarray(values, dtype=np.float64)
    if y.shape != (n,):
        raise ValueError(f"labels and PDs differ in length: {y.shape[0] if y.ndim else 0} against {n}")
    if np.isnan(y).any() or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1 with no nulls (drop unlabelled rows first)")
    return y


def _logit(p: np.ndarray) -> np.ndarray:
    from scipy.special import logit  # scipy only where a calibrator is fitted or applied

    return np.asarray(logit(np.clip(p, LOGIT_EPS, 1.0 - LOGIT_EPS)), dtype=np.float64)


@dataclass(frozen=True)
class Calibrator:
    """A fitted PD calibrator: plain numbers, applied with numpy.

    ``candidate_log_loss`` holds the out-of-fold log loss of every candidate compared when the
    method was chosen automatically (empty when the method was fixed in the settings).
    """

    method: CalibrationMethod
    pd_floor: float
    pd_cap: float
    x_thresholds: tuple[float, ...] = ()
    y_thresholds: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0
    selection: Literal["auto", "fixed"] = "fixed"
    candidate_log_loss: dict[str, float] = field(default_factory=dict)
    n_fit: int = 0
    n_defaults_fit: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibrator method must be one of {list(METHODS)}, got {self.method!r}")
        if not 0.0 <= self.pd_floor < self.pd_cap <= 1.0:
            raise ValueError(
                f"need 0 <= pd_floor < pd_cap <= 1, got pd_floor={self.pd_floor}, pd_cap={self.pd_cap}"
            )
        if self.method == "isotonic":
            x, y = np.asarray(self.x_thresholds), np.asarray(self.y_thresholds)
            if len(x) == 0 or len(x) != len(y):
                raise ValueError(
                    f"isotonic calibrator needs as many x as y thresholds (at least one), "
                    f"got {len(x)} and {len(y)}"
                )
            if (np.diff(x) <= 0).any() or (np.diff(y) < 0).any():
                raise ValueError("isotonic thresholds must have increasing x and non-decreasing y")
        if self.method == "platt" and not (math.isfinite(self.slope) and self.slope >= 0.0):
            raise ValueError(f"Platt slope must be finite and >= 0 (monotone), got {self.slope}")

    def predict_uncapped(self, pd_raw: npt.ArrayLike) -> np.ndarray:
        """The calibration map without the floor and cap (for diagnostics)."""
        p = as_pd(pd_raw, "pd_raw")
        if self.method == "isotonic":
            mapped = np.interp(p, np.asarray(self.x_thresholds), np.asarray(self.y_thresholds))
            return np.asarray(mapped, dtype=np.float64)
        if self.method == "platt":
            from scipy.special import expit

            return np.asarray(expit(self.slope * _logit(p) + self.intercept), dtype=np.float64)
        return p.copy()

    def predict(self, pd_raw: npt.ArrayLike) -> np.ndarray:
        """Calibrated PD: the calibration map, then ``clip(., pd_floor, pd_cap)``."""
        return np.asarray(
            np.clip(self.predict_uncapped(pd_raw), self.pd_floor, self.pd_cap), dtype=np.float64
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "method": self.method,
            "pd_floor": self.pd_floor,
            "pd_cap": self.pd_cap,
            "isotonic": {"x_thresholds": list(self.x_thresholds), "y_thresholds": list(self.y_thresholds)},
            "platt": {"input": "logit(pd_raw)", "slope": self.slope, "intercept": self.intercept},
            "selection": self.selection,
            "candidate_log_loss": dict(self.candidate_log_loss),
            "n_fit": self.n_fit,
            "n_defaults_fit": self.n_defaults_fit,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"not a calibrator of format {FORMAT} version {FORMAT_VERSION}: "
                f"got format={data.get('format')!r}, version={data.get('format_version')!r}"
            )
        isotonic, platt = data.get("isotonic", {}), data.get("platt", {})
        return cls(
            method=data["method"],
            pd_floor=float(data["pd_floor"]),
            pd_cap=float(data["pd_cap"]),
            x_thresholds=tuple(float(v) for v in isotonic.get("x_thresholds", ())),
            y_thresholds=tuple(float(v) for v in isotonic.get("y_thresholds", ())),
            slope=float(platt.get("slope", 1.0)),
            intercept=float(platt.get("intercept", 0.0)),
            selection=data.get("selection", "fixed"),
            candidate_log_loss={str(k): float(v) for k, v in data.get("candidate_log_loss", {}).items()},
            n_fit=int(data.get("n_fit", 0)),
            n_defaults_fit=int(data.get("n_defaults_fit", 0)),
        )


def _fit_one(
    method: CalibrationMethod, p: np.ndarray, y: np.ndarray, settings: CalibrationSettings
) -> Calibrator:
    # scikit-learn is imported where it fits: scoring with a stored calibrator (and every
    # stage that only reads params) must not pay for importing it.
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    x_thresholds: tuple[float, ...] = ()
    y_thresholds: tuple[float, ...] = ()
    slope, intercept = 1.0, 0.0
    if method == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(p, y)
        x_thresholds = tuple(float(v) for v in iso.X_thresholds_)
        y_thresholds = tuple(float(v) for v in iso.y_thresholds_)
    elif method == "platt":
        if np.unique(y).size < 2:
            raise ValueError("Platt scaling needs both defaults and non-defaults in the calibration split")
        model = LogisticRegression(C=np.inf, solver="lbfgs", max_iter=1000).fit(_logit(p)[:, None], y)
        slope, intercept = float(model.coef_[0, 0]), float(model.intercept_[0])
        if slope < 0.0:
            # a falling map would reverse the model's ranking; the honest monotone answer is flat
            logger.warning(
                "Platt slope %.4f < 0: the raw PD ranks defaults backwards on the calibration split; "
                "using the constant default rate instead",
                slope,
            )
            slope, intercept = 0.0, float(_logit(np.array([y.mean()]))[0])
    return Calibrator(
        method=method,
        pd_floor=settings.pd_floor,
        pd_cap=settings.pd_cap,
        x_thresholds=x_thresholds,
        y_thresholds=y_thresholds,
        slope=slope,
        intercept=intercept,
        n_fit=len(p),
        n_defaults_fit=int(y.sum()),
    )


def _clipped_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import log_loss

    return float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))


def cross_validated_log_loss(
    pd_raw: npt.ArrayLike, y: npt.ArrayLike, settings: CalibrationSettings, seed: int = 0
) -> dict[str, float]:
    """Out-of-fold log loss of each of ``settings.auto_candidates`` on the calibration split."""
    p = as_pd(pd_raw, "pd_raw")
    labels = as_labels(y, len(p))
    minority = int(min(labels.sum(), len(labels) - labels.sum()))
    if minority < 2:
        raise ValueError(
            f"choosing a calibration method needs at least 2 defaults and 2 non-defaults, "
            f"got {int(labels.sum())} defaults in {len(labels)} rows"
        )
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=min(settings.cv_folds, minority), shuffle=True, random_state=seed)
    out_of_fold = {method: np.empty(len(p)) for method in settings.auto_candidates}
    for fit_rows, held_rows in folds.split(p[:, None], labels):
        for method in settings.auto_candidates:
            fitted = _fit_one(method, p[fit_rows], labels[fit_rows], settings)
            out_of_fold[method][held_rows] = fitted.predict(p[held_rows])
    return {method: _clipped_log_loss(labels, pred) for method, pred in out_of_fold.items()}


def fit_calibrator(
    pd_raw: npt.ArrayLike,
    y: npt.ArrayLike,
    settings: CalibrationSettings | None = None,
    seed: int = 0,
) -> Calibrator:
    """Fit the calibrator on labelled predictions from models that never trained on those rows.

    With ``method="auto"`` the candidates' out-of-fold log losses (see the module docstring)
    are kept in ``Calibrator.candidate_log_loss`` for the report; the lowest wins, an exact tie
    going to the candidate listed first.
    """
    settings = settings or CalibrationSettings()
    p = as_pd(pd_raw, "pd_raw")
    labels = as_labels(y, len(p))
    if len(p) == 0 or np.unique(labels).size < 2:
        raise ValueError(
            f"calibration needs defaults and non-defaults, got {int(labels.sum())} defaults in {len(p)} rows"
        )
    if settings.method != "auto":
        calibrator = _fit_one(settings.method, p, labels, settings)
        logger.info("calibration: %s (fixed in params) on %d rows", settings.method, len(p))
        return calibrator
    losses = cross_validated_log_loss(p, labels, settings, seed)
    best = min(settings.auto_candidates, key=lambda m: losses[m])  # min keeps the first of equals
    logger.info(
        "calibration: %s chosen by cross-validated log loss on %d rows (%s)",
        best,
        len(p),
        ", ".join(f"{m} {v:.5f}" for m, v in losses.items()),
    )
    fitted = _fit_one(best, p, labels, settings)
    return replace(fitted, selection="auto", candidate_log_loss=losses)


def _equal_frequency_bins(p: np.ndarray, bins: int) -> list[np.ndarray]:
    # rows sorted by PD (stable, so ties keep their input order), then cut into equal counts
    order = np.argsort(p, kind="stable")
    return [g for g in np.array_split(order, min(bins, len(p))) if len(g)]


def _ece(p: np.ndarray, target: np.ndarray, groups: list[np.ndarray]) -> tuple[float, float]:
    gaps = np.array([abs(p[g].mean() - target[g].mean()) for g in groups])
    weights = np.array([len(g) for g in groups], dtype=np.float64) / len(p)
    return float(np.sum(weights * gaps)), float(gaps.max())


def calibration_metrics(
    pd_: npt.ArrayLike, y: npt.ArrayLike, true_pd: npt.ArrayLike | None = None, bins: int = 10
) -> dict[str, Any]:
    """Calibration of PDs against outcomes, and against the true PD where it is known.

    ``ece`` is the expected calibration error over ``bins`` equal-frequency PD bins:
    sum over bins of (bin share) * |mean PD - default rate|; ``mce`` the largest bin gap.
    With ``true_pd`` (synthetic data): ``mae_true`` = mean |pd - true_pd| over rows,
    ``rmse_true``, and ``ece_true``, the same binned error with the bin's mean true PD in place
    of its default rate (noise-free, so near 0 for a calibrated model on any sample size).
    """
    from sklearn.metrics import brier_score_loss

    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    p = as_pd(pd_, "pd")
    labels = as_labels(y, len(p))
    if len(p) == 0:
        raise ValueError("calibration metrics need at least one row")
    groups = _equal_frequency_bins(p, bins)
    ece, mce = _ece(p, labels, groups)
    out: dict[str, Any] = {
        "n": len(p),
        "bins": len(groups),
        "default_rate": float(labels.mean()),
        "mean_pd": float(p.mean()),
        "calibration_in_the_large": float(p.mean() - labels.mean()),
        "brier": float(brier_score_loss(labels, p)),
        "log_loss": _clipped_log_loss(labels, p),
        "ece": ece,
        "mce": mce,
    }
    if true_pd is not None:
        truth = as_pd(true_pd, "true_pd")
        if truth.shape != p.shape:
            raise ValueError(f"true_pd and pd differ in length: {len(truth)} against {len(p)}")
        ece_true, mce_true = _ece(p, truth, groups)
        out.update(
            {
                "mean_true_pd": float(truth.mean()),
                "mae_true": float(np.mean(np.abs(p - truth))),
                "rmse_true": float(np.sqrt(np.mean((p - truth) ** 2))),
                "ece_true": ece_true,
                "mce_true": mce_true,
            }
        )
    return out
