"""Warehouse roles: a writer for the pipeline and a read-only role for BI tools.

- writer (`PROMO_WRITER_USER`, default `promo_writer`): owns the pipeline's schemas (raw, audit,
  staging, intermediate, marts, published, published_staging) and may write every table in them.
  Only the pipeline uses it.
- BI (`PROMO_BI_USER`, default `promo_bi`): may read the `published` schema (tables and views),
  nothing else; it cannot write, create tables (temporary ones included) or see customer data in
  raw, staging or marts, and it cannot connect to the server's other databases (the Airflow
  metadata, `postgres`, other warehouses): CONNECT and TEMPORARY are revoked from PUBLIC on
  every other database (their owners and superusers keep them; each warehouse database grants
  its writer and BI roles CONNECT when `ensure_roles` runs against it).

Passwords come from `PROMO_WRITER_PASSWORD` and `PROMO_BI_PASSWORD`; when one is not set, it is
generated once into the work folder (`.local/pg/writer_password`, `.local/pg/bi_password`), like
the embedded server's admin password, and never stored in the repository.

`ensure_roles(settings)` runs as the admin user (PROMO_PG_USER, a superuser on the embedded and
compose servers) and is idempotent. Roles are cluster-wide; grants and default privileges are per
database, so it runs against each warehouse database; running it at the start of every pipeline
run also hands tables created since the last run to the writer.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets

from psycopg2 import sql

from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

WRITER_SCHEMAS = ("raw", "audit", "staging", "intermediate", "marts", "published",
                  "published_staging")
BI_SCHEMAS = ("published",)
RELATION_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized view"}


@dataclasses.dataclass(frozen=True)
class Role:
    user: str
    password: str


def _password(settings: Settings, env_name: str, file_name: str) -> str:
    """The role's password from the environment, else from (or generated into) the work folder."""
    value = os.environ.get(env_name)
    if value:
        return value
    path = settings.work_dir / "pg" / file_name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(18) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def writer_role(settings: Settings | None = None) -> Role:
    s = settings or get_settings()
    return Role(os.environ.get("PROMO_WRITER_USER") or "promo_writer",
                _password(s, "PROMO_WRITER_PASSWORD", "writer_password"))


def bi_role(settings: Settings | None = None) -> Role:
    s = settings or get_settings()
    return Role(os.environ.get("PROMO_BI_USER") or "promo_bi",
                _password(s, "PROMO_BI_PASSWORD", "bi_password"))


def as_role(settings: Settings, role: Role) -> Settings:
    """The same warehouse, connected as `role`."""
    return dataclasses.replace(settings, pg_user=role.user, pg_password=role.password)


def _ensure_login(cur, role: Role) -> None:
    cur.execute("select 1 from pg_roles where rolname = %s", (role.user,))
    verb = "alter" if cur.fetchone() else "create"
    cur.execute(sql.SQL("{} role {} with login nosuperuser nocreatedb nocreaterole noinherit "
                        "password %s").format(sql.SQL(verb), sql.Identifier(role.user)),
                (role.password,))


def _close_other_databases(cur) -> None:
    """Revoke CONNECT and TEMPORARY from PUBLIC on every other database that still grants them
    (a default ACL grants both), so a role reaches only the databases that grant it."""
    cur.execute("select datname from pg_database d where datallowconn "
                "and datname <> current_database() and (datacl is null or exists ("
                "select 1 from aclexplode(d.datacl) a where a.grantee = 0 "
                "and a.privilege_type in ('CONNECT', 'TEMPORARY'))) order by 1")
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("revoke connect, temporary on database {} from public").format(
            sql.Identifier(name)))
        log.info("Database %s: CONNECT and TEMPORARY revoked from PUBLIC (its owner and "
                 "superusers keep them)", name)


def ensure_roles(settings: Settings | None = None) -> tuple[Role, Role]:
    """Create or update the writer and BI roles and their grants in this database; (writer, bi)."""
    s = settings or get_settings()
    writer, bi = writer_role(s), bi_role(s)
    w, b = sql.Identifier(writer.user), sql.Identifier(bi.user)
    with connect(s) as conn, conn.cursor() as cur:
        cur.execute("select rolsuper from pg_roles where rolname = current_user")
        if not cur.fetchone()[0]:
            raise PermissionError(f"ensure_roles needs a superuser connection; PROMO_PG_USER "
                                  f"{s.pg_user} is not one.")
        cur.execute("select pg_advisory_xact_lock(hashtext('local.roles'))")
        _ensure_login(cur, writer)
        _ensure_login(cur, bi)
        db, admin = sql.Identifier(s.pg_db), sql.Identifier(s.pg_user)
        cur.execute(sql.SQL("grant connect, temporary, create on database {} to {}").format(db, w))
        cur.execute(sql.SQL("grant connect on database {} to {}").format(db, b))
        # temporary tables are the only objects a role could create outside a schema grant
        cur.execute(sql.SQL("revoke temporary on database {} from public").format(db))
        cur.execute(sql.SQL("revoke create on schema public from public"))
        _close_other_databases(cur)
        for name in WRITER_SCHEMAS:
            schema = sql.Identifier(name)
            cur.execute(sql.SQL("create schema if not exists {} authorization {}").format(schema, w))
            cur.execute(sql.SQL("alter schema {} owner to {}").format(schema, w))
            cur.execute(sql.SQL("revoke all on schema {} from public").format(schema))
            cur.execute("select c.relname, c.relkind from pg_class c "
                        "join pg_namespace n on n.oid = c.relnamespace "
                        "where n.nspname = %s and c.relkind in ('r', 'p', 'v', 'm') "
                        "and pg_get_userbyid(c.relowner) <> %s order by c.relname",
                        (name, writer.user))
            for table, kind in cur.fetchall():  # a table's sequences follow their table
                cur.execute(sql.SQL("alter {} {}.{} owner to {}").format(
                    sql.SQL(RELATION_KINDS[kind]), schema, sql.Identifier(table), w))
            cur.execute(sql.SQL("grant all on all tables in schema {} to {}").format(schema, w))
            cur.execute(sql.SQL("grant all on all sequences in schema {} to {}").format(schema, w))
            # tables the admin creates later (dbt, ingest) stay writable by the writer
            cur.execute(sql.SQL("alter default privileges for role {} in schema {} "
                                "grant all on tables to {}").format(admin, schema, w))
            cur.execute(sql.SQL("alter default privileges for role {} in schema {} "
                                "grant all on sequences to {}").format(admin, schema, w))
        for name in BI_SCHEMAS:
            schema = sql.Identifier(name)
            cur.execute(sql.SQL("grant usage on schema {} to {}").format(schema, b))
            cur.execute(sql.SQL("grant select on all tables in schema {} to {}").format(schema, b))
            # tables and views created later in published, by the admin or the writer
            for creator in (admin, w):
                cur.execute(sql.SQL("alter default privileges for role {} in schema {} "
                                    "grant select on tables to {}").format(creator, schema, b))
    log.info("Warehouse roles ready in %s: writer %s, BI %s", s.pg_db, writer.user, bi.user)
    return writer, bi
