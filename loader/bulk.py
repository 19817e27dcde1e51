"""Bulk mode, `ingest --via csv`: the API's downloadable CSV files instead of its paged routes.

The API lists each endpoint's files at `GET {api}/api-downloads/?endpoint_id=N` (paged like every route; N is
the endpoint's `endpoint_id` in `/api-endpoints/`), and serves a file at `{site}/csv/{file_dir}/{file_name}`,
`{site}` being the API base without its `/api/v1`. Some endpoints have one file per survey year (the year is
in the file name), others one file for every year; codebooks (`.xls`) are listed too and are skipped. File
names are read from that listing at run time.

How a run uses them (BulkClient, made by loader.ingest.make_client for `--via csv`):

1. plan_downloads(), called by plan_slices with the catalogue rows, the sources, years and resolved states:
   for each endpoint the sources read, the listing (all asked for at once); a requested year is read from the
   file whose name names that year, else from the endpoint's other CSV files (one file for all years). An
   endpoint without a CSV (or a year without one, or no catalogue to find the endpoint_id in) is fetched from
   the API, and the run says so in a note. Files converted together form a unit: a year's file, or an
   endpoint's files of several years.
2. prefetch(), called by plan_slices with the slices to fetch, starts the units they read, in their order, in
   background threads: at most BULK_WORKERS downloads at once (Downloader), then each unit's conversion
   (convert_files -> convert_csv) in a converter process, queued in the order the units were started. A
   conversion keeps exactly the rows the API route would have returned for the requested years and states
   (every breakdown or filter column the file has equal to 99, so subgroup rows are dropped; rows that are not
   kept are dropped before they are converted), maps "" and "." to null, keeps only the endpoint's fields
   (numbers as JSON numbers, as the API sends them), and writes pages of at most PAGE_RECORDS records in
   rawstore's --save-raw layout, the directory a --save-raw of the API would have written per route, year and
   state. Memory stays flat whatever the file's size: a file is read a chunk at a time, and the partitions'
   pending records are bounded in bytes (the largest are written out as pages when the bound is reached).
3. Every slice waits for its unit, then replays its pages through rawstore.DirClient: cleaning, landing, checkpoints and
   resuming are the API path's own, so the same data lands the same rows whichever --via is used. A state
   with no row in the file gets one empty page, as the API answers.

With --save-raw DIR the pages are written into DIR (a later `--from-dir DIR` replays them); otherwise into a
work directory under the cache, removed when the run ends.

Downloads go through loader/api.py's session of the thread (its retry policy, proxies and CA bundle; the same
redirect rule: only within the API's origin). Files are kept in the cache directory (`--cache-dir`, default
$XDG_CACHE_HOME/district-benchmarks or ~/.cache/district-benchmarks) with their size, ETag and Last-Modified;
the next run asks with If-None-Match / If-Modified-Since and a 304 reuses the file. A download that breaks off
is retried (the --retries budget, with the client's backoff) and, when the server takes ranges
(`Accept-Ranges: bytes`, answering 206), resumed with `Range` (and `If-Range`, so a file that changed meanwhile
is fetched whole); a partial file left by a killed run is resumed the same way.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import itemgetter
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import msgspec
import requests

from .api import MAX_REDIRECTS, ApiClient, ApiError, Page, TransientError
from .errors import UserError
from .rawstore import DirClient, SavingClient, chain_dir, page_file
from .sources import SOURCES, Endpoint, Source, catalogue_years, fallback_years, format_years

PAGE_RECORDS = 10_000             # records per converted page (the API's own page size)
BUFFER_BYTES = 16 * 2**20         # encoded records waiting in partitions before the largest are written out
DOWNLOAD_CHUNK = 2**20
BULK_WORKERS = 4                  # files downloaded at once (and most converter processes)
CHUNK_CHARS = 2**18               # a CSV file is read this many characters at a time (to the end of a record)
MAX_CHUNK_CHARS = 64 * 2**20      # ... or more while no record ends: a longer one is handed on cut
MAX_FILE_BYTES = 64 * 2**30       # a download larger than this is refused (the largest real file is a few GB)
CSV_SUFFIX = ".csv"
# Fields the API sends as strings: kept as text (a leaid keeps its leading zero; a name that looks like a number
# stays a name). Every other field of an endpoint is a number, a code or null.
TEXT_FIELDS = frozenset({"leaid", "lea_name", "city_location", "city_mailing", "county_name", "crdc_id",
                         "ncessch"})
_MISSING = frozenset({"", "."})
_INT = re.compile(r"-?[0-9]+").fullmatch
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?").fullmatch
_YEAR_IN_NAME = re.compile(r"(?<![0-9])(19[89][0-9]|20[0-9][0-9])(?![0-9])")
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._ ()+-]*")
_EMPTY_PAGE = b'{"count":0,"next":null,"previous":null,"results":[]}'


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/district-benchmarks, else ~/.cache/district-benchmarks."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "district-benchmarks"


# ------------------------------------------------------------------------------------------------ the listing

@dataclass(frozen=True)
class BulkFile:
    """One CSV file of an endpoint's listing."""

    file_dir: str
    file_name: str
    size: int | None              # bytes, as listed (None when the listing does not say)
    year: int | None              # the one survey year its name names; None: a file of several or all years

    @property
    def label(self) -> str:
        return f"{self.file_dir}/{self.file_name}"


def file_year(name: str) -> int | None:
    """The survey year a file name names ('districts_edfacts_grad_rates_2019.csv' -> 2019); None when it names
    none or several ('..._1986_2024.csv')."""
    years = set(_YEAR_IN_NAME.findall(name))
    return int(years.pop()) if len(years) == 1 else None


def parse_listing(results: list, endpoint_id: int) -> tuple[list[BulkFile], list[str]]:
    """The CSV files of an /api-downloads/ listing -> (files, names skipped as unsafe). Codebooks and other
    non-CSV entries are left out; so is a record of another endpoint."""
    files: list[BulkFile] = []
    unsafe: list[str] = []
    for r in results:
        if not isinstance(r, dict):
            continue
        if r.get("endpoint_id") is not None and str(r.get("endpoint_id")) != str(endpoint_id):
            continue
        name, directory = r.get("file_name"), r.get("file_dir")
        if not isinstance(name, str) or not name.lower().endswith(CSV_SUFFIX):
            continue
        parts = [p for p in str(directory or "").split("/") if p]
        if not (_SAFE_PART.fullmatch(name) and all(_SAFE_PART.fullmatch(p) and p not in (".", "..")
                                                   for p in parts)) or ".." in name:
            unsafe.append(f"{directory}/{name}"[:120])
            continue
        size = r.get("file_size")
        size = int(size) if isinstance(size, (int, str)) and str(size).isdigit() else None
        files.append(BulkFile("/".join(parts), name, size, file_year(name)))
    return files, unsafe


def assign_years(files: list[BulkFile], years: set[int]) -> tuple[list[tuple[BulkFile, set[int]]], set[int]]:
    """Which file each wanted year is read from -> ([(file, its years)], years no file has). A year is read from
    the files whose names name it, else from the files that name no single year (all years in one)."""
    per_year = {f.year for f in files if f.year is not None}
    general = [f for f in files if f.year is None]
    plan = [(f, {f.year}) for f in files if f.year is not None and f.year in years]
    rest = years - per_year
    if general and rest:
        plan += [(f, set(rest)) for f in general]
        rest = set()
    return plan, rest


# ------------------------------------------------------------------------------------------------ downloading

@dataclass
class DownloadResult:
    path: Path
    status: str                   # downloaded | not modified | resumed
    bytes_received: int = 0


class Downloader:
    """Downloads files into the cache directory through the ApiClient's session (see the module's docstring)."""

    def __init__(self, api: ApiClient, cache_dir: Path):
        self.api = api
        self.cache_dir = Path(cache_dir)
        base = urlsplit(api.base_url)
        self.site = re.sub(r"/api/v[0-9]+/?$", "", api.base_url.rstrip("/"))
        self._origin = (base.scheme, base.netloc)
        self._store = self.cache_dir / "csv" / re.sub(r"[^A-Za-z0-9.-]+", "_", base.netloc)
        self.stop = threading.Event()           # set by close(): a download in progress gives up

    def url(self, f: BulkFile) -> str:
        return f"{self.site}/csv/{quote(f.file_dir)}/{quote(f.file_name)}"

    def local_path(self, f: BulkFile) -> Path:
        return self._store.joinpath(*f.file_dir.split("/"), f.file_name)

    def fetch(self, f: BulkFile) -> DownloadResult:
        """The file, from the cache when the server says it has not changed, else downloaded (resumed when a
        partial copy and the server allow it). ApiError when it cannot be had."""
        local = self.local_path(f)
        local.parent.mkdir(parents=True, exist_ok=True)
        with _file_lock(local.with_name(local.name + ".lock")):     # another run sharing the cache waits
            return self._fetch(f, self.url(f), local)

    def _fetch(self, f: BulkFile, url: str, local: Path) -> DownloadResult:
        settings = self.api.settings
        meta_path, part = local.with_name(local.name + ".meta.json"), local.with_name(local.name + ".part")
        part_meta = local.with_name(local.name + ".part.json")
        meta = _read_json(meta_path)
        # The cached copy is whole (its recorded size) and the listing still gives the size it gave then (in
        # whatever unit it uses); the server then says whether it changed.
        cached = (local.is_file() and meta.get("url") == url and meta.get("size") == local.stat().st_size
                  and (f.size is None or f.size == meta.get("listed_size")))
        attempt = 0
        received = 0
        resumed = False
        while True:
            headers = {"Accept": "text/csv, */*", "Accept-Encoding": "identity"}
            info = _read_json(part_meta) if part.is_file() else {}
            offset = part.stat().st_size if info.get("url") == url else 0
            if cached:
                if meta.get("etag"):
                    headers["If-None-Match"] = meta["etag"]
                if meta.get("last_modified"):
                    headers["If-Modified-Since"] = meta["last_modified"]
            elif offset and info.get("ranges"):
                headers["Range"] = f"bytes={offset}-"
                if info.get("etag") or info.get("last_modified"):
                    headers["If-Range"] = info.get("etag") or info["last_modified"]
            resp = self._get(url, headers)
            try:
                status = resp.status_code
                if status == 304 and cached:
                    return DownloadResult(local, "not modified")
                cached = False                          # changed (or the cache is unusable): fetched anew
                if status == 206 and "Range" in headers:
                    start, total = _content_range(resp.headers.get("Content-Range", ""))
                    if start != offset:
                        raise ApiError(f"{url}: asked for bytes from {offset:,}, the server sent {start}")
                    mode, resumed = "ab", True
                elif status == 200:
                    offset, mode = 0, "wb"
                    length = resp.headers.get("Content-Length", "")
                    total = int(length) if length.isdigit() else None
                    info = {"url": url, "etag": resp.headers.get("ETag"),
                            "last_modified": resp.headers.get("Last-Modified"),
                            "ranges": resp.headers.get("Accept-Ranges", "").strip().lower() == "bytes"}
                    _write_json(part_meta, info)
                elif status == 416 and "Range" in headers:
                    part.unlink(missing_ok=True)             # the partial copy is of no use: start again
                    attempt += 1
                    if attempt > settings.retries:
                        raise ApiError(f"HTTP 416 from {url} after {attempt} attempts", f"HTTP 416 ({attempt} tries)")
                    continue
                else:
                    raise ApiError(f"HTTP {status} from {url}"
                                   + (f" after {settings.retries} retries" if status >= 500 else ""),
                                   f"HTTP {status}" + (f" after {settings.retries + 1} tries" if status >= 500 else ""))
                if total is not None and total > MAX_FILE_BYTES:
                    raise ApiError(f"{url} is {total:,} bytes, more than the {MAX_FILE_BYTES:,} accepted")
                try:
                    received += self._stream(resp, part, mode, url)
                    size = part.stat().st_size
                    if total is not None and size != total:
                        raise TransientError(f"{url} ended at {size:,} of {total:,} bytes", "download cut off")
                except TransientError as exc:
                    attempt += 1
                    if attempt > settings.retries:
                        raise ApiError(f"{exc} (gave up after {attempt} attempts)", f"{exc.brief} ({attempt} tries)",
                                       f"{exc.detail} (gave up after {attempt} attempts)") from None
                    if self.stop.wait(settings.sleep_before(attempt)):
                        raise ApiError(f"download of {url} stopped: the run is ending", "stopped") from None
                    continue
            finally:
                resp.close()
            os.replace(part, local)
            _write_json(meta_path, {"url": url, "size": local.stat().st_size, "listed_size": f.size,
                                    "etag": info.get("etag"), "last_modified": info.get("last_modified")})
            part_meta.unlink(missing_ok=True)
            return DownloadResult(local, "resumed" if resumed else "downloaded", received)

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        """GET url, streamed, with the thread's session of the ApiClient (its Retry, proxies, CA bundle and
        credentials); redirects followed only within the API's origin, as loader/api.py does."""
        session = self.api.session
        timeout = (self.api.settings.connect_timeout, self.api.settings.read_timeout)
        for _ in range(MAX_REDIRECTS + 1):
            try:
                resp = session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise self.api.failure(exc, url) from None
            if not resp.is_redirect:
                return resp
            target = urljoin(url, resp.headers.get("location", ""))
            resp.close()
            t = urlsplit(target)
            if (t.scheme, t.netloc) != self._origin:
                raise ApiError(f"cannot fetch {url}: redirected to another origin ({t.scheme}://{t.hostname}); "
                               f"not followed")
            url = target
        raise ApiError(f"cannot fetch {url}: more than {MAX_REDIRECTS} redirects")

    def _stream(self, resp: requests.Response, part: Path, mode: str, url: str) -> int:
        """The body appended to (or written over) `part`, a chunk at a time. TransientError when it breaks off."""
        n = 0
        with open(part, mode) as out:
            while True:
                if self.stop.is_set():
                    raise ApiError(f"download of {url} stopped: the run is ending")
                try:
                    chunk = resp.raw.read1(DOWNLOAD_CHUNK, decode_content=True)   # what has arrived: kept
                except Exception as exc:  # noqa: BLE001 - urllib3's read errors (timeout, protocol), OSError
                    raise TransientError(f"connection broke while downloading {url}: {_first_line(exc)}",
                                         "download cut off") from None
                if not chunk:
                    return n
                out.write(chunk)
                n += len(chunk)
                if out.tell() > MAX_FILE_BYTES:
                    raise ApiError(f"{url} goes on past {MAX_FILE_BYTES:,} bytes; not read")


def _content_range(value: str) -> tuple[int | None, int | None]:
    """'bytes 100-199/1000' -> (100, 1000); the total is None when '*'."""
    m = re.fullmatch(r"\s*bytes\s+([0-9]+)-[0-9]+/([0-9]+|\*)\s*", value or "")
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2) != "*" else None)


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:                          # not POSIX: runs sharing one cache are not guarded
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200]


# ------------------------------------------------------------------------------------------------ converting

class _Partition:
    __slots__ = ("directory", "records", "size", "pages", "count")

    def __init__(self, directory: Path):
        self.directory = directory
        self.records: list[bytes] = []
        self.size = 0
        self.pages = 0
        self.count = 0


class PageWriter:
    """Pages of one endpoint's partitions (year x state) in rawstore's layout under `root`. A partition writes
    a page once it holds more than page_records records; when all partitions together hold more than
    buffer_bytes, the largest write theirs early. A partition always keeps its last record back, so that the
    page written by finish() is its last (with `next` null and `count` the partition's total)."""

    def __init__(self, root: Path, endpoint: Endpoint, page_records: int = PAGE_RECORDS,
                 buffer_bytes: int = BUFFER_BYTES, compresslevel: int = 1):
        self.root = Path(root)
        self.endpoint = endpoint
        self.page_records = max(1, page_records)
        self.buffer_bytes = buffer_bytes
        self.compresslevel = compresslevel
        self.parts: dict[tuple[int, int], _Partition] = {}
        self.buffered = 0
        self.pages_written = 0

    def add(self, year: int, fips: int, record: bytes) -> None:
        p = self.parts.get((year, fips))
        if p is None:
            p = self.parts[(year, fips)] = _Partition(
                chain_dir(self.root, self.endpoint.url_path(year), self.endpoint.params(str(fips))))
            p.directory.mkdir(parents=True, exist_ok=True)
        p.records.append(record)
        p.count += 1
        n = len(record) + 40                     # the bytes object's own overhead, roughly
        p.size += n
        self.buffered += n
        if len(p.records) > self.page_records:
            self._write(p, last=False)
        elif self.buffered > self.buffer_bytes:
            for q in sorted(self.parts.values(), key=lambda q: q.size, reverse=True):
                if len(q.records) > 1:
                    self._write(q, last=False)
                if self.buffered <= self.buffer_bytes // 2:
                    break

    def finish(self) -> dict[tuple[int, int], int]:
        """Write every partition's last page. -> (year, fips): records."""
        for p in self.parts.values():
            self._write(p, last=True)
        return {k: p.count for k, p in self.parts.items()}

    def _write(self, p: _Partition, last: bool) -> None:
        records = p.records if last else p.records[:-1]
        keep = [] if last else p.records[-1:]
        p.pages += 1
        nxt = b"null" if last else b'"' + page_file(Path(), p.pages + 1).name.encode() + b'"'
        count = str(p.count).encode() if last else b"null"
        body = b'{"count":' + count + b',"next":' + nxt + b',"results":[' + b",".join(records) + b"]}"
        with open(page_file(p.directory, p.pages), "wb") as fh, \
                gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=self.compresslevel) as gz:
            gz.write(body)
        self.pages_written += 1
        freed = p.size - sum(len(r) + 40 for r in keep)
        self.buffered -= freed
        p.size -= freed
        p.records = keep


@dataclass
class ConvertStats:
    rows: int = 0                 # lines read (data rows, about)
    kept: int = 0                 # rows written as records
    malformed: int = 0            # candidate rows with another number of columns than the header, or no year/fips

    @property
    def dropped(self) -> int:
        """Rows of other years, other states or another breakdown (not the route's)."""
        return self.rows - self.kept - self.malformed

    def add(self, other: ConvertStats) -> None:
        for k in ("rows", "kept", "malformed"):
            setattr(self, k, getattr(self, k) + getattr(other, k))


def csv_value(text: str):
    """A CSV cell as the API's JSON would have it: "" and "." are null, integers and decimals are numbers,
    anything else stays text (the cleaning judges it)."""
    if text.isdigit() and text.isascii():          # most cells: a plain count
        return int(text)
    if text in _MISSING:
        return None
    s = text.strip()
    if _INT(s):
        return int(s)
    if _FLOAT(s):
        return float(s)
    return text if s else None


def _text_value(text: str):
    return None if text in _MISSING else text


def _code(text: str) -> int | None:
    """A year, fips or breakdown code ('2019', '6', '06', '99.0') -> int, else None."""
    s = text.strip()
    if _INT(s):
        return int(s)
    if _FLOAT(s):
        v = float(s)
        return int(v) if v.is_integer() else None
    return None


class _Codes(dict):
    """raw cell -> _code(cell), remembered (a column of codes has few distinct spellings; bounded all the same)."""

    def __missing__(self, raw: str) -> int | None:
        code = _code(raw)
        if len(self) < 10_000:
            self[raw] = code
        return code


def _record_end(text: str) -> int:
    """The index just past the last newline of `text` that ends a record (one outside quotes: an even number
    of quote characters before it), or -1."""
    end = text.rfind("\n")
    if end < 0 or '"' not in text:
        return end + 1 if end >= 0 else -1
    quotes = text.count('"', 0, end)
    while quotes % 2:
        prev = text.rfind("\n", 0, end)
        if prev < 0:
            return -1
        quotes -= text.count('"', prev, end)
        end = prev
    return end + 1


def _chunks(fh) -> Iterator[str]:
    """The rest of the text file `fh` in pieces of about CHUNK_CHARS characters, each ending at the end of a
    record (a quoted field may hold a newline). A record longer than MAX_CHUNK_CHARS is passed on cut, for the
    csv module to judge: memory stays bounded whatever the file."""
    carry = ""
    while True:
        text = fh.read(CHUNK_CHARS)
        if not text:
            if carry:
                yield carry
            return
        buf = carry + text if carry else text
        text = carry = ""
        cut = _record_end(buf)
        if cut < 0:
            if len(buf) < MAX_CHUNK_CHARS:
                carry = buf
                continue
            cut = len(buf)
        chunk, carry = (buf, "") if cut == len(buf) else (buf[:cut], buf[cut:])
        buf = ""                            # only the chunk and the carry are held while the chunk is read
        yield chunk


class _Accepts(dict):
    """raw cell -> whether it is one of `raws` or its code one of `codes` (remembered; bounded)."""

    def __init__(self, codes: set[int], raws: frozenset[str] = frozenset()):
        super().__init__()
        self.codes, self.raws = codes, raws

    def __missing__(self, raw: str) -> bool:
        ok = raw in self.raws or _code(raw) in self.codes
        if len(self) < 10_000:
            self[raw] = ok
        return ok


def convert_csv(path: Path, endpoint: Endpoint, years: set[int], states: set[int] | None,
                writer: PageWriter, stopped: Callable[[], bool] | None = None) -> ConvertStats:
    """One streaming pass over a CSV file: the rows the endpoint's route would return for `years` and `states`
    (None: every state) become records in `writer`'s pages. ApiError when the file cannot be read as the
    endpoint's CSV.

    Most of a file is rows that are dropped (other years and states, subgroups: 25 of 26 rows of a CRDC file),
    so those are dropped before they are converted. The file is read in chunks that end at a record's end. In a
    chunk without quote characters each line is split at commas only as far as the first test reads (a
    breakdown column, else the year), then as far as the last (breakdown columns, year, state), and only a
    line that passes them all is split as far as the fields the route has. A chunk with quotes goes through the
    csv module. Either way a kept row is judged by the same full check."""
    stats = ConvertStats()
    encode = msgspec.json.Encoder().encode
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader(fh), None)
            if not header:
                raise ApiError(f"{path.name} is empty")
            cols = {h.strip().lower(): i for i, h in enumerate(header)}
            width = len(header)
            if "year" not in cols or "fips" not in cols:
                raise ApiError(f"{path.name} has no {'year' if 'year' not in cols else 'fips'} column")
            iy, ifips = cols["year"], cols["fips"]
            # The route's rows: every breakdown column and filter it has at 99 (or the filter's value).
            wanted = {c: "99" for c in endpoint.breakdown}
            wanted.update(endpoint.filters)
            checks = [(cols[c], _code(v), v) for c, v in wanted.items() if c in cols]
            fields = [(name, cols[name], _text_value if name in TEXT_FIELDS else csv_value)
                      for name in endpoint.fields if name in cols and name not in ("year", "fips")]
            # The cheap first test of a quote-free line: (column, accepts) in the order most rows fail them.
            tests = [(i, _Accepts({code} if code is not None else set(), frozenset({raw}))) for i, code, raw in checks]
            tests.append((iy, _Accepts(set(years))))
            if states is not None:
                tests.append((ifips, _Accepts(set(states))))
            last = max(i for i, _ in tests)
            first, first_accepts = tests[0]
            need = max([iy, ifips] + [i for i, _c, _r in checks] + [i for _n, i, _c in fields])
            codes = _Codes()
            add = writer.add

            def take(row: list[str]) -> None:
                """Judge and convert a row (all its cells)."""
                if len(row) != width:
                    if not any(row):
                        stats.rows -= 1              # a blank line
                    else:
                        stats.malformed += 1
                    return
                year = codes[row[iy]]
                fips = codes[row[ifips]]
                if year is None or fips is None or fips <= 0:
                    stats.malformed += 1
                    return
                if year not in years or (states is not None and fips not in states):
                    return
                for i, code, raw in checks:
                    if row[i] != raw and codes[row[i]] != code:
                        return
                keep(row, year, fips)

            def passed(row: list[str]) -> None:
                """Convert a row of the right width that passed `tests` (cells at least up to column `need`)."""
                fips = codes[row[ifips]]
                if fips is None or fips <= 0:
                    stats.malformed += 1
                    return
                keep(row, codes[row[iy]], fips)

            def keep(row: list[str], year: int, fips: int) -> None:
                record = {name: conv(row[i]) for name, i, conv in fields}
                record["year"] = year
                record["fips"] = fips
                add(year, fips, encode(record))
                stats.kept += 1

            for chunk in _chunks(fh):
                if stopped is not None and stopped():
                    raise ApiError(f"conversion of {path.name} stopped: the run is ending")
                if '"' in chunk or ("\r" in chunk and chunk.count("\r") != chunk.count("\r\n")):   # the csv module
                    for row in csv.reader(io.StringIO(chunk, newline="")):
                        stats.rows += 1
                        take(row)
                    continue
                lines = chunk.split("\n")
                if not lines[-1]:
                    lines.pop()
                stats.rows += len(lines)
                # The first test, which most lines fail, without a Python step per line.
                try:
                    lines = list(compress(lines, map(first_accepts.__getitem__, map(
                        itemgetter(first), map(str.split, lines, repeat(","), repeat(first + 1))))))
                except IndexError:                  # a line too short for it: this chunk line by line
                    lines = [line for line in lines
                             if len(cells := line.split(",", first + 1)) <= first or first_accepts[cells[first]]]
                for line in lines:
                    cells = line.split(",", last + 1)
                    if len(cells) <= last:
                        take(line.rstrip("\r").split(","))     # too short: judged (and counted) in full
                        continue
                    for i, accepts in tests:
                        if not accepts[cells[i]]:
                            break
                    else:
                        if line.endswith("\r"):
                            line = line[:-1]
                        if line.count(",") == width - 1:
                            passed(line.split(",", need + 1))
                        else:
                            take(line.split(","))
    except csv.Error as exc:
        raise ApiError(f"{path.name}: not readable as CSV near row {stats.rows + 1:,}: {exc}") from None
    except OSError as exc:
        raise ApiError(f"cannot read {path}: {exc}") from None
    return stats


def convert_files(files: list[tuple[str, list[int]]], endpoint_key: str, states: list[int] | None,
                  staging: str, page_records: int, buffer_bytes: int, compresslevel: int,
                  stop_file: str) -> tuple[dict[tuple[int, int], int], ConvertStats]:
    """Convert an endpoint's files ((path, years) each) into pages under `staging` (run in a converter process:
    BulkClient). Stops when `stop_file` exists. -> ((year, fips): records, stats)."""
    endpoint = next(ep for src in SOURCES.values() for ep in src.endpoints() if ep.key == endpoint_key)
    writer = PageWriter(Path(staging), endpoint, page_records, buffer_bytes, compresslevel=compresslevel)
    stats = ConvertStats()
    for path, years in files:
        stats.add(convert_csv(Path(path), endpoint, set(years), None if states is None else set(states), writer,
                              lambda: os.path.exists(stop_file)))
    return writer.finish(), stats


# ------------------------------------------------------------------------------------------------ the client

@dataclass
class _Unit:
    """Files converted together into one endpoint's pages: a file of one year, or the endpoint's files of
    several years (whose rows of a year and state may be spread over them)."""

    endpoint: Endpoint
    files: list[tuple[BulkFile, set[int]]]
    years: set[int]
    future: Future | None = None
    order: int = 0                        # its place among the units started (BulkClient._start)
    error: ApiError | None = None         # why its slices fail (brief and detail kept for the messages)
    written: set[tuple[int, int]] = field(default_factory=set)     # (year, fips) partitions with pages
    stats: ConvertStats = field(default_factory=ConvertStats)
    downloads: list[DownloadResult] = field(default_factory=list)


@dataclass
class _EndpointPlan:
    endpoint: Endpoint
    units: list[_Unit] = field(default_factory=list)
    csv_years: set[int] = field(default_factory=set)    # years read from the files (the others: the API)

    def unit(self, year: int) -> _Unit:
        return next(u for u in self.units if year in u.years)


class BulkClient:
    """The page source of `--via csv` (see the module's docstring): pages of the endpoints with CSV files
    are converted from those files, the others come from the API (saved too with --save-raw)."""

    asks_fields = True            # the API's pages are asked with fields= (loader/ingest.py); the files' not

    def __init__(self, api: ApiClient, cache_dir: Path | None = None, save_raw: Path | None = None,
                 page_records: int | None = None, buffer_bytes: int | None = None):
        self.api = api
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.fallback = SavingClient(api, save_raw) if save_raw else api
        self.page_records = page_records or PAGE_RECORDS        # read at call time: tests make them small
        self.buffer_bytes = buffer_bytes or BUFFER_BYTES
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            if save_raw:
                Path(save_raw).mkdir(parents=True, exist_ok=True)
                self.root, self._own_root = Path(save_raw), False
            else:
                self.root, self._own_root = Path(tempfile.mkdtemp(prefix="work-", dir=self.cache_dir)), True
        except OSError as exc:
            raise UserError(f"cannot use {self.cache_dir}: {exc.strerror or exc}", option="--cache-dir") from None
        self.downloader = Downloader(api, self.cache_dir)
        self._pages = DirClient(self.root)                  # the converted pages
        self.plans: dict[str, _EndpointPlan] = {}          # endpoint key -> its files (only endpoints with some)
        self.from_api: list[str] = []                      # endpoint keys (or "key year") fetched from the API
        self.notes: list[str] = []
        self._routes: dict[str, tuple[Endpoint, int]] = {}  # url path -> (endpoint, year)
        self.states: set[int] | None = None                # fips to keep (None: all)
        self._write_lock = threading.Lock()
        # One thread per unit being downloaded or converted (a download, then the wait for its conversion).
        self._pool = ThreadPoolExecutor(4 * BULK_WORKERS, thread_name_prefix="bulk")
        self._downloading = threading.BoundedSemaphore(BULK_WORKERS)
        self._turn = threading.Condition()                 # whose conversion is queued next (_convert_unit)
        self._units_started = self._next_turn = 0
        self._procs: ProcessPoolExecutor | None = None
        self._stop_file = self.cache_dir / f".stop-{os.getpid()}-{id(self):x}"

    @property
    def base_url(self) -> str:
        """Where pages come from, for messages and the refresh log."""
        via = "CSV downloads"
        if self.from_api:
            via += f"; from the API: {', '.join(self.from_api)}"
        return f"{self.api.base_url} ({via})"

    # ---------------------------------------------------------------------------- planning
    def catalogue(self) -> list[dict]:
        return self.fallback.catalogue()

    def plan_downloads(self, rows: list[dict], sources: list[str], years: list[int],
                       fips_list: list[str] | None) -> list[str]:
        """Decide which files each endpoint of `sources` is read from (rows: the /api-endpoints/ catalogue).
        -> notes about what is fetched from the API instead."""
        self.states = {int(f) for f in fips_list} if fips_list is not None else None
        ids: dict[str, int] = {}
        for row in rows:
            route = str(row.get("endpoint_url") or "").split("/api/v1/", 1)[-1].lstrip("/")
            if isinstance(row.get("endpoint_id"), int):
                ids[route] = row["endpoint_id"]
        available = {**fallback_years(), **catalogue_years(rows)}
        endpoints = list(dict.fromkeys(ep for name in sources for ep in SOURCES[name].endpoints()))
        notes: list[str] = []
        if not ids:
            self.from_api.append("every endpoint")
            return ["no endpoint catalogue to find the endpoints' CSV files by; everything is fetched from the API"]
        listings: dict[Endpoint, Future] = {}
        for ep in endpoints:
            wanted = set(years) & available.get(ep.key, set())
            if not wanted:
                continue
            if ep.catalogue_route not in ids:
                self.from_api.append(ep.key)
                notes.append(f"{ep.key}: not in the endpoint catalogue, so no endpoint_id to list its CSV files "
                             f"by; fetched from the API")
                continue
            listings[ep] = self._pool.submit(self._listing, ids[ep.catalogue_route])   # all asked at once
        for ep, listing in listings.items():
            wanted = set(years) & available.get(ep.key, set())
            try:
                results = listing.result()
            except ApiError as exc:
                self.from_api.append(ep.key)
                notes.append(f"{ep.key}: its list of CSV files is unavailable ({exc}); fetched from the API")
                continue
            files, unsafe = parse_listing(results, ids[ep.catalogue_route])
            if unsafe:
                notes.append(f"{ep.key}: file names that are not plain names were ignored: {', '.join(unsafe)}")
            assigned, missing = assign_years(files, wanted)
            if not assigned:
                self.from_api.append(ep.key)
                notes.append(f"{ep.key}: no CSV file in the API's downloads; fetched from the API")
                continue
            if missing:
                self.from_api.append(f"{ep.key} {format_years(missing)}")
                notes.append(f"{ep.key}: no CSV file for {format_years(missing)}; those years fetched from the API")
            plan = self.plans[ep.key] = _EndpointPlan(ep, csv_years=wanted - missing)
            several = [(f, ys) for f, ys in assigned if f.year is None]
            if several:
                plan.units.append(_Unit(ep, several, set().union(*(ys for _, ys in several))))
            plan.units += [_Unit(ep, [(f, ys)], ys) for f, ys in assigned if f.year is not None]
            for y in plan.csv_years:
                self._routes[ep.url_path(y)] = (ep, y)
        return notes

    def _listing(self, endpoint_id: int) -> list:
        """The records of an endpoint's /api-downloads/ listing (all pages)."""
        results: list = []
        for page in self.api.pages("api-downloads/", [("endpoint_id", str(endpoint_id))]):
            results.extend(page.results)
        return results

    def prefetch(self, slices: list[tuple[Source, int, bool]]) -> None:
        """Start downloading and converting, in the background, the files that the slices to fetch (source,
        year, whether the CRDC denominator falls back) will read, in their order; at most BULK_WORKERS at once.
        A slice whose file is not ready waits for it (pages())."""
        for src, year, fallback in slices:
            for ep in (src.endpoint,) if fallback else src.endpoints():
                plan = self.plans.get(ep.key)
                if plan is not None and year in plan.csv_years:
                    self._start(plan.unit(year))

    def _start(self, unit: _Unit) -> Future:
        with self._turn:                  # turns are given in the order units are started
            if unit.future is None:
                unit.order = self._units_started
                self._units_started += 1
                unit.future = self._pool.submit(self._convert_unit, unit)
            return unit.future

    # ---------------------------------------------------------------------------- pages
    def pages(self, path: str, params: list[tuple[str, str]] | None = None,
              fields: tuple[str, ...] | None = None, *args, **kwargs) -> Iterator[Page]:
        route = self._routes.get(path)
        if route is None:
            yield from self.fallback.pages(path, params, fields, *args, **kwargs)
            return
        ep, year = route
        unit = self._ready(self.plans[ep.key].unit(year))
        fips = int(dict(params or []).get("fips", "0"))
        directory = chain_dir(self.root, path, params)
        if (year, fips) not in unit.written:
            # No row of this state in the file: the API's answer would be an empty page (saved as one).
            if not self._own_root:
                self._save_empty(directory)
            yield Page(str(directory), 0, None, [], _EMPTY_PAGE)
            return
        yield from self._pages.pages(path, params, fields)

    def _save_empty(self, directory: Path) -> None:
        with self._write_lock:
            tmp = directory.with_name(f".{directory.name}.partial-{os.getpid()}-{threading.get_ident()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            with open(page_file(tmp, 1), "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(_EMPTY_PAGE)
            shutil.rmtree(directory, ignore_errors=True)
            tmp.rename(directory)

    def _ready(self, unit: _Unit) -> _Unit:
        """The unit once its files are downloaded and converted (started now if prefetch() did not).
        ApiError, for every slice that reads it, when that failed."""
        self._start(unit).result()
        if unit.error:
            raise ApiError(str(unit.error), unit.error.brief, unit.error.detail)
        return unit

    def _convert_unit(self, unit: _Unit) -> None:
        """Download the unit's files, then convert them into pages under the root in a converter process (a
        background task: failures are kept in unit.error)."""
        ep = unit.endpoint
        staging = self.root / f".bulk-{ep.key}-{min(unit.years)}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            files, failed = [], None
            try:
                with self._downloading:             # at most BULK_WORKERS downloads at once
                    for f, years in unit.files:
                        got = self.downloader.fetch(f)
                        unit.downloads.append(got)
                        files.append((str(got.path), sorted(years)))
            except Exception as exc:  # noqa: BLE001 - raised below, once this unit's turn has passed
                failed = exc
            # Conversions are queued in the order the units were started (the order the slices need them),
            # whichever download ends first.
            with self._turn:
                self._turn.wait_for(lambda: self._next_turn == unit.order or self.downloader.stop.is_set())
                try:
                    if failed is None and self.downloader.stop.is_set():
                        failed = ApiError(f"{ep.key}: the run is ending; its files are not converted")
                    if failed is None:
                        converted = self._converters().submit(
                            convert_files, files, ep.key, None if self.states is None else sorted(self.states),
                            str(staging), self.page_records, self.buffer_bytes, 6 if not self._own_root else 0,
                            str(self._stop_file))
                except Exception as exc:  # noqa: BLE001 - no converter process (it could not start, ...)
                    failed = exc
                finally:                            # the next unit's turn, whatever happened to this one
                    self._next_turn += 1
                    self._turn.notify_all()
            if failed is not None:
                raise failed
            counts, stats = converted.result()
            unit.stats.add(stats)
            for (year, fips) in counts:
                src = chain_dir(staging, ep.url_path(year), ep.params(str(fips)))
                dst = chain_dir(self.root, ep.url_path(year), ep.params(str(fips)))
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(dst, ignore_errors=True)
                src.rename(dst)
            unit.written = set(counts)
        except ApiError as exc:
            unit.error = exc
        except OSError as exc:                   # the cache or the work directory: disk full, ...
            unit.error = ApiError(f"{ep.key}: cannot convert its CSV files: {exc}")
        except Exception as exc:  # noqa: BLE001 - reported to every slice of the unit, as an ApiError is
            unit.error = ApiError(f"{ep.key}: cannot convert its CSV files: {type(exc).__name__}: {exc}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def abort(self) -> None:
        """Stop from any thread (ApiClient.abort): downloads in progress give up, slices waiting for their turn to
        convert stop waiting, and a conversion in progress gives up at its next chunk."""
        self.downloader.stop.set()
        with self._turn:
            self._turn.notify_all()
        with contextlib.suppress(OSError):
            self._stop_file.touch()
        self.api.abort()

    def _converters(self) -> ProcessPoolExecutor:
        """The converter processes, started on first use: converting is CPU work in Python, which threads of
        one process cannot spread over cores, and the loader's own process is busy cleaning and landing."""
        with self._write_lock:
            if self._procs is None:
                self._procs = ProcessPoolExecutor(min(BULK_WORKERS, os.cpu_count() or 1),
                                                  mp_context=multiprocessing.get_context("spawn"))
            return self._procs

    def close(self) -> None:
        self.downloader.stop.set()
        with self._turn:
            self._turn.notify_all()
        with contextlib.suppress(OSError):
            self._stop_file.touch()              # a conversion in progress gives up at its next chunk
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._procs is not None:
            self._procs.shutdown(wait=True, cancel_futures=True)
        self._stop_file.unlink(missing_ok=True)
        self.api.close()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

