"""Shared fixtures: a fresh database on the embedded PostgreSQL and the tiny synthetic market."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg2
import pytest

from local import pg as localpg
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
    # warehouse roles of this session only (roles are cluster-wide); passwords generated into
    # the session's work folder
    roles = {"PROMO_WRITER_USER": f"{db_name}_writer", "PROMO_BI_USER": f"{db_name}_bi"}
    keys = ("PROMO_PG_DB", "PROMO_WORK_DIR", "PROMO_PG_PASSWORD", "PROMO_PG_USER",
            "PROMO_WRITER_PASSWORD", "PROMO_BI_PASSWORD", *roles)
    previous = {k: os.environ.get(k) for k in keys}
    os.environ.pop("PROMO_WRITER_PASSWORD", None)
    os.environ.pop("PROMO_BI_PASSWORD", None)
    os.environ.update(PROMO_PG_DB=db_name, PROMO_WORK_DIR=str(work_dir),
                      PROMO_PG_USER=base.pg_user, PROMO_PG_PASSWORD=base.pg_password, **roles)
    yield get_settings()
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    conn = psycopg2.connect(host=base.pg_host, port=base.pg_port, dbname=db_name,
                            user=base.pg_user, password=base.pg_password)
    conn.autocommit = True
    with conn.cursor() as cur:
        for role in roles.values():
            cur.execute("select 1 from pg_roles where rolname = %s", (role,))
            if cur.fetchone():
                cur.execute(f'drop owned by "{role}" cascade')
                cur.execute(f'drop role "{role}"')
    conn.close()
    conn = _admin_connect(base)
    with conn.cursor() as cur:
        cur.execute(f'drop database if exists "{db_name}" with (force)')
        cur.execute(f'drop database if exists "{db_name}_airflow" with (force)')
    conn.close()


@pytest.fixture(scope="session")
def tiny_landing(settings: Settings) -> Path:
    """The tiny synthetic market in the raw contract, generated once per test session."""
    from sources.synthetic.generate import generate

    out_dir = settings.landing_dir / "tiny"
    generate(preset="tiny", out_dir=out_dir, truth_dir=settings.ground_truth_dir / "tiny", seed=42)
    return out_dir


@pytest.fixture(scope="session")
def roles(settings: Settings):
    """(writer, BI) roles for this session's database; passwords generated in its work folder."""
    from local.roles import ensure_roles

    return ensure_roles(settings)
