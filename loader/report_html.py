"""`district-benchmarks report`: a district's or a state's benchmarks as one self-contained HTML page.

The page holds everything it shows: inline CSS, and the charts as inline SVG drawn by loader/charts.py
(matplotlib, the `report` extra). No script, no font, no image is fetched when it is opened, and its
Content-Security-Policy forbids any. The data comes from loader/report.py (district_report, state_report).
This module imports without matplotlib; it is needed only when a page is drawn (require_charts says how to install
it).
"""
from __future__ import annotations

import datetime as dt
import html
import os
import tempfile
from decimal import Decimal
from pathlib import Path

from . import SQL_VERSION, __version__
from .errors import UserError
from .report import METRICS, TIER_LABELS, tier_cutoffs

INSTALL_HINT = "pip install 'district-benchmarks[report]'"

# Per metric: how its value reads (pct, ratio, usd), the axis label of a distribution, what its 3-year trend
# measures, and the unit on the axis of its history.
UNITS = {
    "absenteeism": ("pct", "chronically absent, % of students", "pts", "% of students"),
    "graduation": ("pct", "graduation rate, % of the cohort", "pts", "% of the cohort"),
    "student_teacher_ratio": ("ratio", "students per teacher (FTE)", "ratio", "students per teacher"),
    "swd_pct": ("pct", "students with disabilities, % of enrolment", "count", "% of enrolment"),
    "ell_pct": ("pct", "English learners, % of enrolment", "count", "% of enrolment"),
    "math_proficiency": ("pct", "proficient in math, % of students tested", "pts", "% of students tested"),
    "read_proficiency": ("pct", "proficient in reading, % of students tested", "pts", "% of students tested"),
    "expenditure_pp": ("usd", "current spending per pupil, $", "pct", "$ per pupil"),
}
TREND_MEANS = {
    "pts": "change in percentage points",
    "ratio": "change in students per teacher",
    "count": "% change in the number of students",
    "pct": "% change",
}
TIER_MEANS = {"well_above": "highest quarter", "above": "second-highest quarter", "below": "second-lowest quarter",
              "well_below": "lowest quarter"}
MINUS = "\u2212"


def require_charts():
    """loader.charts, or a UserError saying how to install the plotting extra."""
    try:
        from . import charts
    except ImportError as exc:
        raise UserError(f"the report needs {exc.name or 'matplotlib'}, which is not installed: {INSTALL_HINT}") \
            from exc
    return charts


# -- figures as a person quotes them ----------------------------------------------------------------------

def _signed(text: str) -> str:
    return text.replace("-", MINUS)


def fmt_value(metric: str, v, short: bool = False) -> str:
    """10.86%, 18.58 students per teacher (18.58 when short), $20,371."""
    if v is None:
        return "—"
    kind = UNITS[metric][0]
    v = Decimal(v) if not isinstance(v, float) else v
    if kind == "usd":
        return _signed(f"${v:,.0f}")
    if kind == "ratio":
        return f"{v:.2f}" + ("" if short else " students per teacher")
    return f"{v:.2f}%"


def fmt_tick(metric: str, x: float) -> str:
    """An axis tick: 12.5%, 18, $21k."""
    kind = UNITS[metric][0]
    if kind == "usd":
        return _signed(f"${x / 1000:g}k" if abs(x) >= 1000 else f"${x:,.0f}")
    return _signed(f"{x:g}") + ("%" if kind == "pct" else "")


def fmt_difference(metric: str, d, short: bool = False) -> str:
    """A difference to an average in the value's unit: −15.01 pts, +0.75 students per teacher, +$541."""
    if d is None:
        return "—"
    kind = UNITS[metric][0]
    d = Decimal(d)
    if kind == "usd":
        return _signed(f"{d:+,.0f}".replace("+", "+$").replace("-", "-$"))
    return _signed(f"{d:+.2f}") + (" pts" if kind == "pct" else "" if short else " students per teacher")


def fmt_trend(metric: str, t, short: bool = False) -> str:
    if t is None:
        return "—"
    kind = UNITS[metric][2]
    t = Decimal(t)
    return _signed(f"{t:+.2f}") + {"pts": " pts", "ratio": "" if short else " students per teacher"}.get(kind, "%")


def judgement(metric: str, d) -> str:
    """'better' / 'worse' for a signed difference or trend of a metric with a direction; '' otherwise."""
    direction = METRICS[metric][3]
    if d is None or not direction or d == 0:
        return ""
    return "better" if (d > 0) == (direction > 0) else "worse"


def _verdict(metric: str, d) -> str:
    word = judgement(metric, d)
    return f' <span class="{word}">({word})</span>' if word else ""


def _e(text) -> str:
    return html.escape("" if text is None else str(text))


# -- the page -----------------------------------------------------------------------------------------------

CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d5dae1; --better: #13663a; --worse: #a3161b; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; padding: 24px 28px 48px; max-width: 1240px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 15px; margin: 14px 0 6px; }
.sub { color: var(--muted); margin: 0 0 16px; }
table { border-collapse: collapse; margin: 8px 0 12px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top;
         white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-size: 13px; color: var(--muted); font-weight: 600; border-bottom: 2px solid var(--line); }
td.text, th.text, td.wrap { text-align: left; }
td.wrap { white-space: normal; }
.better { color: var(--better); font-weight: 600; }
.worse { color: var(--worse); font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 20px; align-items: flex-start; }
figure { margin: 0; display: table; }          /* the caption as wide as its chart */
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { display: table-caption; caption-side: bottom; font-size: 13px; color: var(--muted); margin-top: 2px; }
.lists { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 0 32px; }
.lists table { width: 100%; }
.notes { margin-top: 40px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--line); padding-top: 10px; }
section { break-inside: avoid; }
"""


def _page(title: str, body: str, generated: dt.datetime | None) -> str:
    when = (generated or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        # nothing is fetched at view time: no network, no CDN (the charts are inline SVG)
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n"
        f"<meta name=\"generator\" content=\"district-benchmarks {_e(__version__)}\">\n"
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<p class=\"notes\">Made by district-benchmarks {_e(__version__)} (SQL functions {_e(SQL_VERSION)}) on "
        f"{when}. Data: Urban Institute Education Data API (CCD, EDFacts, CRDC, SAIPE). School years are "
        "named by their fall: 2022-23 is year 2022. <b>Tier</b>: where the value sits among the state's districts "
        "(well above = its highest quarter); it describes size, not quality. <b>3-year trend</b>: the latest year "
        "against up to three years before (absenteeism: the previous survey). <b>Better / worse</b>: lower "
        "absenteeism and fewer students per teacher, higher graduation and proficiency; shares of students with "
        "disabilities or learning English and spending are not judged.</p>\n</body>\n</html>\n")


def _state_label(state: dict | None) -> str:
    return state["name"] if state else "its state"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _cutoff_text(metric: str, cutoffs: dict) -> str:
    if not cutoffs:
        return "no tiers (fewer than 4 districts have a value)"
    order = [t for t in ("well_above", "above", "below") if t in cutoffs]
    parts = [f"{TIER_LABELS[t]} from {fmt_value(metric, cutoffs[t])}" for t in order]
    if "well_below" in cutoffs and order:
        parts.append(f"well below under {fmt_value(metric, cutoffs[order[-1]])}")
    return "; ".join(parts)


def district_page(data: dict, generated: dt.datetime | None = None) -> str:
    """The district page: a summary table, then per metric the figures to quote, where the district sits in its
    state's distribution (with the tier bands and the averages), and its history by year."""
    charts = require_charts()
    d, state = data["district"], data["state"]
    sname = _state_label(state)
    peers = d.get("peer_count") or 0
    facts = [f"LEAID {_e(d['leaid'])}"]
    facts += [_e(x) for x in (d.get("city"), d.get("state_name")) if x]
    if d.get("enrollment") is not None:
        facts.append(f"{d['enrollment']:,} students")
    if d.get("children_poverty_percent") is not None:
        facts.append(f"child poverty {d['children_poverty_percent']}%")
    facts.append(f"{peers} peer districts" if peers else "no peer group")
    body = [f"<header><h1>{_e(d['name'] or '(unnamed district)')}</h1><p class=\"sub\">{' · '.join(facts)}</p>"
            "</header>"]

    summary = ["<table class=\"summary\"><thead><tr><th>metric</th><th>value</th><th>vs state</th>"
               "<th>vs nation</th><th>vs peers</th><th class=\"text\">tier in state</th><th>3-year trend</th>"
               "</tr></thead><tbody>"]
    sections = []
    for r in d["metrics"]:
        m = r["metric"]
        if m not in METRICS:
            continue
        label = METRICS[m][0]
        _, axis, _, unit = UNITS[m]
        year = data["latest_year"].get(m)
        dist = data["distribution"][m]
        n = len(dist)
        cutoffs = tier_cutoffs(dist)
        tier = r["quartile_state"]
        summary.append(
            f"<tr><td><a href=\"#{m}\">{_e(label)}</a></td><td>{fmt_value(m, r['value'], True)}</td>"
            f"<td>{fmt_difference(m, r['vs_state'], True)}{_verdict(m, r['vs_state'])}</td>"
            f"<td>{fmt_difference(m, r['vs_national'], True)}{_verdict(m, r['vs_national'])}</td>"
            f"<td>{fmt_difference(m, r.get('vs_peers'), True)}{_verdict(m, r.get('vs_peers'))}</td>"
            f"<td class=\"text\">{_e(TIER_LABELS.get(tier, '—'))}</td>"
            f"<td>{fmt_trend(m, r['trend_3yr'], True)}{_verdict(m, r['trend_3yr'])}</td></tr>")

        rows = [("value" + (f" ({charts.school_year(year)})" if year else ""), fmt_value(m, r["value"]), ""),
                (f"{sname} average", fmt_value(m, r["state_avg"]),
                 fmt_difference(m, r["vs_state"]) + _verdict(m, r["vs_state"])),
                ("national average", fmt_value(m, r["national_avg"]),
                 fmt_difference(m, r["vs_national"]) + _verdict(m, r["vs_national"])),
                (f"peer average ({peers} peers)" if peers else "peer average (no peer group)",
                 fmt_value(m, r.get("peer_avg")), fmt_difference(m, r.get("vs_peers")) + _verdict(m, r.get("vs_peers"))),
                (f"tier in {sname}", _e(TIER_LABELS.get(tier, "—")),
                 f"{TIER_MEANS[tier]} of {n} districts" if tier else
                 ("fewer than 4 districts have a value" if n < 4 else "no value")),
                ("3-year trend", fmt_trend(m, r["trend_3yr"]) + _verdict(m, r["trend_3yr"]),
                 TREND_MEANS[UNITS[m][2]] if r["trend_3yr"] is not None else "")]
        figures = "".join(f"<tr><td>{a}</td><td>{b}</td><td class=\"text\">{c}</td></tr>" for a, b, c in rows)

        markers = []
        if r["value"] is not None:
            markers.append(charts.Marker(f"this district {fmt_value(m, r['value'], True)}"
                                         + (f" ({TIER_LABELS[tier]})" if tier else ""), float(r["value"]), "district"))
        for key, who, style in (("state_avg", f"{sname} average", "state"),
                                ("national_avg", "national average", "national"),
                                ("peer_avg", f"average of its {peers} peers", "peers")):
            if r.get(key) is not None:
                markers.append(charts.Marker(f"{who} {fmt_value(m, r[key], True)}", float(r[key]), style))
        short = lambda x, m=m: fmt_value(m, x, True)   # noqa: E731
        tick = lambda x, m=m: fmt_tick(m, x)            # noqa: E731
        dist_svg = charts.distribution(
            f"{m}-dist", f"{label}: {n} districts of {sname}", axis, [float(x["value"]) for x in dist],
            {t: float(v) for t, v in cutoffs.items()}, markers, tick, f"no district of {sname} has a value")
        refs = [mk for mk in markers if mk.style != "district"]
        hist = data["history"][m]
        trend = f" (3-year trend {fmt_trend(m, r['trend_3yr'], True)})" if r["trend_3yr"] is not None else ""
        hist_svg = charts.history(f"{m}-hist", f"{label} by year{trend}", unit, [(y, float(v)) for y, v in hist], refs,
                                  year, short, tick, "no history for this district")
        sections.append(
            f"<section id=\"{m}\"><h2>{_e(label)}</h2>"
            f"<table class=\"figures\"><tbody>{figures}</tbody></table><div class=\"charts\">"
            + _figure(dist_svg, f"The {n} districts of {_e(sname)} with a value, by {_e(axis)}; shaded bands: the "
                                f"tiers ({_e(_cutoff_text(m, cutoffs))}).")
            + _figure(hist_svg, "The district's value in each school year it has one"
                                + (f"; the averages are those of {charts.school_year(year)}." if year else "."))
            + "</div></section>")
    summary.append("</tbody></table>")
    body.append("<section><h2>Summary</h2>" + "".join(summary)
                + "<p class=\"sub\">Differences are the district's value minus the average, in the value's unit "
                  "(pts = percentage points).</p></section>")
    body.extend(sections)
    return _page(f"{d['name'] or d['leaid']} — district benchmarks", "\n".join(body), generated)


def state_page(data: dict, generated: dt.datetime | None = None, furthest: int = 5) -> str:
    """The state page: per metric the distribution of its districts with the tier cut-offs and the state and
    national averages, and the `furthest` districts above and below the state's average."""
    charts = require_charts()
    state, national = data["state"], data["national"]
    sname = state["name"]
    facts = [f"{state['abbrev']} (FIPS {state['fips']})"]
    if state.get("total_districts") is not None:
        facts.append(f"{state['total_districts']:,} districts with students")
    if state.get("total_enrollment") is not None:
        facts.append(f"{state['total_enrollment']:,} students")
    if state.get("aggregates_updated_at"):
        facts.append(f"averages computed {state['aggregates_updated_at']:%Y-%m-%d}")
    body = [f"<header><h1>{_e(sname)}</h1><p class=\"sub\">{' · '.join(_e(f) for f in facts)}</p></header>"]
    summary = ["<table class=\"summary\"><thead><tr><th>metric</th><th>state average</th><th>national average</th>"
               "<th>state − nation</th><th>districts with a value</th><th class=\"text\">tier cut-offs</th>"
               "</tr></thead><tbody>"]
    sections = []
    for m, (label, *_rest) in METRICS.items():
        axis = UNITS[m][1]
        dist = data["distribution"][m]
        n = len(dist)
        cutoffs = tier_cutoffs(dist)
        s_avg, n_avg = state.get(m), national.get(m) if national else None
        gap = s_avg - n_avg if s_avg is not None and n_avg is not None else None
        year = data["latest_year"].get(m)
        summary.append(f"<tr><td><a href=\"#{m}\">{_e(label)}</a></td><td>{fmt_value(m, s_avg, True)}</td>"
                       f"<td>{fmt_value(m, n_avg, True)}</td><td>{fmt_difference(m, gap, True)}</td><td>{n:,}</td>"
                       f"<td class=\"wrap\">{_e(_cutoff_text(m, cutoffs))}</td></tr>")
        markers = []
        if s_avg is not None:
            markers.append(charts.Marker(f"{sname} average {fmt_value(m, s_avg, True)}", float(s_avg), "state"))
        if n_avg is not None:
            markers.append(charts.Marker(f"national average {fmt_value(m, n_avg, True)}", float(n_avg), "national"))
        tick = lambda x, m=m: fmt_tick(m, x)   # noqa: E731
        svg = charts.distribution(
            f"{m}-dist", f"{label}: {n} districts of {sname}" + (f", {charts.school_year(year)}" if year else ""),
            axis, [float(x["value"]) for x in dist], {t: float(v) for t, v in cutoffs.items()}, markers, tick,
            f"no district of {sname} has a value", size=(8.6, 3.1))
        ranked = [x for x in dist if x["vs_state"] is not None]
        above = sorted((x for x in ranked if x["vs_state"] > 0), key=lambda x: (-x["vs_state"], x["leaid"]))
        below = sorted((x for x in ranked if x["vs_state"] < 0), key=lambda x: (x["vs_state"], x["leaid"]))
        lists = "".join(_district_list(m, title, rows[:furthest])
                        for title, rows in ((f"Furthest above the {sname} average", above),
                                            (f"Furthest below the {sname} average", below)))
        sections.append(
            f"<section id=\"{m}\"><h2>{_e(label)}</h2>"
            f"<p>{_e(sname)} average <b>{fmt_value(m, s_avg)}</b>, national average <b>{fmt_value(m, n_avg)}</b>"
            f" (difference {fmt_difference(m, gap)}); {n:,} districts with a value"
            + (f", latest year {charts.school_year(year)}" if year else "") + f". Tiers: {_e(_cutoff_text(m, cutoffs))}."
            "</p><div class=\"charts\">"
            + _figure(svg, f"The {n} districts of {_e(sname)} with a value, by {_e(axis)}; shaded bands: the tiers, "
                           "each labelled.")
            + f"</div><div class=\"lists\">{lists}</div></section>")
    summary.append("</tbody></table>")
    body.append("<section><h2>Summary</h2>" + "".join(summary) + "</section>")
    body.extend(sections)
    return _page(f"{sname} — district benchmarks", "\n".join(body), generated)


def _district_list(metric: str, title: str, rows: list[dict]) -> str:
    if not rows:
        return f"<div><h3>{_e(title)}</h3><p class=\"sub\">none</p></div>"
    lines = "".join(f"<tr><td class=\"wrap\">{_e(r['name'] or '(unnamed)')}</td><td>{_e(r['leaid'])}</td>"
                    f"<td>{fmt_value(metric, r['value'])}</td><td>{fmt_difference(metric, r['vs_state'])}"
                    f"{_verdict(metric, r['vs_state'])}</td>"
                    f"<td class=\"text\">{_e(TIER_LABELS.get(r['quartile_state'], '—'))}</td></tr>" for r in rows)
    return (f"<div><h3>{_e(title)}</h3><table><thead><tr><th class=\"text\">district</th><th>LEAID</th><th>value</th>"
            f"<th>vs state</th><th class=\"text\">tier</th></tr></thead><tbody>{lines}</tbody></table></div>")


def write_page(path: Path, text: str) -> int:
    """Write the page atomically (a half-written file never replaces a good one); returns its size in bytes."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a directory: give a file name such as report.html", option="--out")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"the folder {parent} does not exist", option="--out")
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)     # as an ordinary new file (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
