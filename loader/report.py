"""Reading benchmarks back for people: district profiles, state summaries, run status.

Queries return plain dicts (used as-is for --json); render_* functions draw them with rich, which drops
colour and box-drawing by itself when the output is not a terminal.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from psycopg.rows import dict_row
from rich.console import Console
from rich.table import Table

METRICS = {
    # metric: (label, unit of value, trend unit, +1 when higher is better, -1 when worse, 0 neutral)
    "absenteeism": ("Chronic absenteeism", "%", "pts", -1),
    "graduation": ("Graduation rate", "%", "pts", +1),
    "student_teacher_ratio": ("Students per teacher", "", "", -1),
    "swd_pct": ("Students with disabilities", "%", "%", 0),
    "ell_pct": ("English learners", "%", "%", 0),
    "math_proficiency": ("Math proficiency", "%", "pts", +1),
    "read_proficiency": ("Reading proficiency", "%", "pts", +1),
    "expenditure_pp": ("Spending per pupil", "$", "%", 0),
}
TIER_LABELS = {"well_above": "well above", "above": "above", "below": "below", "well_below": "well below"}


class NotFound(LookupError):
    """The district asked for does not exist."""


def normalise_leaid(raw: str) -> str:
    """Accept '0601234', '601234' (leading zero dropped by a spreadsheet); refuse anything else."""
    text = raw.strip()
    if not text.isdigit() or not 1 <= len(text) <= 7:
        raise ValueError(f"LEAID must be up to 7 digits (e.g. 0622710), got {raw!r}")
    return text.zfill(7)


def district_profile(conn, leaid: str) -> dict:
    conn.row_factory = dict_row
    head = conn.execute(
        "SELECT d.leaid, d.name, d.state_abbrev, s.name AS state_name, d.city, d.enrollment, "
        "       d.children_poverty_percent, d.directory_year, d.updated_at "
        "  FROM districts d LEFT JOIN states s ON s.fips = d.state_fips WHERE d.leaid = %s", (leaid,)).fetchone()
    if head is None:
        raise NotFound(f"no district with LEAID {leaid}")
    rows = conn.execute(
        "SELECT metric, value, state_avg, national_avg, vs_state, vs_national, quartile_state, trend_3yr "
        "  FROM district_benchmarks WHERE leaid = %s", (leaid,)).fetchall()
    order = list(METRICS)
    head["metrics"] = sorted(rows, key=lambda r: order.index(r["metric"]) if r["metric"] in order else 99)
    return head


def state_summary(conn) -> list[dict]:
    conn.row_factory = dict_row
    return conn.execute(
        "SELECT fips, abbrev, name, total_districts, total_enrollment, avg_chronic_absenteeism_rate, "
        "       avg_graduation_rate, avg_student_teacher_ratio, avg_swd_pct, avg_ell_pct, avg_math_proficiency, "
        "       avg_read_proficiency, avg_expenditure_per_pupil, avg_poverty_rate, aggregates_updated_at "
        "  FROM states WHERE coalesce(total_districts, 0) > 0 OR fips = '00' "
        " ORDER BY fips = '00' DESC, abbrev").fetchall()


def run_status(conn, limit: int = 10) -> dict:
    conn.row_factory = dict_row
    runs = conn.execute(
        "SELECT id, data_source, status, records_updated, records_failed, started_at, completed_at, error_message "
        "  FROM data_refresh_logs ORDER BY started_at DESC, id DESC LIMIT %s", (limit,)).fetchall()
    coverage = conn.execute(
        "SELECT metric, count(value) AS with_value, count(quartile_state) AS with_tier, "
        "       count(trend_3yr) AS with_trend FROM district_benchmarks GROUP BY metric").fetchall()
    order = list(METRICS)
    coverage.sort(key=lambda r: order.index(r["metric"]))
    total = conn.execute("SELECT count(*) AS n FROM districts").fetchone()["n"]
    return {"districts": total, "runs": runs, "coverage": coverage}


# -- rendering -------------------------------------------------------------------------------------------
def _num(v, unit: str = "", signed: bool = False) -> str:
    if v is None:
        return "—"
    v = Decimal(v)
    if unit == "$":
        text = f"{v:+,.0f}" if signed else f"{v:,.0f}"
        return text.replace("+", "+$").replace("-", "-$") if signed else f"${text}"
    text = f"{v:+.2f}" if signed else f"{v:.2f}"
    return text + ("%" if unit == "%" and not signed else "")


def _trend(v, unit: str, direction: int) -> str:
    if v is None:
        return "—"
    arrow = "▲" if v > 0 else "▼" if v < 0 else "▬"
    colour = ""
    if direction and v != 0:
        colour = "green" if (v > 0) == (direction > 0) else "red"
    suffix = {"pts": " pts", "%": "%"}.get(unit, "")
    text = f"{arrow} {Decimal(v):+.2f}{suffix}"
    return f"[{colour}]{text}[/]" if colour else text


def render_profile(p: dict, console: Console) -> None:
    where = ", ".join(x for x in (p.get("city"), p.get("state_name")) if x)
    console.print(f"[bold]{p['name'] or '(unnamed)'}[/]  LEAID {p['leaid']}  {where}")
    facts = []
    if p.get("enrollment") is not None:
        facts.append(f"{p['enrollment']:,} students")
    if p.get("children_poverty_percent") is not None:
        facts.append(f"child poverty {p['children_poverty_percent']}%")
    if p.get("directory_year"):
        facts.append(f"directory {p['directory_year']}-{(p['directory_year'] + 1) % 100:02d}")
    if facts:
        console.print("  " + " · ".join(facts))
    table = Table(show_edge=False, pad_edge=False)
    for col, justify in (("metric", "left"), ("value", "right"), ("state avg", "right"), ("national avg", "right"),
                         ("vs state", "right"), ("tier in state", "left"), ("3-yr trend", "right")):
        table.add_column(col, justify=justify, no_wrap=True)
    for r in p["metrics"]:
        label, unit, trend_unit, direction = METRICS.get(r["metric"], (r["metric"], "", "", 0))
        table.add_row(label, _num(r["value"], unit), _num(r["state_avg"], unit), _num(r["national_avg"], unit),
                      _num(r["vs_state"], unit, signed=True), TIER_LABELS.get(r["quartile_state"], "—"),
                      _trend(r["trend_3yr"], trend_unit, direction))
    console.print(table)
    console.print("[dim]tier: the value's size among the state's districts (well above = top quarter), "
                  "not a judgement; trends compare the latest year with up to 3 years before.[/]")


def render_states(rows: list[dict], console: Console) -> None:
    table = Table(title="States", show_edge=False)
    cols = [("state", "abbrev", ""), ("districts", "total_districts", "int"), ("students", "total_enrollment", "int"),
            ("absent %", "avg_chronic_absenteeism_rate", ""), ("grad %", "avg_graduation_rate", ""),
            ("stu/tchr", "avg_student_teacher_ratio", ""), ("SWD %", "avg_swd_pct", ""), ("ELL %", "avg_ell_pct", ""),
            ("math %", "avg_math_proficiency", ""), ("read %", "avg_read_proficiency", ""),
            ("$/pupil", "avg_expenditure_per_pupil", "$")]
    for title, _, kind in cols:
        table.add_column(title, justify="left" if kind == "" and title == "state" else "right")
    for r in rows:
        cells = []
        for _, key, kind in cols:
            v = r.get(key)
            if v is None:
                cells.append("—")
            elif kind == "int":
                cells.append(f"{v:,}")
            elif kind == "$":
                cells.append(f"{v:,.0f}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    console.print(table)


def render_status(st: dict, jobs: list[dict] | None, cron_note: str | None, console: Console) -> None:
    console.print(f"[bold]{st['districts']:,}[/] districts")
    runs = Table(title="Last runs", show_edge=False)
    for c in ("id", "source", "status", "updated", "failed", "started", "took"):
        runs.add_column(c)
    for r in st["runs"]:
        took = (r["completed_at"] - r["started_at"]).total_seconds() if r["completed_at"] else None
        status = r["status"] if r["status"] == "success" else f"[red]{r['status']}[/]"
        runs.add_row(str(r["id"]), r["data_source"], status, str(r["records_updated"]), str(r["records_failed"]),
                     r["started_at"].astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ"),
                     f"{took:.1f}s" if took is not None else "—")
    console.print(runs if st["runs"] else "no runs logged yet")
    cov = Table(title="Coverage (districts with …)", show_edge=False)
    for c in ("metric", "value", "tier", "3-yr trend"):
        cov.add_column(c, justify="left" if c == "metric" else "right")
    for r in st["coverage"]:
        cov.add_row(r["metric"], f"{r['with_value']:,}", f"{r['with_tier']:,}", f"{r['with_trend']:,}")
    console.print(cov)
    if cron_note:
        console.print(f"pg_cron: {cron_note}")
    for j in jobs or []:
        last = j["runs"][0] if j["runs"] else None
        when = last["start_time"].strftime("%Y-%m-%d %H:%M") if last and last["start_time"] else "never"
        console.print(f"job {j['jobname']} ({j['schedule']}, in {j['database']}): last run {when}"
                      + (f" — {last['status']}" if last else ""))
