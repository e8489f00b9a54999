"""Typed params of the candidates, tuning and the training protocol."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from scoring.core.settings import StrictModel
from scoring.data.legacy_policy import LegacyPolicyConfig
from scoring.models.scorecard_bins import BinOverride


class XGBoostConfig(StrictModel):
    n_estimators: int = Field(2000, ge=1, description="upper bound; early stopping picks the number")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    max_depth: int = Field(4, ge=1, le=16)
    min_child_weight: float = Field(5.0, ge=0.0)
    subsample: float = Field(0.8, gt=0.0, le=1.0)
    colsample_bytree: float = Field(0.8, gt=0.0, le=1.0)
    reg_lambda: float = Field(1.0, ge=0.0)
    reg_alpha: float = Field(0.0, ge=0.0)
    max_cat_to_onehot: int = Field(8, ge=1)
    early_stopping_rounds: int | None = Field(
        100, ge=1, description="rounds without improvement on valid before stopping; null: no early stopping"
    )
    n_jobs: int = Field(2, ge=1, description="threads; results are identical for any value")


class SearchDimensionConfig(StrictModel):
    low: float
    high: float
    log: bool = False
    kind: Literal["float", "int"] = "float"


def _default_search_space() -> dict[str, SearchDimensionConfig]:
    return {
        "learning_rate": SearchDimensionConfig(low=0.05, high=0.3, log=True),
        "max_depth": SearchDimensionConfig(low=2, high=10, kind="int"),
        "min_child_weight": SearchDimensionConfig(low=0.1, high=50.0, log=True),
        "subsample": SearchDimensionConfig(low=0.5, high=1.0),
        "colsample_bytree": SearchDimensionConfig(low=0.4, high=1.0),
        "reg_lambda": SearchDimensionConfig(low=1e-3, high=50.0, log=True),
        "reg_alpha": SearchDimensionConfig(low=1e-3, high=10.0, log=True),
    }


class TuneConfig(StrictModel):
    """Optuna search over the challenger's hyper-parameters, on the training split only."""

    enabled: bool = True
    n_trials: int = Field(25, ge=1, description="finished trials the study holds; a larger number resumes it")
    timeout_seconds: float | None = Field(
        None,
        gt=0.0,
        description="optional wall-clock limit per run; when it stops the search, the tuned file and the "
        "log say so (null: the trial count alone decides, so a busy machine trains the same model)",
    )
    objective: Literal["cv", "valid"] = Field(
        "cv", description="cv: folds inside train (customers kept whole); valid: score on the valid split"
    )
    cv_folds: int = Field(3, ge=2)
    metric: Literal["auc", "logloss"] = "auc"
    pruning: bool = True
    n_startup_trials: int = Field(8, ge=1)
    max_boost_rounds: int = Field(1000, ge=1)
    early_stopping_rounds: int = Field(30, ge=1)
    study_name: str = Field("xgboost-challenger", pattern=r"^[A-Za-z0-9_.-]+$")
    storage: str = Field(
        "models/tuning/study.journal",
        description="a journal file (shared by local workers), or an RDB url (sqlite:///, postgresql://)",
    )
    space: dict[str, SearchDimensionConfig] = Field(default_factory=_default_search_space)
    max_rows: int | None = Field(
        20_000,
        ge=100,
        description="the trials read a stratified sample of about this many training rows (customers "
        "kept whole) when train is larger; null: all rows. The final model trains on all of them",
    )

    @model_validator(mode="after")
    def _space_names_are_settings(self) -> TuneConfig:
        unknown = sorted(set(self.space) - set(XGBoostConfig.model_fields))
        if unknown:
            raise ValueError(f"space: {unknown} are not XGBoost settings; expected names from train.xgboost")
        return self


class ScorecardConfig(StrictModel):
    """The points scorecard baseline (optbinning binning, WoE, logistic regression)."""

    pdo: float = Field(20.0, gt=0.0, description="points to double the odds")
    base_score: float = 600.0
    base_odds: float = Field(50.0, gt=0.0, description="good:bad odds at base_score")
    min_iv: float = Field(0.02, ge=0.0, description="features with a lower information value are dropped")
    max_features: int | None = Field(None, ge=1)
    max_n_bins: int = Field(6, ge=2)
    min_bin_size: float = Field(0.05, gt=0.0, lt=0.5)
    max_n_prebins: int = Field(20, ge=2)
    C: float = Field(1.0, gt=0.0, description="inverse regularisation of the logistic regression")
    max_correlation: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="null: no correlation filter; else, going down the IV ranking, a feature whose WoE "
        "correlates with a stronger kept one's beyond this (|r|) is dropped",
    )
    consistent_signs: bool = Field(
        True,
        description="the sign rule: a characteristic whose coefficient runs against risk (a riskier "
        "bin earning more points) is removed and the scorecard refitted, until none is left; an "
        "analyst's keep override holds one, flagged on every page",
    )
    exclude_features: list[str] = Field(
        default_factory=lambda: ["thin_file"],
        description="features the scorecard leaves out (thin_file repeats bureau_score's missing bin)",
    )
    bins_file: str | None = Field(
        "scorecard_bins.yaml",
        description="the analysts' bin overrides (docs/scorecard.md); the entries under data.source's "
        "section apply; null: none. A DVC dependency of train at its default path",
    )
    overrides: dict[str, BinOverride] = Field(
        default_factory=dict,
        exclude=True,
        description="the entries of bins_file, filled in by the train stage (with_bin_overrides); for "
        "programmatic use, not a params key",
    )


class ChampionConfig(StrictModel):
    """The champion among ``train.candidates``.

    Candidates in their listed order, simplest first. The one with the highest AUC on the
    selection data wins, unless a simpler one is within ``min_auc_gain`` of it (or ties with
    it): then the simplest such one does.
    """

    selection: Literal["cv", "valid"] = Field(
        "cv",
        description="cv: out-of-fold AUC over the rows the final models are fitted on (both models "
        "refitted per fold); valid: AUC on the validation split (only with train.fit_on: train)",
    )
    cv_folds: int = Field(5, ge=2, description="stratified folds of the cv selection")
    min_auc_gain: float = Field(
        0.0, ge=0.0, description="AUC a more complex candidate must gain over a simpler one to be champion"
    )
    n_jobs: int = Field(1, ge=1, description="processes fitting the cv folds; the choice is the same for any")


RESERVED_NAMES = frozenset({"split", "target", "champion"})  # columns of the calibration set


def _default_candidates() -> list[str]:
    return ["scorecard", "xgboost", "blend"]


class TrainConfig(StrictModel):
    candidates: list[str] = Field(
        default_factory=_default_candidates,
        min_length=1,
        description="the candidates trained (plug-ins of scoring.models.candidates), simplest first: "
        "the champion rule keeps the earlier of two that tie",
    )
    candidate_params: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="candidate -> its settings (checked against the plug-in's own schema); "
        "scorecard and xgboost read theirs from train.scorecard and train.xgboost",
    )
    monotone_risk: dict[str, Literal["increasing", "decreasing"]] = Field(
        default_factory=dict,
        description="feature -> direction of default risk as the value rises; both models honour it",
    )
    xgboost: XGBoostConfig = XGBoostConfig()
    scorecard: ScorecardConfig = ScorecardConfig()
    champion: ChampionConfig = ChampionConfig()
    fit_on: Literal["train_valid", "train"] = Field(
        "train_valid",
        description="rows the exported models are fitted on. train_valid: train and valid together, "
        "after early stopping on valid has fixed the challenger's round count; calibration and the "
        "master scale are then fitted on the champion's out-of-fold predictions over those rows. "
        "train: the models never see valid, and calibration is fitted on valid",
    )

    @model_validator(mode="after")
    def _selection_fits_the_rows(self) -> TrainConfig:
        if self.fit_on == "train_valid" and self.champion.selection != "cv":
            raise ValueError(
                f"train.champion.selection={self.champion.selection!r} with train.fit_on='train_valid': "
                "a choice on the valid split cannot stand once the models are refitted on it; "
                "expected selection 'cv' (out-of-fold over train+valid) or fit_on 'train'"
            )
        return self

    @model_validator(mode="after")
    def _candidates_are_plugins(self) -> TrainConfig:
        from scoring.models.candidate import CombinerPlugin, plugin

        seen: list[str] = []
        for name in self.candidates:
            if name in seen:
                raise ValueError(f"candidates: {name!r} listed twice; expected each candidate once")
            if name in RESERVED_NAMES:
                raise ValueError(f"candidates: {name!r} is reserved; expected another name")
            found = plugin(name)  # an unknown name lists the registered ones
            if isinstance(found, CombinerPlugin):
                parts = found.parts(self.candidate_settings(name))
                missing = [p for p in parts if p not in seen or isinstance(plugin(p), CombinerPlugin)]
                if missing:
                    raise ValueError(
                        f"candidates: {name!r} combines {list(parts)}; expected each part listed "
                        f"before it, and not a combiner itself: {missing}"
                    )
            seen.append(name)
        stray = sorted(set(self.candidate_params) - set(seen))
        if stray:
            raise ValueError(f"candidate_params: {stray} are not in candidates {self.candidates}")
        for name in self.candidates:
            self.candidate_settings(name)  # refuses unknown or bad settings by name
        return self

    def candidate_settings(self, name: str) -> BaseModel:
        """The settings of candidate ``name``: its own section (``params_section``: scorecard,
        xgboost) or ``candidate_params.<name>`` read by the plug-in's schema, defaults where absent."""
        from scoring.models.candidate import plugin

        found = plugin(name)
        section = getattr(found, "params_section", None)
        if section is not None:
            if name in self.candidate_params:
                raise ValueError(f"candidate_params.{name}: {name} reads its settings from train.{section}")
            settings = getattr(self, section)
            assert isinstance(settings, BaseModel)
            return settings
        raw = self.candidate_params.get(name, {})
        try:
            return found.settings_type.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(_problem(e) for e in exc.errors())
            raise ValueError(f"candidate_params.{name}: {problems}") from None

    def with_bin_overrides(self, overrides: dict[str, BinOverride]) -> TrainConfig:
        """This config with the scorecard's bin overrides (the entries of ``scorecard.bins_file``)."""
        scorecard = self.scorecard.model_copy(update={"overrides": dict(overrides)})
        return self.model_copy(update={"scorecard": scorecard})


def _problem(error: Any) -> str:
    where = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message} (got {error.get('input')!r})" if where else message


RejectInferenceMethod = Literal[
    "accepts_only", "hard_cutoff", "fuzzy", "parcelling", "reweighting", "self_learning"
]


class RejectInferenceMethodConfig(StrictModel):
    """The methods' settings (``reject_inference`` in params, beside ``method``)."""

    bad_rate_factor: float = Field(
        1.0, gt=0.0, le=10.0, description="rejects' bad rate over what the accepts' model predicts for them"
    )
    reject_weight: float = Field(1.0, gt=0.0, description="fuzzy: weight of each reject's pair of rows")
    n_bands: int = Field(10, ge=2, le=100, description="parcelling: score bands")
    max_weight: float = Field(10.0, ge=1.0, description="reweighting: cap on an accept's inverse propensity")
    filter_share: float = Field(
        0.1, ge=0.0, lt=1.0, description="self_learning: most anomalous rejects dropped"
    )
    rounds: int = Field(3, ge=1, le=20, description="self_learning: labelling rounds")
    good_quantile: float = Field(
        0.3, gt=0.0, lt=1.0, description="self_learning: accepts' PD quantile below which a reject is good"
    )
    bad_quantile: float = Field(
        0.95, gt=0.0, lt=1.0, description="self_learning: accepts' PD quantile above which a reject is bad"
    )
    label_share: float = Field(
        0.3, gt=0.0, le=1.0, description="self_learning: most rejects labelled per round and side"
    )


class RejectInferenceConfig(RejectInferenceMethodConfig):
    """Reject inference (``reject_inference`` in params; docs/reject_inference.md).

    ``enabled: false`` (the default) leaves the data and every result as they were: no legacy
    policy in the synthetic portfolio, every labelled row a booked loan.
    """

    enabled: bool = Field(False, description="the synthetic lender's legacy policy; the method's rejects")
    method: RejectInferenceMethod = Field(
        "fuzzy",
        description="how rejected applicants enter training (scoring.models.reject_inference); fuzzy: "
        "the one benchmarks/results/reject_inference.md supports",
    )
    policy: LegacyPolicyConfig = LegacyPolicyConfig()
    helper_rounds: int = Field(
        300, ge=1, description="rounds of the XGBoost helper models a method fits (the accepts' model)"
    )
