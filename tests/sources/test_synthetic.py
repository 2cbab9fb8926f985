"""The synthetic market: determinism, contract shape and enough realism to learn from."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.contract import TABLES_BY_NAME
from sources.synthetic import truth
from sources.synthetic.generate import TABLE_COLUMNS, GenerateError, generate, main
from sources.synthetic.market import holiday_names_by_week


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, float]:
    base = tmp_path_factory.mktemp("market")
    started = time.perf_counter()
    generate("tiny", base / "landing", base / "truth", seed=42)
    return base / "landing", base / "truth", time.perf_counter() - started


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_differs(market, tmp_path: Path) -> None:
    landing, truth_dir, _ = market
    generate("tiny", tmp_path / "same", tmp_path / "same_truth", seed=42)
    generate("tiny", tmp_path / "other", tmp_path / "other_truth", seed=7)
    assert _files(tmp_path / "same") == _files(landing)
    assert _files(tmp_path / "same_truth") == _files(truth_dir)
    other = _files(tmp_path / "other")
    assert other["order_lines.csv"] != _files(landing)["order_lines.csv"]
    assert other["holidays.csv"] == _files(landing)["holidays.csv"]


def test_tiny_is_fast(market) -> None:
    assert market[2] < 5.0


def test_unknown_preset_is_one_line_error(tmp_path: Path, capsys) -> None:
    with pytest.raises(GenerateError, match="Unknown preset 'huge'"):
        generate("huge", tmp_path / "a", tmp_path / "b")
    assert (
        main(["--preset", "huge", "--out", str(tmp_path / "a"), "--truth", str(tmp_path / "b")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Unknown preset") and "\n" not in err


def test_files_follow_the_raw_contract(market) -> None:
    landing, _, _ = market
    # the contract's columns (tests/ingest checks them against the warehouse DDL)
    assert set(TABLE_COLUMNS) == set(TABLES_BY_NAME)
    for table, columns in TABLE_COLUMNS.items():
        assert TABLES_BY_NAME[table].column_names == columns
        if table == "campaign_contacts":  # the history targeted nobody: no send log (optional)
            assert not (landing / f"{table}.csv").exists()
            assert not TABLES_BY_NAME[table].required_file
            continue
        header = (landing / f"{table}.csv").read_text().splitlines()[0]
        assert header.split(",") == columns


def test_the_consent_log_follows_the_preferred_channels(market) -> None:
    """Every preferred channel is consented at signup; other channels now and then; a customer
    without a preferred channel consents to none; every row passes the raw contract."""
    from ingest.load import read_landing, validate

    landing, _, _ = market
    consents = pd.read_csv(landing / "contact_consents.csv", keep_default_na=False)
    customers = pd.read_csv(landing / "customers.csv", keep_default_na=False)
    preferred = customers[customers["preferred_channel"] != ""]
    pairs = set(zip(consents["customer_id"], consents["channel"], strict=True))
    assert set(zip(preferred["customer_id"], preferred["preferred_channel"], strict=True)) < pairs
    assert set(consents["customer_id"]) == set(preferred["customer_id"])
    signup = consents["customer_id"].map(customers.set_index("customer_id")["signup_date"])
    assert (consents["consented_at"].str[:10] == signup).all()
    withdrawn = consents[consents["withdrawn_at"] != ""]
    assert 0 < len(withdrawn) < 0.2 * len(consents)
    assert (withdrawn["withdrawn_at"] >= withdrawn["consented_at"]).all()
    spec = TABLES_BY_NAME["contact_consents"]
    keys = {"customers": pd.Index(customers["customer_id"])}
    checked = validate(read_landing(landing / "contact_consents.csv", spec), spec, keys, "t",
                       dt.datetime(2026, 11, 16))
    assert checked.quarantine.empty and len(checked.loaded) == len(consents)


def test_a_new_market_drops_an_earlier_send_log(market, tmp_path: Path) -> None:
    landing, _, _ = market
    out = tmp_path / "landing"
    out.mkdir()
    (out / "campaign_contacts.csv").write_text(
        "customer_id,product_id,sent_at,channel\n1,10001,2026-11-16 08:00:00,email\n")
    generate("tiny", out, tmp_path / "truth", seed=42)
    assert _files(out) == _files(landing)


def test_orders_lines_and_calendar(market) -> None:
    landing, _, _ = market
    orders = pd.read_csv(landing / "orders.csv", parse_dates=["ordered_at"])
    lines = pd.read_csv(landing / "order_lines.csv")
    customers = pd.read_csv(landing / "customers.csv")
    assert orders["order_id"].is_unique
    assert not lines.duplicated(["order_id", "line_number"]).any()
    assert set(lines["order_id"]) == set(orders["order_id"])
    assert orders["ordered_at"].max().date() <= dt.date(2026, 11, 15)
    assert orders["ordered_at"].min().date().weekday() == 0
    assert orders["ordered_at"].max().date() > dt.date(2026, 11, 8)
    weeks = orders["ordered_at"].dt.to_period("W-SUN").nunique()
    assert weeks == 60
    guest_share = orders["customer_id"].isna().mean()
    assert 0.04 < guest_share < 0.12
    assert set(orders["customer_id"].dropna()) <= set(customers["customer_id"])
    returns = lines["quantity"] < 0
    assert 0.01 < returns.mean() < 0.08
    assert (lines["quantity"] != 0).all()
    assert (lines["unit_paid_price"] <= lines["unit_list_price"]).all()
    promoted = lines["promotion_id"].notna()
    assert (lines.loc[promoted, "unit_paid_price"] < lines.loc[promoted, "unit_list_price"]).all()
    assert set(orders["channel"]) == {"web", "app", "store"}
    assert customers["preferred_channel"].isna().any()


def _product_weeks(landing: Path) -> pd.DataFrame:
    orders = pd.read_csv(landing / "orders.csv", parse_dates=["ordered_at"])
    lines = pd.read_csv(landing / "order_lines.csv").merge(orders, on="order_id")
    lines = lines[lines["quantity"] > 0]
    lines["week"] = lines["ordered_at"].dt.to_period("W-SUN").dt.start_time
    lines["promoted"] = lines["promotion_id"].notna()
    sales = lines.groupby(["product_id", "week"]).agg(
        units=("quantity", "sum"), promoted=("promoted", "max")
    )
    weeks = pd.date_range(lines["week"].min(), lines["week"].max(), freq="7D")
    full = pd.MultiIndex.from_product(
        [sorted(lines["product_id"].unique()), weeks], names=["product_id", "week"]
    )
    sales = sales.reindex(full)
    sales["units"] = sales["units"].fillna(0)
    sales["promoted"] = sales["promoted"].astype("boolean").fillna(False).astype(bool)
    return sales.reset_index()


def test_promotions_lift_sales_and_seasonality_shows(market) -> None:
    landing, _, _ = market
    sales = _product_weeks(landing)
    by_product = sales.groupby(["product_id", "promoted"])["units"].mean().unstack().dropna()
    assert (by_product[True] > by_product[False]).mean() >= 0.8
    weekly = sales.groupby("week")["units"].sum()
    names = holiday_names_by_week([w.date() for w in weekly.index])
    big = [total for total, n in zip(weekly, names) if {"Black Friday", "Christmas"} & set(n)]
    assert big and np.mean(big) > 1.2 * weekly.median()


def _history(landing: Path, truth_dir: Path) -> pd.DataFrame:
    history = pd.read_csv(truth_dir / "history_truth.csv", parse_dates=["week_start"])
    promos = pd.read_csv(landing / "promotions.csv", parse_dates=["start_date", "end_date"])
    weeks = [promos.assign(week_start=promos["start_date"] + pd.Timedelta(days=7 * k))
             for k in range(2)]
    active = pd.concat(weeks)
    active = active[active["week_start"] <= active["end_date"]]
    history = history.merge(active[["product_id", "week_start", "discount_depth"]],
                            on=["product_id", "week_start"], how="left")
    history["discount_depth"] = history["discount_depth"].fillna(0.0)
    products = pd.read_csv(truth_dir / "products_truth.csv")
    history = history.merge(products[["product_id", "category"]], on="product_id")
    history["baseline"] = 0.0
    for week, rows in history.groupby("week_start"):
        history.loc[rows.index, "baseline"] = truth.baseline_units(
            truth_dir, rows["product_id"], week.date())
    return history.sort_values(["product_id", "week_start"]).reset_index(drop=True)


def test_history_has_dips_cannibalization_and_stock_outs(market) -> None:
    landing, truth_dir, _ = market
    history = _history(landing, truth_dir)
    ratio = history["expected_units"] / history["baseline"]
    promoted = history["discount_depth"] > 0
    by_product = history.groupby("product_id")
    after = (by_product["discount_depth"].shift(1) > 0) & ~promoted
    category_busy = history.groupby(["category", "week_start"])["discount_depth"].transform(
        lambda d: (d > 0).sum()) > 0
    quiet = ~promoted & ~after & ~(by_product["discount_depth"].shift(2) > 0) & \
        ~(by_product["discount_depth"].shift(3) > 0)
    # the week after a promotion lost demand to it (pantry loading)
    assert (ratio[after] < 1 - 1e-9).all()
    # a product neither promoted nor dipping loses demand to its promoted siblings ...
    assert (ratio[quiet & category_busy] < 1 - 1e-9).all()
    # ... and is exactly at its baseline when nothing in its category is promoted
    np.testing.assert_allclose(ratio[quiet & ~category_busy], 1.0, atol=1e-4)
    assert (ratio[promoted] > 1).mean() > 0.9
    # stock-outs censor sales; the weekly snapshot says so with 0 on hand
    inventory = pd.read_csv(landing / "inventory.csv", parse_dates=["snapshot_date"])
    assert len(inventory) == len(history)
    inventory["week_start"] = inventory["snapshot_date"] - pd.Timedelta(days=6)
    merged = history.merge(inventory, on=["product_id", "week_start"])
    assert ((merged["on_hand_units"] == 0) == merged["stocked_out"]).all()
    assert 0.02 < history["stocked_out"].mean() < 0.2
    assert history.loc[promoted, "stocked_out"].any()  # some promotions' lifts are censored
    # recorded sales are noisy draws of the expected demand, censored by stock
    ratio_sold = history["sold_units"].sum() / history["expected_units"].sum()
    assert 0.8 < ratio_sold < 1.1


def test_history_promotions_are_confounded(market) -> None:
    landing, truth_dir, _ = market
    products = pd.read_csv(truth_dir / "products_truth.csv").set_index("product_id")
    promos = pd.read_csv(landing / "promotions.csv")
    count = promos.groupby("product_id").size().reindex(products.index, fill_value=0)
    assert np.corrcoef(np.log(products["base_weekly_units"]), count)[0, 1] > 0.2


def test_truth_response_saturates_and_plans_cannibalize(market) -> None:
    _, truth_dir, _ = market
    products = pd.read_csv(truth_dir / "products_truth.csv")
    product = int(products["product_id"].iloc[0])
    levels = truth.expected_units(truth_dir, [product] * 4, "2026-11-16", [0.0, 0.1, 0.2, 0.4])
    assert levels[0] < levels[1] < levels[2] < levels[3]
    elasticity = float(products["elasticity"].iloc[0])
    assert levels[3] / levels[0] < 0.6 ** -elasticity  # below the constant-elasticity lift
    with pytest.raises(ValueError, match="not a Monday"):
        truth.expected_units(truth_dir, [product], "2026-11-17")
    category = products.loc[products["product_id"] == product, "category"].item()
    outcome = truth.plan_outcome(truth_dir, "2026-11-16", pd.Series({product: 0.3}))
    siblings = outcome[(outcome["category"] == category) & (outcome["product_id"] != product)]
    others = outcome[outcome["category"] != category]
    assert (siblings["cannibalized_units"] > 0).all() and (others["cannibalized_units"] == 0).all()
    line = outcome.set_index("product_id").loc[product]
    assert line["dip_units"] > 0 and line["units"] > line["baseline_units"]
    nothing = truth.plan_outcome(truth_dir, "2026-11-16", pd.Series(dtype=float))
    np.testing.assert_allclose(nothing["units"], nothing["baseline_units"])
    assert (nothing["dip_units"] == 0).all()


def test_ground_truth_files(market) -> None:
    _, truth_dir, _ = market
    products = pd.read_csv(truth_dir / "products_truth.csv")
    assert {"product_id", "base_weekly_units", "elasticity", "category", "dip_share",
            "stock_cover"} <= set(products.columns)
    assert products["elasticity"].between(1.5, 5.5).all()
    customers = pd.read_csv(truth_dir / "customers_truth.csv")
    assert {"customer_id", "discount_sensitivity", "favourite_category"} <= set(customers.columns)
    seasonality = pd.read_csv(truth_dir / "seasonality_truth.csv")
    assert len(seasonality) == 4 * 53
    assert (truth_dir / "generator.json").exists()
    assert (truth_dir / "holiday_lifts_truth.csv").exists()
    categories = pd.read_csv(truth_dir / "categories_truth.csv")
    assert {"saturation", "visibility", "cannibalization_rate", "cannibalization_cap"} <= set(
        categories.columns)
    carryover = pd.read_csv(truth_dir / "carryover_truth.csv")
    assert len(carryover) == 3 * len(products) and (carryover["dip_units"] >= 0).all()


def test_history_end_moves_the_plan_week(tmp_path: Path) -> None:
    generate("tiny", tmp_path / "l", tmp_path / "t", seed=1, history_end=dt.date(2026, 11, 22))
    orders = pd.read_csv(tmp_path / "l" / "orders.csv", parse_dates=["ordered_at"])
    assert orders["ordered_at"].max().date() <= dt.date(2026, 11, 22)
    assert orders["ordered_at"].max().date() > dt.date(2026, 11, 15)
    with pytest.raises(GenerateError, match="not a Sunday"):
        generate("tiny", tmp_path / "l", tmp_path / "t", history_end=dt.date(2026, 11, 21))
