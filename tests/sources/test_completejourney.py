"""The Complete Journey importer: hand-computed rows, accounting, assumptions, a deterministic
200-household subset that passes ingest, and refusal of a missing source folder."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
import psycopg2
import pytest

from ingest.load import run_ingest
from sources.completejourney import DEFAULT_SOURCE, import_completejourney

TABLES = ("customers", "products", "holidays", "stores", "orders", "order_lines", "promotions",
          "inventory")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cj_full")
    return out, import_completejourney(out)


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("cj_200")
    return out, import_completejourney(out, households=200, seed=7)


def _csv(folder: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)


@pytest.mark.parametrize(
    ("basket", "product", "quantity", "list_price", "paid_price", "promo_type"),
    [
        # qty 2, sales 3.50, retail 2.78, coupon 1.50, match 0.50:
        # list (3.50 + 2.78 + 0.50) / 2 = 3.39; paid 3.50 / 2 = 1.75 (loyalty price cut)
        ("33770325654", "13007434", "2", "3.39", "1.75", "price_cut"),
        # qty 6, sales 10.14, retail 0.60: list 10.74 / 6 = 1.79; paid 10.14 / 6 = 1.69
        ("33070810198", "995242", "6", "1.79", "1.69", "price_cut"),
        # qty 1, sales 0.79, coupon 0.50, match 0.50: list 0.79 + 0.50 = 1.29; paid 0.79
        ("33192361255", "922307", "1", "1.29", "0.79", "coupon"),
        # qty 3, sales 0.75, retail 1.02: list 1.77 / 3 = 0.59; paid 0.75 / 3 = 0.25
        ("34010306815", "1080414", "3", "0.59", "0.25", "price_cut"),
    ],
)
def test_hand_computed_lines(full, basket, product, quantity, list_price, paid_price, promo_type):
    out, _ = full
    lines = _csv(out, "order_lines")
    row = lines[(lines["order_id"] == basket) & (lines["product_id"] == product)]
    assert len(row) == 1
    r = row.iloc[0]
    assert (r["quantity"], r["unit_list_price"], r["unit_paid_price"]) == (
        quantity, list_price, paid_price)
    promos = _csv(out, "promotions").set_index("promotion_id")
    assert promos.loc[r["promotion_id"], "promo_type"] == promo_type
    assert promos.loc[r["promotion_id"], "product_id"] == product
    order = _csv(out, "orders").set_index("order_id").loc[basket]
    assert order["channel"] == "store"


def test_refused_lines_are_counted_not_written(full):
    out, report = full
    lines = _csv(out, "order_lines")
    # fuel: 8776 units for 23.25 -> 0.00 a unit; a coupon-only line of quantity 0
    assert lines[lines["order_id"] == "32760904833"].empty
    assert lines[(lines["order_id"] == "31389956808") & (lines["product_id"] == "983659")].empty
    dropped = report["tables"]["order_lines"]["dropped"]
    assert dropped["unit_price_rounds_to_zero"] > 0 and dropped["zero_quantity"] > 0


def test_accounting(full):
    _, report = full
    source = pd.read_csv(DEFAULT_SOURCE / "transactions_sample.csv.gz", usecols=["basket_id"])
    t = report["tables"]["order_lines"]
    assert t["rows_in"] == len(source) == t["rows_out"] + sum(t["dropped"].values())
    for name, s in report["sources"].items():
        assert s["rows_in"] == s["rows_used"] + sum(s["dropped"].values()), name
    for name, t in report["tables"].items():
        assert t["rows_in"] == t["rows_out"] + sum(t["dropped"].values()), name
    lines = report["tables"]["order_lines"]
    assert report["sources"]["transactions_sample"]["rows_used"] == lines["rows_out"]
    households = pd.read_csv(DEFAULT_SOURCE / "transactions_sample.csv.gz",
                             usecols=["household_id"])["household_id"].nunique()
    assert report["tables"]["customers"]["rows_out"] == households


def test_assumptions_in_report(tmp_path):
    # a consent log left in the folder by something else would make households targetable
    (tmp_path / "contact_consents.csv").write_text(
        "customer_id,channel,consented_at,withdrawn_at\n1,email,2017-01-01 00:00:00,\n")
    report = import_completejourney(tmp_path, households=50, unit_cost_rate=0.5, stock_weeks=2)
    a = report["assumptions"]
    assert (a["unit_cost_rate"], a["stock_weeks"], a["timezone"]) == (0.5, 2, "America/New_York")
    assert a["signup_date"] == "2017-01-01" and a["inventory_snapshot_date"] == "2017-12-31"
    for key in ("unit_list_price", "unit_paid_price", "category", "region", "week_dates",
                "holidays", "order_channel", "preferred_channel", "stores"):
        assert a[key]
    # no contact consent in the data: no preferred channel, no consent log, nobody targeted
    assert "no household is ever targeted" in a["contact_consents"]
    assert not (tmp_path / "contact_consents.csv").exists()
    assert (_csv(tmp_path, "customers")["preferred_channel"] == "").all()
    assert json.loads((tmp_path / "import_report.json").read_text())["assumptions"] == a
    products = _csv(tmp_path, "products").astype({"list_price": float, "unit_cost": float})
    assert (products["unit_cost"] - (products["list_price"] * 0.5).round(2)).abs().max() < 0.006


def test_subset_is_deterministic_and_loads(subset, tmp_path, settings):
    out, report = subset
    again = import_completejourney(tmp_path, households=200, seed=7)
    for table in TABLES:
        assert (out / f"{table}.csv").read_bytes() == (tmp_path / f"{table}.csv").read_bytes()
    assert again["tables"] == report["tables"]
    assert report["tables"]["customers"]["rows_out"] == 200
    counts = run_ingest(out, "cj-200", settings, as_of=datetime(2026, 11, 16))
    with psycopg2.connect(**settings.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("select table_name, input_rows, loaded_rows, quarantined_rows "
                    "from audit.ingest_runs where run_id = 'cj-200'")
        audit = {name: rest for name, *rest in cur.fetchall()}
    for table in TABLES:
        c = counts[table]
        assert audit[table] == [c["input"], c["loaded"], c["quarantined"]], table
        assert c["input"] == c["loaded"] + c["quarantined"], table
        assert c["quarantined"] == 0, table
        assert c["input"] == report["tables"][table]["rows_out"], table


def test_missing_source_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sources.completejourney", "--out", str(tmp_path / "out"),
         "--source", str(tmp_path / "nowhere")],
        capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: ") and "nowhere" in proc.stderr


def test_orders_carry_their_store_on_the_stores_calendar(full):
    out, report = full
    source = pd.read_csv(DEFAULT_SOURCE / "transactions_sample.csv.gz",
                         usecols=["basket_id", "store_id"], dtype=str).drop_duplicates("basket_id")
    orders = _csv(out, "orders").merge(source, left_on="order_id", right_on="basket_id",
                                       suffixes=("", "_source"))
    assert len(orders) == report["tables"]["orders"]["rows_out"]
    assert (orders["store_id"] == orders["store_id_source"]).all()
    stores = _csv(out, "stores")
    assert set(stores["store_id"]) == set(orders["store_id"])
    assert (stores["timezone"] == "America/New_York").all()
    assert report["tables"]["stores"]["rows_out"] == len(stores)


def test_unknown_time_zone_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sources.completejourney", "--out", str(tmp_path / "out"),
         "--timezone", "Eastern"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: --timezone 'Eastern' is not an IANA time zone name "
                                   "(such as America/New_York).")
