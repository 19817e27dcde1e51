"""`report`: a district's or a state's benchmarks as a self-contained HTML page with charts."""
from __future__ import annotations

from pathlib import Path

import click

from .. import report, report_html
from ..db import connect
from .common import dsn_option, handle_errors, resolve_dsn


@click.command("report", short_help="An HTML page with charts for a district or a state.")
@click.argument("leaid", required=False)
@click.option("--state", metavar="XX", help="A state's page instead of a district's: its abbreviation or FIPS code.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.html",
              help="Where to write the page [default: district-LEAID.html or state-XX.html].")
@dsn_option
@handle_errors
def report_cmd(leaid: str | None, state: str | None, out: Path | None, dsn: str | None) -> None:
    """Write one HTML page, with charts, for a district (LEAID) or a state (--state XX).

    The page is self-contained: it opens offline, with nothing fetched. A district's page shows each metric's
    value against its state's, the national and its peers' averages over the spread of the state's districts
    (with the tier bands), and its history by year; a state's page each metric's spread, tier cut-offs,
    averages, and the districts furthest above and below. Needs the plotting extra:
    pip install 'district-benchmarks[report]'.

    Examples: district-benchmarks report 4100030 --out oakford.html;
    district-benchmarks report --state OR
    """
    if (leaid is None) == (state is None):
        raise click.UsageError("give either a LEAID or --state XX")
    report_html.require_charts()                      # before any work: say how to install the extra
    key = report.normalise_leaid(leaid) if leaid is not None else None
    with connect(resolve_dsn(dsn)) as conn:
        if key is not None:
            data = report.district_report(conn, key)
        else:
            data = report.state_report(conn, state)
    if key is not None:
        page, default = report_html.district_page(data), f"district-{key}.html"
    else:
        page, default = report_html.state_page(data), f"state-{data['state']['abbrev']}.html"
    path = out or Path(default)
    size = report_html.write_page(path, page)
    click.echo(f"wrote {path} ({size / 1024:,.0f} KB)")


COMMANDS = [report_cmd]
