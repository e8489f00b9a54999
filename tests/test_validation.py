"""The validation gate (scoring.data.validation): a great-expectations suite built from the contract."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contract_support import contract_frame
from scoring.core.contract import (
    AUTO_LOAN_COLUMNS,
    SYNTHETIC_SPEC,
    DatasetSpec,
)
from scoring.data.config import RangeRule, ValidateConfig
from scoring.data.validation import (
    DataValidationError,
    ExpectationOutcome,
    ValidationReport,
    add_check_columns,
    build_suite,
    ephemeral_context,
    frame_batch_definition,
    frame_validator,
    ge_frame,
    numbered_suite,
    raise_for_failures,
    run_suite,
    validate_frame,
)

N_ROWS = 50
CONFIG = ValidateConfig()


def failures(report: ValidationReport) -> list[tuple[str, str | None]]:
    return [(o.expectation, o.column) for o in report.failures()]


def failure(report: ValidationReport) -> ExpectationOutcome:
    (only,) = report.failures()
    return only


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ValidationReport, Path, list[str]]]:
    """Validate the clean contract frame once, with Data Docs, from inside an empty working directory."""
    workdir = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(workdir)
        report = validate_frame(contract_frame(), SYNTHETIC_SPEC, CONFIG, docs_dir=Path("docs"))
        written = sorted(p.name for p in workdir.iterdir())
    yield report, workdir, written


def test_clean_contract_frame_passes(clean_run: tuple[ValidationReport, Path, list[str]]) -> None:
    report, _, _ = clean_run
    assert report.success
    assert report.n_rows == N_ROWS
    assert report.failures() == ()
    columns_checked = {o.column for o in report.outcomes}
    assert {c.name for c in AUTO_LOAN_COLUMNS} <= columns_checked
    assert json.loads(json.dumps(report.to_dict()))["n_failures"] == 0


def test_data_docs_site_is_built_in_docs_dir_and_nothing_else_is_written(
    clean_run: tuple[ValidationReport, Path, list[str]],
) -> None:
    report, workdir, written = clean_run
    assert written == ["docs"]  # no gx/, no uncommitted/ in the working directory
    docs = workdir / "docs"
    index = (docs / "index.html").read_text(encoding="utf-8")
    (page,) = (docs / "validations" / "scoring_validate").rglob("*.html")
    assert page.relative_to(docs).as_posix() in index  # the index links to this run's results
    text = " ".join(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")).split())
    n = len(report.outcomes)
    assert "Expectation Suite: scoring_validate" in text
    assert f"Evaluated Expectations {n} Successful Expectations {n}" in text


def test_the_same_frame_and_extract_date_give_the_same_data_docs_bytes(tmp_path: Path) -> None:
    """The site is a DVC output: a second build from the same frame and config is byte for byte
    the first (GE's run time, load time, cache-busting stamps and random element ids pinned), and
    the run is named and stamped after the extract date, not the wall clock."""
    import datetime as dt

    dated = CONFIG.model_copy(update={"as_of_date": dt.date(2030, 6, 30)})
    first, second = tmp_path / "one", tmp_path / "two"
    validate_frame(contract_frame(), SYNTHETIC_SPEC, dated, docs_dir=first)
    validate_frame(contract_frame(), SYNTHETIC_SPEC, dated, docs_dir=second)

    def tree(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert tree(first) == tree(second)
    (page,) = (first / "validations" / "scoring_validate").rglob("*.html")
    assert page.relative_to(first).parts[2:4] == ("extract-2030-06-30", "20300630T000000.000000Z")
    html = page.read_text(encoding="utf-8")
    assert dt.date.today().strftime("%Y%m%dT") not in html  # no stamp of the day it ran
    ids = re.findall(r"collapse-body-([0-9a-f-]{36})", html)
    assert ids and all(i.startswith("00000000-0000-4000-8000-") for i in ids)


def test_suite_is_built_from_contract_spec_and_config() -> None:
    config = ValidateConfig(ranges={"age": RangeRule(min=21, max=70)}, min_rows=10)
    suite = build_suite([c.name for c in AUTO_LOAN_COLUMNS], SYNTHETIC_SPEC, config)
    by_rule: dict[str, Any] = {e.meta["rule"]: e for e in suite.expectations}
    assert by_rule["too_few_rows"].min_value == 10
    income = by_rule["monthly_income_out_of_range"]
    assert (income.min_value, income.strict_min) == (0, True)
    age = by_rule["age_out_of_range"]
    assert (age.min_value, age.max_value) == (21, 70)  # config overrides the contract
    assert "bureau_score_missing" not in by_rule  # nullable: no row-level null rule ...
    assert by_rule["bureau_score_too_many_nulls"].mostly == pytest.approx(0.5)  # ... but a share bound
    assert by_rule["dealer_id_too_many_nulls"].mostly == pytest.approx(0.1)
    assert "age_missing" in by_rule
    assert by_rule["default_12m_target_not_binary"].value_set == [0, 1]
    # one expectation per rule code: no duplicates from overlapping roles and contract
    assert len(by_rule) == len(suite.expectations)


def test_missing_required_column_fails_naming_it() -> None:
    df = contract_frame().drop(columns=["monthly_income"])
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_to_exist", "monthly_income")]
    assert failure(report).observed == "column missing"


def test_missing_id_column_fails_without_crashing() -> None:
    df = contract_frame().drop(columns=["application_id"])
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_to_exist", "application_id")]


def test_duplicated_ids_fail_and_name_the_ids() -> None:
    df = contract_frame()
    df.loc[[3, 4], "application_id"] = "APP00002"
    df.loc[10, "application_id"] = "APP00011"
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_unique", "application_id")]
    assert failure(report).unexpected_examples == ["APP00002", "APP00011"]


def test_null_id_fails() -> None:
    df = contract_frame()
    df.loc[7, "application_id"] = None
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_not_be_null", "application_id")]
    assert failure(report).observed == f"1 null of {N_ROWS} rows"
    assert failure(report).unexpected_examples == ["<null id at row 7>"]


def test_target_value_2_fails_on_target() -> None:
    df = contract_frame()
    df.loc[12, "default_12m"] = 2
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_in_set", "default_12m")]
    assert failure(report).unexpected_examples == ["APP00012"]
    assert failure(report).expected == "values in {0, 1}"


def test_null_target_passes() -> None:
    df = contract_frame()
    df["default_12m"] = np.nan
    df.loc[:9, "default_12m"] = [0.0, 1.0] * 5
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert report.success, failures(report)


def test_age_out_of_range_fails_with_row_id() -> None:
    df = contract_frame()
    df.loc[17, "age"] = 150
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_between", "age")]
    outcome = failure(report)
    assert outcome.unexpected_examples == ["APP00017"]
    assert outcome.expected == "values between 18 and 80"
    assert outcome.observed == f"1 of {N_ROWS} rows unexpected (values: 150)"


def test_examples_are_ids_whatever_the_frame_index() -> None:
    df = contract_frame().set_index(pd.Index(range(100, 100 + N_ROWS), name="row"))
    df.loc[117, "age"] = 150  # the 18th row, APP00017
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_between", "age")]
    assert failure(report).unexpected_examples == ["APP00017"]


def test_negative_and_zero_monthly_income_fail() -> None:
    df = contract_frame()
    df.loc[5, "monthly_income"] = -100.0
    df.loc[6, "monthly_income"] = 0.0  # strictly positive
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_between", "monthly_income")]
    assert failure(report).unexpected_examples == ["APP00005", "APP00006"]
    assert failure(report).expected == "values > 0 and <= 10000000"


def test_config_range_rule_applies() -> None:
    df = contract_frame()
    df.loc[:4, "annual_rate"] = 0.5  # inside the contract's [0, 1], outside the configured bound
    config = ValidateConfig(ranges={"annual_rate": RangeRule(max=0.3), "not_a_column": RangeRule(min=0)})
    report = validate_frame(df, SYNTHETIC_SPEC, config)
    assert failures(report) == [("expect_column_values_to_be_between", "annual_rate")]
    assert failure(report).unexpected_examples == [f"APP{i:05d}" for i in range(5)]
    assert failure(report).expected == "values <= 0.3"


def test_min_rows_fails_on_short_frame() -> None:
    report = validate_frame(contract_frame(), SYNTHETIC_SPEC, ValidateConfig(min_rows=N_ROWS + 1))
    assert failures(report) == [("expect_table_row_count_to_be_between", None)]
    assert failure(report).observed == N_ROWS


def test_wrong_dtype_fails_type_check() -> None:
    df = contract_frame()
    df["age"] = df["age"].astype(str)
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert failures(report) == [
        ("expect_column_values_to_be_in_type_list", "age"),
        ("expect_column_values_to_be_between", "age"),  # GE cannot compare strings with numbers
    ]
    type_check, range_check = report.failures()
    assert (type_check.expected, type_check.observed) == ("a numeric dtype", "dtype str")
    assert str(range_check.observed).startswith("error: ")


def test_ge_validates_text_columns_encoded_and_reports_exactly_what_it_reports_on_the_text() -> None:
    df = contract_frame(200)
    df = df.astype({c: "str" for c in df.columns if pd.api.types.is_object_dtype(df[c].dtype)})
    df.loc[[3, 150], "employment_type"] = "freelancer"  # an unseen level (a warning)
    df.loc[7, "housing_status"] = None  # a null in a text column
    df.loc[[10, 11], "application_id"] = "APP00009"  # duplicated ids
    df.loc[[20], "channel"] = None
    df["age"] = df["age"].astype(str)  # a number column arriving as text: its type rule reads the dtype
    df = add_check_columns(df, SYNTHETIC_SPEC, CONFIG)
    suite = numbered_suite([str(c) for c in df.columns], SYNTHETIC_SPEC, CONFIG)

    view = ge_frame(df, suite)
    encoded = {str(c) for c in view.columns if isinstance(view[c].dtype, pd.CategoricalDtype)}
    text = {str(c) for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)}
    assert encoded == text - {"age"} and {"application_id", "employment_type", "channel"} <= encoded
    assert not isinstance(df["employment_type"].dtype, pd.CategoricalDtype)  # the input is untouched

    def results(frame: pd.DataFrame) -> list[dict[str, Any]]:
        validator = frame_validator(frame_batch_definition(ephemeral_context(None)), frame)
        return [r.to_json_dict() for r in run_suite(validator, suite, CONFIG).results]

    on_text, on_view = results(df), results(view)
    assert on_view == on_text
    failed = {
        (r["expectation_config"]["type"], r["expectation_config"]["kwargs"].get("column"))
        for r in on_view
        if not r["success"]
    }
    assert {
        ("expect_column_values_to_be_in_set", "employment_type"),
        ("expect_column_values_to_be_unique", "application_id"),
        ("expect_column_values_to_be_in_type_list", "age"),
    } <= failed


def test_bring_your_own_dataset_passes_without_contract() -> None:
    spec = DatasetSpec(id_column="ID", target_column="y", source="file")
    df = pd.DataFrame(
        {
            "ID": np.arange(20),
            "y": [0, 1] * 10,
            "age": np.full(20, 150),  # the contract's range does not apply
            "income": np.linspace(-5, 5, 20),
        }
    )
    report = validate_frame(df, spec, CONFIG)
    assert report.success, failures(report)
    # other columns only get a bound on their null share
    assert {o.column for o in report.outcomes} == {None, "ID", "y", "age", "income"}
    assert {o.kind for o in report.outcomes if o.column in {"age", "income"}} == {"too_many_nulls"}
    bad = df.assign(y=[0, 1, 0, 0, 2] * 4)
    report = validate_frame(bad, spec, CONFIG)
    assert failures(report) == [("expect_column_values_to_be_in_set", "y")]
    assert failure(report).unexpected_examples == ["4", "9", "14", "19"]


def test_raise_for_failures_message_names_expectation_column_observed_and_ids() -> None:
    df = contract_frame()
    df.loc[[3, 4], "application_id"] = "APP00002"
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    with pytest.raises(DataValidationError) as excinfo:
        raise_for_failures(report)
    message = str(excinfo.value)
    assert (
        "[duplicate_id] expect_column_values_to_be_unique on column 'application_id': "
        f"expected unique values, observed 3 of {N_ROWS} rows unexpected (values: APP00002); "
        "examples: APP00002"
    ) in message
    assert excinfo.value.report is report


def test_row_level_failures_do_not_raise() -> None:
    df = contract_frame()
    df.loc[17, "age"] = 150
    report = validate_frame(df, SYNTHETIC_SPEC, CONFIG)
    assert report.success and failure(report).severity == "quarantine"
    raise_for_failures(report)


def test_raise_for_failures_is_silent_on_success(clean_run: tuple[ValidationReport, Path, list[str]]) -> None:
    raise_for_failures(clean_run[0])
