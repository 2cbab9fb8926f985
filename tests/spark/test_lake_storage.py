"""A lake folder that cannot be written: refused in one sentence before Spark writes, and a disk
that fills up during a Spark write said in the same sentence. The full and read-only disks are
real: small tmpfs mounts (the test machines run as root)."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from promoflow.settings import Settings
from promoflow.storage import StorageError, writes_to
from spark_jobs.run_all import run_all
from spark_jobs.session import uri


def _sentence(folder: Path, cause: str) -> str:
    return (f"The folder {folder} cannot be written ({cause}); free space on its disk or make it "
            "writable (PROMO_WORK_DIR sets where the work folder is), then rerun.")


@contextmanager
def _tmpfs(folder: Path, size: str, options: str = "") -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs",
                            str(folder)], capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mount.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@pytest.fixture
def lake_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The test database, with a work folder (and so a lake) of the test's own."""
    return dataclasses.replace(settings, work_dir=tmp_path / "work")


def test_a_file_where_the_lake_should_be(lake_settings: Settings, spark: SparkSession) -> None:
    lake_settings.work_dir.mkdir()
    lake_settings.lake_dir.write_text("not a folder\n")
    with pytest.raises(StorageError) as error:
        run_all(lake_settings, spark=spark)
    assert str(error.value) == _sentence(lake_settings.lake_dir,
                                         "a file stands where a folder should be")


def test_a_full_disk_is_refused_before_spark_writes(lake_settings: Settings,
                                                    spark: SparkSession) -> None:
    with _tmpfs(lake_settings.lake_dir, "256k"), pytest.raises(StorageError) as error:
        run_all(lake_settings, spark=spark)
    assert str(error.value) == _sentence(lake_settings.lake_dir, "no space left on the device")


def test_a_read_only_lake(lake_settings: Settings, spark: SparkSession) -> None:
    with _tmpfs(lake_settings.lake_dir, "4m", ",ro"), pytest.raises(StorageError) as error:
        run_all(lake_settings, spark=spark)
    assert str(error.value) == _sentence(lake_settings.lake_dir, "the file system is read-only")


def _fill(disk: Path) -> None:
    """Take the room left on `disk` (someone else's files)."""
    with (disk / "filler").open("wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError:
            pass


def test_a_disk_filling_up_during_a_spark_write(spark: SparkSession, tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "lake", "2m") as lake, pytest.raises(StorageError) as error, \
            writes_to(lake):
        _fill(lake)
        spark.range(200_000).selectExpr("id", "uuid() as text").write.parquet(uri(lake / "table"))
    assert str(error.value) == _sentence(lake, "no space left on the device")
    assert "No space left on device" in str(error.value.__cause__)  # Spark's own error
