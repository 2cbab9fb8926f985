"""PostgreSQL stops in the middle of a weekly run: once during dbt, once during Spark.

The runs use a PostgreSQL server of their own (its own port and work folder), which the test
stops while a task of the stage is running. The run must end with one sentence naming the server
and what to do; after a restart the next run marks the stopped runs failed (Airflow's metadata
lives on the same server, so nothing else ends them) and publishes the plan the week had before.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest

from promoflow.settings import PROJECT_ROOT, Settings
from tests.e2e.test_weekly_flow import AUDIENCE, BUDGET, MARGIN_FLOOR, _published_rows

WEEKLY = [sys.executable, "-m", "local.runner", "weekly", "--dataset", "tiny",
          "--budget", str(BUDGET), "--max-discount", "0.3", "--margin-floor", str(MARGIN_FLOOR),
          "--max-promos-per-category", "3", "--audience-size", str(AUDIENCE),
          "--holdout-fraction", "0.2", "--epochs", "0", "--seed", "42"]
STAGE_TIMEOUT_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclasses.dataclass
class Server:
    settings: Settings
    env: dict[str, str]

    def pg(self, action: str) -> None:
        subprocess.run([sys.executable, "-m", "local.pg", action], env=self.env, cwd=PROJECT_ROOT,
                       check=True, capture_output=True)

    def query(self, sql: str, params: tuple = (), database: str | None = None) -> list[tuple]:
        s = self.settings
        conn = psycopg2.connect(host=s.pg_host, port=s.pg_port, dbname=database or s.pg_db,
                                user=s.pg_user, password=s.pg_password, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def dag_runs(self) -> dict[str, str]:
        return dict(self.query("select run_id, state from dag_run where dag_id = 'promo_weekly'",
                               database=f"{self.settings.pg_db}_airflow"))

    def latest_plan(self) -> str:
        return self.query("select run_id from published.plans order by published_at desc "
                          "limit 1")[0][0]


@pytest.fixture(scope="module")
def server(settings: Settings, tiny_landing: Path):
    # not under pytest's own temporary folder: another pytest process makes that private again
    # (mode 700), and the server's account would lose its way to the data folder
    work = Path(tempfile.mkdtemp(prefix="promo-pg-stops-"))
    shutil.copytree(tiny_landing, work / "landing" / "tiny")
    shutil.copytree(settings.ground_truth_dir / "tiny", work / "ground_truth" / "tiny")
    port = _free_port()
    env = {**os.environ, "PROMO_WORK_DIR": str(work), "PROMO_PG_PORT": str(port)}
    server = Server(dataclasses.replace(settings, work_dir=work, pg_port=port), env)
    server.pg("start")
    yield server
    server.pg("stop")
    shutil.rmtree(work, ignore_errors=True)


def _stop_during(server: Server, stage: str, log: Path) -> subprocess.CompletedProcess:
    """Start the weekly run, stop PostgreSQL once a task of `stage` runs; the ended run (its
    output in `log`: a pipe nobody reads while the run goes on would block it)."""
    started = server.query("select now()")[0][0]
    with log.open("w") as out:
        run = subprocess.Popen(WEEKLY, env=server.env, cwd=PROJECT_ROOT, stdout=out,
                               stderr=subprocess.STDOUT)
    deadline = time.time() + STAGE_TIMEOUT_S
    try:
        while True:
            assert run.poll() is None, f"the run ended before {stage} started"
            assert time.time() < deadline, f"no {stage} task ran within {STAGE_TIMEOUT_S} s"
            running = server.query(
                "select task_id from task_instance where state = 'running' and start_date > %s",
                (started,), database=f"{server.settings.pg_db}_airflow")
            if any(task.startswith(stage) for (task,) in running):
                break
            time.sleep(0.5)
        server.pg("stop")
        run.wait(timeout=STAGE_TIMEOUT_S)
    finally:
        if run.poll() is None:
            run.kill()
    return subprocess.CompletedProcess(WEEKLY, run.returncode, "", log.read_text())


@pytest.mark.integration
def test_a_run_survives_postgresql_stopping_under_dbt_and_spark(server: Server,
                                                                tmp_path: Path) -> None:
    subprocess.run(WEEKLY, env=server.env, cwd=PROJECT_ROOT, check=True, capture_output=True)
    before = server.latest_plan()
    plan = _published_rows(server.settings, before)
    assert plan["plan_lines"]

    s = server.settings
    for stage in ("dbt_marts.", "spark_features"):
        ended = _stop_during(server, stage, tmp_path / f"{stage.strip('.')}.log")
        assert ended.returncode == 1
        last = ended.stderr.strip().splitlines()[-1]
        assert last == (
            f"error: PostgreSQL at {s.pg_host}:{s.pg_port} stopped answering during the "
            "promo_weekly run (Connection refused); start it again (`make services` starts the "
            "embedded server) and rerun the same command, which runs the week again from its "
            "start."), ended.stderr[-2000:]
        server.pg("start")
        assert "running" in server.dag_runs().values()  # what the stopped run left behind

    subprocess.run(WEEKLY, env=server.env, cwd=PROJECT_ROOT, check=True, capture_output=True)
    states = server.dag_runs()
    assert sorted(states.values()) == ["failed", "failed", "success", "success"], states
    after = server.latest_plan()
    assert after != before
    assert _published_rows(s, after) == plan
