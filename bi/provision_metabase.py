"""Provision the promotion-plan dashboard of bi/dashboard.yml in a Metabase, through its REST API.

    PROMO_METABASE_PASSWORD=... PROMO_BI_PASSWORD=... python bi/provision_metabase.py \
        [--url http://localhost:3000] [--spec bi/dashboard.yml]

On a fresh Metabase it creates the admin user with the setup token (`/api/setup`); later runs
log in with the same user. Then, each found by name and updated in place (a rerun changes
nothing else): the warehouse connection as the read-only BI role (schema `published` only),
one native SQL question per card, and the dashboard with the cards at their positions.

Settings come from the environment (the `metabase-provision` service of docker-compose.yml):
PROMO_METABASE_URL (http://localhost:3000), PROMO_METABASE_EMAIL (admin@promoflow.local),
PROMO_METABASE_PASSWORD (required: the admin's password), PROMO_BI_HOST (postgres; the
warehouse as Metabase reaches it), PROMO_BI_PORT (5432), PROMO_PG_DB (promo), PROMO_BI_USER
(promo_bi) and PROMO_BI_PASSWORD (required). Only requests and PyYAML are needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import requests
import yaml

SPEC = Path(__file__).with_name("dashboard.yml")
DISPLAYS = {"table", "bar", "line", "row", "pie", "scalar", "area", "combo"}
GRID_COLUMNS = 24
TIMEOUT_S = 30


class ProvisionError(RuntimeError):
    """The spec or the Metabase is not as needed (the message is one sentence)."""


# --- the spec ------------------------------------------------------------------------------

def load_spec(path: Path = SPEC) -> dict:
    """The dashboard spec, checked: names unique, known displays, SQL and columns given, every
    card inside the grid and no two overlapping."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ProvisionError(f"{path} is not readable YAML ({error}).") from None
    if not isinstance(spec, dict) or not spec.get("cards"):
        raise ProvisionError(f"{path} needs a dashboard, a database and a list of cards.")
    for key in ("dashboard", "database"):
        if not isinstance(spec.get(key), dict) or not spec[key].get("name"):
            raise ProvisionError(f"{path} needs {key}.name.")
    names, cells = set(), {}
    for card in spec["cards"]:
        name = card.get("name")
        if not name or name in names:
            raise ProvisionError(f"{path}: card {name!r} has no name or is not the only one so "
                                 "named.")
        names.add(name)
        if card.get("display") not in DISPLAYS:
            raise ProvisionError(f"{path}: card {name!r} has display {card.get('display')!r}, "
                                 f"not one of {', '.join(sorted(DISPLAYS))}.")
        if not str(card.get("sql", "")).strip() or not card.get("columns"):
            raise ProvisionError(f"{path}: card {name!r} needs its sql and its columns.")
        pos = card.get("position") or {}
        try:
            row, col, width, height = (int(pos[k]) for k in ("row", "col", "size_x", "size_y"))
        except (KeyError, TypeError, ValueError):
            raise ProvisionError(f"{path}: card {name!r} needs a position with row, col, size_x "
                                 "and size_y.") from None
        if row < 0 or col < 0 or width < 1 or height < 1 or col + width > GRID_COLUMNS:
            raise ProvisionError(f"{path}: card {name!r} lies outside the {GRID_COLUMNS}-column "
                                 "grid.")
        for cell in ((r, c) for r in range(row, row + height) for c in range(col, col + width)):
            if cell in cells:
                raise ProvisionError(f"{path}: cards {cells[cell]!r} and {name!r} overlap.")
            cells[cell] = name
    return spec


def card_payload(card: dict, database_id: int) -> dict:
    """The /api/card body of a spec card: a native SQL question on the warehouse."""
    return {
        "name": card["name"],
        "description": card.get("description"),
        "display": card["display"],
        "visualization_settings": card.get("visualization_settings") or {},
        "dataset_query": {"type": "native", "database": database_id,
                          "native": {"query": card["sql"], "template-tags": {}}},
    }


def dashcards_payload(cards: list[dict], card_ids: dict[str, int],
                      existing: list[dict]) -> list[dict]:
    """The dashboard's cards at their spec positions; a card already on the dashboard keeps its
    dashcard id, a new one gets a negative id (Metabase creates it); others are removed."""
    kept = {d["card_id"]: d["id"] for d in existing if d.get("card_id") is not None}
    rows = []
    for number, card in enumerate(cards, start=1):
        card_id = card_ids[card["name"]]
        pos = card["position"]
        rows.append({"id": kept.get(card_id, -number), "card_id": card_id,
                     "row": pos["row"], "col": pos["col"], "size_x": pos["size_x"],
                     "size_y": pos["size_y"], "parameter_mappings": [], "series": [],
                     "visualization_settings": {}})
    return rows


def database_payload(spec: dict, env: dict[str, str]) -> dict:
    """The warehouse as Metabase connects to it: the BI role, the published schema only."""
    password = env.get("PROMO_BI_PASSWORD")
    if not password:
        raise ProvisionError("PROMO_BI_PASSWORD is not set; give the BI role's password.")
    return {"name": spec["database"]["name"], "engine": "postgres", "details": {
        "host": env.get("PROMO_BI_HOST") or "postgres",
        "port": int(env.get("PROMO_BI_PORT") or 5432),
        "dbname": env.get("PROMO_PG_DB") or "promo",
        "user": env.get("PROMO_BI_USER") or "promo_bi", "password": password, "ssl": False,
        "schema-filters-type": "inclusion", "schema-filters-patterns": "published"}}


# --- Metabase ------------------------------------------------------------------------------

class Metabase:
    """A few REST calls; every failure is a ProvisionError naming the call."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, **kwargs):
        try:
            response = self.http.request(method, self.url + path, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as error:
            raise ProvisionError(f"{method} {self.url}{path} failed: {error}.") from None
        if response.status_code >= 400:
            raise ProvisionError(f"{method} {path} answered {response.status_code}: "
                                 f"{response.text[:300]}.")
        return response.json() if response.content else None

    def wait(self, seconds: float) -> None:
        """Until /api/health answers ok (Metabase takes a minute or two to start)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                if self.http.get(self.url + "/api/health", timeout=5).json().get("status") == "ok":
                    return
            except (requests.RequestException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise ProvisionError(f"Metabase at {self.url} did not answer healthy within "
                                     f"{seconds:.0f} s.")
            time.sleep(3)

    def login(self, email: str, password: str, site_name: str) -> None:
        """Create the admin on a fresh Metabase (setup token), else log in as it."""
        properties = self.call("GET", "/api/session/properties")
        if not properties.get("has-user-setup"):
            session = self.call("POST", "/api/setup", json={
                "token": properties["setup-token"],
                "user": {"email": email, "password": password, "first_name": "promoflow",
                         "last_name": "admin", "site_name": site_name},
                "prefs": {"site_name": site_name, "allow_tracking": False}})
        else:
            session = self.call("POST", "/api/session",
                                json={"username": email, "password": password})
        self.http.headers["X-Metabase-Session"] = session["id"]

    def find(self, model: str, name: str) -> dict | None:
        """The non-archived item of `model` ("card", "dashboard") with exactly this name."""
        found = self.call("GET", "/api/search", params={"models": model, "q": name})
        items = found.get("data", found) if isinstance(found, dict) else found
        matches = sorted((i for i in items if i.get("model") == model and i.get("name") == name
                          and not i.get("archived")), key=lambda i: i["id"])
        return matches[0] if matches else None


def provision(metabase: Metabase, spec: dict, env: dict[str, str]) -> int:
    """Database, cards and dashboard of `spec`, each created or updated by name; the
    dashboard's id."""
    body = database_payload(spec, env)
    listed = metabase.call("GET", "/api/database")
    databases = listed.get("data", listed) if isinstance(listed, dict) else listed
    same = [d for d in databases if d["name"] == body["name"]]
    if same:
        database_id = same[0]["id"]
        metabase.call("PUT", f"/api/database/{database_id}", json=body)
    else:
        database_id = metabase.call("POST", "/api/database", json=body)["id"]
    card_ids = {}
    for card in spec["cards"]:
        payload = card_payload(card, database_id)
        found = metabase.find("card", card["name"])
        if found:
            metabase.call("PUT", f"/api/card/{found['id']}", json=payload)
            card_ids[card["name"]] = found["id"]
        else:
            card_ids[card["name"]] = metabase.call("POST", "/api/card", json=payload)["id"]
    board = spec["dashboard"]
    found = metabase.find("dashboard", board["name"])
    dashboard_id = found["id"] if found else metabase.call(
        "POST", "/api/dashboard", json={"name": board["name"]})["id"]
    existing = metabase.call("GET", f"/api/dashboard/{dashboard_id}").get("dashcards", [])
    metabase.call("PUT", f"/api/dashboard/{dashboard_id}", json={
        "name": board["name"], "description": board.get("description"),
        "dashcards": dashcards_payload(spec["cards"], card_ids, existing)})
    return dashboard_id


def main(argv: list[str] | None = None) -> int:
    env = dict(os.environ)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=env.get("PROMO_METABASE_URL") or "http://localhost:3000")
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--wait", type=float, default=600,
                        help="seconds to wait for Metabase to start (default 600)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        password = env.get("PROMO_METABASE_PASSWORD")
        if not password:
            raise ProvisionError("PROMO_METABASE_PASSWORD is not set; give the Metabase admin's "
                                 "password (it is set on the first run).")
        database_payload(spec, env)  # refuse a missing BI password before touching Metabase
        metabase = Metabase(args.url)
        metabase.wait(args.wait)
        metabase.login(env.get("PROMO_METABASE_EMAIL") or "admin@promoflow.local", password,
                       spec["dashboard"]["name"])
        dashboard_id = provision(metabase, spec, env)
    except ProvisionError as error:
        print(f"provision_metabase: {error}", file=sys.stderr)
        return 2
    print(f"Dashboard '{spec['dashboard']['name']}': {args.url.rstrip('/')}/dashboard/"
          f"{dashboard_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
