"""Every rule of the performance history's gate fires, with its reason code, its rows and its examples.

The gate (:mod:`scoring.data.history_gate`) gives each failing row the reason codes of
:data:`~scoring.data.history_gate.RULE_CODES` (the expansion of its table ``RULES``: one code per
column for the per-column rules) and quarantines the row's whole loan; it stops instead, with a
:class:`~scoring.data.history_gate.HistoryInputError` whose code is one of ``STOPS``, when a
column is missing or too many rows would be held. :data:`CASES` is the damage table: for every
reason code, a damage of a small clean history (20 loans of six months) that breaks that rule,
with every code it must give and the rows that must carry each, and the examples the summary must
show. A code added to the gate without a case here fails
:func:`test_the_damage_table_covers_every_rule_of_the_gate` (and a code the gate gives without a
rule in ``RULES`` fails the gate itself).

The same, apart from the stops: tests/test_performance_history.py breaks a generated history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scoring.core.contract import PERFORMANCE_COLUMNS
from scoring.data.config import HistoryGateConfig
from scoring.data.history_gate import (
    LOAN_QUARANTINED,
    NUMERIC_COLUMNS,
    QUARANTINE_REASONS,
    RULE_CODES,
    RULES,
    STOPS,
    HistoryGateResult,
    HistoryInputError,
    check_history,
)

N_LOANS, N_MONTHS = 20, 6  # one loan is 5% of the rows: under the default 10% quarantine bound
TAG = "_row"  # carried through the gate, to follow rows
LOANS = tuple(f"L{k:02d}" for k in range(N_LOANS))
LOAN_AMOUNT = 1_000.0
OUTSIDER = "NOT-AN-APPLICATION"


def clean_history() -> pd.DataFrame:
    """Loan ``k`` on rows 6k..6k+5: January to June 2023, months on book 1..6, an instalment of
    100 paid in full each month on a loan of 1,000, current and active throughout."""
    months = np.arange(1, N_MONTHS + 1)
    frame = pd.DataFrame(
        {
            "loan_id": np.repeat(LOANS, N_MONTHS),
            "as_of_month": np.tile(pd.date_range("2023-01-01", periods=N_MONTHS, freq="MS"), N_LOANS),
            "months_on_book": np.tile(months, N_LOANS),
            "scheduled_payment": 100.0,
            "amount_paid": 100.0,
            "outstanding_principal": np.tile(LOAN_AMOUNT - 100.0 * months, N_LOANS),
            "days_past_due": 0,
            "bucket": "current",
            "status": "active",
        }
    )
    assert list(frame.columns) == [c.name for c in PERFORMANCE_COLUMNS]
    frame[TAG] = np.arange(len(frame))
    return frame


CLEAN = clean_history()


def row(loan: int, month: int) -> int:
    """The row of loan ``loan`` in month ``month`` (1 = January 2023)."""
    return N_MONTHS * loan + month - 1


def gate(
    frame: pd.DataFrame, unpassed: tuple[str, ...] = (), config: HistoryGateConfig | None = None
) -> HistoryGateResult:
    return check_history(
        frame,
        LOANS,
        passed_application_ids=[loan for loan in LOANS if loan not in unpassed],
        loan_amounts=pd.Series(LOAN_AMOUNT, index=list(LOANS)),
        config=config,
    )


# --------------------------------------------------------------------------- damages

Damage = Callable[[pd.DataFrame], pd.DataFrame]


def put(loan: int, month: int, **values: Any) -> Damage:
    """Set cells of one row; a text value in a typed column makes the column object (as a file
    reader gives a column holding text)."""

    def damage(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        for column, value in values.items():
            if isinstance(value, str) or value is None:
                out[column] = out[column].astype(object)
            elif isinstance(value, float) and not value.is_integer():  # NaN or a fraction
                out[column] = out[column].astype("float64")
            out.loc[row(loan, month), column] = value
        return out

    return damage


def renumber(loan: int, by: int) -> Damage:
    """Every month on book of one loan moved by ``by`` (the loan's months stay consistent)."""

    def damage(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        rows = [row(loan, m) for m in range(1, N_MONTHS + 1)]
        out.loc[rows, "months_on_book"] += by
        return out

    return damage


def drop(loan: int, month: int) -> Damage:
    return lambda frame: frame.drop(index=row(loan, month))


def duplicate(loan: int, month: int) -> Damage:
    """The row sent twice; the copy is tagged :data:`DUPLICATE`."""

    def damage(frame: pd.DataFrame) -> pd.DataFrame:
        copy = frame.loc[[row(loan, month)]].assign(**{TAG: DUPLICATE})
        return pd.concat([frame, copy], ignore_index=True)

    return damage


DUPLICATE = len(CLEAN)


def rename(loan: int, loan_id: str) -> Damage:
    def damage(frame: pd.DataFrame) -> pd.DataFrame:
        out = frame.copy()
        out.loc[out["loan_id"] == LOANS[loan], "loan_id"] = loan_id
        return out

    return damage


def no_damage(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


@dataclass(frozen=True)
class Case:
    """How one reason code is fired and what the gate must say.

    ``fires``: every code the damage gives, with the tags of the rows that must carry it (the
    rule's own code among them; another only where the damage necessarily breaks it too).
    ``examples``: the summary's examples of the rule's code, exactly, or, where ``prefix``, their
    beginnings (the loan and month, and the column: a parse failure shows the parsed value).
    ``unpassed``: applications left out of those the application gate passed.
    """

    rule: str
    damage: Damage
    fires: dict[str, tuple[int, ...]]
    examples: tuple[str, ...]
    prefix: bool = False
    unpassed: tuple[str, ...] = ()
    held_loans: tuple[str, ...] | None = None  # default: the loans of the rows in ``fires``


def _cases() -> list[Case]:
    cases: list[Case] = []
    # -- a required value missing: on the loan's last month, so that its sequence stays whole
    for k, spec in enumerate(PERFORMANCE_COLUMNS):
        r, code = row(k, 6), f"{spec.name}_missing"
        value = np.nan if spec.name in NUMERIC_COLUMNS else None
        if spec.name == "loan_id":  # a row without its loan is held alone; the loan's other rows pass
            example = "nan 2023-06: loan_id=nan"
        elif spec.name == "as_of_month":  # no month to show
            example = f"{LOANS[k]}: as_of_month=NaT"
        else:
            example = f"{LOANS[k]} 2023-06: {spec.name}=nan"
        cases.append(Case(code, put(k, 6, **{spec.name: value}), {code: (r,)}, (example,)))
    # -- a number that is text, and a month that is no date (the last month: see above)
    for k, column in enumerate(NUMERIC_COLUMNS, start=10):
        code = f"{column}_not_a_number"
        cases.append(
            Case(
                code,
                put(k, 6, **{column: "ten"}),
                {code: (row(k, 6),)},
                (f"{LOANS[k]} 2023-06: {column}=",),
                prefix=True,
            )
        )
    cases.append(
        Case(
            "as_of_month_not_a_date",
            put(15, 6, as_of_month="2023-13-01"),
            {"as_of_month_not_a_date": (row(15, 6),)},
            (f"{LOANS[15]}: as_of_month=",),
            prefix=True,
        )
    )
    # -- out of the contract's bounds, each without breaking a rule of the sequence
    cases += [
        Case(  # the whole loan numbered from 0: consistent, but month on book 0 does not exist
            "months_on_book_out_of_range",
            renumber(0, -1),
            {"months_on_book_out_of_range": (row(0, 1),)},
            ("L00 2023-01: months_on_book=0.0",),
        ),
        Case(
            "scheduled_payment_out_of_range",
            put(1, 3, scheduled_payment=-1.0),
            {"scheduled_payment_out_of_range": (row(1, 3),)},
            ("L01 2023-03: scheduled_payment=-1.0",),
        ),
        Case(
            "amount_paid_out_of_range",
            put(2, 3, amount_paid=-5.0),
            {"amount_paid_out_of_range": (row(2, 3),)},
            ("L02 2023-03: amount_paid=-5.0",),
        ),
        Case(  # the last month: a balance that falls below 0 breaks nothing else
            "outstanding_principal_out_of_range",
            put(3, 6, outstanding_principal=-50.0),
            {"outstanding_principal_out_of_range": (row(3, 6),)},
            ("L03 2023-06: outstanding_principal=-50.0",),
        ),
        Case(  # a negative count is no days-past-due the bucket could be checked against
            "days_past_due_out_of_range",
            put(4, 3, days_past_due=-1),
            {"days_past_due_out_of_range": (row(4, 3),)},
            ("L04 2023-03: days_past_due=-1.0",),
        ),
    ]
    # -- levels, and the bucket against days past due
    cases += [
        Case(
            "bucket_not_allowed",
            put(5, 3, bucket="M9"),
            {"bucket_not_allowed": (row(5, 3),)},
            ("L05 2023-03: bucket='M9'",),
        ),
        Case(
            "status_not_allowed",
            put(6, 3, status="paused"),
            {"status_not_allowed": (row(6, 3),)},
            ("L06 2023-03: status='paused'",),
        ),
        Case(  # 45 days past due is M2, not current
            "bucket_does_not_match_dpd",
            put(7, 3, days_past_due=45),
            {"bucket_does_not_match_dpd": (row(7, 3),)},
            ("L07 2023-03: bucket='current'",),
        ),
    ]
    # -- the sequence of a loan's months
    cases += [
        Case(
            "duplicate_loan_month",
            duplicate(8, 3),
            {"duplicate_loan_month": (row(8, 3), DUPLICATE)},
            ("L08 2023-03", "L08 2023-03"),
        ),
        Case(  # April says month on book 5: the loan would have started a month earlier
            "months_on_book_inconsistent",
            put(9, 4, months_on_book=5),
            {"months_on_book_inconsistent": (row(9, 4),)},
            ("L09 2023-04: months_on_book=5.0",),
        ),
        Case("month_gap", drop(10, 3), {"month_gap": (row(10, 4),)}, ("L10 2023-04",)),
        Case(  # current in March, M3 (75 days) in April
            "bucket_skip",
            put(11, 4, bucket="M3", days_past_due=75),
            {"bucket_skip": (row(11, 4),)},
            ("L11 2023-04: bucket='M3'",),
        ),
        Case(
            "balance_rise",
            put(12, 4, outstanding_principal=5_700.0),
            {"balance_rise": (row(12, 4),)},
            ("L12 2023-04: outstanding_principal=5700.0",),
        ),
        Case(  # 3,100 paid on a balance of 700 and an instalment of 100
            "paid_more_than_owed",
            put(13, 4, amount_paid=3_100.0),
            {"paid_more_than_owed": (row(13, 4),)},
            ("L13 2023-04: amount_paid=3100.0",),
        ),
        Case(  # closed in April: May and June should not exist
            "row_after_loan_ended",
            put(14, 4, status="closed"),
            {"row_after_loan_ended": (row(14, 5), row(14, 6))},
            ("L14 2023-05: status='active'", "L14 2023-06: status='active'"),
        ),
    ]
    # -- the loans against the applications
    cases += [
        Case(
            "loan_not_in_applications",
            rename(16, OUTSIDER),
            {"loan_not_in_applications": tuple(row(16, m) for m in range(1, 7))},
            tuple(f"{OUTSIDER} 2023-0{m}: loan_id='{OUTSIDER}'" for m in range(1, 6)),
            held_loans=(OUTSIDER,),
        ),
        Case(
            "application_quarantined",
            no_damage,
            {"application_quarantined": tuple(row(17, m) for m in range(1, 7))},
            tuple(f"L17 2023-0{m}: loan_id='L17'" for m in range(1, 6)),
            unpassed=("L17",),
        ),
    ]
    return cases


CASES: dict[str, Case] = {case.rule: case for case in _cases()}
assert len(CASES) == len(_cases()), "one case per rule"


# --------------------------------------------------------------------------- tests


def test_the_clean_history_passes_whole() -> None:
    result = gate(CLEAN)
    assert result.quarantine.empty and result.summary["quarantine_by_reason"] == {}
    pd.testing.assert_frame_equal(result.passed, CLEAN)


def test_the_damage_table_covers_every_rule_of_the_gate() -> None:
    """Guards the table itself: a case for every reason code the gate's own table gives, and only
    codes of that table fired."""
    missing = sorted(set(RULE_CODES) - set(CASES))
    assert not missing, f"rules of the history gate that no case fires: {missing}"
    unknown = sorted({code for case in CASES.values() for code in case.fires} - set(RULE_CODES))
    assert not unknown, f"cases fire codes that are not in RULE_CODES: {unknown}"
    assert set(RULE_CODES.values()) == set(RULES)
    # each code's description in RULES starts with the code (per column: its column's name in it)
    columns = {c.name for c in PERFORMANCE_COLUMNS}
    for code, rule in RULE_CODES.items():
        template = RULES[rule].split(":", 1)[0]
        column = code.removesuffix(template.removeprefix("{column}")) if "{column}" in template else ""
        assert not column or column in columns, (code, column)
        assert RULES[rule].replace("{column}", column).startswith(f"{code}: "), (code, RULES[rule])
    # the stops: one test each below
    assert set(STOPS) == set(STOP_TESTS), sorted(set(STOPS) ^ set(STOP_TESTS))


@pytest.mark.parametrize("rule", sorted(RULE_CODES))
def test_each_rule_quarantines_its_rows_and_their_loan_with_its_code(rule: str) -> None:
    assert rule in CASES, f"the history gate's rule {rule!r} has no case"
    case = CASES[rule]
    frame = case.damage(CLEAN.copy())
    result = gate(frame, case.unpassed)
    summary = result.summary
    assert summary["quarantine_by_reason"] == {code: len(rows) for code, rows in case.fires.items()}, rule
    if case.prefix:
        assert len(summary["examples"][rule]) == len(case.examples)
        for got, start in zip(summary["examples"][rule], case.examples, strict=True):
            assert got.startswith(start), (got, start)
    else:
        assert summary["examples"][rule] == list(case.examples)
    assert summary["rules"] == RULES
    # every failing row carries exactly its codes; the other rows of its loan are held with it
    failing = {tag for rows in case.fires.values() for tag in rows}
    expected_codes = {tag: {c for c, rows in case.fires.items() if tag in rows} for tag in failing}
    held = result.quarantine
    got = {int(t): set(r.split(";")) for t, r in zip(held[TAG], held[QUARANTINE_REASONS], strict=True)}
    loans = case.held_loans or tuple(sorted(set(frame.loc[frame[TAG].isin(failing), "loan_id"].dropna())))
    loan_rows = set(frame.loc[frame["loan_id"].isin(loans), TAG]) | failing
    assert set(got) == loan_rows, rule
    for tag, codes in got.items():
        assert codes == expected_codes.get(tag, {LOAN_QUARANTINED}), (tag, codes)
    assert set(result.passed[TAG]) == set(frame[TAG]) - loan_rows
    assert summary["n_input"] == len(frame) == summary["n_passed"] + summary["n_quarantined"]
    assert summary["rows_held_with_their_loan"] == len(loan_rows - failing)


# --------------------------------------------------------------------------- the stops


def _columns_missing() -> None:
    for spec in PERFORMANCE_COLUMNS:
        with pytest.raises(HistoryInputError) as raised:
            gate(CLEAN.drop(columns=spec.name))
        assert raised.value.code == "columns_missing"
        assert str(raised.value).startswith(
            f"performance history: missing columns ['{spec.name}']; expected the columns "
            f"{[c.name for c in PERFORMANCE_COLUMNS]}"
        )


def _quarantine_share_exceeded() -> None:
    # three loans with a negative payment: 18 of 120 rows (15%) would be held, over 10%
    frame = CLEAN.copy()
    for k in (0, 1, 2):
        frame = put(k, 3, amount_paid=-5.0)(frame)
    with pytest.raises(HistoryInputError) as raised:
        gate(frame)
    assert raised.value.code == "quarantine_share_exceeded"
    assert str(raised.value) == (
        "performance history: 18 of 120 rows (15.0%) would be quarantined, expected at most 10% "
        "(validate.performance.max_quarantine_share): the file looks broken. Most frequent reasons: "
        "amount_paid_out_of_range (3 rows, e.g. L00 2023-03: amount_paid=-5.0, L01 2023-03: amount_paid=-5.0)"
    )
    # at the bound the same file passes, its three loans held
    result = gate(frame, config=HistoryGateConfig(max_quarantine_share=0.15))
    assert result.summary["n_loans_quarantined"] == 3


STOP_TESTS: dict[str, Callable[[], None]] = {
    "columns_missing": _columns_missing,
    "quarantine_share_exceeded": _quarantine_share_exceeded,
}


@pytest.mark.parametrize("stop", sorted(STOPS))
def test_each_stop_raises_its_code_with_its_message(stop: str) -> None:
    assert stop in STOP_TESTS, f"the history gate's stop {stop!r} has no case"
    STOP_TESTS[stop]()
