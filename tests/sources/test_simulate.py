"""The plan week simulated on the synthetic market: a valid next delivery, contacts (and their send
log) only for the treated, the truth moved one week on."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ingest.contract import TABLES
from ingest.load import read_landing, validate
from sources.synthetic import truth
from sources.synthetic.generate import generate
from sources.synthetic.simulate import SimulationError, consented_pairs, simulate_week

WEEK = dt.date(2026, 11, 16)


def _plan(landing: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ten products promoted, 80 random targets each on a random channel (consented or not)."""
    products = pd.read_csv(landing / "products.csv")
    plan = pd.DataFrame({"product_id": products["product_id"].iloc[:10],
                         "discount_depth": [0.1, 0.2] * 5})
    customers = pd.read_csv(landing / "customers.csv")["customer_id"].to_numpy()
    rng = np.random.default_rng(1)
    targets = pd.DataFrame([(p, c, "holdout" if rng.random() < 0.3 else "treatment",
                             rng.choice(["email", "app_push", "sms"]))
                            for p in plan["product_id"]
                            for c in rng.choice(customers, 80, replace=False)],
                           columns=["product_id", "customer_id", "assignment", "channel"])
    return plan, targets


def _consented(landing: Path, at: str) -> set[tuple[int, str]]:
    """(customer_id, channel) pairs consented at `at` by the contract's rule: a period of the
    consent log around it, else (no log row for the pair) the preferred channel."""
    log = pd.read_csv(landing / "contact_consents.csv", keep_default_na=False)
    holds = (log["consented_at"] <= at) & ((log["withdrawn_at"] == "") | (log["withdrawn_at"] > at))
    logged = set(zip(log["customer_id"], log["channel"], strict=True))
    customers = pd.read_csv(landing / "customers.csv", keep_default_na=False)
    preferred = {(c, ch) for c, ch in zip(customers["customer_id"],
                                          customers["preferred_channel"], strict=True) if ch}
    return set(zip(log.loc[holds, "customer_id"], log.loc[holds, "channel"], strict=True)) | (
        preferred - logged)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("simulate")
    generate("tiny", base / "landing", base / "truth", seed=42)
    shutil.copytree(base / "landing", base / "landing_before")
    shutil.copytree(base / "truth", base / "truth_before")
    before_next = truth.expected_units(base / "truth", _plan(base / "landing")[0]["product_id"],
                                       WEEK + dt.timedelta(days=7))
    plan, targets = _plan(base / "landing")
    summary = simulate_week(base / "landing", base / "truth", WEEK, plan, targets, seed=42)
    return base, plan, targets, summary, before_next


def _quarantined(landing: Path) -> dict[str, int]:
    """Rows each table's file would quarantine (-1: no file, an optional table)."""
    keys: dict[str, pd.Index] = {}
    out = {}
    for spec in TABLES:
        path = landing / f"{spec.name}.csv"
        if not path.exists():
            out[spec.name] = -1
            continue
        checked = validate(read_landing(path, spec), spec, keys, "t", datetime(2026, 11, 30))
        if len(spec.primary_key) == 1:
            keys[spec.name] = pd.Index(checked.keys[spec.primary_key[0]])
        out[spec.name] = len(checked.quarantine)
    return out


def test_the_week_is_a_valid_next_delivery(simulated) -> None:
    base, plan, _, summary, _ = simulated
    landing, before = base / "landing", base / "landing_before"
    # the history has no send log; the week starts one, and every row of it is valid
    assert _quarantined(landing) == {**_quarantined(before), "campaign_contacts": 0}
    assert _quarantined(before)["campaign_contacts"] == -1
    new_orders = pd.read_csv(landing / "orders.csv").iloc[len(pd.read_csv(before / "orders.csv")):]
    assert len(new_orders) == summary["orders"] > 0
    stamps = pd.to_datetime(new_orders["ordered_at"])
    assert stamps.min() >= pd.Timestamp(WEEK) and stamps.max() < pd.Timestamp(WEEK) + pd.Timedelta(days=7)
    assert new_orders["order_id"].is_unique and new_orders["order_id"].min() > pd.read_csv(
        before / "orders.csv")["order_id"].max()
    promotions = pd.read_csv(landing / "promotions.csv")
    new_promos = promotions[promotions["start_date"] == WEEK.isoformat()]
    assert sorted(new_promos["product_id"]) == sorted(plan["product_id"])
    lines = pd.read_csv(landing / "order_lines.csv")
    new_lines = lines[lines["order_id"].isin(new_orders["order_id"])]
    promoted = new_lines[new_lines["product_id"].isin(plan["product_id"]) & (new_lines["quantity"] > 0)]
    depth = plan.set_index("product_id")["discount_depth"]
    paid = (promoted["unit_list_price"] * (1 - promoted["product_id"].map(depth))).round(2)
    assert np.allclose(promoted["unit_paid_price"], paid, atol=0.011)
    # closing stock = the week's stock (restocked, in the truth) minus the week's units sold
    inventory = pd.read_csv(landing / "inventory.csv")
    end = inventory[inventory["snapshot_date"] == (WEEK + dt.timedelta(days=6)).isoformat()]
    effects = pd.read_csv(base / "truth" / "weeks" / WEEK.isoformat() / "plan_effects.csv")
    stock = effects.set_index("product_id")["stock_units"]
    sold = new_lines[new_lines["quantity"] > 0].groupby("product_id")["quantity"].sum()
    moved = stock - end.set_index("product_id")["on_hand_units"]
    assert (end["on_hand_units"] >= 0).all() and (stock >= 1).all()
    assert moved.sum() == sold.sum() == summary["units_sold"]


def test_contacts_reach_only_treated_customers(simulated) -> None:
    base, _, targets, summary, _ = simulated
    contacts = pd.read_csv(base / "truth" / "weeks" / WEEK.isoformat() / "contact_effects.csv")
    assert len(contacts) == len(targets)
    assert not contacts.loc[contacts["assignment"] == "holdout", "bought"].any()
    assert (contacts.loc[contacts["assignment"] == "holdout", "true_effect"] == 0).all()
    treated = contacts[contacts["assignment"] == "treatment"]
    assert (treated.loc[~treated["reached"], "q"] == 0).all()
    assert ((treated["true_effect"] > 0) == (treated["reached"] & (treated["available"] > 0))).all()
    assert treated["available"].between(0, 1).all()
    assert summary["true_contact_effect"] == pytest.approx(treated["true_effect"].mean(), abs=1e-6)
    assert 0 < summary["contact_units"] == int(contacts["bought"].sum())


def test_the_send_log_holds_the_treated_targets_reached_on_a_consented_channel(
    simulated,
) -> None:
    base, _, targets, summary, _ = simulated
    sent = pd.read_csv(base / "landing" / "campaign_contacts.csv", keep_default_na=False)
    assert list(sent.columns) == ["customer_id", "product_id", "sent_at", "channel"]
    consented = _consented(base / "landing", f"{WEEK.isoformat()} 08:00:00")
    treated = targets[targets["assignment"] == "treatment"]
    ok = [(c, ch) in consented for c, ch in zip(treated["customer_id"], treated["channel"],
                                                 strict=True)]
    reached = treated[ok]
    assert 0 < len(reached) < len(treated)  # some targets' channels are not consented
    assert sorted(zip(sent["customer_id"], sent["product_id"], sent["channel"], strict=True)) == (
        sorted(zip(reached["customer_id"], reached["product_id"], reached["channel"],
                   strict=True)))  # on the target's channel
    holdout = targets[targets["assignment"] == "holdout"]
    assert not set(zip(sent["customer_id"], sent["product_id"], strict=True)) & set(
        zip(holdout["customer_id"], holdout["product_id"], strict=True))
    assert set(zip(sent["customer_id"], sent["channel"], strict=True)) <= consented
    assert (sent["sent_at"] == f"{WEEK.isoformat()} 08:00:00").all()
    assert not sent.duplicated(["customer_id", "product_id", "sent_at"]).any()
    assert summary["contacts_sent"] == len(sent)
    truth = pd.read_csv(base / "truth" / "weeks" / WEEK.isoformat() / "contact_effects.csv")
    assert len(sent) == int((truth["reached"] & (truth["assignment"] == "treatment")).sum())


def test_consent_follows_the_log_and_else_the_preferred_channel(tmp_path: Path) -> None:
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4],
                              "preferred_channel": ["email", "sms", "", "app_push"]})
    at = dt.datetime(2026, 11, 16, 8, 0)
    # no consent log: the preferred channels are the consents
    assert sorted(consented_pairs(tmp_path, customers, at)) == [
        (1, "email"), (2, "sms"), (4, "app_push")]
    (tmp_path / "contact_consents.csv").write_text(
        "customer_id,channel,consented_at,withdrawn_at\n"
        "1,email,2025-01-01 09:00:00,2026-11-16 07:00:00\n"  # withdrawn before the send
        "1,sms,2025-01-01 09:00:00,\n"
        "2,sms,2026-11-16 09:00:00,\n"  # given after the send
        "3,email,2025-03-01 09:00:00,2026-11-20 09:00:00\n"  # withdrawn later that week
        "4,email,2025-03-01 09:00:00,\n")  # the log says nothing of 4's app_push
    assert sorted(consented_pairs(tmp_path, customers, at)) == [
        (1, "sms"), (3, "email"), (4, "app_push"), (4, "email")]


def test_a_target_without_a_channel_goes_to_the_preferred_one(simulated, tmp_path: Path) -> None:
    base, plan, targets, _, _ = simulated
    shutil.copytree(base / "landing_before", tmp_path / "landing")
    shutil.copytree(base / "truth_before", tmp_path / "truth")
    simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan,
                  targets.drop(columns="channel"), seed=42)
    sent = pd.read_csv(tmp_path / "landing" / "campaign_contacts.csv", keep_default_na=False)
    customers = pd.read_csv(tmp_path / "landing" / "customers.csv", keep_default_na=False)
    assert len(sent) > 0
    assert (sent["channel"] == sent["customer_id"].map(
        customers.set_index("customer_id")["preferred_channel"])).all()
    assert set(zip(sent["customer_id"], sent["channel"], strict=True)) <= _consented(
        tmp_path / "landing", f"{WEEK.isoformat()} 08:00:00")


def test_the_truth_moves_one_week_on(simulated) -> None:
    base, plan, _, summary, before_next = simulated
    truth_dir = base / "truth"
    effects = pd.read_csv(truth_dir / "weeks" / WEEK.isoformat() / "plan_effects.csv")
    lifted = effects[effects["product_id"].isin(plan["product_id"])]
    assert (lifted["true_incremental_units"] >= 0).all() and lifted["true_incremental_units"].sum() > 0
    meta = json.loads((truth_dir / "generator.json").read_text())
    assert meta["history_end"] == (WEEK + dt.timedelta(days=6)).isoformat()
    assert meta["simulated_weeks"] == [WEEK.isoformat()]
    assert summary["true_incremental_units"] == pytest.approx(
        effects["true_incremental_units"].sum(), abs=1e-2)
    history = pd.read_csv(truth_dir / "history_truth.csv")
    assert (history["week_start"] == WEEK.isoformat()).sum() == len(effects)
    # the plan's promotions now take their dip from the next week
    after = truth.expected_units(truth_dir, plan["product_id"], WEEK + dt.timedelta(days=7))
    assert (after <= before_next + 1e-9).all() and (after < before_next - 1e-6).any()


def test_same_seed_same_week_and_no_second_delivery(simulated, tmp_path: Path) -> None:
    base, plan, targets, _, _ = simulated
    shutil.copytree(base / "landing_before", tmp_path / "landing")
    shutil.copytree(base / "truth_before", tmp_path / "truth")
    simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan, targets, seed=42)
    for name in ("orders.csv", "order_lines.csv", "inventory.csv", "promotions.csv",
                 "campaign_contacts.csv"):
        assert (tmp_path / "landing" / name).read_bytes() == (base / "landing" / name).read_bytes()
    with pytest.raises(SimulationError, match="already delivered"):
        simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan, targets, seed=42)
    with pytest.raises(SimulationError, match="weeks in between are missing"):
        simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK + dt.timedelta(days=14),
                      plan, targets, seed=42)


def test_cli_without_a_plan_is_one_line_error(capsys) -> None:
    from sources.synthetic.simulate import main

    assert main(["--run-id", "no-such-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run the weekly flow first" in err[0]


def test_an_older_market_without_channel_mix_is_refused(simulated, tmp_path: Path) -> None:
    base, plan, targets, _, _ = simulated
    shutil.copytree(base / "landing_before", tmp_path / "landing")
    shutil.copytree(base / "truth_before", tmp_path / "truth")
    traits = pd.read_csv(tmp_path / "truth" / "customers_truth.csv")
    traits.drop(columns=["channel_web", "channel_app", "channel_store"]).to_csv(
        tmp_path / "truth" / "customers_truth.csv", index=False)
    with pytest.raises(SimulationError, match="no customer channel mix"):
        simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan, targets, seed=42)


def test_a_delivery_that_stopped_halfway_is_refused(simulated, tmp_path: Path) -> None:
    base, plan, targets, _, _ = simulated
    shutil.copytree(base / "landing_before", tmp_path / "landing")
    shutil.copytree(base / "truth_before", tmp_path / "truth")
    # the week's orders are in, its closing inventory is not
    shutil.copy(base / "landing" / "orders.csv", tmp_path / "landing" / "orders.csv")
    with pytest.raises(SimulationError, match="stopped halfway"):
        simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan, targets, seed=42)


def test_weeks_in_a_row_are_restocked(tmp_path: Path) -> None:
    # the retailer restocks every week as in the history: a loop of weeks does not drain it
    generate("tiny", tmp_path / "landing", tmp_path / "truth", seed=5)
    plan, targets = _plan(tmp_path / "landing")
    for k in range(6):
        simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK + dt.timedelta(weeks=k),
                      plan, targets, seed=5)
    inventory = pd.read_csv(tmp_path / "landing" / "inventory.csv")
    closing = inventory[inventory["snapshot_date"] >= WEEK.isoformat()]
    sold_out = (closing["on_hand_units"] == 0).groupby(closing["snapshot_date"]).mean()
    history = inventory[inventory["snapshot_date"] < WEEK.isoformat()]
    usual = (history["on_hand_units"] == 0).mean()
    assert len(sold_out) == 6 and sold_out.max() < usual + 0.25, (usual, sold_out.tolist())
    # the send log grows by each week's messages
    sent = pd.read_csv(tmp_path / "landing" / "campaign_contacts.csv")
    assert sent.groupby("sent_at").size().index.tolist() == [
        f"{(WEEK + dt.timedelta(weeks=k)).isoformat()} 08:00:00" for k in range(6)]


def test_a_coupon_raises_the_response_and_sets_the_holders_price(tmp_path: Path) -> None:
    generate("tiny", tmp_path / "landing", tmp_path / "truth", seed=42)
    plan, targets = _plan(tmp_path / "landing")
    # the treated targets of the first four products get 15 points more off than the public price
    public = targets["product_id"].map(plan.set_index("product_id")["discount_depth"])
    coupon = targets["product_id"].isin(plan["product_id"].iloc[:4]) & (
        targets["assignment"] == "treatment")
    targets["offer_depth"] = np.where(coupon, public + 0.15, np.nan)
    targets.loc[targets["assignment"] == "holdout", "offer_depth"] = 0.4  # never delivered
    summary = simulate_week(tmp_path / "landing", tmp_path / "truth", WEEK, plan, targets,
                            seed=42)
    contacts = pd.read_csv(tmp_path / "truth" / "weeks" / WEEK.isoformat()
                           / "contact_effects.csv")
    holders = contacts[contacts["offer_depth"] > 0]
    assert len(holders) == summary["coupons"] > 0
    assert (holders["assignment"] == "treatment").all() and holders["reached"].all()
    assert (holders["q_offer"] > holders["q"]).all()
    others = contacts[contacts["offer_depth"] == 0]
    assert np.allclose(others["q_offer"], others["q"])
    assert (contacts.loc[contacts["assignment"] == "holdout", "true_effect"] == 0).all()
    # the week's lines of a coupon holder and product are paid at the coupon price; the delivery
    # stays valid (nothing quarantined)
    orders = pd.read_csv(tmp_path / "landing" / "orders.csv", keep_default_na=False)
    week_orders = orders[orders["ordered_at"] >= WEEK.isoformat()]
    lines = pd.read_csv(tmp_path / "landing" / "order_lines.csv").merge(
        week_orders[["order_id", "customer_id"]], on="order_id")
    lines = lines[lines["customer_id"] != ""].astype({"customer_id": "int64"})
    depth = holders.set_index(["customer_id", "product_id"])["offer_depth"]
    keyed = lines.set_index(["customer_id", "product_id"])
    held = keyed[keyed.index.isin(depth.index)]
    assert len(held) > 0
    paid = (held["unit_list_price"] * (1 - depth.reindex(held.index).to_numpy())).round(2)
    assert np.allclose(held["unit_paid_price"], paid, atol=0.011)
    assert all(count <= 0 for count in _quarantined(tmp_path / "landing").values())
