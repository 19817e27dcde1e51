"""`compute`, `show`, `peers`, `states`, `status`: running the functions and reading the results back."""
from __future__ import annotations

import click

from .. import report
from .. import schedule as cron
from ..compute import STEP_FUNCTIONS, run_compute
from ..db import connect
from .common import LOCK_WAIT, dsn_option, echo_json, handle_errors, resolve_dsn
from .render import (
    console,
    render_districts,
    render_peers,
    render_profile,
    render_states,
    render_status,
    render_summary,
)


@click.command("compute", short_help="Run the benchmark functions and print their summary.")
@click.option("--averages", "steps", flag_value="averages", multiple=True, help="compute_state_averages() only.")
@click.option("--trends", "steps", flag_value="trends", multiple=True, help="compute_district_trends() only.")
@click.option("--deltas", "steps", flag_value="deltas", multiple=True, help="compute_deltas_quartiles() only.")
@click.option("--all", "all_", is_flag=True, help="Everything: compute_all_benchmarks() (the default).")
@click.option("--no-refresh-current", is_flag=True,
              help="With --all: keep the districts' current values (compute_all_benchmarks(false)).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@LOCK_WAIT
@dsn_option
@handle_errors
def compute(steps: tuple[str, ...], all_: bool, no_refresh_current: bool, as_json: bool, lock_wait: float,
            dsn: str | None) -> None:
    """Run the benchmark functions and print their summary.

    Without flags (or with --all) runs compute_all_benchmarks(); --averages, --trends and --deltas run
    single steps (in that order when combined), in one transaction.

    Example: district-benchmarks compute --json
    """
    if all_ and steps:
        raise click.UsageError(f"--all runs every step; it cannot be combined with "
                               f"{', '.join('--' + s for s in STEP_FUNCTIONS if s in steps)}")
    if no_refresh_current and steps:
        raise click.UsageError("--no-refresh-current applies to the full run (compute_all_benchmarks(false)); "
                               "the single steps --averages, --trends and --deltas never refresh the current values")
    chosen = [] if all_ else [s for s in STEP_FUNCTIONS if s in steps]
    summary = run_compute(resolve_dsn(dsn), chosen, refresh_current=not no_refresh_current, lock_wait=lock_wait)
    if as_json:
        echo_json(summary)
    else:
        render_summary(summary, console())


@click.command("show", short_help="One district: values, years, averages, tiers, trends, peers.")
@click.argument("leaid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def show(leaid: str, as_json: bool, dsn: str | None) -> None:
    """One district's values with their school years, state and national averages, differences, tiers with its
    rank in the state, trends with the years they compare, and its peer group's averages. An empty cell is
    footnoted with the reason. Given a name instead of a LEAID, lists the districts it matches.

    Example: district-benchmarks show 4100030
    """
    with connect(resolve_dsn(dsn)) as conn:
        profile = report.district_profile(conn, report.leaid_or_suggestions(conn, leaid))
    if as_json:
        echo_json(profile)
    else:
        render_profile(profile, console())


@click.command("peers", short_help="A district's peer group: the 40 districts most like it.")
@click.argument("leaid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def peers(leaid: str, as_json: bool, dsn: str | None) -> None:
    """A district's peer group: the 40 districts most like it nationwide (size, child poverty, ELL %, SWD %),
    nearest first.

    Example: district-benchmarks peers 4100030
    """
    with connect(resolve_dsn(dsn)) as conn:
        group = report.district_peers(conn, report.leaid_or_suggestions(conn, leaid))
    if as_json:
        echo_json(group)
    else:
        render_peers(group, console())


@click.command("districts", short_help="Find districts by name and state (LEAID, enrollment).")
@click.option("--name", metavar="WORDS", help="Words the name contains, in any case and order (oak: Oakland, "
                                              "Oak Ridge, ...).")
@click.option("--state", metavar="STATE", help="Postal abbreviation (OR) or FIPS code (41).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="List at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def districts(name: str | None, state: str | None, limit: int, as_json: bool, dsn: str | None) -> None:
    """List the districts whose name contains every word of --name, in --state: LEAID, name, state, city and
    enrollment, by name.

    Example: district-benchmarks districts --state OR --name oak
    """
    with connect(resolve_dsn(dsn)) as conn:
        found = report.find_districts(conn, name=name, state=state, limit=limit)
    if as_json:
        echo_json([{k: v for k, v in d.items() if k != "total"} for d in found])
    else:
        render_districts(found, console())


@click.command("states", short_help="State and national averages.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def states(as_json: bool, dsn: str | None) -> None:
    """State and national averages (states with districts, and the US row).

    Example: district-benchmarks states --json
    """
    with connect(resolve_dsn(dsn)) as conn:
        rows = report.state_summary(conn)
    if as_json:
        echo_json(rows)
    else:
        render_states(rows, console())


@click.command("status", short_help="Last run of each source, coverage, scheduled jobs.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def status(as_json: bool, dsn: str | None) -> None:
    """The last run of each source and of the computation (times in the local zone), coverage per metric with
    the year of its values, and the scheduled jobs.

    Example: district-benchmarks status
    """
    conninfo = resolve_dsn(dsn)
    with connect(conninfo) as conn:
        st = report.run_status(conn)
    jobs, note = None, None
    try:
        jobs = cron.jobs(conninfo)
        if not jobs:
            note = "no job scheduled (district-benchmarks schedule --cron '0 6 * * *')"
    except cron.CronUnavailable as exc:
        note = f"not available — {exc}"
    if as_json:
        echo_json({**st, "jobs": jobs, "cron_note": note})
    else:
        render_status(st, jobs, note, console())


COMMANDS = [compute, show, peers, districts, states, status]
