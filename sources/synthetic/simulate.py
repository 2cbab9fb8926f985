"""The plan week happens: a plan and its targets applied to the true synthetic market.

    python -m sources.synthetic.simulate [--dataset demo] [--run-id ID]   (make simulate-week)

`simulate_week` takes the plan's discounts and its targeted customers (treatment or holdout),
draws the week from the generator's own demand model and writes it to the landing folder as the
next delivery; what the plan truly did goes to the ground-truth folder only:

- Demand: the market's expected units of every product under the whole plan (own response,
  the category's cannibalization, the dips that earlier promotions still cause), gamma-Poisson
  noise as in the history, sold up to the week's stock: restocked as in the history (stock
  cover x baseline, a promotion's lift foreseen in part), so that weeks in a row do not drain
  it; the planner only saw what the last week left (its closing snapshot). Those units become lines and orders as in the history (customers by taste,
  activity and promotion pull; guests; returns within the week).
- Contact: a treated target is reached when the customer had consented to its channel (the
  target's `channel` as planned; the customer's preferred channel for targets without one)
  when the messages go out: the landing consent log (contact_consents) has a period of that
  customer and channel from consented_at up to withdrawn_at (empty: still held) around the
  send time, or, when the log has no row at all for that customer and channel, it is the
  customer's preferred channel (docs/raw_contract.md). A target without consent is never
  contacted. A reached customer buys one more unit of the targeted product with probability
  q = CONTACT_RATE x (1 + 4 x discount sensitivity) / 2, from the stock left. The holdout is
  never contacted. The true effect on the purchase rate of a target is q x (1 - b) x a: b the
  chance the customer buys the product anyway (Poisson, from its expected lines and the
  customer's share of them), a the share of the product's contact purchases the stock let
  through.
- Landing (appended, ids after the existing ones): orders, order_lines, promotions (one plain
  price cut per plan line for the week), campaign_contacts (the send log: one message per
  treated target reached, on the target's channel, sent at 08:00 UTC on the plan week's
  Monday; none for the holdout or the unreached; the file is started with its header
  when the market has none, as the generated history targeted nobody), inventory (the week's
  closing stock).
- Truth: history_truth.csv and carryover_truth.csv extended (the plan's own dips fall in the
  next three weeks), generator.json moved one week on, and weeks/<plan week>/ with
  plan_effects.csv (per product: expected units with and without the plan, the true
  incremental units, the dip, the week's stock and units sold), contact_effects.csv (per
  target: channel, reached, q, b, a, the true effect) and summary.json.

A week is simulated once: the week after the landing data's last inventory snapshot, so
rerunning for a week that is already delivered is refused. The closing inventory is appended
last; orders of the week without it (a run that stopped halfway) are refused too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sources.synthetic import truth
from sources.synthetic.generate import (
    GUEST_SHARE,
    NB_SHAPE,
    NEW_LINE_PROB,
    TABLE_COLUMNS,
    _order_tables,
    _orders,
    _sell_lines,
    _write_csv,
)
from sources.synthetic.market import DIP_WEIGHTS

log = logging.getLogger(__name__)

#: Extra purchase probability of a reached, treated customer of average promotion pull.
CONTACT_RATE = 0.05
#: A personal coupon of extra depth x (over the public price) raises a reached customer's q to
#: q + (1 - q) x (1 - exp(-COUPON_PULL x discount sensitivity x x)); the customers who would
#: buy anyway pay the coupon price too.
COUPON_PULL = 2.0
#: When the campaign's messages go out: the plan week's Monday at this time (UTC).
SEND_TIME = dt.time(8, 0)


class SimulationError(ValueError):
    """The week cannot be simulated (wrong week, no plan, no market)."""


def contact_probability(discount_sensitivity: np.ndarray) -> np.ndarray:
    """q: the chance a reached, treated customer buys one more unit of the targeted product."""
    return CONTACT_RATE * (1.0 + 4.0 * np.asarray(discount_sensitivity, dtype=float)) / 2.0


def coupon_probability(q: np.ndarray, discount_sensitivity: np.ndarray,
                       extra_depth: np.ndarray) -> np.ndarray:
    """q with a personal coupon `extra_depth` deeper than the public price (0: q itself)."""
    pull = COUPON_PULL * np.asarray(discount_sensitivity, float) * np.maximum(extra_depth, 0.0)
    return q + (1.0 - q) * (1.0 - np.exp(-pull))


def _customers(landing_dir: Path, truth_dir: Path) -> pd.DataFrame:
    """The generator's customer table (traits from the truth, signup and region from landing)."""
    public = pd.read_csv(landing_dir / "customers.csv", keep_default_na=False)
    traits = pd.read_csv(truth_dir / "customers_truth.csv")
    merged = public.merge(traits, on="customer_id", how="left").sort_values("customer_id")
    tastes = [c for c in traits.columns if c.startswith("taste_")]
    channels = ["channel_web", "channel_app", "channel_store"]
    if not set(channels) <= set(traits.columns):
        raise SimulationError(f"{truth_dir} holds no customer channel mix (an older market); "
                              "generate it again with make data.")
    return pd.DataFrame({
        "customer_id": merged["customer_id"].to_numpy(),
        "signup_date": pd.to_datetime(merged["signup_date"]),
        "region": merged["region"].to_numpy(),
        "preferred_channel": merged["preferred_channel"].to_numpy(),
        "discount_sensitivity": merged["discount_sensitivity"].to_numpy(),
        "activity": merged["activity"].to_numpy(),
        "taste": list(merged[tastes].to_numpy()),
        "channel_probs": list(merged[channels].to_numpy()),
    }).reset_index(drop=True)


def consented_pairs(landing_dir: Path, customers: pd.DataFrame,
                    at: dt.datetime) -> pd.MultiIndex:
    """(customer_id, channel) of every consent that holds at `at` (UTC): a period of the landing
    consent log around it, or the preferred channel of a customer and channel the log has no
    row for (no contact_consents file: the preferred channels alone)."""
    path = landing_dir / "contact_consents.csv"
    log_rows = (pd.read_csv(path, keep_default_na=False, dtype=str) if path.exists()
                else pd.DataFrame(columns=TABLE_COLUMNS["contact_consents"], dtype=str))
    log_rows = log_rows.astype({"customer_id": "int64"})
    start = pd.to_datetime(log_rows["consented_at"])
    end = pd.to_datetime(log_rows["withdrawn_at"])  # empty: still held
    holds = (start <= at) & (end.isna() | (end > at))
    logged = pd.MultiIndex.from_frame(log_rows[["customer_id", "channel"]])
    preferred = pd.MultiIndex.from_arrays(
        [customers["customer_id"].astype("int64"), customers["preferred_channel"].fillna("")])
    implied = preferred[(preferred.get_level_values(1) != "") & ~preferred.isin(logged)]
    held = pd.MultiIndex.from_frame(log_rows.loc[holds, ["customer_id", "channel"]])
    return held.append(implied).unique()


def _next_week(landing_dir: Path) -> dt.date:
    """The Monday after the last inventory snapshot (the landing data's last Sunday)."""
    snapshots = pd.read_csv(landing_dir / "inventory.csv", usecols=["snapshot_date"])
    last = pd.to_datetime(snapshots["snapshot_date"]).max().date()
    return last + dt.timedelta(days=1)


def _order_up_to(rng: np.random.Generator, cover: np.ndarray, baseline: np.ndarray,
                 with_plan: pd.DataFrame, promoted: np.ndarray) -> np.ndarray:
    """The week's stock, restocked as in the history: stock cover x baseline (noise 0.8-1.25),
    a promotion's lift foreseen only in part (30-110%)."""
    lift = np.divide(with_plan["own_units"].to_numpy(), with_plan["baseline_units"].to_numpy(),
                     out=np.ones(len(cover)), where=with_plan["baseline_units"].to_numpy() > 0)
    foresight = np.where(promoted, rng.uniform(0.3, 1.1, len(cover)), 0.0)
    level = cover * rng.uniform(0.8, 1.25, len(cover)) * baseline * (
        1.0 + (np.maximum(lift, 1.0) - 1.0) * foresight)
    return np.maximum(np.ceil(level), 1).astype(np.int64)


def _append(frame: pd.DataFrame, path: Path, create: bool = False) -> None:
    """Append rows to a landing CSV whose header must name the frame's columns; `create`: the
    file of an optional table is started with its header when there is none."""
    if create and not path.exists():
        _write_csv(frame.iloc[:0], path)
    header = pd.read_csv(path, nrows=0).columns.tolist()
    if header != frame.columns.tolist():
        raise SimulationError(f"{path} has columns {header}, not {frame.columns.tolist()}.")
    frame.to_csv(path, mode="a", header=False, index=False)


def simulate_week(landing_dir: Path, truth_dir: Path, plan_week: dt.date,
                  plan_lines: pd.DataFrame, targets: pd.DataFrame, seed: int) -> dict:
    """Apply the plan (product_id, discount_depth) and its targets (product_id, customer_id,
    assignment) to the market's next week; append it to landing_dir, its truth to truth_dir.
    Returns the week's summary (also in truth_dir/weeks/<plan week>/summary.json)."""
    landing_dir, truth_dir = Path(landing_dir), Path(truth_dir)
    market = truth.market(truth_dir)
    expected_week = _next_week(landing_dir)
    if plan_week != expected_week:
        raise SimulationError(
            f"The plan is for the week of {plan_week}, but the market's next week is "
            f"{expected_week}; {'that week is already delivered' if plan_week < expected_week else 'weeks in between are missing'}.")
    old_orders = pd.read_csv(landing_dir / "orders.csv", usecols=["order_id", "ordered_at"])
    if len(old_orders) and pd.Timestamp(old_orders["ordered_at"].max()) >= pd.Timestamp(plan_week):
        raise SimulationError(
            f"{landing_dir / 'orders.csv'} already holds orders of the week of {plan_week} "
            "but no closing inventory: an earlier simulation stopped halfway; restore the "
            "landing folder (make data) before simulating again.")
    rng = np.random.default_rng([int(seed), plan_week.toordinal()])
    products = pd.read_csv(landing_dir / "products.csv").sort_values("product_id")
    products = products.reset_index(drop=True)
    ids = products["product_id"].to_numpy()
    promoted = plan_lines[plan_lines["discount_depth"] > 0]
    depths = promoted.set_index("product_id")["discount_depth"].astype(float)

    # --- demand under the plan, and without it (the counterfactual) ------------------------
    def outcome(plan: pd.Series, stock: np.ndarray | None = None) -> pd.DataFrame:
        cap = None if stock is None else pd.Series(stock, index=ids)
        return truth.plan_outcome(truth_dir, plan_week, plan, cap).set_index("product_id").loc[ids]

    with_plan = outcome(depths)  # demand, before the stock cap
    stock = _order_up_to(rng, market.products.loc[ids, "stock_cover"].to_numpy(),
                         truth.baseline_units(truth_dir, ids, plan_week), with_plan,
                         products["product_id"].isin(depths.index).to_numpy())
    capped = outcome(depths, stock)
    capped_none = outcome(pd.Series(dtype=float), stock)
    mean = with_plan["units"].to_numpy()
    demand = rng.poisson(mean * rng.gamma(NB_SHAPE, 1.0 / NB_SHAPE, len(ids)))
    sold = np.minimum(demand, stock)

    # --- lines and orders of the public demand, then the contacted customers' extra units --
    customers = _customers(landing_dir, truth_dir)
    cat_idx = pd.Series(products["category"]).map(
        {c: i for i, c in enumerate(market.categories.index)}).to_numpy()
    depth = products["product_id"].map(depths).fillna(0.0).to_numpy()
    lines = _sell_lines(rng, sold[:, None], depth[:, None], plan_week, cat_idx, customers,
                        len(market.categories))
    consented = consented_pairs(landing_dir, customers, dt.datetime.combine(plan_week, SEND_TIME))
    contacts = _contacts(rng, targets, customers, consented, products, cat_idx, depth, mean,
                         plan_week)
    # the contacted customers' extra units, in target order, while stock is left
    left = stock - sold
    delivered = np.zeros(len(contacts), dtype=bool)
    extra_rows = []
    for k in np.flatnonzero(contacts["bought"].to_numpy()):
        p = int(contacts["product_index"].iat[k])
        if left[p] > 0:
            left[p] -= 1
            delivered[k] = True
            extra_rows.append((p, p, 1, int(contacts["customer_index"].iat[k]),
                               int(rng.integers(0, 7))))
    # the true effect counts only the units the stock let through: per product, the share of
    # the drawn contact purchases delivered (none drawn: whether any stock was left)
    drawn = np.bincount(contacts["product_index"], weights=contacts["bought"],
                        minlength=len(products))
    got = np.bincount(contacts["product_index"], weights=delivered, minlength=len(products))
    available = np.where(drawn > 0, got / np.maximum(drawn, 1), (stock - sold) > 0)
    contacts["available"] = available[contacts["product_index"].to_numpy()]
    contacts["true_effect"] *= contacts["available"]
    contacts["bought"] = delivered
    if extra_rows:
        lines = pd.concat([lines, pd.DataFrame(extra_rows, columns=lines.columns)],
                          ignore_index=True)
    sold_total = stock - left
    orders, lines = _orders(rng, lines, customers, 7)
    depth_of_pw, promo_of_pw = _coupon_prices(lines, contacts, depth, promo_of_product(depth))

    # --- landing: the next delivery --------------------------------------------------------
    first_order = int(old_orders["order_id"].max()) + 1
    orders["order_id"] += first_order - 1
    lines["order_id"] += first_order - 1
    old_promos = pd.read_csv(landing_dir / "promotions.csv", usecols=["promotion_id"])
    first_promo = int(old_promos["promotion_id"].max()) + 1 if len(old_promos) else 1
    promoted_index = np.flatnonzero(depth > 0)
    order_table, line_table = _order_tables(
        orders, lines, products, customers, depth_of_pw, promo_of_pw,
        first_promo + np.arange(len(promoted_index)), np.datetime64(plan_week, "s"))
    end = plan_week + dt.timedelta(days=6)
    promotions = pd.DataFrame({
        "promotion_id": first_promo + np.arange(len(promoted_index)),
        "product_id": ids[promoted_index],
        "start_date": plan_week.isoformat(), "end_date": end.isoformat(),
        "discount_depth": np.char.mod("%.4f", depth[promoted_index]),
        "promo_type": "price_cut",
    })
    sent = _sent_messages(contacts, customers, ids, plan_week)
    closing = pd.DataFrame({"product_id": ids, "snapshot_date": end.isoformat(),
                            "on_hand_units": left})
    # the closing inventory last: the mark of a complete delivery (see the refusal above)
    for name, frame in (("orders", order_table), ("order_lines", line_table),
                        ("promotions", promotions), ("campaign_contacts", sent),
                        ("inventory", closing)):
        _append(frame, landing_dir / f"{name}.csv", create=name == "campaign_contacts")

    # --- truth -----------------------------------------------------------------------------
    effects = pd.DataFrame({
        "product_id": ids, "discount_depth": depth,
        "expected_units": capped["units"].to_numpy(),
        "baseline_units": capped_none["units"].to_numpy(),
        "true_incremental_units": capped["units"].to_numpy() - capped_none["units"].to_numpy(),
        "dip_units": with_plan["dip_units"].to_numpy(),
        "sold_units": sold_total,
        "stock_units": stock,
    })
    _extend_truth(truth_dir, plan_week, ids, with_plan, sold_total,
                  sold_total >= stock)
    week_dir = truth_dir / "weeks" / plan_week.isoformat()
    week_dir.mkdir(parents=True, exist_ok=True)
    effects.round(6).to_csv(week_dir / "plan_effects.csv", index=False)
    out = contacts.assign(product_id=ids[contacts["product_index"]],
                          customer_id=customers["customer_id"].to_numpy()[contacts["customer_index"]])
    out[["product_id", "customer_id", "assignment", "channel", "reached", "q", "b", "available",
         "true_effect", "bought", "offer_depth", "q_offer"]].round(6).to_csv(
        week_dir / "contact_effects.csv", index=False)
    treated = out[out["assignment"] == "treatment"]
    summary = {
        "plan_week": plan_week.isoformat(), "seed": int(seed),
        "products_promoted": len(promoted_index),
        "orders": len(order_table), "order_lines": len(line_table),
        "units_sold": int(sold_total.sum()),
        "true_incremental_units": round(float(effects["true_incremental_units"].sum()), 3),
        "targets": len(out), "treated": len(treated),
        "true_contact_effect": round(float(treated["true_effect"].mean()), 6)
        if len(treated) else None,
        "contacts_sent": len(sent),
        "contact_units": len(extra_rows),
        "coupons": int(((out["offer_depth"] > 0) & out["reached"]
                        & (out["assignment"] == "treatment")).sum()),
    }
    (week_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _contacts(rng: np.random.Generator, targets: pd.DataFrame, customers: pd.DataFrame,
              consented: pd.MultiIndex, products: pd.DataFrame, cat_idx: np.ndarray,
              depth: np.ndarray, mean_units: np.ndarray, week: dt.date) -> pd.DataFrame:
    """Per target: its channel, reached (consented to that channel), q, b (the chance of buying
    anyway), the true effect, and whether the contact made the customer buy (drawn for the
    treated, reached ones)."""
    position = {c: i for i, c in enumerate(customers["customer_id"])}
    product_position = {p: i for i, p in enumerate(products["product_id"])}
    frame = targets[["product_id", "customer_id", "assignment"]].copy()
    frame["offer_depth"] = pd.to_numeric(
        targets.get("offer_depth", pd.Series(np.nan, index=targets.index)), errors="coerce")
    # the planned channel; a target without one goes to the customer's preferred channel
    planned = targets.get("channel", pd.Series("", index=targets.index)).fillna("")
    preferred = targets["customer_id"].map(customers.set_index("customer_id")["preferred_channel"])
    frame["channel"] = planned.where(planned != "", preferred.fillna(""))
    frame = frame[frame["customer_id"].isin(position)
                  & frame["product_id"].isin(product_position)].reset_index(drop=True)
    c = frame["customer_id"].map(position).to_numpy(dtype=int)
    p = frame["product_id"].map(product_position).to_numpy(dtype=int)
    sensitivity = customers["discount_sensitivity"].to_numpy()
    reached = pd.MultiIndex.from_frame(frame[["customer_id", "channel"]]).isin(consented)
    q = np.where(reached, contact_probability(sensitivity[c]), 0.0)
    # b: the product's expected lines (guests aside) x the customer's share of the lines of
    # its category, as the generator assigns them (activity x taste, x pull when promoted)
    signed_up = customers["signup_date"].to_numpy() <= np.datetime64(week)
    weight = (customers["activity"].to_numpy()[:, None] * np.stack(customers["taste"].to_numpy())
              * signed_up[:, None])
    pull = 1.0 + 4.0 * sensitivity
    totals = {False: weight.sum(axis=0), True: (weight * pull[:, None]).sum(axis=0)}
    category = cat_idx[p]
    promo = depth[p] > 0
    w = weight[c, category] * np.where(promo, pull[c], 1.0)
    total = np.where(promo, totals[True][category], totals[False][category])
    share = np.divide(w, total, out=np.zeros_like(w), where=total > 0)
    expected_lines = (1 + NEW_LINE_PROB * np.maximum(mean_units[p] - 1, 0)) * (1 - GUEST_SHARE)
    b = 1.0 - np.exp(-expected_lines * share)
    treated = frame["assignment"].to_numpy() == "treatment"
    # a personal coupon (the target's offer_depth over the public depth) reaches the treated,
    # reached targets only
    offer_depth = frame.pop("offer_depth").fillna(0.0).to_numpy(dtype=float)
    offer_depth = np.where(treated & reached & (offer_depth > depth[p]), offer_depth, 0.0)
    q_offer = coupon_probability(q, sensitivity[c], np.where(offer_depth > 0,
                                                             offer_depth - depth[p], 0.0))
    effect = np.where(treated, q_offer * (1.0 - b), 0.0)
    bought = treated & (rng.random(len(frame)) < q_offer)
    return frame.assign(product_index=p, customer_index=c, reached=reached, q=q, b=b,
                        true_effect=effect, bought=bought, offer_depth=offer_depth,
                        q_offer=q_offer)


def promo_of_product(depth: np.ndarray) -> np.ndarray:
    """The promotion index of every product (-1: not promoted), in product order."""
    index = np.full(len(depth), -1)
    promoted = np.flatnonzero(depth > 0)
    index[promoted] = np.arange(len(promoted))
    return index


def _coupon_prices(lines: pd.DataFrame, contacts: pd.DataFrame, depth: np.ndarray,
                   promo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth, promotion index) per `pw` of the lines: the product's public ones, and for the
    lines of a customer holding a coupon for the product a `pw` of its own at the coupon depth
    (its lines and their returns are paid at the coupon price, under the same promotion)."""
    coupons = contacts[contacts["offer_depth"] > 0]
    if coupons.empty:
        return depth, promo
    own = pd.Series(len(depth) + np.arange(len(coupons)), index=pd.MultiIndex.from_arrays(
        [coupons["customer_index"].to_numpy(), coupons["product_index"].to_numpy()]))
    keys = pd.MultiIndex.from_arrays([lines["customer"].to_numpy(), lines["product"].to_numpy()])
    pw = own.reindex(keys).to_numpy()
    lines["pw"] = np.where(np.isnan(pw), lines["pw"].to_numpy(), pw).astype(np.int64)
    products = coupons["product_index"].to_numpy()
    return (np.concatenate([depth, coupons["offer_depth"].to_numpy(float)]),
            np.concatenate([promo, promo[products]]))


def _sent_messages(contacts: pd.DataFrame, customers: pd.DataFrame, ids: np.ndarray,
                   week: dt.date) -> pd.DataFrame:
    """The campaign's send log (campaign_contacts): one message per treated, reached target, on
    the target's channel, at SEND_TIME on the week's Monday; in key order."""
    treated = contacts[(contacts["assignment"] == "treatment") & contacts["reached"]]
    customer = treated["customer_index"].to_numpy()
    sent = pd.DataFrame({
        "customer_id": customers["customer_id"].to_numpy()[customer],
        "product_id": ids[treated["product_index"].to_numpy()],
        "sent_at": dt.datetime.combine(week, SEND_TIME).strftime("%Y-%m-%d %H:%M:%S"),
        "channel": treated["channel"].to_numpy(),
    }, columns=TABLE_COLUMNS["campaign_contacts"])
    return (sent.drop_duplicates(["customer_id", "product_id"])
            .sort_values(["customer_id", "product_id"], kind="stable").reset_index(drop=True))


def _extend_truth(truth_dir: Path, week: dt.date, ids: np.ndarray, with_plan: pd.DataFrame,
                  sold: np.ndarray, stocked_out: np.ndarray) -> None:
    """history_truth and carryover_truth one week on; generator.json's weeks moved."""
    history = pd.DataFrame({"product_id": ids, "week_start": week.isoformat(),
                            "expected_units": with_plan["units"].to_numpy().round(6),
                            "sold_units": sold, "stocked_out": stocked_out})
    _append(history, truth_dir / "history_truth.csv")
    carry = pd.read_csv(truth_dir / "carryover_truth.csv")
    dips = with_plan["dip_units"].to_numpy()
    new = pd.DataFrame({
        "product_id": np.repeat(ids, len(DIP_WEIGHTS)),
        "week_start": np.tile([(week + dt.timedelta(days=7 * (k + 1))).isoformat()
                               for k in range(len(DIP_WEIGHTS))], len(ids)),
        "dip_units": (dips[:, None] * np.asarray(DIP_WEIGHTS)[None, :]).ravel(),
    })
    carry = pd.concat([carry, new]).groupby(["product_id", "week_start"], as_index=False)[
        "dip_units"].sum()
    carry.round(6).to_csv(truth_dir / "carryover_truth.csv", index=False)
    meta_path = truth_dir / "generator.json"
    meta = json.loads(meta_path.read_text())
    meta["history_end"] = (week + dt.timedelta(days=6)).isoformat()
    meta["plan_week"] = (week + dt.timedelta(days=7)).isoformat()
    meta["simulated_weeks"] = [*meta.get("simulated_weeks", []), week.isoformat()]
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def simulate_run(run_id: str, settings=None) -> dict:
    """Simulate the plan week of a published run on its dataset's market."""
    from promoflow.run import RunFolder
    from promoflow.settings import get_settings

    s = settings or get_settings()
    folder = RunFolder(s.runs_dir / run_id)
    if not folder.plan_lines.exists():
        raise SimulationError(f"{folder.plan_lines} does not exist; run the weekly flow first.")
    run = folder.read_run()
    dataset = run.params.dataset
    truth_dir, landing_dir = s.ground_truth_dir / dataset, s.landing_dir / dataset
    if not (truth_dir / "products_truth.csv").exists():
        raise SimulationError(f"dataset {dataset} has no ground truth in {truth_dir}: only a "
                              "synthetic market can simulate its plan week.")
    targets = (pd.read_parquet(folder.plan_targets) if folder.plan_targets.exists()
               else pd.DataFrame(columns=["product_id", "customer_id", "assignment"]))
    return simulate_week(landing_dir, truth_dir, run.plan_week,
                         pd.read_parquet(folder.plan_lines), targets, run.params.seed)


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging
    from promoflow.warehouse import latest_published_run_id

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", help="simulate its latest published plan")
    parser.add_argument("--run-id", default=None, help="simulate this run's plan instead")
    args = parser.parse_args(argv)
    try:
        run_id = args.run_id or latest_published_run_id(args.dataset)
        if run_id is None:
            raise SimulationError(f"no published plan of dataset {args.dataset}; "
                                  "run make weekly first.")
        summary = simulate_run(run_id)
    except (SimulationError, FileNotFoundError) as error:
        print(f"simulate-week: {error}", file=sys.stderr)
        return 2
    log.info("simulated the week of %s: %s", summary["plan_week"], summary)
    print(f"Week of {summary['plan_week']} delivered to the landing folder: "
          f"{summary['orders']:,} orders, {summary['units_sold']:,} units, "
          f"{summary['contact_units']} bought after a contact. The next weekly run plans the "
          "week after; the truth of the effects is in the ground-truth folder (weeks/).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
