"""The bad-input corpus: corruptions of the tiny market and what ingest must do with each.

Each case corrupts a copy of the tiny landing folder and returns the expected outcome: `Refused`
(a file-level IngestError with this exact message, raw unchanged) or `Loaded` (the run loads;
these rows are quarantined, and each table's input grows by `added` rows). The table at the end
of docs/raw_contract.md lists the same cases.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


@dataclass(frozen=True)
class Row:
    """An expected quarantine row: table, 1-based source line, reason, a fragment of the detail."""

    table: str
    line: int
    reason: str
    detail: str
    file: str = ""  # the source file, when not <table>.csv (a part of a folder of parts)


@dataclass(frozen=True)
class Loaded:
    quarantined: list[Row] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)  # input rows beyond the clean market


@dataclass(frozen=True)
class Refused:
    message: str  # the whole IngestError message


class Landing:
    """A copy of the tiny landing folder to corrupt."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def file(self, table: str) -> Path:
        return self.path / f"{table}.csv"

    def lines(self, table: str) -> list[str]:
        return self.file(table).read_text().splitlines()

    def append(self, table: str, *rows: str) -> int:
        """Append rows; the source line of the first one."""
        text = self.file(table).read_text()
        self.file(table).write_text(text + "".join(row + "\n" for row in rows))
        return text.count("\n") + 1

    def replace(self, table: str, line: int, row: str) -> None:
        lines = self.lines(table)
        lines[line - 1] = row
        self.file(table).write_text("\n".join(lines) + "\n")

    def write(self, table: str, text: str) -> None:
        self.file(table).write_text(text)


Case = Callable[[Landing], Loaded | Refused]
CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


LINE = "1,90,10001,{quantity},{list_price},{paid_price},"  # an extra line of order 1


def _line(quantity: str = "1", list_price: str = "36.99", paid_price: str = "36.99") -> str:
    return LINE.format(quantity=quantity, list_price=list_price, paid_price=paid_price)


def _extra_line(landing: Landing, reason: str, detail: str, **values: str) -> Loaded:
    """Append one line of order 1 that is quarantined with this reason and detail."""
    line = landing.append("order_lines", _line(**values))
    return Loaded([Row("order_lines", line, reason, detail)], {"order_lines": 1})


# --- row level: quarantined -----------------------------------------------------------------
@case
def malformed_line(landing: Landing) -> Loaded:
    line = landing.append("orders", "999001,1,2026-01-05 10:00:00")
    return Loaded([Row("orders", line, "bad_format", "3 fields, the header has 4")], {"orders": 1})


@case
def classic_mac_line_ends(landing: Landing) -> Loaded:
    landing.file("promotions").write_bytes(landing.file("promotions").read_bytes()
                                           .replace(b"\r\n", b"\n").replace(b"\n", b"\r"))
    return Loaded()  # CR alone ends each line: every promotion loads


@case
def bare_carriage_return_splits_a_record(landing: Landing) -> Loaded:
    # an unquoted CR ends the line (as in RFC 4180), so the record falls apart in two
    line = landing.append("products", "999001,Split\rName,toys,Acme,5.00,1.00")
    return Loaded([Row("products", line, "bad_format", "2 fields, the header has 6"),
                   Row("products", line + 1, "bad_format", "5 fields, the header has 6")],
                  {"products": 2})


@case
def quoted_carriage_return_and_line_feed(landing: Landing) -> Loaded:
    landing.append("products", '999002,"Two\rLines",toys,Acme,5.00,1.00',
                   '999003,"Three\r\nLines\nHere",toys,Acme,5.00,1.00')
    return Loaded([], {"products": 2})  # valid CSV: both load with their breaks


@case
def multi_line_record_missing_a_field(landing: Landing) -> Loaded:
    line = landing.append("products", '999006,"Two\nline name",toys,Acme,5.00',
                          "999007,Fine,toys,Acme,5.00,1.00")
    return Loaded([Row("products", line, "bad_format", "5 fields, the header has 6")],
                  {"products": 2})  # only that record: the next line loads


@case
def field_longer_than_128_kib(landing: Landing) -> Loaded:
    landing.append("products", f"999004,{'x' * 200_000},toys,Acme,5.00,1.00",
                   '999005,"Multi\nline",toys,Acme,5.00,1.00')
    return Loaded([], {"products": 2})


@case
def crlf_in_every_file(landing: Landing) -> Loaded:
    for path in landing.path.glob("*.csv"):
        path.write_bytes(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    return Loaded()


@case
def byte_order_mark_with_crlf(landing: Landing) -> Loaded:
    text = landing.file("orders").read_text().replace("\n", "\r\n")
    landing.file("orders").write_bytes(b"\xef\xbb\xbf" + text.encode())
    return Loaded()


@case
def blank_lines_keep_line_numbers(landing: Landing) -> Loaded:
    lines = landing.lines("orders")
    landing.write("orders", "\n\n".join(lines[:4]) + "\n" + "\n".join(lines[4:]) + "\n")
    line = landing.append("orders", "999011,1,not a time,web")  # after 3 blank lines
    return Loaded([Row("orders", line, "bad_type", "ordered_at='not a time' is not a valid")],
                  {"orders": 1})


@case
def unterminated_quote(landing: Landing) -> Loaded:
    line = landing.append("products", '999001,"Broken name,toys,Acme,5.00,1.00')
    return Loaded([Row("products", line, "bad_format", "2 fields")], {"products": 1})


@case
def text_in_integer(landing: Landing) -> Loaded:
    return _extra_line(landing, "bad_type", "quantity='two' is not a valid integer", quantity="two")


@case
def quantity_with_thousands_separator(landing: Landing) -> Loaded:
    return _extra_line(landing, "bad_type", "quantity='1,000' is not a valid integer",
                       quantity='"1,000"')


@case
def price_with_currency_symbol(landing: Landing) -> Loaded:
    return _extra_line(landing, "bad_type", "unit_paid_price='$36.99' is not a valid numeric",
                       paid_price="$36.99")


@case
def decimal_comma_price(landing: Landing) -> Loaded:
    return _extra_line(landing, "bad_type", "unit_list_price='36,99' is not a valid numeric",
                       list_price='"36,99"')


@case
def spaces_quotes_signs_and_exponents(landing: Landing) -> Loaded:
    landing.append("order_lines", " 1 , 91 , 10001 , 2 , 36.99 , 36.99 , ",
                   '"1","92","10001","1","36.99","36.99",""',
                   "1,93,10001,+2,3.699e1,3.699E+1,")
    return Loaded([], {"order_lines": 3})  # trimmed, unquoted, signs and exponents read


@case
def id_in_scientific_notation(landing: Landing) -> Loaded:
    line = landing.append("order_lines", "1e3,1,10001,1,36.99,36.99,")
    row = Row("order_lines", line, "bad_type", "order_id='1e3' is not a valid bigint")
    return Loaded([row], {"order_lines": 1})  # a spreadsheet's rendering of order 1000


@case
def line_of_a_promotion_not_in_the_file(landing: Landing) -> Loaded:
    landing.append("order_lines", "1,95,10001,1,36.99,33.29,424242")
    return Loaded([], {"order_lines": 1})  # promotion_id is not checked against promotions


@case
def negative_zero_quantity(landing: Landing) -> Loaded:
    return _extra_line(landing, "out_of_range", "quantity='-0' must not be 0", quantity="-0")


@case
def decimal_quantity(landing: Landing) -> Loaded:
    return _extra_line(landing, "bad_type", "quantity='1.5' is not a valid integer", quantity="1.5")


@case
def zero_quantity(landing: Landing) -> Loaded:
    return _extra_line(landing, "out_of_range", "quantity='0' must not be 0", quantity="0")


@case
def negative_quantity_is_a_return(landing: Landing) -> Loaded:
    landing.append("order_lines", _line(quantity="-2"))
    return Loaded([], {"order_lines": 1})


@case
def zero_list_price(landing: Landing) -> Loaded:
    return _extra_line(
        landing, "out_of_range", "unit_list_price='0.00' must be > 0", list_price="0.00"
    )


@case
def paid_price_above_list_only_once_rounded(landing: Landing) -> Loaded:
    # 36.995 is 36.99499... as a float but 37.00 in numeric(12,2): above the list price
    return _extra_line(landing, "out_of_range",
                       "unit_paid_price='36.995' must not exceed unit_list_price",
                       paid_price="36.995")


@case
def negative_paid_price(landing: Landing) -> Loaded:
    return _extra_line(
        landing, "out_of_range", "unit_paid_price='-1.00' must be > 0", paid_price="-1.00"
    )


@case
def free_line_is_a_full_discount(landing: Landing) -> Loaded:
    return _extra_line(
        landing, "out_of_range", "unit_paid_price='0.00' must be > 0", paid_price="0.00"
    )


@case
def paid_above_list_price(landing: Landing) -> Loaded:
    return _extra_line(
        landing,
        "out_of_range",
        "unit_paid_price='40.00' must not exceed unit_list_price",
        paid_price="40.00",
    )


@case
def promotion_depth_over_100_percent(landing: Landing) -> Loaded:
    line = landing.append(
        "promotions",
        "999001,10001,2026-01-05,2026-01-11,1.5000,price_cut",
        "999002,10001,2026-01-05,2026-01-11,-0.1000,price_cut",
    )
    detail = "discount_depth='{}' must be in [0, 1)"
    return Loaded(
        [
            Row("promotions", line, "out_of_range", detail.format("1.5000")),
            Row("promotions", line + 1, "out_of_range", detail.format("-0.1000")),
        ],
        {"promotions": 2},
    )


@case
def promotion_ends_before_it_starts(landing: Landing) -> Loaded:
    line = landing.append("promotions", "999001,10001,2026-01-11,2026-01-05,0.1000,coupon")
    row = Row("promotions", line, "out_of_range", "end_date='2026-01-05' must not be before")
    return Loaded([row], {"promotions": 1})


@case
def promotion_without_an_end(landing: Landing) -> Loaded:
    landing.append("promotions", "999002,10001,2026-01-05,9999-12-31,0.1000,price_cut",
                   "999003,10001,2026-01-05,2999-06-30,0.1000,display")
    return Loaded([], {"promotions": 2})


@case
def negative_product_prices(landing: Landing) -> Loaded:
    line = landing.append(
        "products", "999001,Broken,toys,Acme,-5.00,1.00", "999002,Free,toys,Acme,5.00,0"
    )
    return Loaded(
        [
            Row("products", line, "out_of_range", "list_price='-5.00' must be > 0"),
            Row("products", line + 1, "out_of_range", "unit_cost='0' must be > 0"),
        ],
        {"products": 2},
    )


@case
def negative_stock(landing: Landing) -> Loaded:
    line = landing.append("inventory", "10001,2026-11-08,-3")
    row = Row("inventory", line, "out_of_range", "on_hand_units='-3' must be >= 0")
    return Loaded([row], {"inventory": 1})


@case
def huge_values(landing: Landing) -> Loaded:
    line = landing.append(
        "order_lines",
        _line(quantity="99999999999"),
        "1,91,10001,1,1e12,36.99,",
        "1234567890123456789012345,1,10001,1,36.99,36.99,",
        "1,92,10001,1,1e400,36.99,",
    )
    beyond = "is beyond the range of the column's type"
    return Loaded(
        [
            Row("order_lines", line, "out_of_range", f"quantity='99999999999' {beyond}"),
            Row("order_lines", line + 1, "out_of_range", f"unit_list_price='1e12' {beyond}"),
            Row("order_lines", line + 2, "out_of_range", "order_id='1234567890123456789012345'"),
            Row("order_lines", line + 3, "out_of_range", f"unit_list_price='1e400' {beyond}"),
        ],
        {"order_lines": 4},
    )


@case
def nul_character_in_text(landing: Landing) -> Loaded:
    line = landing.append("products", "999001,Bad\x00name,toys,Acme,5.00,1.00")
    row = Row("products", line, "bad_type", "product_name='Bad\\x00name' is not a valid text")
    return Loaded([row], {"products": 1})


@case
def bad_date_formats(landing: Landing) -> Loaded:
    line = landing.append(
        "orders", "999001,1,2026/01/05 10:00:00,web", "999002,1,2026-01-05T10:00:00Z,web"
    )
    first = landing.append("customers", "999001,05-01-2026,north,,", "999002,2026-02-30,north,,")
    return Loaded(
        [
            Row("orders", line, "bad_type", "ordered_at='2026/01/05 10:00:00' is not a valid"),
            Row("orders", line + 1, "bad_type", "ordered_at='2026-01-05T10:00:00Z' is not"),
            Row("customers", first, "bad_type", "signup_date='05-01-2026' is not a valid date"),
            Row("customers", first + 1, "bad_type", "signup_date='2026-02-30' is not a valid"),
        ],
        {"orders": 2, "customers": 2},
    )


@case
def unknown_allowed_values(landing: Landing) -> Loaded:
    order = landing.append("orders", "999001,1,2026-01-05 10:00:00,fax")
    customer = landing.append("customers", "999001,2026-01-01,north,,pigeon")
    promotion = landing.append("promotions", "999001,10001,2026-01-05,2026-01-11,0.1000,bogo")
    return Loaded(
        [
            Row("orders", order, "not_allowed", "channel='fax' is not one of web, app, store"),
            Row("customers", customer, "not_allowed", "preferred_channel='pigeon' is not one"),
            Row("promotions", promotion, "not_allowed", "promo_type='bogo' is not one of"),
        ],
        {"orders": 1, "customers": 1, "promotions": 1},
    )


@case
def empty_required_values(landing: Landing) -> Loaded:
    line = landing.append("orders", "999001,1,2026-01-05 10:00:00,", "999002,1, ,web")
    return Loaded(
        [
            Row("orders", line, "null_required", "channel is empty"),
            Row("orders", line + 1, "null_required", "ordered_at is empty"),
        ],
        {"orders": 2},
    )


@case
def duplicate_key_with_leading_zeros(landing: Landing) -> Loaded:
    first = landing.lines("customers")[1]  # customer 1
    line = landing.append("customers", "0001" + first[first.index(","):])
    # the same key as customer 1 once read as a number; the detail shows it as written
    row = Row("customers", line, "duplicate_key", "(customer_id) = (0001) repeats an earlier")
    return Loaded([row], {"customers": 1})


@case
def year_zero_and_first_day_of_the_calendar(landing: Landing) -> Loaded:
    line = landing.append("customers", "999021,0000-01-01,north,,", "999022,0001-01-01,north,,")
    row = Row("customers", line, "bad_type", "signup_date='0000-01-01' is not a valid date")
    return Loaded([row], {"customers": 2})  # there is no year 0; 0001-01-01 loads


@case
def iso_timestamp_with_fraction(landing: Landing) -> Loaded:
    landing.append("orders", "999012,1,2026-01-05T10:00:00.250,web", "999013,1,2026-01-05 10:00,app")
    return Loaded([], {"orders": 2})


@case
def duplicate_order_id(landing: Landing) -> Loaded:
    first = landing.lines("orders")[1]  # order 1
    line = landing.append("orders", first.replace(",app", ",web"))
    row = Row("orders", line, "duplicate_key", "(order_id) = (1) repeats an earlier row")
    return Loaded([row], {"orders": 1})


@case
def duplicate_line_key(landing: Landing) -> Loaded:
    line = landing.append("order_lines", "1,1,10002,1,83.99,83.99,")
    row = Row("order_lines", line, "duplicate_key", "(order_id, line_number) = (1, 1) repeats")
    return Loaded([row], {"order_lines": 1})


@case
def orphan_line(landing: Landing) -> Loaded:
    line = landing.append("order_lines", "99999999,1,10001,1,36.99,36.99,")
    row = Row("order_lines", line, "orphan_order", "order_id='99999999' is not in orders")
    return Loaded([row], {"order_lines": 1})


@case
def orphan_order(landing: Landing) -> Loaded:
    order = landing.append("orders", "999001,999999,2026-01-05 10:00:00,web")
    line = landing.append("order_lines", "999001,1,10001,1,36.99,36.99,")
    return Loaded(
        [
            Row("orders", order, "orphan_customer", "customer_id='999999' is not in customers"),
            Row("order_lines", line, "orphan_order", "order_id='999001' is not in orders"),
        ],
        {"orders": 1, "order_lines": 1},
    )


@case
def guest_order_is_valid(landing: Landing) -> Loaded:
    landing.append("orders", "999001,,2026-01-05 10:00:00,store")
    landing.append("order_lines", "999001,1,10001,1,36.99,30.00,")
    return Loaded([], {"orders": 1, "order_lines": 1})


@case
def orphan_products(landing: Landing) -> Loaded:
    line = landing.append("order_lines", "1,90,55555,1,9.99,9.99,")
    promotion = landing.append("promotions", "999001,55555,2026-01-05,2026-01-11,0.1000,coupon")
    stock = landing.append("inventory", "55555,2026-11-15,4")
    detail = "product_id='55555' is not in products"
    return Loaded(
        [
            Row("order_lines", line, "orphan_product", detail),
            Row("promotions", promotion, "orphan_product", detail),
            Row("inventory", stock, "orphan_product", detail),
        ],
        {"order_lines": 1, "promotions": 1, "inventory": 1},
    )


@case
def quarantined_order_takes_its_lines(landing: Landing) -> Loaded:
    landing.replace("orders", 2, "1,118,2025-09-22 07:21:52,fax")  # order 1
    lines = [
        n
        for n, text in enumerate(landing.lines("order_lines"), start=1)
        if text.split(",")[0] == "1"
    ]
    return Loaded(
        [Row("orders", 2, "not_allowed", "channel='fax'")]
        + [Row("order_lines", n, "orphan_order", "order_id='1' is not in orders") for n in lines]
    )


@case
def future_order(landing: Landing) -> Loaded:
    order = landing.append(
        "orders", "999001,1,2026-11-16 08:00:00,web", "999002,1,2026-11-16 00:00:00,web"
    )
    line = landing.append(
        "order_lines", "999001,1,10001,1,36.99,36.99,", "999002,1,10001,1,36.99,36.99,"
    )
    after = "is later than the run's as_of 2026-11-16 00:00:00"
    return Loaded(
        [
            Row("orders", order, "future_timestamp", f"ordered_at='2026-11-16 08:00:00' {after}"),
            Row("order_lines", line, "orphan_order", "order_id='999001' is not in orders"),
        ],
        {"orders": 2, "order_lines": 2},
    )


@case
def future_signup_and_snapshot(landing: Landing) -> Loaded:
    customer = landing.append("customers", "999001,2026-12-01,north,,")
    stock = landing.append("inventory", "10001,2026-11-17,5", "10002,2026-11-16,5")
    return Loaded(
        [
            Row("customers", customer, "future_timestamp", "signup_date='2026-12-01' is later"),
            Row("inventory", stock, "future_timestamp", "snapshot_date='2026-11-17' is later"),
        ],
        {"customers": 1, "inventory": 2},
    )


@case
def future_promotion_and_holiday_are_valid(landing: Landing) -> Loaded:
    landing.append("promotions", "999001,10001,2026-11-23,2026-11-29,0.2000,mailer")
    landing.append("holidays", "2027-05-01,Labour Day")
    return Loaded([], {"promotions": 1, "holidays": 1})


@case
def header_only_optional_file(landing: Landing) -> Loaded:
    removed = len(landing.lines("holidays")) - 1
    landing.write("holidays", "holiday_date,holiday_name\n")
    return Loaded([], {"holidays": -removed})


@case
def csv_and_parquet_for_one_table(landing: Landing) -> Loaded:
    customers = pd.read_csv(landing.file("customers"), dtype=str).head(3)
    customers.to_parquet(landing.path / "customers.parquet", index=False)
    return Loaded()  # the CSV wins: the full customer table is loaded


@case
def extra_column_and_another_column_order(landing: Landing) -> Loaded:
    products = pd.read_csv(landing.file("products"), dtype=str, keep_default_na=False)
    products["comment"] = "exported"
    products[list(reversed(products.columns))].to_csv(landing.file("products"), index=False)
    return Loaded()  # the extra column is ignored (a warning), the order does not matter


@case
def parquet_with_typed_columns(landing: Landing) -> Loaded:
    products = pd.read_csv(landing.file("products"))  # ids int64, prices float64
    products.to_parquet(landing.path / "products.parquet", index=False)
    landing.file("products").unlink()
    return Loaded()  # typed values are read as their text


@case
def stray_files_beside_the_tables(landing: Landing) -> Loaded:
    (landing.path / "orders_2.csv").write_text(landing.file("orders").read_text())
    (landing.path / "notes.txt").write_text("exported by hand\n")
    return Loaded()  # named in a warning, not read


def _split(landing: Landing, table: str, parts: int, suffix: str = ".csv") -> list[Path]:
    """Move <table>.csv into a <table>/ folder of `parts` parts, each with the header (the
    rows cut in order into nearly equal parts); the part files, in order."""
    header, *rows = landing.lines(table)
    landing.file(table).unlink()
    folder = landing.path / table
    folder.mkdir()
    size = -(-len(rows) // parts)
    paths = []
    for k in range(parts):
        path = folder / f"part-{k:05d}{suffix}"
        chunk = "".join(row + "\n" for row in rows[k * size:(k + 1) * size])
        path.write_text(header + "\n" + chunk)
        paths.append(path)
    return paths


@case
def table_delivered_as_a_folder_of_parts(landing: Landing) -> Loaded:
    _split(landing, "order_lines", 3)
    orders = _split(landing, "orders", 2)
    (orders[0].parent / "_SUCCESS").write_text("")  # a Spark or Hadoop exporter's marker
    (orders[0].parent / f".{orders[0].name}.crc").write_text("")
    return Loaded()  # the parts load as one table, the markers are not named


@case
def key_repeated_in_a_later_part(landing: Landing) -> Loaded:
    first, second = _split(landing, "order_lines", 2)
    repeated = first.read_text().splitlines()[-1]  # re-delivered in the second part
    second.write_text(second.read_text() + repeated + "\n")
    line = len(second.read_text().splitlines())
    key = ", ".join(repeated.split(",")[:2])
    return Loaded([Row("order_lines", line, "duplicate_key",
                       f"(order_id, line_number) = ({key}) repeats an earlier row",
                       "order_lines/part-00001.csv")], {"order_lines": 1})


@case
def bad_line_in_one_part(landing: Landing) -> Loaded:
    _, second = _split(landing, "customers", 2)
    second.write_text(second.read_text() + "999001,2025-01-01\n")
    line = len(second.read_text().splitlines())
    return Loaded([Row("customers", line, "bad_format", "2 fields, the header has",
                       "customers/part-00001.csv")], {"customers": 1})


@case
def parquet_parts(landing: Landing) -> Loaded:
    for path in _split(landing, "products", 2):
        pd.read_csv(path, dtype=str).to_parquet(path.with_suffix(".parquet"), index=False)
        path.unlink()
    return Loaded()


@case
def folder_of_parts_with_a_stray_file(landing: Landing) -> Loaded:
    first, _ = _split(landing, "promotions", 2)
    (first.parent / "readme.txt").write_text("promotions export, two parts\n")
    return Loaded()  # named in a warning and in audit.landing_unread, not read


# --- file level: refused, raw unchanged -----------------------------------------------------
def _as_parquet(landing: Landing, table: str, column: str,
                values: Callable[[pd.Series], pa.Array]) -> None:
    """Replace <table>.csv by <table>.parquet whose `column` is `values` of the CSV's column."""
    frame = pd.read_csv(landing.file(table), dtype=str)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    arrow = arrow.set_column(arrow.schema.get_field_index(column), column, values(frame[column]))
    pq.write_table(arrow, landing.path / f"{table}.parquet")
    landing.file(table).unlink()


@case
def parquet_column_of_lists(landing: Landing) -> Refused:
    _as_parquet(landing, "promotions", "promo_type",
                lambda types: pa.array([[t] for t in types], type=pa.list_(pa.string())))
    return Refused("promotions.parquet has column promo_type of type list<element: string>, not "
                   "single values; export it with one plain value per row.")


@case
def parquet_struct_column(landing: Landing) -> Refused:
    _as_parquet(landing, "holidays", "holiday_name",
                lambda names: pa.array([{"name": n, "country": "CN"} for n in names]))
    return Refused("holidays.parquet has column holiday_name of type struct<name: string, "
                   "country: string>, not single values; export it with one plain value per row.")


@case
def parquet_bytes_that_are_not_utf8(landing: Landing) -> Refused:
    _as_parquet(landing, "products", "product_name",
                lambda names: pa.array([b"\xff\xfe" + n.encode() for n in names], type=pa.binary()))
    return Refused("products.parquet has bytes that are not valid UTF-8 text in column "
                   "product_name; re-export that column as UTF-8 text.")


@case
def folder_named_like_a_table_file(landing: Landing) -> Refused:
    landing.file("promotions").unlink()
    landing.file("promotions").mkdir()
    return Refused(
        f"{landing.file('promotions')} is a folder, not a file; put the promotions table's rows "
        "in one promotions.csv file or in parts in a promotions/ folder."
    )


@case
def a_table_as_a_file_and_as_a_folder(landing: Landing) -> Refused:
    (landing.path / "orders").mkdir()
    (landing.path / "orders" / "part-1.csv").write_text(landing.file("orders").read_text())
    return Refused("The orders table is in both orders.csv and the folder orders/; keep one of "
                   "them.")


@case
def folder_of_parts_without_a_part(landing: Landing) -> Refused:
    landing.file("inventory").unlink()
    (landing.path / "inventory").mkdir()
    (landing.path / "inventory" / "_SUCCESS").write_text("")
    return Refused("inventory/ holds no .csv or .parquet part; put the inventory rows in files "
                   "such as inventory/part-1.csv, or remove the folder.")


@case
def parts_with_other_headers(landing: Landing) -> Refused:
    _, second = _split(landing, "products", 2)
    frame = pd.read_csv(second, dtype=str, keep_default_na=False)
    frame.assign(comment="second delivery").to_csv(second, index=False)
    return Refused("products/part-00001.csv has other columns than products/part-00000.csv; "
                   "export every part of a table with the same header.")


@case
def parts_in_two_formats(landing: Landing) -> Refused:
    _, second = _split(landing, "holidays", 2)
    pd.read_csv(second, dtype=str).to_parquet(second.with_suffix(".parquet"), index=False)
    second.unlink()
    return Refused("holidays/ mixes .csv and .parquet parts; export every part of a table in "
                   "one format.")


@case
def empty_part(landing: Landing) -> Refused:
    _, second = _split(landing, "promotions", 2)
    second.write_text("")
    return Refused("promotions/part-00001.csv is empty (0 bytes); export it with the header "
                   "line promotion_id,product_id,start_date,end_date,discount_depth,promo_type "
                   "and its rows.")


@case
def missing_required_file(landing: Landing) -> Refused:
    landing.file("inventory").unlink()
    return Refused(
        f"{landing.file('inventory')} is missing; every landing folder needs inventory.csv "
        "(or a folder inventory/ of parts; see docs/raw_contract.md)."
    )


@case
def empty_file(landing: Landing) -> Refused:
    landing.write("orders", "")
    return Refused(
        "orders.csv is empty (0 bytes); export it with the header line "
        "order_id,customer_id,ordered_at,channel and its rows."
    )


@case
def header_only_required_file(landing: Landing) -> Refused:
    landing.write("promotions", landing.lines("promotions")[0] + "\n\n")
    return Refused(
        "promotions.csv has a header but no rows; export the promotions rows too (only "
        "optional tables such as holidays may be empty)."
    )


@case
def no_header_line(landing: Landing) -> Refused:
    landing.write("products", "\n" + "\n".join(landing.lines("products")[1:]) + "\n")
    return Refused(
        "products.csv has no header line; its first line must name the columns product_id, "
        "product_name, category, brand, list_price, unit_cost."
    )


@case
def missing_column(landing: Landing) -> Refused:
    frame = pd.read_csv(landing.file("order_lines"), dtype=str)
    frame.drop(columns="quantity").to_csv(landing.file("order_lines"), index=False)
    return Refused(
        "order_lines.csv lacks the column(s) quantity (no similar header name); rename or add "
        "them so that the header names order_id, line_number, product_id, quantity, "
        "unit_list_price, unit_paid_price, promotion_id."
    )


@case
def renamed_column(landing: Landing) -> Refused:
    lines = landing.lines("order_lines")
    landing.write("order_lines", "\n".join([lines[0].replace("quantity", "qty"), *lines[1:]]))
    return Refused(
        "order_lines.csv lacks the column(s) quantity (closest header name found: 'qty'); "
        "rename or add them so that the header names order_id, line_number, product_id, "
        "quantity, unit_list_price, unit_paid_price, promotion_id."
    )


@case
def repeated_column(landing: Landing) -> Refused:
    lines = landing.lines("holidays")
    landing.write("holidays", "\n".join(f"{line},{line.split(',')[1]}" for line in lines))
    return Refused(
        "holidays.csv names the column(s) holiday_name more than once; keep one column of "
        "each name."
    )


@case
def not_utf8(landing: Landing) -> Refused:
    text = landing.file("customers").read_bytes()
    landing.file("customers").write_bytes(
        text + "999001,2026-01-01,São Paulo,,\n".encode("latin-1")
    )
    line = text.count(b"\n") + 1
    return Refused(
        f"customers.csv is not valid UTF-8 (byte 0xe3 on line {line}); re-export it as UTF-8."
    )


@case
def semicolon_separated(landing: Landing) -> Refused:
    lines = landing.lines("products")
    landing.write("products", "\n".join(line.replace(",", ";") for line in lines) + "\n")
    return Refused(
        'products.csv seems to be separated by ";"; the contract needs commas, so re-export it '
        "as comma-separated values."
    )


@case
def tab_separated(landing: Landing) -> Refused:
    lines = landing.lines("inventory")
    landing.write("inventory", "\n".join(line.replace(",", "\t") for line in lines) + "\n")
    return Refused(
        "inventory.csv seems to be separated by tabs; the contract needs commas, so re-export "
        "it as comma-separated values."
    )


@case
def unclosed_quote_inside_the_file(landing: Landing) -> Refused:
    lines = landing.lines("products")
    lines[5] = lines[5].replace(",", ',"', 1)
    landing.write("products", "\n".join(lines) + "\n")
    return Refused(
        f"products.csv has a quote opened on line 6 that is not closed before line {len(lines)}, "
        "so the lines between are lost; close that quote (a quote inside a value is written "
        "twice)."
    )


@case
def file_identical_to_another_table(landing: Landing) -> Refused:
    shutil.copyfile(landing.file("orders"), landing.file("order_lines"))
    return Refused(
        "order_lines.csv is byte-identical to orders.csv; one of them was exported under the "
        "wrong name, so replace it with the order_lines table."
    )
