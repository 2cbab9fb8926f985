"""Landing files -> `raw` tables, `raw.quarantine` and `audit.ingest_runs`.

    python -m ingest.load --source DIR --run-id ID [--as-of TIMESTAMP]

A full snapshot load: every row of every landing file is validated against the raw contract
(docs/raw_contract.md) with pandas; valid rows replace the previous contents of the raw tables
and invalid rows go to raw.quarantine with a reason code, all in one transaction, so a failure
leaves the previous raw data in place. File-level problems (a missing or unreadable file, a
missing column) raise IngestError before the warehouse is touched. Re-running a run_id replaces
that run's quarantine and audit rows.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import hashlib
import io
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg2

from ingest.contract import TABLES, TABLES_BY_NAME, Column, TableSpec
from promoflow import warehouse
from promoflow.run import Run
from promoflow.settings import Settings, get_settings

log = logging.getLogger("ingest.load")

SCHEMA_SQL = Path(__file__).with_name("raw_schema.sql")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_INT_PATTERN = r"[+-]?\d{1,18}"
_NUMBER_PATTERN = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?"
_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}"
_TIMESTAMP_PATTERN = r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?"
STRING = pd.StringDtype("pyarrow")
_INT32_MAX = 2**31 - 1
_SEPARATORS = {";": '";"', "\t": "tabs", "|": '"|"'}


class IngestError(RuntimeError):
    """The landing files cannot be loaded at all (missing file, missing column, unreadable);
    the message is one sentence saying what is wrong and what to do."""


@dataclass
class Landed:
    """One landing file as text (null for empty), the source line of each row, bad lines."""

    source_file: str
    values: pd.DataFrame
    lines: np.ndarray
    bad_format: list[tuple[int, list[str]]]
    header_width: int = 0  # fields in the header line (CSV)
    files: np.ndarray | None = None  # a folder of parts: the part of each row, then bad line
    present: tuple[str, ...] = ()  # the contract's columns the file has


@dataclass
class Checked:
    """A validated table: the valid rows as text, their parsed keys, and quarantine rows."""

    spec: TableSpec
    source_file: str
    loaded: pd.DataFrame
    keys: pd.DataFrame
    quarantine: pd.DataFrame
    input_rows: int


# --- reading --------------------------------------------------------------------------------
def _label(path: Path) -> str:
    """A landing file as messages name it: a part with its table's folder (orders/part-2.csv)."""
    return f"{path.parent.name}/{path.name}" if path.parent.name in TABLES_BY_NAME else path.name


def _strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Arrow-backed strings, surrounding whitespace stripped, empty values null."""
    out = {}
    for name in frame.columns:
        text = frame[name].astype(STRING).str.strip()
        out[name] = text.mask(text == "")
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(
            f"{_label(path)} is not valid UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); "
            "re-export it as UTF-8."
        ) from None
    if "\r" in text and "\n" not in text:  # classic Mac line ends: CR alone ends every line
        text = text.replace("\r", "\n")
    return text


def _header(path: Path, text: str, spec: TableSpec) -> list[str]:
    first = _LINE_BREAK.split(text, maxsplit=1)[0]
    if not first.strip():
        raise IngestError(
            f"{_label(path)} has no header line; its first line must name the "
            f"columns {', '.join(spec.column_names)}."
        )
    header = [h.strip() for h in next(csv.reader([first]))]
    separator = next((s for s in _SEPARATORS if len(header) == 1 and s in header[0]), None)
    if separator is not None:
        raise IngestError(
            f"{_label(path)} seems to be separated by {_SEPARATORS[separator]}; the contract needs "
            "commas, so re-export it as comma-separated values."
        )
    _check_header(_label(path), header, spec)
    return header


def _read_csv(path: Path, spec: TableSpec) -> Landed:
    """Parse with pyarrow; every non-empty physical line is one record unless values hold
    line breaks, in which case the exact (slower) csv-module reader numbers the lines."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    text = _decode(path)
    header = _header(path, text, spec)
    invalid: list[tuple[int, str]] = []

    def on_invalid(row) -> str:
        invalid.append((row.number, row.text))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.py_buffer(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=header, skip_rows=1),
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                include_columns=[c for c in spec.column_names if c in header],
            ),
        )
    except pa.ArrowException as exc:
        raise IngestError(f"{_label(path)} is not readable as CSV ({exc}); fix the file.") from None
    if '"' in text and (
        any(_LINE_BREAK.search(t) for _, t in invalid)
        or any(pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py()
               for column in table.columns)
    ):
        return _read_csv_exact(path, text, header, spec)
    # pyarrow ends a line at LF, CRLF or a lone CR: number the lines the same way
    lengths = np.fromiter(map(len, _LINE_BREAK.split(text)), dtype=np.int64)
    non_empty = np.flatnonzero(lengths > 0) + 1
    # pyarrow numbers rows among non-empty lines, the header being row 1
    good_rows = np.arange(2, len(non_empty) + 1)
    if invalid:
        good_rows = good_rows[~np.isin(good_rows, [n for n, _ in invalid])]
    frame = table.to_pandas(types_mapper={pa.string(): STRING}.get)
    return Landed(
        _label(path),
        _strings(frame),
        non_empty[np.asarray(good_rows, dtype=int) - 1],
        [(int(non_empty[n - 1]), next(csv.reader([t]), [])) for n, t in invalid],
        len(header),
    )


def _source(text: str, starts: list[int], first: int, last: int) -> str:
    """Lines first + 1 .. last of `text` (1-based), `starts` being each line's offset."""
    return text[starts[first]:starts[last] if last < len(starts) else len(text)]


def _read_csv_exact(path: Path, text: str, header: list[str], spec: TableSpec) -> Landed:
    """The csv module: exact source lines also when quoted values span several lines."""
    csv.field_size_limit(sys.maxsize)  # a value may be longer than the module's 128 KiB
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    records: list[list[str]] = []
    lines: list[int] = []
    width = len(header)
    previous = reader.line_num
    starts = [0, *(m.end() for m in _LINE_BREAK.finditer(text))]  # offset of each line
    for record in reader:
        # a wrong record over several lines with an odd number of quotes: a quote left open
        # swallowed the lines after it (a closed multi-line value with a field missing is just
        # a bad record)
        if (record and len(record) != width and reader.line_num > previous + 1
                and _source(text, starts, previous, reader.line_num).count('"') % 2):
            raise IngestError(
                f"{_label(path)} has a quote opened on line {previous + 1} that is not closed "
                f"before line {reader.line_num}, so the lines between are lost; close that quote "
                "(a quote inside a value is written twice)."
            )
        if record:
            records.append(record)
            lines.append(previous + 1)
        previous = reader.line_num
    good = [i for i, r in enumerate(records) if len(r) == width]
    frame = pd.DataFrame([records[i] for i in good], columns=header, dtype=object)
    frame = frame.loc[:, ~frame.columns.duplicated()][[c for c in spec.column_names if c in header]]
    return Landed(
        _label(path),
        _strings(frame),
        np.asarray([lines[i] for i in good], dtype=np.int64),
        [(lines[i], r) for i, r in enumerate(records) if len(r) != width],
        width,
    )


def _read_parquet(path: Path, spec: TableSpec) -> Landed:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise IngestError(
            f"{_label(path)} is not a readable Parquet file ({exc}); fix the file."
        ) from None
    _check_header(_label(path), table.column_names, spec)
    columns = {}
    for name in spec.column_names:
        if name not in table.column_names:
            continue
        column = table.column(name)
        if pa.types.is_nested(column.type) or pa.types.is_dictionary(column.type) and \
                pa.types.is_nested(column.type.value_type):
            raise IngestError(f"{_label(path)} has column {name} of type {column.type}, not single "
                              "values; export it with one plain value per row.")
        try:
            text = column.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            what = ("bytes that are not valid UTF-8 text"
                    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)
                    else f"values of type {column.type} that cannot be read as text")
            raise IngestError(f"{_label(path)} has {what} in column {name}; re-export that column "
                              "as UTF-8 text.") from None
        columns[name] = text.to_pandas(types_mapper={pa.string(): STRING}.get)
    frame = pd.DataFrame(columns)
    return Landed(_label(path), _strings(frame), np.arange(1, len(frame) + 1), [])


def _closest(column: str, missing: list[str], extra: list[str]) -> str:
    """The header name most like a missing column (a rename), for the error message."""
    close = difflib.get_close_matches(column.lower(), [e.lower() for e in extra], n=1, cutoff=0.4)
    if close:
        return next(e for e in extra if e.lower() == close[0])
    return extra[0] if len(missing) == 1 and len(extra) == 1 else ""


def _check_header(file_name: str, header: list[str], spec: TableSpec) -> None:
    missing = [c for c in spec.header_names if c not in header]
    extra = [c for c in header if c not in spec.column_names]
    if missing:
        found = [(c, _closest(c, missing, extra)) for c in missing]
        described = ", ".join(
            f"{c} (closest header name found: {e!r})" if e else f"{c} (no similar header name)"
            for c, e in found
        )
        raise IngestError(
            f"{file_name} lacks the column(s) {described}; rename or add them so that the "
            f"header names {', '.join(spec.header_names)}."
        )
    repeated = sorted({c for c in header if c in spec.column_names and header.count(c) > 1})
    if repeated:
        raise IngestError(
            f"{file_name} names the column(s) {', '.join(repeated)} more than once; keep one "
            "column of each name."
        )
    if extra:
        log.warning("%s: ignoring columns not in the raw contract: %s", file_name, ", ".join(extra))


#: files a landing folder may hold besides the tables (the importers' reports)
LANDING_EXTRAS = frozenset({"import_report.json"})
_FORMATS = (".csv", ".parquet")


def _part_order(path: Path) -> list:
    """Name order with numbers compared as numbers: part-2 before part-10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", path.name)]


def _parts(folder: Path) -> list[Path]:
    """The part files of a table's folder, in name order (numbers as numbers)."""
    parts = sorted((p for p in folder.iterdir()
                    if p.suffix in _FORMATS and p.is_file() and p.name[0] not in "._"),
                   key=_part_order)
    if not parts:
        raise IngestError(f"{folder.name}/ holds no .csv or .parquet part; put the {folder.name} "
                          f"rows in files such as {folder.name}/part-1.csv, or remove the folder.")
    if len({p.suffix for p in parts}) > 1:
        raise IngestError(f"{folder.name}/ mixes .csv and .parquet parts; export every part of "
                          "a table in one format.")
    return parts


def unread_files(source_dir: Path) -> list[str]:
    """What a landing folder holds that no table reads (hidden files aside), as relative paths:
    files other than <table>.csv, <table>.parquet, a <table>/ folder of parts and the importers'
    reports, and what a folder of parts holds besides its parts."""
    tables = {spec.name for spec in TABLES}
    expected = {f"{name}{suffix}" for name in tables for suffix in _FORMATS} | LANDING_EXTRAS
    unread = []
    for path in sorted(source_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.name in tables and path.is_dir():
            # names starting with _ or . are an exporter's markers (Spark's _SUCCESS, .crc)
            unread += [f"{path.name}/{p.name}" for p in sorted(path.iterdir())
                       if p.name[0] not in "._" and (p.suffix not in _FORMATS
                                                      or not p.is_file())]
        elif path.name not in expected:
            unread.append(path.name)
    return unread


def landing_files(source_dir: Path) -> dict[str, Path | None]:
    """The source of each table: <table>.csv, else <table>.parquet, else a <table>/ folder of
    parts (None: an optional table without a file). A missing required file, a table given
    both as a file and as a folder, or two byte-identical files stop the run."""
    files: dict[str, Path | None] = {}
    expected = {f"{spec.name}{suffix}" for spec in TABLES for suffix in _FORMATS}
    for path in sorted(source_dir.iterdir()):
        if path.name in expected and path.is_dir():
            raise IngestError(f"{path} is a folder, not a file; put the {path.stem} table's "
                              f"rows in one {path.name} file or in parts in a {path.stem}/ folder.")
    unread = unread_files(source_dir)
    if unread:
        log.warning("Landing folder %s: %s not read (only <table>.csv, <table>.parquet or a "
                    "<table>/ folder of parts of docs/raw_contract.md are)", source_dir,
                    ", ".join(unread))
    for spec in TABLES:
        csv_path = source_dir / f"{spec.name}.csv"
        parquet_path = source_dir / f"{spec.name}.parquet"
        folder = source_dir / spec.name
        given = [p for p in (csv_path, parquet_path) if p.exists()]
        if folder.is_dir():
            if given:
                raise IngestError(f"The {spec.name} table is in both {given[0].name} and the "
                                  f"folder {spec.name}/; keep one of them.")
            _parts(folder)
            files[spec.name] = folder
            continue
        if len(given) == 2:
            log.warning("%s: both %s and %s exist; reading the CSV", spec.name, csv_path.name,
                        parquet_path.name)
        if given:
            files[spec.name] = given[0]
        elif spec.required_file:
            raise IngestError(
                f"{csv_path} is missing; every landing folder needs {spec.name}.csv "
                f"(or a folder {spec.name}/ of parts; see docs/raw_contract.md)."
            )
        else:
            files[spec.name] = None
    seen: dict[str, Path] = {}
    for table, path in files.items():
        if path is None or path.is_dir() or path.stat().st_size == 0:
            continue  # an empty file is reported when it is read
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            raise IngestError(
                f"{path.name} is byte-identical to {seen[digest].name}; one of them was exported "
                f"under the wrong name, so replace it with the {table} table."
            )
        seen[digest] = path
    return files


def _read_file(path: Path, spec: TableSpec) -> Landed:
    if path.stat().st_size == 0:
        raise IngestError(
            f"{_label(path)} is empty (0 bytes); export it with the header line "
            f"{','.join(spec.header_names)} and its rows."
        )
    landed = _read_parquet(path, spec) if path.suffix == ".parquet" else _read_csv(path, spec)
    # columns added to the contract later and absent from this file: empty
    absent = [c for c in spec.column_names if c not in landed.values.columns]
    for name in absent:
        landed.values[name] = pd.Series(pd.NA, index=landed.values.index, dtype=STRING)
    landed.present = tuple(c for c in spec.column_names if c not in absent)
    landed.values = landed.values[spec.column_names]
    return landed


def _together(folder: Path, parts: list[Landed]) -> Landed:
    """The parts of a table as one file: rows in part order, each row naming its part (a key
    repeated in a later part is then quarantined as a duplicate of the earlier row)."""
    first = parts[0]
    for part in parts[1:]:
        if (part.header_width, part.present) != (first.header_width, first.present):
            raise IngestError(f"{part.source_file} has other columns than {first.source_file}; "
                              "export every part of a table with the same header.")
    files = np.array([p.source_file for p in parts], dtype=object)  # orders/part-1.csv
    return Landed(
        f"{folder.name}/",
        pd.concat([p.values for p in parts], ignore_index=True),
        np.concatenate([p.lines for p in parts]),
        [bad for p in parts for bad in p.bad_format],
        first.header_width,
        np.concatenate([np.repeat(files, [len(p.values) for p in parts]),
                        np.repeat(files, [len(p.bad_format) for p in parts])]),
    )


def read_landing(path: Path, spec: TableSpec) -> Landed:
    """Read one landing file or folder of parts; an empty file, or a required table without
    rows, stops the run."""
    if path.is_dir():
        landed = _together(path, [_read_file(part, spec) for part in _parts(path)])
    else:
        landed = _read_file(path, spec)
    if spec.required_file and len(landed.values) + len(landed.bad_format) == 0:
        raise IngestError(
            f"{_label(path)} has a header but no rows; export the {spec.name} rows too (only "
            "optional tables such as holidays may be empty)."
        )
    return landed


# --- validation -----------------------------------------------------------------------------
def _cast(values: pd.Series, pattern: str, arrow_type) -> pd.Series:
    """Values matching the pattern cast with pyarrow (fast), the others null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.array(values.array)
    matching = pc.if_else(
        pc.match_substring_regex(text, f"^{pattern}$"), text, pa.scalar(None, text.type)
    )
    unsigned = pc.replace_substring_regex(matching, r"^\+", "")
    cast = pc.cast(unsigned, arrow_type)
    mapper = {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}.get
    return pd.Series(cast.to_pandas(types_mapper=mapper), index=values.index)


def _round_like_postgres(numbers: pd.Series, text: pd.Series, scale: int) -> pd.Series:
    """`numbers` rounded to `scale` decimals as PostgreSQL rounds the text into numeric(p,
    scale): half away from zero on the decimal digits. A float rounds 36.995 down (it is
    36.99499... in binary) where PostgreSQL makes 37.00, so values within a hair of a half are
    rounded again from their text with Python's decimal."""
    rounded = numbers.round(scale)
    scaled = numbers.to_numpy(dtype=float) * 10.0 ** scale
    near_half = np.abs(np.abs(scaled - np.trunc(scaled)) - 0.5) < 1e-6
    if near_half.any():
        step = Decimal(1).scaleb(-scale)
        rows = np.flatnonzero(near_half)
        rounded.iloc[rows] = [float(Decimal(str(value).strip()).quantize(step, ROUND_HALF_UP))
                              for value in text.iloc[rows]]
    return rounded


def _parse_dates(values: pd.Series) -> pd.Series:
    """YYYY-MM-DD dates at second resolution (datetime64[s]: years 1 to 9999, so an open end
    such as 9999-12-31 parses; nanoseconds end in 2262); NaT where a value is not a calendar
    date (2024-02-30 does not roll over into March)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ok = values.str.fullmatch(_DATE_PATTERN).fillna(False).astype(bool)
    ok &= ~values.str.startswith("0000").fillna(False).astype(bool)  # there is no year 0
    text = pa.array(values.where(ok, None).astype(object), type=pa.string())
    stamps = pc.strptime(text, format="%Y-%m-%d", unit="s", error_is_null=True)
    same = pc.fill_null(pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), text), False)
    stamps = pc.if_else(same, stamps, pa.scalar(None, type=stamps.type))
    return pd.Series(stamps.to_numpy(zero_copy_only=False), index=values.index,
                     dtype="datetime64[s]")


def _parse(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(parsed values, mask of non-null values that do not parse, mask of numbers too large
    for the column's type)."""
    import pyarrow as pa

    present = values.notna()
    too_large = pd.Series(False, index=values.index)
    if column.kind in ("bigint", "integer"):
        parsed = _cast(values, _INT_PATTERN, pa.int64())
        if column.kind == "integer":
            parsed = parsed.mask((parsed.abs() > _INT32_MAX).fillna(False))
        digits = values.str.fullmatch(r"[+-]?\d+").fillna(False).astype(bool)
        too_large = digits & parsed.isna()
    elif column.kind == "numeric":
        number = _cast(values, _NUMBER_PATTERN, pa.float64())
        parsed = pd.Series(number.to_numpy(dtype=float, na_value=np.nan), index=values.index)
        parsed = _round_like_postgres(parsed.where(np.isfinite(parsed)), values,
                                      column.scale or 0)
        too_large = pd.Series(~(parsed.abs() < (column.max_abs or np.inf)), index=values.index)
        too_large &= number.notna().to_numpy(dtype=bool)
        parsed = parsed.mask(too_large)
    elif column.kind == "date":
        parsed = _parse_dates(values)
    elif column.kind == "timestamp":
        ok = values.str.fullmatch(_TIMESTAMP_PATTERN).fillna(False).astype(bool)
        parsed = pd.to_datetime(values.where(ok), format="ISO8601", errors="coerce")
    else:  # text: anything but a NUL character, which PostgreSQL text cannot hold
        parsed = values.mask(values.str.contains("\x00", regex=False).fillna(False))
    return parsed, present & parsed.isna() & ~too_large, too_large


def _flag(
    reason: np.ndarray,
    detail: np.ndarray,
    mask,
    code: str,
    message: Callable[[np.ndarray], list[str]] | str,
) -> None:
    """Give rows in mask without a reason yet this code and a detail (the first reason wins)."""
    rows = np.flatnonzero(np.asarray(mask, dtype=bool) & (reason == None))
    if len(rows):
        reason[rows] = code
        detail[rows] = message(rows) if callable(message) else message


def _shown(values: pd.Series, rows: np.ndarray) -> list[str]:
    return [
        repr(v)[:60] if v is not None else "null"
        for v in values.iloc[rows].astype(object).where(values.iloc[rows].notna(), None)
    ]


def validate(
    landed: Landed,
    spec: TableSpec,
    parent_keys: dict[str, pd.Index],
    run_id: str,
    as_of: datetime,
) -> Checked:
    """Check every row of one table; parent_keys holds the loaded keys of earlier tables,
    as_of (naive UTC) is the run's time: later dates and timestamps are future_timestamp."""
    raw = landed.values
    n = len(raw)
    reason = np.full(n, None, dtype=object)
    detail = np.full(n, None, dtype=object)
    parsed = pd.DataFrame(index=raw.index)

    def says(column: str, text: str) -> Callable[[np.ndarray], list[str]]:
        return lambda rows: [f"{column}={v} {text}" for v in _shown(raw[column], rows)]

    for column in spec.columns:
        if column.required:
            _flag(
                reason, detail, raw[column.name].isna(), "null_required", f"{column.name} is empty"
            )
    for column in spec.columns:
        parsed[column.name], bad, too_large = _parse(raw[column.name], column)
        _flag(reason, detail, bad, "bad_type", says(column.name, f"is not a valid {column.kind}"))
        _flag(
            reason,
            detail,
            too_large,
            "out_of_range",
            says(column.name, f"is beyond the range of the column's type ({column.kind})"),
        )
    for column in spec.columns:
        if column.allowed:
            outside = raw[column.name].notna() & ~raw[column.name].isin(column.allowed)
            _flag(
                reason,
                detail,
                outside,
                "not_allowed",
                says(column.name, f"is not one of {', '.join(column.allowed)}"),
            )
    for rule in spec.ranges:
        broken = rule.violates(parsed).fillna(False).astype(bool)
        _flag(reason, detail, broken, "out_of_range", says(rule.column, rule.message))
    for column in spec.columns:
        if column.not_future:
            limit = pd.Timestamp(as_of if column.kind == "timestamp" else as_of.date())
            _flag(
                reason,
                detail,
                (parsed[column.name] > limit).fillna(False),
                "future_timestamp",
                says(column.name, f"is later than the run's as_of {as_of:%Y-%m-%d %H:%M:%S}"),
            )

    valid_so_far = reason == None
    duplicated = np.zeros(n, dtype=bool)
    duplicated[valid_so_far] = (
        parsed[valid_so_far].duplicated(list(spec.primary_key), keep="first").to_numpy()
    )
    key = ", ".join(spec.primary_key)
    _flag(
        reason,
        detail,
        duplicated,
        "duplicate_key",
        lambda rows: [
            f"({key}) = ({', '.join(map(str, k))}) repeats an earlier row"
            for k in raw.iloc[rows][list(spec.primary_key)].itertuples(index=False)
        ],
    )

    for fk in spec.foreign_keys:
        values = parsed[fk.column]
        orphan = (values.notna() & ~values.isin(parent_keys[fk.parent])).to_numpy(dtype=bool)
        _flag(reason, detail, orphan, fk.reason, says(fk.column, f"is not in {fk.parent}"))

    bad = reason != None
    bad_rows = np.flatnonzero(bad)
    # jsonb cannot hold NUL characters: the record shows them as U+FFFD
    records = (
        raw.iloc[bad_rows]
        .apply(lambda values: values.str.replace("\x00", "\ufffd", regex=False))
        .astype(object)
        .to_json(orient="records", lines=True)
    )
    quarantine = pd.DataFrame(
        {
            "run_id": run_id,
            "table_name": spec.name,
            "source_file": (landed.source_file if landed.files is None else
                            np.concatenate([landed.files[bad_rows], landed.files[n:]])),
            "source_line": np.concatenate(
                [landed.lines[bad_rows], [line for line, _ in landed.bad_format]]
            ).astype(np.int64),
            "reason": list(reason[bad_rows]) + ["bad_format"] * len(landed.bad_format),
            "detail": list(detail[bad_rows])
            + [
                f"{len(fields)} fields, the header has {landed.header_width}"
                for _, fields in landed.bad_format
            ],
            "record": [r for r in records.split("\n") if r][: len(bad_rows)]
            + [
                json.dumps({"fields": [f.replace("\x00", "\ufffd") for f in fields]})
                for _, fields in landed.bad_format
            ],
        }
    ).sort_values("source_line", kind="stable")
    return Checked(
        spec,
        landed.source_file,
        raw[~bad].reset_index(drop=True),
        parsed.loc[~bad, list(spec.primary_key)].reset_index(drop=True),
        quarantine,
        n + len(landed.bad_format),
    )


def cut_as_of(landed: Landed, spec: TableSpec, as_of: datetime,
              later_keys: dict[str, pd.Index]) -> tuple[Landed, pd.Index]:
    """The file as it stood at `as_of` (a replay): rows dated at or after it (`dated_by`; a date
    column compares with the as-of day) and rows whose parent row is later are left out, and
    a nullable not-future value (a consent's withdrawal) set at or after it is emptied, as it
    had not happened yet. Rows whose date does not parse stay, for validation to quarantine.
    Returns the cut file and the keys of the rows left out (for the tables that refer to them)."""
    raw = landed.values
    later = pd.Series(False, index=raw.index)

    def at_or_after(column: Column) -> pd.Series:
        parsed = _parse(raw[column.name], column)[0]
        limit = pd.Timestamp(as_of if column.kind == "timestamp" else as_of.date())
        return (parsed >= limit).fillna(False).astype(bool)

    columns = {c.name: c for c in spec.columns}
    if spec.dated_by:
        later |= at_or_after(columns[spec.dated_by])
    for fk in spec.foreign_keys:
        parent = later_keys.get(fk.parent)
        if parent is not None and len(parent):
            values = _parse(raw[fk.column], columns[fk.column])[0]
            later |= values.isin(parent).fillna(False).astype(bool)
    values = raw.copy()
    for column in spec.columns:
        if column.not_future and not column.required and column.name != spec.dated_by:
            values.loc[at_or_after(column) & ~later, column.name] = None
    keys = pd.Index([])
    if len(spec.primary_key) == 1:
        key = columns[spec.primary_key[0]]
        keys = pd.Index(_parse(raw[key.name], key)[0][later.to_numpy()].dropna())
    kept = ~later.to_numpy()
    files = landed.files
    if files is not None:
        files = np.concatenate([files[:len(kept)][kept], files[len(kept):]])
    cut = Landed(landed.source_file, values[kept].reset_index(drop=True), landed.lines[kept],
                 landed.bad_format, landed.header_width, files, landed.present)
    return cut, keys


def _empty_checked(spec: TableSpec) -> Checked:
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in spec.column_names})
    quarantine = pd.DataFrame(
        columns=["run_id", "table_name", "source_file", "source_line", "reason", "detail", "record"]
    )
    return Checked(spec, "(none)", empty, empty[list(spec.primary_key)], quarantine, 0)


# --- loading --------------------------------------------------------------------------------
def _execute(cur, statement: str, what: str, data: io.StringIO | None = None) -> None:
    try:
        if data is None:
            cur.execute(statement)
        else:
            cur.copy_expert(statement, data)
    except psycopg2.Error as exc:
        message = " ".join(str(exc.pgerror or exc).split())
        raise IngestError(
            f"{what} failed ({message}); the raw tables were left unchanged."
        ) from None


def _load(cur, table: str, columns: list[str], frame: pd.DataFrame) -> None:
    """COPY a frame into a table; valid rows go as their (validated) landing text."""
    buffer = io.StringIO()
    # CRLF row ends: a value holding a CR or LF is then quoted (PostgreSQL refuses a bare CR)
    frame.to_csv(buffer, index=False, header=False, na_rep="", lineterminator="\r\n")
    buffer.seek(0)
    _execute(
        cur,
        f"copy {table} ({', '.join(columns)}) from stdin with (format csv, null '')",
        f"Loading {table}",
        buffer,
    )


def _utc(as_of: datetime | None) -> datetime:
    """The run's time as a naive UTC datetime (naive input is taken as UTC)."""
    if as_of is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return as_of.astimezone(UTC).replace(tzinfo=None) if as_of.tzinfo else as_of


def run_ingest(
    source_dir: Path,
    run_id: str,
    settings: Settings | None = None,
    as_of: datetime | None = None,
    replay: bool = False,
) -> dict[str, dict[str, int]]:
    """Validate and load every landing file of source_dir; counts per table. as_of is the
    run's time (default: now, UTC); rows dated after it are quarantined as future_timestamp.
    A replay loads the files as they stood at as_of instead: rows dated at or after it did not
    exist yet and are left out (counted as `later`, see `cut_as_of`)."""
    settings = settings or get_settings()
    source_dir = Path(source_dir)
    as_of = _utc(as_of)
    if not source_dir.is_dir():
        raise IngestError(
            f"Landing folder {source_dir} does not exist; pass the folder that "
            "holds the <table>.csv files."
        )
    started = time.perf_counter()
    parent_keys: dict[str, pd.Index] = {}
    later_keys: dict[str, pd.Index] = {}
    later_rows: dict[str, int] = {}
    checked_tables: list[Checked] = []
    for table, path in landing_files(source_dir).items():
        spec = TABLES_BY_NAME[table]
        if path is None:
            log.warning("%s: no %s.csv in %s; the table will be empty", table, table, source_dir)
            checked = _empty_checked(spec)
        else:
            landed = read_landing(path, spec)
            if replay:
                rows = len(landed.values)
                landed, later_keys[table] = cut_as_of(landed, spec, as_of, later_keys)
                later_rows[table] = rows - len(landed.values)
            checked = validate(landed, spec, parent_keys, run_id, as_of)
        if len(spec.primary_key) == 1:
            parent_keys[spec.name] = pd.Index(checked.keys[spec.primary_key[0]])
        checked_tables.append(checked)
    validated = time.perf_counter()

    counts: dict[str, dict[str, int]] = {}
    with warehouse.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(SCHEMA_SQL.read_text())
        # Foreign keys are re-created after the load: one bulk check instead of one per row.
        cur.execute(
            "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "from pg_constraint where contype = 'f' "
            "and connamespace = 'raw'::regnamespace order by 1, 2"
        )
        foreign_keys = cur.fetchall()
        for relation, name, _ in foreign_keys:
            cur.execute(f'alter table {relation} drop constraint "{name}"')
        cur.execute("truncate " + ", ".join(f"raw.{t.name}" for t in reversed(TABLES)))
        cur.execute("delete from raw.quarantine where run_id = %s", (run_id,))
        cur.execute("delete from audit.ingest_runs where run_id = %s", (run_id,))
        cur.execute("delete from audit.landing_unread where run_id = %s", (run_id,))
        for path in unread_files(source_dir):
            cur.execute("insert into audit.landing_unread (run_id, path) values (%s, %s)",
                        (run_id, path))
        for checked in checked_tables:
            name = checked.spec.name
            loaded, quarantined = len(checked.loaded), len(checked.quarantine)
            if loaded + quarantined != checked.input_rows:
                raise IngestError(
                    f"{name}: {checked.input_rows} input rows but {loaded} loaded "
                    f"and {quarantined} quarantined; this is a bug in ingest."
                )
            _load(cur, f"raw.{name}", checked.spec.column_names, checked.loaded)
            if quarantined:
                _load(cur, "raw.quarantine", list(checked.quarantine.columns), checked.quarantine)
            cur.execute(
                "insert into audit.ingest_runs (run_id, table_name, source_dir, source_file, "
                "input_rows, loaded_rows, quarantined_rows, as_of, later_rows) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (run_id, name, str(source_dir.resolve()), checked.source_file,
                 checked.input_rows, loaded, quarantined, as_of if replay else None,
                 later_rows.get(name, 0)),
            )
            counts[name] = {
                "input": checked.input_rows,
                "loaded": loaded,
                "quarantined": quarantined,
            }
            if replay:
                counts[name]["later"] = later_rows.get(name, 0)
            log.info(
                "%s: input=%d loaded=%d quarantined=%d",
                name,
                checked.input_rows,
                loaded,
                quarantined,
            )
        for relation, name, definition in foreign_keys:
            _execute(
                cur,
                f'alter table {relation} add constraint "{name}" {definition}',
                f"checking {relation} {name}",
            )
    if replay:
        log.info("Replay as of %s: %d rows dated at or after it were left out (%s)", as_of,
                 sum(later_rows.values()),
                 ", ".join(f"{t} {n}" for t, n in later_rows.items() if n) or "none")
    log.info(
        "Ingest run %s from %s done in %.1fs (validation %.1fs)",
        run_id,
        source_dir,
        time.perf_counter() - started,
        validated - started,
    )
    return counts


def ingest_run(run: Run, settings: Settings | None = None) -> dict[str, dict[str, int]]:
    """The ingest stage of a weekly run: its dataset's landing folder into raw; a replay
    (`as_of` set) loads the files as they stood at the start of that day (UTC)."""
    as_of = run.params.as_of
    if as_of is None:
        return run_ingest(run.source_dir(settings), run.run_id, settings)
    return run_ingest(run.source_dir(settings), run.run_id, settings,
                      as_of=datetime(as_of.year, as_of.month, as_of.day), replay=True)


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, type=Path, help="landing folder")
    parser.add_argument("--run-id", required=True, help="id of this load (audit, quarantine)")
    parser.add_argument(
        "--as-of",
        type=datetime.fromisoformat,
        help="the run's time, e.g. 2026-11-16T00:00 (UTC unless it has an offset; default now)",
    )
    args = parser.parse_args(argv)
    try:
        run_ingest(args.source, args.run_id, as_of=args.as_of)
    except (IngestError, warehouse.WarehouseUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
