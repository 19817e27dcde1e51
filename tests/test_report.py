"""`district-benchmarks report`: the district and state pages carry the database's figures with their units, one
chart per metric and view with its title and axis labels, nothing fetched from outside; bad input is one line and
writes nothing. (tests/test_report_browser.py opens the pages in Chromium.)"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from decimal import Decimal

import psycopg
import pytest
from click.testing import CliRunner
from psycopg.rows import dict_row

from loader import report, report_html
from loader.cli import cli
from loader.report import METRICS, TIER_LABELS
from loader.report_html import UNITS, fmt_difference, fmt_trend, fmt_value

SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def sections(page: str) -> dict[str, str]:
    """The page's part for each metric: from its <section id=...> to the next section."""
    found = {}
    for m in METRICS:
        start = page.index(f'<section id="{m}">')
        found[m] = page[start:page.index("</section>", start)]
    return found


def svg_text(svg: str) -> str:
    """The text drawn in a chart (matplotlib writes it as <text> elements), entities decoded."""
    import html
    return html.unescape(" ".join(re.findall(r"<text\b[^>]*>(.*?)</text>", svg, re.S)))


def assert_self_contained(page: str) -> None:
    assert "<script" not in page and "<link" not in page and "<img" not in page and "@import" not in page
    assert not re.search(r"""(src|href)=["'](?!#)""", page), "a reference to another file or address"
    assert not re.search(r"url\((?!#)", page), "a CSS url() to another file or address"
    assert "default-src 'none'" in page          # and the browser is told to fetch nothing


@pytest.fixture(scope="module")
def district_page(sample_dsn, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "oakford.html"
    res = invoke("report", "4100030", "--out", str(out), "--dsn", sample_dsn)
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out} (") and res.output.count("\n") == 1
    return out.read_text()


def test_the_district_page_quotes_every_figure_with_its_unit(district_page, sample_dsn):
    with psycopg.connect(sample_dsn, row_factory=dict_row) as conn:
        rows = {r["metric"]: r for r in conn.execute("SELECT * FROM district_benchmarks WHERE leaid = '4100030'")}
        peers = conn.execute("SELECT count(*) AS n FROM district_peers WHERE leaid = '4100030'").fetchone()["n"]
    assert "Oakford Charter Academy" in district_page and "LEAID 4100030" in district_page
    assert f"{peers} peer districts" in district_page and peers == 40
    assert_self_contained(district_page)
    for m, part in sections(district_page).items():
        r = rows[m]
        assert r["value"] is not None and r["vs_peers"] is not None      # the sample district has them all
        for figure in (fmt_value(m, r["value"]), fmt_value(m, r["state_avg"]), fmt_value(m, r["national_avg"]),
                       fmt_value(m, r["peer_avg"]), fmt_difference(m, r["vs_state"]),
                       fmt_difference(m, r["vs_national"]), fmt_difference(m, r["vs_peers"]),
                       TIER_LABELS[r["quartile_state"]], fmt_trend(m, r["trend_3yr"])):
            assert figure in part, (m, figure)
    absent = sections(district_page)["absenteeism"]
    assert "10.86%" in absent and "−15.01 pts" in absent and "(better)" in absent      # lower absenteeism: better
    assert "+1.44 pts" in absent and "(worse)" in absent and "value (2022-23)" in absent
    assert "+$541" in sections(district_page)["expenditure_pp"]                        # dollars, not judged
    assert "(better)" not in sections(district_page)["expenditure_pp"]


def test_the_district_page_draws_two_labelled_charts_per_metric(district_page, sample_dsn):
    with psycopg.connect(sample_dsn) as conn:
        counts = dict(conn.execute(
            "SELECT metric, count(*) FROM district_benchmarks b JOIN districts d USING (leaid) "
            " WHERE d.state_fips = '41' AND b.value IS NOT NULL GROUP BY metric").fetchall())
        years = [y for (y,) in conn.execute(
            "SELECT year FROM district_data_history WHERE leaid = '4100030' AND source = 'crdc_absenteeism' "
            "   AND chronic_absenteeism_rate >= 0 ORDER BY year")]
    assert len(SVG.findall(district_page)) == 16
    for m, part in sections(district_page).items():
        label, axis, unit = METRICS[m][0], UNITS[m][1], UNITS[m][3]
        dist, hist = SVG.findall(part)
        title = f"{label}: {counts[m]} districts of Oregon"
        assert f'aria-label="{title}"' in dist and f'aria-label="{label} by year (3-year trend ' in hist
        assert title in svg_text(dist) and axis in svg_text(dist) and "districts" in svg_text(dist)
        assert "school year" in svg_text(hist) and unit in svg_text(hist)
        for tier in ("well below", "below", "above", "well above"):        # the bands are named, not only shaded
            assert tier in svg_text(dist)
        assert "this district" in svg_text(dist) and "Oregon average" in svg_text(dist)
        assert "national average" in svg_text(dist) and "average of its 40 peers" in svg_text(dist)
    hist = SVG.findall(sections(district_page)["absenteeism"])[1]
    assert years == [2017, 2020, 2021, 2022] and "10.86%" in svg_text(hist)
    assert "Chronic absenteeism by year (3-year trend +1.44 pts)" in svg_text(hist)
    ids = re.findall(r'\bid="([^"]+)"', district_page)
    assert len(ids) == len(set(ids)), "an id used twice in the page"


def test_the_state_page_shows_distributions_cutoffs_averages_and_the_extremes(sample_dsn, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("report", "--state", "or", "--dsn", sample_dsn)         # default name; abbreviation any case
    assert res.exit_code == 0, res.output
    page = (tmp_path / "state-OR.html").read_text()
    assert_self_contained(page)
    assert "<h1>Oregon</h1>" in page and len(SVG.findall(page)) == 8
    with psycopg.connect(sample_dsn, row_factory=dict_row) as conn:
        for m, part in sections(page).items():
            avg = conn.execute(f"SELECT s.{report.STATE_AVG_COLUMNS[m]} AS st, n.{report.STATE_AVG_COLUMNS[m]} AS nat "
                               "  FROM states s, states n WHERE s.fips = '41' AND n.fips = '00'").fetchone()
            assert fmt_value(m, avg["st"]) in part and fmt_value(m, avg["nat"]) in part
            cut = {r["quartile_state"]: r["lo"] for r in conn.execute(
                "SELECT quartile_state, min(value) AS lo FROM district_benchmarks b JOIN districts d USING (leaid) "
                " WHERE d.state_fips = '41' AND metric = %s AND quartile_state IS NOT NULL GROUP BY 1", (m,))}
            for tier in ("well_above", "above", "below"):
                assert f"{TIER_LABELS[tier]} from {fmt_value(m, cut[tier])}" in part, (m, tier)
            top = conn.execute(
                "SELECT leaid FROM district_benchmarks b JOIN districts d USING (leaid) "
                " WHERE d.state_fips = '41' AND metric = %s AND vs_state > 0 ORDER BY vs_state DESC, leaid LIMIT 5",
                (m,)).fetchall()
            bottom = conn.execute(
                "SELECT leaid FROM district_benchmarks b JOIN districts d USING (leaid) "
                " WHERE d.state_fips = '41' AND metric = %s AND vs_state < 0 ORDER BY vs_state, leaid LIMIT 5",
                (m,)).fetchall()
            above = part[part.index("Furthest above"):part.index("Furthest below")]
            below = part[part.index("Furthest below"):]
            assert re.findall(r"<td>(\d{7})</td>", above) == [r["leaid"] for r in top]
            assert re.findall(r"<td>(\d{7})</td>", below) == [r["leaid"] for r in bottom]
            (svg,) = SVG.findall(part)
            assert UNITS[m][1] in svg_text(svg) and "Oregon average" in svg_text(svg)
            assert "national average" in svg_text(svg) and "districts" in svg_text(svg)


def test_a_district_without_state_history_or_peers_still_gets_its_page(conn, dsn, tmp_path):
    conn.execute("INSERT INTO districts (leaid, name) VALUES ('0000001', 'Lone <District> & Co')")
    out = tmp_path / "lone.html"
    res = invoke("report", "1", "--out", str(out), "--dsn", dsn)
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "Lone &lt;District&gt; &amp; Co" in page and "no peer group" in page
    svgs = SVG.findall(page)
    assert len(svgs) == 16
    assert all("no district of its state has a value" in svg_text(s) for s in svgs[0::2])
    assert all("no history for this district" in svg_text(s) for s in svgs[1::2])


def test_the_same_data_gives_the_same_page(sample_dsn):
    with psycopg.connect(sample_dsn) as conn:
        data = report.district_report(conn, "4100030")
    when = dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)
    first = report_html.district_page(data, generated=when)
    assert first == report_html.district_page(data, generated=when)
    assert "2025-01-02 00:00 UTC" in first


def test_bad_requests_are_one_line_and_write_nothing(sample_dsn, tmp_path):
    out = tmp_path / "keep.html"
    out.write_text("an earlier report")
    cases = [
        (["report", "--out", str(out)], 2, "give either a LEAID or --state XX"),
        (["report", "4100030", "--state", "OR", "--out", str(out)], 2, "give either a LEAID or --state XX"),
        (["report", "4199999", "--out", str(out)], 1, "no district with LEAID 4199999"),
        (["report", "41-0030", "--out", str(out)], 2, "LEAID must be up to 7 digits"),
        (["report", "--state", "ZZ", "--out", str(out)], 2, "no state 'ZZ'"),
        (["report", "--state", "US", "--out", str(out)], 2, "no state 'US'"),
        (["report", "4100030", "--out", str(tmp_path / "missing" / "x.html")], 2, "does not exist"),
    ]
    for args, code, message in cases:
        res = CliRunner().invoke(cli, [*args, "--dsn", sample_dsn])
        assert res.exit_code == code and message in res.output, (args, res.output)
        assert "Traceback" not in res.output
        assert out.read_text() == "an earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.html"]      # no temporary file left behind


def test_without_matplotlib_the_command_says_how_to_install_it(sample_dsn, tmp_path):
    out = tmp_path / "x.html"
    code = ("import sys; sys.modules['matplotlib'] = None; from loader.cli import main; "
            f"sys.argv = ['district-benchmarks', 'report', '4100030', '--out', {str(out)!r}, '--dsn', {sample_dsn!r}]; "
            "main()")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().count("\n") == 0 and "Traceback" not in res.stderr
    assert "pip install 'district-benchmarks[report]'" in res.stderr and "matplotlib" in res.stderr
    assert not out.exists()


def test_tier_cutoffs_are_the_lowest_value_of_each_tier():
    rows = [{"value": Decimal(v), "quartile_state": t} for v, t in
            [(1, "well_below"), (2, "below"), (2, "below"), (4, "above"), (3, "above"), (5, "well_above"), (7, None)]]
    assert report.tier_cutoffs(rows) == {"well_below": 1, "below": 2, "above": 3, "well_above": 5}
    assert report.tier_cutoffs([{"value": Decimal(1), "quartile_state": None}]) == {}


def test_figures_read_as_a_person_quotes_them():
    assert fmt_value("absenteeism", Decimal("10.86")) == "10.86%"
    assert fmt_value("student_teacher_ratio", Decimal("18.58")) == "18.58 students per teacher"
    assert fmt_value("expenditure_pp", Decimal("20370.55")) == "$20,371"
    assert fmt_difference("expenditure_pp", Decimal("-540.64")) == "−$541"
    assert fmt_difference("graduation", Decimal("-7.17")) == "−7.17 pts"
    assert fmt_trend("swd_pct", Decimal("10")) == "+10.00%" and fmt_trend("math_proficiency", 2) == "+2.00 pts"
    assert report_html.judgement("absenteeism", Decimal("-1")) == "better"
    assert report_html.judgement("student_teacher_ratio", Decimal("0.3")) == "worse"
    assert report_html.judgement("graduation", Decimal("1")) == "better"
    assert report_html.judgement("ell_pct", Decimal("5")) == "" and report_html.judgement("graduation", 0) == ""
    assert fmt_value("graduation", None) == "—"


def test_a_few_extreme_values_do_not_squeeze_the_distribution():
    """Spending of $400,000 per pupil in one tiny district: the axis keeps to the bulk and the markers, and says
    where the extreme values went."""
    from loader import charts

    values = [10_000 + 100 * i for i in range(100)] + [400_000.0, 350_000.0]    # and no long tail below
    markers = [charts.Marker("this district $25,000", 25_000.0, "district")]
    svg = charts.distribution("t", "Spending per pupil", "$ per pupil", values, {}, markers,
                              lambda x: f"${x:,.0f}", "none")
    text = svg_text(svg)
    assert "2 above $25,000 in the last bar" in text and "first bar" not in text
    assert "$400,000" not in text and "$300,000" not in text        # no tick out there
    both = charts.distribution("v", "Spending per pupil", "$ per pupil", [1.0, 2.0] + values, {}, markers,
                               lambda x: f"${x:,.0f}", "none")
    assert "2 below $10,000 in the first bar; 2 above $25,000 in the last bar" in svg_text(both)   # "$" stays "$"
    plain = charts.distribution("u", "Spending per pupil", "$ per pupil", values[:100], {}, markers,
                                lambda x: f"${x:,.0f}", "none")
    assert "in the last bar" not in svg_text(plain)
