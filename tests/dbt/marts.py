"""Build the marts of a test database once per test session: ingest the tiny market, dbt build."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from promoflow.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

DBT_PROJECT = PROJECT_ROOT / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class DbtRun:
    returncode: int
    output: str
    seconds: float


_built: dict[str, DbtRun] = {}


def dbt_env(settings: Settings) -> dict[str, str]:
    """The environment for dbt: the PROMO_PG_* connection of these settings."""
    return {
        **os.environ,
        "PROMO_PG_HOST": settings.pg_host,
        "PROMO_PG_PORT": str(settings.pg_port),
        "PROMO_PG_DB": settings.pg_db,
        "PROMO_PG_USER": settings.pg_user,
        "PROMO_PG_PASSWORD": settings.pg_password,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }


def run_dbt(
    settings: Settings, *args: str, env: dict[str, str] | None = None, out_dir: Path | None = None
) -> DbtRun:
    """Run a dbt command on the project; target and logs go to the work folder, not the repo."""
    out_dir = out_dir or settings.tmp_dir / "dbt"
    cmd = [
        str(DBT),
        *args,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
        "--target-path",
        str(out_dir / "target"),
        "--log-path",
        str(out_dir / "logs"),
    ]
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, check=False, env=env or dbt_env(settings), capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - started
    log.info("dbt %s: exit %d in %.1fs", " ".join(args), proc.returncode, seconds)
    return DbtRun(proc.returncode, proc.stdout + proc.stderr, seconds)


def build_marts(settings: Settings, landing: Path) -> DbtRun:
    """Ingest the landing folder into raw and `dbt build` once per database."""
    if settings.pg_db not in _built:
        from ingest.load import run_ingest

        run_ingest(landing, "test_dbt", settings)
        _built[settings.pg_db] = run_dbt(settings, "build")
    return _built[settings.pg_db]
