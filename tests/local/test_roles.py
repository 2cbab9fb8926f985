"""Warehouse roles on the real server: BI reads the published plan and nothing else."""

import dataclasses
import stat
from datetime import date

import psycopg2
import pytest
from psycopg2 import errors

from local.roles import as_role, bi_role, ensure_roles, writer_role
from promoflow.settings import PROJECT_ROOT
from promoflow.warehouse import connect
from publish.publish import publish_plan
from tests.publish.plans import small_plan

DENIED = [
    ("insert into published.plans select * from published.plans", "permission denied for table plans"),
    ("delete from published.plan_lines", "permission denied for table plan_lines"),
    ("create table published.bi_notes (note text)", "permission denied for schema published"),
    ("create table public.bi_notes (note text)", "permission denied for schema public"),
    ("create temporary table bi_notes (note text)", "permission denied to create temporary tables"),
    ("create schema bi_notes", "permission denied for database"),
    ("select * from raw.customers", "permission denied for schema raw"),
    ("select * from marts.customers", "permission denied for schema marts"),
    ("select * from published_staging.plan_targets", "permission denied for schema published_staging"),
]


@pytest.mark.integration
def test_bi_role_reads_the_plan_and_nothing_else(settings, roles):
    writer, bi = roles
    publish_plan(*small_plan("run-roles", date(2026, 12, 7)), settings=settings)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute((PROJECT_ROOT / "ingest" / "raw_schema.sql").read_text())
        cur.execute("insert into raw.customers values (1, '2024-01-01', 'north', '30-39', 'email') "
                    "on conflict do nothing")
    assert ensure_roles(settings) == roles  # idempotent; grants the raw tables to the writer
    with connect(as_role(settings, bi)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from published.current_plan_lines")
        assert cur.fetchone()[0] > 0
        for table in ("plans", "plan_lines", "plan_targets", "forecasts", "model_metrics"):
            cur.execute(f"select count(*) from published.{table}")
    for statement, message in DENIED:
        with (pytest.raises(errors.InsufficientPrivilege, match=message),
              connect(as_role(settings, bi)) as conn, conn.cursor() as cur):
            cur.execute(statement)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select has_table_privilege(%s, 'raw.customers', 'select'), "
                    "has_table_privilege(%s, 'raw.customers', 'insert')", (bi.user, writer.user))
        assert cur.fetchone() == (False, True)


@pytest.mark.integration
def test_bi_role_connects_to_the_warehouse_database_only(settings, roles):
    _, bi = roles
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select datname from pg_database where datallowconn order by 1")
        databases = [name for (name,) in cur.fetchall()]
    assert settings.pg_db in databases and "postgres" in databases and len(databases) >= 3
    for name in databases:
        target = dataclasses.replace(as_role(settings, bi), pg_db=name)
        if name == settings.pg_db:
            with connect(target) as conn, conn.cursor() as cur:
                cur.execute("select current_database()")
                assert cur.fetchone() == (name,)
            continue
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(**target.psycopg_kwargs())
    # the admin still reaches them all (the Airflow metadata database is one of them)
    for name in databases:
        psycopg2.connect(**dataclasses.replace(settings, pg_db=name).psycopg_kwargs()).close()


@pytest.mark.integration
def test_tables_added_to_published_later_are_readable_by_bi(settings, roles):
    writer, bi = roles
    for creator in (settings, as_role(settings, writer)):
        with connect(creator) as conn, conn.cursor() as cur:
            cur.execute("create table published.later_notes (note text)")
            cur.execute("insert into published.later_notes values ('hello')")
        with connect(as_role(settings, bi)) as conn, conn.cursor() as cur:
            cur.execute("select note from published.later_notes")
            assert cur.fetchall() == [("hello",)]
        with connect(settings) as conn, conn.cursor() as cur:
            cur.execute("drop table published.later_notes")


@pytest.mark.integration
def test_writer_role_publishes_and_owns_the_schemas(settings, roles):
    writer, bi = roles
    week = date(2026, 12, 14)
    publish_plan(*small_plan("run-writer", week), settings=as_role(settings, writer))
    with connect(as_role(settings, bi)) as conn, conn.cursor() as cur:
        cur.execute("select run_id from published.plans where plan_week = %s", (week,))
        assert cur.fetchall() == [("run-writer",)]
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select nspname from pg_namespace where pg_get_userbyid(nspowner) = %s "
                    "order by 1", (writer.user,))
        assert [n for (n,) in cur.fetchall()] == sorted(
            ["audit", "intermediate", "marts", "published", "published_staging", "raw", "staging"])


@pytest.mark.integration
def test_local_passwords_are_generated_once_into_the_work_folder(settings, roles):
    writer, bi = roles
    for role, name in ((writer, "writer_password"), (bi, "bi_password")):
        path = settings.work_dir / "pg" / name
        assert path.read_text().strip() == role.password and len(role.password) >= 20
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (writer_role(settings), bi_role(settings)) == roles
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**as_role(settings, bi).psycopg_kwargs() | {"password": "wrong"})
