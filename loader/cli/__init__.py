"""The `district-benchmarks` command line: one module per group of commands, each a thin wrapper over the plain
functions of the package (the only part of it that imports click or rich)."""
from __future__ import annotations

import click

from .. import SQL_VERSION, __version__
from . import cron, database, ingest, ops, report


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="district-benchmarks",
                      message=f"%(prog)s %(version)s (SQL functions {SQL_VERSION})")
def cli() -> None:
    """Benchmarks and 3-year trends for every US school district, computed inside PostgreSQL.

    Example: district-benchmarks run --sample && district-benchmarks show 4100030
    """


for _module in (database, ingest, ops, cron, report):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="district-benchmarks")
