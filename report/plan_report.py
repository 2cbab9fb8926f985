"""The plan report: one self-contained HTML file per published run, next to the Data Docs.

    python -m report.plan_report --dataset demo       (the dataset's latest published run)
    python -m report.plan_report --run-id RUN_ID      (make report DATASET=demo [RUN_ID=...])

`write_report(run, settings)` reads the run's published rows by run id (`published.plans`,
`plan_lines`, `plan_offers`, `forecasts`, `forecast_backtest`) and, once its plan week has been
measured, the measured results of that (dataset, plan week) (`published.plan_results`,
`experiment_results`, `forecast_accuracy`), and writes `<gx_dir>/plan_reports/<run_id>.html`
with the folder's `index.html`. Plots: budget use by category, expected incremental units per
line with P10-P90, the forecaster's backtest per week and model, the demand curves of the top
lines, and, once measured, actual against forecast per line and treatment minus holdout. The
plots are matplotlib PNGs embedded in the file (no network, no JavaScript); the same rows give
the same bytes. The weekly DAG writes it after `publish`, `promo_measure` again after measuring.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from promoflow.run import DATASET_PATTERN, Run
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect, latest_published_run_id

log = logging.getLogger(__name__)

#: lines shown in the per-line plots (by expected incremental profit); the table lists all
TOP_LINES = 25
#: lines whose demand curves are drawn
DEMAND_CURVES = 6
#: categories shown in the budget plot; the rest are summed as one bar
TOP_CATEGORIES = 20
RUN_ID_PATTERN = r"[A-Za-z0-9_.-]+"
MEASURED_TABLES = ("plan_results", "experiment_results", "forecast_accuracy")


class PlanReportError(ValueError):
    """The report cannot be written (unknown run, no published plan); one sentence."""


@dataclass(frozen=True)
class ReportData:
    """What the report shows: the published run's rows and its week's measured results."""

    plan: dict
    lines: pd.DataFrame
    offers: pd.DataFrame
    forecasts: pd.DataFrame
    backtest: pd.DataFrame
    results: pd.DataFrame
    effects: pd.DataFrame
    accuracy: pd.DataFrame


def report_dir(settings: Settings) -> Path:
    """The reports' folder, next to the Great Expectations Data Docs."""
    return settings.gx_dir / "plan_reports"


def report_path(run_id: str, settings: Settings) -> Path:
    return report_dir(settings) / f"{run_id}.html"


# --- reading ---------------------------------------------------------------------------------

def _frame(cur, query: str, args: tuple) -> pd.DataFrame:
    cur.execute(query, args)
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def _checked_run_id(run_id: str) -> str:
    if not re.fullmatch(RUN_ID_PATTERN, run_id or "") or run_id in (".", ".."):
        raise PlanReportError(f"{run_id!r} is not a run id (letters, digits, _ . - only).")
    return run_id


def load(run_id: str, settings: Settings) -> ReportData:
    """The published rows of `run_id` and the measured results of its (dataset, plan week)."""
    _checked_run_id(run_id)
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.plans') is not null")
        plans = _frame(cur, "select * from published.plans where run_id = %s", (run_id,)) \
            if cur.fetchone()[0] else pd.DataFrame()
        if plans.empty:
            raise PlanReportError(f"run {run_id} has no published plan; give the run id of a row "
                                  "of published.plans or a dataset with a published plan.")
        plan = plans.iloc[0].to_dict()
        cur.execute("select to_regclass('published.current_plans') is not null")
        if cur.fetchone()[0]:  # plans are versioned: is this run its week's current version?
            cur.execute("select run_id from published.current_plans where dataset = %s "
                        "and plan_week = %s", (plan["dataset"], plan["plan_week"]))
            current = (cur.fetchone() or [None])[0]
            plan["current_version"] = "yes" if current == run_id else f"no (current: {current})"
        lines = _frame(cur, "select * from published.plan_lines where run_id = %s "
                       "order by expected_incremental_profit desc, product_id", (run_id,))
        offers = _frame(cur, "select product_id, segment_id, expected_spend from "
                        "published.plan_offers where run_id = %s order by 1, 2", (run_id,))
        top = [int(p) for p in lines["product_id"].head(DEMAND_CURVES)]
        forecasts = _frame(cur, "select product_id, discount_depth, units_p10, units_p50, "
                           "units_p90 from published.forecasts where run_id = %s "
                           "and product_id = any(%s) order by 1, 2", (run_id, top))
        backtest = _frame(cur, "select week_start, model, rows, wape, bias, p10_p90_coverage "
                          "from published.forecast_backtest where run_id = %s "
                          "order by week_start, model", (run_id,))
        measured = {}
        for table in MEASURED_TABLES:
            cur.execute("select to_regclass(%s) is not null", (f"published.{table}",))
            measured[table] = _frame(
                cur, f"select * from published.{table} where dataset = %s and plan_week = %s "
                f"order by 1, 2, 3", (plan["dataset"], plan["plan_week"])) \
                if cur.fetchone()[0] else pd.DataFrame()
    return ReportData(plan, lines, offers, forecasts, backtest, measured["plan_results"],
                      measured["experiment_results"], measured["forecast_accuracy"])


# --- plots -----------------------------------------------------------------------------------

def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.subplots(nrows, ncols, squeeze=False).ravel()


def _png(figure) -> str:
    """The figure as a base64 PNG without a software or date stamp (same rows, same bytes)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _label(row) -> str:
    name = row.product_name if isinstance(row.product_name, str) else ""
    return f"{row.product_id} {name[:24]}".strip()


def budget_figure(data: ReportData) -> str:
    """Promotion cost (and personal offers' expected spend) per category against the budget."""
    lines, plan = data.lines, data.plan
    spend = pd.DataFrame({"lines": lines.groupby("category")["promotion_cost"].sum()})
    offers = data.offers.merge(lines[["product_id", "category"]], on="product_id")
    spend["offers"] = offers.groupby("category")["expected_spend"].sum().astype(float)
    spend = spend.astype(float).fillna(0.0)
    spend = spend.loc[(spend["lines"] + spend["offers"]).sort_values(ascending=False).index]
    if len(spend) > TOP_CATEGORIES:
        rest = spend.iloc[TOP_CATEGORIES - 1:]
        spend = pd.concat([spend.iloc[:TOP_CATEGORIES - 1],
                           rest.sum().rename(f"{len(rest)} other categories").to_frame().T])
    spend = spend.iloc[::-1]
    figure, (ax,) = _figure(8, 1.2 + 0.3 * max(len(spend), 1))
    ax.barh(spend.index, spend["lines"], color="#4472c4", label="promotion cost (lines)")
    if spend["offers"].any():
        ax.barh(spend.index, spend["offers"], left=spend["lines"], color="#ed7d31",
                label="personal offers (expected spend)")
    used = float(plan["promotion_cost"]) + float(data.offers["expected_spend"].sum())
    budget = float(plan["budget"])
    ax.set_title(f"Budget use by category: {used:,.2f} of {budget:,.2f}"
                 f" ({100 * used / budget if budget else 0:.0f}%)")
    ax.set_xlabel("discount money given away")
    ax.legend(loc="lower right", fontsize="small")
    return _png(figure)


def uplift_figure(data: ReportData) -> str:
    """Expected incremental units (P50, P10-P90) and profit of the top lines."""
    top = data.lines.head(TOP_LINES).iloc[::-1]
    labels = [_label(row) for row in top.itertuples()]
    base = top["baseline_units_p50"].to_numpy(float)
    p10, p50, p90 = (top[c].to_numpy(float) - base for c in ("units_p10", "units_p50",
                                                               "units_p90"))
    figure, (left, right) = _figure(10, 1.2 + 0.28 * max(len(top), 1), ncols=2)
    left.errorbar(p50, labels, xerr=[np.clip(p50 - p10, 0, None), np.clip(p90 - p50, 0, None)],
                  fmt="o", color="#4472c4", ecolor="#9dc3e6", capsize=3)
    left.axvline(0, color="grey", linewidth=0.8)
    left.set_title("Expected incremental units (P50, P10-P90)")
    left.set_xlabel("units over the no-promotion P50")
    right.barh(labels, top["expected_incremental_profit"], color="#70ad47")
    right.axvline(0, color="grey", linewidth=0.8)
    right.set_yticklabels([])
    right.set_title("Expected incremental profit")
    return _png(figure)


def backtest_figure(data: ReportData) -> str:
    """WAPE and bias (forecast / actual - 1) per backtest week and model."""
    weekly = data.backtest[data.backtest["week_start"] != "overall"]
    weekly = weekly.assign(week_start=pd.to_datetime(weekly["week_start"]))
    figure, (left, right) = _figure(10, 3.2, ncols=2)
    for model, rows in weekly.groupby("model"):
        left.plot(rows["week_start"], rows["wape"], marker="o", label=model)
        right.plot(rows["week_start"], rows["bias"], marker="o", label=model)
    left.set_title("Backtest WAPE per week (lower is better)")
    right.set_title("Backtest bias: forecast / actual - 1")
    right.axhline(0, color="grey", linewidth=0.8)
    for ax in (left, right):
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    left.legend(fontsize="small")
    return _png(figure)


def demand_figure(data: ReportData) -> str:
    """Units P10/P50/P90 against discount depth of the top lines, the chosen depth marked."""
    top = data.lines.head(DEMAND_CURVES)
    figure, axes = _figure(10, 5.6, ncols=3, nrows=2)
    for ax, row in zip(axes, top.itertuples(), strict=False):
        curve = data.forecasts[data.forecasts["product_id"] == row.product_id]
        depth = 100 * curve["discount_depth"].to_numpy(float)
        ax.fill_between(depth, curve["units_p10"], curve["units_p90"], color="#9dc3e6",
                        label="P10-P90")
        ax.plot(depth, curve["units_p50"], marker="o", color="#4472c4", label="P50")
        ax.axvline(100 * row.discount_depth, color="#ed7d31", linestyle="--", label="chosen")
        ax.set_title(_label(row), fontsize="small")
        ax.set_xlabel("% off", fontsize="small")
    for ax in axes[len(top):]:
        ax.set_visible(False)
    axes[0].set_ylabel("units in the plan week")
    axes[0].legend(fontsize="x-small")
    return _png(figure)


def results_figure(data: ReportData) -> str:
    """Measured: actual against forecast units per line, realized against planned profit."""
    results = data.results.sort_values(["planned_incremental_profit", "product_id"],
                                       ascending=[False, True])
    figure, (left, right) = _figure(10, 4.2, ncols=2)
    left.scatter(results["forecast_units"], results["actual_units"], color="#4472c4",
                 label="at the chosen discount")
    left.scatter(results["baseline_units"], results["actual_units"], color="#a5a5a5",
                 marker="x", label="no-promotion baseline")
    high = float(max(results[["forecast_units", "actual_units", "baseline_units"]].max().max(),
                     1.0))
    left.plot([0, high], [0, high], color="grey", linewidth=0.8)
    left.set_xlabel("forecast units")
    left.set_ylabel("actual units")
    left.set_title("Actual against forecast per line")
    left.legend(fontsize="small")
    top = results.head(TOP_LINES).iloc[::-1]
    position = np.arange(len(top))
    right.barh(position - 0.2, top["planned_incremental_profit"], height=0.4, color="#a9d18e",
               label="planned")
    right.barh(position + 0.2, top["realized_incremental_profit"], height=0.4, color="#548235",
               label="realized")
    right.set_yticks(position, [str(p) for p in top["product_id"]], fontsize="small")
    right.axvline(0, color="grey", linewidth=0.8)
    right.set_title("Incremental profit per line (product id)")
    right.legend(fontsize="small")
    return _png(figure)


def effects_figure(effects: pd.DataFrame) -> str:
    """Treatment minus holdout purchase rate per product with its 95% interval."""
    rows = effects[(effects["scope"] == "product") & (effects["metric"] == "purchase_rate")]
    rows = rows.sort_values("product_id").head(TOP_LINES).iloc[::-1]
    figure, (ax,) = _figure(8, 1.2 + 0.28 * max(len(rows), 1))
    labels = [str(int(p)) for p in rows["product_id"]]
    difference = rows["difference"].to_numpy(float)
    ax.errorbar(difference, labels, xerr=[difference - rows["ci_low"].to_numpy(float),
                                          rows["ci_high"].to_numpy(float) - difference],
                fmt="o", color="#4472c4", ecolor="#9dc3e6", capsize=3)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_title("Purchase rate, treatment minus holdout, per product (95% interval)")
    ax.set_ylabel("product id")
    return _png(figure)


# --- HTML ------------------------------------------------------------------------------------

CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;
font-size:0.9em}td.n{text-align:right}th{background:#eee}img{max-width:100%}
.note{color:#555;font-size:0.9em}"""


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "<td></td>"
    if fmt and isinstance(value, int | float | np.integer | np.floating):
        return f'<td class="n">{format(value, fmt)}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(frame: pd.DataFrame, columns: dict[str, tuple[str, str | None]],
           table_id: str) -> str:
    """`columns`: frame column -> (header, number format or None)."""
    head = "".join(f"<th>{html.escape(label)}</th>" for label, _ in columns.values())
    body = "".join("<tr>" + "".join(_cell(row[c], fmt) for c, (_, fmt) in columns.items())
                   + "</tr>\n" for row in frame.to_dict("records"))
    return f'<table id="{table_id}"><tr>{head}</tr>\n{body}</table>'


def _image(png: str, alt: str, image_id: str) -> str:
    return f'<p><img id="{image_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{png}"></p>'


def _number(value, fmt: str = ",.2f") -> str:
    return "" if value is None or pd.isna(value) else format(value, fmt)


PLAN_ROWS = [  # (label, plan column, format)
    ("dataset", "dataset", None), ("plan week", "plan_week", None),
    ("current version of its week", "current_version", None),
    ("published at", "published_at", None), ("products considered", "products_considered", ","),
    ("products promoted", "products_promoted", ","), ("budget", "budget", ",.2f"),
    ("promotion cost", "promotion_cost", ",.2f"),
    ("spend at the budget confidence", "spend_at_confidence", ",.2f"),
    ("budget confidence", "budget_confidence", ".0%"),
    ("expected incremental revenue", "expected_incremental_revenue", ",.2f"),
    ("expected incremental profit (net of dip and cannibalization)",
     "expected_incremental_profit", ",.2f"),
    ("expected post-promotion dip cost", "expected_dip_cost", ",.2f"),
    ("expected cannibalization cost", "expected_cannibalization_cost", ",.2f"),
    ("expected incremental buyers from contacts", "expected_contact_units", ",.1f"),
    ("personal offers", "offers", ","), ("offer recipients", "offer_recipients", ","),
    ("offers' expected spend", "offer_cost", ",.2f"),
    ("discount program (HiGHS) status", "solver_status", None), ("MIP gap", "mip_gap", ".2%"),
    ("max discount", "max_discount", ".0%"), ("margin floor", "margin_floor", ".0%"),
    ("holdout fraction", "holdout_fraction", ".0%"), ("seed", "seed", None),
]
LINE_COLUMNS = {
    "product_id": ("product", None), "product_name": ("name", None),
    "category": ("category", None), "discount_depth": ("discount", ".0%"),
    "promo_price": ("promoted price", ",.2f"), "baseline_units_p50": ("no-promotion P50", ",.1f"),
    "units_p10": ("units P10", ",.1f"), "units_p50": ("units P50", ",.1f"),
    "units_p90": ("units P90", ",.1f"), "promotion_cost": ("promotion cost", ",.2f"),
    "expected_incremental_profit": ("expected incremental profit", ",.2f"),
    "binding_constraint": ("binding constraint", None),
}


def _plan_table(plan: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(label)}</th>"
        + _cell(plan.get(column), fmt).replace('<td class="n">', "<td>") + "</tr>\n"
        for label, column, fmt in PLAN_ROWS if column in plan)
    return f'<table id="plan">{rows}</table>'


def _binding_table(lines: pd.DataFrame) -> str:
    counts = (lines.groupby("binding_constraint")
              .agg(lines=("product_id", "size"), promotion_cost=("promotion_cost", "sum"),
                   profit=("expected_incremental_profit", "sum"))
              .reset_index().sort_values(["lines", "binding_constraint"], ascending=[False, True]))
    return _table(counts, {"binding_constraint": ("binding constraint or reason", None),
                           "lines": ("lines", ","), "promotion_cost": ("promotion cost", ",.2f"),
                           "profit": ("expected incremental profit", ",.2f")}, "binding")


def _measured_section(data: ReportData) -> str:
    plan = data.plan
    if data.results.empty:
        return ("<h2>Measured results</h2>\n<p id=\"not-measured\">Not measured yet: "
                "published.plan_results holds no rows for dataset "
                f"{html.escape(str(plan['dataset']))}, week {plan['plan_week']}. Once the week's "
                "sales are in, <code>make measure</code> (or the DAG promo_measure) measures it "
                "and writes this report again.</p>")
    results = data.results
    runs = sorted(set(results["run_id"]))
    note = "" if runs == [plan["run_id"]] else (
        f"<p class=\"note\">Measured for run {html.escape(', '.join(runs))}.</p>")
    planned = float(results["planned_incremental_profit"].sum())
    realized = float(results["realized_incremental_profit"].sum())
    cost = float(results["promotion_cost"].sum())
    summary = {"lines measured": (len(results), ","),
               "planned incremental profit": (planned, ",.2f"),
               "realized incremental profit": (realized, ",.2f"),
               "realized incremental units": (results["realized_incremental_units"].sum(), ",.1f"),
               "promotion cost": (cost, ",.2f"),
               "ROI (realized incremental profit / promotion cost)":
                   (realized / cost if cost else None, ".2f")}
    if not data.accuracy.empty:
        accuracy = data.accuracy.iloc[0]
        summary.update({"forecast WAPE (all products)": (accuracy["wape"], ".3f"),
                        "forecast bias (forecast / actual - 1)": (accuracy["bias"], "+.1%"),
                        "P10-P90 coverage": (accuracy["p10_p90_coverage"], ".0%")})
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{_number(v, f)}</td></tr>\n"
                   for k, (v, f) in summary.items())
    parts = ["<h2>Measured results</h2>", note, f'<table id="measured">{rows}</table>',
             _image(results_figure(data), "actual against forecast per line", "fig-results")]
    effects = data.effects
    if not effects.empty:
        overall = effects[effects["scope"] == "overall"].assign(
            interval=lambda f: [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in
                                zip(f["ci_low"], f["ci_high"], strict=True)])
        parts += ["<h3>Treatment minus holdout (all targets)</h3>",
                  _table(overall, {"metric": ("metric", None), "test": ("test", None),
                                   "treated_n": ("treated", ","), "control_n": ("holdout", ","),
                                   "treated_value": ("treated value", ".4f"),
                                   "control_value": ("holdout value", ".4f"),
                                   "difference": ("difference", "+.4f"),
                                   "interval": ("95% interval", None),
                                   "p_value": ("p-value", ".3g"), "mde": ("MDE (80% power)", ".4f")},
                         "effects")]
        if ((effects["scope"] == "product") & (effects["metric"] == "purchase_rate")).any():
            parts.append(_image(effects_figure(effects), "treatment minus holdout per product",
                                "fig-effects"))
    parts.append(_table(results.sort_values("product_id"), {
        "product_id": ("product", None), "discount_depth": ("discount", ".0%"),
        "forecast_units": ("forecast units", ",.1f"), "baseline_units": ("baseline units", ",.1f"),
        "actual_units": ("actual units", ",.1f"),
        "planned_incremental_profit": ("planned incremental profit", ",.2f"),
        "realized_incremental_profit": ("realized incremental profit", ",.2f"),
        "roi": ("ROI", ".2f"), "dip_units": ("dip units (following weeks)", ",.1f")},
        "results"))
    return "\n".join(parts)


def render(data: ReportData, data_docs: Path | None = None) -> str:
    """The report's HTML: every plot embedded, no external resource."""
    plan, lines = data.plan, data.lines
    title = (f"Promotion plan: week of {plan['plan_week']}, dataset {plan['dataset']} "
             f"(run {plan['run_id']})")
    parts = [f"<h1>{html.escape(title)}</h1>", _plan_table(plan)]
    if lines.empty:
        parts.append('<p id="no-lines">The plan promotes no product.</p>')
    else:
        shown = f"the top {min(TOP_LINES, len(lines))} of {len(lines)} lines"
        parts += [
            "<h2>Budget use by category</h2>",
            _image(budget_figure(data), "budget use by category", "fig-budget"),
            "<h2>Expected effect per line</h2>",
            (f'<p class="note">{shown} by expected incremental profit; all lines are in the '
             "table below.</p>"),
            _image(uplift_figure(data), "expected incremental units per line", "fig-uplift"),
            "<h2>Demand curves of the top lines</h2>",
            _image(demand_figure(data), "demand curves", "fig-demand"),
            "<h2>Binding constraints</h2>", _binding_table(lines),
        ]
    parts.append("<h2>Forecaster backtest</h2>")
    if data.backtest.empty:
        parts.append('<p id="no-backtest">No backtest was published with this run.</p>')
    else:
        parts += [('<p class="note">The backtest keeps per-week metrics of each model, not the '
                   "unit series: forecast against actual is shown as the bias, the forecast's "
                   "sum over the actual's minus 1. Actual against forecast per line follows in "
                   "the measured results once the plan week is measured.</p>"),
                  _image(backtest_figure(data), "backtest per week and model", "fig-backtest")]
        overall = data.backtest[data.backtest["week_start"] == "overall"]
        if not overall.empty:
            parts.append(_table(overall, {
                "model": ("model (all weeks)", None), "rows": ("rows", ","),
                "wape": ("WAPE", ".3f"), "bias": ("bias", "+.1%"),
                "p10_p90_coverage": ("P10-P90 coverage", ".0%")}, "backtest"))
    parts.append(_measured_section(data))
    if not lines.empty:
        parts += ["<h2>Plan lines</h2>", _table(lines, LINE_COLUMNS, "lines")]
    if data_docs is not None:
        parts.append(f'<p class="note">Data quality: <a href="{html.escape(data_docs)}">Great '
                     "Expectations Data Docs</a>.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(p for p in parts if p) + "\n</body></html>\n")


# --- files -----------------------------------------------------------------------------------

def _write(path: Path, text: str) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_index(settings: Settings) -> Path:
    """index.html listing every report of the folder, latest plan week first."""
    folder = report_dir(settings)
    entries = []
    for path in folder.glob("*.html"):
        if path.name == "index.html":
            continue
        found = re.search(r"<title>(.*?)</title>", path.read_text(encoding="utf-8")[:2000])
        entries.append((found.group(1) if found else html.escape(path.stem), path.name))
    items = "".join(f'<li><a href="{html.escape(name)}">{title}</a></li>\n'
                    for title, name in sorted(entries, reverse=True))
    index = folder / "index.html"
    _write(index, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>Promotion plan reports</title><style>{CSS}</style></head>\n<body>\n"
           f"<h1>Promotion plan reports</h1>\n<ul>\n{items}</ul>\n</body></html>\n")
    return index


def write_report(run: Run | str, settings: Settings | None = None) -> Path:
    """Write the report of a published run (a Run or its id) and the index; its path."""
    s = settings or get_settings()
    run_id = run.run_id if isinstance(run, Run) else str(run)
    data = load(run_id, s)
    docs = s.gx_dir / "data_docs" / "index.html"
    path = report_path(run_id, s)
    _write(path, render(data, os.path.relpath(docs, path.parent) if docs.exists() else None))
    write_index(s)
    log.info("Plan report of run %s written to %s", run_id, path)
    return path


def write_reports(run_ids: Iterable[str], settings: Settings | None = None) -> list[Path]:
    """The reports of several runs (each once), e.g. of the plan weeks just measured."""
    return [write_report(run_id, settings) for run_id in sorted(set(run_ids))]


def ensure_report(run_id: str, settings: Settings | None = None) -> Path:
    """The run's report, written when it does not exist yet."""
    s = settings or get_settings()
    path = report_path(_checked_run_id(run_id), s)
    return path if path.exists() else write_report(run_id, s)


def latest_run_id(dataset: str, settings: Settings) -> str:
    if not re.fullmatch(DATASET_PATTERN, dataset) or dataset in (".", ".."):
        raise PlanReportError(f"dataset {dataset!r} is not a folder name (letters, digits, "
                              "_ . - only).")
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.plans') is not null")
        exists = cur.fetchone()[0]
    run_id = latest_published_run_id(dataset, settings) if exists else None
    if run_id is None:
        raise PlanReportError(f"dataset {dataset} has no published plan; run the weekly flow "
                              f"first (make weekly DATASET={dataset}).")
    return run_id


def main(argv: list[str] | None = None) -> int:
    from promoflow.logs import setup_logging
    from promoflow.warehouse import WarehouseUnavailable

    setup_logging()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="a published run (a run_id of published.plans)")
    which.add_argument("--dataset", default="demo",
                       help="the dataset whose latest published run to report (default: demo)")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        run_id = args.run_id if args.run_id is not None else latest_run_id(args.dataset, settings)
        path = write_report(run_id, settings)
    except (PlanReportError, WarehouseUnavailable) as error:
        print(f"report: {error}", file=sys.stderr)
        return 2
    print(f"Plan report (HTML): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
