"""Everything the command line draws with rich: progress, tables, profiles. Nothing here queries or computes."""
from __future__ import annotations

import datetime as dt
import sys
import threading
from collections import Counter
from decimal import Decimal

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..ingest import IngestOutcome, Plan, SliceResult, describe_result
from ..normalize import records_skipped, values_nulled
from ..report import METRICS, TIER_LABELS


def console() -> Console:
    """stdout: on a terminal rich uses its width and colours; elsewhere (pipes, logs) a fixed wide layout."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- ingest progress -------------------------------------------------------------------------------------

class IngestDisplay:
    """The ingest's progress on stderr (loader.ingest.IngestProgress, and the stages of `run`): bars on a
    terminal, otherwise one line per finished slice."""

    def __init__(self) -> None:
        self.err = Console(stderr=True, highlight=False)
        self.bars: Progress | None = None
        self.total = self.n = self._rows = 0
        self._lock = threading.Lock()

    # run_pipeline's stages
    def stage(self, name: str) -> None:
        click.echo(f"== {name}", err=True)

    def note(self, text: str) -> None:
        click.echo(f"  {text}", err=True)

    # IngestProgress
    def planned(self, plan: Plan, source: str) -> None:
        for note in plan.notes:
            click.echo(f"note: {note}", err=True)
        already = sum(r.skipped for r in plan.reports.values())
        click.echo(f"{len(plan.todo):,} slice(s) to fetch from {source}"
                   + (f"; {already:,} already done (use --refresh to fetch them again)" if already else ""),
                   err=True)
        self.total = len(plan.todo)
        if self.err.is_terminal:
            self.bars = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[extra]}"), TimeElapsedColumn(),
                                 console=self.err, transient=False)
            self.slice_task = self.bars.add_task("slices", total=self.total, extra="")
            self.row_task = self.bars.add_task("rows", total=None, extra="")
            self.bars.start()

    def rows(self, n: int) -> None:
        if self.bars is None:
            return
        with self._lock:
            self._rows += n
            self.bars.update(self.row_task, completed=self._rows, extra=f"{self._rows:,} rows received")

    def slice_finished(self, r: SliceResult) -> None:
        if self.bars is None:
            self.n += 1
            click.echo(f"[{self.n}/{self.total}] {describe_result(r)}", err=True)
            return
        self.bars.advance(self.slice_task)
        if r.status != "done":
            self.err.print(f"[red]{describe_result(r)}[/red]", highlight=False)

    def finished(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None


SUMMARY_COLUMNS = ("source", "done", "skipped", "failed", "rows landed", "unchanged", "values nulled",
                   "records skipped", "pages")


def ingest_summary(outcome: IngestOutcome) -> Table:
    """Per source: slices done / skipped (landed before) / failed, history rows landed (new + changed), rows
    unchanged, values nulled, records skipped, pages."""
    t = Table(title=f"ingest summary ({outcome.seconds:.1f}s)", title_justify="left")
    for col in SUMMARY_COLUMNS:
        t.add_column(col, justify="left" if col == "source" else "right", no_wrap=True)
    tot: Counter = Counter()
    for rep in outcome.plan.reports.values():
        vals = {"done": rep.done, "skipped": rep.skipped, "failed": len(rep.failed),
                "rows landed": rep.inserted + rep.updated, "unchanged": rep.unchanged,
                "values nulled": values_nulled(rep.counts), "records skipped": records_skipped(rep.counts),
                "pages": rep.pages}
        tot.update(vals)
        t.add_row(rep.name, *(f"{v:,}" for v in vals.values()))
    t.add_section()
    t.add_row("total", *(f"{tot[k]:,}" for k in SUMMARY_COLUMNS[1:]))
    return t


def print_ingest_outcome(outcome: IngestOutcome) -> None:
    """The summary table on stdout, then the failed slices and the unknown states on stderr."""
    out = Console()
    if not out.is_terminal:
        out = Console(width=140)
    out.print(ingest_summary(outcome))
    for r in outcome.failed:
        click.echo(describe_result(r), err=True)
    for line in outcome.messages:                     # notes and warnings found during the run
        click.echo(line, err=True)
    if outcome.unknown_records:
        click.echo(f"note: {outcome.unknown_records:,} record(s) of a state with no row in `states` (fips "
                   f"{', '.join(sorted(outcome.unknown_fips))}) were skipped", err=True)


# -- compute ---------------------------------------------------------------------------------------------

def render_summary(summary: dict, out: Console) -> None:
    """The run summary: its scalar figures, then one line per step (keys as the functions return them)."""
    scalars = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    out.print("  ".join(f"[bold]{k}[/] {v}" for k, v in scalars.items()))
    steps = summary.get("steps") or {k: v for k, v in summary.items() if isinstance(v, dict)}
    if steps:
        keys = sorted({k for v in steps.values() if isinstance(v, dict) for k in v})
        table = Table(show_edge=False)
        table.add_column("step")
        for k in keys:
            table.add_column(k.replace("_", " "), justify="right")
        for name, figures in steps.items():
            table.add_row(name, *(str(figures.get(k, "")) for k in keys))
        out.print(table)


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


def _versus(v, unit: str, direction: int) -> str:
    """A difference to a comparison group with its unit (points for percentages), green when better, red when
    worse (metrics without a direction plain)."""
    if v is None:
        return "—"
    text = _num(v, unit, signed=True) + (" pts" if unit == "%" else "")
    if direction and v != 0:
        return f"[{'green' if (v > 0) == (direction > 0) else 'red'}]{text}[/]"
    return text


_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


class Footnotes:
    """Numbered reasons for empty cells: the cell shows '—¹', the reason is printed once below the table."""

    def __init__(self) -> None:
        self.reasons: dict[str, int] = {}

    def mark(self, reason: str | None) -> str:
        if not reason:
            return "—"
        n = self.reasons.setdefault(reason, len(self.reasons) + 1)
        return "—" + str(n).translate(_SUPERSCRIPTS)

    def lines(self) -> list[str]:
        return [f"{str(n).translate(_SUPERSCRIPTS)} {reason}" for reason, n in self.reasons.items()]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n:,}{suffix}"


def _tier(r: dict, notes: Footnotes) -> str:
    """'above · 61st of 216': the tier (or why there is none), and the district's rank in its state (1st = highest
    value)."""
    tier = TIER_LABELS.get(r.get("quartile_state")) or notes.mark((r.get("missing") or {}).get("quartile_state"))
    if r.get("state_rank") is None or not r.get("state_count"):
        return tier
    return f"{tier} · {_ordinal(r['state_rank'])} of {r['state_count']:,}"


def _year(fall: int | None) -> str:
    return "—" if fall is None else f"{fall}-{(fall + 1) % 100:02d}"


def _span(base: int | None, end: int | None) -> str:
    return "—" if base is None or end is None else f"{base}→{end}"


def render_profile(p: dict, out: Console) -> None:
    where = ", ".join(x for x in (p.get("city"), p.get("state_name")) if x)
    out.print(f"[bold]{p['name'] or '(unnamed)'}[/]  LEAID {p['leaid']}  {where}")
    facts = []
    if p.get("enrollment") is not None:
        facts.append(f"{p['enrollment']:,} students")
    if p.get("children_poverty_percent") is not None:
        facts.append(f"child poverty {p['children_poverty_percent']}%")
    if p.get("directory_year"):
        facts.append(f"directory {p['directory_year']}-{(p['directory_year'] + 1) % 100:02d}")
    if facts:
        out.print("  " + " · ".join(facts))
    # two tables, so that each fits a common terminal: the comparison with the state and the nation, then the
    # trend and the peer group; an empty cell carries a footnote with the reason
    compared = Table(show_edge=False, pad_edge=False)
    for col, justify in (("metric", "left"), ("value", "right"), ("year", "left"), ("state avg", "right"),
                         ("national avg", "right"), ("vs state", "right"), ("tier in state", "left")):
        compared.add_column(col, justify=justify, no_wrap=True)
    over_time = Table(show_edge=False, pad_edge=False)
    for col, justify in (("metric", "left"), ("3-yr trend", "right"), ("years", "left"), ("peer avg", "right"),
                         ("vs peers", "right")):
        over_time.add_column(col, justify=justify, no_wrap=True)
    notes = Footnotes()
    for r in p["metrics"]:
        label, unit, trend_unit, direction = METRICS.get(r["metric"], (r["metric"], "", "", 0))
        why = r.get("missing") or {}

        def cell(key: str, text: str, r=r, why=why) -> str:
            return notes.mark(why.get(key)) if r.get(key) is None else text

        compared.add_row(label, cell("value", _num(r["value"], unit)), _year(r.get("value_year")),
                         cell("state_avg", _num(r["state_avg"], unit)), _num(r["national_avg"], unit),
                         cell("vs_state", _versus(r["vs_state"], unit, 0)), _tier(r, notes))
        over_time.add_row(label, cell("trend_3yr", _trend(r["trend_3yr"], trend_unit, direction)),
                          _span(r.get("trend_base_year"), r.get("trend_end_year")),
                          cell("peer_avg", _num(r.get("peer_avg"), unit)),
                          cell("vs_peers", _versus(r.get("vs_peers"), unit, direction)))
    out.print(compared)
    out.print(over_time)
    for line in notes.lines():
        out.print(f"[dim]{line}[/]")
    out.print("[dim]averages are enrollment-weighted; tiers and ranks count each district once (1st = highest "
              "value), so a district can be above the average yet in a low tier.[/]")
    out.print("[dim]tier: the value's size among the state's districts (well above = top quarter), "
              "not a judgement; trends compare the latest year with up to 3 years before.[/]")
    if p.get("peer_count"):
        out.print(f"[dim]peers: the {p['peer_count']} districts most like it nationwide (size, child poverty, "
                  f"ELL %, SWD %); vs peers is green when better.[/]")
        out.print(f"[dim]list them: district-benchmarks peers {p['leaid']}[/]")
    else:
        out.print("[dim]no peer group: enrollment, child poverty, ELL % and SWD % are all needed.[/]")


def render_peers(g: dict, out: Console) -> None:
    """A district's peer group, nearest first."""
    out.print(f"[bold]{g['name'] or '(unnamed)'}[/]  LEAID {g['leaid']}  {g.get('state_abbrev') or ''}")
    facts = [f"{g['enrollment']:,} students" if g.get("enrollment") is not None else None,
             f"child poverty {g['children_poverty_percent']}%" if g.get("children_poverty_percent") is not None
             else None,
             f"ELL {g['ell_pct']}%" if g.get("ell_pct") is not None else None,
             f"SWD {g['swd_pct']}%" if g.get("swd_pct") is not None else None]
    out.print("  " + " · ".join(f for f in facts if f))
    if not g["peers"]:
        why = f"missing {', '.join(g['missing'])}" if g.get("missing") else "not computed yet (district-benchmarks compute)"
        out.print(f"no peer group: {why}")
        return
    table = Table(title=f"its {len(g['peers'])} peers, nearest first", title_justify="left", show_edge=False)
    for col in ("#", "LEAID", "district", "state", "students", "poverty %", "ELL %", "SWD %", "distance"):
        table.add_column(col, justify="left" if col in ("LEAID", "district", "state") else "right", no_wrap=col != "district")
    for r in g["peers"]:
        table.add_row(str(r["rank"]), r["leaid"], r["name"] or "—", r["state_abbrev"] or "—",
                      f"{r['enrollment']:,}" if r["enrollment"] is not None else "—",
                      _num(r["children_poverty_percent"]), _num(r["ell_pct"]), _num(r["swd_pct"]),
                      f"{r['distance']:.3f}")
    out.print(table)
    out.print("[dim]distance: between standardised ln(enrollment), child poverty, ELL % and SWD % (1 = one "
              "standard deviation in one of them).[/]")


def render_districts(rows: list[dict], out: Console) -> None:
    """Districts found by name and state; a line saying how many more there are."""
    if not rows:
        out.print("no district matches")
        return
    table = Table(show_edge=False)
    for col in ("LEAID", "district", "state", "city", "students"):
        table.add_column(col, justify="right" if col == "students" else "left", no_wrap=col != "district")
    for r in rows:
        table.add_row(r["leaid"], r["name"] or "—", r["state_abbrev"] or "—", r["city"] or "—",
                      f"{r['enrollment']:,}" if r["enrollment"] is not None else "—")
    out.print(table)
    more = rows[0]["total"] - len(rows)
    if more > 0:
        out.print(f"[dim]{more:,} more: narrow with --name / --state, or raise --limit[/]")


def render_states(rows: list[dict], out: Console) -> None:
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
    out.print(table)


def when(t: dt.datetime) -> str:
    """A timestamp in the local time zone, with the zone: 2024-05-01 08:00:03 CEST."""
    local = t.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or local.strftime("%z"))


def render_status(st: dict, jobs: list[dict] | None, cron_note: str | None, out: Console) -> None:
    out.print(f"[bold]{st['districts']:,}[/] districts")
    runs = Table(title="Last run of each source", show_edge=False)
    for c in ("id", "source", "status", "updated", "skipped", "started", "took"):
        runs.add_column(c)
    for r in st["runs"]:
        took = (r["completed_at"] - r["started_at"]).total_seconds() if r["completed_at"] else None
        status = r["status"] if r["status"] in ("success", "skipped") else f"[red]{r['status']}[/]"
        runs.add_row(str(r["id"]), r["data_source"], status, f"{r['records_updated']:,}",
                     f"{r['records_skipped']:,}", when(r["started_at"]), f"{took:.1f}s" if took is not None else "—")
    out.print(runs if st["runs"] else "no runs logged yet")
    if st["runs"]:
        out.print("[dim]skipped: records not landed (no usable LEAID, another year, an unknown state); "
                  "status skipped: nothing to fetch.[/]")
    cov = Table(title="Coverage (districts with …)", show_edge=False)
    for c in ("metric", "year", "value", "tier", "3-yr trend"):
        cov.add_column(c, justify="left" if c in ("metric", "year") else "right")
    for r in st["coverage"]:
        cov.add_row(r["metric"], _year(r.get("value_year")), f"{r['with_value']:,}", f"{r['with_tier']:,}",
                    f"{r['with_trend']:,}")
    out.print(cov)
    if cron_note:
        out.print(f"pg_cron: {cron_note}")
    for j in jobs or []:
        last = j["runs"][0] if j["runs"] else None
        when_ = when(last["start_time"]) if last and last["start_time"] else "never"
        out.print(f"job {j['jobname']} ({j['schedule']}, in {j['database']}): last run {when_}"
                      + (f" — {last['status']}" if last else ""))
