"""The ingest run behind `district-benchmarks ingest` and `run`: run_ingest() (the command line is loader/cli/).

Work is split into slices (source x survey year x state). `concurrency` fetch workers each fetch one slice at a
time, streaming its pages (cleaning each page as it arrives and keeping only the cleaned rows); the fetched
slices of one source and year are gathered into batches (up to BATCH_SLICES slices) that land workers land in
one transaction each, with their checkpoint rows in ingest_slices (see loader/land.py and Ingest._run). A rerun
skips slices already done unless --refresh; a slice that fails is reported and the others still land (a batch
that cannot land is landed again slice by slice); the command then exits non-zero. A slice whose endpoint
returned nothing for a state that has the source's data in other years is named in a warning (gap_warnings).

A run whose first request (the endpoint catalogue) cannot connect to the API at all stops at once with one
line saying why (Unreachable); failures to get an answer (timeouts, HTTP 5xx) keep their retries, slice by slice.
A failed slice carries its cause in a few words (`error`) and in full (`detail`, for the refresh log). An
interrupt (KeyboardInterrupt: Ctrl-C, or SIGTERM as the command line handles it) starts nothing new, abandons
the slices in flight and lets the batches that are landing commit (Ingest._wind_down); the refresh log rows are
completed.

Progress is reported to an IngestProgress (the command line draws it; NullProgress draws nothing).
"""
from __future__ import annotations

import gc
import heapq
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psycopg
from psycopg.types.json import Jsonb

from . import land, locks
from .api import (
    DEFAULT_API_URL,
    ApiClient,
    ApiError,
    CannotConnect,
    CountMismatch,
    HttpSettings,
    Stopped,
    exception_chain,
    redact_url,
)
from .bulk import BulkClient
from .db import connect
from .errors import UserError
from .normalize import SliceContext, records_skipped, values_nulled
from .rawstore import DirClient, SavingClient
from .sources import ENDPOINTS, SOURCE_NAMES, SOURCES, Endpoint, Source, catalogue_years, fallback_years, format_years

LATEST_YEAR = 2024                       # newest year in the built-in catalogue
DEFAULT_YEARS = f"{LATEST_YEAR - 9}-{LATEST_YEAR}"
# Order of work: the sources in SOURCE_NAMES order (the CCD directory first, CRDC last: see loader/sources.py).
# NEWEST_FIRST: within a source, the newest year first. A district's identity columns come from the newest
# directory year, so landing it first leaves the older years' identity upserts with nothing to write (they
# would otherwise rewrite every district once per year); and an interrupted run has the newest data.
# Batching (see Ingest._run): fetched slices of one source and year, up to BATCH_SLICES, are landed together, in
# one transaction, as soon as they hold BATCH_ROWS rows, the oldest has waited BATCH_SECONDS, or no more of them
# can come. Landing costs PostgreSQL a few milliseconds per transaction whatever its size, and most slices are
# small (one state, one year, one source).
BATCH_SLICES = 16
BATCH_ROWS = 20_000
BATCH_SECONDS = 5.0
# Slices fetched at once. The real API answers in seconds (median ~1 s, mean ~2 s, up to ~29 s), and the loader
# needs ~4 ms of CPU per page: the run's wait is about requests x mean latency / concurrency. 8 requests in
# flight make a national refresh ~9 minutes of waiting without leaning hard on a shared public service
# (docs/ingest.md, Concurrency).
DEFAULT_CONCURRENCY = 8
LAND_WORKERS = 2                         # batches landed at once, one database connection each
LOCK_WAIT_SECONDS = 10                   # for another ingest (a killed one's lock goes once the server notices)


class IngestError(UserError):
    """A problem with the request as a whole (bad option, another ingest running); one line."""


class SliceError(RuntimeError):
    """One slice cannot be fetched (reported with the slice; the others go on)."""


class Unreachable(IngestError):
    """The API's host could not be connected to at all (its first requests all failed to connect): the run
    stops before fetching anything. The message is one line (host, cause, what to check); `detail` the rest."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


# ------------------------------------------------------------------------------------------------ options

def parse_years(text: str) -> list[int]:
    years: set[int] = set()
    for part in (text or "").replace(" ", "").split(","):
        m = re.fullmatch(r"([0-9]{4})(?:-([0-9]{4}))?", part)
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
    bad = [t for t in tokens if not re.fullmatch(r"[A-Z]{2}|[0-9]{1,2}", t)]
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
        raise IngestError(f"no state {', '.join(bad)} in the states table "
                          f"(known: {', '.join(sorted(states.values()))})", option="--states")
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
    error: str | None = None                 # the cause in a few words ("HTTP 503 after 6 tries")
    detail: str | None = None                # the whole story: URL, exception chain (the refresh log, --verbose)
    seconds: float = 0.0
    empty: bool = False                      # the source's endpoint returned no records


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
    notes: list[str] = field(default_factory=list)      # found during the run (e.g. fields= refused)
    warnings: list[str] = field(default_factory=list)   # gaps (gap_warnings)
    empty: list[SliceResult] = field(default_factory=list)          # done, but the endpoint returned nothing
    years_with_records: dict[str, set[int]] = field(default_factory=dict)   # state -> years, in this run

    def add(self, r: SliceResult) -> None:
        self.pages += r.pages
        self.received += r.received
        self.counts.update({k: v for k, v in r.counts.items() if type(v) is int})
        if r.status == "done":
            self.done += 1
            if r.empty:
                self.empty.append(r)
            else:
                self.years_with_records.setdefault(r.slice.key.fips, set()).add(r.slice.key.year)
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
    except CannotConnect:
        raise                                   # the run's first request: nothing answered at all (run_ingest)
    except ApiError as exc:
        rows = []
        notes.append(f"endpoint catalogue unavailable ({exc.brief}); using the built-in year table")
    if hasattr(client, "plan_downloads"):       # --via csv: which files to download (loader/bulk.py)
        notes.extend(client.plan_downloads(rows, sources, years, fips_list))
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
    fallback_years_of: dict[str, set[int]] = {}
    for name in (n for n in SOURCE_NAMES if n in sources):
        src = SOURCES[name]
        rep = reports[name] = SourceReport(name)
        have = src.years(available)
        rep.years_skipped = [y for y in years if y not in have]
        if rep.years_skipped:
            notes.append(f"{name}: {format_years(rep.years_skipped)} not in the API "
                         f"(it has {format_years(have)}); skipped")
        for year in sorted((y for y in years if y in have), reverse=True):   # newest first: see NEWEST_FIRST
            for fips in fips_list:
                sl = Slice(SliceKey(name, year, fips), states[fips],
                           fallback_denominator=src.needs_fallback(year, available))
                rep.planned += 1
                if sl.key in done:
                    rep.skipped += 1
                elif from_dir and not client.has(src.endpoint.url_path(year), src.endpoint.params(fips)):
                    rep.absent += 1
                else:
                    todo.append(sl)
                    if sl.fallback_denominator:
                        fallback_years_of.setdefault(name, set()).add(year)
        if rep.absent:
            notes.append(f"{name}: {rep.absent} slice(s) not in the directory; skipped")
    for name, fallback in fallback_years_of.items():
        notes.append(f"{name}: " + SOURCES[name].fallback_note.format(years=format_years(fallback)))
    if hasattr(client, "prefetch"):             # --via csv: start on the files these slices read (loader/bulk.py)
        client.prefetch([(sl.source, sl.key.year, sl.fallback_denominator) for sl in todo])
    return Plan(todo, reports, notes)


# ------------------------------------------------------------------------------------------------ progress

class IngestProgress(Protocol):
    """What run_ingest() reports as it goes; the command line draws it (loader/cli/render.py)."""

    def planned(self, plan: Plan, source: str) -> None:
        """The plan is made (notes, slices to fetch from `source`); fetching starts."""

    def rows(self, n: int) -> None:
        """n more records received (called from worker threads)."""

    def slice_finished(self, r: SliceResult) -> None:
        """A slice landed or failed."""

    def finished(self) -> None:
        """Fetching is over (also after an error)."""


class NullProgress:
    """Reports nothing."""

    def planned(self, plan: Plan, source: str) -> None:
        pass

    def rows(self, n: int) -> None:
        pass

    def slice_finished(self, r: SliceResult) -> None:
        pass

    def finished(self) -> None:
        pass


def describe_result(r: SliceResult) -> str:
    """One line about a finished slice."""
    if r.status == "done":
        lnd = r.landed
        return (f"done   {r.slice.label()}: {r.received:,} records, {lnd.districts:,} districts "
                f"({lnd.inserted:,} new, {lnd.updated:,} changed), {values_nulled(r.counts):,} values nulled, "
                f"{records_skipped(r.counts):,} skipped, {r.seconds:.1f}s")
    return f"FAILED {r.slice.label()}: {r.error}"


# ------------------------------------------------------------------------------------------------ run

class Ingest:
    def __init__(self, connect, client, *, refresh: bool = False, concurrency: int = DEFAULT_CONCURRENCY,
                 slice_attempts: int = 2, batch_slices: int = BATCH_SLICES, batch_rows: int = BATCH_ROWS,
                 batch_seconds: float = BATCH_SECONDS, land_workers: int = LAND_WORKERS):
        self.connect = connect                   # () -> a new autocommit connection
        self.client = client
        self.refresh = refresh
        self.concurrency = concurrency           # slices fetched at once (one request each in flight)
        self.slice_attempts = slice_attempts
        self.batch_slices = batch_slices         # fetched slices of one source and year landed together, at most
        self.batch_rows = batch_rows             # land once the fetched slices hold this many rows
        self.batch_seconds = batch_seconds       # ... or the oldest of them has waited this long
        self.land_workers = land_workers         # batches landed at once (one connection each)
        self._local = threading.local()
        self._conns: list[psycopg.Connection] = []
        self._lock = threading.Lock()
        self.states: dict[str, str] = {}
        self.unknown_fips: set[str] = set()      # states met in records but not in `states`
        self.progress = None
        self._whole: set[str] = set()            # endpoints whose `fields=` the server refused: asked without it
        self._fields_ok: set[str] = set()        # request paths that answered a request with `fields=`
        self.notes: list[tuple[str, str]] = []   # (source, note) found while fetching
        self.stopping = threading.Event()        # interrupted: slices in flight are abandoned (_wind_down)

    # ---------------------------------------------------------------------------- connections
    def _conn(self) -> psycopg.Connection:
        c = getattr(self._local, "conn", None)
        if c is None or c.closed or c.broken:
            c = self._local.conn = self.connect()
            land.prepare(c)
            self._local.run_lock = locks.can_take_run_lock(c)
            with self._lock:
                self._conns.append(c)
        return c

    def close(self) -> None:
        with self._lock:
            for c in self._conns:
                c.close()
            self._conns.clear()

    # ---------------------------------------------------------------------------- one slice
    def _pages(self, endpoint: Endpoint, sl: Slice, path: str, params: list[tuple[str, str]]) -> Iterator:
        """The chain's pages, asked for with `fields=` (the fields the cleaning reads). If the first page of a
        request path that has not yet answered one with `fields=` fails (an HTTP error after the retries, an API
        ERROR body, ...), the same request is sent without it; when that succeeds, the endpoint is asked without
        `fields=` for the rest of the run, and a note says so once. When it fails too, the first error stands."""
        client, fields = self.client, endpoint.fields
        if endpoint.key in self._whole:
            yield from client.pages(path, params, fields, send_fields=False)
            return
        chain = client.pages(path, params, fields)
        if path in self._fields_ok or not getattr(client, "asks_fields", False):
            yield from chain
            return
        try:
            first = next(chain, None)
        except ApiError as refused:
            chain = client.pages(path, params, fields, send_fields=False)
            try:
                first = next(chain, None)
            except ApiError:
                raise refused from None
            self._drop_fields(endpoint, sl, refused)
        else:
            self._fields_ok.add(path)
        if first is not None:
            yield first
            yield from chain

    def _drop_fields(self, endpoint: Endpoint, sl: Slice, refused: ApiError) -> None:
        with self._lock:
            if endpoint.key in self._whole:
                return
            self._whole.add(endpoint.key)
            self.notes.append((sl.key.source, f"{endpoint.key}: the API refused fields= ({_one_line(refused)[:200]}) "
                                              f"but answered without it; whole records are asked for the rest of "
                                              f"the run"))

    def _chain(self, endpoint: Endpoint, sl: Slice, ctx: SliceContext, handle: Callable[[list], None],
               received: Counter) -> tuple[int, int]:
        """Fetch every page of one endpoint for the slice; handle(records) each. -> (pages, records); the
        records are also added to received[endpoint key]."""
        pages = got = 0
        count = None
        path, params = endpoint.url_path(sl.key.year), endpoint.params(sl.key.fips)
        for page in self._pages(endpoint, sl, path, params):
            if self.stopping.is_set():
                raise Stopped("the run is stopping: the slice was abandoned")
            pages += 1
            got += len(page.results)
            if count is None:
                count = page.count
            elif page.count is not None and page.count != count:
                raise CountMismatch(f"{path}?{_q(params)}: count changed from {count} to {page.count} "
                                    f"between pages", "the API's count changed between pages")
            handle(_records(page.results, ctx))
            if self.progress:
                self.progress.rows(len(page.results))
        if count is not None and got != count:
            raise CountMismatch(f"{path}?{_q(params)}: the API's count is {count:,} but {got:,} rows arrived",
                                f"the API's count is {count:,} but {got:,} rows arrived")
        received[endpoint.key] += got
        return pages, got

    def _fetch_slice(self, sl: Slice, result: SliceResult) -> land.StagedSlice:
        """Fetch and clean one slice (its source's collect(): pages are cleaned as they arrive and only the
        cleaned rows are kept); a count mismatch refetches it, up to slice_attempts times. Fills in result's
        pages, records, counts and `empty`. -> the slice ready to land."""
        for attempt in range(1, self.slice_attempts + 1):
            ctx = SliceContext(sl.key.year, sl.key.fips, self.states)
            received: Counter = Counter()
            try:
                got = sl.source.collect(
                    lambda ep, handle, ctx=ctx, received=received: self._chain(ep, sl, ctx, handle, received),
                    ctx, sl.fallback_denominator)
                break
            except CountMismatch as exc:
                if attempt == self.slice_attempts:
                    raise CountMismatch(f"{exc} (slice tried {attempt} times)",
                                        f"{exc.brief} (slice tried {attempt} times)") from None
        result.pages, result.received, result.counts = got.pages, got.received, ctx.counts
        result.empty = received[sl.source.endpoint.key] == 0
        if ctx.unknown_fips:
            ctx.counts["unknown_state_fips"] = sorted(ctx.unknown_fips)   # listed in the checkpoint
            self.unknown_fips |= ctx.unknown_fips
        return land.StagedSlice(sl.key.fips, got.rows, got.fallback)

    def fetch(self, sl: Slice, needed_failed: SliceKey | None = None) -> tuple[SliceResult, land.StagedSlice | None]:
        """One fetch worker's task: fetch and clean one slice. A slice that cannot be fetched (or whose
        prerequisite `needed_failed` failed) is recorded as failed here, and None is returned for its rows."""
        t0 = time.monotonic()
        result = SliceResult(sl, "failed")
        staged = None
        try:
            if needed_failed is not None:
                raise SliceError(f"needs {needed_failed.source} {needed_failed.year} {sl.abbrev}, which failed")
            staged = self._fetch_slice(sl, result)
        except Exception as exc:  # noqa: BLE001 - one slice never fails the run; the message is reported
            result.error, result.detail = _one_line(exc), _detail(exc)
            if self.stopping.is_set():
                result.status = "abandoned"          # not a failure of the slice: the run was interrupted
            else:
                self._record_failure(sl, result)
        result.seconds = time.monotonic() - t0
        return result, staged

    # ---------------------------------------------------------------------------- landing
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
                result.detail = _detail(exc)
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
        except psycopg.errors.DeadlockDetected:
            self._land_batch(items)       # rolled back whole: landing it again is safe (once)

    def _land_batch(self, items: list[tuple[SliceResult, land.StagedSlice]], retried: bool = False) -> None:
        first = items[0][0].slice
        source, year, src = first.key.source, first.key.year, first.source
        staged = [s for _, s in items]
        conn = self._conn()
        with conn.transaction():
            if self._local.run_lock:      # before anything else: a benchmark run and a landing never deadlock
                conn.execute(f"LOCK TABLE {locks.RUN_LOCK} IN ROW EXCLUSIVE MODE")
            fresh = not retried and land.never_landed(conn, source, year, [s.fips for s in staged])
            land.copy_rows(conn, *src.copy_target(), staged)
            landed = src.land(conn, year, staged, fresh)
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
                land.mark_failed(self._conn(), sl.key.source, sl.key.year, sl.key.fips,
                                 result.detail or result.error, _jsonable(result.counts))
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
            for source, note in self.notes:
                plan.reports[source].notes.append(note)

    def _run(self, plan: Plan, progress) -> None:
        """The scheduler (this thread): keeps `concurrency` slices being fetched, each by one fetch worker, as
        long as slices remain; gathers the fetched slices of each source and year into a batch, handed to a
        land worker once it holds batch_slices slices or batch_rows rows, its oldest slice has waited
        batch_seconds, or no more slices of that source and year can come. How slices are fetched is thus
        independent of how they land: a slow response holds back only its own slice. Slices are taken in plan
        order, except that a slice whose prerequisite (dep_key) is still on its way waits without holding back
        the others. No new fetch starts while 2 x land_workers batches are waiting to land, so the rows held
        are bounded: about batch_rows per source and year being gathered, those batches, and what the fetch
        workers hold."""
        self.progress = progress
        todo = plan.todo
        position = {sl.key: i for i, sl in enumerate(todo)}
        ready = list(range(len(todo)))            # a heap of plan positions (sorted: a heap already)
        blocked: dict[SliceKey, list[int]] = {}   # prerequisite -> positions of the slices waiting for it
        final: dict[SliceKey, str] = {}           # slices landed or failed: their status
        groups: dict[tuple[str, int], _Gathering] = {}
        for sl in todo:
            groups.setdefault((sl.key.source, sl.key.year), _Gathering()).remaining += 1
        fetching: dict[Future, int] = {}
        landing: dict[Future, list[tuple[SliceResult, land.StagedSlice]]] = {}

        def finished(result: SliceResult) -> None:
            final[result.slice.key] = result.status
            plan.reports[result.slice.key.source].add(result)
            progress.slice_finished(result)
            for i in blocked.pop(result.slice.key, ()):
                heapq.heappush(ready, i)

        def hand_over(key: tuple[str, int]) -> None:
            g = groups[key]
            items = [(r, s) for _, r, s in sorted(g.items, key=lambda item: item[0])]   # in plan order
            g.items, g.rows = [], 0
            landing[land_pool.submit(self._land, items)] = items

        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="ingest-fetch") as fetch_pool, \
                ThreadPoolExecutor(self.land_workers, thread_name_prefix="ingest-land") as land_pool:
            try:
                while True:
                    while ready and len(fetching) < self.concurrency and len(landing) < 2 * self.land_workers:
                        i = heapq.heappop(ready)
                        sl = todo[i]
                        needed = dep_key(sl)
                        if needed not in position:        # None, or not fetched by this run
                            needed = None
                        elif needed not in final:
                            blocked.setdefault(needed, []).append(i)
                            continue
                        elif final[needed] == "done":
                            needed = None
                        fetching[fetch_pool.submit(self.fetch, sl, needed)] = i
                    now, idle = time.monotonic(), not (fetching or landing)
                    for key, g in groups.items():
                        if g.items and (idle or now - g.since >= self.batch_seconds):
                            hand_over(key)
                    if not (fetching or landing):
                        break
                    due = [g.since + self.batch_seconds - now for g in groups.values() if g.items]
                    done, _ = wait([*fetching, *landing], timeout=max(0.0, min(due)) if due else None,
                                   return_when=FIRST_COMPLETED)
                    for fut in done:
                        if fut in landing:
                            items = landing.pop(fut)
                            fut.result()
                            for result, _ in items:
                                finished(result)
                            continue
                        i = fetching.pop(fut)
                        result, staged = fut.result()
                        key = (result.slice.key.source, result.slice.key.year)
                        g = groups[key]
                        g.remaining -= 1
                        if staged is None:
                            finished(result)
                        else:
                            if not g.items:
                                g.since = time.monotonic()
                            g.items.append((i, result, staged))
                            g.rows += len(staged.rows)
                        if g.items and (g.remaining == 0 or g.rows >= self.batch_rows
                                        or len(g.items) >= self.batch_slices):
                            hand_over(key)
                if blocked:                               # cannot happen: every prerequisite ends somehow
                    raise RuntimeError(f"slices left waiting for {', '.join(map(str, blocked))}")
            except BaseException:
                self._wind_down(fetching, landing, finished)
                raise

    def _wind_down(self, fetching: dict[Future, int], landing: dict[Future, list], finished: Callable) -> None:
        """After an interrupt (or any error of the scheduler): start nothing new, abandon the slices being fetched
        (the client is aborted: a slow response is not waited for; nothing of them lands and none is recorded as
        failed) and the batches not yet landing, and let the batches that are landing commit (each is one
        transaction: all of it or nothing), reporting them as usual."""
        self.stopping.set()
        abort = getattr(self.client, "abort", None)
        for fut in [*fetching, *landing]:
            fut.cancel()                              # those not started yet
        running = [f for f in [*fetching, *landing] if not f.cancelled()]
        while running:
            if abort is not None:
                abort()                               # again: connections opened since the last time
            _, pending = wait(running, timeout=0.2)
            running = list(pending)
        for fut, items in landing.items():
            if not fut.cancelled() and fut.exception() is None:
                for result, _ in items:               # landed, or failed to land
                    finished(result)


@dataclass
class _Gathering:
    """Fetched slices of one source and year waiting to land together (Ingest._run)."""

    remaining: int = 0                           # slices of it not yet fetched (or failed)
    items: list[tuple[int, SliceResult, land.StagedSlice]] = field(default_factory=list)   # (plan position, ...)
    rows: int = 0
    since: float = 0.0                           # when the oldest of `items` was fetched


def dep_key(sl: Slice) -> SliceKey | None:
    """The slice that must land before this one (a CRDC fallback slice reads its CCD enrollment), or None."""
    dep = sl.source.depends_on(sl.key.year, sl.key.fips, sl.fallback_denominator)
    return SliceKey(*dep) if dep else None


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
    """The failure in a few words: the API client's `brief` ("connection refused", "HTTP 503 after 6 tries"),
    else the first line of the message."""
    brief = getattr(exc, "brief", None)
    if isinstance(brief, str):
        return brief[:200]
    text = str(exc).strip() or type(exc).__name__
    first = text.splitlines()[0]
    if not isinstance(exc, SliceError):
        first = f"{type(exc).__name__}: {first}"
    return first[:500]


def _detail(exc: BaseException) -> str:
    """The failure in full, for the refresh log and --verbose: the API client's `detail` (URL, exception chain),
    else the message and its chain."""
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str):
        return detail[:2000]
    return exception_chain(exc)[:2000]


def gap_warnings(conn, plan: Plan) -> None:
    """Warn about each slice whose endpoint returned no records although its state has rows of that source for
    other years, in district_data_history (by the districts' state) or in this run: more likely a gap in the
    API's data than a state without any. A warning, not an error: one line per source and year, into the
    source's report (the summary and its refresh log row)."""
    for rep in plan.reports.values():
        if not rep.empty:
            continue
        have = {fips: set(years) for fips, years in rep.years_with_records.items()}
        for fips, years in conn.execute("""
                SELECT d.state_fips, array_agg(DISTINCT h.year)
                  FROM districts d JOIN district_data_history h ON h.leaid = d.leaid AND h.source = %s
                 WHERE d.state_fips = ANY(%s)
                 GROUP BY d.state_fips""", (rep.name, sorted({r.slice.key.fips for r in rep.empty}))):
            have.setdefault(fips, set()).update(years)
        gaps: dict[int, list[tuple[Slice, set[int]]]] = {}
        for r in sorted(rep.empty, key=lambda r: (-r.slice.key.year, r.slice.key.fips)):
            others = have.get(r.slice.key.fips, set()) - {r.slice.key.year}
            if others:
                gaps.setdefault(r.slice.key.year, []).append((r.slice, others))
        for year, found in gaps.items():
            if len(found) == 1:
                sl, others = found[0]
                rep.warnings.append(f"{sl.label()}: the API returned no records, though {sl.abbrev} has {rep.name} "
                                    f"data for {format_years(others)} (a gap in the source?)")
            else:
                rep.warnings.append(f"{rep.name} {year}: the API returned no records for {len(found)} states that "
                                    f"have {rep.name} data for other years: {', '.join(sl.abbrev for sl, _ in found)} "
                                    f"(a gap in the source?)")


def start_refresh_logs(conn, plan: Plan) -> dict[str, int]:
    """One 'running' data_refresh_logs row per source, committed at once (conn is autocommit), so a run that is
    killed leaves a trace (report.run_status shows it as interrupted once its process is gone). -> source: id."""
    ids = {}
    for rep in plan.reports.values():
        ids[rep.name] = conn.execute(
            "INSERT INTO data_refresh_logs (data_source, status, started_at, details) "
            "VALUES (%s, 'running', to_timestamp(%s), jsonb_build_object('pid', pg_backend_pid())) RETURNING id",
            (rep.name, rep.started_at)).fetchone()[0]
    return ids


def log_unreachable(conn, sources: list[str], message: str, detail: str, args: dict) -> None:
    """The run stopped before its plan (Unreachable): one completed 'failed' row per source asked for."""
    for name in sources:
        conn.execute(
            "INSERT INTO data_refresh_logs (data_source, status, error_message, completed_at, details) "
            "VALUES (%s, 'failed', %s, now(), %s)", (name, message, Jsonb({**args, "detail": detail})))


def finish_refresh_logs(conn, plan: Plan, ids: dict[str, int], aborted: str | None, args: dict) -> None:
    """Complete each source's row: failed when a slice failed or the run stopped before the source's slices all
    landed (aborted: why), skipped when nothing was fetched (every slice landed before, or none was planned), else
    success; details hold the run's figures (each failure's cause in words and in full)."""
    for rep in plan.reports.values():
        failures = [{"year": r.slice.key.year, "state": r.slice.abbrev, "error": r.error, "detail": r.detail}
                    for r in rep.failed]
        details = {
            "years": args["years"], "states": args["states"], "refresh": args["refresh"], "api": args["api"],
            "slices": {"planned": rep.planned, "done": rep.done, "skipped_already_done": rep.skipped,
                       "absent_from_dir": rep.absent, "failed": len(rep.failed)},
            "years_skipped": rep.years_skipped, "pages": rep.pages, "rows_received": rep.received,
            "rows_inserted": rep.inserted, "rows_updated": rep.updated, "rows_unchanged": rep.unchanged,
            "values_nulled": values_nulled(rep.counts), "records_skipped": records_skipped(rep.counts),
            "counts": _jsonable({k: v for k, v in rep.counts.items() if isinstance(v, int)}),
            "failures": failures, "notes": rep.notes, "warnings": rep.warnings,
        }
        complete = rep.done == rep.planned - rep.skipped - rep.absent      # every slice of it fetched landed
        stopped = aborted if aborted and not complete else None
        status = "failed" if rep.failed or stopped else "success" if rep.done else "skipped"
        error = stopped or ((f"{len(rep.failed)} slice(s) failed; first: {rep.failed[0].slice.label()}: "
                             f"{rep.failed[0].error}") if rep.failed else None)
        conn.execute("""
            UPDATE data_refresh_logs
               SET records_updated = %s, records_failed = %s, status = %s, error_message = %s, completed_at = now(),
                   details = %s
             WHERE id = %s""",
                     (rep.inserted + rep.updated, records_skipped(rep.counts), status, error, Jsonb(details),
                      ids[rep.name]))


# ------------------------------------------------------------------------------------------------ the command

@dataclass
class IngestRequest:
    """What to ingest and how: the options of `district-benchmarks ingest`."""

    years: list[int]
    states: list[str] | None = None          # tokens (CA, 06); None: all states
    sources: list[str] = field(default_factory=lambda: list(SOURCE_NAMES))
    api_url: str = DEFAULT_API_URL
    http: HttpSettings = field(default_factory=HttpSettings)
    concurrency: int = DEFAULT_CONCURRENCY
    batch_slices: int = BATCH_SLICES
    refresh: bool = False
    save_raw: Path | None = None
    from_dir: Path | None = None             # replay saved pages (or the bundled sample) instead of the network
    via: str = "api"                         # "csv": the API's bulk CSV downloads, converted to pages (loader/bulk.py)
    cache_dir: Path | None = None            # --via csv: where downloaded files are kept (None: the user's cache dir)


@dataclass
class IngestOutcome:
    """What run_ingest() did."""

    plan: Plan
    seconds: float
    source: str                              # where the pages came from (the API URL, or file://DIR)
    unknown_fips: set[str]                   # states met in records with no row in `states`

    @property
    def failed(self) -> list[SliceResult]:
        return [r for rep in self.plan.reports.values() for r in rep.failed]

    @property
    def messages(self) -> list[str]:
        """What the run found worth saying besides the figures: its notes, then its warnings, one line each."""
        reports = self.plan.reports.values()
        return ([f"note: {n}" for rep in reports for n in rep.notes]
                + [f"warning: {w}" for rep in reports for w in rep.warnings])

    @property
    def unknown_records(self) -> int:
        return sum(rep.counts.get("skipped_unknown_state", 0) for rep in self.plan.reports.values())

    def as_dict(self) -> dict:
        """The outcome as plain data (`ingest --json`): per source the slices and rows, then the failed slices."""
        return {
            "source": self.source, "seconds": round(self.seconds, 3),
            "sources": {rep.name: {
                "slices": {"planned": rep.planned, "done": rep.done, "skipped_already_done": rep.skipped,
                           "absent_from_dir": rep.absent, "failed": len(rep.failed)},
                "years_skipped": rep.years_skipped, "pages": rep.pages, "rows_received": rep.received,
                "rows_inserted": rep.inserted, "rows_updated": rep.updated, "rows_unchanged": rep.unchanged,
                "values_nulled": values_nulled(rep.counts), "records_skipped": records_skipped(rep.counts),
                "notes": rep.notes, "warnings": rep.warnings} for rep in self.plan.reports.values()},
            "failed": [{"source": r.slice.key.source, "year": r.slice.key.year, "state": r.slice.abbrev,
                        "error": r.error} for r in self.failed],
            "unknown_fips": sorted(self.unknown_fips), "unknown_records": self.unknown_records,
        }


def make_client(request: IngestRequest):
    """The page source: the API (saving raw pages too with save_raw), or a directory of saved pages."""
    if request.save_raw and request.from_dir:
        raise IngestError("--save-raw and --from-dir cannot be used together", option="--save-raw")
    if request.from_dir:
        return DirClient(request.from_dir)
    try:
        client = ApiClient(request.api_url, request.http)
    except ValueError as exc:
        raise IngestError(str(exc), option="--api-url") from None
    if request.via == "csv":
        return BulkClient(client, request.cache_dir, request.save_raw)
    if request.save_raw:
        request.save_raw.mkdir(parents=True, exist_ok=True)
        return SavingClient(client, request.save_raw)
    return client


def run_ingest(conninfo: str, request: IngestRequest, progress: IngestProgress | None = None) -> IngestOutcome:
    """Fetch, clean and land what `request` asks for; one data_refresh_logs row per source. Slices that fail
    are in the outcome's `failed` (the others landed); errors about the request as a whole raise IngestError."""
    progress = progress or NullProgress()
    t0 = time.monotonic()
    client = make_client(request)
    try:
        with connect(conninfo, autocommit=True) as conn:
            if not conn.execute("SELECT to_regclass('public.ingest_slices') IS NOT NULL").fetchone()[0]:
                raise IngestError("the database has no ingest_slices table; run `district-benchmarks migrate` "
                                  "first")
            lock = locks.take_ingest_lock(lambda: connect(conninfo), LOCK_WAIT_SECONDS)
            try:
                state_map = dict(conn.execute("SELECT fips, abbrev FROM states WHERE fips <> '00' ORDER BY fips"))
                fips_list = resolve_states(request.states, state_map)
                log_args = {"years": format_years(request.years),
                            "states": "all" if request.states is None else ",".join(request.states),
                            "refresh": request.refresh, "api": client.base_url}
                try:
                    plan = plan_slices(conn, client, request.sources, request.years, fips_list, state_map,
                                       request.refresh, request.from_dir is not None)
                except CannotConnect as exc:         # the first request could not connect: stop at once
                    message = exc.advice(redact_url(request.api_url))
                    log_unreachable(conn, request.sources, message, exc.detail, log_args)
                    raise Unreachable(message, exc.detail) from None
                runner = Ingest(lambda: connect(conninfo, autocommit=True), client, refresh=request.refresh,
                                concurrency=request.concurrency, batch_slices=request.batch_slices)
                runner.states = state_map
                log_ids = start_refresh_logs(conn, plan)
                aborted = None
                try:
                    progress.planned(plan, client.base_url)
                    runner.run(plan, progress)
                    gap_warnings(conn, plan)
                except KeyboardInterrupt:
                    aborted = ("interrupted (Ctrl-C or SIGTERM) before every slice landed; the slices that landed "
                               "are kept, and the same command resumes")
                    raise
                except BaseException as exc:
                    aborted = f"the run stopped: {type(exc).__name__}: {exc}"[:500]
                    raise
                finally:
                    progress.finished()
                    runner.close()
                    finish_refresh_logs(conn, plan, log_ids, aborted, {**log_args, "api": client.base_url})
            finally:
                lock.close()                 # ends its transaction: the ingest lock is released
    finally:
        client.close()
    return IngestOutcome(plan, time.monotonic() - t0, client.base_url, set(runner.unknown_fips))
