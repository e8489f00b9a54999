"""params.yaml parsing: defaults, the shipped file, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scoring.config import load_params, parse_params
from scoring.core.settings import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_shipped_params_parse_and_match_defaults_where_not_overridden() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.data.source == "synthetic"
    assert params.data.synthetic.n_applications >= 100
    assert params.validate_.min_rows >= 1
    assert 0 < params.split.valid_fraction < 0.5


def test_unknown_top_level_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'trian'"):
        parse_params({"trian": {}})


def test_typo_in_nested_section_names_its_full_path(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"]["xgboost"]["learning_rat"] = 0.1
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_params(path)
    assert "unknown key 'train.xgboost.learning_rat'" in str(err.value)
    assert str(path) in str(err.value)


def test_bad_value_names_key_and_value() -> None:
    with pytest.raises(ConfigError, match=r"'split.valid_fraction'.*got 0.9"):
        parse_params({"split": {"valid_fraction": 0.9}})


def test_wrong_literal_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"'data.source'"):
        parse_params({"data": {"source": "sql"}})


def test_immature_months_must_leave_labelled_history() -> None:
    with pytest.raises(ConfigError, match="immature_months"):
        parse_params({"data": {"synthetic": {"months": 24, "immature_months": 24}}})


def test_missing_file_and_non_mapping_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_params(bad)


def test_config_is_immutable() -> None:
    params = parse_params({})
    with pytest.raises(ValueError, match="frozen"):
        params.split.oot_months = 3  # type: ignore[misc]


def test_the_synthetic_source_validates_against_its_own_extract_date_not_the_calendar() -> None:
    """With the synthetic source and no as_of_date, the gate's extract date is the portfolio's
    last application day (so a run gives the same outputs on any day); set, it is kept; with a
    file it stays unset (today, at run time)."""
    import datetime as dt

    params = parse_params({"data": {"synthetic": {"start_date": "2020-03-01", "months": 34}}})
    assert params.validate_.as_of_date == dt.date(2022, 12, 31)
    assert parse_params({}).validate_.as_of_date == dt.date(2023, 12, 31)
    pinned = parse_params({"validate": {"as_of_date": "2030-06-30"}})
    assert pinned.validate_.as_of_date == dt.date(2030, 6, 30)
    assert parse_params({"data": {"source": "file"}}).validate_.as_of_date is None
