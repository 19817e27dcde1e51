"""The ingest run behind `district-benchmarks ingest` (the click command is in loader/ingest_cmd.py).

Work is split into slices (source x survey year x state) and the slices into batches (up to BATCH_SLICES
consecutive slices of one source and year). A bounded thread pool runs the batches; each worker fetches its
batch's slices one after another, streaming each slice's pages (cleaning each page as it arrives and keeping
only the cleaned rows), and lands the fetched slices together in one transaction with their checkpoint rows in
ingest_slices (see loader/land.py). A rerun skips slices already done unless --refresh; a slice that fails is
reported and the others still land (a batch that cannot land is landed again slice by slice); the command then
exits non-zero.
"""
from __future__ import annotations

import gc
import hashlib
import re
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

import click
import psycopg
from psycopg.types.json import Jsonb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import land
from .api import ApiError, CountMismatch
from .normalize import (PAGE_BUILDERS, RECORD_FIELDS, SaipeScale, SchoolSums, SliceContext, crdc_school_rows,
                        records_skipped, saipe_rows, scale_saipe, values_nulled)
from .sources import (CRDC_ENROLLMENT, ENDPOINTS, SOURCE_NAMES, SOURCES, Source, catalogue_years,
                      fallback_years, format_years)

LATEST_YEAR = 2024                       # newest year in the built-in catalogue
DEFAULT_YEARS = f"{LATEST_YEAR - 9}-{LATEST_YEAR}"
# Order of work: the CCD directory first (CRDC's fallback denominator reads its enrollment), CRDC last.
# NEWEST_FIRST: within a source, the newest year first. A district's identity columns come from the newest
# directory year, so landing it first leaves the older years' identity upserts with nothing to write (they
# would otherwise rewrite every district once per year); and an interrupted run has the newest data.
RUN_ORDER = ("ccd_directory", "ccd_finance", "edfacts_grad", "edfacts_assess", "saipe", "crdc_absenteeism")
# Batching (see Ingest.run_batch): up to BATCH_SLICES slices of one source and year are fetched by one worker
# and landed together, in one transaction, as soon as they hold BATCH_ROWS rows or the oldest has waited
# BATCH_SECONDS. Landing costs PostgreSQL a few milliseconds per transaction whatever its size, and most
# slices are small (one state, one year, one source).
BATCH_SLICES = 16
BATCH_ROWS = 20_000
BATCH_SECONDS = 5.0
INGEST_LOCK_KEY = int.from_bytes(hashlib.sha256(b"district-benchmarks:ingest").digest()[:8], "big", signed=True)


class IngestError(click.ClickException):
    """A problem with the request as a whole (bad option, another ingest running); one line, exit 1."""


class SliceError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------ options

def parse_years(text: str) -> list[int]:
    years: set[int] = set()
    for part in (text or "").replace(" ", "").split(","):
        m = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", part)
        if not m:
            raise ValueError(f"--years: {text!r} is not YEAR, YEAR-YEAR or a comma list of those (e.g. 2015-2022)")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if lo > hi or lo < 1980 or hi > 2100:
            raise ValueError(f"--years: {part!r} must be an increasing range within 1980-2100")
        years.update(range(lo, hi + 1))
    return sorted(years)


def parse_sources(text: str) -> list[str]:
    if (text or "").strip().lower() == "all":
        return list(SOURCE_NAMES)
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    bad = [n for n in names if n not in SOURCES]
    if bad or not names:
        raise ValueError(f"--sources: unknown source {', '.join(bad) or repr(text)}; "
                         f"choose from {', '.join(SOURCE_NAMES)} or all")
    return [n for n in SOURCE_NAMES if n in names]


def parse_states(text: str) -> list[str] | None:
    """None for 'all', else the tokens (postal abbreviations or FIPS codes), syntax-checked."""
    if (text or "").strip().lower() == "all":
        return None
    tokens = [p.strip().upper() for p in text.split(",") if p.strip()]
    bad = [t for t in tokens if not re.fullmatch(r"[A-Z]{2}|\d{1,2}", t)]
    if bad or not tokens:
        raise ValueError(f"--states: {', '.join(bad) or repr(text)} is not a postal abbreviation (CA) or FIPS "
                         f"code (06); use a comma list or all")
    return tokens


def resolve_states(tokens: list[str] | None, states: dict[str, str]) -> list[str]:
    if tokens is None:
        return sorted(states)
    by_abbrev = {a: f for f, a in states.items()}
    out, bad = [], []
    for t in tokens:
        fips = f"{int(t):02d}" if t.isdigit() else by_abbrev.get(t)
        if fips in states:
            out.append(fips)
        else:
            bad.append(t)
    if bad:
        raise IngestError(f"--states: no state {', '.join(bad)} in the states table "
                          f"(known: {', '.join(sorted(states.values()))})")
    return sorted(set(out))


# ------------------------------------------------------------------------------------------------ plan

@dataclass(frozen=True)
class SliceKey:
    source: str
    year: int
    fips: str


@dataclass
class Slice:
    key: SliceKey
    abbrev: str
    fallback_denominator: bool = False      # CRDC: the year has no CRDC enrollment

    @property
    def source(self) -> Source:
        return SOURCES[self.key.source]

    def label(self) -> str:
        return f"{self.key.source} {self.key.year} {self.abbrev}"


@dataclass
class SliceResult:
    slice: Slice
    status: str                              # done | failed
    pages: int = 0
    received: int = 0
    landed: land.Landed | None = None
    counts: Counter = field(default_factory=Counter)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class SourceReport:
    name: str
    years_skipped: list[int] = field(default_factory=list)
    planned: int = 0
    done: int = 0
    skipped: int = 0                         # already done before this run
    absent: int = 0                          # --from-dir: not in the directory
    failed: list[SliceResult] = field(default_factory=list)
    pages: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    counts: Counter = field(default_factory=Counter)
    started_at: float = field(default_factory=time.time)

    def add(self, r: SliceResult) -> None:
        self.pages += r.pages
        self.received += r.received
        self.counts.update({k: v for k, v in r.counts.items() if type(v) is int})
        if r.status == "done":
            self.done += 1
            self.inserted += r.landed.inserted
            self.updated += r.landed.updated
            self.unchanged += r.landed.unchanged
        else:
            self.failed.append(r)


@dataclass
class Plan:
    todo: list[Slice]
    reports: dict[str, SourceReport]
    notes: list[str]


def plan_slices(conn, client, sources: list[str], years: list[int], fips_list: list[str],
                states: dict[str, str], refresh: bool, from_dir: bool) -> Plan:
    notes: list[str] = []
    try:
        rows = client.catalogue()
    except ApiError as exc:
        rows = []
        notes.append(f"endpoint catalogue unavailable ({exc}); using the built-in year table")
    known = catalogue_years(rows)
    fallback = fallback_years()
    if rows:
        missing = [ep.key for ep in ENDPOINTS if ep.key not in known]
        if missing:
            notes.append(f"endpoint catalogue lacks {', '.join(missing)}; using the built-in years for those")
    elif from_dir:
        notes.append("no api-endpoints/ in the directory; using the built-in year table")
    available = {ep.key: known.get(ep.key, fallback[ep.key]) for ep in ENDPOINTS}

    done = set()
    if not refresh:
        done = {SliceKey(s, y, f) for s, y, f in conn.execute(
            "SELECT source, year, state_fips FROM ingest_slices WHERE status = 'done'")}

    reports: dict[str, SourceReport] = {}
    todo: list[Slice] = []
    for name in sorted(sources, key=RUN_ORDER.index):
        src = SOURCES[name]
        rep = reports[name] = SourceReport(name)
        have = available[src.endpoint.key]
        rep.years_skipped = [y for y in years if y not in have]
        if rep.years_skipped:
            notes.append(f"{name}: {format_years(rep.years_skipped)} not in the API "
                         f"(it has {format_years(have)}); skipped")
        for year in sorted((y for y in years if y in have), reverse=True):   # newest first: see NEWEST_FIRST
            for fips in fips_list:
                sl = Slice(SliceKey(name, year, fips), states[fips],
                           fallback_denominator=(src.denominator is not None
                                                 and year not in available[CRDC_ENROLLMENT.key]))
                rep.planned += 1
                if sl.key in done:
                    rep.skipped += 1
                elif from_dir and not client.has(src.endpoint.url_path(year), src.endpoint.params(fips)):
                    rep.absent += 1
                else:
                    todo.append(sl)
        if rep.absent:
            notes.append(f"{name}: {rep.absent} slice(s) not in the directory; skipped")
    crdc_fallback = sorted({s.key.year for s in todo if s.fallback_denominator})
    if crdc_fallback:
        notes.append(f"crdc_absenteeism: no CRDC enrollment for {format_years(crdc_fallback)}; the rate's "
                     f"denominator is the district's CCD enrollment of that year")
    return Plan(todo, reports, notes)


# ------------------------------------------------------------------------------------------------ progress

class _PlainProgress:
    """One log line per finished slice, for logs and pipes."""

    def __init__(self, total: int):
        self.total, self.n = total, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def rows(self, n: int) -> None:
        pass

    def slice_finished(self, r: SliceResult) -> None:
        self.n += 1
        click.echo(f"[{self.n}/{self.total}] {_slice_line(r)}", err=True)

    def note(self, text: str) -> None:
        click.echo(text, err=True)


class _RichProgress:
    def __init__(self, total: int, console: Console):
        self.console = console
        self.progress = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[extra]}"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.slices = self.progress.add_task("slices", total=total, extra="")
        self.row_task = self.progress.add_task("rows", total=None, extra="")
        self._rows = 0
        self._lock = threading.Lock()

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def rows(self, n: int) -> None:
        with self._lock:
            self._rows += n
            self.progress.update(self.row_task, completed=self._rows, extra=f"{self._rows:,} rows received")

    def slice_finished(self, r: SliceResult) -> None:
        self.progress.advance(self.slices)
        if r.status != "done":
            self.console.print(f"[red]{_slice_line(r)}[/red]", highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False)


def _slice_line(r: SliceResult) -> str:
    if r.status == "done":
        lnd = r.landed
        return (f"done   {r.slice.label()}: {r.received:,} records, {lnd.districts:,} districts "
                f"({lnd.inserted:,} new, {lnd.updated:,} changed), {values_nulled(r.counts):,} values nulled, "
                f"{records_skipped(r.counts):,} skipped, {r.seconds:.1f}s")
    return f"FAILED {r.slice.label()}: {r.error}"


# ------------------------------------------------------------------------------------------------ run

class Ingest:
    def __init__(self, connect, client, *, refresh: bool = False, concurrency: int = 4, slice_attempts: int = 2,
                 batch_slices: int = BATCH_SLICES, batch_rows: int = BATCH_ROWS,
                 batch_seconds: float = BATCH_SECONDS):
        self.connect = connect                   # () -> a new autocommit connection
        self.client = client
        self.refresh = refresh
        self.concurrency = concurrency
        self.slice_attempts = slice_attempts
        self.batch_slices = batch_slices         # slices of one source and year per batch (one worker's task)
        self.batch_rows = batch_rows             # land once the fetched slices hold this many rows
        self.batch_seconds = batch_seconds       # ... or the oldest of them has waited this long
        self._local = threading.local()
        self._conns: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self.states: dict[str, str] = {}
        self.unknown_fips: set[str] = set()      # states met in records but not in `states`
        self.progress = None

    # ---------------------------------------------------------------------------- connections
    def _conn(self) -> psycopg.Connection:
        c = getattr(self._local, "conn", None)
        if c is None or c.closed or c.broken:
            c = self._local.conn = self.connect()
            land.prepare(c)
            with self._lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()

    # ---------------------------------------------------------------------------- one slice
    def _chain(self, endpoint, sl: Slice, handle) -> tuple[int, int]:
        """Fetch every page of one endpoint for the slice; handle(results) each. -> (pages, rows)."""
        pages = got = 0
        count = None
        path, params = endpoint.url_path(sl.key.year), endpoint.params(sl.key.fips)
        for page in self.client.pages(path, params, RECORD_FIELDS[endpoint.key]):
            pages += 1
            got += len(page.results)
            if count is None:
                count = page.count
            elif page.count is not None and page.count != count:
                raise CountMismatch(f"{path}?{_q(params)}: count changed from {count} to {page.count} "
                                    f"between pages")
            handle(page.results)
            if self.progress:
                self.progress.rows(len(page.results))
        if count is not None and got != count:
            raise CountMismatch(f"{path}?{_q(params)}: the API's count is {count:,} but {got:,} rows arrived")
        return pages, got

    def _fetch(self, sl: Slice) -> tuple[int, int, SliceContext, list[tuple], dict]:
        """Stream the slice's pages and clean them. -> (pages, records received, context with the counts, the
        rows to stage, landing arguments). Only cleaned rows are kept (one per district; CRDC schools are summed
        as they arrive), never the raw pages."""
        ctx = SliceContext(sl.key.year, sl.key.fips, self.states)
        src = sl.source
        extra: dict = {}
        rows: list[tuple] = []
        if src.name == "crdc_absenteeism":
            sums = SchoolSums()

            def school_rows(kind):
                return lambda results: sums.add(kind, crdc_school_rows(_records(results, ctx), ctx, kind))

            pages, got = self._chain(src.endpoint, sl, school_rows("a"))
            if not sl.fallback_denominator:
                p2, g2 = self._chain(src.denominator, sl, school_rows("e"))
                pages, got = pages + p2, got + g2
            rows = sums.districts()
            extra["fallback"] = sl.fallback_denominator or (len(sums) > 0 and not sums.has_enrollment())
        elif src.name == "saipe":
            scale = SaipeScale()
            pages, got = self._chain(src.endpoint, sl,
                                     lambda results: rows.extend(saipe_rows(_records(results, ctx), ctx, scale)))
            extra["saipe"] = scale
        else:
            build = PAGE_BUILDERS[src.name]
            pages, got = self._chain(src.endpoint, sl,
                                     lambda results: rows.extend(build(_records(results, ctx), ctx)))
        return pages, got, ctx, rows, extra

    def _fetch_slice(self, sl: Slice, result: SliceResult) -> land.StagedSlice:
        """Fetch and clean one slice (a count mismatch refetches it, up to slice_attempts times); fills in
        result's pages, records and counts. -> the slice ready to land."""
        for attempt in range(1, self.slice_attempts + 1):
            try:
                pages, got, ctx, rows, extra = self._fetch(sl)
                break
            except CountMismatch as exc:
                if attempt == self.slice_attempts:
                    raise CountMismatch(f"{exc} (slice tried {attempt} times)") from None
        result.pages, result.received, result.counts = pages, got, ctx.counts
        if ctx.unknown_fips:
            ctx.counts["unknown_state_fips"] = sorted(ctx.unknown_fips)   # listed in the checkpoint
            self.unknown_fips |= ctx.unknown_fips
        staged = land.StagedSlice(sl.key.fips, rows)
        if sl.key.source == "crdc_absenteeism":
            staged.fallback = extra["fallback"]
        elif sl.key.source == "saipe":
            scale: SaipeScale = extra["saipe"]
            for k, v in scale.describe().items():
                ctx.counts[k] = v
            staged.rows = scale_saipe(rows, scale, ctx.counts)
        return staged

    def run_batch(self, batch: list[Slice], depends_on: dict[SliceKey, Future]) -> list[SliceResult]:
        """Fetch the batch's slices one after another and land them together (see _land). A slice that cannot
        be fetched is recorded as failed and the others still land. Rows are landed early when the slices
        waiting to land hold batch_rows rows or the oldest has waited batch_seconds, so a batch never holds
        more than about batch_rows cleaned rows. depends_on: the batch futures of the slices' prerequisites
        (the CCD directory slice a CRDC fallback slice reads its enrollment from)."""
        results: list[SliceResult] = []
        waiting: list[tuple[SliceResult, land.StagedSlice]] = []
        waiting_rows, waiting_since = 0, 0.0
        for sl in batch:
            t0 = time.monotonic()
            result = SliceResult(sl, "failed")
            results.append(result)
            try:
                dep = depends_on.get(sl.key)
                if dep is not None and _result_of(dep.result(), dep_key(sl)).status != "done":
                    raise SliceError(f"needs ccd_directory {sl.key.year} {sl.abbrev} (its enrollment is the "
                                     f"denominator), which failed")
                staged = self._fetch_slice(sl, result)
            except Exception as exc:  # noqa: BLE001 - one slice never fails the run; the message is reported
                result.error = _one_line(exc)
                self._record_failure(sl, result)
                result.seconds = time.monotonic() - t0
                continue
            result.seconds = time.monotonic() - t0
            if not waiting:
                waiting_since = time.monotonic()
            waiting.append((result, staged))
            waiting_rows += len(staged.rows)
            if waiting_rows >= self.batch_rows or time.monotonic() - waiting_since >= self.batch_seconds:
                self._land(waiting)
                waiting, waiting_rows = [], 0
        if waiting:
            self._land(waiting)
        return results

    def _land(self, items: list[tuple[SliceResult, land.StagedSlice]]) -> None:
        """Land fetched slices of one source and year in one transaction: one COPY, one upsert statement, and
        every slice's checkpoint row. If that fails, each slice is landed alone, so that one slice's problem
        cannot fail the others; a slice that fails alone is recorded as failed."""
        t0 = time.monotonic()
        try:
            self._land_together(items)
        except Exception as exc:  # noqa: BLE001 - retried slice by slice below
            if len(items) == 1:
                result = items[0][0]
                result.status, result.landed, result.error = "failed", None, _one_line(exc)
                self._record_failure(result.slice, result)
            else:
                for item in items:
                    self._land([item])
            return
        for result, _ in items:
            result.seconds += time.monotonic() - t0

    def _land_together(self, items: list[tuple[SliceResult, land.StagedSlice]]) -> None:
        """One transaction; first with a plain INSERT when the slices never landed before, and again with the
        upsert if a row existed all the same (see loader/land.py)."""
        try:
            self._land_batch(items)
        except psycopg.errors.UniqueViolation:
            self._land_batch(items, retried=True)

    def _land_batch(self, items: list[tuple[SliceResult, land.StagedSlice]], retried: bool = False) -> None:
        first = items[0][0].slice
        source, year = first.key.source, first.key.year
        staged = [s for _, s in items]
        conn = self._conn()
        with conn.transaction():
            fresh = not retried and land.never_landed(conn, source, year, [s.fips for s in staged])
            land.copy_rows(conn, source, staged)
            if source == "crdc_absenteeism":
                landed = land.land_crdc(conn, year, staged, fresh)
            else:
                landed = land.land_district_source(conn, source, first.source.columns, year, staged, fresh)
            checkpoints, finals = [], []
            for result, s in items:
                lnd, more = landed[s.fips]
                counts = Counter(result.counts)         # result.counts stays as fetched until commit
                for k, v in more.items():
                    if isinstance(v, int) and not isinstance(v, bool):
                        counts[k] += v
                    else:
                        counts[k] = v
                if retried:
                    counts["landed_by_upsert_after_conflict"] = 1
                finals.append((lnd, counts))
                checkpoints.append(land.Checkpoint(source, year, s.fips, result.pages, result.received, lnd,
                                                   values_nulled(counts), records_skipped(counts),
                                                   _jsonable(counts)))
            land.mark_done(conn, checkpoints)
        for (result, _), (lnd, counts) in zip(items, finals):
            result.status, result.landed, result.counts = "done", lnd, counts

    def _record_failure(self, sl: Slice, result: SliceResult) -> None:
        for _ in range(2):
            try:
                land.mark_failed(self._conn(), sl.key.source, sl.key.year, sl.key.fips, result.error,
                                 _jsonable(result.counts))
                return
            except psycopg.Error:
                self._local.conn = None          # broken connection: open a fresh one and try once more
        result.error += " (and the failure could not be recorded in ingest_slices)"

    # ---------------------------------------------------------------------------- the whole run
    def run(self, plan: Plan, progress) -> None:
        # Pages and rows die young and are freed by reference counting (they hold no cycles); the cyclic
        # collector's default passes (every 700 net allocations, promoting each page's records while it is
        # being cleaned) cost ~6% of the run's CPU. A higher first threshold lets them die uncollected.
        threshold = gc.get_threshold()
        gc.set_threshold(100_000, 50, 100)
        try:
            self._run(plan, progress)
        finally:
            gc.set_threshold(*threshold)

    def _run(self, plan: Plan, progress) -> None:
        self.progress = progress
        batches = make_batches(plan.todo, self.batch_slices)
        by_slice: dict[SliceKey, Future] = {}
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="ingest") as pool:
            try:
                for batch in batches:   # in RUN_ORDER: the directory batches are queued before CRDC's
                    deps = {sl.key: by_slice[dep_key(sl)] for sl in batch
                            if sl.fallback_denominator and dep_key(sl) in by_slice}
                    fut = pool.submit(self.run_batch, batch, deps)
                    futures.append(fut)
                    by_slice.update((sl.key, fut) for sl in batch)
                for fut in as_completed(futures):
                    for r in fut.result():
                        plan.reports[r.slice.key.source].add(r)
                        progress.slice_finished(r)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise


def make_batches(todo: list[Slice], max_slices: int) -> list[list[Slice]]:
    """Consecutive slices of the same source and year, at most max_slices to a batch (plan order kept)."""
    batches: list[list[Slice]] = []
    for sl in todo:
        last = batches[-1] if batches else None
        if (last and len(last) < max_slices and last[0].key.source == sl.key.source
                and last[0].key.year == sl.key.year):
            last.append(sl)
        else:
            batches.append([sl])
    return batches


def dep_key(sl: Slice) -> SliceKey:
    """The CCD directory slice whose enrollment a CRDC fallback slice needs."""
    return SliceKey("ccd_directory", sl.key.year, sl.key.fips)


def _result_of(results: list[SliceResult], key: SliceKey) -> SliceResult:
    return next(r for r in results if r.slice.key == key)


def _q(params) -> str:
    return "&".join(f"{k}={v}" for k, v in params)


def _records(results: list, ctx: SliceContext) -> list[dict]:
    """The page's records; anything that is not a JSON object is counted and dropped."""
    recs = [r for r in results if type(r) is dict]
    if len(recs) != len(results):
        ctx.counts["skipped_malformed_record"] += len(results) - len(recs)
    return recs


def _jsonable(counts) -> dict:
    return {k: v for k, v in sorted(counts.items()) if v}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if not isinstance(exc, (ApiError, SliceError)):
        first = f"{type(exc).__name__}: {first}"
    return first[:500]


def write_refresh_logs(conn, plan: Plan, args: dict) -> None:
    """One data_refresh_logs row per source of the run."""
    for rep in plan.reports.values():
        failures = [{"year": r.slice.key.year, "state": r.slice.abbrev, "error": r.error} for r in rep.failed]
        details = {
            "years": args["years"], "states": args["states"], "refresh": args["refresh"], "api": args["api"],
            "slices": {"planned": rep.planned, "done": rep.done, "skipped_already_done": rep.skipped,
                       "absent_from_dir": rep.absent, "failed": len(rep.failed)},
            "years_skipped": rep.years_skipped, "pages": rep.pages, "rows_received": rep.received,
            "rows_inserted": rep.inserted, "rows_updated": rep.updated, "rows_unchanged": rep.unchanged,
            "values_nulled": values_nulled(rep.counts), "records_skipped": records_skipped(rep.counts),
            "counts": _jsonable({k: v for k, v in rep.counts.items() if isinstance(v, int)}),
            "failures": failures,
        }
        conn.execute("""
            INSERT INTO data_refresh_logs (data_source, records_updated, records_failed, status, error_message,
                                           started_at, completed_at, details)
            VALUES (%s, %s, %s, %s, %s, to_timestamp(%s), now(), %s)""",
                     (rep.name, rep.inserted + rep.updated, records_skipped(rep.counts),
                      "failed" if rep.failed else "success",
                      (f"{len(rep.failed)} slice(s) failed; first: {rep.failed[0].slice.label()}: "
                       f"{rep.failed[0].error}") if rep.failed else None,
                      rep.started_at, Jsonb(details)))


SUMMARY_COLUMNS = ("source", "done", "skipped", "failed", "rows landed", "unchanged", "values nulled",
                   "records skipped", "pages")


def summary_table(plan: Plan, seconds: float) -> Table:
    """Per source: slices done / skipped (landed before) / failed, history rows landed (new + changed), rows
    unchanged, values nulled, records skipped, pages."""
    t = Table(title=f"ingest summary ({seconds:.1f}s)", title_justify="left")
    for col in SUMMARY_COLUMNS:
        t.add_column(col, justify="left" if col == "source" else "right", no_wrap=True)
    tot = Counter()
    for rep in plan.reports.values():
        vals = {"done": rep.done, "skipped": rep.skipped, "failed": len(rep.failed),
                "rows landed": rep.inserted + rep.updated, "unchanged": rep.unchanged,
                "values nulled": values_nulled(rep.counts), "records skipped": records_skipped(rep.counts),
                "pages": rep.pages}
        tot.update(vals)
        t.add_row(rep.name, *(f"{v:,}" for v in vals.values()))
    t.add_section()
    t.add_row("total", *(f"{tot[k]:,}" for k in SUMMARY_COLUMNS[1:]))
    return t


def require_compute_function(conn) -> None:
    exists = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'compute_all_benchmarks' "
                          "AND pronamespace = 'public'::regnamespace)").fetchone()[0]
    if not exists:
        raise IngestError("--compute: compute_all_benchmarks() is not installed in this database; install the "
                          "benchmark functions (district-benchmarks migrate) and run it again")
