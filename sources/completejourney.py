"""The Complete Journey 2.0 (84.51°, CC0) as landing files in the raw contract.

    python -m sources.completejourney --out DIR [--source datasets/completejourney]
        [--households N] [--seed S] [--unit-cost-rate R] [--stock-weeks W]

Households become customers, baskets orders, transaction lines order lines, products products;
display, mailer, loyalty (retail_disc) and coupon discounts become promotions per product and
week; inventory and costs are assumptions. The data holds no contact consent: no customer has
a preferred channel and no contact_consents file is written, so no household is ever targeted.
Lines the contract would refuse are dropped and counted per reason. The mapping and every
assumption are in docs/completejourney.md; the report (rows in/out per source and table,
drops, assumptions) is returned and written as import_report.json next to the CSVs. Same
arguments, same bytes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ingest.contract import TIME_ZONES
from promoflow.settings import PROJECT_ROOT

DEFAULT_SOURCE = PROJECT_ROOT / "datasets" / "completejourney"
UNIT_COST_RATE = 0.65
STOCK_WEEKS = 4.0
TIMEZONE = "America/New_York"  # the stores' calendar: weeks of the data are Monday-Sunday there
SIGNUP_DATE = "2017-01-01"  # the panel covers all of 2017; no sign-up dates in the data
WEEK2_START = dt.date(2017, 1, 2)  # data week 1 is Sunday 2017-01-01 alone; weeks are Mon-Sun
SNAPSHOT_DATE = "2017-12-31"  # the last day of data week 53
N_WEEKS = 53
DEPTH_MAX = 0.9999
# US holidays and retail events of 2017, plus New Year's Day of the week after the data.
HOLIDAYS = [
    ("2017-01-01", "New Year's Day"),
    ("2017-01-16", "Martin Luther King Jr. Day"),
    ("2017-02-14", "Valentine's Day"),
    ("2017-02-20", "Presidents' Day"),
    ("2017-04-16", "Easter"),
    ("2017-05-14", "Mother's Day"),
    ("2017-05-29", "Memorial Day"),
    ("2017-07-04", "Independence Day"),
    ("2017-09-04", "Labor Day"),
    ("2017-10-31", "Halloween"),
    ("2017-11-23", "Thanksgiving"),
    ("2017-11-24", "Black Friday"),
    ("2017-12-25", "Christmas"),
    ("2018-01-01", "New Year's Day"),
]
USED_SOURCES = ("transactions_sample", "products", "demographics", "promotions_sample")
UNUSED_SOURCES = ("campaigns", "campaign_descriptions", "coupons", "coupon_redemptions")
# the data holds no contact consent: no contact_consents file (an earlier one in the folder is
# removed) and no preferred channel, so no household may be contacted
NO_CONSENT = "no file: the data holds no contact consent, so no household is ever targeted"
COLUMNS = {
    "customers": ["customer_id", "signup_date", "region", "age_band", "preferred_channel"],
    "products": ["product_id", "product_name", "category", "brand", "list_price", "unit_cost"],
    "holidays": ["holiday_date", "holiday_name"],
    "stores": ["store_id", "store_name", "region", "timezone"],
    "orders": ["order_id", "customer_id", "ordered_at", "channel", "store_id"],
    "order_lines": ["order_id", "line_number", "product_id", "quantity", "unit_list_price",
                    "unit_paid_price", "promotion_id"],
    "promotions": ["promotion_id", "product_id", "start_date", "end_date", "discount_depth",
                   "promo_type"],
    "inventory": ["product_id", "snapshot_date", "on_hand_units"],
}


class CompleteJourneyError(ValueError):
    """A source folder or argument the importer cannot use (one-line message)."""


def week_dates(week: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Data week (1-53) -> (start, end) dates: Monday-Sunday weeks from 2017-01-02 (week 2);
    week 1 is Sunday 2017-01-01 only."""
    start = pd.Timestamp(WEEK2_START) + pd.to_timedelta(7 * (week - 2), unit="D")
    end = start + pd.Timedelta(days=6)
    return start.clip(lower=pd.Timestamp("2017-01-01")), end


def _read(source: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(source / f"{name}.csv.gz", dtype=str, keep_default_na=False)


def _int(values: pd.Series) -> pd.Series:
    """Whole numbers of the source; R's export writes some as '9e+05'."""
    return values.astype(float).astype(np.int64)


def _money(values) -> np.ndarray:
    return np.char.mod("%.2f", np.round(np.asarray(values, dtype=float), 2))


def _depth(part: pd.Series, whole: pd.Series) -> pd.Series:
    return (part / whole).clip(0.0, DEPTH_MAX).round(4)


def _lines(tx: pd.DataFrame, catalog: pd.Index) -> tuple[pd.DataFrame, pd.Series]:
    """Priced transaction lines and, per line, the reason it is dropped ('' when kept)."""
    for col in ("quantity", "sales_value", "retail_disc", "coupon_disc", "coupon_match_disc"):
        tx[col] = tx[col].astype(float)
    tx["list_amount"] = tx["sales_value"] + tx["retail_disc"] + tx["coupon_match_disc"]
    qty = tx["quantity"].where(tx["quantity"] != 0)
    tx["unit_list_price"] = (tx["list_amount"] / qty).round(2)
    tx["unit_paid_price"] = (tx["sales_value"] / qty).round(2)
    reason = pd.Series("", index=tx.index)
    rules = [  # the first broken rule names the reason
        ("product_not_in_catalog", ~tx["product_id"].isin(catalog)),
        ("zero_quantity", tx["quantity"] == 0),
        ("fractional_quantity", tx["quantity"] % 1 != 0),
        ("zero_sales_value", tx["sales_value"] <= 0),
        ("unit_price_rounds_to_zero", tx["unit_paid_price"] <= 0),
    ]
    for name, mask in reversed(rules):
        reason[mask] = name
    return tx, reason


def import_completejourney(
    out_dir: Path,
    source_dir: Path = DEFAULT_SOURCE,
    households: int | None = None,
    seed: int = 42,
    unit_cost_rate: float = UNIT_COST_RATE,
    stock_weeks: float = STOCK_WEEKS,
    timezone: str = TIMEZONE,
) -> dict:
    """Write the landing CSVs and import_report.json to out_dir; return the report."""
    started = time.perf_counter()
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not source_dir.is_dir():
        raise CompleteJourneyError(
            f"Source folder {source_dir} does not exist; pass --source the folder of "
            "The Complete Journey files (default datasets/completejourney)."
        )
    missing = [f"{n}.csv.gz" for n in (*USED_SOURCES, *UNUSED_SOURCES)
               if not (source_dir / f"{n}.csv.gz").is_file()]
    if missing:
        raise CompleteJourneyError(
            f"{source_dir} lacks {', '.join(missing)}; pass --source the folder of "
            "The Complete Journey files (default datasets/completejourney)."
        )
    if not 0 < unit_cost_rate < 1 or stock_weeks <= 0:
        raise CompleteJourneyError("the unit cost rate must be in (0, 1) and stock weeks > 0.")
    if timezone not in TIME_ZONES:
        raise CompleteJourneyError(
            f"--timezone {timezone!r} is not an IANA time zone name (such as America/New_York)."
        )
    if households is not None and households < 1:
        raise CompleteJourneyError("--households must be at least 1.")
    sources = {n: _read(source_dir, n) for n in USED_SOURCES}
    report_sources = {}

    # --- households (optional seeded subset) -------------------------------------------------
    tx = sources["transactions_sample"].copy()
    tx["row"] = np.arange(len(tx))
    tx["ordered_at"] = pd.to_datetime(tx["transaction_timestamp"])
    tx["household_id"] = _int(tx["household_id"])
    all_households = np.sort(tx["household_id"].unique())
    chosen = all_households
    if households is not None and households < len(all_households):
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(all_households, households, replace=False))
    in_subset = tx["household_id"].isin(chosen)
    tx = tx[in_subset].reset_index(drop=True)
    for col in ("basket_id", "product_id", "week"):
        tx[col] = _int(tx[col])

    # --- order lines -------------------------------------------------------------------------
    catalog = sources["products"].assign(product_id=lambda d: _int(d["product_id"]))
    tx, reason = _lines(tx, pd.Index(catalog["product_id"]))
    drop_reasons = ["product_not_in_catalog", "zero_quantity", "fractional_quantity",
                    "zero_sales_value", "unit_price_rounds_to_zero"]
    line_drops = {r: int((reason == r).sum()) for r in drop_reasons}
    kept = tx[reason == ""].sort_values(["basket_id", "product_id", "row"], kind="stable")
    kept = kept.reset_index(drop=True)
    kept["quantity"] = kept["quantity"].astype(np.int64)
    kept["line_number"] = kept.groupby("basket_id").cumcount() + 1
    report_sources["transactions_sample"] = {
        "rows_in": len(sources["transactions_sample"]), "rows_used": len(kept),
        "dropped": {"household_not_sampled": int((~in_subset).sum()), **line_drops}}

    # --- products: those with at least one kept line -----------------------------------------
    list_price = kept.groupby("product_id")["unit_list_price"].median().round(2)
    prod = catalog[catalog["product_id"].isin(list_price.index)].sort_values("product_id")
    prod = prod.assign(list_price=prod["product_id"].map(list_price))
    dept, pcat, ptype = (prod[c].str.strip() for c in ("department", "product_category",
                                                        "product_type"))
    name = ptype.where(ptype != "", pcat).where(lambda s: s != "", dept)
    size = prod["package_size"].str.strip()
    products = pd.DataFrame({
        "product_id": prod["product_id"],
        "product_name": (name + " " + size).str.replace(r"\s+", " ", regex=True).str.strip(),
        "category": pcat.where(pcat != "", dept),
        "brand": prod["brand"].str.strip(),
        "list_price": _money(prod["list_price"]),
        "unit_cost": _money(np.maximum(np.round(prod["list_price"] * unit_cost_rate, 2), 0.01)),
    })
    seen = pd.Index(tx["product_id"].unique())
    in_catalog = seen.intersection(catalog["product_id"])
    report_sources["products"] = {
        "rows_in": len(catalog), "rows_used": len(products),
        "dropped": {"no_kept_transaction_line": len(catalog) - len(products)}}

    # --- customers and orders ----------------------------------------------------------------
    home = (tx.groupby(["household_id", "store_id"]).size().rename("n").reset_index()
            .assign(store=lambda d: _int(d["store_id"]))
            .sort_values(["household_id", "n", "store"], ascending=[True, False, True])
            .drop_duplicates("household_id").set_index("household_id")["store"])
    demo = sources["demographics"].assign(household_id=lambda d: _int(d["household_id"]))
    demo_used = demo["household_id"].isin(chosen)
    age = demo.set_index("household_id")["age"]
    customer_ids = np.sort(tx["household_id"].unique())
    customers = pd.DataFrame({
        "customer_id": customer_ids,
        "signup_date": SIGNUP_DATE,
        "region": "store " + pd.Series(customer_ids).map(home).astype(str).to_numpy(),
        "age_band": pd.Series(customer_ids).map(age).fillna("").to_numpy(),
        "preferred_channel": "",
    })
    not_in_tx = ~demo["household_id"].isin(all_households)
    report_sources["demographics"] = {
        "rows_in": len(demo), "rows_used": int(demo_used.sum()),
        "dropped": {"household_not_in_transactions": int(not_in_tx.sum()),
                    "household_not_sampled": int((~demo_used & ~not_in_tx).sum())}}
    baskets = tx.groupby("basket_id").agg(customer_id=("household_id", "first"),
                                          ordered_at=("ordered_at", "min"),
                                          store_id=("store_id", "first"))
    orders = baskets[baskets.index.isin(kept["basket_id"])].reset_index()
    orders = pd.DataFrame({
        "order_id": orders["basket_id"], "customer_id": orders["customer_id"],
        "ordered_at": orders["ordered_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
        "channel": "store", "store_id": _int(orders["store_id"]).to_numpy()})
    store_ids = np.sort(orders["store_id"].unique())
    stores = pd.DataFrame({"store_id": store_ids, "store_name": [f"store {i}" for i in store_ids],
                           "region": "", "timezone": timezone})

    # --- promotions per product and week -----------------------------------------------------
    pw = kept.groupby(["product_id", "week"]).agg(
        list_amount=("list_amount", "sum"), sales=("sales_value", "sum"),
        retail=("retail_disc", "sum"),
        coupon=("coupon_disc", "sum"), match=("coupon_match_disc", "sum"))
    observed = _depth(pw["list_amount"] - pw["sales"], pw["list_amount"])
    promo_src = sources["promotions_sample"].copy()
    promo_src["product_id"] = _int(promo_src["product_id"])
    promo_src["week"] = _int(promo_src["week"])
    imported = promo_src["product_id"].isin(products["product_id"])
    no_promo = (promo_src["display_location"].str.strip().isin(["0", ""])
                & promo_src["mailer_location"].str.strip().isin(["0", ""]))
    promo_used = imported & ~no_promo
    report_sources["promotions_sample"] = {
        "rows_in": len(promo_src), "rows_used": int(promo_used.sum()),
        "dropped": {"product_not_imported": int((~imported).sum()),
                    "no_display_or_mailer": int((imported & no_promo).sum())}}
    frames = []
    for kind, col in (("display", "display_location"), ("mailer", "mailer_location")):
        rows = promo_src[promo_used & ~promo_src[col].str.strip().isin(["0", ""])]
        keys = rows[["product_id", "week"]].drop_duplicates()
        idx = pd.MultiIndex.from_frame(keys)
        frames.append(keys.assign(promo_type=kind,
                                  discount_depth=observed.reindex(idx).fillna(0.0).to_numpy()))
    coupon_part = pw["coupon"] + pw["match"]  # a coupon may exceed the shelf price: clipped
    clipped = int(((coupon_part / pw["list_amount"]) > DEPTH_MAX).sum())
    for kind, part in (("price_cut", pw["retail"]), ("coupon", coupon_part)):
        has = part > 0
        frames.append(pd.DataFrame({
            "product_id": pw.index.get_level_values(0)[has], "week": pw.index.get_level_values(1)[has],
            "promo_type": kind, "discount_depth": _depth(part, pw["list_amount"])[has].to_numpy()}))
    type_order = {"price_cut": 0, "display": 1, "mailer": 2, "coupon": 3}
    promos = (pd.concat(frames, ignore_index=True)
              .assign(t=lambda d: d["promo_type"].map(type_order))
              .sort_values(["week", "product_id", "t"], kind="stable").reset_index(drop=True))
    promos["promotion_id"] = np.arange(1, len(promos) + 1)
    start, end = week_dates(promos["week"])
    promotions = pd.DataFrame({
        "promotion_id": promos["promotion_id"], "product_id": promos["product_id"],
        "start_date": start.dt.strftime("%Y-%m-%d"), "end_date": end.dt.strftime("%Y-%m-%d"),
        "discount_depth": np.char.mod("%.4f", promos["discount_depth"].to_numpy(dtype=float)),
        "promo_type": promos["promo_type"]})

    # the promotion that priced a line: its week's price cut (loyalty), else its coupon match
    pid = promos.set_index(["product_id", "week", "promo_type"])["promotion_id"]
    key = pd.MultiIndex.from_arrays([kept["product_id"], kept["week"]])
    by_type = {k: pid.xs(k, level="promo_type").reindex(key).to_numpy()
               for k in ("price_cut", "coupon")}
    line_promo = np.where(kept["retail_disc"] > 0, by_type["price_cut"],
                          np.where(kept["coupon_match_disc"] > 0, by_type["coupon"], np.nan))
    order_lines = pd.DataFrame({
        "order_id": kept["basket_id"], "line_number": kept["line_number"],
        "product_id": kept["product_id"], "quantity": kept["quantity"],
        "unit_list_price": _money(kept["unit_list_price"]),
        "unit_paid_price": _money(kept["unit_paid_price"]),
        "promotion_id": pd.Series(line_promo).map(lambda v: "" if np.isnan(v) else str(int(v))),
    })

    # --- inventory: stock_weeks of average weekly units, at least 1 --------------------------
    units = kept.groupby("product_id")["quantity"].sum().reindex(products["product_id"])
    inventory = pd.DataFrame({
        "product_id": products["product_id"], "snapshot_date": SNAPSHOT_DATE,
        "on_hand_units": np.maximum(np.ceil(stock_weeks * units.to_numpy() / N_WEEKS), 1)
        .astype(np.int64)})
    holidays = pd.DataFrame(HOLIDAYS, columns=COLUMNS["holidays"])

    # --- write files and report --------------------------------------------------------------
    tables = {"customers": customers, "products": products, "holidays": holidays,
              "stores": stores, "orders": orders, "order_lines": order_lines, "promotions": promotions,
              "inventory": inventory}
    out_dir.mkdir(parents=True, exist_ok=True)
    for table, df in tables.items():
        df[COLUMNS[table]].to_csv(out_dir / f"{table}.csv", index=False, lineterminator="\n",
                                  encoding="utf-8")
    for suffix in (".csv", ".parquet"):
        (out_dir / f"contact_consents{suffix}").unlink(missing_ok=True)
    for name in UNUSED_SOURCES:
        n = len(_read(source_dir, name))
        report_sources[name] = {"rows_in": n, "rows_used": 0, "dropped": {"not_representable": n}}
    n_lines_in = len(tx)
    report = {
        "source_dir": str(source_dir),
        "households": None if households is None else len(chosen),
        "seed": seed,
        "sources": report_sources,
        "tables": {
            "customers": {"rows_in": len(customer_ids), "rows_out": len(customers), "dropped": {}},
            "products": {"rows_in": len(seen), "rows_out": len(products), "dropped": {
                "not_in_catalog": len(seen) - len(in_catalog),
                "no_kept_line": len(in_catalog) - len(products)}},
            "stores": {"rows_in": len(stores), "rows_out": len(stores), "dropped": {}},
            "orders": {"rows_in": int(tx["basket_id"].nunique()), "rows_out": len(orders),
                       "dropped": {"all_lines_dropped": int(tx["basket_id"].nunique() - len(orders))}},
            "order_lines": {"rows_in": n_lines_in, "rows_out": len(order_lines),
                            "dropped": line_drops},
            "promotions": {"rows_in": len(promotions), "rows_out": len(promotions), "dropped": {},
                           "fixed": {"coupon_depth_clipped_to_0.9999": clipped},
                           "by_type": promotions["promo_type"].value_counts().sort_index()
                           .astype(int).to_dict()},
            "inventory": {"rows_in": len(products), "rows_out": len(inventory), "dropped": {}},
            "holidays": {"rows_in": len(HOLIDAYS), "rows_out": len(holidays), "dropped": {}},
        },
        "assumptions": {
            "unit_cost_rate": unit_cost_rate,
            "stock_weeks": stock_weeks,
            "timezone": timezone,
            "unit_cost": "round(list_price * unit_cost_rate, 2), at least 0.01",
            "on_hand_units": "ceil(stock_weeks * units sold / 53 weeks), at least 1",
            "inventory_snapshot_date": SNAPSHOT_DATE,
            "unit_list_price": "round((sales_value + retail_disc + coupon_match_disc) / quantity, 2)",
            "unit_paid_price": "round(sales_value / quantity, 2)",
            "list_price": "median unit_list_price of the product's imported lines",
            "category": "product_category (department when empty)",
            "signup_date": SIGNUP_DATE,
            "region": "home store: 'store <store_id>' of the household's most frequent store",
            "preferred_channel": "empty (no contact consent in the data)",
            "contact_consents": NO_CONSENT,
            "order_channel": "store",
            "stores": "every store of an imported basket, named 'store <store_id>', no region, "
                      "in the time zone above (weeks of the data are Monday-Sunday there)",
            "ordered_at": "earliest transaction_timestamp of the basket, kept as UTC",
            "week_dates": "week 1 = 2017-01-01; week w >= 2 = Monday 2017-01-02 + 7*(w-2) .. +6",
            "holidays": f"{len(HOLIDAYS)} hard-coded US holidays of 2017 and 2018-01-01",
            "products_kept": "every catalog product with at least one imported line",
        },
        "rows_out": {t: len(df) for t, df in tables.items()},
    }
    report["run_seconds"] = round(time.perf_counter() - started, 2)
    (out_dir / "import_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="landing folder to write")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--households", type=int, help="seeded subset of N households")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--unit-cost-rate", type=float, default=UNIT_COST_RATE)
    parser.add_argument("--stock-weeks", type=float, default=STOCK_WEEKS)
    parser.add_argument("--timezone", default=TIMEZONE, help="the stores' IANA time zone")
    args = parser.parse_args(argv)
    try:
        report = import_completejourney(args.out, args.source, args.households, args.seed,
                                        args.unit_cost_rate, args.stock_weeks, args.timezone)
    except CompleteJourneyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args.out} in {report['run_seconds']}s:")
    for table, t in report["tables"].items():
        dropped = ", ".join(f"{k}={v}" for k, v in t["dropped"].items() if v) or "none dropped"
        print(f"  {table}: {t['rows_in']} in, {t['rows_out']} out ({dropped})")
    print("Assumptions:")
    for key, value in report["assumptions"].items():
        print(f"  {key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
