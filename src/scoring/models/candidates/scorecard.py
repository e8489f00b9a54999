"""The points scorecard: optimal binning, WoE and a logistic regression (scoring.models.scorecard).

The baseline every challenger is measured against; stored as scorecard.json. Contributions
are coefficient x WoE per selected feature (0 for the rest), the intercept as ``bias``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from scoring.models.candidate import CandidatePlugin, FitContext, FittedModel, binary_labels, register
from scoring.models.config import ScorecardConfig
from scoring.models.scorecard import SCORECARD_FILE, ScorecardModel

if TYPE_CHECKING:
    from scoring.models.scorecard import ScorecardSettings


def train_scorecard(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    config: ScorecardConfig,
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]],
    seed: int,
    weight: pd.Series | None = None,
) -> ScorecardModel:
    """The points scorecard on the same feature matrix as the challengers."""
    from scoring.models.scorecard import fit_scorecard

    candidates = X_train.drop(columns=[c for c in config.exclude_features if c in X_train.columns])
    settings = scorecard_settings(config, monotone_risk, candidates)
    labels = pd.Series(binary_labels(y_train, "train"), index=candidates.index)
    return fit_scorecard(candidates, labels, settings, seed, None if weight is None else weight.to_numpy())


def scorecard_settings(
    config: ScorecardConfig,
    monotone_risk: Mapping[str, Literal["increasing", "decreasing"]],
    candidates: pd.DataFrame,
) -> ScorecardSettings:
    """The fit's settings from params' ``train.scorecard``: the declared risk directions become
    the numeric candidates' monotonic trends."""
    from scoring.models.scorecard import ScorecardSettings

    trends = {
        name: "ascending" if way == "increasing" else "descending"
        for name, way in monotone_risk.items()
        if name in candidates.columns and not isinstance(candidates[name].dtype, pd.CategoricalDtype)
    }
    return ScorecardSettings(
        pdo=config.pdo,
        base_score=config.base_score,
        base_odds=config.base_odds,
        min_iv=config.min_iv,
        max_n_bins=config.max_n_bins,
        min_bin_size=config.min_bin_size,
        monotonic_trends=trends,
        C=config.C,
        max_features=config.max_features,
        max_n_prebins=config.max_n_prebins,
        max_correlation=config.max_correlation,
        overrides=dict(config.overrides),
        consistent_signs=config.consistent_signs,
    )


class ScorecardPlugin(CandidatePlugin):
    name = "scorecard"
    params_section = "scorecard"
    settings_type = ScorecardConfig
    files = (SCORECARD_FILE,)
    contributions_method = "scorecard coefficient x WoE per feature"
    takes_weights = True

    def fit(
        self,
        settings: ScorecardConfig,
        X: pd.DataFrame,
        y: pd.Series,
        context: FitContext,
        weight: pd.Series | None = None,
    ) -> ScorecardModel:
        return train_scorecard(X, y, settings, context.monotone_risk, context.seed, weight)

    def describe(self, model: FittedModel) -> dict[str, Any]:
        assert isinstance(model, ScorecardModel)
        return {"n_features": len(model.selected_features)}

    def load(self, folder: Path) -> ScorecardModel:
        import json

        return ScorecardModel.from_dict(json.loads((folder / SCORECARD_FILE).read_text(encoding="utf-8")))


register(ScorecardPlugin())
