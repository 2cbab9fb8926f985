"""A replay loads the landing files as they stood at its as-of time: what came later is left
out, counted, and the rest loads exactly as a load made then."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from ingest.contract import TABLES
from ingest.load import run_ingest
from promoflow import warehouse
from promoflow.run import Run, RunConfigError, RunParams, backfill_values
from promoflow.settings import Settings

AS_OF = datetime(2026, 11, 16)  # the Monday after the tiny market's last day


def _query(settings: Settings, sql: str, params: tuple = ()) -> list[tuple]:
    with warehouse.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _raw(settings: Settings) -> dict[str, tuple]:
    return {t.name: _query(settings, f"select count(*), md5(string_agg(r::text, '|' "
                                     f"order by r::text)) from raw.{t.name} r")[0]
            for t in TABLES}


def _append(path: Path, *lines: str) -> None:
    path.write_text(path.read_text() + "".join(line + "\n" for line in lines))


def _deliver_as_parts(then: Path, now: Path, table: str) -> None:
    """now/<table>.csv as a folder of parts: the file as it was then, and a part of the rest."""
    old = (then / f"{table}.csv").read_text()
    new = (now / f"{table}.csv").read_text()
    assert new.startswith(old)
    (now / table).mkdir()
    (now / f"{table}.csv").rename(now / table / "part-0.csv")
    (now / table / "part-0.csv").write_text(old)
    (now / table / "part-1.csv").write_text(old.splitlines(keepends=True)[0] + new[len(old):])


@pytest.mark.integration
@pytest.mark.parametrize("parts", [False, True], ids=["files", "later-rows-in-a-second-part"])
def test_a_replay_loads_only_what_existed_at_its_time(settings: Settings, tiny_landing: Path,
                                                       tmp_path: Path, parts: bool) -> None:
    then = tmp_path / "then"
    shutil.copytree(tiny_landing, then)
    consents = pd.read_csv(then / "contact_consents.csv", dtype=str, keep_default_na=False)
    open_row = consents.index[consents["withdrawn_at"] == ""][0]
    counts = run_ingest(then, "as-it-was", settings, as_of=AS_OF)
    before = _raw(settings)

    now = tmp_path / "now"  # the same folder weeks later: a delivery and a withdrawal more
    shutil.copytree(then, now)
    customer = int(consents.loc[open_row, "customer_id"])
    _append(now / "customers.csv", "990001,2026-11-16,north,25-34,email")
    _append(now / "orders.csv", f"990001,{customer},2026-11-16 00:00:00,web,",
            "990002,990001,2026-11-17 10:00:00,app,")
    product = pd.read_csv(now / "products.csv")["product_id"].iloc[0]
    _append(now / "order_lines.csv", f"990001,1,{product},1,9.99,9.99,",
            f"990002,1,{product},2,9.99,8.99,990001")
    _append(now / "promotions.csv", f"990001,{product},2026-11-16,2026-11-22,0.1000,price_cut")
    _append(now / "inventory.csv", f"{product},2026-11-22,7")
    consents.loc[open_row, "withdrawn_at"] = "2026-11-18 09:00:00"
    consents.to_csv(now / "contact_consents.csv", index=False)
    if parts:
        for table in ("orders", "order_lines"):
            _deliver_as_parts(then, now, table)

    replayed = run_ingest(now, "replay", settings, as_of=AS_OF, replay=True)
    assert _raw(settings) == before
    assert {t: c["later"] for t, c in replayed.items() if c["later"]} == {
        "customers": 1, "orders": 2, "order_lines": 2, "promotions": 1, "inventory": 1}
    assert {t: c["input"] for t, c in replayed.items()} == {t: c["input"]
                                                           for t, c in counts.items()}
    audit = _query(settings, "select table_name, as_of, later_rows, input_rows, loaded_rows "
                   "+ quarantined_rows from audit.ingest_runs where run_id = 'replay'")
    for table, as_of, later, inputs, accounted in audit:
        assert as_of == AS_OF and later == replayed[table]["later"] and inputs == accounted
    # without the replay, the same folder loads what came later (the future is quarantined)
    live = run_ingest(now, "live", settings, as_of=datetime(2026, 12, 1))
    assert live["orders"]["loaded"] == counts["orders"]["loaded"] + 2


def test_backfill_runs_plan_the_week_of_their_logical_date_as_of_then() -> None:
    values = backfill_values({"dataset": "tiny", "plan_week": ""},
                             datetime(2026, 11, 18, 6).date())
    assert values["plan_week"] == "2026-11-16" and values["as_of"] == "2026-11-16"
    params = RunParams.from_mapping(values)
    assert Run("r", params).to_dict()["as_of"] == "2026-11-16"
    with pytest.raises(RunConfigError, match="as_of 2026-11-23 is after the plan week"):
        RunParams(plan_week="2026-11-16", as_of="2026-11-23")
    with pytest.raises(RunConfigError, match="as_of '2026-11-17' .*Monday|not a Monday"):
        RunParams(as_of="2026-11-17")
