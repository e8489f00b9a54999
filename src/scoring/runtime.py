"""Process set-up shared by the stage entry points and the command line."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from scoring.core.io import DataReadError
from scoring.core.settings import ConfigError

# Errors that describe bad input or configuration: shown as one clear message, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, DataReadError)


def setup_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("SCORING_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("alembic", "mlflow", "great_expectations", "urllib3", "matplotlib", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def quiet_third_parties() -> None:
    """No usage statistics, no progress bars from libraries in batch stages."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MPLBACKEND", "Agg")
    # distributed logs every scheduler and worker event at INFO (dozens of lines per command)
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")


def run_stage(main: Callable[[], None], user_errors: tuple[type[BaseException], ...] = ()) -> None:
    """Run a stage; input and configuration errors exit 1 with their message on stderr."""
    quiet_third_parties()
    setup_logging()
    try:
        main()
    except (*USER_ERRORS, *user_errors) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
