"""Everything the command line draws with rich: progress, tables, profiles. Nothing here queries or computes."""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import os
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import click
from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from ..ingest import IngestOutcome, Plan, SliceResult, SourceReport, describe_result
from ..normalize import records_skipped, values_nulled
from ..report import METRICS, TIER_LABELS


def console() -> Console:
    """stdout: on a terminal rich uses its width (or COLUMNS) and colours; elsewhere (pipes, logs) COLUMNS when
    set, else a fixed wide layout of 140 columns."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    columns = os.environ.get("COLUMNS", "")
    return Console(highlight=False, width=int(columns) if columns.isdigit() and int(columns) > 0 else 140)


# -- tables that fit the width ---------------------------------------------------------------------------

def _plain(cell) -> str | None:
    """A cell's text without markup; None for a renderable that is not text."""
    if isinstance(cell, str):
        return Text.from_markup(cell).plain
    if isinstance(cell, Text):
        return cell.plain
    return None


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _abbreviate(header: str, width: int) -> str:
    """header with each word longer than `width` cut to width - 1 characters and a dot ("distance" -> "dist.")."""
    return " ".join(w if cell_len(w) <= width else w[:max(1, width - 1)] + "." for w in header.split())


MIN_HEADER_WORD = 5                     # a header word is abbreviated to no fewer characters (dot included)
COMPACT_PADDING = (0, 0, 0, 1)          # one space between a value and the next column's rule


def fit(table: Table, out: Console) -> RenderableType:
    """`table` made to fit the console's width without cutting a value. Every table the command line prints goes
    through here. In order, as far as needed:

    1. as it is, when it fits;
    2. columns narrowed to their longest word, text wrapping at spaces within them (a number or other word is
       never broken: a column is at least as wide as its longest), headers wrapping too and their long words
       abbreviated ("distance" -> "dist."); the spare width goes first to whole header words, then to the
       columns closest to needing no wrap; if need be with one space of padding instead of two;
    3. whichever of these takes fewer lines: its columns in groups, each group a table of its own that fits (2.)
       and repeats the first column; or one block per row with a line per column, as psql's expanded display
       (\\x auto) does: the row's first value as the block's title, then "column  value" lines.
    """
    sizes = _Sizes.of(table)
    if sizes is None or not hasattr(table, "_extra_width"):
        return table                     # a renderable that is not text, or a rich without those: left to rich
    if sum(sizes.natural) + _overhead(table) <= out.width or _narrow(table, sizes, out.width):
        return table
    vertical = expanded(table, sizes.headers)
    groups = _column_groups(table, sizes, out.width) if len(table.columns) > 2 else None
    if groups is None:
        return vertical
    grouped = Group(*groups)
    return min((grouped, vertical), key=lambda r: len(out.render_lines(r, out.options, pad=False)))


@dataclasses.dataclass
class _Sizes:
    """What fit() needs to know of each column: its header's text, its widest line, its longest word (values
    only), and the longest word of its header."""

    headers: list[str]
    natural: list[int]
    value_word: list[int]
    header_word: list[int]

    @property
    def least(self) -> list[int]:
        """The narrowest each column may be: its longest value word, and its header's longest word abbreviated
        to no fewer than MIN_HEADER_WORD characters."""
        return [max(v, min(h, max(v, MIN_HEADER_WORD)), 1) for v, h in zip(self.value_word, self.header_word)]

    @classmethod
    def of(cls, table: Table) -> _Sizes | None:
        headers, natural, value_word = [], [], []
        for col in table.columns:
            texts = [_plain(c) for c in col.cells]
            header = _plain(col.header)
            if header is None or any(t is None for t in texts):
                return None
            headers.append(header)
            natural.append(max([cell_len(line) for t in (header, *texts) for line in t.splitlines()] or [0]))
            value_word.append(max([_longest_word(t) for t in texts] or [1]))
        return cls(headers, natural, value_word, [_longest_word(h) for h in headers])

    def pick(self, indices: list[int]) -> _Sizes:
        return _Sizes(*([getattr(self, f)[i] for i in indices]
                        for f in ("headers", "natural", "value_word", "header_word")))


def _overhead(table: Table) -> int:
    """The width of a table's rules and padding (rich's own reckoning)."""
    return table._extra_width + sum(table._get_padding_width(i) for i in range(len(table.columns)))


def _narrow(table: Table, sizes: _Sizes, width: int) -> bool:
    """Step 2 of fit(), in place: fixed column widths that fit `width`, wrapping within them; False (and the
    table unchanged) when even the narrowest columns do not fit."""
    least = sizes.least
    original = table.padding
    for padding in (original, COMPACT_PADDING):
        table.padding = padding
        spare = width - _overhead(table) - sum(least)
        if spare < 0:
            continue
        widths = list(least)
        for target in ([max(w, h) for w, h in zip(widths, sizes.header_word)], sizes.natural):
            for i in sorted(range(len(widths)), key=lambda i: target[i] - widths[i]):
                give = min(spare, max(0, target[i] - widths[i]))
                widths[i] += give
                spare -= give
        for col, header, w in zip(table.columns, sizes.headers, widths):
            col.width, col.no_wrap, col.overflow = w, False, "fold"
            if _longest_word(header) > w:
                col.header = _abbreviate(header, w)
        return True
    table.padding = original
    return False


def _column_groups(table: Table, sizes: _Sizes, width: int) -> list[RenderableType] | None:
    """Step 3 of fit(): tables of the first column and as many of the next as fit, as they are when every group
    can (plain tables), else narrowed (step 2); None when the first column and any one other do not fit."""
    def natural(indices: list[int]) -> bool:
        return sum(sizes.pick(indices).natural) + _overhead(_subtable(table, indices)) <= width

    def narrowed(indices: list[int]) -> bool:
        return _narrow(_subtable(table, indices), sizes.pick(indices), width)

    for fits in (natural, narrowed):
        groups, current = [], [0]
        for i in range(1, len(table.columns)):
            if fits(current + [i]):
                current.append(i)
            elif len(current) > 1 and fits([0, i]):
                groups.append(current)
                current = [0, i]
            else:
                break
        else:
            groups.append(current)
            parts: list[RenderableType] = []
            for n, indices in enumerate(groups):
                sub = _subtable(table, indices, title=table.title if n == 0 else None)
                if fits is narrowed:
                    _narrow(sub, sizes.pick(indices), width)
                parts += [Text("")] if n else []
                parts.append(sub)
            return parts
    return None


def _subtable(table: Table, indices: list[int], title=None) -> Table:
    """A copy of `table` with only the columns at `indices` (its rows' cells shared)."""
    sub = copy.copy(table)
    sub.title = title
    sub.columns = [dataclasses.replace(table.columns[i], _index=n) for n, i in enumerate(indices)]
    return sub


def expanded(table: Table, headers: list[str]) -> RenderableType:
    """The rows of `table` as blocks (see fit): a rule titled with the row's first value, then a line per other
    column, its header and its value (wrapping, never cut)."""
    parts: list[RenderableType] = []
    if table.title:
        parts.append(Text.from_markup(table.title) if isinstance(table.title, str) else table.title)
    columns = [list(col.cells) for col in table.columns]
    key_width = max(cell_len(h) for h in headers[1:]) if len(headers) > 1 else 0
    for row in range(table.row_count):
        title = _plain(columns[0][row]) or headers[0]
        parts.append(Rule(Text(title, style="bold"), align="left", style="dim"))
        grid = Table.grid(padding=(0, 2))
        grid.add_column(width=key_width, no_wrap=True)
        grid.add_column(overflow="fold")
        for header, col in zip(headers[1:], columns[1:]):
            grid.add_row(Text(header, style="dim"), col[row])
        parts.append(grid)
    return Group(*parts)


# -- ingest progress -------------------------------------------------------------------------------------

QUIET, NORMAL, VERBOSE = -1, 0, 1
MAX_FAILURE_LINES = 20                  # failed slices listed one by one, unless --verbose


def source_line(rep: SourceReport, seconds: float) -> str:
    """One line about a source whose slices have all landed or failed."""
    parts = [f"{rep.done:,} slice(s) landed"]
    if rep.failed:
        parts.append(f"{len(rep.failed):,} failed")
    if rep.skipped:
        parts.append(f"{rep.skipped:,} already done")
    return f"{rep.name}: {', '.join(parts)}; {rep.inserted + rep.updated:,} rows new or changed ({seconds:.1f}s)"


class IngestDisplay:
    """The ingest's progress on stderr (loader.ingest.IngestProgress, and the stages of `run`).

    NORMAL: the plan's notes, a line per source as its last slice lands, and each failed slice in a few words
    (the first MAX_FAILURE_LINES); on a terminal, progress bars below them. VERBOSE (-v): a line per slice, and
    each failure's detail (URL, exception chain). QUIET (-q): only the failed slices; the command prints its final
    line itself."""

    def __init__(self, verbosity: int = NORMAL) -> None:
        self.err = Console(stderr=True, highlight=False)
        self.verbosity = verbosity
        self.bars: Progress | None = None
        self.plan: Plan | None = None
        self.total = self.n = self._rows = 0
        self.landed = 0                          # slices landed by this run
        self.failures = 0
        self.left: Counter = Counter()           # source -> slices not yet landed or failed
        self.t0 = time.monotonic()
        self._lock = threading.Lock()

    def line(self, text: str, style: str | None = None) -> None:
        """A line on stderr (above the bars while they are drawn)."""
        if self.bars is not None:
            self.err.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        else:
            click.echo(text, err=True)

    # run_pipeline's stages
    def stage(self, name: str) -> None:
        if self.verbosity >= NORMAL:
            self.line(f"== {name}")

    def note(self, text: str) -> None:
        if self.verbosity >= NORMAL:
            self.line(f"  {text}")

    # IngestProgress
    def planned(self, plan: Plan, source: str) -> None:
        self.plan, self.total, self.t0 = plan, len(plan.todo), time.monotonic()
        self.left = Counter(sl.key.source for sl in plan.todo)
        if self.verbosity < NORMAL:
            return
        for note in plan.notes:
            self.line(f"note: {note}")
        already = sum(r.skipped for r in plan.reports.values())
        self.line(f"{len(plan.todo):,} slice(s) to fetch from {source}"
                  + (f"; {already:,} already done (use --refresh to fetch them again)" if already else ""))
        for rep in plan.reports.values():
            if not self.left[rep.name] and rep.planned:
                self.line(source_line(rep, 0.0))
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
        self.n += 1
        if self.bars is not None:
            self.bars.advance(self.slice_task)
        if r.status == "done":
            self.landed += 1
            if self.verbosity >= VERBOSE:
                self.line(f"[{self.n}/{self.total}] {describe_result(r)}")
        else:
            self.failures += 1
            if self.verbosity >= VERBOSE:
                self.line(f"[{self.n}/{self.total}] {describe_result(r)}", style="red")
                self.line(f"    {r.detail or r.error}")
            elif self.failures <= MAX_FAILURE_LINES:
                self.line(describe_result(r), style="red")
            elif self.failures == MAX_FAILURE_LINES + 1:
                self.line("… further failed slices are counted in the summary and listed in the refresh log "
                          "(district-benchmarks status); -v lists each", style="red")
        source = r.slice.key.source
        self.left[source] -= 1
        if self.left[source] == 0 and self.verbosity >= NORMAL and self.plan is not None:
            self.line(source_line(self.plan.reports[source], time.monotonic() - self.t0))

    def finished(self) -> None:
        if self.bars is not None:
            self.bars.stop()
            self.bars = None

    # interrupts (loader/cli/common.py: graceful_interrupts)
    def stopping(self, signal_name: str) -> None:
        self.line(f"{signal_name}: stopping; what is landing commits, nothing half-done lands "
                  f"(press Ctrl-C again to quit at once)", style="yellow")

    def restore_terminal(self) -> None:
        """Show the cursor again (the bars hide it), for an exit that skips finished()."""
        if self.err.is_terminal:
            self.err.show_cursor(True)
            self.err.file.write("\n")
            self.err.file.flush()


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


def ingest_totals(outcome: IngestOutcome) -> str:
    """The ingest in one line (the final line of --quiet)."""
    reps = outcome.plan.reports.values()
    return (f"ingest: {sum(r.done for r in reps):,} slice(s) landed, {len(outcome.failed):,} failed, "
            f"{sum(r.skipped for r in reps):,} already done; "
            f"{sum(r.inserted + r.updated for r in reps):,} rows new or changed ({outcome.seconds:.1f}s)")


def compute_totals(summary: dict) -> str:
    """compute_all_benchmarks()'s summary in a few words (the final line of --quiet)."""
    return (f"benchmarks computed: {summary.get('districts_written', 0):,} district row(s) written "
            f"({summary.get('duration_ms', 0):,.0f} ms, SQL {summary.get('version', '?')})")


def print_ingest_outcome(outcome: IngestOutcome, verbosity: int = NORMAL) -> None:
    """The summary table on stdout, then the notes, warnings and unknown states on stderr (the failed slices were
    listed as they failed). QUIET: nothing (the command prints its final line)."""
    if verbosity < NORMAL:
        return
    out = console()
    out.print(fit(ingest_summary(outcome), out))
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
        out.print(fit(table, out))


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
    out.print(fit(compared, out))
    out.print(fit(over_time, out))
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
    out.print(fit(table, out))
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
    out.print(fit(table, out))
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
    out.print(fit(table, out))


def when(t: dt.datetime) -> str:
    """A timestamp in the local time zone, with the zone: 2024-05-01 08:00:03 CEST."""
    local = t.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S ") + (local.tzname() or local.strftime("%z"))


def render_status(st: dict, jobs: list[dict] | None, cron_note: str | None, out: Console) -> None:
    out.print(f"[bold]{st['districts']:,}[/] districts")
    runs = Table(title="Last run of each source", show_edge=False)
    for c in ("id", "source", "status", "updated", "skipped", "started", "took"):
        runs.add_column(c, justify="right" if c in ("id", "updated", "skipped", "took") else "left")
    for r in st["runs"]:
        took = (r["completed_at"] - r["started_at"]).total_seconds() if r["completed_at"] else None
        status = r["status"] if r["status"] in ("success", "skipped") else f"[red]{r['status']}[/]"
        runs.add_row(str(r["id"]), r["data_source"], status, f"{r['records_updated']:,}",
                     f"{r['records_skipped']:,}", when(r["started_at"]), f"{took:.1f}s" if took is not None else "—")
    out.print(fit(runs, out) if st["runs"] else "no runs logged yet")
    if st["runs"]:
        out.print("[dim]skipped: records not landed (no usable LEAID, another year, an unknown state); "
                  "status skipped: nothing to fetch.[/]")
    cov = Table(title="Coverage (districts with …)", show_edge=False)
    for c in ("metric", "year", "value", "tier", "3-yr trend"):
        cov.add_column(c, justify="left" if c in ("metric", "year") else "right")
    for r in st["coverage"]:
        cov.add_row(r["metric"], _year(r.get("value_year")), f"{r['with_value']:,}", f"{r['with_tier']:,}",
                    f"{r['with_trend']:,}")
    out.print(fit(cov, out))
    if cron_note:
        out.print(f"pg_cron: {cron_note}")
    for j in jobs or []:
        last = j["runs"][0] if j["runs"] else None
        when_ = when(last["start_time"]) if last and last["start_time"] else "never"
        out.print(f"job {j['jobname']} ({j['schedule']}, in {j['database']}): last run {when_}"
                      + (f" — {last['status']}" if last else ""))
