"""Raw pages on disk: `ingest --save-raw DIR` writes them, `ingest --from-dir DIR` replays them with no network.

Layout, by request path and query string (one directory per request chain, pages numbered in the order
their `next` links were followed):

    DIR/api-endpoints/page-0001.json.gz
    DIR/school-districts/ccd/directory/2020/fips=6/page-0001.json.gz
    DIR/schools/crdc/chronic-absenteeism/2020/race/sex/fips=6&race=99&sex=99/page-0001.json.gz

The key is the request's path and its own parameters; the `fields=` the client adds is not part of it (a
saved page holds the fields asked for, or more when the server ignored or refused `fields=`, and replays the
same). Each file is the page body exactly as the API sent it, gzip-compressed. A chain is written to a temporary
directory and moved into place only once its last page arrived, so DIR never holds half a chain.
"""
from __future__ import annotations

import gzip
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from .api import ApiClient, ApiError, Page, TransientError, parse_page

CATALOGUE_PATH = "api-endpoints/"


def chain_dir(root: Path, path: str, params: list[tuple[str, str]] | None = None) -> Path:
    d = Path(root, *[p for p in path.strip("/").split("/") if p])
    if params:
        d = d / "&".join(f"{k}={v}" for k, v in params)
    return d


def page_file(directory: Path, number: int) -> Path:
    return directory / f"page-{number:04d}.json.gz"


def write_gzip(path: Path, body: bytes) -> None:
    # mtime=0 keeps the files byte-for-byte reproducible.
    with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(body)


class SavingClient:
    """Wraps an ApiClient: every chain it fetches is also saved under `root`."""

    asks_fields = True

    def __init__(self, client: ApiClient, root: Path):
        self.client = client
        self.root = Path(root)
        self.base_url = client.base_url

    def pages(self, path: str, params: list[tuple[str, str]] | None = None,
              fields: tuple[str, ...] | None = None, send_fields: bool = True) -> Iterator[Page]:
        final = chain_dir(self.root, path, params)
        tmp = final.with_name(f".{final.name}.partial-{os.getpid()}-{threading.get_ident()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        complete = False
        try:
            for n, page in enumerate(self.client.pages(path, params, fields, send_fields), start=1):
                write_gzip(page_file(tmp, n), page.body)
                yield page
            complete = True
        finally:
            if complete:
                if final.exists():
                    shutil.rmtree(final)
                tmp.rename(final)
            else:
                shutil.rmtree(tmp, ignore_errors=True)

    def catalogue(self) -> list[dict]:
        rows: list[dict] = []
        for page in self.pages(CATALOGUE_PATH):
            rows.extend(r for r in page.results if isinstance(r, dict))
        return rows

    def abort(self) -> None:
        self.client.abort()

    def close(self) -> None:
        self.client.close()


class DirClient:
    """Replays a directory written by SavingClient (or by tests/make_sample.py). No network."""

    asks_fields = False

    def __init__(self, root: Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ApiError(f"{self.root} is not a directory")
        self.base_url = f"file://{self.root.resolve()}"

    def has(self, path: str, params: list[tuple[str, str]] | None = None) -> bool:
        return page_file(chain_dir(self.root, path, params), 1).is_file()

    def pages(self, path: str, params: list[tuple[str, str]] | None = None,
              fields: tuple[str, ...] | None = None, send_fields: bool = True) -> Iterator[Page]:
        """The saved chain of path?params (send_fields: no meaning here; fields: see parse_page)."""
        directory = chain_dir(self.root, path, params)
        n = 1
        while True:
            f = page_file(directory, n)
            if not f.is_file():
                what = "is not in" if n == 1 else f"is incomplete in (no {f.name}):"
                raise ApiError(f"{path} {'&'.join(f'{k}={v}' for k, v in params or [])} {what} {self.root}")
            try:
                body = gzip.decompress(f.read_bytes())
                data = parse_page(body, str(f), fields)
            except (OSError, EOFError, TransientError) as exc:
                raise ApiError(f"cannot replay {f}: {exc}") from None
            yield Page(str(f), data.get("count"), data.get("next"), data["results"], body)
            if not data.get("next"):
                return
            n += 1

    def catalogue(self) -> list[dict]:
        if not self.has(CATALOGUE_PATH):
            return []
        rows: list[dict] = []
        for page in self.pages(CATALOGUE_PATH):
            rows.extend(r for r in page.results if isinstance(r, dict))
        return rows

    def close(self) -> None:
        pass
