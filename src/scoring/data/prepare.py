"""Load the source data: the synthetic portfolio, or an analyst's CSV/Parquet file."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from scoring.core.contract import (
    ACCEPTED,
    AUTO_LOAN_COLUMNS,
    DECISION_COLUMN,
    DECLINED,
    ROW_ID_COLUMN,
    SYNTHETIC_SPEC,
    TRUE_PD_COLUMN,
    DatasetSpec,
    row_ids,
)
from scoring.core.io import DataReadError, read_table
from scoring.core.partitioned import write_part, write_parts
from scoring.data.config import DataConfig, FileDataConfig, SyntheticDataConfig
from scoring.data.legacy_policy import ACCEPTED_COLUMN, LegacyPolicyConfig, apply_legacy_policy

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedData:
    applications: pd.DataFrame
    truth: pd.DataFrame
    spec: DatasetSpec


def prepare_source(config: DataConfig, seed: int) -> PreparedData:
    if config.source == "synthetic":
        from scoring.data.synthetic import generate_portfolio

        applications, truth = generate_portfolio(config.synthetic, seed)
        return PreparedData(applications, truth, SYNTHETIC_SPEC)
    return prepare_file(config.file)


def _empty_truth() -> pd.DataFrame:
    """A truth file with no rows: a bring-your-own dataset has no known true PD."""
    return pd.DataFrame({"application_id": pd.Series(dtype=str), TRUE_PD_COLUMN: pd.Series(dtype=float)})


CONTRACT_DETECTION_SHARE = 0.8


def _follows_contract(columns: pd.Index, config: FileDataConfig) -> bool:
    """Whether the auto-loan contract's checks apply to this file.

    ``auto``: the file has the contract's id column and at least 80% of its columns, so that
    an export missing a few contract columns is checked (and stopped) rather than taken for
    some other kind of data.
    """
    if config.contract != "auto":
        return config.contract == "auto_loan"
    contract = {c.name for c in AUTO_LOAN_COLUMNS}
    present = contract & set(columns)
    return SYNTHETIC_SPEC.id_column in present and len(present) >= CONTRACT_DETECTION_SHARE * len(contract)


def _with_roles(frame: pd.DataFrame, config: FileDataConfig) -> pd.DataFrame:
    """The file's columns renamed to the contract roles that ``data.file.roles`` gives them."""
    if not config.roles:
        return frame
    absent = {role: column for role, column in config.roles.items() if column not in frame.columns}
    if absent:
        listed = ", ".join(f"{role}: '{column}'" for role, column in absent.items())
        raise DataReadError(
            f"{config.path}: data.file.roles names columns not in the file ({listed}); "
            f"the file has {list(frame.columns)[:30]}"
        )
    taken = sorted(role for role, column in config.roles.items() if role in frame.columns and role != column)
    if taken:
        raise DataReadError(
            f"{config.path}: data.file.roles maps columns onto {taken}, which the file already has; "
            "expected each role name free (drop or rename the file's own column)"
        )
    declared = {config.id_column, config.target_column, config.date_column, config.customer_column}
    clash = sorted(column for column in config.roles.values() if column in declared)
    if clash:
        raise DataReadError(
            f"{config.path}: data.file.roles maps {clash}, which are declared as the id, target, date "
            "or customer column; expected feature columns only"
        )
    logger.info("roles: %s", ", ".join(f"{column} -> {role}" for role, column in config.roles.items()))
    return frame.rename(columns={column: role for role, column in config.roles.items()})


UNNAMED_FIRST_COLUMN = "Unnamed: 0"
"""pandas' name for a CSV's first column with an empty header: a written DataFrame index."""


def _written_index(frame: pd.DataFrame, config: FileDataConfig) -> str | None:
    """The unnamed first column of a CSV when it is a unique, complete row key; else None.

    Files saved from a DataFrame with its index carry it as a first column with no header
    (Give Me Some Credit's cs-training.csv, for one). It identifies rows; as a feature it would
    only encode the file's row order. Not taken when the analyst declared it for anything.
    """
    if frame.shape[1] == 0 or frame.columns[0] != UNNAMED_FIRST_COLUMN:
        return None
    if UNNAMED_FIRST_COLUMN in (*config.categorical_columns, *config.drop_columns, *config.roles.values()):
        return None
    column = frame[UNNAMED_FIRST_COLUMN]
    if column.isna().any() or not column.is_unique:
        return None
    logger.info("no id_column declared: the unnamed first column (a saved row index) is the id")
    return UNNAMED_FIRST_COLUMN


def _with_decisions(frame: pd.DataFrame, config: FileDataConfig) -> tuple[pd.DataFrame, str | None]:
    """The applications with the lender's past decisions, and the decision column's name (None:
    no decisions declared).

    ``rejects_path``: that file's rows are appended as declined (its columns must be the main
    file's, the target and decision columns aside; an outcome there is refused by the caller's
    check), under ``decision_column`` or, when none is declared, a new :data:`DECISION_COLUMN`
    in which the main file's rows are accepted. ``decision_column``: values in
    ``declined_values`` (compared as text) become :data:`DECLINED`, others :data:`ACCEPTED`; an
    empty decision is refused (every application was decided one way or the other).
    """
    column = config.decision_column
    if column is not None and column not in frame.columns:
        raise DataReadError(
            f"{config.path}: data.file.decision_column '{column}' is not in the file; "
            f"the file has {list(frame.columns)[:30]}"
        )
    if config.rejects_path is not None:
        rejects = read_table(config.rejects_path, config.format, config.na_values)
        rejects.columns = [str(c).strip() for c in rejects.columns]
        rejects = _with_roles(rejects, config.model_copy(update={"path": config.rejects_path}))
        optional = {config.target_column, column}
        missing = [c for c in frame.columns if c not in rejects.columns and c not in optional]
        extra = [c for c in rejects.columns if c not in frame.columns]
        if missing or extra:
            raise DataReadError(
                f"{config.rejects_path}: data.file.rejects_path must have the main file's columns "
                f"(the target's aside); missing {missing[:20]}, not in the main file {extra[:20]}"
            )
        if column is None:
            column = DECISION_COLUMN
            if column in frame.columns:
                raise DataReadError(
                    f"{config.path}: column '{column}' exists; declare it as data.file.decision_column "
                    "or rename it"
                )
            frame = frame.assign(**{column: ACCEPTED})
        rejects = rejects.assign(**{column: config.declined_values[0]})
        if config.target_column not in rejects.columns:
            rejects[config.target_column] = pd.NA
        frame = pd.concat([frame, rejects[list(frame.columns)]], ignore_index=True)
        logger.info("appended %d declined applications from %s", len(rejects), config.rejects_path)
    if column is None:
        return frame, None
    raw = frame[column]
    if raw.isna().any():
        first = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DataReadError(
            f"{config.path}: data.file.decision_column '{column}' is empty in {int(raw.isna().sum())} "
            f"rows (first: row {first + 1}); expected a decision for every application "
            f"({config.declined_values} for declined, anything else for accepted)"
        )
    declined = raw.astype(str).str.strip().isin([str(v) for v in config.declined_values])
    frame[column] = np.where(declined.to_numpy(), DECLINED, ACCEPTED)
    return frame, column


def _check_declined_have_no_outcome(frame: pd.DataFrame, spec: DatasetSpec, config: FileDataConfig) -> None:
    """A declined application was never booked, so it cannot have an observed outcome."""
    assert spec.decision_column is not None
    with_outcome = (frame[spec.decision_column] == DECLINED) & frame[spec.target_column].notna()
    if with_outcome.any():
        first = frame.loc[with_outcome, spec.id_column].iloc[0]
        raise DataReadError(
            f"{config.path}: {int(with_outcome.sum())} declined applications have an outcome in "
            f"'{spec.target_column}' (first: {spec.id_column} {first!r}, "
            f"{spec.target_column}={frame.loc[with_outcome, spec.target_column].iloc[0]!r}); "
            "expected an empty target for every declined application (data.file.decision_column, "
            "data.file.rejects_path)"
        )
    logger.info(
        "decisions: %d accepted, %d declined",
        int((frame[spec.decision_column] == ACCEPTED).sum()),
        int((frame[spec.decision_column] == DECLINED).sum()),
    )


def prepare_file(config: FileDataConfig) -> PreparedData:
    """Read the analyst's file and normalise only what every later stage relies on.

    - ``roles`` given: those columns are renamed to their contract roles;
    - no id column declared: an unnamed first column that is a unique row key (a saved
      DataFrame index) is the id, else rows are numbered in file order into ``row_id``;
    - ``positive_label`` given: the target becomes 1 where it equals that label, else 0;
    - the date column is parsed to dates, with a clear error for unparseable values;
    - reject inference: the declined applications of a second file (``rejects_path``) are
      appended, and the lender's decision (``decision_column``, or a new
      :data:`DECISION_COLUMN` with the second file) becomes :data:`ACCEPTED` or :data:`DECLINED`
      (:func:`_with_decisions`).
    Everything else is left as found; the validation stage judges it.
    """
    frame = read_table(config.path, config.format, config.na_values)
    frame.columns = [str(c).strip() for c in frame.columns]
    frame = _with_roles(frame, config)
    frame, decision_column = _with_decisions(frame, config)
    declared = {
        "target_column": config.target_column,
        "id_column": config.id_column,
        "date_column": config.date_column,
        "customer_column": config.customer_column,
    }
    missing = {role: col for role, col in declared.items() if col is not None and col not in frame.columns}
    if missing:
        listed = ", ".join(f"{role}='{col}'" for role, col in missing.items())
        raise DataReadError(
            f"{config.path}: declared columns not in the file: {listed}; "
            f"the file has {list(frame.columns)[:30]}"
        )
    unknown = [c for c in (*config.categorical_columns, *config.drop_columns) if c not in frame.columns]
    if unknown:
        raise DataReadError(
            f"{config.path}: categorical_columns/drop_columns name columns not in the file: {unknown}"
        )

    follows_contract = _follows_contract(frame.columns, config)
    # A file in the contract's layout needs no role declarations: undeclared roles default
    # to the contract's columns.
    id_column = config.id_column or (SYNTHETIC_SPEC.id_column if follows_contract else None)
    date_column = config.date_column or (SYNTHETIC_SPEC.date_column if follows_contract else None)
    customer_column = config.customer_column or (SYNTHETIC_SPEC.customer_column if follows_contract else None)
    if id_column is None:
        id_column = _written_index(frame, config)
    generated_id = id_column is None
    if id_column is None:
        if ROW_ID_COLUMN in frame.columns:
            raise DataReadError(f"{config.path}: no id_column declared and '{ROW_ID_COLUMN}' already exists")
        id_column = ROW_ID_COLUMN
        frame.insert(0, ROW_ID_COLUMN, row_ids(len(frame)))

    target = config.target_column
    if config.positive_label is not None:
        raw = frame[target]
        frame[target] = (raw.astype(str) == str(config.positive_label)).astype("Int64").where(raw.notna())

    if date_column is not None and date_column in frame.columns:
        parsed = pd.to_datetime(frame[date_column], errors="coerce")
        bad = parsed.isna() & frame[date_column].notna()
        if bad.any():
            examples = frame.loc[bad, date_column].astype(str).head(3).tolist()
            raise DataReadError(
                f"{config.path}: column '{date_column}': values {examples} are not dates "
                "(expected YYYY-MM-DD)"
            )
        frame[date_column] = parsed

    spec = DatasetSpec(
        id_column=id_column,
        target_column=target,
        date_column=date_column,
        customer_column=customer_column,
        categorical_columns=tuple(config.categorical_columns),
        drop_columns=tuple(config.drop_columns),
        source=str(config.path),
        follows_auto_loan_contract=follows_contract,
        generated_id=generated_id,
        na_values=tuple(config.na_values),
        roles=dict(config.roles),
        decision_column=decision_column,
    )
    if decision_column is not None:
        _check_declined_have_no_outcome(frame, spec, config)
    logger.info("read %d rows x %d columns from %s", len(frame), frame.shape[1], config.path)
    return PreparedData(frame, _empty_truth(), spec)


# --------------------------------------------------------------------------- synthetic portfolio by block


@dataclass(frozen=True)
class PreparedCounts:
    applications: int
    performance: int
    parts: int


def _synthetic_block(
    block: int,
    targets: Mapping[str, Path],
    config: SyntheticDataConfig,
    seed: int,
    policy: LegacyPolicyConfig | None = None,
) -> tuple[int, int]:
    """Generate one block and write its part of every output; (applications, history rows).

    With a legacy ``policy`` the declined applications lose their outcome and their monthly
    history (the lender never booked them); the accepted ones keep exactly the rows they have
    without the policy, and the truth keeps everyone's (:mod:`scoring.data.legacy_policy`).
    """
    from scoring.data.performance import generate_performance
    from scoring.data.synthetic import generate_block

    applications, truth = generate_block(config, seed, block)
    observed = applications
    if policy is not None:
        observed, truth = apply_legacy_policy(applications, truth, policy, seed, block)
    write_part(targets["applications"], observed)
    write_part(targets["truth"], truth)
    history_rows = 0
    if "performance" in targets:
        history = generate_performance(applications, truth, config, seed, block)
        if policy is not None:
            booked = truth.loc[truth[ACCEPTED_COLUMN].to_numpy(), "application_id"]
            history = history.loc[history["loan_id"].isin(booked)].reset_index(drop=True)
        history_rows = write_part(targets["performance"], history)
    return len(applications), history_rows


def write_synthetic_portfolio(
    config: SyntheticDataConfig,
    seed: int,
    outputs: Mapping[str, Path],
    parallel: bool,
    policy: LegacyPolicyConfig | None = None,
) -> PreparedCounts:
    """Generate the synthetic portfolio block by block straight into dataset folders.

    ``outputs``: ``applications`` and ``truth`` folders, and ``performance`` for the monthly
    history. One part per block (:func:`scoring.data.synthetic.portfolio_blocks`), each drawn
    from its own stream, so the parts are the same whether they are generated here one after the
    other (the pandas engine, one block in memory at a time) or in parallel on the Dask cluster
    (``parallel``), and whatever the number of workers. ``policy``: the lender's legacy
    accept/reject process (reject inference); None: every application booked, as before.
    """
    from scoring.data.synthetic import portfolio_blocks

    n_blocks = len(portfolio_blocks(config))
    task = functools.partial(_synthetic_block, config=config, seed=seed, policy=policy)
    counts = write_parts(outputs, task, n_blocks, parallel=parallel)
    result = PreparedCounts(
        applications=sum(c[0] for c in counts), performance=sum(c[1] for c in counts), parts=n_blocks
    )
    if result.applications != config.n_applications:
        raise AssertionError(f"generated {result.applications} rows, expected {config.n_applications}")
    logger.info(
        "prepared %d synthetic applications (%d history rows) in %d parts%s",
        result.applications,
        result.performance,
        n_blocks,
        " on the dask cluster" if parallel else "",
    )
    return result
