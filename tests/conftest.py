"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_support import build_pipeline


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of the repository after a real `dvc repro` on a small sample (slow)."""
    return build_pipeline(tmp_path_factory.mktemp("repo"))
