"""Fixtures of the Feast tests: settings whose work folder holds a hand-made feature lake."""

from __future__ import annotations

import dataclasses

import pytest

from promoflow.settings import Settings
from tests.feast.lake import TABLES, write_like_spark


@pytest.fixture(scope="module")
def lake_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings whose work folder holds only the hand-made lake (and its Feast store)."""
    local = dataclasses.replace(settings, work_dir=tmp_path_factory.mktemp("feast_work"))
    for name, rows in TABLES.items():
        write_like_spark(rows(), local.feature_dir(name))
    return local
