"""Engine benchmark: compute_all_benchmarks() on the national synthetic dataset, against the original design.

    python -m bench.bench_engine [--dsn ADMIN_DSN] [--seed 1] [--scale 1.0] [--repeat 3] [--original PATH]
                                 [--explain] [--keep]

Creates a fresh database (on the server of --dsn, which must allow CREATE DATABASE, else on the test harness's
throwaway server: no setup needed), migrates it, loads `bench/generate.py`'s dataset, then prints:

1. `compute_all_benchmarks()` on the first run (and the best of --repeat runs from the same empty state);
2. a rerun on unchanged data: time, and the rows it wrote (pg_stat_user_tables n_tup_upd / n_tup_hot_upd
   deltas, read after the computing backend has flushed its statistics and exited);
   2b. the peer step when features change: one district's child poverty moves (then back), and every eligible
   district's moves (then back), each followed by compute_all_benchmarks(false): steps.peer_groups.ms;
3. `compute_all_benchmarks(false)` recomputing every row (every benchmark column and state average nulled
   first, untimed), best of --repeat, with the per-step figures of the summary;
4. the original design's statements (--original, read at run time, never copied here) on the same database
   in the same state, run by `psql -v ON_ERROR_STOP=1` inside BEGIN/ROLLBACK, best of --repeat. The
   original aborts on the first value that does not fit its column; when it does, that is reported and
   both designs are also timed on a copy of the database without the generator's overflow districts
   (clearly labelled);
5. the ratio original / ours;
6. with --verify: every district column and state average compared with tests/reference_model.py;
7. with --explain: EXPLAIN (ANALYZE, BUFFERS) of every statement inside the slowest step, via auto_explain
   (needs a superuser; otherwise the manual steps are printed).

Timings are wall-clock seconds measured by the client. Figures are noisy on a shared machine; compare the
best of several runs.
"""
from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import psycopg

from bench import generate
from loader.migrate import migrate
from loader.paths import REPO_ROOT
from tests import harness, reference_model
from tests.reference_model import BENCHMARK_COLUMNS, CURRENT_COLUMNS, PEER_COLUMNS, STATE_COLUMNS

# The baseline: the first design's row-by-row SQL script, kept outside this repository (read, never copied).
DEFAULT_ORIGINAL = Path(os.environ.get("DISTRICT_BENCHMARKS_BASELINE_SQL",
                                       REPO_ROOT.parent / "shared" / "baseline" / "original_design.sql"))
STEP_FUNCTIONS = {  # summary step key -> (function, the columns it owns: nulled so that it rewrites every row)
    "current_values": ("compute_current_values", "districts", CURRENT_COLUMNS),
    "state_averages": ("compute_state_averages", "states", STATE_COLUMNS),
    "district_trends": ("compute_district_trends", "districts",
                        tuple(c for c in BENCHMARK_COLUMNS if c in ("swd_pct", "ell_pct") or c.endswith("_3yr"))),
    "deltas_quartiles": ("compute_deltas_quartiles", "districts",
                         tuple(c for c in BENCHMARK_COLUMNS if "_vs_" in c or c.endswith("_quartile_state"))),
    "peer_groups": ("compute_peer_groups", "districts", PEER_COLUMNS),
}


def say(msg: str = "") -> None:
    print(msg, flush=True)


def nulls(columns) -> str:
    return ", ".join(f"{c} = NULL" for c in columns)


# -- database helpers --------------------------------------------------------------------------------------

def execute(db: str, *statements: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def reset(db: str, current_too: bool = False) -> None:
    """Make every row need recomputation: null every benchmark column, peer difference and state average
    (untimed). The peer groups stay: their features come back unchanged, so the peer step skips the search and
    rewrites only the differences."""
    cols = BENCHMARK_COLUMNS + PEER_COLUMNS + (CURRENT_COLUMNS if current_too else ())
    execute(db, f"UPDATE districts SET {nulls(cols)}",
            f"UPDATE states SET {nulls(STATE_COLUMNS)}, aggregates_updated_at = NULL",
            "VACUUM ANALYZE districts", "VACUUM ANALYZE states", "CHECKPOINT")


def write_stats(db: str) -> dict[str, tuple[int, int]]:
    """{table: (n_tup_upd, n_tup_hot_upd)} as the statistics system has them now; for district_peers the first
    figure counts inserts and deletes too."""
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return {r[0]: (r[1], r[2]) for r in conn.execute(
            "SELECT relname, n_tup_upd + CASE WHEN relname = 'district_peers' THEN n_tup_ins + n_tup_del ELSE 0 END, "
            "       n_tup_hot_upd FROM pg_stat_user_tables "
            "WHERE relname IN ('districts', 'states', 'district_peers')")}


def wait_gone(db: str, pid: int, timeout: float = 15.0) -> None:
    """Wait until backend `pid` has exited (a backend flushes its pending statistics when it exits)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
            if time.monotonic() > deadline:
                raise RuntimeError(f"backend {pid} did not exit within {timeout} s")
            time.sleep(0.05)


def stats_delta(before: dict, after: dict) -> str:
    parts = []
    for table in ("districts", "states", "district_peers"):
        if table not in after:
            continue
        upd = after[table][0] - before.get(table, (0, 0))[0]
        hot = after[table][1] - before.get(table, (0, 0))[1]
        parts.append(f"{table} {upd:,} {'written' if table == 'district_peers' else 'updated'} ({hot:,} HOT)")
    return ", ".join(parts)


def timed_compute(db: str, refresh: bool) -> tuple[float, dict, str]:
    """(seconds, summary, rows written) of one compute_all_benchmarks(refresh) on its own connection."""
    before = write_stats(db)
    with psycopg.connect(db, autocommit=True) as conn:
        pid = conn.info.backend_pid
        started = time.perf_counter()
        summary = conn.execute("SELECT compute_all_benchmarks(%s)", (refresh,)).fetchone()[0]
        seconds = time.perf_counter() - started
        conn.execute("SELECT pg_stat_force_next_flush()")
    wait_gone(db, pid)
    return seconds, summary, stats_delta(before, write_stats(db))


def run_original(db: str, original: Path) -> tuple[float, bool, str, str]:
    """(seconds, ok, error line, rows written) of the original design inside BEGIN/ROLLBACK, via psql."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write("BEGIN;\n\\i '" + str(original).replace("'", "\\'") + "'\nROLLBACK;\n")
        wrapper = fh.name
    env = dict(os.environ, **harness.pg_env(db))
    before = write_stats(db)
    try:
        started = time.perf_counter()
        proc = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", wrapper],
                              env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    finally:
        os.unlink(wrapper)
    time.sleep(0.2)
    deadline = time.monotonic() + 5
    after = write_stats(db)
    while after == before and time.monotonic() < deadline:   # psql's backend may still be flushing on exit
        time.sleep(0.1)
        after = write_stats(db)
    error = next((ln for ln in proc.stderr.splitlines() if "ERROR" in ln), proc.stderr.strip()[:200])
    return seconds, proc.returncode == 0, error, stats_delta(before, after)


def verify_against_model(db: str) -> None:
    """Compare every district column and state average with tests/reference_model.py on this dataset."""
    started = time.perf_counter()
    hcols = ("leaid", "year", "source") + reference_model.HISTORY_VALUE_COLUMNS
    dcols = CURRENT_COLUMNS + BENCHMARK_COLUMNS
    with psycopg.connect(db) as conn:
        history = [dict(zip(hcols, r)) for r in conn.execute(f"SELECT {', '.join(hcols)} FROM district_data_history")]
        districts = conn.execute(f"SELECT leaid, state_fips, {', '.join(dcols)} FROM districts").fetchall()
        states = conn.execute(f"SELECT fips, {', '.join(STATE_COLUMNS)} FROM states").fetchall()
        # the peer groups are left out (the model's search is quadratic: tests/test_engine_reference.py compares
        # them on smaller data), so are their out-of-range values
        oor = conn.execute("SELECT (details->>'out_of_range')::int "
                           "       - coalesce((details->'steps'->'peer_groups'->>'out_of_range')::int, 0) "
                           "  FROM data_refresh_logs "
                           "WHERE data_source = 'compute_benchmarks' ORDER BY id DESC LIMIT 1").fetchone()[0]
    expected = reference_model.compute_all(history, [{"leaid": r[0], "state_fips": r[1]} for r in districts],
                                           [r[0] for r in states], peers=False)
    diffs = [f"district {r[0]}.{c}: SQL {got!r}, model {expected.districts[r[0]][c]!r}"
             for r in districts for c, got in zip(dcols, r[2:]) if got != expected.districts[r[0]][c]]
    diffs += [f"state {r[0]}.{c}: SQL {got!r}, model {expected.states[r[0]][c]!r}"
              for r in states for c, got in zip(STATE_COLUMNS, r[1:]) if got != expected.states[r[0]][c]]
    say(f"  {len(districts) * len(dcols) + len(states) * len(STATE_COLUMNS):,} values compared with the reference "
        f"model in {time.perf_counter() - started:.1f} s: {len(diffs)} differences; out_of_range SQL {oor}, "
        f"model {expected.out_of_range}")
    for line in diffs[:20]:
        say("    " + line)


def steps_line(summary: dict) -> str:
    return "; ".join(f"{name} {s.get('ms')} ms, {s.get('rows_changed'):,} rows, {s.get('out_of_range')} out of range"
                     for name, s in (summary.get("steps") or {}).items())


# -- the benchmark -----------------------------------------------------------------------------------------

def bench_ours_recompute(db: str, repeat: int, label: str) -> tuple[float, dict]:
    best, best_summary = float("inf"), {}
    for i in range(repeat):
        reset(db)
        seconds, summary, written = timed_compute(db, refresh=False)
        say(f"  {label} run {i + 1}: {seconds:.3f} s (engine duration_ms {summary.get('duration_ms')}); "
            f"wrote {written}")
        if seconds < best:
            best, best_summary = seconds, summary
    return best, best_summary


def bench_original(db: str, original: Path, repeat: int, label: str) -> tuple[float | None, str]:
    best = None
    for i in range(repeat):
        reset(db)
        seconds, ok, error, written = run_original(db, original)
        if not ok:
            say(f"  {label} run {i + 1}: ABORTED after {seconds:.3f} s: {error}")
            return None, error
        say(f"  {label} run {i + 1}: {seconds:.3f} s (psql wall clock, rolled back); wrote {written}")
        best = seconds if best is None else min(best, seconds)
    return best, ""


ELIGIBLE = ("enrollment > 0 AND children_poverty_percent >= 1 AND ell_pct >= 0 AND swd_pct >= 0")


def bench_peer_changes(db: str, repeat: int) -> None:
    """The peer step after a feature change: one district's child poverty moves by 0.1 point (and back), then
    every eligible district's by -0.5..0.5 point (and back). Each change is followed by a timed
    compute_all_benchmarks(false), which keeps the changed current value."""
    with psycopg.connect(db, autocommit=True) as conn:
        one = conn.execute(f"SELECT leaid FROM districts WHERE {ELIGIBLE} ORDER BY leaid "
                           f"OFFSET (SELECT count(*) / 2 FROM districts WHERE {ELIGIBLE}) LIMIT 1").fetchone()[0]
    figures = []
    for i in range(2 * max(repeat, 1)):
        step = "+ 0.1" if i % 2 == 0 else "- 0.1"
        execute(db, f"UPDATE districts SET children_poverty_percent = children_poverty_percent {step} "
                    f"WHERE leaid = '{one}'")
        seconds, summary, written = timed_compute(db, refresh=False)
        peers = summary["steps"]["peer_groups"]
        figures.append(peers["ms"])
        say(f"  one district ({one}) {step}: run {seconds:.3f} s, peer step {peers['ms']} ms, "
            f"{peers['rows_changed']:,} rows; wrote {written}")
    say(f"  one district: peer step best {min(figures)} ms")
    with psycopg.connect(db, autocommit=True) as conn:
        every = [r[0] for r in conn.execute(f"SELECT leaid FROM districts WHERE {ELIGIBLE}")]
    shift = "((abs(hashtext(leaid)) %% 11) - 5) / 10.0"
    for label, sign in (("every district", "+"), ("every district, back", "-")):
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f"UPDATE districts SET children_poverty_percent = children_poverty_percent {sign} {shift} "
                         f"WHERE leaid = ANY(%s)", (every,))
        seconds, summary, written = timed_compute(db, refresh=False)
        peers = summary["steps"]["peer_groups"]
        say(f"  {label}: run {seconds:.3f} s, peer step {peers['ms']} ms, {peers['rows_changed']:,} rows; "
            f"wrote {written}")
    seconds, summary, _ = timed_compute(db, refresh=False)
    say(f"  then a rerun: {seconds:.3f} s, peer step {summary['steps']['peer_groups']['ms']} ms, "
        f"{summary['districts_changed']} district rows changed")


def ratio_line(original: float, ours: float) -> str:
    return f"original {original:.3f} s / ours {ours:.3f} s = {original / ours:.1f}x"


def explain_slowest(db: str, summary: dict, top: int) -> None:
    steps = summary.get("steps") or {}
    if not steps:
        say("  no per-step figures in the summary; nothing to explain")
        return
    step = max(steps, key=lambda k: float(steps[k].get("ms") or 0))
    function, table, columns = STEP_FUNCTIONS[step]
    say(f"\n== EXPLAIN (ANALYZE, BUFFERS) of the statements inside the slowest step: {step} ({function}) ==")
    notices: list[str] = []
    # So that the step rewrites every row. Committed first: rows updated earlier in the same transaction
    # would make every later UPDATE fire the foreign-key check trigger, which a real run does not.
    execute(db, f"UPDATE {table} SET {nulls(columns)}", f"VACUUM ANALYZE {table}")
    with psycopg.connect(db) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        try:
            conn.execute("LOAD 'auto_explain'")
        except psycopg.Error as exc:
            conn.rollback()
            execute(db, "SELECT compute_all_benchmarks(false)")
            say(f"  auto_explain is not available here ({str(exc).strip().splitlines()[0]}). Manually, as a "
                f"superuser in psql:\n    UPDATE {table} SET <its columns> = NULL;  -- committed on its own\n"
                "    BEGIN; LOAD 'auto_explain';\n"
                "    SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;\n"
                "    SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;\n"
                f"    SET auto_explain.log_level = notice; SELECT {function}(); ROLLBACK;")
            return
        for setting in ("log_min_duration = 0", "log_analyze = on", "log_buffers = on", "log_timing = on",
                        "log_nested_statements = on", "log_level = notice"):
            conn.execute(f"SET LOCAL auto_explain.{setting}")
        conn.execute("SET LOCAL client_min_messages = notice")
        conn.execute(f"SELECT {function}()")
        conn.rollback()
    execute(db, "SELECT compute_all_benchmarks(false)")   # leave the database computed
    plans = []
    for text in notices:
        m = re.match(r"duration: ([0-9.]+) ms", text)
        if m and f"SELECT {function}()" not in text.split("\n", 2)[1]:
            plans.append((float(m.group(1)), text))
    plans.sort(key=lambda p: -p[0])
    say(f"  {len(plans)} statements; the {min(top, len(plans))} slowest:")
    for _, text in plans[:top]:
        say("\n" + text)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--dsn", metavar="ADMIN_DSN",
              help="an existing server (a role that may CREATE DATABASE); default: the test harness's throwaway "
                   "server (or $DISTRICT_BENCHMARKS_TEST_DSN)")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True, help="fraction of the ~19,000 districts")
@click.option("--repeat", type=int, default=3, show_default=True, help="timed runs per figure (best is kept)")
@click.option("--original", "original", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_ORIGINAL, show_default=True, help="the original design's SQL (read, never copied)")
@click.option("--explain", is_flag=True, help="print EXPLAIN (ANALYZE, BUFFERS) of the slowest step's statements")
@click.option("--top", type=int, default=8, show_default=True, help="with --explain: how many plans to print")
@click.option("--verify", is_flag=True, help="compare the engine's results with tests/reference_model.py")
@click.option("--keep", is_flag=True, help="keep the benchmark databases (with --dsn)")
def main(dsn, seed, scale, repeat, original, explain, top, verify, keep) -> None:
    """Time compute_all_benchmarks() on the national synthetic dataset against the original design."""
    if not original.is_file():
        raise click.ClickException(f"original design SQL not found: {original} (pass --original PATH)")
    server = contextlib.nullcontext(dsn) if dsn else harness.server()
    with server as admin:
        made: list[str] = []
        try:
            run(admin, made, seed, scale, repeat, original, explain, top, verify)
        finally:
            if not keep:
                for name in made:
                    harness.drop_database(admin, name)
            elif made:
                say(f"kept databases: {', '.join(made)}")


def run(admin, made, seed, scale, repeat, original, explain, top, verify) -> None:
    name = harness.create_database(admin, "dbench_bench")
    made.append(name)
    db = harness.with_dbname(admin, name)
    with psycopg.connect(db, autocommit=True) as conn:
        migrate(conn)
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
            "'shared_buffers', 'work_mem', 'max_parallel_workers_per_gather')").fetchall())
    say(f"== district-benchmarks engine benchmark: PostgreSQL {server_version}, {os.cpu_count()} CPUs, "
        f"settings {settings} ==")

    loaded = generate.load(db, seed, scale)
    with psycopg.connect(db, autocommit=True) as conn:
        size = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
        version = conn.execute("SELECT benchmarks_version()").fetchone()[0]
    say(f"dataset: seed {seed}, scale {scale}: {loaded.summary()}; database {size}; "
        f"benchmarks_version {version}")
    execute(db, "VACUUM ANALYZE")

    say("\n== 1. compute_all_benchmarks() from an empty state (first run; then again from a reset state) ==")
    firsts = []
    for i in range(repeat):
        if i:
            reset(db, current_too=True)
        seconds, summary, written = timed_compute(db, refresh=True)
        firsts.append(seconds)
        say(f"  run {i + 1}{' (first run)' if i == 0 else ''}: {seconds:.3f} s; states_changed "
            f"{summary['states_changed']}, districts_changed {summary['districts_changed']:,}, out_of_range "
            f"{summary['out_of_range']}; wrote {written}")
        if i == 0:
            say(f"    steps: {steps_line(summary)}")
    say(f"  first run {firsts[0]:.3f} s, best {min(firsts):.3f} s")
    if verify:
        verify_against_model(db)

    say("\n== 2. rerun on unchanged data ==")
    reruns = []
    for i in range(repeat):
        seconds, summary, written = timed_compute(db, refresh=True)
        reruns.append(seconds)
        say(f"  run {i + 1}: {seconds:.3f} s; states_changed {summary['states_changed']}, districts_changed "
            f"{summary['districts_changed']}; wrote {written}")
    say(f"  best {min(reruns):.3f} s; steps of the last: {steps_line(summary)}")

    say("\n== 2b. the peer step when features change (compute_all_benchmarks(false) after each change) ==")
    bench_peer_changes(db, repeat)

    say("\n== 3. compute_all_benchmarks(false) recomputing every row (all benchmark columns nulled first) ==")
    ours, ours_summary = bench_ours_recompute(db, repeat, "ours")
    say(f"  best {ours:.3f} s; its steps: {steps_line(ours_summary)}")

    say(f"\n== 4. the original design's statements ({original}), same database, same state ==")
    orig, error = bench_original(db, original, repeat, "original")
    say("\n== 5. result ==")
    if orig is not None:
        say("  " + ratio_line(orig, ours))
    else:
        say(f"  the original design ABORTS on this dataset ({error}): one value that does not fit its column "
            f"fails its whole run, where ours stores NULL and counts it ({ours_summary.get('out_of_range')} "
            f"out_of_range).")
        copy = harness.create_database(admin, "dbench_bench_nooverflow", template=name)
        made.append(copy)
        cdb = harness.with_dbname(admin, copy)
        leaids = sorted(loaded.overflow_leaids)
        with psycopg.connect(cdb, autocommit=True) as conn:
            conn.execute("DELETE FROM district_data_history WHERE leaid = ANY(%s)", (leaids,))
            conn.execute("DELETE FROM districts WHERE leaid = ANY(%s)", (leaids,))
            conn.execute("VACUUM ANALYZE")
        timed_compute(cdb, refresh=True)   # current values and benchmarks of the copy, consistent
        say(f"\n== 5b. COPY WITHOUT THE {len(leaids)} OVERFLOW DISTRICTS (database {copy}) ==")
        c_ours, c_summary = bench_ours_recompute(cdb, repeat, "ours (no-overflow copy)")
        say(f"  best {c_ours:.3f} s; its steps: {steps_line(c_summary)}")
        c_orig, c_error = bench_original(cdb, original, repeat, "original (no-overflow copy)")
        if c_orig is None:
            say(f"  the original still aborts without the overflow districts: {c_error}")
        else:
            say("  no-overflow copy, both designs on the same data: " + ratio_line(c_orig, c_ours))
            say("  (for reference) original on the copy vs ours on the full dataset: " + ratio_line(c_orig, ours))

    if explain:
        explain_slowest(db, ours_summary, top)


if __name__ == "__main__":
    sys.exit(main())
