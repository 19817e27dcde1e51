"""`compute`, `show`, `peers`, `states`, `status`: running the functions and reading the results back."""
from __future__ import annotations

import click

from .. import report
from .. import schedule as cron
from ..compute import STEP_FUNCTIONS, run_compute
from ..db import connect
from .common import LOCK_WAIT, dsn_option, echo_json, handle_errors, resolve_dsn
from .render import console, render_peers, render_profile, render_states, render_status, render_summary


@click.command("compute")
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
    chosen = [] if all_ else [s for s in STEP_FUNCTIONS if s in steps]
    summary = run_compute(resolve_dsn(dsn), chosen, refresh_current=not no_refresh_current, lock_wait=lock_wait)
    if as_json:
        echo_json(summary)
    else:
        render_summary(summary, console())


@click.command("show")
@click.argument("leaid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def show(leaid: str, as_json: bool, dsn: str | None) -> None:
    """One district's values, averages, deltas, tiers, trends, and its peer group's averages.

    Example: district-benchmarks show 4100030
    """
    key = report.normalise_leaid(leaid)
    with connect(resolve_dsn(dsn)) as conn:
        profile = report.district_profile(conn, key)
    if as_json:
        echo_json(profile)
    else:
        render_profile(profile, console())


@click.command("peers")
@click.argument("leaid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def peers(leaid: str, as_json: bool, dsn: str | None) -> None:
    """A district's peer group: the 40 districts most like it nationwide (size, child poverty, ELL %, SWD %),
    nearest first.

    Example: district-benchmarks peers 4100030
    """
    key = report.normalise_leaid(leaid)
    with connect(resolve_dsn(dsn)) as conn:
        group = report.district_peers(conn, key)
    if as_json:
        echo_json(group)
    else:
        render_peers(group, console())


@click.command("states")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def states(as_json: bool, dsn: str | None) -> None:
    """State and national averages (states with districts, and the US row)."""
    with connect(resolve_dsn(dsn)) as conn:
        rows = report.state_summary(conn)
    if as_json:
        echo_json(rows)
    else:
        render_states(rows, console())


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def status(as_json: bool, dsn: str | None) -> None:
    """Last runs, coverage per metric, and the scheduled jobs."""
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


COMMANDS = [compute, show, peers, states, status]
