"""The raw contract as data: tables, columns, types, keys and row rules (docs/raw_contract.md).

ingest/raw_schema.sql is the same contract as warehouse DDL; tests check the two agree.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

#: Reason codes written to raw.quarantine, in the order rows are checked (first failure wins).
REASONS = {
    "bad_format": "the line has a different number of fields than the header",
    "null_required": "a required column is empty",
    "bad_type": "a value does not parse as the column's type",
    "not_allowed": "a value is not one of the column's allowed values",
    "out_of_range": "a value breaks a range rule or is beyond its column's type",
    "future_timestamp": "a date or timestamp is later than the run's as_of",
    "duplicate_key": "the primary key repeats an earlier valid row (the first is kept)",
    "orphan_customer": ("customer_id (orders, campaign_contacts, contact_consents) is not a "
                        "loaded customer"),
    "orphan_store": "orders.store_id is not a loaded store",
    "orphan_order": "order_lines.order_id is not a loaded order",
    "orphan_product": "product_id is not a loaded product",
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # bigint | integer | text | date | timestamp | numeric
    required: bool = False
    allowed: tuple[str, ...] | None = None
    scale: int | None = None  # numeric: digits after the point
    max_abs: float | None = None  # numeric: largest absolute value the column holds
    not_future: bool = False  # date, timestamp: must not be later than the run's as_of
    # added to the contract later: a file whose header lacks it reads it as empty
    may_be_absent: bool = False


@dataclass(frozen=True)
class RangeRule:
    """Rows where `violates(frame)` is True break the rule; frame holds parsed values."""

    column: str
    violates: Callable[[pd.DataFrame], pd.Series]
    message: str


@dataclass(frozen=True)
class ForeignKey:
    column: str
    parent: str
    parent_column: str
    reason: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    ranges: tuple[RangeRule, ...] = field(default_factory=tuple)
    required_file: bool = True
    # the column dating when a row came to be: a replay as of a time loads only earlier rows
    dated_by: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def header_names(self) -> list[str]:
        """The columns every file's header must name."""
        return [c.name for c in self.columns if not c.may_be_absent]


#: IANA time zone names (the system's tz database, as PostgreSQL uses it), less the files that
#: name no place: 'localtime' is whatever zone the server runs in, 'Factory' and 'posixrules'
#: are placeholders
TIME_ZONES = frozenset(zoneinfo.available_timezones()) - {"localtime", "Factory", "posixrules"}


def _money(name: str, required: bool = True) -> Column:
    return Column(name, "numeric", required=required, scale=2, max_abs=1e10)


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "customers",
        (
            Column("customer_id", "bigint", required=True),
            Column("signup_date", "date", required=True, not_future=True),
            Column("region", "text", required=True),
            Column("age_band", "text"),
            Column("preferred_channel", "text", allowed=("email", "app_push", "sms")),
        ),
        primary_key=("customer_id",),
        dated_by="signup_date",
    ),
    TableSpec(
        "products",
        (
            Column("product_id", "bigint", required=True),
            Column("product_name", "text", required=True),
            Column("category", "text", required=True),
            Column("brand", "text"),
            _money("list_price"),
            _money("unit_cost"),
        ),
        primary_key=("product_id",),
        ranges=(
            RangeRule("list_price", lambda f: f["list_price"] <= 0, "must be > 0"),
            RangeRule("unit_cost", lambda f: f["unit_cost"] <= 0, "must be > 0"),
        ),
    ),
    TableSpec(
        "holidays",
        (
            Column("holiday_date", "date", required=True),
            Column("holiday_name", "text", required=True),
        ),
        primary_key=("holiday_date",),
        required_file=False,
    ),
    TableSpec(
        "stores",
        (
            Column("store_id", "bigint", required=True),
            Column("store_name", "text", required=True),
            Column("region", "text"),
            Column("timezone", "text", required=True),
        ),
        primary_key=("store_id",),
        ranges=(
            RangeRule(
                "timezone",
                lambda f: f["timezone"].notna() & ~f["timezone"].isin(TIME_ZONES),
                "is not an IANA time zone name (such as America/New_York or UTC)",
            ),
        ),
        required_file=False,
    ),
    TableSpec(
        "orders",
        (
            Column("order_id", "bigint", required=True),
            Column("customer_id", "bigint"),
            Column("ordered_at", "timestamp", required=True, not_future=True),
            Column("channel", "text", required=True, allowed=("web", "app", "store")),
            Column("store_id", "bigint", may_be_absent=True),
        ),
        primary_key=("order_id",),
        dated_by="ordered_at",
        foreign_keys=(
            ForeignKey("customer_id", "customers", "customer_id", "orphan_customer"),
            ForeignKey("store_id", "stores", "store_id", "orphan_store"),
        ),
    ),
    TableSpec(
        "order_lines",
        (
            Column("order_id", "bigint", required=True),
            Column("line_number", "integer", required=True),
            Column("product_id", "bigint", required=True),
            Column("quantity", "integer", required=True),
            _money("unit_list_price"),
            _money("unit_paid_price"),
            Column("promotion_id", "bigint"),
        ),
        primary_key=("order_id", "line_number"),
        foreign_keys=(
            ForeignKey("order_id", "orders", "order_id", "orphan_order"),
            ForeignKey("product_id", "products", "product_id", "orphan_product"),
        ),
        ranges=(
            RangeRule("line_number", lambda f: f["line_number"] < 1, "must be >= 1"),
            RangeRule("quantity", lambda f: f["quantity"] == 0, "must not be 0"),
            RangeRule("unit_list_price", lambda f: f["unit_list_price"] <= 0, "must be > 0"),
            RangeRule(
                "unit_paid_price",
                lambda f: f["unit_paid_price"] <= 0,
                "must be > 0 (a discount depth below 100%)",
            ),
            RangeRule(
                "unit_paid_price",
                lambda f: f["unit_paid_price"] > f["unit_list_price"],
                "must not exceed unit_list_price (a negative discount depth)",
            ),
        ),
    ),
    TableSpec(
        "promotions",
        (
            Column("promotion_id", "bigint", required=True),
            Column("product_id", "bigint", required=True),
            Column("start_date", "date", required=True),
            Column("end_date", "date", required=True),
            Column("discount_depth", "numeric", required=True, scale=4, max_abs=100.0),
            Column(
                "promo_type",
                "text",
                required=True,
                allowed=("price_cut", "display", "mailer", "coupon"),
            ),
        ),
        primary_key=("promotion_id",),
        dated_by="start_date",
        foreign_keys=(ForeignKey("product_id", "products", "product_id", "orphan_product"),),
        ranges=(
            RangeRule(
                "discount_depth",
                lambda f: (f["discount_depth"] < 0) | (f["discount_depth"] >= 1),
                "must be in [0, 1)",
            ),
            RangeRule(
                "end_date",
                lambda f: f["end_date"] < f["start_date"],
                "must not be before start_date",
            ),
        ),
    ),
    TableSpec(
        "inventory",
        (
            Column("product_id", "bigint", required=True),
            Column("snapshot_date", "date", required=True, not_future=True),
            Column("on_hand_units", "integer", required=True),
        ),
        primary_key=("product_id", "snapshot_date"),
        dated_by="snapshot_date",
        foreign_keys=(ForeignKey("product_id", "products", "product_id", "orphan_product"),),
        ranges=(RangeRule("on_hand_units", lambda f: f["on_hand_units"] < 0, "must be >= 0"),),
    ),
    # the send log of the marketing-automation tool: one row per message sent (optional: a
    # folder without campaigns has no file)
    TableSpec(
        "campaign_contacts",
        (
            Column("customer_id", "bigint", required=True),
            Column("product_id", "bigint", required=True),
            Column("sent_at", "timestamp", required=True, not_future=True),
            Column("channel", "text", required=True, allowed=("email", "app_push", "sms")),
        ),
        primary_key=("customer_id", "product_id", "sent_at"),
        dated_by="sent_at",
        foreign_keys=(
            ForeignKey("customer_id", "customers", "customer_id", "orphan_customer"),
            ForeignKey("product_id", "products", "product_id", "orphan_product"),
        ),
        required_file=False,
    ),
    # the consent log: per customer and channel, when consent to be contacted was given and,
    # once withdrawn, when (optional: without it a preferred_channel counts as consent)
    TableSpec(
        "contact_consents",
        (
            Column("customer_id", "bigint", required=True),
            Column("channel", "text", required=True, allowed=("email", "app_push", "sms")),
            Column("consented_at", "timestamp", required=True, not_future=True),
            Column("withdrawn_at", "timestamp", not_future=True),
        ),
        primary_key=("customer_id", "channel", "consented_at"),
        dated_by="consented_at",
        foreign_keys=(ForeignKey("customer_id", "customers", "customer_id", "orphan_customer"),),
        ranges=(
            RangeRule(
                "withdrawn_at",
                lambda f: f["withdrawn_at"] < f["consented_at"],
                "must not be before consented_at",
            ),
        ),
        required_file=False,
    ),
)

TABLES_BY_NAME = {t.name: t for t in TABLES}
