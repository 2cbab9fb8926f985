"""The incremental marts equal a full refresh of the same raw data, row for row: after a later
delivery, after late, corrected and quarantined rows in old weeks, on a rerun, and after a replay
that cuts history (dbt_project/README.md, "Incremental marts").

Two databases of this module: `incremental` only ever runs dbt incrementally after its first
build; `full` rebuilds every model from scratch (`--full-refresh`) on the same raw data."""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from ingest.load import run_ingest
from promoflow.settings import Settings
from promoflow.warehouse import connect
from tests.dbt.marts import DbtRun, run_dbt

log = logging.getLogger(__name__)

#: The incremental marts and their keys.
INCREMENTAL = {"order_lines": ("order_id", "line_number"),
               "product_week_sales": ("product_id", "week_start")}


@contextmanager
def _database(settings: Settings, name: str) -> Iterator[Settings]:
    """A fresh database on the test server; the settings that point at it."""
    admin = psycopg2.connect(host=settings.pg_host, port=settings.pg_port, dbname="postgres",
                             user=settings.pg_user, password=settings.pg_password)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield replace(settings, pg_db=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _corrected(landing: Path, out_dir: Path) -> Path:
    """The landing folder with four changes in old weeks (the 3rd, 6th, 9th and 12th week), in
    orders without a store (so their weeks are UTC weeks): a late order arrives, a line's
    quantity is corrected, a line turns invalid (quantity 0: it is quarantined) and two lines
    swap their products (every column keeps its values in that week, only the rows differ)."""
    shutil.copytree(landing, out_dir)
    order_header, orders = _read(out_dir / "orders.csv")
    line_header, lines = _read(out_dir / "order_lines.csv")
    ordered_at = {row["order_id"]: datetime.fromisoformat(row["ordered_at"]) for row in orders}
    first_week = _monday(min(ordered_at.values()).date())
    online = {row["order_id"] for row in orders if not row["store_id"]}

    def lines_in_week(index: int) -> list[dict[str, str]]:
        week = first_week + timedelta(weeks=index)
        return [line for line in lines if line["order_id"] in online
                and _monday(ordered_at[line["order_id"]].date()) == week
                and int(line["quantity"]) > 0]

    def line_in_week(index: int) -> dict[str, str]:
        return lines_in_week(index)[0]

    late_week = first_week + timedelta(weeks=2)
    template = line_in_week(2)
    late_order = dict(next(row for row in orders if row["order_id"] == template["order_id"]),
                      order_id=str(max(int(row["order_id"]) for row in orders) + 1),
                      ordered_at=f"{late_week + timedelta(days=2)} 12:00:00")
    orders.append(late_order)
    lines.append(dict(template, order_id=late_order["order_id"], line_number="1",
                      quantity="3"))
    corrected = line_in_week(5)
    corrected["quantity"] = str(int(corrected["quantity"]) + 2)
    invalid = line_in_week(8)
    invalid["quantity"] = "0"
    first = line_in_week(11)
    second = next(line for line in lines_in_week(11) if line["product_id"] != first["product_id"])
    first["product_id"], second["product_id"] = second["product_id"], first["product_id"]
    _write(out_dir / "orders.csv", order_header, orders)
    _write(out_dir / "order_lines.csv", line_header, lines)
    return out_dir


def _replaced(run: DbtRun, mart: str) -> tuple[int, int]:
    """(weeks replaced, weeks kept) of a mart, as the changed_weeks strategy logged them."""
    found = re.search(rf"marts\.{mart}: (\d+) week\(s\) replaced, (\d+) kept", run.output)
    assert found, f"no incremental run of {mart} in the dbt log:\n{run.output[-3000:]}"
    log.info("%s: %s week(s) replaced, %s kept", mart, found.group(1), found.group(2))
    return int(found.group(1)), int(found.group(2))


def _rows(settings: Settings, mart: str) -> tuple[list[tuple], list[tuple]]:
    """(columns with types, rows ordered by the key) of a mart."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select column_name, data_type from information_schema.columns "
                    "where table_schema = 'marts' and table_name = %s order by column_name",
                    (mart,))
        columns = cur.fetchall()
        cur.execute(f"select * from marts.{mart} order by {', '.join(INCREMENTAL[mart])}")
        names = [d.name for d in cur.description]
        order = sorted(range(len(names)), key=names.__getitem__)  # physical order may differ
        rows = [tuple(row[i] for i in order) for row in cur.fetchall()]
    return columns, rows


class Warehouses:
    """The incremental and the fully refreshed warehouse, loaded with the same raw data."""

    def __init__(self, incremental: Settings, full: Settings) -> None:
        self.incremental, self.full = incremental, full
        self.loads = 0

    def load(self, landing: Path, as_of: date | None = None) -> None:
        self.loads += 1
        for settings in (self.incremental, self.full):
            run_ingest(landing, f"incremental_{self.loads}", settings,
                       as_of=datetime(as_of.year, as_of.month, as_of.day) if as_of else None,
                       replay=as_of is not None)

    def dbt(self, settings: Settings, *args: str) -> DbtRun:
        run = run_dbt(settings, *args, out_dir=settings.tmp_dir / f"dbt_{settings.pg_db}")
        assert run.returncode == 0, run.output[-5000:]
        return run

    def build(self, *args: str) -> DbtRun:
        """dbt incrementally on one side, from scratch on the other; the marts must be equal."""
        incremental = self.dbt(self.incremental, *args)
        self.dbt(self.full, "run", "--full-refresh")
        self.assert_equal()
        return incremental

    def assert_equal(self) -> None:
        for mart in INCREMENTAL:
            columns, rows = _rows(self.incremental, mart)
            full_columns, full_rows = _rows(self.full, mart)
            assert columns == full_columns, mart
            assert len(rows) == len(full_rows) > 0, mart
            differing = [(a, b) for a, b in zip(rows, full_rows, strict=True) if a != b]
            assert not differing, f"{mart}: {len(differing)} rows differ, e.g. {differing[:2]}"


@pytest.fixture(scope="module")
def warehouses(settings: Settings) -> Iterator[Warehouses]:
    with (_database(settings, f"{settings.pg_db}_incremental") as incremental,
          _database(settings, f"{settings.pg_db}_full") as full):
        yield Warehouses(incremental, full)


@pytest.mark.integration
def test_incremental_marts_equal_a_full_refresh(warehouses: Warehouses,
                                                tiny_landing: Path) -> None:
    _, orders = _read(tiny_landing / "orders.csv")
    ordered = [datetime.fromisoformat(row["ordered_at"]).date() for row in orders]
    last_week = _monday(max(ordered))
    weeks = (last_week - _monday(min(ordered))).days // 7 + 1

    # first delivery: the market as it stood ten weeks before its end; built from scratch
    warehouses.load(tiny_landing, as_of=last_week - timedelta(weeks=10))
    warehouses.build("run")

    # the next delivery brings the last eleven weeks: the older weeks are kept as they are, and
    # the data tests pass on the result
    warehouses.load(tiny_landing)
    later = warehouses.build("build")
    for mart in INCREMENTAL:
        replaced, kept = _replaced(later, mart)
        assert 11 <= replaced <= 12 and replaced + kept == weeks, (mart, replaced, kept)
    assert "Completed successfully" in later.output

    # a late order, a corrected line, a quarantined line and two lines swapping products, all in
    # old weeks: only their four weeks are replaced
    corrected = _corrected(tiny_landing, warehouses.incremental.tmp_dir / "corrected")
    warehouses.load(corrected)
    fixed = warehouses.build("run")
    for mart in INCREMENTAL:
        assert _replaced(fixed, mart)[0] == 4, mart
    with connect(warehouses.incremental) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from raw.quarantine where reason = 'out_of_range'")
        assert cur.fetchone()[0] >= 1

    # a rerun on the same raw data changes nothing
    rerun = warehouses.dbt(warehouses.incremental, "run")
    for mart in INCREMENTAL:
        assert _replaced(rerun, mart)[0] == 0, mart
    warehouses.assert_equal()

    # a replay as of thirty weeks before the end: raw shrinks, the later weeks go
    warehouses.load(corrected, as_of=last_week - timedelta(weeks=30))
    replay = warehouses.build("run")
    for mart in INCREMENTAL:
        replaced, kept = _replaced(replay, mart)
        assert 31 <= replaced <= 32 and replaced + kept == weeks, (mart, replaced, kept)
