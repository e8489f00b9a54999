"""Every monitoring alert reaches amber and red, each on a damage made for it, with the value it shows.

:data:`scoring.monitoring.monitor.RULES` lists the alerts. :data:`CASES` holds, for every rule and
for amber and red, a damage of one month of a small synthetic portfolio (three reference months,
then a clean month and the damaged one, 1,000 applications each, six months of history per loan)
that takes that rule to that light; the test checks the light of both judged months (green, then
the damaged one's), the alert's first amber-or-red and first red month, and the value it shows,
against figures worked out here from the damage (PSI from the moved shares, the AUC from the
defaults of the two PD levels, the Jeffreys and binomial p-values with scipy). A rule added to
RULES without its two cases fails :func:`test_the_damage_table_covers_every_alert_and_light`.

The portfolio: in every month, application ``i`` of 1,000 has ``x`` and the score evenly spread
(``x = (i + 0.5) / 1000``, ``score = 500 + 200 x``: each frozen decile bin holds 100 rows), a PD
of 2% (the first 500) or 8% (the other 500), grade 1, and is approved when ``i < 800``. Its loan
is current for six months, or early delinquent (M1, M2 in months 2-3, then cured: 30+ by month 3
on book, never 90+), or defaults (M1 in month 3, M4+ in month 6: 90+ within six months, not 30+ by
month 3). The reference and clean months have 10 + 40 defaults (2% and 8% of each PD level, 5% in
all: the mean PD) and 100 early delinquent loans (10%, so the reference ratio observed / PD is 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta, binom

from scoring.decision.grades import ValidationTestSettings
from scoring.monitoring.config import MonitorConfig
from scoring.monitoring.monitor import RULES, MonitoringResult, run_monitoring
from scoring.monitoring.profile import build_profile

N = 1_000  # applications per month
REFERENCE = ("2021-01", "2021-02", "2021-03")  # the profile's development window
CLEAN, DAMAGED = "2021-04", "2021-05"  # the judged months
DEV_AUC = 0.66  # the profile's development AUC: the clean months' AUC is 0.658
CONFIG = MonitorConfig(default_months_on_book=6)  # 90+ within six months; the rest at the defaults
TESTS = ValidationTestSettings()
PATHS = {
    "good": ["current"] * 6,
    "early": ["current", "M1", "M2", "current", "current", "current"],
    "default": ["current", "current", "M1", "M2", "M3", "M4+"],
}
DPD = {"current": 0, "M1": 15, "M2": 45, "M3": 75, "M4+": 100}
ALERTS = [(rule, light) for rule in RULES for light in ("amber", "red")]
"""What the table must cover: every rule of monitoring's RULES, amber and red."""


@dataclass(frozen=True)
class Month:
    """One cohort month: ``moved_score``/``moved_x``: per 100 applications, how many have their
    score / x moved into the top decile bin; ``approved``: applications approved (the first ones);
    ``defaults``: (in the 2% PD half, in the 8% half); ``early``: early delinquent loans."""

    moved_score: int = 0
    moved_x: int = 0
    approved: int = 800
    defaults: tuple[int, int] = (10, 40)
    early: int = 100


def month_rows(label: str, month: Month) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The month's applications as scored, and their loans' six months of history."""
    i = np.arange(N)
    u = (i + 0.5) / N
    moved = (i % 100) < month.moved_score
    top = (N - 0.5) / N  # the last application's position: in the top decile bin
    ids = np.array([f"{label}-{k:04d}" for k in i])
    low = i < N // 2
    batch = pd.DataFrame(
        {
            "application_id": ids,
            "application_date": pd.Timestamp(f"{label}-01"),
            "x": np.where((i % 100) < month.moved_x, top, u),
            "pd": np.where(low, 0.02, 0.08),
            "score": 500.0 + 200.0 * np.where(moved, top, u),
            "grade": 1,
            "decision": np.where(i < month.approved, "approve", "decline"),
        }
    )
    d_low, d_high = month.defaults
    path = np.full(N, "good", dtype=object)
    path[:d_low] = "default"
    path[N // 2 : N // 2 + d_high] = "default"
    # the early delinquent: spread over both halves, by i % 10 then i
    candidates = sorted((k for k in range(N) if path[k] == "good"), key=lambda k: (k % 10, k))
    path[candidates[: month.early]] = "early"
    first = pd.Timestamp(f"{label}-01")
    rows = []
    for mob in range(1, 7):
        buckets = [PATHS[p][mob - 1] for p in path]
        rows.append(
            pd.DataFrame(
                {
                    "loan_id": ids,
                    "as_of_month": first + pd.DateOffset(months=mob),
                    "months_on_book": mob,
                    "scheduled_payment": 100.0,
                    "amount_paid": [100.0 if b == "current" else 0.0 for b in buckets],
                    "outstanding_principal": 10_000.0 - 100.0 * mob,
                    "days_past_due": [DPD[b] for b in buckets],
                    "bucket": buckets,
                    "status": "active",
                }
            )
        )
    return batch, pd.concat(rows, ignore_index=True)


def monitor(damaged: Month, **overrides: object) -> MonitoringResult:
    """The reference months and the clean one as :class:`Month` (), the damaged one as given."""
    months = {label: Month() for label in (*REFERENCE, CLEAN)} | {DAMAGED: damaged}
    parts = {label: month_rows(label, m) for label, m in months.items()}
    batch = pd.concat([b for b, _ in parts.values()], ignore_index=True)
    history = pd.concat([h for _, h in parts.values()], ignore_index=True)
    reference = batch[batch["application_date"] < pd.Timestamp(f"{CLEAN}-01")].reset_index(drop=True)
    profile = build_profile(
        reference[["x", "application_date"]],
        reference[["pd", "score", "grade", "decision"]],
        ["x"],
        "application_date",
        10,
        DEV_AUC,
    )
    config = CONFIG.model_copy(update=overrides)
    return run_monitoring(batch, profile, config, TESTS, "application_id", "application_date", history)


# --------------------------------------------------------------------------- figures of a damage


def psi_moved(per_100: int) -> float:
    """PSI of a month with ``per_100`` of every 100 rows moved into the top of ten equal bins."""
    q = per_100 / 100
    rest, top = 0.1 * (1 - q), 0.1 * (1 - q) + q
    return float(9 * (rest - 0.1) * np.log(rest / 0.1) + (top - 0.1) * np.log(top / 0.1))


def auc_two_levels(defaults: tuple[int, int]) -> float:
    """AUC of a month's PDs: a default at 8% ranks above every non-default at 2%, ties count half."""
    low, high = defaults
    n_low = n_high = N // 2
    pairs = (low + high) * (N - low - high)
    wins = high * (n_low - low) + 0.5 * (high * (n_high - high) + low * (n_low - low))
    return wins / pairs


def jeffreys(defaults: tuple[int, int]) -> float:
    d = sum(defaults)
    return float(beta.cdf(0.05, d + 0.5, N - d + 0.5))


def early_p(events: int) -> float:
    """One-sided binomial p of ``events`` early delinquent loans where 10% are expected."""
    return float(binom.sf(events - 1, N, 0.10))


# --------------------------------------------------------------------------- the damage table


@dataclass(frozen=True)
class Case:
    """A damage that takes ``rule`` to ``light`` in the damaged month; ``value``: what the alert
    shows for its first amber-or-red month (a number, or text); ``in_band``: the damage's figure,
    worked out here, lies in the light's band (the case is what it says)."""

    rule: str
    light: str
    month: Month
    value: float | str
    in_band: bool


def _band(value: float, amber: float, red: float, light: str) -> bool:
    return (amber <= value < red) if light == "amber" else value >= red


def _p_band(p: float, amber_p: float, red_p: float, light: str) -> bool:
    return (red_p <= p < amber_p) if light == "amber" else p < red_p


def _cases() -> list[Case]:
    cases: list[Case] = []
    psi, auc_drop, points = CONFIG.score_psi, CONFIG.auc_drop, CONFIG.approval_rate_points
    for light, moved in (("amber", 15), ("red", 30)):
        cases.append(
            Case(
                "score_psi",
                light,
                Month(moved_score=moved),
                psi_moved(moved),
                _band(psi_moved(moved), psi.amber, psi.red, light),
            )
        )
    # a feature's CSI is red only while the score's PSI is amber too (feature_csi_red_needs_score_shift)
    csi = CONFIG.feature_csi
    cases += [
        Case(
            "feature_csi",
            "amber",
            Month(moved_x=15),
            f"x {psi_moved(15):.3f}",
            _band(psi_moved(15), csi.amber, csi.red, "amber"),
        ),
        Case(
            "feature_csi",
            "red",
            Month(moved_x=30, moved_score=15),
            f"x {psi_moved(30):.3f}",
            _band(psi_moved(30), csi.amber, csi.red, "red")
            and _band(psi_moved(15), psi.amber, psi.red, "amber"),
        ),
    ]
    for light, approved in (("amber", 730), ("red", 650)):
        change = 100 * (approved / N - 0.8)
        cases.append(
            Case(
                "approval_rate",
                light,
                Month(approved=approved),
                change,
                _band(abs(change), points.amber, points.red, light),
            )
        )
    for light, defaults in (("amber", (13, 50)), ("red", (15, 60))):
        cases.append(
            Case(
                "backtest",
                light,
                Month(defaults=defaults),
                f"observed {sum(defaults) / N:.4f} vs PD 0.0500",
                _p_band(jeffreys(defaults), TESTS.yellow_p, TESTS.red_p, light),
            )
        )
    # the same 50 defaults as the clean months, less and less told apart by the PDs
    for light, defaults in (("amber", (18, 32)), ("red", (25, 25))):
        cases.append(
            Case(
                "discrimination",
                light,
                Month(defaults=defaults),
                f"AUC {auc_two_levels(defaults):.3f} vs {DEV_AUC:.3f}",
                _band(DEV_AUC - auc_two_levels(defaults), auc_drop.amber, auc_drop.red, light),
            )
        )
    # expected: 5% mean PD x the reference ratio 2 = 10%; amber by the factor (1.35) though red by
    # chance (the light is the milder of the two), then red by both
    rule = CONFIG.early_delinquency
    for light, early in (("amber", 135), ("red", 160)):
        cases.append(
            Case(
                "early_delinquency",
                light,
                Month(early=early),
                f"{early / N:.4f} vs expected 0.1000",
                _band(early / 100, rule.factor.amber, rule.factor.red, light)
                and _p_band(early_p(early), rule.amber_p, rule.red_p, "red"),
            )
        )
    return cases


CASES: dict[tuple[str, str], Case] = {(case.rule, case.light): case for case in _cases()}
assert len(CASES) == len(_cases()), "one case per rule and light"


@pytest.fixture(scope="module")
def clean() -> MonitoringResult:
    return monitor(Month())


def test_the_clean_months_are_green_on_every_rule(clean: MonitoringResult) -> None:
    """The baseline the cases damage: both judged months green on every rule (none n/a: each
    rule is judged), nothing fired, no retraining."""
    lights = clean.lights.set_index("label")
    assert list(lights.index) == [CLEAN, DAMAGED]
    assert (lights[list(RULES)] == "green").all().all(), lights
    assert clean.alerts["overall"] == "green" and not clean.alerts["retrain"]["recommended"]
    assert clean.summary["early_delinquency_reference_ratio"] == pytest.approx(2.0)
    cohorts = clean.backtest_cohorts.set_index("cohort")  # type: ignore[union-attr]
    assert cohorts.loc[CLEAN, "auc"] == pytest.approx(auc_two_levels((10, 40)))


def test_the_damage_table_covers_every_alert_and_light() -> None:
    """Guards the table: an amber and a red case for every rule of monitoring's RULES."""
    wanted = set(ALERTS)
    missing = sorted(wanted - set(CASES))
    assert not missing, f"monitoring alerts with no case reaching that light: {missing}"
    assert not set(CASES) - wanted, sorted(set(CASES) - wanted)


@pytest.mark.parametrize(("rule", "light"), ALERTS, ids=[f"{rule}-{light}" for rule, light in ALERTS])
def test_each_alert_reaches_its_light_on_its_damage(rule: str, light: str) -> None:
    assert (rule, light) in CASES, f"the monitoring alert {rule!r} has no case reaching {light}"
    case = CASES[(rule, light)]
    assert case.in_band, "the damage does not give the figure the case says"
    result = monitor(case.month)
    lights = result.lights.set_index("label")[rule]
    assert lights.to_dict() == {CLEAN: "green", DAMAGED: light}
    alert = result.alerts["rules"][rule]
    assert alert["light"] == light
    assert alert["first_fired"] == DAMAGED
    assert alert["first_red"] == (DAMAGED if light == "red" else None)
    assert (alert["months_amber_or_red"], alert["months_red"]) == (1, int(light == "red"))
    if isinstance(case.value, str):
        assert alert["first_fired_value"] == case.value
    else:
        assert alert["first_fired_value"] == pytest.approx(case.value, rel=1e-9)
    assert alert["latest"] == {"month": DAMAGED, "light": light, "value": alert["first_fired_value"]}


def test_a_shifted_feature_alone_stays_amber_unless_configured_otherwise() -> None:
    """The red CSI of the feature_csi red case, without the score's shift: amber (to investigate),
    and red once feature_csi_red_needs_score_shift is off."""
    shifted = replace(CASES[("feature_csi", "red")].month, moved_score=0)
    assert monitor(shifted).alerts["rules"]["feature_csi"]["light"] == "amber"
    strict = monitor(shifted, feature_csi_red_needs_score_shift=False)
    assert strict.alerts["rules"]["feature_csi"]["light"] == "red"
