"""Warehouse roles of this test session (named after its database by the settings fixture)."""

from __future__ import annotations

import pytest

from promoflow.roles import Role, ensure_roles


@pytest.fixture(scope="session")
def roles(settings) -> tuple[Role, Role]:
    """(writer, BI) roles for this session's database; passwords generated in its work folder."""
    return ensure_roles(settings)
