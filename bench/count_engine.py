r"""Instruction counts of compute_all_benchmarks(): a repeatable A/B of engine changes. Prints figures.

    .venv/bin/python -m bench.count_engine [--rev HEAD] [--seed 1] [--scale 1.0] [--rerun] [--original [PATH]]

Wall-clock times on a shared 2-vCPU machine move by ±15 % between runs, more than most single changes to the
SQL are worth. Instruction counts do not move: the same functions on the same data count the same to the last
instruction. This script:

1. builds a throwaway local cluster (loader/localpg.py), loads bench/generate.py's national dataset and runs
   compute_all_benchmarks() once; keeps a copy of the data directory for "rerun on unchanged data", then nulls
   every benchmark column and state average (as bench_engine.py does) for "full recompute";
2. for each arm — the function files of git revision --rev, and those of the working tree — copies the data
   directory, installs the arm's db/functions/*.sql through a temporary postmaster (autovacuum off, so that
   both arms plan with the same statistics), then runs `SELECT compute_all_benchmarks(false)` in a
   single-user backend under valgrind's callgrind, counting only the function itself
   (--toggle-collect=plpgsql_call_handler);
3. prints both counts and their difference (full recompute; with --rerun also the rerun);
4. with --original, also counts the original design's statements (bench_engine.DEFAULT_ORIGINAL, read at run
   time) inside BEGIN/ROLLBACK on a copy of the same full-recompute state, and prints the ratio original ÷
   working tree: the speed-up measured in work done, free of the machine's noise. The original aborts
   on a value that does not fit its column, so with --original the dataset's overflow districts are deleted
   first (as bench_engine.py's no-overflow copy does), for both designs. Its psql `\gset` variables are
   evaluated on the loaded database and substituted; statements are counted from the executor on
   (PortalRun), so its parse and plan time is left out — ours includes the planning of its statements.

Needs valgrind (Debian package `valgrind`); each count takes about a minute (callgrind runs ~50× slower), and
the two arms run side by side; the original takes about five minutes. Instructions are not seconds — cache
misses and I/O are not in them — so confirm a change with bench_engine.py too; but they tell a 1 % change from
noise.
"""
from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import psycopg

from bench import generate
from bench.bench_engine import DEFAULT_ORIGINAL, reset
from loader.localpg import LocalCluster
from loader.migrate import migrate
from loader.paths import REPO_ROOT, functions_dir

DB = "count_engine"
COMPUTE = "BEGIN;\n\nSELECT compute_all_benchmarks(false)->>'districts_written';\n\nROLLBACK;\n\n"


def function_files(rev: str | None) -> dict[str, str]:
    """db/functions/*.sql of a git revision (None: the working tree), by name."""
    if rev is None:
        return {p.name: p.read_text() for p in sorted(functions_dir().glob("*.sql"))}
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "db/functions/"], cwd=REPO_ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    return {Path(n).name: subprocess.run(["git", "show", f"{rev}:{n}"], cwd=REPO_ROOT, check=True,
                                         capture_output=True, text=True).stdout
            for n in sorted(names) if n.endswith(".sql")}


def _copy_state(cluster: LocalCluster, state: Path, work: Path) -> Path:
    """A private copy of the data directory `state` under `work` (owned by the server's OS user)."""
    data = work / "data"
    shutil.copytree(state, data, symlinks=True)
    if cluster.user:
        subprocess.run(["chown", "-R", cluster.user, str(work)], check=True)
    return data


def _callgrind(cluster: LocalCluster, data: Path, work: Path, toggle: str, script: str, what: str,
               *settings: str) -> tuple[int, str]:
    """Run `script` in a single-user backend on `data` under callgrind, counting inside `toggle`.
    -> (instructions, the backend's stdout)."""
    out = work / "callgrind.out"
    opts = [a for kv in ("shared_preload_libraries=", "max_parallel_workers_per_gather=0") + settings
            for a in ("-c", kv)]
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no",
         f"--toggle-collect={toggle}", str(cluster.bindir / "postgres"), "--single", "-j", "-D", str(data),
         *opts, DB],
        input=script, user=cluster.user, capture_output=True, text=True, cwd=work)
    if "ERROR" in run.stderr or run.returncode:
        raise RuntimeError(f"single-user run of {what} failed: {run.stderr.strip()[-500:]}")
    return int(re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M).group(1)), run.stdout


def count(cluster: LocalCluster, state: Path, files: dict[str, str], work: Path, port: int) -> tuple[int, str]:
    """Instructions of one compute_all_benchmarks(false) on a copy of `state` with `files` installed.
    -> (instructions, districts written)."""
    data = _copy_state(cluster, state, work)
    bin_ = cluster.bindir
    opts = f"-p {port} -k {work} -c autovacuum=off -c shared_preload_libraries=''"
    subprocess.run([str(bin_ / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(work / "log"), "-w", "start"],
                   user=cluster.user, check=True, capture_output=True)
    try:
        with psycopg.connect(host=str(work), port=port, user="postgres", dbname=DB, autocommit=True) as conn:
            for text in files.values():
                conn.execute(text)
    finally:
        subprocess.run([str(bin_ / "pg_ctl"), "-D", str(data), "-w", "stop"], user=cluster.user, check=True,
                       capture_output=True)
    total, stdout = _callgrind(cluster, data, work, "plpgsql_call_handler", COMPUTE, "compute_all_benchmarks()")
    written = re.search(r'= "(\d+)"', stdout)
    return total, written.group(1) if written else "?"


def original_script(path: Path, conn: psycopg.Connection) -> str:
    """The original design's psql script as input for a single-user backend: its `\\gset` queries evaluated on
    `conn` and their variables substituted, comments dropped, each statement ended by ';' and a blank line, all
    inside BEGIN/ROLLBACK."""
    values: dict[str, str] = {}
    lines = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("--"):
            continue
        if text.endswith("\\gset"):
            query = text[: -len("\\gset")]
            cur = conn.execute(query)
            row = cur.fetchone()
            values.update({col.name: "NULL" if v is None else str(v) for col, v in zip(cur.description, row)})
            text = query + ";"
        elif text.startswith("\\"):
            raise click.ClickException(f"{path}: psql meta-command not supported here: {text}")
        lines.append(text)
    script = "\n".join(lines)
    for name, value in values.items():
        script = re.sub(rf"(?<!:):{name}\b", value, script)
    if re.search(r"(?<!:):[a-z_]+\b", script):
        raise click.ClickException(f"{path}: a psql variable is left unresolved")
    statements = [st.strip() for st in re.split(r";\s*$", script, flags=re.M) if st.strip()]
    return "BEGIN;\n\n" + "".join(st + ";\n\n" for st in statements) + "ROLLBACK;\n\n"


def count_original(cluster: LocalCluster, state: Path, script: str, work: Path) -> int:
    """Instructions of the original design's statements (from the executor on) on a copy of `state`."""
    data = _copy_state(cluster, state, work)
    return _callgrind(cluster, data, work, "PortalRun", script, "the original", "jit=off")[0]


def arms(cluster: LocalCluster, state: Path, tmp: Path, base: dict, mine: dict, label: str) -> int:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(count, cluster, state, files, tmp / f"{state.name}-arm{i}", cluster.port + 1 + i)
                for i, files in enumerate((base, mine))]
        (a, wa), (b, wb) = (j.result() for j in jobs)
    print(f"{label}: base {a / 1e6:,.1f} M instructions ({wa} district rows written), working tree "
          f"{b / 1e6:,.1f} M ({wb}): {100 * (b - a) / a:+.2f} %", flush=True)
    return b


@click.command(help=__doc__.split("\n\n")[0])
@click.option("--rev", default="HEAD", show_default=True, help="git revision of the base arm's function files")
@click.option("--seed", default=1, show_default=True)
@click.option("--scale", default=1.0, show_default=True)
@click.option("--rerun", is_flag=True, help="also count a rerun on unchanged data")
@click.option("--original", type=click.Path(dir_okay=False, exists=True, path_type=Path), is_flag=False,
              flag_value=DEFAULT_ORIGINAL, default=None,
              help=f"also count the original design's statements (bare flag: {DEFAULT_ORIGINAL})")
def main(rev: str, seed: int, scale: float, rerun: bool, original: Path | None) -> None:
    if not shutil.which("valgrind"):
        raise click.ClickException("valgrind is not installed (apt-get install valgrind)")
    base, mine = function_files(rev), function_files(None)
    with tempfile.TemporaryDirectory(prefix="count-engine-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)
        cluster = LocalCluster(tmp / "pg", port=5499, fast_unsafe=True, preload_cron=False)
        cluster.init()
        cluster.start()
        try:
            admin = cluster.conninfo()
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DB}")
            db = cluster.conninfo(DB)
            with psycopg.connect(db, autocommit=True) as conn:
                migrate(conn)
            loaded = generate.load(db, seed, scale)
            print(f"dataset: {loaded.summary()}", flush=True)
            with psycopg.connect(db, autocommit=True) as conn:
                if original:
                    leaids = sorted(loaded.overflow_leaids)
                    conn.execute("DELETE FROM district_data_history WHERE leaid = ANY(%s)", (leaids,))
                    conn.execute("DELETE FROM districts WHERE leaid = ANY(%s)", (leaids,))
                    print(f"--original: the {len(leaids)} overflow districts deleted (the original aborts on them)",
                          flush=True)
                conn.execute("VACUUM ANALYZE")
                conn.execute("SELECT compute_all_benchmarks()")
                conn.execute("CHECKPOINT")
            states = {}
            if rerun:
                cluster.stop()
                states["rerun on unchanged data"] = tmp / "state-rerun"
                shutil.copytree(cluster.datadir, states["rerun on unchanged data"], symlinks=True)
                cluster.start()
            reset(db)
            script = None
            if original:
                with psycopg.connect(db, autocommit=True) as conn:
                    script = original_script(original, conn)
            cluster.stop()
            states["full recompute"] = tmp / "state-full"
            shutil.copytree(cluster.datadir, states["full recompute"], symlinks=True)
            print(f"base: db/functions at {rev}; counting compute_all_benchmarks(false) under callgrind "
                  f"(about a minute per count)", flush=True)
            counted = {label: arms(cluster, state, tmp, base, mine, label)
                       for label, state in sorted(states.items())}
            if script:
                print(f"counting the original design's statements ({original}; about five minutes)", flush=True)
                orig = count_original(cluster, states["full recompute"], script, tmp / "original")
                ours = counted["full recompute"]
                print(f"original design: {orig / 1e6:,.1f} M instructions; working tree (full recompute) "
                      f"{ours / 1e6:,.1f} M: original / ours = {orig / ours:.2f}x", flush=True)
        finally:
            if cluster.running():
                cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
