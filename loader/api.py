"""HTTP client of the Urban Institute Education Data API.

- A requests Session per thread (keep-alive connections). Its HTTPAdapter carries a urllib3 Retry: bounded
  retries with exponential backoff and jitter on connection errors, read timeouts before the headers, HTTP
  429/500/502/503/504, honouring Retry-After (capped at `max_retry_after`). Proxies and the CA bundle come from
  the environment, as requests reads them (HTTPS_PROXY, NO_PROXY, ..., REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE).
- Each request has connect and read timeouts and a wall-clock deadline: the body is streamed with read1() (one
  socket read at a time, so a response that trickles a byte at a time is noticed) and abandoned once the
  deadline passes.
- The few failures the Retry cannot see are retried by a small loop of our own, with the same backoff: a body
  that is past the deadline or breaks off, is not JSON, is `[{"API ERROR": ...}]` (even with HTTP 200), or
  is not shaped like a page.
- Only the fields the cleaning reads are asked for: given them (sources.Endpoint.fields), a request carries
  `fields=a,b,c`, which the API answers with just those fields (send_fields=False leaves it out, for a server
  that rejects it: loader/ingest.py decides). Pages are decoded by msgspec, each record to a dict of just those
  fields, so a server that ignored `fields=` costs bytes but no Python objects (the CCD directory has 69). A
  page that does not fit that shape (a record that is not an object, an error body) is decoded in full and
  judged as before.
- Pages are followed through `next` until it is null, or until the rows received reach the page's `count`
  (a chain that goes on past it is a bad response); page numbers are never computed. `next` keeps the first
  request's query string (a parameter it lost is put back) and is sent to the configured API host.
- The client trusts the server no further than it must: a body may inflate to at most `max_body` bytes; a
  redirect is followed only within the configured origin (scheme, host and port); a body nested too deeply to
  decode is a bad page like any other; credentials in the API URL are sent as HTTP basic auth and never appear in
  messages, logs or `base_url`.
- Every error carries its cause in a few words (`brief`: "connection refused", "HTTP 503 after 6 tries") besides
  its full message (URL, exception chain: `detail`). A failure to connect at all (DNS, refused, TLS, proxy, no
  answer to connect) is CannotConnect. Until the host has answered once (`reached`), such failures get only
  FIRST_CONTACT_RETRIES quick retries, so a run against an address it cannot reach stops within seconds
  (loader/ingest.py); once it has answered, they get the full retries like any other.
- abort() stops the client from any thread: waits between retries end, no new request starts, and the sockets
  of the requests in flight are shut, so a thread blocked on a slow response returns at once (with Stopped).
"""
from __future__ import annotations

import json
import os
import random
import re
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, TypedDict
from urllib.parse import parse_qsl, unquote, urlencode, urljoin, urlsplit, urlunsplit

import msgspec
import requests
import urllib3.exceptions as u3
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from .errors import BenchmarksError

DEFAULT_API_URL = "https://educationdata.urban.org/api/v1"
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_REDIRECTS = 3
USER_AGENT = "district-benchmarks-loader"
FIRST_CONTACT_RETRIES = 2        # quick retries of a failure to connect before the host has ever answered


class _Described(BenchmarksError):
    """An error with its cause in a few words (`brief`) and its full story (`detail`); str() is the message."""

    def __init__(self, message: str, brief: str | None = None, detail: str | None = None):
        super().__init__(message)
        self.brief = brief or message
        self.detail = detail or message


class ApiError(_Described):
    """A request failed for good (retries exhausted or not retryable). The message is one line."""


class TransientError(_Described):
    """A failure our own retry loop handles (deadline, broken body, bad JSON, API ERROR)."""


class CannotConnect(ApiError):
    """No connection to the API's host could be made at all: DNS, refused, TLS, proxy, or no answer to connect.
    `host` as configured, `proxy` the proxy in use (None without one; credentials removed)."""

    def __init__(self, message: str, brief: str, detail: str, host: str, proxy: str | None):
        super().__init__(message, brief, detail)
        self.host, self.proxy = host, proxy

    def advice(self, api_url: str) -> str:
        """One line for a person: which host, why, and what to check."""
        via = f" through the proxy {self.proxy}" if self.proxy else ""
        cause = self.brief.removeprefix("proxy: ")
        return (f"cannot reach the API at {self.host}{via}: {cause}. Check the network, the proxy variables "
                f"(HTTPS_PROXY, HTTP_PROXY, NO_PROXY) and --api-url ({api_url}).")


class Stopped(BenchmarksError):
    """The client was aborted (ApiClient.abort): the request in progress was abandoned."""


class CountMismatch(ApiError):
    """The rows received differ from the API's `count`."""


@dataclass(frozen=True)
class HttpSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    deadline: float = 300.0         # wall-clock seconds per request, body included
    retries: int = 5                # per request, for each kind of failure
    backoff: float = 1.0            # first backoff; doubles each retry
    backoff_max: float = 60.0
    jitter: float = 1.0             # up to this many random seconds added to each backoff
    max_retry_after: float = 300.0  # a longer Retry-After is cut to this
    max_body: int = 512 * 2**20     # bytes a response may inflate to (the largest real page is ~12 MB)

    def sleep_before(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return min(self.backoff_max, self.backoff * 2 ** (attempt - 1)) + random.uniform(0, self.jitter)


@dataclass
class Page:
    url: str
    count: int | None
    next: str | None
    results: list
    body: bytes


class _Retry(Retry):
    max_retry_after = 300.0
    stop: threading.Event | None = None      # set: waits end at once and the request is abandoned (Stopped)

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), self.max_retry_after)

    def sleep_for_retry(self, response) -> bool:
        retry_after = self.get_retry_after(response)
        if retry_after:
            self._wait(retry_after)
            return True
        return False

    def _sleep_backoff(self) -> None:
        self._wait(self.get_backoff_time())

    def _wait(self, seconds: float) -> None:
        if self.stop is None:
            if seconds > 0:
                time.sleep(seconds)
        elif self.stop.wait(max(0.0, seconds)):
            raise Stopped("the run is stopping: a retry was abandoned")


class _InUse:
    """The connections of a client's sessions that are in use (checked out of their pool), so that abort() can
    shut their sockets: a thread blocked on a slow answer then returns at once."""

    def __init__(self) -> None:
        self.conns: weakref.WeakSet = weakref.WeakSet()
        self.lock = threading.Lock()
        self.pool_classes = {"http": self._tracked(HTTPConnectionPool), "https": self._tracked(HTTPSConnectionPool)}

    def _tracked(self, base: type) -> type:
        in_use = self

        class Pool(base):                                     # type: ignore[misc, valid-type]
            def _get_conn(self, timeout=None):
                conn = super()._get_conn(timeout)
                with in_use.lock:
                    in_use.conns.add(conn)
                return conn

            def _put_conn(self, conn) -> None:
                if conn is not None:
                    with in_use.lock:
                        in_use.conns.discard(conn)
                super()._put_conn(conn)

        Pool.__name__ = Pool.__qualname__ = base.__name__    # urllib3's messages name the pool's class
        return Pool

    def track(self, manager) -> None:
        """Have a urllib3 pool manager (or proxy manager) make tracked pools; SOCKS managers keep their own."""
        if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:
            manager.pool_classes_by_scheme = self.pool_classes

    def shut(self) -> None:
        with self.lock:
            conns = list(self.conns)
        for conn in conns:
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Adapter(HTTPAdapter):
    """An HTTPAdapter whose connections in use are tracked (_InUse)."""

    def __init__(self, in_use: _InUse | None = None, **kw) -> None:
        self._in_use = in_use
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw) -> None:
        super().init_poolmanager(*args, **kw)
        if self._in_use is not None:
            self._in_use.track(self.poolmanager)

    def proxy_manager_for(self, proxy, **kw):
        manager = super().proxy_manager_for(proxy, **kw)
        if self._in_use is not None:
            self._in_use.track(manager)
        return manager


def make_retry(settings: HttpSettings, first_contact: bool = False, stop: threading.Event | None = None) -> Retry:
    """The adapter's retry policy. first_contact: a failure to connect is retried only FIRST_CONTACT_RETRIES
    times (see the module's docstring). stop: an event that ends the retries' waits (Stopped)."""
    # A subclass, not an attribute: Retry.new() rebuilds the object from its constructor arguments.
    retry_cls = type("CappedRetry", (_Retry,), {"max_retry_after": settings.max_retry_after, "stop": stop})
    quick = min(settings.retries, FIRST_CONTACT_RETRIES) if first_contact else None
    return retry_cls(
        total=settings.retries, connect=settings.retries if quick is None else quick, read=settings.retries,
        status=settings.retries, other=quick,
        allowed_methods=frozenset({"GET"}), status_forcelist=RETRY_STATUSES,
        backoff_factor=settings.backoff / 2, backoff_max=settings.backoff_max, backoff_jitter=settings.jitter,
        respect_retry_after_header=True, raise_on_status=False)


def make_session(settings: HttpSettings, stop: threading.Event | None = None,
                 in_use: _InUse | None = None) -> requests.Session:
    """A session whose adapter has the retry policy (one connection per host kept alive). stop: see make_retry;
    in_use: tracks the connections in use."""
    session = requests.Session()
    adapter = _Adapter(in_use, pool_connections=4, pool_maxsize=1, max_retries=make_retry(settings, stop=stop))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
    session.max_redirects = MAX_REDIRECTS        # requests follows redirects itself, not the adapter's Retry
    return session


_ANY_JSON = msgspec.json.Decoder()


@cache
def _page_decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder:
    """A decoder of pages whose records keep only `fields` (each optional, of any JSON type)."""
    record = TypedDict("Record", {f: Any for f in fields}, total=False)   # type: ignore[misc]
    page = msgspec.defstruct("Page", [("results", list[record]), ("count", Any, None), ("next", Any, None)])
    return msgspec.json.Decoder(page)


def parse_page(body: bytes, url: str, fields: tuple[str, ...] | None = None) -> dict:
    """The JSON of a page ({"count", "next", "results"}), or TransientError for a body the API should not have
    sent. With `fields`, a record keeps only those fields (see the module's docstring)."""
    if fields:
        try:
            page = _page_decoder(fields).decode(body)
            data = {"count": page.count, "next": page.next, "results": page.results}
        except (msgspec.MsgspecError, RecursionError):    # not JSON, or not a page of objects: judged below
            data = _decode_any(body, url)
    else:
        data = _decode_any(body, url)
    if isinstance(data, list) and data and isinstance(data[0], dict) and "API ERROR" in data[0]:
        text = str(data[0]["API ERROR"])
        raise TransientError(f"API ERROR from {url}: {text[:200]}", f"API ERROR: {' '.join(text.split())[:60]}")
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise TransientError(f"unexpected response from {url}: not a page with results", "not a page of results")
    count = data.get("count")
    if count is not None and (type(count) is not int or count < 0):
        raise TransientError(f"unexpected response from {url}: count {count!r}", "a page with a bad count")
    nxt = data.get("next")
    if nxt is not None and not isinstance(nxt, str):
        raise TransientError(f"unexpected response from {url}: next {nxt!r}", "a page with a bad next link")
    return data


def _decode_any(body: bytes, url: str):
    try:
        return _ANY_JSON.decode(body)
    except RecursionError:
        raise TransientError(f"malformed JSON from {url}: nested too deeply", "malformed JSON") from None
    except msgspec.DecodeError:
        try:
            return json.loads(body)          # what msgspec refuses but Python reads (NaN, Infinity)
        except RecursionError:
            raise TransientError(f"malformed JSON from {url}: nested too deeply", "malformed JSON") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise TransientError(f"malformed JSON from {url}: {str(exc)[:80]}", "malformed JSON") from None


class ApiClient:
    """Fetches pages from the API. Thread-safe: each thread gets its own session (and connections)."""

    asks_fields = True                   # pages() sends `fields=` (a server may refuse it: see loader/ingest.py)

    def __init__(self, base_url: str = DEFAULT_API_URL, settings: HttpSettings | None = None):
        self.settings = settings or HttpSettings()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()           # abort(): no new request, waits end, sockets in use shut
        self._in_use = _InUse()
        self.reached = False                     # the host has answered a request (any HTTP status) in this run
        try:
            base = urlsplit(base_url.rstrip("/"))
            host, port = base.hostname, base.port
        except ValueError:
            raise ValueError("API URL must be http(s)://host/... (it could not be parsed)") from None
        if base.scheme not in ("http", "https") or not host:
            raise ValueError(f"API URL must be http(s)://host/...: {redact_url(base_url)!r}")
        # Credentials in the URL become basic auth; base_url (shown in messages and logs) is the URL without them.
        self._auth = (unquote(base.username or ""), unquote(base.password or "")) if base.username else None
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
        self.base_url = urlunsplit((base.scheme, netloc, base.path, base.query, ""))
        self._origin = (base.scheme, netloc)

    # -------------------------------------------------------------------------------- plumbing
    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = make_session(self.settings, stop=self._stop, in_use=self._in_use)
            s.auth = self._auth
            # Worked out once per thread rather than by session.request for every page: the proxies and CA bundle
            # the environment names for base_url's host (every request goes there), its adapter, and a request
            # with the session's headers whose copies only need their URL.
            self._local.send_kw = {**s.merge_environment_settings(self.base_url, {}, True, None, None),
                                   "timeout": (self.settings.connect_timeout, self.settings.read_timeout)}
            self._local.adapter = s.get_adapter(self.base_url)
            # Until the host has answered once, a policy that gives up on a failure to connect within seconds.
            self._local.retries = (make_retry(self.settings, first_contact=True, stop=self._stop),
                                   self._local.adapter.max_retries)
            self._local.template = s.prepare_request(requests.Request("GET", self.base_url))
            with self._lock:
                self._sessions.append(s)
        return s

    def _get(self, url: str) -> requests.Response:
        """GET url, streamed, sent by the thread's adapter. A redirect is followed (at most MAX_REDIRECTS) only
        within the configured origin: another host's answer is never taken for the API's. session.request would
        read the environment (proxies, .netrc), merge settings and prepare headers again for every page: a third
        of the client's CPU on a small page."""
        _ = self.session                  # the thread's session, adapter and request template, made once
        local = self._local
        for _ in range(MAX_REDIRECTS + 1):
            if self._stop.is_set():
                raise Stopped("the run is stopping: no new request")
            req = local.template.copy()
            req.prepare_url(url, None)
            local.adapter.max_retries = local.retries[self.reached]       # the adapter is this thread's own
            resp = local.adapter.send(req, **local.send_kw)
            self.reached = True
            if not resp.is_redirect:
                return resp
            target = urljoin(url, resp.headers.get("location", ""))
            resp.close()
            t = urlsplit(target)
            if (t.scheme, t.netloc) != self._origin:
                raise requests.TooManyRedirects(f"redirected to another origin ({t.scheme}://{t.hostname}); "
                                                f"not followed")
            url = target
        raise requests.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()

    def abort(self) -> None:
        """Stop, from any thread: no new request starts, retry waits end, and the sockets of the requests in
        flight are shut (their threads get Stopped). Calling it again shuts the connections opened meanwhile."""
        self._stop.set()
        self._in_use.shut()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def failure(self, exc: BaseException, url: str) -> ApiError:
        """The ApiError of a request that raised `exc` (requests' or urllib3's): CannotConnect when no connection
        could be made at all; Stopped's when the client was aborted."""
        if self._stop.is_set():
            return Stopped("the run is stopping: the request was abandoned")       # type: ignore[return-value]
        brief, connecting = failure_cause(exc, self.settings)
        message, detail = f"cannot fetch {url}: {_first_line(exc)}", redact_text(f"{url}: {exception_chain(exc)}")
        if connecting:
            proxies = getattr(self._local, "send_kw", {}).get("proxies") or {}
            proxy = select_proxy(url, proxies)
            return CannotConnect(message, brief, detail, self._origin[1].rsplit("@", 1)[-1],
                                 redact_url(proxy) if proxy else None)
        return ApiError(message, brief, detail)

    def url(self, path: str, params: list[tuple[str, str]] | None = None) -> str:
        q = urlencode(params or [], safe=",")
        return f"{self.base_url}/{path.lstrip('/')}" + (f"?{q}" if q else "")

    def _read_body(self, url: str) -> bytes:
        """GET url; the body, or ApiError (final HTTP status / connection failure) or TransientError."""
        st = self.settings
        started = time.monotonic()
        try:
            resp = self._get(url)
        except requests.RequestException as exc:     # retries exhausted, a bad URL, too many redirects, ...
            raise self.failure(exc, url) from None
        try:
            if resp.status_code != 200:
                detail = _peek(resp)
                code = resp.status_code
                if code in RETRY_STATUSES:
                    raise ApiError(f"HTTP {code} from {url} after {st.retries} retries{detail}",
                                   f"HTTP {code} after {st.retries + 1} tries")
                raise ApiError(f"HTTP {code} from {url}{detail}", f"HTTP {code}")
            raw = resp.raw
            chunks = []
            size = 0
            while True:
                if time.monotonic() - started > st.deadline:
                    raise TransientError(f"response from {url} took longer than the {st.deadline:g}s deadline",
                                         f"deadline {st.deadline:g} s passed")
                if self._stop.is_set():
                    raise Stopped("the run is stopping: a response was abandoned")
                try:
                    chunk = raw.read1(16384, decode_content=True)   # inflates to at most ~16 MiB at once
                except Exception as exc:  # noqa: BLE001 - urllib3's read errors (timeout, protocol, decoding), OSError
                    if self._stop.is_set():
                        raise Stopped("the run is stopping: a response was abandoned") from None
                    timed_out = any(isinstance(e, (socket.timeout, u3.ReadTimeoutError)) for e in _chain(exc))
                    raise TransientError(f"connection broke while reading {url}: {_first_line(exc)}",
                                         f"no data for {st.read_timeout:g} s" if timed_out else "response cut off",
                                         redact_text(f"{url}: {exception_chain(exc)}")) from None
                if not chunk:
                    break
                size += len(chunk)
                if size > st.max_body:
                    raise TransientError(f"response from {url} inflates past {st.max_body:,} bytes; not read",
                                         f"response larger than {st.max_body // 2**20:,} MB")
                chunks.append(chunk)
            raw.release_conn()               # read to the end: the connection (and its TLS session) is reused
            return b"".join(chunks)
        finally:
            resp.close()                     # after release_conn() it keeps the connection; otherwise drops it,
                                             # and the adapter's pool then opens a new one

    def get_page(self, url: str, fields: tuple[str, ...] | None = None) -> Page:
        """One page, with our own bounded retries of the failures the adapter's Retry does not handle."""
        attempt = 0
        while True:
            try:
                body = self._read_body(url)
                data = parse_page(body, url, fields)
                return Page(url, data.get("count"), data.get("next"), data["results"], body)
            except TransientError as exc:
                attempt += 1
                if attempt > self.settings.retries:
                    raise ApiError(f"{exc} (gave up after {attempt} attempts)", f"{exc.brief} ({attempt} tries)",
                                   f"{exc.detail} (gave up after {attempt} attempts)") from None
                if self._stop.wait(self.settings.sleep_before(attempt)):
                    raise Stopped("the run is stopping: a retry was abandoned") from None

    def next_url(self, nxt: str, params: list[tuple[str, str]]) -> str:
        """`next` as sent by the API, pointed at our host and carrying every parameter of the first request."""
        u = urlsplit(nxt)
        query = parse_qsl(u.query, keep_blank_values=True)
        have = {k for k, _ in query}
        query += [(k, v) for k, v in params if k not in have]
        path = u.path
        if (u.scheme, u.netloc) != self._origin:
            # Same route on the configured host (the API may name an internal host or http:// behind a proxy).
            base_path = urlsplit(self.base_url).path.rstrip("/")
            marker = base_path + "/" if base_path else "/"
            idx = path.find(marker)
            path = path[idx:] if idx >= 0 else path
        return urlunsplit((*self._origin, path, urlencode(query, safe=","), ""))

    # -------------------------------------------------------------------------------- public
    def pages(self, path: str, params: list[tuple[str, str]] | None = None,
              fields: tuple[str, ...] | None = None, send_fields: bool = True) -> Iterator[Page]:
        """Every page of path?params, following `next` until it is null. fields: the record fields to keep (see
        parse_page), also asked of the server as `fields=a,b,c` unless send_fields is False."""
        params = list(params or [])
        if fields and send_fields:
            params.append(("fields", ",".join(fields)))
        url = self.url(path, params)
        seen: set[str] = set()
        received = 0
        while url:
            if url in seen:
                raise ApiError(f"the API's next link loops back to {url}", "the next link loops")
            seen.add(url)
            page = self.get_page(url, fields)
            received += len(page.results)
            if page.count is not None and len(seen) > max(1, page.count):
                raise ApiError(f"the API sent more pages than its count of {page.count:,} rows allows ({url})",
                               "more pages than the count allows")
            yield page
            if page.count is not None and received >= page.count:
                return                       # every row the count promised has come: a further `next` is not followed
            url = self.next_url(page.next, params) if page.next else None

    def catalogue(self) -> list[dict]:
        """The rows of /api-endpoints/ (all pages)."""
        rows: list[dict] = []
        for page in self.pages("api-endpoints/"):
            rows.extend(r for r in page.results if isinstance(r, dict))
        return rows


def _chain(exc: BaseException) -> list[BaseException]:
    """exc and what it wraps, outermost first: urllib3's `reason` and `original_error`, exceptions among its args,
    its __cause__ and __context__."""
    out: list[BaseException] = []
    todo: list = [exc]
    while todo:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or any(e is o for o in out):
            continue
        out.append(e)
        todo += [getattr(e, "reason", None), getattr(e, "original_error", None), *e.args, e.__cause__,
                 e.__context__]
    return out


def exception_chain(exc: BaseException) -> str:
    """Every exception of exc's chain (_chain) on one line, for logs and --verbose."""
    return " <- ".join(f"{type(e).__name__}: {' '.join(str(e).split())[:300]}" for e in _chain(exc))


def failure_cause(exc: BaseException, settings: HttpSettings) -> tuple[str, bool]:
    """A request's exception (requests', urllib3's, the socket's) in a few words, and whether it is a failure to
    connect at all (DNS, refused, TLS, proxy, no answer to connect) rather than to get an answer."""
    chain = _chain(exc)

    def find(*types: type) -> BaseException | None:
        return next((e for e in chain if isinstance(e, types)), None)

    proxy = "proxy: " if find(requests.exceptions.ProxyError, u3.ProxyError) else ""
    if find(u3.NameResolutionError, socket.gaierror):
        return f"{proxy}DNS lookup failed", True
    if find(ConnectionRefusedError):
        return f"{proxy}connection refused", True
    if find(requests.exceptions.SSLError, u3.SSLError, ssl.SSLError):
        verify = find(ssl.SSLCertVerificationError)
        return f"{proxy}TLS error" + (f" ({verify.verify_message})" if verify else ""), True   # type: ignore[union-attr]
    new_conn = find(u3.NewConnectionError)
    if new_conn is not None:
        os_error = next((e for e in chain if isinstance(e, OSError)
                         and not isinstance(e, (requests.RequestException, u3.HTTPError))), None)
        errno = getattr(os_error, "errno", None)
        return proxy + (os.strerror(errno).lower() if errno else "cannot connect"), True
    if proxy:
        return "proxy refused the connection", True
    if find(requests.exceptions.ConnectTimeout, u3.ConnectTimeoutError):
        return f"no answer to connect within {settings.connect_timeout:g} s", True
    if find(requests.exceptions.ReadTimeout, u3.ReadTimeoutError, socket.timeout):
        return f"no answer within {settings.read_timeout:g} s", False
    redirects = find(requests.TooManyRedirects)
    if redirects is not None:
        return ("redirected to another origin" if "another origin" in str(redirects) else "too many redirects"), False
    if find(u3.ProtocolError, ConnectionError):
        return "connection dropped", False
    return type(exc).__name__, False


def redact_text(text: str) -> str:
    """text with the credentials of every URL in it removed (redact_url)."""
    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+", lambda m: redact_url(m.group(0)), text)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.strip().splitlines()[0][:200]


def _peek(resp: requests.Response) -> str:
    """A short excerpt of an error body, for the message."""
    try:
        text = resp.raw.read(300, decode_content=True).decode("utf-8", "replace").strip()
    except Exception:  # noqa: BLE001 - the status is the message; the excerpt is a courtesy
        return ""
    return f": {' '.join(text.split())[:160]}" if text else ""


def redact_url(url: str) -> str:
    """url without the credentials of its userinfo (user:password@), for messages and logs."""
    try:
        u = urlsplit(url)
        if not (u.username or u.password):
            return url
        netloc = u.netloc.rsplit("@", 1)[1]
        return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))
    except ValueError:
        return "<an unparseable URL>"
