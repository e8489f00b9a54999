"""Master scale: K PD grades, the grade table, and the calibration and concentration tests.

Grades
    Grade ``k`` (named ``G{k}``, G1 the lowest PD) holds the PDs in ``(b[k-1], b[k]]`` with
    ``b[0] = 0`` and ``b[K] = 1``: the K-1 boundaries are inclusive upper bounds, and
    ``grade(pd) = searchsorted(boundaries, pd, side="left") + 1``, which never falls when the PD
    rises.

Central PD
    The PD assigned to a grade is the **mean calibrated PD of the fitting rows in that grade**
    (for a calibrated model, the best estimate of the grade's default rate). A grade that
    holds no fitting row gets the geometric mean of its PD range (the midpoint when the range
    starts at 0), with a note.

Fitting the boundaries (:func:`fit_master_scale`)
    Rows are sorted by PD and cut into at most ``candidate_bins`` equal-frequency PD bins
    whose edges only fall between distinct PD values (rows with the same PD always share a
    grade). A grade is a run of adjacent bins; dynamic programming over the bins finds, for
    every K up to ``n_grades``, the partition into K grades that satisfies exactly, on the
    fitting rows:

    - every grade's share of rows is within ``[min_share, max_share]``;
    - observed default rates rise strictly from grade to grade;

    and, among those, maximises the sum over adjacent grades of ``log z``, where ``z`` is the
    two-proportion z statistic of the grades' mean PDs (pooled variance). That favours grades
    whose expected default rates are well separated for their size, so the observed rates stay
    in order on new samples too (a fit to the mean PDs, not to the noise in the outcomes).
    If K grades are infeasible, K is reduced one at a time (logged and kept in
    ``MasterScale.notes``); if no K down to ``ceil(1 / max_share)`` is feasible (heavy ties in
    the PDs, too few defaults), ``max_share`` is dropped and K reduced further, down to a single
    grade, which is always feasible. The search is exhaustive over the bins, so deterministic.
    The cut between two adjacent bins is the geometric mean of the highest PD below it and the
    lowest PD above it.

Tests (:func:`validation_tests`), per grade and for the portfolio
    - **Jeffreys test**, as in the ECB's *Instructions for reporting the validation results of
      internal models* (IRB Pillar I, February 2019, section 2.5.3.1, PD back-testing): with N
      rows and D defaults, the Jeffreys prior Beta(1/2, 1/2) gives the posterior
      Beta(D + 1/2, N - D + 1/2) for the true default rate, and the p-value is that posterior's
      CDF at the grade's PD, i.e. the posterior probability that the true default rate is at or
      below the PD. The test is one-sided: H0 "the PD is not below the true default rate"; a low
      p-value means the PD underestimates the default rate. The ECB prescribes the p-value, not
      a colour; here (``ValidationTestSettings``) p < ``red_p`` (0.01) is red, ``red_p`` <= p <
      ``yellow_p`` (0.05) yellow, p >= 0.05 green. At portfolio level the PD is the mean of the
      rows' assigned PDs.
    - **Exact binomial test** (``scipy.stats.binomtest``, ``alternative="greater"``): P(X >= D)
      for X ~ Bin(N, PD); same direction and thresholds.
    - **Hosmer-Lemeshow** over the non-empty grades: sum of (D - N PD)^2 / (N PD (1 - PD)),
      chi-squared with K - ``hl_df_reduction`` (default 2) degrees of freedom; two-sided in
      effect (over- and underestimation both raise it); same p-value thresholds.
    - **Herfindahl index** of the grade distribution: HI = sum of squared row shares, its
      normalised form (HI - 1/K) / (1 - 1/K), and 1/HI, the "effective number of grades".
      Traffic light on HI: green below ``hhi_yellow`` (0.20, more than 5 effective grades),
      yellow below ``hhi_red`` (0.30, more than 3.3), red from there on.

    The grade's PD is its central PD (``grade_pd="central"``, each row assigned its grade's
    PD, as in a rating system) or the mean PD of the tested rows in the grade
    (``grade_pd="mean"``, when rows keep their own PD).
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scoring.models.calibration import as_labels, as_pd

logger = logging.getLogger(__name__)

FORMAT = "scoring.master_scale"
FORMAT_VERSION = 1
# Relative slack on the share bounds so that, for example, 0.25 * 400 rows admits 100 rows.
_SHARE_SLACK = 1e-9

Flag = Literal["green", "yellow", "red", "n/a"]
FLAG_CODES: dict[str, float] = {"green": 0.0, "yellow": 1.0, "red": 2.0}


class MasterScaleSettings(BaseModel):
    """The master scale: number of grades, fixed boundaries or fitting constraints."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_grades: int = Field(10, ge=1, le=50)
    boundaries: list[float] | None = Field(
        None, description="fixed PD upper bounds of G1..G(K-1), increasing; null = fit them"
    )
    min_share: float = Field(0.01, ge=0.0, lt=1.0, description="smallest share of rows in a fitted grade")
    max_share: float = Field(0.25, gt=0.0, le=1.0, description="largest share of rows in a fitted grade")
    candidate_bins: int = Field(
        100, ge=2, le=400, description="equal-frequency PD bins whose edges are the candidate boundaries"
    )

    @model_validator(mode="after")
    def _consistent(self) -> MasterScaleSettings:
        if self.boundaries is not None:
            b = self.boundaries
            if len(b) != self.n_grades - 1:
                raise ValueError(
                    f"boundaries: expected n_grades - 1 = {self.n_grades - 1} values, got {len(b)}: {b}"
                )
            if any(not 0.0 < v < 1.0 for v in b) or any(lo >= hi for lo, hi in itertools.pairwise(b)):
                raise ValueError(f"boundaries must increase strictly inside (0, 1), got {b}")
            return self
        if self.min_share >= self.max_share:
            raise ValueError(f"min_share ({self.min_share}) must be below max_share ({self.max_share})")
        fewest = math.ceil(1.0 / self.max_share - _SHARE_SLACK)
        if self.n_grades < fewest:
            raise ValueError(
                f"n_grades={self.n_grades} cannot hold every row with max_share={self.max_share}: "
                f"at least {fewest} grades are needed"
            )
        if fewest * self.min_share > 1.0 + _SHARE_SLACK:
            raise ValueError(
                f"min_share={self.min_share} and max_share={self.max_share} admit no number of grades"
            )
        return self


class ValidationTestSettings(BaseModel):
    """Traffic-light thresholds of the calibration and concentration tests."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grade_pd: Literal["central", "mean"] = Field(
        "central", description="PD tested per grade: its central PD, or the mean PD of the tested rows"
    )
    yellow_p: float = Field(0.05, gt=0.0, lt=1.0, description="p-values below this are at least yellow")
    red_p: float = Field(0.01, gt=0.0, lt=1.0, description="p-values below this are red")
    hl_df_reduction: int = Field(2, ge=0, description="Hosmer-Lemeshow degrees of freedom = grades - this")
    hhi_yellow: float = Field(0.20, gt=0.0, le=1.0, description="Herfindahl index from which it is yellow")
    hhi_red: float = Field(0.30, gt=0.0, le=1.0, description="Herfindahl index from which it is red")

    @model_validator(mode="after")
    def _ordered(self) -> ValidationTestSettings:
        if self.red_p >= self.yellow_p:
            raise ValueError(f"red_p ({self.red_p}) must be below yellow_p ({self.yellow_p})")
        if self.hhi_yellow >= self.hhi_red:
            raise ValueError(f"hhi_yellow ({self.hhi_yellow}) must be below hhi_red ({self.hhi_red})")
        return self


# --------------------------------------------------------------------------- inputs


def _json_float(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --------------------------------------------------------------------------- the scale


@dataclass(frozen=True)
class MasterScale:
    """K PD grades: ``boundaries`` (K-1 inclusive upper bounds) and a central PD per grade."""

    boundaries: tuple[float, ...]
    central_pd: tuple[float, ...]
    method: Literal["fitted", "fixed"] = "fitted"
    n_grades_requested: int = 0
    constraints_met: bool = True
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        b = np.asarray(self.boundaries, dtype=np.float64)
        if b.size and ((np.diff(b) <= 0).any() or b[0] < 0.0 or b[-1] > 1.0 or np.isnan(b).any()):
            raise ValueError(
                f"master scale boundaries must increase strictly inside [0, 1], got {b.tolist()}"
            )
        if len(self.central_pd) != len(self.boundaries) + 1:
            raise ValueError(
                f"master scale needs one central PD per grade: {len(self.boundaries) + 1} grades, "
                f"got {len(self.central_pd)} central PDs"
            )
        if any(not 0.0 <= c <= 1.0 for c in self.central_pd):
            raise ValueError(f"central PDs must lie in [0, 1], got {list(self.central_pd)}")

    @property
    def n_grades(self) -> int:
        return len(self.boundaries) + 1

    @property
    def grade_names(self) -> list[str]:
        return [f"G{k}" for k in range(1, self.n_grades + 1)]

    @property
    def pd_ranges(self) -> list[tuple[float, float]]:
        """(low, high] per grade; G1 starts at 0 and the last grade ends at 1."""
        edges = [0.0, *self.boundaries, 1.0]
        return list(itertools.pairwise(edges))

    def grade(self, pd_: npt.ArrayLike) -> np.ndarray:
        """Grade 1..K of each PD; never falls when the PD rises."""
        p = as_pd(pd_)
        cuts = np.asarray(self.boundaries, dtype=np.float64)
        return np.asarray(np.searchsorted(cuts, p, side="left"), dtype=np.int64) + 1

    def assigned_pd(self, pd_: npt.ArrayLike) -> np.ndarray:
        """The central PD of each row's grade."""
        central = np.asarray(self.central_pd, dtype=np.float64)
        return np.asarray(central[self.grade(pd_) - 1], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "grades": self.grade_names,
            "boundaries": list(self.boundaries),
            "central_pd": list(self.central_pd),
            "central_pd_definition": "mean calibrated PD of the fitting rows in the grade",
            "method": self.method,
            "n_grades_requested": self.n_grades_requested,
            "constraints_met": self.constraints_met,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MasterScale:
        if data.get("format") != FORMAT or data.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"not a master scale of format {FORMAT} version {FORMAT_VERSION}: "
                f"got format={data.get('format')!r}, version={data.get('format_version')!r}"
            )
        method = data.get("method", "fitted")
        if method not in ("fitted", "fixed"):
            raise ValueError(f"master scale method must be 'fitted' or 'fixed', got {method!r}")
        return cls(
            boundaries=tuple(float(v) for v in data["boundaries"]),
            central_pd=tuple(float(v) for v in data["central_pd"]),
            method=method,
            n_grades_requested=int(data.get("n_grades_requested", 0)),
            constraints_met=bool(data.get("constraints_met", True)),
            notes=tuple(str(v) for v in data.get("notes", ())),
        )


def _central_pds(p: np.ndarray, boundaries: tuple[float, ...]) -> tuple[tuple[float, ...], list[str]]:
    p = np.sort(p)  # sums in PD order: the same central PDs whatever the row order
    grades = np.searchsorted(np.asarray(boundaries, dtype=np.float64), p, side="left")
    k = len(boundaries) + 1
    counts = np.bincount(grades, minlength=k)
    sums = np.bincount(grades, weights=p, minlength=k)
    edges = [0.0, *boundaries, 1.0]
    central, notes = [], []
    for g in range(k):
        if counts[g]:
            central.append(float(sums[g] / counts[g]))
            continue
        low, high = edges[g], edges[g + 1]
        central.append(math.sqrt(low * high) if low > 0 else high / 2.0)
        notes.append(f"G{g + 1} holds no fitting row: its central PD is the middle of its range")
    return tuple(central), notes


def _shares_and_rates(grades: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.bincount(grades - 1, minlength=k).astype(np.float64)
    defaults = np.bincount(grades - 1, weights=y, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = defaults / counts
    return counts, defaults, rates


def _rates_increase(counts: np.ndarray, defaults: np.ndarray) -> bool:
    # compare d2/n2 > d1/n1 as d2*n1 > d1*n2 (exact on counts), over non-empty grades
    keep = counts > 0
    n, d = counts[keep], defaults[keep]
    return bool(np.all(d[1:] * n[:-1] > d[:-1] * n[1:]))


# --------------------------------------------------------------------------- fitting


def _candidate_edges(sorted_pd: np.ndarray, bins: int) -> np.ndarray:
    """Row positions 0 = e0 < e1 < ... < eM = n of equal-frequency bins cut only between distinct PDs."""
    n = len(sorted_pd)
    group_ends = np.flatnonzero(np.diff(sorted_pd) > 0) + 1  # positions where a new PD value starts
    group_ends = np.append(group_ends, n)
    targets = np.arange(1, bins) * n / bins
    chosen = group_ends[np.minimum(np.searchsorted(group_ends, targets, side="left"), len(group_ends) - 1)]
    return np.unique(np.concatenate([[0], chosen, [n]])).astype(np.int64)


def _pair_value(z: np.ndarray) -> np.ndarray:
    """Value of adjacent grades whose mean PDs differ by ``z`` standard errors (z > 0)."""
    return np.asarray(np.log(z), dtype=np.float64)


def _best_partitions(
    counts: np.ndarray, defaults: np.ndarray, pd_sums: np.ndarray, k_max: int, lo: float, hi: float
) -> dict[int, list[int]]:
    """Best partition of the bins into K = 1..k_max grades, as bin edge indices, where feasible.

    ``counts``, ``defaults``, ``pd_sums`` are prefix sums over M bins (length M + 1); a grade is
    bins [i, j). Value of a partition: sum over adjacent grades of log z (see the module
    docstring); infeasible (share out of bounds, default rate not rising) is -inf.
    """
    m = len(counts) - 1
    n_ij = counts[None, :] - counts[:, None]
    d_ij = defaults[None, :] - defaults[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ij = (pd_sums[None, :] - pd_sums[:, None]) / n_ij
    upper = np.arange(m + 1)[:, None] < np.arange(m + 1)[None, :]
    share_ok = upper & (n_ij >= lo) & (n_ij <= hi)

    value = np.full((m + 1, m + 1), -np.inf)  # value[i, j]: best so far with the last grade [i, j)
    value[0, share_ok[0]] = 0.0
    values, backs = [value], [np.full((m + 1, m + 1), -1, dtype=np.int64)]
    for _ in range(1, k_max):
        new = np.full((m + 1, m + 1), -np.inf)
        back = np.full((m + 1, m + 1), -1, dtype=np.int64)
        for j in range(1, m):
            starts = np.flatnonzero(np.isfinite(value[:j, j]))
            ends = np.flatnonzero(share_ok[j])
            if not starts.size or not ends.size:
                continue
            n1, n2 = n_ij[starts, j][:, None], n_ij[j, ends][None, :]
            m1, m2 = mean_ij[starts, j][:, None], mean_ij[j, ends][None, :]
            rising = d_ij[j, ends][None, :] * n1 > d_ij[starts, j][:, None] * n2
            with np.errstate(invalid="ignore", divide="ignore"):
                pooled = (m1 * n1 + m2 * n2) / (n1 + n2)
                z = (m2 - m1) / np.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2))
                gain = np.where(rising & (z > 0), _pair_value(np.where(z > 0, z, 1.0)), -np.inf)
            total = value[starts, j][:, None] + gain
            best = np.argmax(total, axis=0)  # first of equals: deterministic
            new[j, ends] = total[best, np.arange(len(ends))]
            back[j, ends] = starts[best]
        value = new
        values.append(value)
        backs.append(back)

    found: dict[int, list[int]] = {}
    for k in range(1, k_max + 1):
        last = values[k - 1][:, m]
        if not np.isfinite(last).any():
            continue
        start, end = int(np.argmax(last)), m
        edges = [m]
        for g in range(k - 1, 0, -1):
            edges.append(start)
            start, end = int(backs[g][start, end]), start
        found[k] = sorted([0, *edges])
    return found


def _cut(sorted_pd: np.ndarray, position: int) -> float:
    below, above = float(sorted_pd[position - 1]), float(sorted_pd[position])
    cut = math.sqrt(below * above) if below > 0 else above / 2.0
    return cut if below <= cut < above else below


def fit_master_scale(
    pd_: npt.ArrayLike, y: npt.ArrayLike, settings: MasterScaleSettings | None = None
) -> MasterScale:
    """Master scale from labelled calibrated PDs of rows the model never trained on (held out or out of fold).

    With ``settings.boundaries`` the boundaries are used as given (the fitting rows only set
    the central PDs; unmet share or monotonicity constraints are noted, not corrected).
    Otherwise they are fitted as described in the module docstring.
    """
    settings = settings or MasterScaleSettings()
    p = as_pd(pd_)
    labels = as_labels(y, len(p))
    if len(p) == 0:
        raise ValueError("fitting a master scale needs at least one row")
    k_req = settings.n_grades

    if settings.boundaries is not None:
        boundaries = tuple(float(v) for v in settings.boundaries)
        central, fixed_notes = _central_pds(p, boundaries)
        counts, defaults, _ = _shares_and_rates(
            np.searchsorted(boundaries, p, side="left") + 1, labels, len(boundaries) + 1
        )
        shares = counts / len(p)
        in_bounds = bool(np.all((shares >= settings.min_share) & (shares <= settings.max_share)))
        rising = _rates_increase(counts, defaults)
        if not in_bounds:
            fixed_notes.append("fixed boundaries: some grade shares are outside [min_share, max_share]")
        if not rising:
            fixed_notes.append("fixed boundaries: observed default rates do not rise strictly by grade")
        for note in fixed_notes:
            logger.warning("master scale: %s", note)
        return MasterScale(boundaries, central, "fixed", k_req, in_bounds and rising, tuple(fixed_notes))

    order = np.argsort(p, kind="stable")
    sorted_pd, sorted_y = p[order], labels[order]
    edges = _candidate_edges(sorted_pd, settings.candidate_bins)
    prefix_y = np.concatenate([[0.0], np.cumsum(sorted_y)])
    prefix_p = np.concatenate([[0.0], np.cumsum(sorted_pd)])
    counts_prefix = edges.astype(np.float64)
    n = float(len(p))
    lo = settings.min_share * n * (1 - _SHARE_SLACK)
    hi = settings.max_share * n * (1 + _SHARE_SLACK)

    notes: list[str] = []
    fewest = math.ceil(1.0 / settings.max_share - _SHARE_SLACK)
    found = _best_partitions(counts_prefix, prefix_y[edges], prefix_p[edges], k_req, lo, hi)
    feasible = [k for k in found if k >= fewest]
    constraints_met = bool(feasible)
    if feasible:
        k = max(feasible)
        if k < k_req:
            notes.append(
                f"{k_req} grades cannot have shares in [{settings.min_share}, {settings.max_share}] and "
                f"strictly rising default rates on {len(p)} rows ({int(labels.sum())} defaults): "
                f"reduced to {k} grades"
            )
    else:
        # shares above max_share are forced (heavy ties, too few defaults): drop that bound
        # a single grade always qualifies then (its share, 1, is at least min_share < 1)
        found = _best_partitions(counts_prefix, prefix_y[edges], prefix_p[edges], k_req, lo, n + 1.0)
        found.setdefault(1, [0, len(edges) - 1])
        k = max(found)
        notes.append(
            f"no number of grades from {k_req} down to {fewest} meets min_share={settings.min_share}, "
            f"max_share={settings.max_share} and strictly rising default rates on {len(p)} rows "
            f"({int(labels.sum())} defaults); max_share dropped: {k} grade(s)"
        )
    bins = found[k]
    boundaries = tuple(_cut(sorted_pd, int(edges[b])) for b in bins[1:-1])
    central, empty_notes = _central_pds(p, boundaries)
    notes.extend(empty_notes)
    for note in notes:
        logger.warning("master scale: %s", note)
    scale = MasterScale(boundaries, central, "fitted", k_req, constraints_met, tuple(notes))
    counts, defaults, rates = _shares_and_rates(scale.grade(p), labels, scale.n_grades)
    logger.info(
        "master scale: %d grades; shares %s; default rates %s",
        scale.n_grades,
        np.round(counts / n, 4).tolist(),
        np.round(rates, 4).tolist(),
    )
    return scale


# --------------------------------------------------------------------------- reports


def grade_table(pd_: npt.ArrayLike, y: npt.ArrayLike | None, scale: MasterScale) -> pd.DataFrame:
    """One row per grade: PD range, central PD, count, share, defaults, rates, expected defaults.

    ``expected_defaults`` is the sum of the rows' own PDs; ``expected_defaults_central`` is
    count x central PD. Without labels the observed columns are NaN.
    """
    p = as_pd(pd_)
    grades = scale.grade(p)
    k = scale.n_grades
    labels = np.zeros(len(p)) if y is None else as_labels(y, len(p))
    counts, defaults, rates = _shares_and_rates(grades, labels, k)
    pd_sums = np.bincount(grades - 1, weights=p, minlength=k)
    ranges = scale.pd_ranges
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pd = pd_sums / counts
    central = np.asarray(scale.central_pd)
    table = pd.DataFrame(
        {
            "grade": np.arange(1, k + 1),
            "name": scale.grade_names,
            "pd_low": [r[0] for r in ranges],
            "pd_high": [r[1] for r in ranges],
            "central_pd": central,
            "count": counts.astype(np.int64),
            "share": counts / len(p) if len(p) else np.full(k, np.nan),
            "defaults": defaults if y is not None else np.full(k, np.nan),
            "default_rate": rates if y is not None else np.full(k, np.nan),
            "mean_pd": mean_pd,
            "expected_defaults": pd_sums,
            "expected_defaults_central": counts * central,
        }
    )
    return table


def _flag(p_value: float | None, settings: ValidationTestSettings) -> Flag:
    if p_value is None or not math.isfinite(p_value):
        return "n/a"
    if p_value < settings.red_p:
        return "red"
    if p_value < settings.yellow_p:
        return "yellow"
    return "green"


def jeffreys_p_value(defaults: int, n: int, pd_: float) -> float:
    """Posterior probability, under the Jeffreys prior, that the true default rate is <= ``pd_``.

    ``Beta(D + 1/2, N - D + 1/2).cdf(PD)`` (ECB instructions, 2019, section 2.5.3.1). Low values
    mean the PD underestimates the default rate.
    """
    if n <= 0:
        raise ValueError(f"the Jeffreys test needs at least one row, got n={n}")
    if not 0 <= defaults <= n:
        raise ValueError(f"defaults must lie in [0, n={n}], got {defaults}")
    from scipy.stats import beta  # imported here: params parsing imports this module

    return float(beta.cdf(pd_, defaults + 0.5, n - defaults + 0.5))


def _point_tests(defaults: int, n: int, pd_: float, settings: ValidationTestSettings) -> dict[str, Any]:
    if n == 0:
        return {
            "pd": _json_float(pd_),
            "jeffreys_p": None,
            "jeffreys_flag": "n/a",
            "binomial_p": None,
            "binomial_flag": "n/a",
        }
    jeffreys = jeffreys_p_value(defaults, n, pd_)
    from scipy.stats import binomtest

    binomial = float(binomtest(defaults, n, min(max(pd_, 0.0), 1.0), alternative="greater").pvalue)
    return {
        "pd": float(pd_),
        "jeffreys_p": jeffreys,
        "jeffreys_flag": _flag(jeffreys, settings),
        "binomial_p": binomial,
        "binomial_flag": _flag(binomial, settings),
    }


def herfindahl(counts: npt.ArrayLike) -> dict[str, float | None]:
    """Herfindahl index of a distribution of counts, its normalised form and 1 / HI."""
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum()
    if total <= 0:
        return {"index": None, "normalised": None, "effective_grades": None}
    hi = float(np.sum((c / total) ** 2))
    k = len(c)
    normalised = (hi - 1.0 / k) / (1.0 - 1.0 / k) if k > 1 else 1.0
    return {"index": hi, "normalised": float(normalised), "effective_grades": 1.0 / hi}


def validation_tests(
    pd_: npt.ArrayLike,
    y: npt.ArrayLike,
    scale: MasterScale,
    settings: ValidationTestSettings | None = None,
) -> dict[str, Any]:
    """Jeffreys and binomial tests per grade and for the portfolio, Hosmer-Lemeshow over the
    grades and the Herfindahl index of the grade distribution, with traffic lights.

    Everything is JSON-ready (no NaN: missing values are None). Conventions: module docstring.
    """
    settings = settings or ValidationTestSettings()
    p = as_pd(pd_)
    labels = as_labels(y, len(p))
    if len(p) == 0:
        raise ValueError("validation tests need at least one row")
    grades = scale.grade(p)
    k = scale.n_grades
    counts, defaults, rates = _shares_and_rates(grades, labels, k)
    if settings.grade_pd == "central":
        assigned = np.asarray(scale.central_pd, dtype=np.float64)[grades - 1]
    else:
        assigned = p
    assigned_sums = np.bincount(grades - 1, weights=assigned, minlength=k)

    per_grade: list[dict[str, Any]] = []
    hl_stat, hl_groups = 0.0, 0
    for g in range(k):
        n_g, d_g = int(counts[g]), int(defaults[g])
        pd_g = assigned_sums[g] / n_g if n_g else scale.central_pd[g]
        entry = {
            "grade": g + 1,
            "name": f"G{g + 1}",
            "n": n_g,
            "share": n_g / len(p),
            "defaults": d_g,
            "default_rate": _json_float(rates[g]),
            **_point_tests(d_g, n_g, pd_g, settings),
        }
        per_grade.append(entry)
        if n_g:
            pi = min(max(pd_g, 1e-12), 1 - 1e-12)
            hl_stat += (d_g - n_g * pi) ** 2 / (n_g * pi * (1 - pi))
            hl_groups += 1

    hl_df = hl_groups - settings.hl_df_reduction
    from scipy.stats import chi2

    hl_p = float(chi2.sf(hl_stat, hl_df)) if hl_df > 0 else None
    portfolio_pd = float(assigned.mean())
    n_defaults = int(labels.sum())
    portfolio = {
        "n": len(p),
        "defaults": n_defaults,
        "default_rate": n_defaults / len(p),
        **_point_tests(n_defaults, len(p), portfolio_pd, settings),
    }
    concentration = herfindahl(counts)
    index = concentration["index"]
    hhi_flag: Flag = "n/a"
    if index is not None:
        hhi_flag = (
            "red" if index >= settings.hhi_red else "yellow" if index >= settings.hhi_yellow else "green"
        )

    def tally(key: str) -> dict[str, int]:
        flags = [entry[key] for entry in per_grade]
        return {colour: flags.count(colour) for colour in ("green", "yellow", "red", "n/a")}

    return {
        "settings": settings.model_dump(),
        "n_grades": k,
        "grade_pd": settings.grade_pd,
        "grades": per_grade,
        "portfolio": portfolio,
        "hosmer_lemeshow": {
            "statistic": float(hl_stat),
            "df": hl_df,
            "p_value": hl_p,
            "flag": _flag(hl_p, settings),
            "groups": hl_groups,
        },
        "herfindahl": {**concentration, "flag": hhi_flag},
        "default_rates_increasing": _rates_increase(counts, defaults),
        "summary": {"jeffreys": tally("jeffreys_flag"), "binomial": tally("binomial_flag")},
    }


def flat_metrics(report: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric headline figures of a :func:`validation_tests` report (for DVC metrics and MLflow).

    Flags become numbers: green 0, yellow 1, red 2 (n/a is left out).
    """
    out: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if isinstance(value, str):
            if value in FLAG_CODES:
                out[prefix + name] = FLAG_CODES[value]
        elif isinstance(value, int | float) and math.isfinite(value):
            out[prefix + name] = float(value)

    for colour in ("green", "yellow", "red"):
        put(f"jeffreys_{colour}", report["summary"]["jeffreys"][colour])
        put(f"binomial_{colour}", report["summary"]["binomial"][colour])
    for key in ("jeffreys_p", "jeffreys_flag", "binomial_p", "binomial_flag", "default_rate", "pd"):
        put(f"portfolio_{key}", report["portfolio"][key])
    put("hosmer_lemeshow_statistic", report["hosmer_lemeshow"]["statistic"])
    put("hosmer_lemeshow_p", report["hosmer_lemeshow"]["p_value"])
    put("hosmer_lemeshow_flag", report["hosmer_lemeshow"]["flag"])
    put("herfindahl", report["herfindahl"]["index"])
    put("herfindahl_normalised", report["herfindahl"]["normalised"])
    put("herfindahl_flag", report["herfindahl"]["flag"])
    put("default_rates_increasing", report["default_rates_increasing"])
    for entry in report["grades"]:
        put(f"{entry['name']}_jeffreys_p", entry["jeffreys_p"])
        put(f"{entry['name']}_jeffreys_flag", entry["jeffreys_flag"])
    return out
