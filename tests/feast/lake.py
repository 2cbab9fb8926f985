"""A small hand-made feature lake, in the layout and types the Spark jobs write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

W0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
WEEKS = 4


def week(n: int) -> pd.Timestamp:
    return pd.Timestamp(W0 + timedelta(days=7 * n))


def customer_rows() -> pd.DataFrame:
    rows = [
        {"customer_id": c, "event_timestamp": week(w), "recency_days": 10 * c + w,
             "frequency_orders_52w": w, "monetary_value_52w": 100.0 * c + w,
             "avg_discount_depth": 0.01 * w, "promo_share": 0.1 * c, "top_category": f"cat{c}{w}"}
        for c in (1, 2) for w in range(WEEKS if c == 1 else 2)
    ]
    return pd.DataFrame(rows)


def product_rows() -> pd.DataFrame:
    rows = [
        {"product_id": p, "event_timestamp": week(w), "category": f"c{p}", "list_price": float(p),
             "unit_cost": p / 2, "margin_rate": 0.5, "popularity_units_12w": p * w, "promo_lift": 1.0 + w / 10}
        for p in (10, 11) for w in range(WEEKS)
    ]
    return pd.DataFrame(rows)


def product_week_rows() -> pd.DataFrame:
    rows = [
        {"product_id": p, "event_timestamp": week(w), "category_idx": p - 10, "week_of_year": w + 1,
             "is_holiday_week": w == 3, "units_lag_1": p + w, "units_lag_2": p + w - 1,
             "units_lag_4": p + w - 3, "units_lag_52": 0, "units_roll_mean_4": p + w / 4,
             "units_roll_mean_12": p + w / 12, "units_roll_std_12": w / 2,
             "discount_depth": 0.1 * (w % 2), "is_promoted": w % 2 == 1, "list_price": p + 0.5,
             "discount_depth_lag_1": 0.1 * ((w - 1) % 2) if w >= 1 else 0.0,
             "discount_depth_lag_2": 0.1 * (w % 2) if w >= 2 else 0.0,
             "discount_depth_lag_3": 0.1 * ((w - 1) % 2) if w >= 3 else 0.0,
             "promo_display": float(w == 1), "promo_mailer": float(w == 3 and p == 10),
             "promo_coupon": 0.0, "category_promo_pressure": 0.05 * w * (p - 9),
             "category_promo_count": float(w % 2), "is_stocked_out": float(w == 2 and p == 11),
             "stocked_out_lag_1": float(w == 3 and p == 11),
             "contacted_customers": float(3 * w if p == 10 and w < 3 else 0)}
        for p in (10, 11) for w in range(WEEKS)
    ]
    return pd.DataFrame(rows)


TABLES = {
    "customer_features": customer_rows,
    "product_features": product_rows,
    "product_week_features": product_week_rows,
}


def write_like_spark(frame: pd.DataFrame, folder: Path) -> None:
    """A folder of part files plus _SUCCESS, timestamps as timestamp[us, UTC]."""
    folder.mkdir(parents=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("event_timestamp"), "event_timestamp",
        table["event_timestamp"].cast(pa.timestamp("us", tz="UTC")),
    )
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), folder / "part-00000.parquet")
    pq.write_table(table.slice(half), folder / "part-00001.parquet")
    (folder / "_SUCCESS").touch()
