"""The feature jobs on a Spark standalone cluster (a master and one worker started from the
pyspark package) give the tables of the local run: only PROMO_SPARK_MASTER changes. An executor
killed in the middle of the jobs is replaced and its tasks run again: the same tables."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyspark
import pytest

from promoflow.settings import PROJECT_ROOT, Settings
from spark_jobs import customer_features, product_features, product_week_features
from tests.spark.pipeline import build_features

JOBS = (customer_features, product_features, product_week_features)
SPARK_CLASS = Path(pyspark.__file__).parent / "bin" / "spark-class"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Spark daemon exited with {process.returncode}:\n{log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.5)
    raise RuntimeError(f"Spark daemon not listening on {port} after {seconds} s:\n{log.read_text()}")


def start_daemon(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([str(SPARK_CLASS), *args], stdout=out, stderr=subprocess.STDOUT,
                                env=env)


@dataclass(frozen=True)
class Cluster:
    url: str  # spark://host:port of the master
    folder: Path  # logs; work/ holds each application's executor folders


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A standalone master with one 2-core worker, stopped afterwards."""
    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_LOCAL_IP": HOST, "SPARK_LOG_DIR": str(folder),
           "SPARK_WORKER_DIR": str(folder / "work"),
           "SPARK_LOCAL_DIRS": str(folder / "scratch")}
    master_port, worker_port = free_port(), free_port()
    daemons = []
    try:
        master = start_daemon(["org.apache.spark.deploy.master.Master", "--host", HOST,
                               "--port", str(master_port), "--webui-port", str(free_port())],
                              folder / "master.log", env)
        daemons.append(master)
        wait_for_port(master_port, master, folder / "master.log")
        url = f"spark://{HOST}:{master_port}"
        worker = start_daemon(["org.apache.spark.deploy.worker.Worker", url, "--host", HOST,
                               "--port", str(worker_port), "--webui-port", str(free_port()),
                               "--cores", "2", "--memory", "2g"],
                              folder / "worker.log", env)
        daemons.append(worker)
        wait_for_port(worker_port, worker, folder / "worker.log")
        yield Cluster(url, folder)
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def _on_cluster(cluster: Cluster, work_dir: Path) -> subprocess.Popen:
    """spark_jobs.run_all on the cluster, writing into work_dir."""
    env = {**os.environ, "PROMO_SPARK_MASTER": cluster.url, "PROMO_WORK_DIR": str(work_dir),
           "SPARK_LOCAL_IP": HOST}
    return subprocess.Popen([sys.executable, "-m", "spark_jobs.run_all"], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_tables_of_the_local_run(work_dir: Path, settings: Settings,
                                    local_rows: dict[str, int]) -> None:
    for job in JOBS:
        key = [job.COLUMNS[0], "event_timestamp"]
        on_cluster = pd.read_parquet(work_dir / "lake" / "features" / job.NAME)
        local = pd.read_parquet(settings.feature_dir(job.NAME))
        assert len(on_cluster) == local_rows[job.NAME]
        assert list(on_cluster.columns) == job.COLUMNS
        on_cluster = on_cluster.sort_values(key).reset_index(drop=True)
        local = local.sort_values(key).reset_index(drop=True)
        for name in job.COLUMNS:
            if local[name].dtype.kind == "f":
                np.testing.assert_allclose(on_cluster[name], local[name], rtol=1e-9,
                                           atol=1e-9, err_msg=name)
            else:
                assert on_cluster[name].tolist() == local[name].tolist(), name


def test_feature_jobs_on_a_standalone_cluster(settings: Settings, tiny_landing: Path,
                                              cluster: Cluster, tmp_path: Path) -> None:
    local_rows = build_features(settings, tiny_landing)  # the local run, in this process
    run = _on_cluster(cluster, tmp_path / "work")
    _, stderr = run.communicate(timeout=900)
    assert run.returncode == 0, stderr[-3000:]
    assert "Spark session ready" in stderr
    _assert_tables_of_the_local_run(tmp_path / "work", settings, local_rows)


def _executor_running_a_task(worker_dir: Path) -> int | None:
    """The pid of an executor (of any application on the worker) that has started a task."""
    for stderr in worker_dir.glob("app-*/*/stderr"):
        if "Running task" in stderr.read_text(errors="replace"):
            app = stderr.parent.parent.name
            found = subprocess.run(["pgrep", "-f", f"CoarseGrainedExecutorBackend.*{app}"],
                                   capture_output=True, text=True, check=False).stdout.split()
            if found:
                return int(found[0])
    return None


def test_a_lost_executor_is_replaced_and_its_tasks_run_again(
    settings: Settings, tiny_landing: Path, cluster: Cluster, tmp_path: Path
) -> None:
    local_rows = build_features(settings, tiny_landing)
    run = _on_cluster(cluster, tmp_path / "work")
    deadline = time.time() + 600
    try:
        while (pid := _executor_running_a_task(cluster.folder / "work")) is None:
            assert run.poll() is None, "the job ended before an executor ran a task"
            assert time.time() < deadline, "no executor ran a task within 600 s"
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)  # the executor and the tasks it runs are lost
        _, stderr = run.communicate(timeout=900)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr[-3000:]
    assert "Lost executor" in stderr  # the driver saw it go, and ran its tasks elsewhere
    _assert_tables_of_the_local_run(tmp_path / "work", settings, local_rows)
