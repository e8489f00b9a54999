"""Every refusal of the what-if and of the scorecard's bin overrides fires, with its code and message.

Each module keeps its refusals in a public table, code -> what is refused
(:data:`scoring.decision.whatif.REFUSALS`, :data:`scoring.models.scorecard_bins.REFUSALS`), and
raises them as a :class:`~scoring.core.refusals.CodedError` carrying the code. The tests below are
parametrized over those tables: each code must have a case here that makes the module refuse
with that code and the exact message, so a refusal added to a table without a case fails, named.
The what-if scenario's own fields are checked by pydantic: one case per field of
:class:`~scoring.decision.config.WhatIfScenario`, taken from the model's fields.

The queue's and the behaviour score's refusals are in tests/test_collections_queue.py (they
share its fitted model), the history gate's in tests/test_history_gate_rules.py.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from scoring.core.refusals import CodedError
from scoring.decision.config import WhatIfConfig, WhatIfScenario
from scoring.decision.limits import LimitSettings
from scoring.decision.policy import PolicySettings
from scoring.decision.whatif import REFUSALS as WHATIF_REFUSALS
from scoring.decision.whatif import (
    WhatIfError,
    book_figures,
    book_rows,
    scenario_settings,
    shifted_applications,
)
from scoring.models.scorecard_bins import REFUSALS as BIN_REFUSALS
from scoring.models.scorecard_bins import (
    BinOverride,
    BinOverrideError,
    check_against_features,
    load_bin_overrides,
    parse_bin_overrides,
    suggested_entry,
    write_entry,
)

Call = Callable[[Path], object]


def refusal(call: Call, tmp_path: Path, error: type[CodedError]) -> CodedError:
    with pytest.raises(error) as raised:
        call(tmp_path)
    return raised.value


# --------------------------------------------------------------------------- the what-if

POLICY, LIMITS, CONFIG = PolicySettings(), LimitSettings(), WhatIfConfig()
# market caps from 0.7 up, limits.ltv_cap from 0.6, limits.dti_cap from 0.35: the messages below
# name the lowest cap a shift takes to 0 or below
assert min(POLICY.knock_outs.max_ltv.commercial_conventional, POLICY.knock_outs.max_ltv.used) == 0.7
assert (min(LIMITS.ltv_cap), min(LIMITS.dti_cap)) == (0.6, 0.35)
MARKET_CAPS = (
    "private_conventional",
    "commercial_conventional",
    "private_new_energy",
    "commercial_new_energy",
    "used",
)
OPEN_CAPS = POLICY.knock_outs.max_ltv.model_copy(update=dict.fromkeys(MARKET_CAPS, 1.0))
OPEN_MARKET = POLICY.model_copy(
    update={"knock_outs": POLICY.knock_outs.model_copy(update={"max_ltv": OPEN_CAPS})}
)


def applications() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "loan_amount": [100_000.0, 50_000.0],
            "annual_rate": [0.06, 0.08],
            "term_months": [36, 24],
            "repayment_method": ["equal_installment", "equal_principal"],
        }
    )


def scored() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pd": [0.01, 0.05],
            "grade": [1, 3],
            "decision": ["approve", "approve"],
            "suggested_limit": [90_000.0, np.nan],
        }
    )


def settings(scenario: WhatIfScenario, policy: PolicySettings = POLICY) -> Call:
    return lambda _: scenario_settings(scenario, policy, LIMITS)


# code -> every way to fire it: (the call, the exact message)
WHATIF_CASES: dict[str, list[tuple[Call, str]]] = {
    # a market cap; limits.ltv_cap (the market caps open at 1); limits.dti_cap: the message names the
    # field, the shift, the cap and its lowest value
    "cap_not_positive": [
        (
            settings(WhatIfScenario(max_ltv_shift=-0.75)),
            "whatif.scenario.max_ltv_shift -0.75: takes the market cap commercial_conventional (0.7 at its "
            "lowest) to -0.05; expected every cap above 0",
        ),
        (
            settings(WhatIfScenario(max_ltv_shift=-0.62), OPEN_MARKET),
            "whatif.scenario.max_ltv_shift -0.62: takes limits.ltv_cap (0.6 at its lowest) to -0.02; "
            "expected every cap above 0",
        ),
        (
            settings(WhatIfScenario(dti_cap_shift=-0.4)),
            "whatif.scenario.dti_cap_shift -0.4: takes limits.dti_cap (0.35 at its lowest) to -0.05; "
            "expected every cap above 0",
        ),
    ],
    "no_rate_column": [
        (
            lambda _: shifted_applications(
                applications().drop(columns="annual_rate"), WhatIfScenario(rate_shift=0.01)
            ),
            "whatif.scenario.rate_shift: the applications have no annual_rate column to shift",
        )
    ],
    "scored_rows_mismatch": [
        (
            lambda _: book_rows(applications(), scored().head(1), LIMITS, CONFIG),
            "whatif: 1 scored rows for 2 applications",
        )
    ],
    "outcomes_mismatch": [
        (
            lambda _: book_figures(book_rows(applications(), scored(), LIMITS, CONFIG), [0.0, 1.0, 0.0]),
            "whatif: 3 outcomes for 2 applications",
        )
    ],
}


@pytest.mark.parametrize("code", sorted(WHATIF_REFUSALS))
def test_each_refusal_of_the_whatif_has_its_code_and_message(code: str, tmp_path: Path) -> None:
    assert code in WHATIF_CASES, f"the what-if's refusal {code!r} has no case"
    for call, message in WHATIF_CASES[code]:
        error = refusal(call, tmp_path, WhatIfError)
        assert (error.code, str(error)) == (code, message)
        assert isinstance(error, ValueError)  # what callers of the what-if catch


def test_a_shift_that_leaves_every_cap_above_zero_is_taken() -> None:
    _, limits = scenario_settings(WhatIfScenario(max_ltv_shift=-0.55), OPEN_MARKET, LIMITS)
    assert min(limits.ltv_cap) == pytest.approx(0.05)


# each field of the scenario, given a value outside what it takes: (value, pydantic's error type)
SCENARIO_CASES: dict[str, tuple[Any, str]] = {
    "rate_shift": (1.5, "less_than_equal"),
    "max_ltv_shift": (-1.5, "greater_than_equal"),
    "dti_cap_shift": ("a lot", "float_parsing"),
    "approve_max_grade": (-1, "greater_than_equal"),
    "refer_max_grade": (2.5, "int_from_float"),
}


@pytest.mark.parametrize("field", sorted(WhatIfScenario.model_fields))
def test_each_field_of_the_scenario_refuses_a_value_it_does_not_take(field: str) -> None:
    assert field in SCENARIO_CASES, f"the scenario's field {field!r} has no case"
    value, kind = SCENARIO_CASES[field]
    with pytest.raises(ValidationError) as raised:
        WhatIfScenario.model_validate({field: value})
    ((error),) = raised.value.errors()
    assert (error["loc"], error["type"], error["input"]) == ((field,), kind, value)


def test_the_tables_of_the_whatif_have_no_case_left_over() -> None:
    assert set(WHATIF_CASES) == set(WHATIF_REFUSALS), sorted(set(WHATIF_CASES) ^ set(WHATIF_REFUSALS))
    assert set(SCENARIO_CASES) == set(WhatIfScenario.model_fields)
    with pytest.raises(ValidationError, match="rate_shft"):  # an unknown key too (a typo)
        WhatIfScenario.model_validate({"rate_shft": 0.02})


# --------------------------------------------------------------------------- the bin overrides

KEYS = "['splits', 'groups', 'trend', 'exclude', 'keep', 'reason']"
SECTIONS = "['synthetic', 'file']"
X = pd.DataFrame(
    {
        "driver": np.arange(10.0),  # training values 0 .. 9
        "cat": list("abcdabcdab"),  # levels a, b, c, d
        "blank": np.full(10, np.nan),  # numeric, no value
        "noise": np.arange(10.0),
    }
)


def entry(variable: str, raw: Any) -> Call:
    """The synthetic section's entry for ``variable``, parsed."""
    return lambda _: parse_bin_overrides({"synthetic": {variable: raw}}, "synthetic")


def fitted(variable: str, raw: dict[str, Any]) -> Call:
    """A well-formed entry, checked against :data:`X` (``noise`` excluded by the config)."""
    return lambda _: check_against_features(
        parse_bin_overrides({"synthetic": {variable: raw}}, "synthetic"), X, excluded=["noise"]
    )


def written_twice(tmp_path: Path) -> None:
    file = tmp_path / "bins.yaml"
    write_entry(file, "synthetic", "driver", {"splits": [2.0], "reason": "round"})
    write_entry(file, "synthetic", "driver", {"splits": [3.0], "reason": "round"})


def not_yaml(tmp_path: Path) -> object:
    file = tmp_path / "bins.yaml"
    file.write_text("synthetic: [unclosed\n")
    return load_bin_overrides(file, "synthetic")


ENTRY = "bin overrides synthetic: variable 'driver', entry"
AGAINST = "bin overrides: variable"
# code -> (the call, the message: exact, or its beginning where it ends with "..."; {tmp} is the
# test's folder)
BIN_CASES: dict[str, tuple[Call, str]] = {
    "file_missing": (
        lambda tmp: load_bin_overrides(tmp / "absent.yaml", "synthetic"),
        "bin overrides file {tmp}/absent.yaml does not exist (train.scorecard.bins_file)",
    ),
    "file_not_yaml": (not_yaml, "bin overrides file {tmp}/bins.yaml: not YAML (..."),
    "source_unknown": (
        lambda _: parse_bin_overrides({}, "files"),
        f"bin overrides: data source 'files'; expected one of {SECTIONS}",
    ),
    "document_not_a_mapping": (
        lambda _: parse_bin_overrides(["synthetic"], "synthetic"),
        f"bin overrides: list; expected sections {SECTIONS}",
    ),
    "section_unknown": (
        lambda _: parse_bin_overrides({"synthetc": {}}, "synthetic"),
        f"bin overrides: section 'synthetc'; expected sections {SECTIONS}",
    ),
    "section_not_a_mapping": (
        lambda _: parse_bin_overrides({"synthetic": ["driver"]}, "synthetic"),
        "bin overrides: section 'synthetic' is ['driver']; expected variable: entry",
    ),
    "variable_not_named": (
        lambda _: BinOverride.from_dict({"splits": [1.0], "reason": "r"}),
        "bin override: variable None, expected a variable name",
    ),
    "entry_not_a_mapping": (
        entry("driver", [1, 2]),
        f"{ENTRY} (the entry): [1, 2], expected a mapping of {KEYS}",
    ),
    "key_unknown": (
        entry("driver", {"split": [0.0], "reason": "r"}),
        f"{ENTRY} split: unknown key; expected some of {KEYS}",
    ),
    "reason_missing": (
        entry("driver", {"splits": [0.0], "reason": "  "}),
        f"{ENTRY} reason: '  '; expected the analyst's reason as text",
    ),
    "flag_not_boolean": (
        entry("driver", {"keep": "yes", "reason": "r"}),
        f"{ENTRY} keep: 'yes'; expected true or false",
    ),
    "exclude_joined": (
        entry("driver", {"exclude": True, "trend": "ascending", "reason": "r"}),
        f"{ENTRY} exclude: cannot join ['trend']",
    ),
    "ways_joined": (
        entry("driver", {"splits": [0.0], "groups": [["a"]], "reason": "r"}),
        f"{ENTRY} groups: cannot join splits: give one way to bin it",
    ),
    "nothing_to_override": (
        entry("driver", {"reason": "r"}),
        f"{ENTRY} (the entry): nothing to override; give splits, groups, trend, exclude or keep",
    ),
    "trend_unknown": (
        entry("driver", {"trend": "upwards", "reason": "r"}),
        f"{ENTRY} trend: 'upwards' is not a trend; expected one of ['auto', ...",
    ),
    "splits_not_a_list": (
        entry("driver", {"splits": 0.5, "reason": "r"}),
        f"{ENTRY} splits: 0.5; expected a non-empty list of cut points",
    ),
    "split_not_a_number": (
        entry("driver", {"splits": [0.0, float("inf")], "reason": "r"}),
        f"{ENTRY} splits: cut point inf is not a finite number",
    ),
    "splits_not_increasing": (
        entry("driver", {"splits": [0.5, 0.5], "reason": "r"}),
        f"{ENTRY} splits: cut points [0.5, 0.5] are not in increasing order (0.5 then 0.5); "
        "expected each cut point above the one before",
    ),
    "groups_not_a_list": (
        entry("driver", {"groups": "abc", "reason": "r"}),
        f"{ENTRY} groups: 'abc'; expected a non-empty list of groups of levels",
    ),
    "group_not_a_list": (
        entry("driver", {"groups": [["a"], []], "reason": "r"}),
        f"{ENTRY} groups[2]: []; expected a non-empty list of levels",
    ),
    "level_not_text": (
        entry("driver", {"groups": [["a", None]], "reason": "r"}),
        f"{ENTRY} groups[1]: level None is not a text value",
    ),
    "level_in_two_groups": (
        entry("driver", {"groups": [["a", "b"], ["b", "c"]], "reason": "r"}),
        f"{ENTRY} groups[2]: level 'b' is already in group 1; a level belongs to one group",
    ),
    "variable_excluded": (
        fitted("noise", {"exclude": True, "reason": "r"}),
        f"{AGAINST} 'noise', entry exclude: the variable is excluded by train.scorecard.exclude_features",
    ),
    "variable_unknown": (
        fitted("drivr", {"splits": [1.0], "reason": "r"}),
        f"{AGAINST} 'drivr', entry splits: no such variable; the scorecard's candidate variables are "
        "['blank', 'cat', 'driver', 'noise']",
    ),
    "splits_on_categorical": (
        fitted("cat", {"splits": [1.0], "reason": "r"}),
        f"{AGAINST} 'cat', entry splits: the variable is categorical; give groups of levels",
    ),
    "no_values_to_cut": (
        fitted("blank", {"splits": [1.0], "reason": "r"}),
        f"{AGAINST} 'blank', entry splits: the variable has no training values to cut",
    ),
    "split_out_of_range": (
        fitted("driver", {"splits": [0.0, 4.5], "reason": "r"}),  # a cut at the minimum: an empty first bin
        f"{AGAINST} 'driver', entry splits: cut point 0 is out of range: the training values run from "
        "0 to 9, so it would leave an empty bin; expected cut points above 0 and at most 9",
    ),
    "groups_on_numeric": (
        fitted("driver", {"groups": [["a"]], "reason": "r"}),
        f"{AGAINST} 'driver', entry groups: the variable is numeric; give splits (cut points)",
    ),
    "level_unknown": (
        fitted("cat", {"groups": [["a", "b", "z"], ["c", "d"]], "reason": "r"}),
        f"{AGAINST} 'cat', entry groups: level 'z' is not a level of the variable (['a', 'b', 'c', 'd'])",
    ),
    "level_in_no_group": (
        fitted("cat", {"groups": [["a", "b"], ["c"]], "reason": "r"}),
        f"{AGAINST} 'cat', entry groups: levels ['d'] are in no group; expected every level in one",
    ),
    "trend_on_categorical": (
        fitted("cat", {"trend": "ascending", "reason": "r"}),
        f"{AGAINST} 'cat', entry trend: the variable is categorical; "
        "a trend applies to numeric variables only",
    ),
    "no_optimiser_bins": (
        lambda _: suggested_entry({"driver": {"splits": [4.5]}}, "cat", "r"),
        "variable 'cat' has no optimiser bins in the selection evidence; expected one of ['driver']",
    ),
    "single_bin": (
        lambda _: suggested_entry({"driver": {"splits": []}}, "driver", "r"),
        "variable 'driver': the optimiser made a single bin; nothing to fix",
    ),
    "entry_exists": (
        written_twice,
        "{tmp}/bins.yaml: synthetic.driver already has an entry; edit it, or pass --force to replace it",
    ),
}


@pytest.mark.parametrize("code", sorted(BIN_REFUSALS))
def test_each_refusal_of_the_bin_overrides_has_its_code_and_message(code: str, tmp_path: Path) -> None:
    assert code in BIN_CASES, f"the bin overrides' refusal {code!r} has no case"
    call, message = BIN_CASES[code]
    error = refusal(call, tmp_path, BinOverrideError)
    message = message.replace("{tmp}", str(tmp_path))
    assert error.code == code, (error.code, str(error))
    if message.endswith("..."):
        assert str(error).startswith(message.removesuffix("...")), str(error)
    else:
        assert str(error) == message


def test_the_table_of_the_bin_overrides_has_no_case_left_over() -> None:
    assert set(BIN_CASES) == set(BIN_REFUSALS), sorted(set(BIN_CASES) ^ set(BIN_REFUSALS))


def test_a_refusal_keeps_its_code_through_pickling_and_an_unknown_code_is_a_bug() -> None:
    """A refusal raised in a worker process reaches the caller with its code; a raise with a code
    its table lacks is the library's own error, not a refusal of the input."""
    error = BinOverrideError("bin overrides: list; expected sections", "document_not_a_mapping")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.code, str(copy)) == (BinOverrideError, "document_not_a_mapping", str(error))
    with pytest.raises(AssertionError, match="refusal code 'no_such_code' is not in its table"):
        WhatIfError("message", "no_such_code")
