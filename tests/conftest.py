"""Shared fixtures: a fresh database on the embedded PostgreSQL and the tiny synthetic market."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest

from promoflow import localpg
from promoflow.settings import Settings, get_settings


def _admin_connect(s: Settings):
    conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, dbname="postgres",
                            user=s.pg_user, password=s.pg_password)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at a database and work folder of this test session only."""
    localpg.start()
    base = get_settings()
    db_name = f"test_{uuid.uuid4().hex[:10]}"
    work_dir = tmp_path_factory.mktemp("work")
    conn = _admin_connect(base)
    with conn.cursor() as cur:
        cur.execute(f'create database "{db_name}"')
    conn.close()
    previous = {k: os.environ.get(k) for k in ("PROMO_PG_DB", "PROMO_WORK_DIR", "PROMO_PG_PASSWORD")}
    os.environ.update(PROMO_PG_DB=db_name, PROMO_WORK_DIR=str(work_dir),
                      PROMO_PG_PASSWORD=base.pg_password)
    yield get_settings()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    conn = _admin_connect(base)
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{db_name}" with (force)')
        cur.execute(f'drop database if exists "{db_name}_airflow" with (force)')
    conn.close()


@pytest.fixture(scope="session")
def tiny_landing(settings: Settings) -> Path:
    """The tiny synthetic market in the raw contract, generated once per test session."""
    from synthetic.generate import generate

    out_dir = settings.landing_dir / "tiny"
    generate(preset="tiny", out_dir=out_dir, truth_dir=settings.ground_truth_dir / "tiny", seed=42)
    return out_dir
