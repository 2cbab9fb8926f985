"""The Parquet handoff from the warehouse: marts exported to Parquet for Spark and DuckDB.

Each mart is streamed out of PostgreSQL with `COPY (select ...) TO STDOUT` into a temporary CSV
file, then converted batch by batch (pyarrow's streaming CSV reader) into one Parquet file of
several row groups, so no table is ever whole in Python memory and Spark reads it in parallel
splits. Types are kept: numeric becomes double, integers keep their width, date stays date,
timestamps (UTC in the warehouse) become UTC timestamps, text stays text.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg2 import sql

from promoflow.settings import Settings
from promoflow.warehouse import connect

log = logging.getLogger(__name__)

SCHEMA = "marts"
CSV_BLOCK_BYTES = 16 << 20  # about 150k order lines per batch, one Parquet row group each
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")
ARROW_TYPES: dict[str, pa.DataType] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "numeric": pa.float64(),
    "double precision": pa.float64(),
    "real": pa.float32(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp without time zone": UTC_TIMESTAMP,
    "timestamp with time zone": UTC_TIMESTAMP,
    "text": pa.string(),
    "character varying": pa.string(),
    "character": pa.string(),
}


class HandoffError(ValueError):
    """A mart cannot be handed off (missing, or a column of a type without a Parquet mapping)."""


def mart_columns(cur, table: str) -> list[tuple[str, str]]:
    """(column, PostgreSQL data type) of a mart, in table order."""
    cur.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (SCHEMA, table),
    )
    columns = cur.fetchall()
    if not columns:
        raise HandoffError(
            f"{SCHEMA}.{table} does not exist; load the landing files and run dbt build first."
        )
    unknown = [f"{name} ({kind})" for name, kind in columns if kind not in ARROW_TYPES]
    if unknown:
        raise HandoffError(f"{SCHEMA}.{table} has columns of unsupported types: {unknown}.")
    return columns


def _select_expression(name: str, kind: str) -> sql.Composable:
    """The column as COPY writes it: numeric as double, timestamps as UTC ISO text."""
    column = sql.Identifier(name)
    if kind == "numeric":
        return sql.SQL("{}::double precision").format(column)
    if kind == "timestamp with time zone":
        return sql.SQL("to_char({} at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").format(
            column
        )
    if kind == "timestamp without time zone":
        return sql.SQL("to_char({}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").format(column)
    return column


def export_mart(settings: Settings, table: str, path: Path) -> int:
    """Stream marts.<table> into the Parquet file `path` (replaced atomically); returns rows."""
    started = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    with connect(settings) as conn, conn.cursor() as cur:
        columns = mart_columns(cur, table)
        query = sql.SQL("copy (select {} from {}.{}) to stdout with (format csv)").format(
            sql.SQL(", ").join(_select_expression(name, kind) for name, kind in columns),
            sql.Identifier(SCHEMA),
            sql.Identifier(table),
        )
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".csv") as csv_file:
            cur.copy_expert(query, csv_file, size=1 << 20)
            csv_file.flush()
            rows = _csv_to_parquet(Path(csv_file.name), columns, path)
    log.info("Exported %s.%s: %d rows in %.1f s", SCHEMA, table, rows, time.time() - started)
    return rows


def _csv_to_parquet(csv_path: Path, columns: list[tuple[str, str]], path: Path) -> int:
    schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in columns])
    reader = pacsv.open_csv(
        csv_path,
        read_options=pacsv.ReadOptions(
            column_names=schema.names, block_size=CSV_BLOCK_BYTES
        ),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    rows = 0
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with pq.ParquetWriter(partial, schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
            if rows == 0:
                writer.write_table(schema.empty_table())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return rows


class MartHandoff:
    """Marts exported once each to `folder`/<table>.parquet, for the engines that read them."""

    def __init__(self, settings: Settings, folder: Path | None = None) -> None:
        self.settings = settings
        self.folder = folder or default_folder(settings)
        self.rows: dict[str, int] = {}

    def path(self, table: str) -> Path:
        """The Parquet file of the mart, exported on the first request of this handoff."""
        path = self.folder / f"{table}.parquet"
        if table not in self.rows:
            self.rows[table] = export_mart(self.settings, table, path)
        return path


def default_folder(settings: Settings) -> Path:
    """Where a weekly run hands the marts off: lake/marts/ (inside the work folder, which a
    cluster's driver and executors must share)."""
    return settings.lake_dir / "marts"
