"""The out-of-fold predictions the champion rule reads and calibration is fitted on are really
out of fold (issue 14, item 4).

Unlike tests/test_champion.py, no expected value here comes from the functions under test:

* Random labels (independent of every feature) must give an out-of-fold AUC near 0.5 for every
  built-in candidate and the blend, although the boosted ones fit the same noise almost
  perfectly in sample: a fold that is scored on rows it was fitted on would show.
* A memorising candidate, registered here through the registry, remembers the label of every
  row it is fitted on (keyed by a row-identity column) and answers ``probe``, a column drawn
  independently of the labels, for every row it has not seen. Out of fold it must therefore
  return ``probe`` exactly, on every row and in row order; fitted on all rows it ranks them
  perfectly (AUC 1). Two deliberately leaky fold splitters show the same assertions fail once
  evaluation rows enter the fit.

* Customers are kept whole: keyed by customer instead of row, the memoriser must still answer
  ``probe`` on every row when the folds are grouped by customer (and does not when they are not).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from pydantic import BaseModel, Field
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from scoring.core.settings import StrictModel
from scoring.features.transformer import ApplicationFeatures
from scoring.models.candidate import (
    CANDIDATES_PACKAGE,
    CandidatePlugin,
    FitContext,
    FrameArrayPath,
    binary_labels,
    frame_contributions,
    register,
    registered,
    unregister,
)
from scoring.models.candidates.blend import blend_log_odds
from scoring.models.candidates.xgboost import XGBoostDefaultsConfig
from scoring.models.config import ChampionConfig, ScorecardConfig, TrainConfig, XGBoostConfig
from scoring.models.training import (
    Candidate,
    FitOn,
    decide_champion,
    fit_candidates,
    out_of_fold_log_odds,
)

Array = npt.NDArray[np.float64]

N_ROWS = 4000
BAD_RATE = 0.3
FOLDS = 5
SEED = 7
KEY = "row_key"  # row identity: what the memoriser remembers a label by
PROBE = "probe"  # what the memoriser answers for a row it was not fitted on
MEMO = "oof_memoriser"

# Settings that let every fitted candidate fit noise in a few seconds; the others keep their
# defaults. The challenger comes settled (no early stopping, a fixed round count) as
# out_of_fold_log_odds expects it; at its params defaults (2000 rounds to be early-stopped) its
# folds would be slow. One XGBoost thread: two on two shared cores made xgboost_defaults' five
# folds take 10 s instead of 1 s.
SETTINGS: dict[str, BaseModel] = {
    "scorecard": ScorecardConfig(min_iv=0.0, max_n_bins=5),  # min_iv 0: noise has no IV to pass 0.02
    "xgboost": XGBoostConfig(n_estimators=100, learning_rate=0.3, early_stopping_rounds=None, n_jobs=1),
    "xgboost_defaults": XGBoostDefaultsConfig(n_jobs=1),
}
# In-sample AUC the boosted candidates reach on pure noise (fitted and scored on the same rows):
# were a fold scored on rows it was fitted on, its out-of-fold AUC would move towards these.
# The scorecard (binned WoE + logistic regression) cannot memorise (in sample ~0.55): the
# memorising candidate below covers the protocol where it cannot.
# Bounds well below what they reach (xgboost 0.90, xgboost_defaults 0.999, lightgbm 0.99).
MEMORISING = {"xgboost": 0.8, "xgboost_defaults": 0.95, "lightgbm": 0.95}


def null_auc_se(y: npt.ArrayLike) -> float:
    """The standard error of the AUC of scores independent of the labels: the Mann-Whitney U null
    variance n0 n1 (n0 + n1 + 1) / 12, over (n0 n1)^2. Ties (the scorecard's few distinct scores)
    only make it smaller, so the bound is conservative."""
    labels = np.asarray(y, dtype=np.float64)
    n1 = float(labels.sum())
    n0 = float(len(labels)) - n1
    return math.sqrt((n0 + n1 + 1.0) / (12.0 * n0 * n1))


def tolerance(y: npt.ArrayLike) -> float:
    """4 standard errors of the null AUC (about 0.04 for 4000 rows at a 30% bad rate).

    The seeds are fixed, so this only has to absorb library changes: a two-sided 4-sigma band is
    left by chance with probability ~6e-5 per candidate, wide enough for the blend too, whose
    AUC is the best of 11 weights (and of its two possible second parts) chosen on these same
    out-of-fold log-odds, hence biased upwards by about 1-2 standard errors under the null. A
    leak is far outside it (the leaky splitters below give AUC 0.9 to 1.0).
    """
    return 4.0 * null_auc_se(y)


def auc(y: npt.ArrayLike, score: npt.ArrayLike) -> float:
    return float(roc_auc_score(np.asarray(y), np.asarray(score)))


def noise_frame(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Numeric, skewed-with-missing and categorical features, a unique row key and the probe;
    labels drawn independently of all of them. The index is scrambled (not 0..n-1), so a
    prediction landing on the wrong row, or an index used as a position, shows."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(3)})
    X["skewed"] = np.where(rng.uniform(size=n) < 0.2, np.nan, rng.gamma(2.0, size=n))
    X["region"] = pd.Categorical(rng.choice(["n", "s", "e", "w", "c"], size=n))
    X[KEY] = rng.permutation(n).astype(np.int64) + 1_000_000 * seed
    X[PROBE] = rng.normal(size=n)
    X.index = pd.Index(rng.permutation(n) * 3 + 5)
    y = pd.Series((rng.uniform(size=n) < BAD_RATE).astype(np.int64), index=X.index)
    return X, y


# --------------------------------------------------------------------------- the memorising candidate


class MemoConfig(StrictModel):
    margin: float = Field(8.0, gt=0.0, description="|log-odds| for a remembered row; |probe| stays far below")


@dataclass
class MemoModel:
    """Remembers each fitted row's label by its ``KEY``; answers ``PROBE`` for any other row."""

    labels: dict[int, int]
    margin: float

    def log_odds(self, matrix: pd.DataFrame) -> Array:
        remembered = pd.Series(self.labels, dtype=np.float64).reindex(matrix[KEY].to_numpy()).to_numpy()
        probe = matrix[PROBE].to_numpy(dtype=np.float64)
        return np.where(np.isnan(remembered), probe, self.margin * (2.0 * remembered - 1.0))

    def predict_pd(self, matrix: pd.DataFrame) -> Array:
        return np.asarray(1.0 / (1.0 + np.exp(-self.log_odds(matrix))), dtype=np.float64)

    def contributions(self, matrix: pd.DataFrame) -> pd.DataFrame:
        values = np.zeros((len(matrix), matrix.shape[1] + 1))
        values[:, -1] = self.log_odds(matrix)
        return frame_contributions(values, matrix)

    def array_path(self, features: ApplicationFeatures) -> FrameArrayPath:
        return FrameArrayPath(self, features)

    def save(self, folder: Path) -> None:
        text = json.dumps({"labels": {str(k): v for k, v in self.labels.items()}, "margin": self.margin})
        (folder / "memo.json").write_text(text, encoding="utf-8")


class MemoPlugin(CandidatePlugin):
    name = MEMO
    settings_type = MemoConfig
    files = ("memo.json",)

    def fit(self, settings: MemoConfig, X: pd.DataFrame, y: pd.Series, context: FitContext) -> MemoModel:
        labels = binary_labels(y, "train").astype(np.int64)
        return MemoModel(dict(zip(X[KEY].tolist(), labels.tolist(), strict=True)), settings.margin)

    def load(self, folder: Path) -> MemoModel:
        data: dict[str, Any] = json.loads((folder / "memo.json").read_text(encoding="utf-8"))
        return MemoModel({int(k): int(v) for k, v in data["labels"].items()}, float(data["margin"]))


@pytest.fixture
def memoriser() -> Iterator[Candidate]:
    """The memorising candidate, registered under MEMO for the test (TrainConfig looks it up)."""
    found = register(MemoPlugin())
    try:
        yield Candidate(MEMO, found, MemoConfig())
    finally:
        unregister(MEMO)


def builtin_candidates() -> list[Candidate]:
    """Every plug-in of scoring.models.candidates (a new one joins automatically, at its default
    settings), fitted ones first, then the combiners (the blend: scorecard and the best other)."""
    config = TrainConfig(candidates=["scorecard"])
    found = [
        Candidate(name, p, SETTINGS.get(name) or config.candidate_settings(name))
        for name, p in sorted(registered().items())
        if type(p).__module__.startswith(f"{CANDIDATES_PACKAGE}.")
    ]
    return sorted(found, key=lambda c: c.is_combiner)


@pytest.fixture(scope="module")
def noise() -> tuple[pd.DataFrame, pd.Series]:
    return noise_frame(N_ROWS, 1)


# --------------------------------------------------------------------------- random labels


def test_random_labels_give_out_of_fold_auc_near_one_half_for_every_candidate(
    noise: tuple[pd.DataFrame, pd.Series],
) -> None:
    X, y = noise
    candidates = builtin_candidates()
    names = [c.name for c in candidates]
    assert {"scorecard", "xgboost", "xgboost_defaults", "lightgbm", "blend"} <= set(names)
    context = FitContext(SEED)
    labels = y.to_numpy(dtype=np.float64)
    tol = tolerance(labels)
    assert 0.035 < tol < 0.045  # 4 x ~0.0100 for 1200 bads and 2800 goods

    oof = out_of_fold_log_odds(X, y, candidates, context, FOLDS)
    decision, _, log_odds = decide_champion(labels, oof, candidates, ChampionConfig(), "cv")
    assert set(decision.auc) == set(names)
    for name in names:
        assert np.isfinite(log_odds[name]).all() and np.unique(log_odds[name]).size > 1, name
        out_of_fold = auc(labels, log_odds[name])
        assert out_of_fold == pytest.approx(decision.auc[name], abs=1e-12), name
        assert abs(out_of_fold - 0.5) < tol, f"{name}: out-of-fold AUC {out_of_fold:.4f} on random labels"

    # The same candidates fit this noise almost perfectly in sample, so an evaluation row that
    # entered its fold's fit would pull the out-of-fold AUC far outside the band above.
    by_name = {c.name: c for c in candidates}
    for name, least in MEMORISING.items():
        candidate = by_name[name]
        assert isinstance(candidate.plugin, CandidatePlugin)
        model = candidate.plugin.fit(candidate.settings, X, y, context)
        assert auc(labels, model.log_odds(X)) > least, f"{name} does not memorise noise in sample"


# --------------------------------------------------------------------------- the memorising probe


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_memorised_labels_never_reach_the_rows_a_fold_is_evaluated_on(
    noise: tuple[pd.DataFrame, pd.Series], memoriser: Candidate, n_jobs: int
) -> None:
    X, y = noise
    labels = y.to_numpy(dtype=np.float64)
    context = FitContext(SEED)
    oof = out_of_fold_log_odds(X, y, [memoriser], context, FOLDS, n_jobs=n_jobs)[MEMO]
    # Every row was written (the array starts at 0.0), by a fold model that had not seen it (a
    # remembered row would read +-8), and in its own position.
    np.testing.assert_array_equal(oof, X[PROBE].to_numpy())
    assert abs(auc(labels, oof) - 0.5) < tolerance(labels)
    # Fitted on the rows it is scored on, the same candidate ranks them perfectly.
    assert isinstance(memoriser.plugin, CandidatePlugin)
    in_sample = memoriser.plugin.fit(memoriser.settings, X, y, context)
    assert auc(labels, in_sample.log_odds(X)) == 1.0


class _LeakyFolds:
    """A fold splitter with a bug: the stratified folds, but each fold's evaluation rows also
    in its fit ("eval_in_fit"), or each fit paired with the next fold's evaluation rows
    ("rotated": a fold-index mix-up; those rows are in the fit)."""

    def __init__(self, bug: str, **kwargs: Any) -> None:
        self.bug = bug
        self.folds = StratifiedKFold(**kwargs)

    def split(self, X: Any, y: Any, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        splits = list(self.folds.split(X, y))
        for k, (fit, ev) in enumerate(splits):
            if self.bug == "eval_in_fit":
                yield np.sort(np.concatenate([fit, ev])), ev
            else:
                yield fit, splits[(k + 1) % len(splits)][1]


@pytest.mark.parametrize("bug", ["eval_in_fit", "rotated"])
def test_the_probes_catch_evaluation_rows_entering_the_fit(
    noise: tuple[pd.DataFrame, pd.Series], memoriser: Candidate, monkeypatch: pytest.MonkeyPatch, bug: str
) -> None:
    """The assertions above can fail: with a leaky splitter in place of StratifiedKFold (which
    out_of_fold_log_odds imports from sklearn.model_selection when called), the memoriser's
    out-of-fold AUC is 1 and a boosted candidate's leaves the random-label band by far."""
    X, y = noise
    labels = y.to_numpy(dtype=np.float64)
    booster = next(c for c in builtin_candidates() if c.name == "xgboost_defaults")
    monkeypatch.setattr(
        "sklearn.model_selection.StratifiedKFold", lambda **kwargs: _LeakyFolds(bug, **kwargs)
    )
    oof = out_of_fold_log_odds(X, y, [memoriser, booster], FitContext(SEED), FOLDS)
    assert auc(labels, oof[MEMO]) == 1.0
    assert not np.array_equal(oof[MEMO], X[PROBE].to_numpy())
    assert auc(labels, oof["xgboost_defaults"]) > 0.5 + 10 * tolerance(labels)


# --------------------------------------------------------------------------- the whole protocol


@pytest.mark.parametrize("fit_on", ["train_valid", "train"])
def test_the_champion_and_calibration_read_predictions_from_models_not_fitted_on_the_row(
    memoriser: Candidate, fit_on: FitOn
) -> None:
    """fit_candidates end to end (the challenger early-stopped on valid, the blend's weight
    chosen, the final refit): the champion's AUC and every calibration column come from models
    that never saw the row, over train+valid pooled (train_valid) or on valid (train)."""
    X_tr, y_tr = noise_frame(2000, 2)
    X_va, y_va = noise_frame(700, 3)
    config = TrainConfig(
        candidates=[MEMO, "xgboost", "blend"],
        candidate_params={"blend": {"parts": [MEMO, "best"]}},
        xgboost=XGBoostConfig(n_estimators=60, learning_rate=0.3, early_stopping_rounds=10, n_jobs=1),
        champion=ChampionConfig(cv_folds=3),
        fit_on=fit_on,
    )
    fitted = fit_candidates(X_tr, y_tr, X_va, y_va, config, seed=SEED)
    cal = fitted.calibration
    if fit_on == "train_valid":  # chosen out of fold over the pooled rows, calibrated there too
        pooled = pd.concat([X_tr, X_va], ignore_index=True)
        pooled_y = np.concatenate([y_tr, y_va])
        (fit_rows, fit_y), (held_out, held_out_y) = (pooled, pooled_y), (pooled, pooled_y)
    else:  # chosen out of fold over train, calibrated on valid, which the final models never saw
        (fit_rows, fit_y), (held_out, held_out_y) = (X_tr, y_tr.to_numpy()), (X_va, y_va.to_numpy())

    # The rule read the memoriser's out-of-fold answers: the probe over the rows it was fitted on.
    assert fitted.decision.n_rows == len(fit_rows)
    assert fitted.decision.auc[MEMO] == pytest.approx(auc(fit_y, fit_rows[PROBE]), abs=1e-12)
    assert abs(fitted.decision.auc[MEMO] - 0.5) < tolerance(fit_y)
    # Calibration rows: the probe again, row by row, for the memoriser and the blend built on it.
    np.testing.assert_array_equal(cal["target"], held_out_y)
    np.testing.assert_array_equal(cal[MEMO], held_out[PROBE].to_numpy())
    weight = fitted.decision.details["blend"]["weight"]
    assert fitted.decision.details["blend"]["parts"] == [MEMO, "xgboost"]
    np.testing.assert_array_equal(cal["blend"], blend_log_odds(cal[MEMO], cal["xgboost"], weight))
    for name in (MEMO, "xgboost", "blend", "champion"):
        assert abs(auc(held_out_y, cal[name]) - 0.5) < tolerance(held_out_y), name
    # The exported memoriser saw the fit rows: its predictions there would have been perfect.
    assert auc(fit_y, fitted.models[MEMO].log_odds(fit_rows)) == 1.0


# --------------------------------------------------------------------------- customers kept whole


def test_grouped_folds_never_score_a_row_with_a_model_fitted_on_the_same_customer(
    memoriser: Candidate,
) -> None:
    """Keyed by customer (three applications each), the memoriser remembers a customer seen in
    the fit: with the customer as the fold group it never answers from memory out of fold; with
    plain row folds it does (the check can fail)."""
    X, y = noise_frame(3000, 4)
    customers = np.repeat(np.arange(1000), 3)
    X[KEY] = np.random.default_rng(5).permutation(customers)
    context = FitContext(SEED)
    grouped = out_of_fold_log_odds(X, y, [memoriser], context, FOLDS, groups=X[KEY])[MEMO]
    np.testing.assert_array_equal(grouped, X[PROBE].to_numpy())
    by_row = out_of_fold_log_odds(X, y, [memoriser], context, FOLDS)[MEMO]
    assert (by_row != X[PROBE].to_numpy()).mean() > 0.5
