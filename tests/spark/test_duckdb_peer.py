"""The Parquet handoff, and the DuckDB peer against the Spark jobs on the tiny market."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from promoflow.settings import Settings
from promoflow.warehouse import connect
from spark_jobs import customer_features, product_features, product_week_features
from spark_jobs.duckdb_peer import build_features, main
from spark_jobs.handoff import HandoffError, MartHandoff
from spark_jobs.run_all import run_jobs
from tests.dbt.marts import build_marts

JOBS = (customer_features, product_features, product_week_features)


@pytest.fixture(scope="module")
def marts(settings: Settings, tiny_landing: Path) -> None:
    run = build_marts(settings, tiny_landing)
    assert run.returncode == 0, f"dbt build failed:\n{run.output[-3000:]}"


@pytest.fixture(scope="module")
def engines(marts, settings: Settings, spark: SparkSession, tmp_path_factory) -> dict:
    """Both engines on one handoff of the tiny marts; the folders and rows per table."""
    folder = tmp_path_factory.mktemp("peer")
    handoff = MartHandoff(settings, folder / "marts")
    return {
        "folder": folder,
        "spark": run_jobs(spark, handoff, None, settings, folder / "spark"),
        "duckdb": build_features(handoff, None, folder / "duckdb", threads=2),
    }


def test_both_engines_write_the_same_rows(engines: dict) -> None:
    assert set(engines["spark"]) == {job.NAME for job in JOBS}
    assert engines["duckdb"] == engines["spark"]
    assert all(rows > 0 for rows in engines["spark"].values())


@pytest.mark.parametrize("job", JOBS, ids=[job.NAME for job in JOBS])
def test_same_columns_types_and_values(engines: dict, job) -> None:
    spark_table = pq.read_table(engines["folder"] / "spark" / job.NAME)
    duckdb_table = pq.read_table(engines["folder"] / "duckdb" / job.NAME)
    assert spark_table.schema.names == duckdb_table.schema.names == job.COLUMNS
    for name in job.COLUMNS:
        spark_type = spark_table.schema.field(name).type
        assert duckdb_table.schema.field(name).type == spark_type, name
    key = [job.COLUMNS[0], "event_timestamp"]
    spark_frame = spark_table.to_pandas().sort_values(key).reset_index(drop=True)
    duckdb_frame = duckdb_table.to_pandas().sort_values(key).reset_index(drop=True)
    for name in job.COLUMNS:
        left, right = spark_frame[name], duckdb_frame[name]
        if left.dtype.kind == "f":
            np.testing.assert_allclose(right, left, rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            assert left.tolist() == right.tolist(), name


def test_compare_cli_writes_the_benchmark_json(engines: dict, tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    assert main(["--compare", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"spark_session_s", "spark_jobs_s", "duckdb_s", "ratio", "rows"}
    assert result["rows"] == engines["spark"]
    assert result["spark_jobs_s"] > 0 and result["duckdb_s"] > 0
    # the seconds are rounded to 0.01 s, the ratio is not: allow for the rounding
    slack = 0.02 + 0.006 / result["duckdb_s"] + 0.006 / result["spark_jobs_s"]
    assert result["ratio"] == pytest.approx(result["spark_jobs_s"] / result["duckdb_s"], rel=slack)


@pytest.fixture
def probe(marts, settings: Settings):
    """A mart of every type the handoff maps, with the values CSV makes hard."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "create table marts.handoff_probe (id bigint, n integer, s smallint, "
            "price numeric(10, 2), x double precision, flag boolean, day date, "
            "at_utc timestamp, at_tz timestamptz, label text)"
        )
        cur.execute(
            "insert into marts.handoff_probe values "
            "(1, 2, 3, 1.25, 0.1, true, '2024-01-01', '2024-01-01 10:30:00.123456', "
            "'2024-01-01 12:00:00+02', 'a, \"b\"' || chr(10) || 'c'), "
            "(null, null, null, null, null, null, null, null, null, ''), "
            "(4, 5, 6, -7.5, -0.25, false, '1999-12-31', null, null, null)"
        )
    yield "handoff_probe"
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("drop table marts.handoff_probe")


def test_handoff_keeps_types_nulls_and_text(probe: str, settings: Settings,
                                           tmp_path: Path) -> None:
    table = pq.read_table(MartHandoff(settings, tmp_path).path(probe))
    utc = pa.timestamp("us", tz="UTC")
    assert list(zip(table.schema.names, table.schema.types, strict=True)) == [
        ("id", pa.int64()), ("n", pa.int32()), ("s", pa.int16()), ("price", pa.float64()),
        ("x", pa.float64()), ("flag", pa.bool_()), ("day", pa.date32()), ("at_utc", utc),
        ("at_tz", utc), ("label", pa.string()),
    ]
    rows = table.to_pylist()
    assert rows[0] == {
        "id": 1, "n": 2, "s": 3, "price": 1.25, "x": 0.1, "flag": True,
        "day": date(2024, 1, 1),
        "at_utc": datetime(2024, 1, 1, 10, 30, 0, 123456, tzinfo=UTC),
        "at_tz": datetime(2024, 1, 1, 10, 0, tzinfo=UTC),
        "label": 'a, "b"\nc',
    }
    assert rows[1] == {**{name: None for name in table.schema.names}, "label": ""}
    assert (rows[2]["price"], rows[2]["flag"], rows[2]["label"]) == (-7.5, False, None)


def test_handoff_of_a_missing_mart_says_so(marts, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(HandoffError, match="marts.no_such_mart does not exist"):
        MartHandoff(settings, tmp_path).path("no_such_mart")
