"""Tables at the width of the terminal (COLUMNS): nothing is cut. Every number printed at a wide width is printed,
whole, at 80 and 60 columns too (wrapped, in column groups, or one block per row), and no line is wider than
the terminal."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from click.testing import CliRunner
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from loader.cli import cli
from loader.cli.render import fit

NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?%?")


@pytest.fixture(scope="module")
def sample_dsn(pg_admin, migrated_template):
    """The bundled sample, ingested and computed, with one failed run in the log."""
    from tests import harness
    name = harness.create_database(pg_admin, "dbench_w", template=migrated_template)
    dsn = harness.with_dbname(pg_admin, name)
    r = CliRunner().invoke(cli, ["ingest", "--sample", "--compute", "--dsn", dsn])
    assert r.exit_code == 0, r.output
    yield dsn
    harness.drop_database(pg_admin, name)


def output(args, dsn, width: int) -> str:
    r = CliRunner().invoke(cli, [*args, "--dsn", dsn], env={"COLUMNS": str(width)}, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout


def numbers(text: str) -> Counter:
    return Counter(NUMBER.findall(text))


@pytest.mark.parametrize("args", [("show", "4100030"), ("peers", "4100030"), ("states",), ("status",),
                                  ("ingest", "--sample", "--refresh")])
@pytest.mark.parametrize("width", [80, 60])
def test_no_number_is_cut_at_80_or_60_columns(sample_dsn, args, width):
    wide = output(args, sample_dsn, 250)
    narrow = output(args, sample_dsn, width)
    assert max(cell_len(line) for line in narrow.splitlines()) <= width
    assert max(cell_len(line) for line in wide.splitlines()) > width           # it had to be made narrower
    if args[0] in ("status", "ingest"):                                       # times differ from run to run
        wide, narrow = (re.sub(r"[\d:.-]+[sZ]?\b", "", t) for t in (wide, narrow))
    missing = numbers(wide) - numbers(narrow)
    assert not missing, f"cut or lost at {width} columns: {sorted(missing)}\n{narrow}"
    assert "…" not in narrow.replace("districts with …", "")


def test_the_ingest_summary_keeps_its_done_column_at_80(sample_dsn):
    out = output(("ingest", "--sample", "--refresh"), sample_dsn, 80)
    header = next(ln for ln in out.splitlines() if "source" in ln)
    assert "done" in header and "skipped" in header and "failed" in header


def render(table, width: int) -> str:
    out = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    out.print(fit(table, out))
    return out.export_text()


def wide_table(rows: int) -> Table:
    t = Table(title="wide")
    for h in ("name", "first value", "second value", "distance", "fourth", "fifth"):
        t.add_column(h, no_wrap=True, justify="left" if h == "name" else "right")
    for i in range(rows):
        t.add_row(f"District number {i}", "1,234,567.89", "$98,765", "0.123", "-12.34%", "▲ +1.00 pts")
    return t


def test_fit_wraps_then_groups_columns_then_goes_vertical():
    assert render(wide_table(3), 120) == render_plain(wide_table(3), 120)       # fits: as it is

    wrapped = render(wide_table(3), 58)                # text wraps at spaces, a long header word is abbreviated
    assert "│ District│" in wrapped and "│ number 0│" in wrapped and "dista." in wrapped
    assert wrapped.count("1,234,567.89") == 3 and max(map(cell_len, wrapped.splitlines())) <= 58

    grouped = render(wide_table(20), 50)               # many rows: tables of a few columns, the first repeated
    assert grouped.count("District number 7 ") >= 2 and "distance" in grouped
    assert grouped.count("1,234,567.89") == 20 and grouped.count("▲ +1.00 pts") == 20

    vertical = render(wide_table(1), 30)               # one block per row
    assert "first value   1,234,567.89" in vertical and "fifth         ▲ +1.00 pts" in vertical
    assert max(map(cell_len, vertical.splitlines())) <= 30


def render_plain(table, width: int) -> str:
    out = Console(width=width, record=True, file=open("/dev/null", "w"), color_system=None)
    out.print(table)
    return out.export_text()
