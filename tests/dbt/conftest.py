"""Marts built once per test session on the tiny market."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoflow.settings import Settings
from tests.dbt.marts import DbtRun, build_marts


@pytest.fixture(scope="session")
def dbt_build(settings: Settings, tiny_landing: Path) -> DbtRun:
    return build_marts(settings, tiny_landing)
