"""Marts built once per test session, as the marts quality gate reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from promoflow.settings import Settings
from tests.dbt.marts import build_marts


@pytest.fixture(scope="session")
def marts_built(settings: Settings, tiny_landing: Path) -> None:
    run = build_marts(settings, tiny_landing)
    assert run.returncode == 0, f"dbt build failed:\n{run.output[-3000:]}"
