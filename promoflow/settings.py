"""One settings object, read from the environment, with defaults for the embedded local run.

Every stage reads its paths and connection details from here, so configuration (not code)
selects local, compose or cluster resources.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """Paths of the work folder and the warehouse connection."""

    work_dir: Path
    pg_host: str
    pg_port: int
    pg_db: str
    pg_user: str
    pg_password: str
    spark_master: str
    jdbc_jar: str
    seed: int
    spark_driver_memory: str = "4g"  # heap of a local Spark (driver and executors in one JVM)

    # --- folders inside the work folder -------------------------------------------------
    @property
    def landing_dir(self) -> Path:
        """Raw files per dataset: landing/<dataset>/<table>.csv."""
        return self.work_dir / "landing"

    @property
    def ground_truth_dir(self) -> Path:
        """Synthetic market ground truth per dataset (never read by the pipeline)."""
        return self.work_dir / "ground_truth"

    @property
    def lake_dir(self) -> Path:
        """Parquet feature tables written by Spark: lake/features/<name>/."""
        return self.work_dir / "lake"

    @property
    def feast_dir(self) -> Path:
        """Feast registry and SQLite online store."""
        return self.work_dir / "feast"

    @property
    def models_dir(self) -> Path:
        return self.work_dir / "models"

    @property
    def runs_dir(self) -> Path:
        """Per-run artifacts (training sets, forecasts, scores): runs/<run_id>/."""
        return self.work_dir / "runs"

    @property
    def gx_dir(self) -> Path:
        return self.work_dir / "gx"

    @property
    def tmp_dir(self) -> Path:
        return self.work_dir / "tmp"

    # --- model tracking and registry (MLflow) ----------------------------------------------
    @property
    def mlflow_dir(self) -> Path:
        """The local MLflow store: mlflow.db (runs and registry) and artifacts/."""
        return self.work_dir / "mlflow"

    @property
    def mlflow_uri(self) -> str:
        """Tracking and registry URI: PROMO_MLFLOW_URI, else a SQLite file in the work folder."""
        return _env("PROMO_MLFLOW_URI", f"sqlite:///{self.mlflow_dir / 'mlflow.db'}")

    @property
    def mlflow_artifacts_dir(self) -> Path:
        """Where runs of a new local experiment keep their artifacts (model files)."""
        return self.mlflow_dir / "artifacts"

    def registered_model(self, dataset: str, model: str) -> str:
        """The registry name of a dataset's model, e.g. promoflow-demo-forecaster."""
        return f"promoflow-{dataset}-{model}"

    def feature_dir(self, name: str) -> Path:
        """Parquet of one feature table in the lake: lake/features/<name>/."""
        return self.lake_dir / "features" / name

    # --- warehouse ------------------------------------------------------------------------
    @property
    def sqlalchemy_url(self) -> str:
        from sqlalchemy.engine import URL

        return URL.create(
            "postgresql+psycopg2",
            username=self.pg_user,
            password=self.pg_password,
            host=self.pg_host,
            port=self.pg_port,
            database=self.pg_db,
        ).render_as_string(hide_password=False)

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.pg_host}:{self.pg_port}/{self.pg_db}"

    def psycopg_kwargs(self) -> dict:
        return {
            "host": self.pg_host,
            "port": self.pg_port,
            "dbname": self.pg_db,
            "user": self.pg_user,
            "password": self.pg_password,
        }


def _local_password(work_dir: Path) -> str:
    """The embedded server's password, generated at init into the (ignored) work folder."""
    path = work_dir / "pg" / "password"
    return path.read_text().strip() if path.exists() else ""


def get_settings() -> Settings:
    work_dir = Path(_env("PROMO_WORK_DIR", str(PROJECT_ROOT / ".local"))).resolve()
    return Settings(
        work_dir=work_dir,
        pg_host=_env("PROMO_PG_HOST", "127.0.0.1"),
        pg_port=int(_env("PROMO_PG_PORT", "55432")),
        pg_db=_env("PROMO_PG_DB", "promo"),
        pg_user=_env("PROMO_PG_USER", "promo"),
        pg_password=_env("PROMO_PG_PASSWORD", _local_password(work_dir)),
        spark_master=_env("PROMO_SPARK_MASTER", "local[2]"),
        jdbc_jar=_env("PROMO_JDBC_JAR", "/usr/share/java/postgresql.jar"),
        seed=int(_env("PROMO_SEED", "42")),
        spark_driver_memory=_env("PROMO_SPARK_DRIVER_MEMORY", "4g"),
    )
