"""Operations commands: compute, show, states, status, schedule, unschedule, jobs."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from . import report, schedule as cron
from .cli import dsn_option, migrate_cmd, open_db, resolve_dsn, user_errors
from .db import connect

STEP_FUNCTIONS = {  # the original design's flags, in run order
    "averages": "compute_state_averages",
    "trends": "compute_district_trends",
    "deltas": "compute_deltas_quartiles",
}


def _console() -> Console:
    # On a terminal rich uses its width and colours; elsewhere (pipes, logs) a fixed wide layout.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def _json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=str))


def log_failure(conninfo: str, source: str, exc: BaseException) -> None:
    """Record a failed run in data_refresh_logs (the run's own transaction was rolled back with its log row)."""
    try:
        with connect(conninfo, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO data_refresh_logs (data_source, status, error_message, completed_at) "
                "VALUES (%s, 'failed', %s, now())", (source, str(exc).strip()[:2000]))
    except Exception:  # noqa: BLE001 - the original error matters more than the log row
        pass


def render_summary(summary: dict, console: Console) -> None:
    """The run summary: its scalar figures, then one line per step (keys as the functions return them)."""
    scalars = {k: v for k, v in summary.items() if not isinstance(v, dict)}
    console.print("  ".join(f"[bold]{k}[/] {v}" for k, v in scalars.items()))
    steps = summary.get("steps") or {k: v for k, v in summary.items() if isinstance(v, dict)}
    if steps:
        keys = sorted({k for v in steps.values() if isinstance(v, dict) for k in v})
        table = Table(show_edge=False)
        table.add_column("step")
        for k in keys:
            table.add_column(k.replace("_", " "), justify="right")
        for name, figures in steps.items():
            table.add_row(name, *(str(figures.get(k, "")) for k in keys))
        console.print(table)


def run_compute(conninfo: str, steps: list[str], refresh_current: bool = True) -> dict:
    """Run compute_all_benchmarks() (steps == []) or the named steps in one transaction; return a summary."""
    with connect(conninfo) as conn:
        try:
            if not steps:
                summary = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh_current,)).fetchone()[0]
            else:
                summary = {}
                for step in steps:
                    fn = STEP_FUNCTIONS[step]
                    summary[fn] = conn.execute(f"SELECT {fn}()").fetchone()[0]
            conn.commit()
        except Exception as exc:
            conn.rollback()
            log_failure(conninfo, "compute_benchmarks", exc)
            raise
    return summary


@click.command("compute")
@click.option("--averages", "steps", flag_value="averages", multiple=True, help="compute_state_averages() only.")
@click.option("--trends", "steps", flag_value="trends", multiple=True, help="compute_district_trends() only.")
@click.option("--deltas", "steps", flag_value="deltas", multiple=True, help="compute_deltas_quartiles() only.")
@click.option("--all", "all_", is_flag=True, help="Everything: compute_all_benchmarks() (the default).")
@click.option("--no-refresh-current", is_flag=True,
              help="With --all: keep the districts' current values (compute_all_benchmarks(false)).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@dsn_option
@user_errors
def compute(steps, all_, no_refresh_current, as_json, dsn):
    """Run the benchmark functions and print their summary.

    Without flags (or with --all) runs compute_all_benchmarks(); --averages, --trends and --deltas run
    single steps (in that order when combined), in one transaction.
    """
    chosen = [] if all_ else [s for s in STEP_FUNCTIONS if s in steps]
    summary = run_compute(resolve_dsn(dsn), chosen, refresh_current=not no_refresh_current)
    if as_json:
        _json(summary)
    else:
        render_summary(summary, _console())


@click.command("show")
@click.argument("leaid")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@user_errors
def show(leaid, as_json, dsn):
    """One district's values, averages, deltas, tiers and trends."""
    try:
        key = report.normalise_leaid(leaid)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="LEAID") from exc
    with open_db(dsn) as conn:
        try:
            profile = report.district_profile(conn, key)
        except report.NotFound as exc:
            raise click.ClickException(str(exc)) from exc
    if as_json:
        _json(profile)
    else:
        report.render_profile(profile, _console())


@click.command("states")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@user_errors
def states(as_json, dsn):
    """State and national averages (states with districts, and the US row)."""
    with open_db(dsn) as conn:
        rows = report.state_summary(conn)
    if as_json:
        _json(rows)
    else:
        report.render_states(rows, _console())


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@user_errors
def status(as_json, dsn):
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
        _json({**st, "jobs": jobs, "cron_note": note})
    else:
        report.render_status(st, jobs, note, _console())


@click.command("schedule")
@click.option("--cron", "cron_expr", default="0 6 * * *", show_default=True,
              help="When to run, in cron syntax (pg_cron evaluates it in GMT).")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@click.option("--keep-days", default=30, show_default=True, type=click.IntRange(min=0),
              help="Also schedule a daily cleanup of this job's run history older than N days (0: none).")
@dsn_option
@user_errors
def schedule_cmd(cron_expr, name, keep_days, dsn):
    """Create or update the pg_cron job running SELECT compute_all_benchmarks()."""
    info = cron.schedule(resolve_dsn(dsn), cron_expr, name=name, keep_days=keep_days or None)
    where = ("" if info["cron_database"] == info["database"]
             else f" (pg_cron lives in {info['cron_database']!r})")
    click.echo(f"scheduled job {name!r} (id {info['job_id']}): '{cron_expr}' in database "
               f"{info['database']!r}{where}")


@click.command("unschedule")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@dsn_option
@user_errors
def unschedule_cmd(name, dsn):
    """Remove the pg_cron job (quiet when there is none)."""
    if cron.unschedule(resolve_dsn(dsn), name=name):
        click.echo(f"removed job {name!r}")


@click.command("jobs")
@click.option("--name", default=cron.JOB_NAME, show_default=True, help="pg_cron job name.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@dsn_option
@user_errors
def jobs_cmd(name, as_json, dsn):
    """List the job and its last runs (cron.job_run_details)."""
    found = cron.jobs(resolve_dsn(dsn), name=name)
    if as_json:
        _json(found)
        return
    if not found:
        click.echo(f"no job named {name!r}")
        sys.exit(0)
    console = _console()
    for j in found:
        console.print(f"[bold]{j['jobname']}[/] id {j['jobid']}  '{j['schedule']}'  in {j['database']}  "
                      f"{'active' if j['active'] else 'inactive'}\n  {j['command']}")
        for r in j["runs"]:
            took = (r["end_time"] - r["start_time"]).total_seconds() if r["end_time"] and r["start_time"] else None
            console.print(f"  {r['start_time']:%Y-%m-%d %H:%M:%S}  {r['status']:<9} "
                          f"{'%.1fs' % took if took is not None else ''}  {r['return_message'] or ''}")


COMMANDS = [compute, show, states, status, schedule_cmd, unschedule_cmd, jobs_cmd]


def make_run_command(ingest_cmd: click.Command) -> click.Command:
    """`run`, the main job: migrate, ingest (with all of ingest's options), compute, then a short summary."""
    params = [p for p in ingest_cmd.params if p.name != "compute"]

    @click.pass_context
    @user_errors
    def run(ctx, **kwargs):
        dsn = kwargs.get("dsn")
        conninfo = resolve_dsn(dsn)
        kwargs["dsn"] = conninfo or dsn
        click.echo("== migrate", err=True)
        ctx.invoke(migrate_cmd, dsn=kwargs["dsn"])
        click.echo("== ingest", err=True)
        ingest_failed = False
        try:
            ctx.invoke(ingest_cmd, compute=False, **kwargs)
        except click.exceptions.Exit as exc:
            if exc.exit_code:
                ingest_failed = True  # some slices failed; the others landed and are worth computing
            else:
                raise
        click.echo("== compute", err=True)
        console = _console()
        render_summary(run_compute(conninfo, []), console)
        with connect(conninfo) as conn:
            report.render_states(report.state_summary(conn), console)
        if ingest_failed:
            raise click.ClickException("some slices failed to load (listed above); benchmarks were computed from "
                                       "what landed. Run the same command again to retry them.")

    return click.Command(
        "run", callback=run, params=params,
        help="The main job: migrate, ingest (same options as `ingest`), compute_all_benchmarks(), and a "
             "summary of the states. Resumable: rerun after a failure and finished slices are skipped.")
