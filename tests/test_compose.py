"""docker-compose.yml is checked against the Compose file format (no Docker engine needed)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="docker-compose is installed by scripts/bootstrap.sh")


def _config(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PROMO_PG_PASSWORD="compose-check", PROMO_WRITER_PASSWORD="w",
               PROMO_BI_PASSWORD="b")
    return subprocess.run(["docker-compose", "-f", str(path), "config", "-q"],
                          capture_output=True, text=True, env=env, cwd=path.parent, check=False)


def test_compose_file_is_valid():
    result = _config(COMPOSE)
    assert result.returncode == 0, result.stderr


def test_compose_has_the_platform_services():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    for name in ("postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                 "spark-master", "spark-worker"):
        assert name in services, name
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    # secrets come from the environment, never written in the file
    assert "${PROMO_PG_PASSWORD" in COMPOSE.read_text()
    # tasks reach the warehouse as the writer role, not as the admin user
    env = spec["x-promo-env"]
    assert env["PROMO_PG_USER"] == "promo_writer"
    assert env["AIRFLOW_CONN_PROMO_WAREHOUSE"].startswith("postgres://promo_writer:")
    assert services["airflow-init"]["environment"]["PROMO_PG_USER"] == "promo"


def test_a_broken_compose_file_is_refused(tmp_path):
    spec = yaml.safe_load(COMPOSE.read_text())
    spec["services"]["postgres"]["restart_policy_typo"] = "always"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(spec))
    (tmp_path / "scripts").mkdir()
    result = _config(broken)
    assert result.returncode != 0
    assert "restart_policy_typo" in result.stderr
