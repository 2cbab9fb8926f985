"""The embedded PostgreSQL server: a data folder inside the project's work folder.

    python -m local.pg start   # init on first use, start, create the database
    python -m local.pg stop
    python -m local.pg status

Safe to run repeatedly: an initialized folder is reused and a running server is left running.
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from promoflow.logs import setup_logging
from promoflow.settings import get_settings

log = logging.getLogger("local.pg")

PG_BIN_CANDIDATES = [Path(os.environ.get("PROMO_PG_BIN", "")), Path("/usr/lib/postgresql/15/bin")]


class LocalPgError(RuntimeError):
    pass


def _pg_bin(name: str) -> str:
    for folder in PG_BIN_CANDIDATES:
        if str(folder) and (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if not found:
        raise LocalPgError(
            f"PostgreSQL server binary '{name}' not found; install the PostgreSQL 15 server "
            "(Debian: apt-get install postgresql-15) or set PROMO_PG_BIN to its bin folder."
        )
    return found


def _as_user() -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the 'postgres' account then."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", os.environ.get("PROMO_PG_OS_USER", "postgres"), "--"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(_as_user() + cmd, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalPgError(f"{' '.join(cmd[:2])} failed: {(result.stderr or result.stdout).strip()}")
    return result


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _is_running(data_dir: Path) -> bool:
    if not (data_dir / "PG_VERSION").exists():
        return False
    result = subprocess.run(
        _as_user() + [_pg_bin("pg_ctl"), "status", "-D", str(data_dir)], capture_output=True,
        check=False, text=True,
    )
    if result.returncode == 4:  # the data folder cannot be read: whether it runs is unknown
        raise LocalPgError(f"pg_ctl cannot read the data folder {data_dir} "
                           f"({(result.stderr or result.stdout).strip().rsplit(': ', 1)[-1]}); "
                           "let the server's account reach it (every parent folder needs o+x).")
    return result.returncode == 0


def _chown_for_server(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(os.environ.get("PROMO_PG_OS_USER", "postgres"))
        for p in [path, *path.rglob("*")]:
            os.chown(p, entry.pw_uid, entry.pw_gid)


def start() -> None:
    s = get_settings()
    pg_dir = s.work_dir / "pg"
    data_dir = pg_dir / "data"
    pg_dir.mkdir(parents=True, exist_ok=True)
    password_file = pg_dir / "password"
    if not password_file.exists() and not os.environ.get("PROMO_PG_PASSWORD"):
        password_file.write_text(secrets.token_urlsafe(18) + "\n")
        password_file.chmod(0o600)
    password = os.environ.get("PROMO_PG_PASSWORD") or password_file.read_text().strip()

    if _is_running(data_dir):
        log.info("PostgreSQL already running from %s on port %s", data_dir, s.pg_port)
    else:
        if _port_in_use(s.pg_host, s.pg_port):
            raise LocalPgError(
                f"Port {s.pg_port} on {s.pg_host} is already taken by another program; "
                "stop it or choose another port with PROMO_PG_PORT=<port>."
            )
        if os.geteuid() == 0:
            # the server account must be able to reach the data folder
            for parent in [pg_dir, *pg_dir.parents]:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    parent.chmod(mode | 0o001)
        if not (data_dir / "PG_VERSION").exists():
            log.info("Initializing PostgreSQL data folder %s", data_dir)
            pw_tmp = pg_dir / ".initpw"
            pw_tmp.write_text(password + "\n")
            _chown_for_server(pg_dir)
            try:
                _run([_pg_bin("initdb"), "-D", str(data_dir), "-U", s.pg_user,
                      f"--pwfile={pw_tmp}", "--auth-local=scram-sha-256",
                      "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
            finally:
                pw_tmp.unlink(missing_ok=True)
        _chown_for_server(pg_dir)
        options = f"-p {s.pg_port} -k {pg_dir} -h {s.pg_host} -c fsync=off -c max_connections=100"
        _run([_pg_bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(data_dir),
              "-l", str(pg_dir / "server.log"), "-o", options])
        log.info("PostgreSQL started on %s:%s (data %s)", s.pg_host, s.pg_port, data_dir)
    _ensure_database(s, password)


def _ensure_database(s, password: str) -> None:
    import psycopg2

    deadline = time.time() + 30
    while True:
        try:
            conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, dbname="postgres",
                                    user=s.pg_user, password=password, connect_timeout=5)
            break
        except psycopg2.OperationalError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", (s.pg_db,))
        if cur.fetchone() is None:
            cur.execute(f'create database "{s.pg_db}"')
            log.info("Created database %s", s.pg_db)
    conn.close()


def stop() -> None:
    data_dir = get_settings().work_dir / "pg" / "data"
    if _is_running(data_dir):
        _run([_pg_bin("pg_ctl"), "stop", "-m", "fast", "-D", str(data_dir)])
        log.info("PostgreSQL stopped")
    else:
        log.info("PostgreSQL is not running")


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            start()
        elif args.action == "stop":
            stop()
        else:
            running = _is_running(get_settings().work_dir / "pg" / "data")
            print("running" if running else "stopped")
    except LocalPgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
