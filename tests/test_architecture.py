"""Import contracts between the packages ([tool.importlinter] in pyproject.toml, `make lint`).

The first test runs lint-imports on the repository. The others copy src/scoring to a temporary
directory, plant an import that breaks one contract and check that lint-imports fails on it,
so a contract that quietly stopped checking anything would be noticed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"

# `python -m importlinter.cli` exits 0 without checking anything (the module has no __main__
# block), so call the console script's entry point through this interpreter instead.
LINT_IMPORTS = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def _contracts() -> dict[str, str]:
    """Contract id -> name, as configured in pyproject.toml."""
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["id"]: c["name"] for c in config["tool"]["importlinter"]["contracts"]}


def _lint_imports(cwd: Path, src: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports in cwd (which holds the pyproject.toml) with `scoring` imported from src."""
    env = {
        **os.environ,
        # grimp finds the package through the import system: src first, ahead of the editable install
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        # rich wraps the report at the terminal width; keep each contract's line whole
        "COLUMNS": "500",
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [*LINT_IMPORTS, "--no-logo", "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _status(output: str, name: str) -> str | None:
    """KEPT or BROKEN for the contract called name in a lint-imports report."""
    match = re.search(rf"^{re.escape(name)} (KEPT|BROKEN)\s*$", output, flags=re.MULTILINE)
    return match.group(1) if match else None


def test_contracts_kept_on_the_repository() -> None:
    contracts = _contracts()
    result = _lint_imports(ROOT, ROOT / "src")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for name in contracts.values():
        assert _status(output, name) == "KEPT", f"{name!r} not kept:\n{output}"
    assert f"Contracts: {len(contracts)} kept, 0 broken." in output, output


def _probe(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of src/scoring with line appended to module (a path under scoring/)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "scoring", src / "scoring", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PYPROJECT, tmp_path / "pyproject.toml")
    target = src / "scoring" / module
    text = target.read_text(encoding="utf-8")
    target.write_text(f"{text.rstrip()}\n{line}\n", encoding="utf-8")
    return _lint_imports(tmp_path, src)


def _assert_broken(result: subprocess.CompletedProcess[str], contract_id: str, route: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert _status(output, _contracts()[contract_id]) == "BROKEN", output
    # the probe's own import is named, so the graph was built from the copy, not the installed package
    assert route in output, output


def test_layers_contract_catches_an_upward_import(tmp_path: Path) -> None:
    result = _probe(tmp_path, "decision/policy.py", "from scoring.reporting import report  # probe")
    _assert_broken(result, "layers", "scoring.decision.policy -> scoring.reporting.report")


@pytest.mark.parametrize(
    ("module", "line", "contract_id", "route"),
    [
        pytest.param(
            "serving/inputs.py",
            "import matplotlib  # probe",
            "serving-decision-light",
            "scoring.serving.inputs -> matplotlib",
            id="matplotlib-in-serving",
        ),
        pytest.param(
            "serving/batch.py",
            "import mlflow  # probe",
            "no-mlflow-in-scoring-path",
            "scoring.serving.batch -> mlflow",
            id="mlflow-in-serving-batch",
        ),
        pytest.param(
            "models/model.py",
            "from scoring.config import Params  # probe",
            "no-root-params-below",
            "scoring.models.model -> scoring.config",
            id="root-params-in-models",
        ),
    ],
)
def test_forbidden_contracts_catch_a_forbidden_import(
    tmp_path: Path, module: str, line: str, contract_id: str, route: str
) -> None:
    _assert_broken(_probe(tmp_path, module, line), contract_id, route)
