"""The feature jobs on a Spark standalone cluster (a master and one worker started from the
pyspark package) give the tables of the local run: only PROMO_SPARK_MASTER changes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    """The URL of a standalone master with one 2-core worker, stopped afterwards."""
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
        yield url
    finally:
        for daemon in reversed(daemons):
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


def test_feature_jobs_on_a_standalone_cluster(settings: Settings, tiny_landing: Path,
                                              cluster: str, tmp_path: Path) -> None:
    local_rows = build_features(settings, tiny_landing)  # the local run, in this process
    work_dir = tmp_path / "work"
    env = {**os.environ, "PROMO_SPARK_MASTER": cluster, "PROMO_WORK_DIR": str(work_dir),
           "SPARK_LOCAL_IP": HOST}
    run = subprocess.run([sys.executable, "-m", "spark_jobs.run_all"], check=False,
                         cwd=PROJECT_ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Spark session ready" in run.stderr
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
