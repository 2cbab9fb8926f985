"""Ingest against the bad-input corpus (tests/corpus/cases.py) on the real warehouse.

A refused landing folder must leave raw, quarantine and audit exactly as they were. Through the
whole weekly run, a refused folder and a folder the raw gate stops must leave the published
plan as it was: the run stops at ingest or at the gate and publishes nothing.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from ingest.contract import TABLES
from ingest.load import IngestError, run_ingest
from local.runner import run_weekly
from promoflow import warehouse
from promoflow.settings import PROJECT_ROOT, Settings
from publish.publish import publish_plan
from tests.corpus.cases import CASES, Landing, Loaded, Refused

AS_OF = datetime(2026, 11, 16)  # the plan week's Monday; the tiny market ends on the Sunday before
RAW_STATE = [f"raw.{t.name}" for t in TABLES] + ["raw.quarantine", "audit.ingest_runs"]
PUBLISHED = ["published.plans", "published.plan_lines", "published.plan_targets"]


def _query(settings: Settings, sql: str, params: tuple = ()) -> list[tuple]:
    with warehouse.connect(settings) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _fingerprint(settings: Settings, tables: list[str]) -> dict[str, tuple]:
    """Row count and a hash of the sorted rows of each table."""
    return {
        table: _query(
            settings,
            f"select count(*), md5(string_agg(t::text, '|' order by t::text)) from {table} t",
        )[0]
        for table in tables
    }


def _publish_small_plan(settings: Settings) -> None:
    week = "2026-11-16"
    plan = {
        "run_id": "corpus-plan", "plan_week": week, "dataset": "tiny", "budget": 100.0,
        "max_discount": 0.3, "discount_step": 0.1, "margin_floor": 0.05,
        "max_promos_per_category": 3, "audience_size": 2, "holdout_fraction": 0.5, "seed": 42,
        "products_considered": 2, "products_promoted": 1, "promotion_cost": 12.0,
        "expected_incremental_revenue": 60.0, "expected_incremental_profit": 20.0,
        "solver_status": "Optimal", "mip_gap": 0.0,
    }  # fmt: skip
    lines = pd.DataFrame([{
        "product_id": 10001, "product_name": "Pioneer electronics Max 10001",
        "category": "electronics", "list_price": 36.99, "unit_cost": 16.15,
        "discount_depth": 0.2, "promo_price": 29.59, "on_hand_units": 16,
        "baseline_units_p50": 4.0, "units_p10": 4.0, "units_p50": 6.0, "units_p90": 8.0,
        "expected_units": 6.0, "promotion_cost": 12.0, "incremental_revenue": 60.0,
        "incremental_profit": 20.0, "binding_constraint": "budget",
    }])  # fmt: skip
    targets = pd.DataFrame({
        "product_id": [10001, 10001], "customer_id": [1, 2], "score": [0.9, 0.8],
        "rank": [1, 2], "assignment": ["treatment", "holdout"], "channel": ["email", "email"],
    })  # fmt: skip
    forecasts = pd.DataFrame({
        "product_id": [10001, 10001], "discount_depth": [0.0, 0.2], "units_p10": [3.0, 4.0],
        "units_p50": [4.0, 6.0], "units_p90": [5.0, 8.0],
    })  # fmt: skip
    metrics = pd.DataFrame([{
        "model": "forecaster", "metric": "wape", "model_value": 0.3,
        "baseline": "seasonal_naive", "baseline_value": 0.4,
    }])  # fmt: skip
    publish_plan(plan, lines, targets, forecasts, metrics, settings=settings)


def _first_contract(path: Path) -> None:
    """The cases are written for the first release of the contract: orders without store_id
    and no stores or contact_consents file. Such a folder must still load (the column and the
    files are optional)."""
    orders = path / "orders.csv"
    lines = orders.read_text().splitlines()
    assert lines[0].endswith(",store_id")
    orders.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))
    (path / "stores.csv").unlink()
    (path / "contact_consents.csv").unlink()


@pytest.fixture(scope="module")
def clean(
    settings: Settings, tiny_landing: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, int]]:
    """The clean tiny market loaded, and a plan published; the counts of the clean load."""
    _publish_small_plan(settings)
    landing = Path(shutil.copytree(tiny_landing, tmp_path_factory.mktemp("corpus") / "clean"))
    _first_contract(landing)
    return run_ingest(landing, "corpus-clean", settings, as_of=AS_OF)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(
    name: str,
    settings: Settings,
    tiny_landing: Path,
    tmp_path: Path,
    clean: dict[str, dict[str, int]],
) -> None:
    landing = Landing(Path(shutil.copytree(tiny_landing, tmp_path / "landing")))
    _first_contract(landing.path)
    expected = CASES[name](landing)
    run_id = f"corpus-{name}"
    if isinstance(expected, Refused):
        before = _fingerprint(settings, RAW_STATE)
        with pytest.raises(IngestError) as error:
            run_ingest(landing.path, run_id, settings, as_of=AS_OF)
        message = str(error.value)
        assert message == expected.message
        assert message.endswith(".") and not re.search(r"\.\s+\S", message)  # one sentence
        assert _fingerprint(settings, RAW_STATE) == before
    else:
        assert isinstance(expected, Loaded)
        counts = run_ingest(landing.path, run_id, settings, as_of=AS_OF)
        rows = _query(
            settings,
            "select table_name, source_file, source_line, reason, detail from raw.quarantine "
            "where run_id = %s order by table_name, source_line",
            (run_id,),
        )
        assert {(t, line, reason) for t, _, line, reason, _ in rows} == {
            (r.table, r.line, r.reason) for r in expected.quarantined
        }
        details = {(t, line): (file, detail) for t, file, line, _, detail in rows}
        for r in expected.quarantined:
            source_file, detail = details[(r.table, r.line)]
            assert source_file == (r.file or f"{r.table}.csv") and r.detail in detail, (r, detail)
        audit = _query(
            settings,
            "select table_name, input_rows, loaded_rows, quarantined_rows "
            "from audit.ingest_runs where run_id = %s",
            (run_id,),
        )
        assert {t: tuple(c.values()) for t, c in counts.items()} == {t: tuple(n) for t, *n in audit}
        for spec in TABLES:
            c = counts[spec.name]
            quarantined = sum(r.table == spec.name for r in expected.quarantined)
            assert c["input"] == clean[spec.name]["input"] + expected.added.get(spec.name, 0)
            assert c["input"] == c["loaded"] + c["quarantined"], spec.name
            assert c["quarantined"] == quarantined, spec.name
            assert _query(settings, f"select count(*) from raw.{spec.name}")[0][0] == c["loaded"]


def _task_states(settings: Settings, dataset: str) -> dict[str, str | None]:
    """The task states of the dataset's latest weekly run in Airflow's metadata database."""
    with warehouse.connect(replace(settings, pg_db=f"{settings.pg_db}_airflow")) as conn, \
            conn.cursor() as cur:
        cur.execute("select t.task_id, t.state from task_instance t join dag_run r using "
                    "(dag_id, run_id) where r.dag_id = 'promo_weekly' and r.conf->>'dataset' = %s "
                    "and r.id = (select max(id) from dag_run where dag_id = 'promo_weekly' "
                    "and conf->>'dataset' = %s)", (dataset, dataset))
        return dict(cur.fetchall())


def _quarantine_a_tenth_of_the_order_lines(landing: Landing) -> Loaded:
    header, *rows = landing.lines("order_lines")
    rows = [row.replace(",1,", ",one,", 1) if k % 10 == 0 else row for k, row in enumerate(rows)]
    landing.write("order_lines", "\n".join([header, *rows]) + "\n")
    return Loaded()


@pytest.mark.integration
@pytest.mark.parametrize(("corrupt", "stopped_by"), [
    (CASES["not_utf8"], "ingest"),  # refused: the load raises
    (_quarantine_a_tenth_of_the_order_lines, "check_raw"),  # loads, beyond the quarantine limit
])
def test_a_bad_folder_stops_the_weekly_run_before_anything_is_published(
    corrupt, stopped_by: str, settings: Settings, tiny_landing: Path, clean: dict
) -> None:
    dataset = f"corpus_{stopped_by}"
    landing = Landing(Path(shutil.copytree(tiny_landing, settings.landing_dir / dataset)))
    expected = corrupt(landing)
    published = _fingerprint(settings, PUBLISHED)
    assert all(count > 0 for count, _ in published.values())
    with pytest.raises(SystemExit) as stop:
        run_weekly({"dataset": dataset, "budget": 100.0, "epochs": 0, "seed": 42}, settings)
    # the run ends with the failed task's own sentence
    message = str(stop.value)
    assert message.startswith(f"error: task {stopped_by} of promo_weekly failed: ")
    if isinstance(expected, Refused):
        assert message.endswith(f"IngestError: {expected.message}")
    states = _task_states(settings, dataset)
    assert states[stopped_by] == "failed"
    assert states["publish"] in (None, "upstream_failed")
    assert _fingerprint(settings, PUBLISHED) == published


def test_the_contract_lists_every_case() -> None:
    text = (PROJECT_ROOT / "docs" / "raw_contract.md").read_text()
    section = text.split("## Bad-input corpus", 1)[1]
    listed = re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE)
    assert listed == list(CASES)
