"""The BI dashboard shipped as code (bi/dashboard.yml): a valid spec whose every card's SQL
runs as the read-only BI role against a warehouse with a published, measured plan and returns
the columns the card declares; the provisioning script's Metabase payloads and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bi import provision_metabase as pm
from local.roles import as_role
from promoflow.warehouse import connect
from tests.report.conftest import DATASET, PLAIN_RUN

#: cards that show the current plan, and those that show measured weeks
CURRENT = {"Current plan", "Budget use by category", "Binding constraints",
           "Expected effect per line"}
MEASURED = {"Planned against realized profit per plan week", "Forecast accuracy per plan week",
            "Treatment against holdout"}


def test_the_spec_is_valid():
    spec = pm.load_spec()
    assert spec["dashboard"]["name"] == "Promotion plan"
    assert {card["name"] for card in spec["cards"]} == CURRENT | MEASURED
    for card in spec["cards"]:
        assert "published." in card["sql"] and "published_staging" not in card["sql"]


@pytest.mark.integration
def test_every_card_runs_as_the_bi_role_with_its_columns(settings, roles, published):
    _, bi = roles
    spec = pm.load_spec()
    with connect(as_role(settings, bi)) as conn, conn.cursor() as cur:
        for card in spec["cards"]:
            cur.execute(card["sql"])
            rows = cur.fetchall()
            assert [c.name for c in cur.description] == card["columns"], card["name"]
            assert rows, f"{card['name']} returned no row"
        cur.execute(next(c["sql"] for c in spec["cards"] if c["name"] == "Current plan"))
        current = {row[0]: row[2] for row in cur.fetchall()}
    assert current[DATASET] == PLAIN_RUN  # the dataset's latest plan week


def _write(tmp_path: Path, change) -> Path:
    spec = yaml.safe_load(pm.SPEC.read_text())
    change(spec)
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda s: s["cards"][1]["position"].update(row=0), "overlap"),
    (lambda s: s["cards"][0].update(display="gauge3d"), "has display 'gauge3d'"),
    (lambda s: s["cards"][0].pop("columns"), "needs its sql and its columns"),
    (lambda s: s["cards"][2]["position"].update(col=20), "outside the 24-column grid"),
    (lambda s: s["cards"].append(dict(s["cards"][0])), "is not the only one so named"),
    (lambda s: s.pop("database"), "needs database.name"),
])
def test_a_bad_spec_is_refused_in_one_sentence(tmp_path, change, message):
    with pytest.raises(pm.ProvisionError, match=message):
        pm.load_spec(_write(tmp_path, change))


def test_metabase_payloads():
    spec = pm.load_spec()
    card = spec["cards"][1]
    payload = pm.card_payload(card, database_id=7)
    assert payload["dataset_query"] == {"type": "native", "database": 7, "native": {
        "query": card["sql"], "template-tags": {}}}
    assert payload["display"] == "bar"
    assert payload["visualization_settings"]["graph.metrics"] == ["promotion_cost"]
    ids = {c["name"]: 100 + i for i, c in enumerate(spec["cards"])}
    # a card already on the dashboard keeps its dashcard; a removed one is dropped
    existing = [{"id": 55, "card_id": 101}, {"id": 56, "card_id": 999}]
    dashcards = pm.dashcards_payload(spec["cards"], ids, existing)
    assert [d["card_id"] for d in dashcards] == list(ids.values())
    assert dashcards[1]["id"] == 55
    assert sorted(d["id"] for d in dashcards if d["id"] < 0) == sorted(
        -n for n in range(1, len(ids) + 1) if n != 2)
    assert (dashcards[0]["col"], dashcards[0]["size_x"]) == (0, 24)
    database = pm.database_payload(spec, {"PROMO_BI_PASSWORD": "pw"})
    assert database["details"]["user"] == "promo_bi"
    assert database["details"]["schema-filters-patterns"] == "published"
    with pytest.raises(pm.ProvisionError, match="PROMO_BI_PASSWORD is not set"):
        pm.database_payload(spec, {})


def test_the_script_refuses_without_the_admin_password(monkeypatch, capsys):
    monkeypatch.delenv("PROMO_METABASE_PASSWORD", raising=False)
    assert pm.main(["--url", "http://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.strip() == (
        "provision_metabase: PROMO_METABASE_PASSWORD is not set; give the Metabase admin's "
        "password (it is set on the first run).")


def test_an_unreachable_metabase_is_named(monkeypatch, capsys):
    monkeypatch.setenv("PROMO_METABASE_PASSWORD", "x")
    monkeypatch.setenv("PROMO_BI_PASSWORD", "y")
    assert pm.main(["--url", "http://127.0.0.1:9", "--wait", "0"]) == 2
    assert "did not answer healthy within 0 s" in capsys.readouterr().err
