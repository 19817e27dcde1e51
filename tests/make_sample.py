"""Writes the synthetic sample in loader/sample_data/ (run: python -m tests.make_sample).

The sample is what `ingest --save-raw` would have saved had the API served the synthetic world of
tests/synthetic.py: the same directory layout, gzip-compressed pages shaped like the real responses
(`count`/`next`/`previous`/`results`, string leaids, integer fips, -1/-2/-3 codes, "-2" strings, nulls, a row
without leaid, a duplicated district). It is NOT real data: districts, names and values are made up.

States: Hawaii (1 district), Delaware (45), Oregon (220); survey years 2016-2022 where each endpoint has them.
Deterministic: running it again rewrites byte-identical files.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from urllib.parse import urlencode

from loader.rawstore import CATALOGUE_PATH, chain_dir, page_file, write_gzip
from loader.sources import ENDPOINTS, FALLBACK_YEARS
from tests.synthetic import World

HERE = Path(__file__).resolve().parent.parent / "loader" / "sample_data"
STATES = {15: 1, 10: 45, 41: 220}
YEARS = range(2016, 2023)
API = "https://educationdata.urban.org/api/v1"
PAGE_SIZE = 10_000


def write_chain(root: Path, path: str, params: list[tuple[str, str]], rows: list[dict]) -> int:
    """Write rows as the API's pages of path?params; returns the number of pages."""
    directory = chain_dir(root, path, params)
    directory.mkdir(parents=True, exist_ok=True)
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    for n in range(1, pages + 1):
        def link(p):
            q = params + ([("page", str(p))] if p > 1 else [])
            return f"{API}/{path}?{urlencode(q)}" if q else f"{API}/{path}"
        body = {"count": len(rows), "next": link(n + 1) if n < pages else None,
                "previous": link(n - 1) if n > 1 else None,
                "results": rows[(n - 1) * PAGE_SIZE:n * PAGE_SIZE]}
        write_gzip(page_file(directory, n), json.dumps(body, separators=(",", ":")).encode())
    return pages


def main(root: Path = HERE) -> None:
    world = World(STATES, seed=2024, real_width=False)   # the sample's records as first made
    for child in root.iterdir():
        if child.is_dir() and child.name != "__pycache__":
            shutil.rmtree(child)
    catalogue = [{"endpoint_id": i, "endpoint_url": f"/api/v1/{ep.catalogue_route}",
                  "years_available": FALLBACK_YEARS[ep.key], "section": "synthetic sample"}
                 for i, ep in enumerate(ENDPOINTS, start=1)]
    write_chain(root, CATALOGUE_PATH, [], catalogue)
    files = 0
    for ep in ENDPOINTS:
        for year in YEARS:
            if not world.has(ep.key, year):
                continue
            for fips in STATES:
                params = ep.params(f"{fips:02d}")
                rows = world.records(ep.key, year, fips, dict(ep.filters))
                files += write_chain(root, ep.url_path(year), params, rows)
    size = sum(f.stat().st_size for f in root.rglob("*.json.gz"))
    print(f"wrote {files} pages ({size / 1e6:.2f} MB) under {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
