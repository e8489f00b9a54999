"""Import contracts between the packages ([tool.importlinter] in pyproject.toml, `make lint`).

The first test runs lint-imports on the repository. The others copy src/scoring to a temporary
directory, plant an import that breaks one contract and check that lint-imports fails on it,
so a contract that quietly stopped checking anything would be noticed.

The last tests scan the source with ``ast`` (import-linter checks modules, not names): no file
takes another ``scoring`` module's private (single-underscore) names, and a planted one is caught.
"""

from __future__ import annotations

import ast
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


# ------------------------------------------------------------------ private names stay private

SCANNED = ("src", "pipelines", "benchmarks", "tests")


def _is_private(name: str) -> bool:
    """A single-underscore name (``_x``, ``_X``); dunders (``__version__``) are not private."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_scoring(module: str) -> bool:
    return module == "scoring" or module.startswith("scoring.")


def _is_module(name: str) -> bool:
    """Whether name (dotted) is a module or package of src/scoring."""
    base = ROOT.joinpath("src", *name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _module_name(path: Path) -> tuple[str | None, bool]:
    """The dotted module of a file under src/ (None elsewhere), and whether it is a package."""
    src = ROOT / "src"
    if not path.is_relative_to(src):
        return None, False
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
        return ".".join(parts), True
    return ".".join(parts), False


def _imported_from(node: ast.ImportFrom, module: str | None, is_package: bool) -> str:
    """The absolute module of a ``from X import ...`` (relative imports resolved against module)."""
    if not node.level:
        return node.module or ""
    package = (module or "").split(".")
    if not is_package:
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _private_uses(source: str, label: str, module: str | None, is_package: bool = False) -> list[str]:
    """Each place the source takes a private name of a ``scoring`` module other than its own.

    Caught: ``from scoring.x import _name``, and ``y._name`` (or ``scoring.x._name``) where y is
    bound by ``import scoring.x as y`` or ``from scoring import x``. Bindings are per file, not per
    scope; names taken by string (getattr, monkeypatch.setattr) are not seen.
    """
    tree = ast.parse(source, filename=label)
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> the scoring module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            origin = _imported_from(node, module, is_package)
            if not _is_scoring(origin):
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    if origin != module:
                        found.append(f"{label}:{node.lineno}: from {origin} import {alias.name}")
                elif _is_module(f"{origin}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{origin}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_scoring(alias.name):
                    modules[alias.asname or "scoring"] = alias.name if alias.asname else "scoring"
    if not modules:
        return found
    parents = {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    for node in ast.walk(tree):
        # the innermost attribute of each chain (y.a in y.a.b._name), read outwards
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if node.value.id not in modules:
            continue
        owner, outer, chain = modules[node.value.id], node, [node.attr]
        while isinstance(parents.get(id(outer)), ast.Attribute):
            outer = parents[id(outer)]
            chain.append(outer.attr)
        for attr in chain:
            if _is_private(attr):
                if owner != module:
                    found.append(f"{label}:{node.lineno}: {owner}.{attr}")
                break
            if not _is_module(f"{owner}.{attr}"):
                break
            owner = f"{owner}.{attr}"
    return found


def test_no_module_takes_another_modules_private_names() -> None:
    found: list[str] = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module, is_package = _module_name(path)
            label = str(path.relative_to(ROOT))
            found += _private_uses(path.read_text(encoding="utf-8"), label, module, is_package)
    assert not found, (
        f"{len(found)} private names of another scoring module taken (make the name public where it "
        "is defined, or move it to the module that owns it):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        pytest.param(
            "from scoring.data.split import _probe",
            "scoring.data.sampling",
            ["probe.py:1: from scoring.data.split import _probe"],
            id="from-import",
        ),
        pytest.param(
            "from .split import _probe",
            "scoring.data.sampling",
            ["probe.py:1: from scoring.data.split import _probe"],
            id="relative-import",
        ),
        pytest.param(
            "import scoring.data.split as s\ns._probe()",
            None,
            ["probe.py:2: scoring.data.split._probe"],
            id="module-alias",
        ),
        pytest.param(
            "from scoring import data\ndata.split._probe()",
            None,
            ["probe.py:2: scoring.data.split._probe"],
            id="package-attribute",
        ),
        pytest.param("from scoring.data.split import _probe", "scoring.data.split", [], id="own-module"),
        pytest.param("from scoring import __version__", None, [], id="dunder"),
        pytest.param("from scoring.data.split import PARTS as _PARTS", None, [], id="public-as-private"),
        pytest.param("from pandas.io import _probe", None, [], id="not-scoring"),
    ],
)
def test_private_name_check_catches_a_planted_use(
    source: str, module: str | None, expected: list[str]
) -> None:
    assert _private_uses(source, "probe.py", module) == expected


# ------------------------------------------------------------------ params compose the packages' settings

# What scoring.config may import besides the packages' settings modules (``scoring.<package>.config``):
# the core, and the policy and limit settings, which live beside the rules that read them.
CONFIG_ALSO_IMPORTS = frozenset(
    {"scoring.core.cluster", "scoring.core.settings", "scoring.decision.limits", "scoring.decision.policy"}
)


def test_params_compose_the_packages_settings_modules_and_nothing_above_them() -> None:
    """scoring.config builds Params from each package's own settings (its ``config`` module); it
    takes nothing from a package's working modules (a report, a stage's logic), so reading params
    never imports them."""
    tree = ast.parse((ROOT / "src" / "scoring" / "config.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and _is_scoring(node.module)
    }
    assert any(module.endswith(".config") for module in imported)
    others = sorted(m for m in imported if not m.endswith(".config") and m not in CONFIG_ALSO_IMPORTS)
    assert not others, (
        f"scoring.config imports {others}: move their settings into the package's config module"
    )
