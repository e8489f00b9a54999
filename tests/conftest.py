"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline_support import build_pipeline


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of the repository after a real `dvc repro` on a small sample (slow)."""
    return build_pipeline(tmp_path_factory.mktemp("repo"))


# Tests sharing a session fixture that builds a pipeline run on one pytest-xdist worker, so the
# pipeline is built once (`make test` runs two workers with --dist loadgroup).
GROUPED_FIXTURES = {"pipeline": "pipeline", "hmeq_pipeline": "hmeq_pipeline"}


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = getattr(item, "fixturenames", ())
        for fixture, group in GROUPED_FIXTURES.items():
            if fixture in names:
                item.add_marker(pytest.mark.xdist_group(group))
                break
