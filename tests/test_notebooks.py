"""The numbered notebooks run from top to bottom, so they cannot rot.

Executed with nbclient in a fresh kernel; 01 on a generated sample, 02 against the MLflow
run of the real pipeline the tests build (the ``pipeline`` fixture's copy).
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from scoring.reporting.report import SECTION_IDS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# A hang guard per cell, not a speed check: no test asserts wall-clock time on a shared machine.
CELL_TIMEOUT_S = 300


def execute(name: str) -> nbformat.NotebookNode:
    """Run a notebook in a new kernel (its environment is this process's); return it with its outputs."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def text_output(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
            parts.append(output.get("data", {}).get("text/html", ""))
    return "\n".join(parts)


def test_notebooks_are_numbered_and_stored_without_outputs() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names == ["01_portfolio.ipynb", "02_model_review.ipynb"]
    for name in names:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert code, f"{name} has no code"
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: outputs not stripped"
        source = "\n".join(c.source for c in code)
        assert "from scoring" in source, f"{name} does not import the package"
        # No pipeline logic: notebooks read what the pipeline made, they do not train or fit.
        for forbidden in ("dvc repro", "subprocess", ".fit(", "train_models", "fit_risk_layer"):
            assert forbidden not in source, f"{name} holds pipeline logic ({forbidden})"


def test_portfolio_notebook_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCORING_PROJECT_DIR", str(NOTEBOOKS.parent))
    monkeypatch.setenv("NOTEBOOK_N", "20000")
    notebook = execute("01_portfolio.ipynb")
    out = text_output(notebook)
    assert "20,000 applications" in out
    assert "bureau_score" in out and "image/png" in str(notebook.cells)


@pytest.mark.slow
def test_model_review_notebook_runs_against_the_pipeline_run(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORING_PROJECT_DIR", str(pipeline))
    monkeypatch.delenv("SCORING_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    notebook = execute("02_model_review.ipynb")
    out = text_output(notebook)
    champion = json.loads((pipeline / "models" / "champion.json").read_text())["champion"]
    assert f"champion: {champion}: " in out
    assert "Hosmer-Lemeshow p =" in out
    assert f"reviewer report sections: {list(SECTION_IDS)}" in out
