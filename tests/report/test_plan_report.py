"""The HTML plan report of a published run: a real file holding the plan's numbers and the
plots as embedded PNGs, a measured-results section once the week is measured, deterministic,
and one-sentence refusals."""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser

import matplotlib.image
import pytest

from report.plan_report import (
    PlanReportError,
    ensure_report,
    main,
    report_dir,
    report_path,
    write_report,
)
from tests.report.conftest import DATASET, MEASURED_RUN, PLAIN_RUN


class _Page(HTMLParser):
    """The images, table cells, element ids and external references of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.ids, self.cells, self.external = {}, set(), [], []
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images[attrs["id"]] = attrs["src"]
        for key in ("src", "href"):
            if re.match(r"(https?:)?//", attrs.get(key) or ""):
                self.external.append(attrs[key])
        if tag == "script":
            self.external.append("script")
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data.strip())


def _png(src: str):
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    data = base64.b64decode(src[len(prefix):])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(io.BytesIO(data), format="png")


@pytest.mark.integration
def test_the_report_holds_the_plan_and_its_plots(settings, published):
    _, _, plain = published
    path = write_report(PLAIN_RUN, settings)
    assert path == report_dir(settings) / f"{PLAIN_RUN}.html" == report_path(PLAIN_RUN, settings)
    assert path.parent == settings.gx_dir / "plan_reports"  # next to the Data Docs
    page = _Page(path.read_text())
    assert page.external == []  # self-contained: no CDN, no script
    assert set(page.images) == {"fig-budget", "fig-uplift", "fig-demand", "fig-backtest"}
    for src in page.images.values():
        height, width = _png(src).shape[:2]
        assert height > 100 and width > 300
    # the plan's numbers
    assert f"{plain['promotion_cost']:,.2f}" in page.cells
    assert f"{plain['expected_incremental_profit']:,.2f}" in page.cells
    assert str(plain["products_promoted"]) in page.cells
    # every line in the table, the binding constraints counted
    from promoflow.warehouse import connect

    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select product_id::text, binding_constraint from published.plan_lines "
                    "where run_id = %s", (PLAIN_RUN,))
        lines = cur.fetchall()
    assert len(lines) == plain["products_promoted"] > 0
    assert {p for p, _ in lines} <= set(page.cells)
    text = path.read_text()
    binding = re.search(r'<table id="binding">(.*?)</table>', text, re.DOTALL).group(1)
    counts = re.findall(r'<tr><td>([^<]*)</td><td class="n">(\d+)</td>', binding)
    assert {c: int(n) for c, n in counts} == {
        c: sum(1 for _, b in lines if b == c) for _, c in lines}
    assert "not-measured" in page.ids and "measured" not in page.ids


@pytest.mark.integration
def test_a_measured_week_adds_its_results(settings, published):
    _, lines, _ = published
    page = _Page(write_report(MEASURED_RUN, settings).read_text())
    assert "not-measured" not in page.ids
    assert {"measured", "effects", "results"} <= page.ids
    assert {"fig-results", "fig-effects"} <= set(page.images)
    for name in ("fig-results", "fig-effects"):
        assert _png(page.images[name]).shape[0] > 100
    realized = float((lines["incremental_profit"] + 1.5).sum())
    assert f"{realized:,.2f}" in page.cells
    assert f"{float(lines['incremental_profit'].sum()):,.2f}" in page.cells
    assert "+0.0400" in page.cells and "[-0.0100, +0.0900]" in page.cells  # treated - holdout
    assert "0.210" in page.cells  # the week's WAPE


@pytest.mark.integration
def test_the_same_rows_give_the_same_bytes_and_an_index(settings, published):
    first = write_report(PLAIN_RUN, settings).read_bytes()
    assert write_report(PLAIN_RUN, settings).read_bytes() == first
    path = report_path(PLAIN_RUN, settings)
    stamp = path.stat().st_mtime_ns
    assert ensure_report(PLAIN_RUN, settings) == path and path.stat().st_mtime_ns == stamp
    write_report(MEASURED_RUN, settings)
    index = (report_dir(settings) / "index.html").read_text()
    links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', index)
    ours = [(href, text) for href, text in links  # other tests' runs may have reports too
            if href in (f"{PLAIN_RUN}.html", f"{MEASURED_RUN}.html")]
    assert [href for href, _ in ours] == [f"{PLAIN_RUN}.html", f"{MEASURED_RUN}.html"]
    assert "week of 2026-12-07" in ours[0][1]  # latest plan week first


@pytest.mark.integration
def test_the_command_line_reports_a_datasets_latest_run(settings, published, capsys):
    assert main(["--dataset", DATASET]) == 0
    assert capsys.readouterr().out.strip() == (
        f"Plan report (HTML): {report_path(PLAIN_RUN, settings)}")
    assert main(["--run-id", MEASURED_RUN]) == 0
    assert capsys.readouterr().out.strip().endswith(f"{MEASURED_RUN}.html")


@pytest.mark.integration
@pytest.mark.parametrize("args, message", [
    (["--run-id", "no_such_run"], "report: run no_such_run has no published plan;"),
    (["--run-id", "../etc"], "report: '../etc' is not a run id"),
    (["--dataset", "nothing_here"], "report: dataset nothing_here has no published plan;"),
])
def test_bad_input_is_refused_in_one_sentence(settings, published, capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)
    assert not (report_dir(settings) / "no_such_run.html").exists()


@pytest.mark.integration
def test_an_unknown_run_raises(settings, published):
    with pytest.raises(PlanReportError, match="run nope has no published plan"):
        write_report("nope", settings)
