"""Warehouse (PostgreSQL) access shared by every stage."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg2

from promoflow.settings import Settings, get_settings


class WarehouseUnavailable(RuntimeError):
    pass


@contextlib.contextmanager
def connect(settings: Settings | None = None) -> Iterator[psycopg2.extensions.connection]:
    """A psycopg2 connection; commits on success, rolls back on error."""
    s = settings or get_settings()
    try:
        conn = psycopg2.connect(connect_timeout=10, **s.psycopg_kwargs())
    except psycopg2.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise WarehouseUnavailable(
            f"Cannot reach PostgreSQL at {s.pg_host}:{s.pg_port}/{s.pg_db} ({first_line}); "
            "start the local server with `make services` or set PROMO_PG_* to a reachable one."
        ) from None
    try:
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def engine(settings: Settings | None = None):
    """A SQLAlchemy engine (pandas read_sql / to_sql)."""
    from sqlalchemy import create_engine

    s = settings or get_settings()
    return create_engine(s.sqlalchemy_url, pool_pre_ping=True)


def current_plans_table(cur) -> str:
    """The relation of the current plan version per dataset and plan week (columns dataset,
    plan_week, run_id): `published.current_plans`, or `published.plans` in a warehouse that
    no publish has migrated yet (it holds one plan per week)."""
    cur.execute("select to_regclass('published.current_plans')")
    return "published.current_plans" if cur.fetchone()[0] is not None else "published.plans"


def latest_published_run_id(dataset: str, settings: Settings | None = None) -> str | None:
    """The current plan version of `dataset` that was published last (None when there is
    none)."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(f"select c.run_id from {current_plans_table(cur)} c join published.plans p "
                    "using (run_id) where c.dataset = %s order by p.published_at desc, "
                    "c.plan_week desc limit 1", (dataset,))
        row = cur.fetchone()
    return row[0] if row else None
