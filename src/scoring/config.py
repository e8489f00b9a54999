"""Typed configuration: params.yaml parsed into pydantic models that refuse unknown keys.

Every stage reads the whole file through :func:`load_params` so that a typo anywhere
stops the pipeline at once with the key's name and where it was found, instead of being
silently ignored by the one stage that would have used it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from scoring.calibration import CalibrationSettings
from scoring.contract import AUTO_LOAN_BY_NAME
from scoring.grades import MasterScaleSettings, ValidationTestSettings
from scoring.limits import LimitSettings
from scoring.policy import PolicySettings


class ConfigError(ValueError):
    """params.yaml does not match the expected schema."""


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- data


class SyntheticDataConfig(StrictModel):
    """The embedded synthetic auto-loan portfolio (see the data contract)."""

    n_applications: int = Field(100_000, ge=100)
    start_date: dt.date = dt.date(2019, 1, 1)
    months: int = Field(60, ge=24, description="application months covered")
    immature_months: int = Field(
        12, ge=0, description="the last months whose 12-month outcome is not known yet (null target)"
    )
    repeat_customer_share: float = Field(0.04, ge=0.0, lt=0.5)
    n_dealers: int = Field(300, ge=1)
    bad_dealer_share: float = Field(0.03, ge=0.0, le=1.0)
    n_regions: int = Field(31, ge=1, le=99)

    @model_validator(mode="after")
    def _immature_inside_window(self) -> SyntheticDataConfig:
        if self.immature_months >= self.months:
            raise ValueError(
                f"immature_months ({self.immature_months}) must be below months ({self.months}): "
                "otherwise no application has an outcome"
            )
        return self


class FileDataConfig(StrictModel):
    """An analyst's own CSV or Parquet file."""

    path: Path = Path("data/external")
    format: Literal["csv", "parquet"] | None = Field(
        None, description="inferred from the file suffix when null"
    )
    id_column: str | None = Field(
        None, description="unique application key; null = number the rows in file order"
    )
    target_column: str = "default_12m"
    date_column: str | None = None
    customer_column: str | None = None
    categorical_columns: list[str] = Field(
        default_factory=list, description="columns to treat as categories even if numeric"
    )
    drop_columns: list[str] = Field(
        default_factory=list, description="columns never to use (leaky, post-application, free text)"
    )
    contract: Literal["auto", "auto_loan", "none"] = Field(
        "auto", description="check the auto-loan contract: auto = when every contract column is present"
    )
    positive_label: int | str | None = Field(
        None, description="target value that means default when the target is not already 0/1"
    )
    roles: dict[str, str] = Field(
        default_factory=dict,
        description="data contract column -> the file's column holding it, e.g. {monthly_income: "
        "MonthlyIncome}: the contract's derived features, policy rules and limit constraints "
        "then use it; roles left out switch off what needs them",
    )
    na_values: list[str] = Field(
        default_factory=lambda: ["?"],
        description="CSV cells read as missing, besides pandas' defaults (empty, NA, NaN, null, ...)",
    )

    @model_validator(mode="after")
    def _roles_are_contract_columns(self) -> FileDataConfig:
        unknown = sorted(set(self.roles) - set(AUTO_LOAN_BY_NAME))
        if unknown:
            raise ValueError(
                f"roles: {unknown} are not data contract columns; expected names from "
                f"{sorted(AUTO_LOAN_BY_NAME)}"
            )
        sources = list(self.roles.values())
        repeated = sorted({c for c in sources if sources.count(c) > 1})
        if repeated:
            raise ValueError(f"roles: columns {repeated} are given more than one role; expected one each")
        return self


class DataConfig(StrictModel):
    source: Literal["synthetic", "file"] = "synthetic"
    synthetic: SyntheticDataConfig = SyntheticDataConfig()
    file: FileDataConfig = FileDataConfig()


# --------------------------------------------------------------------------- validate


class RangeRule(StrictModel):
    min: float | None = None
    max: float | None = None


Severity = Literal["critical", "quarantine", "warn"]


class DefaultRateBounds(StrictModel):
    min: float = Field(0.001, ge=0.0, le=1.0)
    max: float = Field(0.6, ge=0.0, le=1.0)


class LeakageConfig(StrictModel):
    post_application_columns: list[str] = Field(
        default_factory=list,
        description="columns known only after the application date; dropped before features, always",
    )
    max_single_feature_auc: float = Field(
        0.95,
        gt=0.5,
        le=1.0,
        description="a feature ranking defaults better than this alone is a suspected leak",
    )
    stop_on_suspected_leak: bool = False


class DriftConfig(StrictModel):
    recent_months: int = Field(6, ge=1, description="the latest application months compared with the rest")
    bins: int = Field(10, ge=2, le=50)
    moderate: float = Field(0.1, gt=0.0, description="PSI from which a shift is flagged moderate")
    significant: float = Field(0.25, gt=0.0, description="PSI from which a shift is flagged significant")


class ValidateConfig(StrictModel):
    """The validation gate: which rules stop the pipeline and which rows go to quarantine."""

    min_rows: int = Field(1, ge=1)
    ranges: dict[str, RangeRule] = Field(
        default_factory=dict,
        description="inclusive bounds per column, applied where the column exists; override the contract's",
    )
    default_rate: DefaultRateBounds = DefaultRateBounds()
    max_null_share: dict[str, float] = Field(
        # dealer_id is null for every direct and online application, a growing share over time.
        default_factory=lambda: {"dealer_id": 0.9},
        description="per nullable column, the largest share of nulls before the gate stops",
    )
    default_max_null_share: float = Field(
        0.5, ge=0.0, lt=1.0, description="for columns not in max_null_share (a column beyond it is broken)"
    )
    max_unseen_level_share: float = Field(
        0.01, ge=0.0, lt=1.0, description="share of category values outside the contract's levels tolerated"
    )
    max_ltv: float = Field(1.2, gt=0.0, description="loan amount / vehicle price above this is quarantined")
    loan_amount_tolerance: float = Field(
        0.05, ge=0.0, description="|loan - (price - down payment)| / price above this is quarantined"
    )
    performance_months: int = Field(12, ge=0, description="outcome window: a target needs this many months")
    terms_new: list[int] = Field(
        default_factory=lambda: [12, 24, 36, 48, 60], description="allowed, new cars"
    )
    terms_used: list[int] = Field(
        default_factory=lambda: [12, 24, 36], description="allowed terms, used cars"
    )
    as_of_date: dt.date | None = Field(
        None, description="date of the data extract; null = today. Dates after it are in the future"
    )
    max_quarantine_share: float = Field(
        0.1, ge=0.0, le=1.0, description="more rows than this in quarantine means a broken file: stop"
    )
    severity: dict[str, Severity] = Field(
        default_factory=dict,
        description="override a rule's severity by rule kind (out_of_range) or full code (age_out_of_range)",
    )
    leakage: LeakageConfig = LeakageConfig()
    drift: DriftConfig = DriftConfig()

    @model_validator(mode="after")
    def _bounds_ordered(self) -> ValidateConfig:
        if self.default_rate.min > self.default_rate.max:
            raise ValueError("default_rate.min must not exceed default_rate.max")
        for name, share in self.max_null_share.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"max_null_share.{name}={share}: expected a share between 0 and 1")
        return self


# --------------------------------------------------------------------------- split


class SplitConfig(StrictModel):
    oot_months: int = Field(
        6, ge=0, description="the latest labelled months held out as out-of-time (needs a date column)"
    )
    valid_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    oot_fraction_without_date: float = Field(
        0.0,
        ge=0.0,
        lt=0.5,
        description="without a date column there is no out-of-time split unless this is set",
    )


# --------------------------------------------------------------------------- features


class FeaturesConfig(StrictModel):
    max_category_levels: int = Field(
        500, ge=2, description="levels kept per categorical column; rarer ones become 'other'"
    )
    min_category_count: int = Field(20, ge=1, description="levels seen fewer times in train become 'other'")


# --------------------------------------------------------------------------- train


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
    early_stopping_rounds: int = Field(100, ge=1)
    n_jobs: int = Field(2, ge=1, description="threads; results are identical for any value")


class SearchDimensionConfig(StrictModel):
    low: float
    high: float
    log: bool = False
    kind: Literal["float", "int"] = "float"


def _default_search_space() -> dict[str, SearchDimensionConfig]:
    return {
        "learning_rate": SearchDimensionConfig(low=0.05, high=0.3, log=True),
        "max_depth": SearchDimensionConfig(low=2, high=7, kind="int"),
        "min_child_weight": SearchDimensionConfig(low=1.0, high=50.0, log=True),
        "subsample": SearchDimensionConfig(low=0.5, high=1.0),
        "colsample_bytree": SearchDimensionConfig(low=0.4, high=1.0),
        "reg_lambda": SearchDimensionConfig(low=1e-3, high=50.0, log=True),
        "reg_alpha": SearchDimensionConfig(low=1e-3, high=10.0, log=True),
    }


class TuneConfig(StrictModel):
    """Optuna search over the challenger's hyper-parameters, on the training split only."""

    enabled: bool = True
    n_trials: int = Field(25, ge=1, description="finished trials the study holds; a larger number resumes it")
    timeout_seconds: float | None = Field(150.0, gt=0.0, description="per run, checked between trials")
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
    exclude_features: list[str] = Field(
        default_factory=lambda: ["thin_file"],
        description="features the scorecard leaves out (thin_file repeats bureau_score's missing bin)",
    )


def _default_blend_weights() -> list[float]:
    return [round(0.1 * i, 1) for i in range(11)]


class ChampionConfig(StrictModel):
    """The champion among the scorecard, the XGBoost challenger and a blend of their log-odds.

    Candidates in order of simplicity: scorecard, xgboost, blend. The one with the highest
    AUC on the selection data wins, unless a simpler one is within ``min_auc_gain`` of it
    (or ties with it): then the simplest such one does.
    """

    selection: Literal["cv", "valid"] = Field(
        "cv",
        description="cv: out-of-fold AUC over the rows the final models are fitted on (both models "
        "refitted per fold); valid: AUC on the validation split (only with train.fit_on: train)",
    )
    cv_folds: int = Field(5, ge=2, description="stratified folds of the cv selection")
    blend_weights: list[float] = Field(
        default_factory=_default_blend_weights,
        min_length=1,
        description="scorecard weights tried in the blend (1 - weight goes to the challenger's log-odds)",
    )
    min_auc_gain: float = Field(
        0.0, ge=0.0, description="AUC a more complex candidate must gain over a simpler one to be champion"
    )
    n_jobs: int = Field(1, ge=1, description="processes fitting the cv folds; the choice is the same for any")

    @model_validator(mode="after")
    def _weights_in_unit_interval(self) -> ChampionConfig:
        bad = [w for w in self.blend_weights if not 0.0 <= w <= 1.0]
        if bad:
            raise ValueError(f"blend_weights: {bad} outside [0, 1]; expected scorecard weights from 0 to 1")
        return self


class TrainConfig(StrictModel):
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


# --------------------------------------------------------------------------- calibrate


class CalibrateConfig(StrictModel):
    """PD calibration and the master scale on held-out predictions (see ``train.fit_on``), and the
    supervisory tests."""

    calibration: CalibrationSettings = CalibrationSettings()
    master_scale: MasterScaleSettings = MasterScaleSettings()
    tests: ValidationTestSettings = ValidationTestSettings()
    swap_set_approval_rate: float = Field(
        0.7, gt=0.0, lt=1.0, description="approval rate of the scorecard/challenger swap set"
    )


# --------------------------------------------------------------------------- evaluate / export


class EvaluateConfig(StrictModel):
    calibration_bins: int = Field(10, ge=2)


class ExportConfig(StrictModel):
    model_name: str = Field("auto_loan_pd", pattern=r"^[A-Za-z0-9_.-]+$")
    experiment_name: str = "credit-scoring"


# --------------------------------------------------------------------------- explain


class ReasonEntry(StrictModel):
    """One adverse-action reason: its code and the plain-language text shown to the applicant."""

    code: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1)


class ReasonsConfig(StrictModel):
    """Reason codes (scoring.explain): which contributions become reasons and how they read.

    ``reason_map`` is keyed by model feature or group name; every model input feature must be
    covered (by its own entry or its group's), and every key must be a feature or a group:
    both are checked against the model when the coder is fitted.
    """

    max_reasons: int = Field(4, ge=1, le=4, description="most reasons per applicant")
    baseline: Literal["expected_value", "training_mean"] = Field(
        "expected_value",
        description="expected_value: contributions as they are, i.e. against the model's expected "
        "log-odds over the training population; training_mean: each feature's contribution "
        "minus its mean over the training split",
    )
    min_contribution: float = Field(
        0.0, ge=0.0, description="a reason must raise the log-odds by more than this against the baseline"
    )
    reference_rows: int = Field(
        50_000, ge=100, description="training rows (evenly spaced) the baseline is measured on"
    )
    groups: dict[str, list[str]] = Field(
        default_factory=dict, description="group name -> correlated features reported as one reason"
    )
    reason_map: dict[str, ReasonEntry] = Field(
        default_factory=dict, description="feature or group name -> reason code and text"
    )

    @model_validator(mode="after")
    def _codes_and_groups_consistent(self) -> ReasonsConfig:
        seen: dict[str, str] = {}
        for key, entry in self.reason_map.items():
            if entry.code in seen:
                raise ValueError(
                    f"reason_map: code {entry.code!r} used by both {seen[entry.code]!r} and {key!r}; "
                    "expected one code per reason"
                )
            seen[entry.code] = key
        owner: dict[str, str] = {}
        for group, members in self.groups.items():
            if len(members) < 2:
                raise ValueError(f"groups.{group}: {members}: expected at least two features")
            for member in members:
                if member in owner:
                    raise ValueError(
                        f"groups: feature {member!r} is in both {owner[member]!r} and {group!r}; "
                        "expected each feature in at most one group"
                    )
                owner[member] = group
        clash = sorted(set(owner) & set(self.reason_map))
        if clash:
            raise ValueError(
                f"reason_map: {clash} are grouped features; their reason is their group's entry "
                f"({sorted({owner[c] for c in clash})})"
            )
        named = sorted(set(self.groups) & set(owner))
        if named:
            raise ValueError(f"groups: {named} are both a group name and a grouped feature")
        return self


# --------------------------------------------------------------------------- root


class Params(StrictModel):
    seed: int = Field(20261128, ge=0, lt=2**32)
    data: DataConfig = DataConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    split: SplitConfig = SplitConfig()
    features: FeaturesConfig = FeaturesConfig()
    tune: TuneConfig = TuneConfig()
    train: TrainConfig = TrainConfig()
    calibrate: CalibrateConfig = CalibrateConfig()
    policy: PolicySettings = PolicySettings()
    limits: LimitSettings = LimitSettings()
    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()
    reasons: ReasonsConfig = ReasonsConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _allowed_keys(path: tuple[Any, ...]) -> list[str]:
    """Keys accepted in the section that holds ``path``'s last element."""
    model: Any = Params
    for part in path[:-1]:
        fields = {f.alias or name: f for name, f in model.model_fields.items()}
        field = fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(f.alias or name for name, f in model.model_fields.items())


def _format_error(err: Any, source: str) -> str:
    location = ".".join(str(part) for part in err["loc"]) or "<root>"
    if err["type"] == "extra_forbidden":
        allowed = _allowed_keys(tuple(err["loc"]))
        hint = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"{source}: unknown key '{location}'{hint}"
    return f"{source}: '{location}': {err['msg']} (got {err.get('input')!r})"


def parse_params(raw: dict[str, Any] | None, source: str = "params") -> Params:
    """Validate a params mapping; raise :class:`ConfigError` naming every bad key."""
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = [_format_error(e, source) for e in exc.errors()]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found (expected the pipeline's params.yaml)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return parse_params(raw, source=str(path))
