"""Each DVC stage imports only what it uses (issue 13).

Every stage is a new process, so a heavy package imported at module level costs its import
time on every run of the stage, whether the stage needs it or not (on a 2-core machine:
great_expectations ~9 s, optbinning ~6.6 s, mlflow ~4.5 s, xgboost ~4.3 s, sklearn ~3.5 s).

Each stage script runs once in a fresh interpreter as ``pipelines/<stage>.py --help``, which
runs its top-level imports and exits in argparse before any work; the test then reads which
heavy packages are in ``sys.modules``. The table below says which heavy packages each stage's
top-level imports may load: the ones the stage itself uses and cannot defer (the feature
transformer is a scikit-learn estimator, which imports scipy). Anything else is imported in the
function that uses it (mlflow where a run is logged, matplotlib where a plot is drawn,
optbinning where the scorecard is fitted, optuna where the study runs, xgboost and lightgbm
where a model is fitted or read).

A row marked xfail is a known top-level import in code outside this check's scope; the xfail
is strict, so once that import is deferred the row passes, the test fails, and the mark is to
be removed.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = (
    "great_expectations",
    "optbinning",
    "mlflow",
    "matplotlib",
    "sklearn",
    "scipy",
    "xgboost",
    "optuna",
    "shap",
    "numba",
    "lightgbm",
)

# stage -> the heavy packages its top-level imports may load (the stage uses them). A stored
# model is applied through the feature transformer, a scikit-learn estimator; the boosters'
# libraries load when a model is fitted or read.
APPLY_STORED_MODEL = frozenset({"sklearn", "scipy"})
ALLOWED: dict[str, frozenset[str]] = {
    "prepare": frozenset(),
    "validate": frozenset({"great_expectations", "scipy"}),  # great_expectations imports scipy
    "performance": frozenset(),
    "split": frozenset(),
    "features": frozenset({"sklearn", "scipy"}),  # ApplicationFeatures is a scikit-learn estimator
    "tune": APPLY_STORED_MODEL,  # optuna and xgboost only once the study runs
    "train": APPLY_STORED_MODEL,  # optbinning, xgboost, lightgbm only once candidates are fitted
    "calibrate": APPLY_STORED_MODEL,
    "explain": APPLY_STORED_MODEL,
    "evaluate": APPLY_STORED_MODEL,
    "export": APPLY_STORED_MODEL,
    "monitor": frozenset(),  # the scorer, scipy and matplotlib load once the model is read
    "collect": APPLY_STORED_MODEL,
    "whatif": APPLY_STORED_MODEL,  # matplotlib once the cut-off curve is drawn
    "fairness": APPLY_STORED_MODEL,  # fairlearn once the groups are screened
    "report": APPLY_STORED_MODEL,
}

# (stage, package) -> why the package is still imported at start-up by code outside this check's
# scope: a strict xfail, so the row fails once the import is deferred and the entry must go.
KNOWN: dict[tuple[str, str], str] = {}


# Runs the stage as `--help` in this fresh interpreter and prints the heavy packages loaded.
PROBE = """
import json, runpy, sys
script, packages = sys.argv[1], set(sys.argv[2:])
sys.argv = [script, "--help"]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exc:
    if exc.code not in (None, 0):
        raise
else:
    raise SystemExit(f"{script} --help did not exit: main() must parse its arguments first")
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & packages)))
"""


@functools.cache
def _run_help(stage: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "GX_ANALYTICS_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "pipelines" / f"{stage}.py"), *HEAVY],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def loaded_at_startup(stage: str) -> frozenset[str]:
    """The heavy packages in sys.modules after `pipelines/<stage>.py --help` (one process a stage)."""
    proc = _run_help(stage)
    if proc.returncode != 0 or not proc.stdout.startswith("usage:"):
        pytest.fail(f"pipelines/{stage}.py --help failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return frozenset(json.loads(proc.stdout.splitlines()[-1]))


def _rows() -> list[object]:
    rows: list[object] = []
    for stage, allowed in ALLOWED.items():
        for package in HEAVY:
            if package in allowed:
                continue
            reason = KNOWN.get((stage, package))
            marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
            rows.append(pytest.param(stage, package, marks=marks, id=f"{stage}-no-{package}"))
    return rows


def test_table_covers_every_stage() -> None:
    import yaml

    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    assert list(ALLOWED) == list(stages)
    assert {stage for stage, _ in KNOWN} <= set(ALLOWED)
    assert all(package not in ALLOWED[stage] for stage, package in KNOWN)


@pytest.mark.parametrize(("stage", "package"), _rows())
def test_stage_does_not_import_at_startup(stage: str, package: str) -> None:
    loaded = loaded_at_startup(stage)
    assert package not in loaded, (
        f"pipelines/{stage}.py imports {package} at start-up (loaded: {sorted(loaded)})"
    )
