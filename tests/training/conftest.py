"""Fixtures of the training tests: a small seeded fake market in the training-set schemas."""

from __future__ import annotations

import pytest

from tests.training.fake_market import FakeMarket, build_fake_market


@pytest.fixture(scope="session")
def fake_market(tmp_path_factory: pytest.TempPathFactory) -> FakeMarket:
    """24 products in 4 categories, 300 customers, 80 weeks (built once per test session)."""
    return build_fake_market(tmp_path_factory.mktemp("fake_market"), seed=7)


@pytest.fixture(autouse=True)
def _single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process runs are a world of one even if the test runner sits under torchrun."""
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
