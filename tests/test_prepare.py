"""Bring-your-own data: reading an analyst's file and normalising only what the stages rely on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scoring.core.contract import SYNTHETIC_SPEC
from scoring.core.io import DataReadError
from scoring.data.config import DataConfig, FileDataConfig, SyntheticDataConfig
from scoring.data.prepare import ROW_ID_COLUMN, prepare_file, prepare_source


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "loans.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def loans() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "LoanID": ["L1", "L2", "L3", "L4"],
            "Opened": ["2021-01-05", "2021-02-11", "2021-03-01", "2021-04-20"],
            "Income": [5000, 7000, 3000, 9000],
            "Purpose": ["car", "home", "car", "other"],
            "Status": ["bad", "good", "good", None],
        }
    )


def test_declared_roles_are_recorded_and_dates_parsed(tmp_path: Path) -> None:
    config = FileDataConfig(
        path=write_csv(tmp_path, loans()),
        id_column="LoanID",
        target_column="Status",
        date_column="Opened",
        positive_label="bad",
        drop_columns=["Purpose"],
    )
    prepared = prepare_file(config)
    assert prepared.spec.id_column == "LoanID" and prepared.spec.date_column == "Opened"
    assert prepared.spec.non_feature_columns == ("LoanID", "Status", "Opened", "Purpose")
    assert pd.api.types.is_datetime64_any_dtype(prepared.applications["Opened"])
    assert prepared.truth.empty and list(prepared.truth.columns) == ["application_id", "true_pd"]


def test_positive_label_maps_target_and_keeps_nulls(tmp_path: Path) -> None:
    config = FileDataConfig(path=write_csv(tmp_path, loans()), target_column="Status", positive_label="bad")
    target = prepare_file(config).applications["Status"]
    assert target.tolist()[:3] == [1, 0, 0]
    assert pd.isna(target.iloc[3])


def test_rows_are_numbered_when_there_is_no_id(tmp_path: Path) -> None:
    prepared = prepare_file(FileDataConfig(path=write_csv(tmp_path, loans()), target_column="Status"))
    assert prepared.spec.id_column == ROW_ID_COLUMN
    assert prepared.applications[ROW_ID_COLUMN].tolist() == [
        "R00000001",
        "R00000002",
        "R00000003",
        "R00000004",
    ]


def test_parquet_is_read_like_csv(tmp_path: Path) -> None:
    path = tmp_path / "loans.parquet"
    loans().to_parquet(path)
    prepared = prepare_file(FileDataConfig(path=path, id_column="LoanID", target_column="Status"))
    assert len(prepared.applications) == 4


def test_declared_column_missing_from_file_is_named(tmp_path: Path) -> None:
    config = FileDataConfig(path=write_csv(tmp_path, loans()), id_column="ID", target_column="Status")
    with pytest.raises(DataReadError, match=r"declared columns not in the file: id_column='ID'"):
        prepare_file(config)


def test_unparseable_dates_are_named_with_examples(tmp_path: Path) -> None:
    frame = loans()
    frame.loc[1, "Opened"] = "31/02/2021?"
    config = FileDataConfig(path=write_csv(tmp_path, frame), target_column="Status", date_column="Opened")
    with pytest.raises(DataReadError, match=r"column 'Opened': values \['31/02/2021\?'\] are not dates"):
        prepare_file(config)


def test_empty_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataReadError, match="the file is empty"):
        prepare_file(FileDataConfig(path=empty))
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,default_12m\n")
    with pytest.raises(DataReadError, match="no data rows"):
        prepare_file(FileDataConfig(path=header_only))
    with pytest.raises(DataReadError, match="file not found"):
        prepare_file(FileDataConfig(path=tmp_path / "nope.csv"))
    with pytest.raises(DataReadError, match="cannot tell the format"):
        prepare_file(FileDataConfig(path=write_csv(tmp_path, loans(), name="loans.xlsx")))


def test_synthetic_source_uses_the_contract_spec() -> None:
    config = DataConfig(synthetic=SyntheticDataConfig(n_applications=300, months=24, immature_months=6))
    prepared = prepare_source(config, seed=3)
    assert prepared.spec == SYNTHETIC_SPEC
    assert len(prepared.applications) == len(prepared.truth) == 300
