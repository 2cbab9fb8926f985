"""Ingest: accounting, quarantine reason codes, contract errors and safe reruns."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from ingest.contract import TABLES
from ingest.load import IngestError, _utc, landing_files, main, run_ingest
from promoflow import warehouse
from promoflow.settings import Settings


def _query(settings: Settings, sql: str, params: tuple = ()) -> list[tuple]:
    with warehouse.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


AS_OF = datetime(2026, 11, 16)  # the plan week's Monday; the tiny market ends the day before
STATE = [f"raw.{t.name}" for t in TABLES] + ["raw.quarantine", "audit.ingest_runs"]


def _state(settings: Settings) -> dict[str, tuple]:
    """Count and hash of the rows of raw, quarantine and audit, and raw's constraints."""
    state = {
        table: _query(
            settings,
            f"select count(*), md5(string_agg(t::text, '|' order by t::text)) from {table} t",
        )[0]
        for table in STATE
    }
    state["constraints"] = _query(
        settings,
        "select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint "
        "where connamespace = 'raw'::regnamespace order by 1, 2",
    )
    return state


def _raw_counts(settings: Settings) -> dict[str, int]:
    return {t.name: _query(settings, f"select count(*) from raw.{t.name}")[0][0] for t in TABLES}


def _copy_landing(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _append(path: Path, *lines: str) -> int:
    """Append lines to a CSV; the 1-based line number of the first appended line."""
    text = path.read_text()
    first = text.count("\n") + 1
    path.write_text(text + "".join(line + "\n" for line in lines))
    return first


def test_tiny_loads_completely(settings: Settings, tiny_landing: Path) -> None:
    counts = run_ingest(tiny_landing, "tiny-ok", settings)
    assert list(counts) == [t.name for t in TABLES]
    for table, c in counts.items():
        assert c["input"] == c["loaded"] + c["quarantined"]
        assert c["quarantined"] == 0, table
        path = tiny_landing / f"{table}.csv"
        lines = path.read_text().count("\n") - 1 if path.exists() else 0  # no file: optional
        assert c["input"] == lines
    assert not (tiny_landing / "campaign_contacts.csv").exists()  # the history has no send log
    assert _raw_counts(settings) == {t: c["loaded"] for t, c in counts.items()}
    audit = _query(
        settings,
        "select table_name, input_rows, loaded_rows, quarantined_rows "
        "from audit.ingest_runs where run_id = 'tiny-ok'",
    )
    assert {row[0]: row[1:] for row in audit} == {
        t: (c["input"], c["loaded"], c["quarantined"]) for t, c in counts.items()
    }
    guests = _query(settings, "select count(*) from raw.orders where customer_id is null")[0][0]
    returns = _query(settings, "select count(*) from raw.order_lines where quantity < 0")[0][0]
    assert guests > 0 and returns > 0


def test_raw_tables_match_the_contract(settings: Settings, tiny_landing: Path) -> None:
    run_ingest(tiny_landing, "tiny-contract", settings)
    for spec in TABLES:
        columns = _query(
            settings,
            "select column_name from information_schema.columns "
            "where table_schema = 'raw' and table_name = %s "
            "order by ordinal_position",
            (spec.name,),
        )
        assert [c[0] for c in columns] == spec.column_names


def test_bad_rows_are_quarantined_with_reasons(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    landing = _copy_landing(tiny_landing, tmp_path / "bad")
    customers = (landing / "customers.csv").read_text().splitlines()
    dup_line = _append(landing / "customers.csv", customers[1])  # duplicate_key
    _append(landing / "customers.csv", "999001,2026-01-01,north,,fax")  # not_allowed
    neg_line = _append(landing / "products.csv", "999002,Broken,toys,Acme,-5.00,1.00")  # range
    date_line = _append(
        landing / "orders.csv",
        "999003,1,yesterday,web,",  # bad_type
        "999004,999999,2026-01-05 10:00:00,web,",  # orphan_customer
        "999005,,2026-01-05 10:00:00",  # bad_format
        "999006,,,app,",  # null_required
        "999007,1,2026-01-05 10:00:00,store,77",  # orphan_store
    )
    tz_line = _append(landing / "stores.csv", "9,Atlantis store,,Atlantis/Lost",  # out_of_range
                      "10,Server store,,localtime")  # the server's zone, not a place: too
    orphan_line = _append(
        landing / "order_lines.csv",
        "99999999,1,10001,1,9.99,9.99,",  # orphan_order
        "1,99,55555,1,9.99,9.99,",  # orphan_product
        "1,98,10001,0,9.99,9.99,",  # out_of_range
    )
    counts = run_ingest(landing, "bad-run", settings)

    rows = _query(
        settings,
        "select table_name, source_line, reason, detail, record "
        "from raw.quarantine where run_id = 'bad-run' "
        "order by table_name, source_line",
    )
    got = {(t, line, reason) for t, line, reason, _, _ in rows}
    assert got == {
        ("customers", dup_line, "duplicate_key"),
        ("customers", dup_line + 1, "not_allowed"),
        ("products", neg_line, "out_of_range"),
        ("orders", date_line, "bad_type"),
        ("orders", date_line + 1, "orphan_customer"),
        ("orders", date_line + 2, "bad_format"),
        ("orders", date_line + 3, "null_required"),
        ("orders", date_line + 4, "orphan_store"),
        ("stores", tz_line, "out_of_range"),
        ("stores", tz_line + 1, "out_of_range"),
        ("order_lines", orphan_line, "orphan_order"),
        ("order_lines", orphan_line + 1, "orphan_product"),
        ("order_lines", orphan_line + 2, "out_of_range"),
    }
    details = {(t, line): (detail, record) for t, line, _, detail, record in rows}
    detail, record = details[("orders", date_line)]
    assert "ordered_at='yesterday'" in detail and record["ordered_at"] == "yesterday"
    assert "list_price='-5.00' must be > 0" in details[("products", neg_line)][0]
    assert "is not an IANA time zone name" in details[("stores", tz_line)][0]
    expected_quarantined = {
        "customers": 2,
        "products": 1,
        "orders": 5,
        "stores": 2,
        "order_lines": 3,
        "promotions": 0,
        "inventory": 0,
        "holidays": 0,
        "campaign_contacts": 0,
        "contact_consents": 0,
    }
    for table, c in counts.items():
        assert c["quarantined"] == expected_quarantined[table], table
        assert c["input"] == c["loaded"] + c["quarantined"]
    clean = run_ingest(tiny_landing, "tiny-clean", settings)
    assert {t: c["input"] + expected_quarantined[t] for t, c in clean.items()} == {
        t: c["input"] for t, c in counts.items()
    }

    # a rerun of the same run id replaces its quarantine and audit rows
    run_ingest(landing, "bad-run", settings)
    again = _query(settings, "select count(*) from raw.quarantine where run_id = 'bad-run'")
    assert again[0][0] == sum(expected_quarantined.values())
    audit = _query(settings, "select count(*) from audit.ingest_runs where run_id = 'bad-run'")
    assert audit[0][0] == len(TABLES)


def test_missing_file_or_column_is_a_clear_error(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    run_ingest(tiny_landing, "before-errors", settings)
    before = _raw_counts(settings)

    missing_file = _copy_landing(tiny_landing, tmp_path / "no_lines")
    (missing_file / "order_lines.csv").unlink()
    with pytest.raises(IngestError, match=r"order_lines\.csv is missing"):
        run_ingest(missing_file, "err", settings)

    missing_column = _copy_landing(tiny_landing, tmp_path / "no_quantity")
    frame = pd.read_csv(missing_column / "order_lines.csv", dtype=str)
    frame.drop(columns="quantity").to_csv(missing_column / "order_lines.csv", index=False)
    with pytest.raises(IngestError, match=r"order_lines\.csv lacks the column\(s\) quantity"):
        run_ingest(missing_column, "err", settings)
    assert main(["--source", str(missing_column), "--run-id", "err"]) == 2
    assert _raw_counts(settings) == before


def test_optional_holidays_and_parquet(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    landing = _copy_landing(tiny_landing, tmp_path / "variant")
    (landing / "holidays.csv").unlink()
    customers = pd.read_csv(landing / "customers.csv", parse_dates=["signup_date"])
    customers["signup_date"] = customers["signup_date"].dt.date
    customers.to_parquet(landing / "customers.parquet", index=False)
    (landing / "customers.csv").unlink()
    counts = run_ingest(landing, "variant", settings)
    assert counts["holidays"] == {"input": 0, "loaded": 0, "quarantined": 0}
    assert counts["customers"] == {
        "input": len(customers),
        "loaded": len(customers),
        "quarantined": 0,
    }
    assert counts["orders"]["quarantined"] == 0


def test_campaign_contacts_load_and_quarantine(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    """The optional send log: valid messages load; an unknown customer or product, a channel
    outside the contract and a message sent after the run's time are quarantined."""
    landing = _copy_landing(tiny_landing, tmp_path / "contacts")
    c1, c2 = pd.read_csv(landing / "customers.csv")["customer_id"].iloc[:2]
    p1, p2 = pd.read_csv(landing / "products.csv")["product_id"].iloc[:2]
    (landing / "campaign_contacts.csv").write_text(
        "customer_id,product_id,sent_at,channel\n"
        f"{c1},{p1},2026-11-09 08:00:00,email\n"
        f"{c2},{p1},2026-11-09 08:00:00,sms\n"
        f"{c1},{p1},2026-11-10 08:00:00,app_push\n"  # the same pair again later: another message
        f"999999,{p1},2026-11-09 08:00:00,email\n"  # orphan_customer (line 5)
        f"{c2},{p2},2026-11-09 08:00:00,fax\n"  # not_allowed (line 6)
        f"{c2},55555,2026-11-09 08:00:00,email\n"  # orphan_product (line 7)
        f"{c2},{p2},2026-11-16 08:00:00,email\n"  # future_timestamp (line 8)
    )
    counts = run_ingest(landing, "contacts", settings, as_of=AS_OF)
    assert counts["campaign_contacts"] == {"input": 7, "loaded": 3, "quarantined": 4}
    for table, c in counts.items():
        assert c["input"] == c["loaded"] + c["quarantined"], table
        assert c["quarantined"] == 0 or table == "campaign_contacts", table
    rows = _query(
        settings,
        "select source_line, reason, detail from raw.quarantine "
        "where run_id = 'contacts' and table_name = 'campaign_contacts' order by source_line",
    )
    assert [(line, reason) for line, reason, _ in rows] == [
        (5, "orphan_customer"), (6, "not_allowed"), (7, "orphan_product"),
        (8, "future_timestamp")]
    assert "channel='fax' is not one of email, app_push, sms" in rows[1][2]
    loaded = _query(
        settings,
        "select customer_id, product_id, sent_at::text, channel from raw.campaign_contacts "
        "order by 1, 2, 3",
    )
    assert loaded == sorted([
        (c1, p1, "2026-11-09 08:00:00", "email"),
        (c2, p1, "2026-11-09 08:00:00", "sms"),
        (c1, p1, "2026-11-10 08:00:00", "app_push"),
    ])
    audit = _query(
        settings,
        "select input_rows, loaded_rows, quarantined_rows, source_file from audit.ingest_runs "
        "where run_id = 'contacts' and table_name = 'campaign_contacts'",
    )
    assert audit == [(7, 3, 4, "campaign_contacts.csv")]


def test_contact_consents_load_and_quarantine(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    """The optional consent log: valid periods load (a withdrawn one, a second period of the
    same channel, a withdrawal at the very moment of consent); an unknown customer, a channel
    outside the contract, a withdrawal before the consent and a consent after the run's time
    are quarantined."""
    landing = _copy_landing(tiny_landing, tmp_path / "consents")
    c1, c2 = pd.read_csv(landing / "customers.csv")["customer_id"].iloc[:2]
    (landing / "contact_consents.csv").write_text(
        "customer_id,channel,consented_at,withdrawn_at\n"
        f"{c1},email,2025-03-01 09:00:00,2025-09-01 10:00:00\n"
        f"{c1},email,2026-01-05 08:00:00,\n"  # given again: another period
        f"{c2},sms,2026-02-01 12:00:00,2026-02-01 12:00:00\n"  # withdrawn at once
        f"999999,email,2025-03-01 09:00:00,\n"  # orphan_customer (line 5)
        f"{c2},fax,2025-03-01 09:00:00,\n"  # not_allowed (line 6)
        f"{c2},app_push,2026-03-01 09:00:00,2026-02-01 09:00:00\n"  # out_of_range (line 7)
        f"{c2},email,2026-11-16 08:00:00,\n"  # future_timestamp (line 8)
        f"{c2},email,2026-01-01 08:00:00,2026-11-17 08:00:00\n"  # future_timestamp (line 9)
    )
    counts = run_ingest(landing, "consents", settings, as_of=AS_OF)
    assert counts["contact_consents"] == {"input": 8, "loaded": 3, "quarantined": 5}
    for table, c in counts.items():
        assert c["input"] == c["loaded"] + c["quarantined"], table
        assert c["quarantined"] == 0 or table == "contact_consents", table
    rows = _query(
        settings,
        "select source_line, reason, detail from raw.quarantine "
        "where run_id = 'consents' and table_name = 'contact_consents' order by source_line",
    )
    assert [(line, reason) for line, reason, _ in rows] == [
        (5, "orphan_customer"), (6, "not_allowed"), (7, "out_of_range"),
        (8, "future_timestamp"), (9, "future_timestamp")]
    assert "channel='fax' is not one of email, app_push, sms" in rows[1][2]
    assert "withdrawn_at='2026-02-01 09:00:00' must not be before consented_at" in rows[2][2]
    loaded = _query(
        settings,
        "select customer_id, channel, consented_at::text, withdrawn_at::text "
        "from raw.contact_consents order by 1, 2, 3",
    )
    assert loaded == sorted([
        (c1, "email", "2025-03-01 09:00:00", "2025-09-01 10:00:00"),
        (c1, "email", "2026-01-05 08:00:00", None),
        (c2, "sms", "2026-02-01 12:00:00", "2026-02-01 12:00:00"),
    ])
    audit = _query(
        settings,
        "select input_rows, loaded_rows, quarantined_rows, source_file from audit.ingest_runs "
        "where run_id = 'consents' and table_name = 'contact_consents'",
    )
    assert audit == [(8, 3, 5, "contact_consents.csv")]
    # without the file the table is empty (preferred channels then count as consent)
    (landing / "contact_consents.csv").unlink()
    counts = run_ingest(landing, "no-consents", settings, as_of=AS_OF)
    assert counts["contact_consents"] == {"input": 0, "loaded": 0, "quarantined": 0}
    assert _query(settings, "select count(*) from raw.contact_consents") == [(0,)]


def test_quoted_line_breaks_keep_exact_line_numbers(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    landing = _copy_landing(tiny_landing, tmp_path / "quoted")
    first = _append(
        landing / "products.csv",
        '999007,"Two\nLines, quoted",toys,Acme,5.00,1.00',
        "999008,Bad price,toys,Acme,abc,1.00",
    )
    counts = run_ingest(landing, "quoted", settings)
    assert counts["products"]["quarantined"] == 1
    rows = _query(
        settings, "select source_line, reason from raw.quarantine where run_id = 'quoted'"
    )
    assert rows == [(first + 2, "bad_type")]
    name = _query(settings, "select product_name from raw.products where product_id = 999007")
    assert name == [("Two\nLines, quoted",)]


def test_a_failure_inside_the_load_leaves_raw_as_the_last_run_left_it(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    landing = _copy_landing(tiny_landing, tmp_path / "bad")
    _append(landing / "orders.csv", "999001,1,2026-01-05 10:00:00,fax,")
    run_ingest(landing, "last-good", settings, as_of=AS_OF)
    before = _state(settings)
    assert before["raw.quarantine"][0] > 0 and before["audit.ingest_runs"][0] > 0
    # the last table loaded fails inside the transaction (a real PostgreSQL error)
    with warehouse.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(
            "create function raw.refuse_load() returns trigger language plpgsql as "
            "$$ begin raise exception 'inventory is read-only'; end $$; "
            "create trigger refuse_load before insert on raw.inventory "
            "for each row execute function raw.refuse_load()"
        )
    try:
        with pytest.raises(IngestError, match=r"^Loading raw\.inventory failed \(ERROR: inventory"):
            run_ingest(tiny_landing, "last-good", settings, as_of=AS_OF)  # same run id
    finally:
        with warehouse.connect(settings) as conn, conn.cursor() as cur:
            cur.execute("drop function raw.refuse_load() cascade")
    assert _state(settings) == before


def test_a_rerun_replaces_its_audit_and_quarantine_rows(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    landing = _copy_landing(tiny_landing, tmp_path / "bad")
    line = _append(landing / "orders.csv", "999001,1,2026-11-20 10:00:00,web,")
    args = ["--source", str(landing), "--run-id", "rerun", "--as-of", "2026-11-16T00:00"]
    assert main(args) == 0
    assert main(args) == 0
    audit = "select table_name, quarantined_rows from audit.ingest_runs where run_id = 'rerun'"
    assert sorted(_query(settings, audit)) == sorted(
        (t.name, int(t.name == "orders")) for t in TABLES
    )
    quarantine = "select source_line, reason from raw.quarantine where run_id = 'rerun'"
    assert _query(settings, quarantine) == [(line, "future_timestamp")]
    run_ingest(tiny_landing, "rerun", settings, as_of=AS_OF)
    assert sorted(_query(settings, audit)) == sorted((t.name, 0) for t in TABLES)
    assert _query(settings, quarantine) == []


def test_as_of_is_naive_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert _utc(datetime(2026, 11, 16, 1, 0, tzinfo=plus_two)) == datetime(2026, 11, 15, 23, 0)
    assert _utc(AS_OF) == AS_OF
    assert _utc(None).tzinfo is None


def test_files_the_load_does_not_read_are_named_in_a_warning(
    tiny_landing: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landing = Path(shutil.copytree(tiny_landing, tmp_path / "landing"))
    (landing / "orders_2.csv").write_text((landing / "orders.csv").read_text())
    (landing / "extra").mkdir()
    (landing / ".hidden").write_text("")
    (landing / "import_report.json").write_text("{}")
    with caplog.at_level("WARNING", logger="ingest.load"):
        files = landing_files(landing)
    assert files["orders"] == landing / "orders.csv"
    warnings = [r.getMessage() for r in caplog.records if "not read" in r.getMessage()]
    assert len(warnings) == 1 and ": extra, orders_2.csv not read" in warnings[0]


def test_unread_files_are_kept_in_the_audit_for_the_run_summary(
    settings: Settings, tiny_landing: Path, tmp_path: Path
) -> None:
    from local.runner import landing_lines

    landing = Path(shutil.copytree(tiny_landing, tmp_path / "landing"))
    (landing / "orders_2.csv").write_text((landing / "orders.csv").read_text())
    (landing / "promotions").mkdir()
    (landing / "promotions.csv").rename(landing / "promotions" / "part-0.csv")
    (landing / "promotions" / "readme.txt").write_text("one part\n")
    (landing / "promotions" / "_SUCCESS").write_text("")
    counts = run_ingest(landing, "unread", settings, as_of=AS_OF)
    assert counts["promotions"]["loaded"] == len((tiny_landing / "promotions.csv")
                                                 .read_text().splitlines()) - 1
    assert _query(settings, "select path from audit.landing_unread where run_id = 'unread' "
                  "order by path") == [("orders_2.csv",), ("promotions/readme.txt",)]
    (line,) = landing_lines("unread", settings)
    assert "not read: orders_2.csv, promotions/readme.txt" in line
    (landing / "orders_2.csv").unlink()
    run_ingest(landing, "unread", settings, as_of=AS_OF)  # a rerun replaces the run's record
    assert _query(settings, "select path from audit.landing_unread where run_id = 'unread'") == [
        ("promotions/readme.txt",)]
    run_ingest(tiny_landing, "clean-again", settings, as_of=AS_OF)
    assert landing_lines("clean-again", settings) == []


def test_parts_are_read_in_the_order_of_their_numbers(tiny_landing: Path, tmp_path: Path) -> None:
    from ingest.contract import TABLES_BY_NAME
    from ingest.load import read_landing, validate

    folder = tmp_path / "products"
    folder.mkdir()
    header, first, *rest = (tiny_landing / "products.csv").read_text().splitlines()
    (folder / "part-2.csv").write_text("\n".join([header, first, *rest]) + "\n")
    (folder / "part-10.csv").write_text(f"{header}\n{first.replace(',', ',renamed ', 1)}\n")
    spec = TABLES_BY_NAME["products"]
    checked = validate(read_landing(folder, spec), spec, {}, "t", AS_OF)
    (row,) = checked.quarantine.itertuples()
    assert (row.source_file, row.source_line, row.reason) == ("products/part-10.csv", 2,
                                                              "duplicate_key")
    assert "renamed" not in " ".join(checked.loaded["product_name"])
