"""`schedule`, `unschedule`, `jobs`: the nightly pg_cron job (loader/schedule.py does the work)."""
from __future__ import annotations

import click

from .. import schedule as cron
from .common import dsn_option, echo_json, handle_errors, resolve_dsn
from .render import console, when


@click.command("schedule", short_help="Run compute_all_benchmarks() nightly with pg_cron.")
@click.option("--cron", "cron_expr", default="0 6 * * *", show_default=True,
              help="When to run, in cron syntax (pg_cron evaluates it in GMT).")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@click.option("--keep-days", default=30, show_default=True, type=click.IntRange(min=0),
              help="Also schedule a daily cleanup of this job's run history older than N days (0: none).")
@click.option("--json", "as_json", is_flag=True, help="Print the job ids and databases as JSON.")
@dsn_option
@handle_errors
def schedule_cmd(cron_expr: str, name: str, keep_days: int, as_json: bool, dsn: str | None) -> None:
    """Create or update the pg_cron job running SELECT compute_all_benchmarks().

    Example: district-benchmarks schedule --cron '0 6 * * *'
    """
    info = cron.schedule(resolve_dsn(dsn), cron_expr, name=name, keep_days=keep_days or None)
    if as_json:
        echo_json({"name": name, **info})
        return
    where = ("" if info["cron_database"] == info["database"]
             else f" (pg_cron lives in {info['cron_database']!r})")
    click.echo(f"scheduled job {name!r} (id {info['job_id']}): '{cron_expr}' in database "
               f"{info['database']!r}{where}")


@click.command("unschedule", short_help="Remove the pg_cron job.")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@dsn_option
@handle_errors
def unschedule_cmd(name: str, dsn: str | None) -> None:
    """Remove the pg_cron job and its cleanup job (quiet when there is none).

    Example: district-benchmarks unschedule
    """
    if cron.unschedule(resolve_dsn(dsn), name=name):
        click.echo(f"removed job {name!r}")


@click.command("jobs", short_help="The pg_cron job and its last runs.")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@handle_errors
def jobs_cmd(name: str, as_json: bool, dsn: str | None) -> None:
    """List the job and its last runs (cron.job_run_details), times in the local zone.

    Example: district-benchmarks jobs
    """
    found = cron.jobs(resolve_dsn(dsn), name=name)
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"no job named {name!r}")
        return
    out = console()
    for j in found:
        out.print(f"[bold]{j['jobname']}[/] id {j['jobid']}  '{j['schedule']}'  in {j['database']}  "
                  f"{'active' if j['active'] else 'inactive'}\n  {j['command']}")
        for r in j["runs"]:
            took = (r["end_time"] - r["start_time"]).total_seconds() if r["end_time"] and r["start_time"] else None
            out.print(f"  {when(r['start_time']) if r['start_time'] else '(not started)'}  {r['status']:<9} "
                      f"{f'{took:.1f}s' if took is not None else ''}  {r['return_message'] or ''}")


COMMANDS = [schedule_cmd, unschedule_cmd, jobs_cmd]
