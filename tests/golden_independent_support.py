"""An independent recomputation of the golden answers, for tests/test_golden_independent.py.

The golden tests (tests/test_golden.py) compare the pipeline's scorer with answers that the same
scorer wrote. This module recomputes those answers without the ``scoring`` package: it reads the
committed model files (JSON, and the XGBoost booster through ``xgboost`` itself) and the frozen
params.yaml, and applies the documented definitions as plain numpy formulas:

* the derived features of the data contract (annuity or equal-principal first payment, PTI, DTI,
  LTV, down-payment ratio, age at maturity, income per dependent, thin-file flag), and the
  model matrix laid out as features.json lists it (numeric inputs, derived features, category
  codes among the fitted levels, NaN for a null or a level not kept at fit);
* the scorecard's points: each feature's bin from its split points (right-open bins) or its
  groups of levels, the Missing bin for a null or a level the feature spec does not keep, the
  Unseen bin for a kept level in no group; the total points give the raw log-odds through the
  scaling (``z = (offset - points) / factor``);
* the booster's margin (``Booster.predict(output_margin=True)`` on a float32 matrix built here)
  and, for a booster champion, XGBoost's own float32 logistic transform of it;
* the blend's weighted log-odds (blend.json);
* the calibrator (none, Platt on ``logit(pd_raw)`` as calibrator.json says, or isotonic by
  linear interpolation), then the PD floor and cap;
* the score: ``offset - factor * logit(pd)`` with the scaling of params' ``train.scorecard``;
* the grade from the master scale's inclusive upper PD bounds;
* the knock-out rules and grade cut-offs of params' ``policy`` (the market LTV caps of the data
  contract's market rules), in the documented order of the reason codes;
* the suggested limit: the largest principal within the grade's DTI cap (the payment formula
  inverted), its LTV cap (or the market cap, if lower) and its amount cap, rounded down to the
  rounding unit, and the constraint that set it.

The category levels of the contract below are copied from /work/shared/design/data-contract.md
on purpose (not imported), so that a change to the library's constants is caught too.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]

TESTS = Path(__file__).resolve().parent
GOLDEN_DIR = TESTS / "data" / "golden"
APPLICATIONS = TESTS / "data" / "golden_applications.csv"
PARAMS_FILE = GOLDEN_DIR / "params.yaml"
CHAMPIONS = ("xgboost", "scorecard", "blend")
ID_COLUMN = "application_id"

# The data contract's category levels (data-contract.md, "Columns of the embedded default").
EMPLOYMENT_TYPES = ("salaried", "self_employed", "civil_servant", "retired", "other")
VEHICLE_CONDITIONS = ("new", "used")
VEHICLE_SEGMENTS = ("economy", "midsize", "suv", "luxury", "electric")
VEHICLE_USES = ("private", "commercial")
REPAYMENT_METHODS = ("equal_installment", "equal_principal")

# Knock-out codes in the order a row's codes are joined (scoring.decision.policy's docstring).
KNOCK_OUT_ORDER = (
    "KO_DATA_MISSING",
    "KO_AGE_MIN",
    "KO_AGE_MAX",
    "KO_AGE_MATURITY",
    "KO_INCOME_MIN",
    "KO_INCOME_PROOF",
    "KO_LTV_MAX",
    "KO_TERM_MAX",
    "KO_DPD_SEVERE",
    "KO_DELINQ_COUNT",
)
# A loan share equal to its cap passes although, say, 0.8 * price is not exact in binary
# (the policy's documented tolerance on the LTV rule).
LTV_TOLERANCE = 1e-9
# Rounding down forgives a billionth of a unit, so that a bound that is a whole number of units
# in decimal but a hair below it in binary (0.7 * 100,000) is not cut by a full unit.
ROUNDING_SLACK = 1e-9


# --------------------------------------------------------------------------- files


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class ModelFiles:
    """The committed files of one golden model folder, as plain JSON documents (and the booster's path)."""

    champion: str
    features: dict[str, Any]
    calibrator: dict[str, Any]
    master_scale: dict[str, Any]
    scorecard: dict[str, Any] | None
    booster: dict[str, Any] | None  # XGBoost's JSON document of booster.ubj
    booster_path: Path | None
    blend: dict[str, Any] | None

    def copy(self) -> ModelFiles:
        """A deep copy, to perturb in a test."""
        return copy.deepcopy(self)


def load_model_files(champion: str, golden_dir: Path = GOLDEN_DIR) -> ModelFiles:
    folder = golden_dir / champion
    declared = read_json(folder / "champion.json")
    assert declared["champion"] == champion, f"{folder}: champion.json names {declared['champion']!r}"
    parts = set(declared["candidates"])
    candidates = folder / "candidates"
    booster_path = candidates / "xgboost" / "booster.ubj" if "xgboost" in parts else None
    return ModelFiles(
        champion=champion,
        features=read_json(folder / "features.json"),
        calibrator=read_json(folder / "calibrator.json"),
        master_scale=read_json(folder / "master_scale.json"),
        scorecard=read_json(candidates / "scorecard" / "scorecard.json") if "scorecard" in parts else None,
        booster=None if booster_path is None else booster_document(booster_path),
        booster_path=booster_path,
        blend=read_json(candidates / "blend" / "blend.json") if "blend" in parts else None,
    )


def load_params(path: Path = PARAMS_FILE) -> dict[str, Any]:
    params: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return params


def read_applications(path: Path = APPLICATIONS) -> pd.DataFrame:
    return pd.read_csv(path)


def read_expected(champion: str, golden_dir: Path = GOLDEN_DIR) -> dict[str, list[Any]]:
    data: dict[str, list[Any]] = read_json(golden_dir / f"expected_{champion}.json")
    return data


# --------------------------------------------------------------------------- raw columns


def numbers(applications: pd.DataFrame, column: str) -> FloatArray:
    """A raw column as float64: booleans as 0/1, nulls as NaN."""
    values = pd.to_numeric(applications[column].astype(object), errors="coerce")
    return np.asarray(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def levels(applications: pd.DataFrame, column: str) -> ObjectArray:
    """A raw category column as text, None where null."""
    out = np.empty(len(applications), dtype=object)
    for i, value in enumerate(applications[column].tolist()):
        out[i] = None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
    return out


def ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    """numerator / denominator; NaN where the denominator is not positive (or missing)."""
    out = np.full(len(numerator), np.nan)
    ok = denominator > 0
    out[ok] = numerator[ok] / denominator[ok]
    return out


# --------------------------------------------------------------------------- instalments


def annuity_payment(principal: FloatArray, annual_rate: FloatArray, term: FloatArray) -> FloatArray:
    """Constant monthly payment: P r / (1 - (1 + r)^-n), r = annual_rate / 12; P / n when r = 0."""
    r = annual_rate / 12.0
    out = principal / term
    positive = r != 0
    rp = r[positive]
    out[positive] = principal[positive] * rp / (1.0 - (1.0 + rp) ** -term[positive])
    return out


def equal_principal_first_payment(
    principal: FloatArray, annual_rate: FloatArray, term: FloatArray
) -> FloatArray:
    """First (largest) payment of an equal-principal loan: P / n + P r."""
    return principal / term + principal * annual_rate / 12.0


def annuity_principal(payment: FloatArray, annual_rate: FloatArray, term: FloatArray) -> FloatArray:
    """The principal whose annuity payment is ``payment``: pay (1 - (1 + r)^-n) / r; pay n when r = 0."""
    r = annual_rate / 12.0
    out = payment * term
    positive = r != 0
    rp = r[positive]
    out[positive] = payment[positive] * (1.0 - (1.0 + rp) ** -term[positive]) / rp
    return out


def equal_principal_principal(payment: FloatArray, annual_rate: FloatArray, term: FloatArray) -> FloatArray:
    """The principal whose first equal-principal payment is ``payment``: pay / (1 / n + r)."""
    return payment / (1.0 / term + annual_rate / 12.0)


# --------------------------------------------------------------------------- features


def derived_features(raw: dict[str, FloatArray], method: ObjectArray) -> dict[str, FloatArray]:
    """The contract's derived features, from the raw numbers and the repayment method."""
    loan, rate, term = raw["loan_amount"], raw["annual_rate"], raw["term_months"]
    income, price = raw["monthly_income"], raw["vehicle_price"]
    payment = np.where(
        method == "equal_principal",
        equal_principal_first_payment(loan, rate, term),
        annuity_payment(loan, rate, term),
    )
    payment = np.where(pd.isna(method), np.nan, payment)
    return {
        "monthly_payment": payment,
        "payment_to_income": ratio(payment, income),
        "debt_to_income": ratio(raw["existing_monthly_debt"] + payment, income),
        "loan_to_value": ratio(loan, price),
        "down_payment_ratio": ratio(raw["down_payment"], price),
        "age_at_maturity": raw["age"] + term / 12.0,
        "income_per_dependent": ratio(income, raw["dependents"] + 1.0),
        "thin_file": np.isnan(raw["bureau_score"]).astype(np.float64),
    }


@dataclass(frozen=True)
class FeatureValues:
    """What the models read: numeric and derived values by name, kept category levels by name
    (None for a null or a level the feature spec did not keep), and the booster's matrix."""

    numbers: dict[str, FloatArray]
    categories: dict[str, ObjectArray]
    names: list[str]
    types: list[str]
    matrix: FloatArray  # numeric and derived values, then category codes (NaN: missing)


def feature_values(spec: dict[str, Any], applications: pd.DataFrame) -> FeatureValues:
    numeric: list[str] = list(spec["numeric_columns"])
    derived: list[str] = list(spec["derived_columns"])
    categorical = [c for c in spec["feature_names_out"] if c in spec["categories"]]
    assert spec["feature_names_out"] == [*numeric, *derived, *categorical], "unexpected column layout"
    raw = {c: numbers(applications, c) for c in numeric}
    values = {c: np.where(np.isinf(v), np.nan, v) for c, v in raw.items()}
    all_derived = derived_features(raw, levels(applications, "repayment_method"))
    values.update({name: all_derived[name] for name in derived})
    kept: dict[str, ObjectArray] = {}
    n = len(applications)
    matrix = np.empty((n, len(spec["feature_names_out"])), dtype=np.float64)
    for j, name in enumerate([*numeric, *derived]):
        matrix[:, j] = values[name]
    for j, name in enumerate(categorical, start=len(numeric) + len(derived)):
        fitted: list[str] = spec["categories"][name]
        code = {level: i for i, level in enumerate(fitted)}
        raw_levels = levels(applications, name)
        kept[name] = np.array([v if v in code else None for v in raw_levels], dtype=object)
        matrix[:, j] = [code.get(v, np.nan) if v is not None else np.nan for v in raw_levels]
    names = [*numeric, *derived, *categorical]
    types = ["c" if name in spec["categories"] else "q" for name in names]
    return FeatureValues(values, kept, names, types, matrix)


# --------------------------------------------------------------------------- models


def scaling(pdo: float, base_score: float, base_odds: float) -> tuple[float, float]:
    """(factor, offset): score = offset - factor * log-odds of default."""
    factor = pdo / math.log(2.0)
    return factor, base_score - factor * math.log(base_odds)


@dataclass(frozen=True)
class ScorecardResult:
    points: FloatArray  # (rows, features): each selected feature's points
    labels: ObjectArray  # (rows, features): the label of each row's bin
    woe_log_odds: FloatArray  # intercept + sum of coefficient x WoE, the logistic regression itself

    @property
    def total(self) -> FloatArray:
        return np.asarray(self.points.sum(axis=1), dtype=np.float64)


def scorecard_bins(card: dict[str, Any], values: FeatureValues) -> ScorecardResult:
    """Each row's bin of each selected feature, its points and label, and the WoE log-odds."""
    features = card["features"]
    n = len(values.matrix)
    points = np.empty((n, len(features)), dtype=np.float64)
    labels = np.empty((n, len(features)), dtype=object)
    log_odds = np.full(n, float(card["intercept"]))
    for k, feature in enumerate(features):
        bins = [*feature["bins"], feature["missing"]]
        missing = len(feature["bins"])
        if feature["kind"] == "numeric":
            x = values.numbers[feature["name"]]
            splits = np.asarray(feature["splits"], dtype=np.float64)
            # right-open bins (-inf, s1), [s1, s2), ..., [sk, inf): the number of splits <= x
            index = (x[:, None] >= splits[None, :]).sum(axis=1)
            index = np.where(np.isnan(x), missing, index)
        else:
            bins.append(feature["unseen"])
            group = {level: i for i, members in enumerate(feature["groups"]) for level in members}
            kept = values.categories[feature["name"]]
            index = np.array([missing if v is None else group.get(v, missing + 1) for v in kept])
        table = np.array([b["points"] for b in bins], dtype=np.float64)
        woe = np.array([b["woe"] for b in bins], dtype=np.float64)
        points[:, k] = table[index]
        labels[:, k] = np.array([b["label"] for b in bins], dtype=object)[index]
        log_odds += float(feature["coefficient"]) * woe[index]
    return ScorecardResult(points, labels, log_odds)


def booster_document(path: Path) -> dict[str, Any]:
    """The booster file as XGBoost's JSON model document (XGBoost only converts the UBJSON file)."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(path)
    document: dict[str, Any] = json.loads(booster.save_raw(raw_format="json"))
    return document


def tree_margin(document: dict[str, Any], values: FeatureValues) -> FloatArray:
    """The booster's margin (log-odds) by walking its trees here, in float32 as XGBoost does.

    A row starts at the base margin, logit(base_score), and adds each tree's leaf value in tree
    order, every sum rounded to float32. At a numeric node a row goes left when its float32
    value is below the float32 split condition; at a categorical node it goes right when its
    category code is in the node's category set; a missing value takes the node's default branch.
    """
    learner = document["learner"]
    assert learner["objective"]["name"] == "binary:logistic", learner["objective"]
    assert learner["feature_names"] == values.names, "booster columns differ from features.json"
    model = learner["gradient_booster"]["model"]
    assert model["gbtree_model_param"]["num_parallel_tree"] == "1"
    base_score = float(learner["learner_model_param"]["base_score"].strip("[]"))
    x = np.ascontiguousarray(values.matrix, dtype=np.float32)
    rows = np.arange(len(x))
    total = np.full(len(x), np.float32(math.log(base_score / (1.0 - base_score))), dtype=np.float32)
    for tree in model["trees"]:
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        condition = np.asarray(tree["split_conditions"], dtype=np.float32)  # leaf value at a leaf
        feature = np.asarray(tree["split_indices"], dtype=np.int64)
        default_left = np.asarray(tree["default_left"], dtype=bool)
        categorical = np.asarray(tree["split_type"], dtype=np.int64) == 1
        width = 1 + max(tree["categories"], default=0)
        goes_right = np.zeros((len(left), width), dtype=bool)  # node x category code
        for at, start, size in zip(
            tree["categories_nodes"], tree["categories_segments"], tree["categories_sizes"], strict=True
        ):
            goes_right[at, tree["categories"][start : start + size]] = True
        node = np.zeros(len(x), dtype=np.int64)
        while (left[node] != -1).any():
            inner = left[node] != -1
            value = x[rows, feature[node]]
            missing = np.isnan(value)
            is_code = categorical[node] & ~missing & (value >= 0) & (value < width)
            code = np.where(is_code, value, 0).astype(np.int64)
            right_by_value = np.where(
                categorical[node], is_code & goes_right[node, code], ~(value < condition[node])
            )
            to_left = np.where(missing, default_left[node], ~right_by_value)
            node = np.where(inner, np.where(to_left, left[node], right[node]), node)
        total = (total + condition[node]).astype(np.float32)
    return np.asarray(total, dtype=np.float64)


def xgboost_margin(path: Path, values: FeatureValues) -> FloatArray:
    """XGBoost's own margin on the float32 matrix: a cross-check of :func:`tree_margin`."""
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": 1})
    data = xgb.DMatrix(
        np.ascontiguousarray(values.matrix, dtype=np.float32),
        feature_names=values.names,
        feature_types=values.types,
        nthread=1,
    )
    return np.asarray(booster.predict(data, output_margin=True), dtype=np.float64)


def xgboost_probability(margin: FloatArray) -> FloatArray:
    """XGBoost's binary:logistic transform in float32: 1 / (1 + expf(-margin)), each step in float32.

    ``expf`` is taken as the float64 exponential rounded to float32 (a correctly rounded expf);
    numpy's own float32 exp is not, and differs from the C library's in the last place.
    """
    m = margin.astype(np.float32)
    e = np.exp(-m.astype(np.float64)).astype(np.float32)
    denominator = (np.float32(1.0) + e).astype(np.float32)
    return np.asarray((np.float32(1.0) / denominator).astype(np.float32), dtype=np.float64)


def sigmoid(z: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def logit(p: FloatArray) -> FloatArray:
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def calibrate(calibrator: dict[str, Any], pd_raw: FloatArray) -> FloatArray:
    """The calibration map of calibrator.json, then the PD floor and cap."""
    method = calibrator["method"]
    if method == "platt":
        platt = calibrator["platt"]
        assert platt["input"] == "logit(pd_raw)", platt
        clipped = np.clip(pd_raw, 1e-12, 1.0 - 1e-12)  # an infinite logit is clipped first
        mapped = sigmoid(float(platt["slope"]) * logit(clipped) + float(platt["intercept"]))
    elif method == "isotonic":
        iso = calibrator["isotonic"]
        mapped = np.interp(pd_raw, iso["x_thresholds"], iso["y_thresholds"])
    else:
        assert method == "none", method
        mapped = pd_raw
    return np.asarray(
        np.minimum(np.maximum(mapped, calibrator["pd_floor"]), calibrator["pd_cap"]), dtype=np.float64
    )


def grades(master_scale: dict[str, Any], pd_values: FloatArray) -> IntArray:
    """Grade k holds the PDs in (b[k-1], b[k]]: 1 + the number of upper bounds below the PD."""
    bounds = np.asarray(master_scale["boundaries"], dtype=np.float64)
    return np.asarray(1 + (pd_values[:, None] > bounds[None, :]).sum(axis=1), dtype=np.int64)


# --------------------------------------------------------------------------- policy


def code_of(values: ObjectArray, contract_levels: tuple[str, ...]) -> IntArray:
    """Position in the contract's levels; -1 for a null or a level outside them."""
    return np.array(
        [contract_levels.index(v) if v in contract_levels else -1 for v in values], dtype=np.int64
    )


def market_ltv_cap(applications: pd.DataFrame, caps: dict[str, Any]) -> FloatArray:
    """The market's maximum loan share of the price: used cars one cap; new cars by use and
    fuel (new-energy segments); an unknown condition, segment or use gets the lowest cap of the
    products the row could be."""
    conditions = levels(applications, "vehicle_condition")
    segments = levels(applications, "vehicle_segment")
    uses = levels(applications, "vehicle_use")
    new_energy = set(caps["new_energy_segments"])
    out = np.empty(len(applications))
    for i, (condition, segment, use) in enumerate(zip(conditions, segments, uses, strict=True)):
        possible: list[float] = []
        for c in (condition,) if condition in VEHICLE_CONDITIONS else VEHICLE_CONDITIONS:
            if c == "used":
                possible.append(float(caps["used"]))
                continue
            for u in (use,) if use in VEHICLE_USES else VEHICLE_USES:
                for s in (segment,) if segment in VEHICLE_SEGMENTS else VEHICLE_SEGMENTS:
                    fuel = "new_energy" if s in new_energy else "conventional"
                    possible.append(float(caps[f"{u}_{fuel}"]))
        out[i] = min(possible)
    return out


def knock_outs(applications: pd.DataFrame, policy: dict[str, Any], market_cap: FloatArray) -> ObjectArray:
    """Each row's knock-out codes joined with ';' ('' when none fires)."""
    ko = policy["knock_outs"]
    age, term = numbers(applications, "age"), numbers(applications, "term_months")
    income, price = numbers(applications, "monthly_income"), numbers(applications, "vehicle_price")
    basis = ko["ltv_basis"]
    loan_column = "down_payment" if basis == "price_less_down_payment" else "loan_amount"
    loan_input = numbers(applications, loan_column)
    dpd, delinquencies = numbers(applications, "max_dpd_24m"), numbers(applications, "delinquencies_24m")
    employment = levels(applications, "employment_type")
    condition = code_of(levels(applications, "vehicle_condition"), VEHICLE_CONDITIONS)
    segment = code_of(levels(applications, "vehicle_segment"), VEHICLE_SEGMENTS)
    use = code_of(levels(applications, "vehicle_use"), VEHICLE_USES)
    verified = numbers(applications, "income_verified") == 1.0  # a null is no proof
    # A null in a field a rule needs declines; income_verified, max_dpd_24m and delinquencies_24m
    # have a meaning when null (no proof, no bureau record) and never decline on their own.
    missing = (
        np.isnan(age)
        | np.isnan(term)
        | np.isnan(income)
        | np.isnan(price)
        | np.isnan(loan_input)
        | (code_of(employment, EMPLOYMENT_TYPES) < 0)
        | (condition < 0)
        | (segment < 0)
        | (use < 0)
    )
    product_known = (condition >= 0) & (segment >= 0) & (use >= 0)
    loan = price - loan_input if loan_column == "down_payment" else loan_input
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(price > 0, loan / price, np.where(np.isnan(price), np.nan, np.inf))
        max_term = np.where(
            condition == VEHICLE_CONDITIONS.index("used"),
            ko["max_term_months_used"],
            ko["max_term_months_new"],
        )
        fired = {
            "KO_DATA_MISSING": missing,
            "KO_AGE_MIN": age < ko["min_age"],
            "KO_AGE_MAX": age > ko["max_age_at_application"],
            "KO_AGE_MATURITY": age + term / 12.0 > ko["max_age_at_maturity"],
            "KO_INCOME_MIN": income < ko["min_monthly_income"],
            "KO_INCOME_PROOF": np.isin(employment, ko["income_proof_required_for"]) & ~verified,
            "KO_LTV_MAX": product_known & (share > market_cap + LTV_TOLERANCE),
            "KO_TERM_MAX": (condition >= 0) & (term > max_term),
            "KO_DPD_SEVERE": dpd >= ko["severe_dpd_days"],
            "KO_DELINQ_COUNT": delinquencies > ko["max_delinquencies_24m"],
        }
    return np.array(
        [";".join(code for code in KNOCK_OUT_ORDER if fired[code][i]) for i in range(len(applications))],
        dtype=object,
    )


def decisions(grade: IntArray, codes: ObjectArray, policy: dict[str, Any]) -> tuple[ObjectArray, ObjectArray]:
    """(decision, policy_reasons): a knock-out declines with its codes; otherwise the grade cut-offs."""
    cut = policy["decisions"]
    decision = np.empty(len(grade), dtype=object)
    reasons = np.empty(len(grade), dtype=object)
    for i, (g, ko) in enumerate(zip(grade.tolist(), codes.tolist(), strict=True)):
        if ko:
            decision[i], reasons[i] = "decline", ko
        elif g <= cut["approve_max_grade"]:
            decision[i], reasons[i] = "approve", ""
        elif g <= cut["refer_max_grade"]:
            decision[i], reasons[i] = "refer", "GRADE_REFER"
        else:
            decision[i], reasons[i] = "decline", "GRADE_DECLINE"
    return decision, reasons


def limits(
    applications: pd.DataFrame,
    grade: IntArray,
    decision: ObjectArray,
    settings: dict[str, Any],
    market_cap: FloatArray,
) -> tuple[FloatArray, ObjectArray]:
    """(suggested_limit, limit_constraint) of each row."""
    income, debt = numbers(applications, "monthly_income"), numbers(applications, "existing_monthly_debt")
    price, rate = numbers(applications, "vehicle_price"), numbers(applications, "annual_rate")
    term = numbers(applications, "term_months")
    method = levels(applications, "repayment_method")
    g = grade - 1
    capacity = np.asarray(settings["dti_cap"], dtype=np.float64)[g] * income - debt
    headroom = np.maximum(capacity, 0.0)
    by_dti = np.where(
        method == "equal_principal",
        equal_principal_principal(headroom, rate, term),
        annuity_principal(headroom, rate, term),
    )
    by_ltv = np.minimum(np.asarray(settings["ltv_cap"], dtype=np.float64)[g], market_cap) * price
    by_grade = np.asarray(settings["amount_cap"], dtype=np.float64)[g]
    unit = float(settings["rounding_unit"])
    limit = np.zeros(len(grade))
    binding = np.empty(len(grade), dtype=object)
    for i in range(len(grade)):
        bounds = (("dti", by_dti[i]), ("ltv", by_ltv[i]), ("grade_cap", by_grade[i]))
        usable = (
            method[i] in REPAYMENT_METHODS
            and income[i] > 0
            and debt[i] >= 0
            and rate[i] >= 0
            and term[i] >= 1
            and price[i] > 0
            and market_cap[i] > 0
            and all(math.isfinite(b) for _, b in bounds)
        )
        if decision[i] == "decline":
            binding[i] = "declined"
        elif not usable:
            binding[i] = "missing_data"
        elif not capacity[i] > 0:
            binding[i] = "no_capacity"
        else:
            name, bound = min(bounds, key=lambda nb: nb[1])  # ties: the first, dti then ltv
            binding[i] = name
            limit[i] = math.floor(bound / unit + ROUNDING_SLACK) * unit
    return limit, binding


# --------------------------------------------------------------------------- the whole output


@dataclass(frozen=True)
class Recomputed:
    application_id: list[str]
    pd_raw: FloatArray
    pd_raw_float32: bool  # the raw PD is XGBoost's float32 probability (a booster champion)
    pd: FloatArray
    score: FloatArray
    grade: IntArray
    decision: ObjectArray
    policy_reasons: ObjectArray
    suggested_limit: FloatArray
    limit_constraint: ObjectArray
    factor: float
    scorecard: ScorecardResult | None
    booster_margin: FloatArray | None
    blend_weight: float | None  # the scorecard's weight in the blend's log-odds


def recompute(files: ModelFiles, params: dict[str, Any], applications: pd.DataFrame) -> Recomputed:
    """The golden output of ``files.champion`` on ``applications``, from plain formulas."""
    values = feature_values(files.features, applications)
    card = params["train"]["scorecard"]
    factor, offset = scaling(float(card["pdo"]), float(card["base_score"]), float(card["base_odds"]))
    scorecard = None
    z_card = None
    if files.scorecard is not None:
        settings = files.scorecard["settings"]
        card_factor, card_offset = scaling(settings["pdo"], settings["base_score"], settings["base_odds"])
        scorecard = scorecard_bins(files.scorecard, values)
        z_card = (card_offset - scorecard.total) / card_factor  # points -> log-odds
    margin = None if files.booster is None else tree_margin(files.booster, values)
    weight = None
    float32 = False
    if files.champion == "scorecard":
        assert z_card is not None
        pd_raw = sigmoid(z_card)
    elif files.champion == "xgboost":
        assert margin is not None
        pd_raw, float32 = xgboost_probability(margin), True
    else:
        assert files.blend is not None and z_card is not None and margin is not None
        assert files.blend["parts"] == ["scorecard", "xgboost"], files.blend
        weight = float(files.blend["weights"]["scorecard"])
        pd_raw = sigmoid(weight * z_card + (1.0 - weight) * margin)
    pd_cal = calibrate(files.calibrator, pd_raw)
    grade = grades(files.master_scale, pd_cal)
    market = market_ltv_cap(applications, params["policy"]["knock_outs"]["max_ltv"])
    decision, reasons = decisions(grade, knock_outs(applications, params["policy"], market), params["policy"])
    limit, binding = limits(applications, grade, decision, params["limits"], market)
    return Recomputed(
        application_id=[str(v) for v in applications[ID_COLUMN]],
        pd_raw=pd_raw,
        pd_raw_float32=float32,
        pd=pd_cal,
        score=offset - factor * logit(pd_cal),
        grade=grade,
        decision=decision,
        policy_reasons=reasons,
        suggested_limit=limit,
        limit_constraint=binding,
        factor=factor,
        scorecard=scorecard,
        booster_margin=margin,
        blend_weight=weight,
    )
