"""The package as users get it: a wheel installed into a fresh virtualenv works from any directory; the layers go
one way (only loader/cli imports click or rich, no import cycles, every module imports on its own); the versions
agree."""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import loader
from loader import paths

REPO = paths.REPO_ROOT
MODULES = sorted(p.relative_to(REPO).with_suffix("").as_posix().replace("/", ".")
                 for p in (REPO / "loader").rglob("*.py"))
CORE = [m.removesuffix(".__init__") for m in MODULES if not m.startswith("loader.cli") and m != "loader.__main__"]


def _clean_env() -> dict[str, str]:
    """The environment without this checkout on the path and without database settings."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "DATABASE_URL", "DISTRICT_BENCHMARKS_DB_DIR", "VIRTUAL_ENV")
            and not k.startswith("PG")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # sdist first, then the wheel from the unpacked sdist: a clean build, whatever lies in ./build
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, text=True, timeout=600)
    (found,) = out.glob("district_benchmarks-*.whl")
    return found


def test_the_wheel_ships_the_sql_and_the_sample_but_not_the_test_tools(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for sub in ("migrations", "functions"):
        shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith(f"loader/sql/{sub}/")}
        assert shipped == {p.name for p in (REPO / "db" / sub).glob("*.sql")}
    assert any(n.startswith("loader/sample_data/school-districts/") for n in names)
    assert not [n for n in names if re.search(r"synthetic|make_sample|db/tests|/tests/|\.gitkeep", n)]
    assert any(n.endswith("/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_the_installed_wheel_migrates_runs_the_sample_and_shows_a_district(wheel, empty_dsn, tmp_path):
    """pip install of the wheel into a fresh virtualenv, then the three commands, run from outside the checkout."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], capture_output=True, text=True,
                         timeout=600, env=_clean_env())
    assert pip.returncode == 0, pip.stderr[-2000:]
    tool = str(venv / "bin" / "district-benchmarks")
    env = {**_clean_env(), "DATABASE_URL": empty_dsn, "DISTRICT_BENCHMARKS_HOME": str(tmp_path / "unused")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([tool, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)

    migrated = run("migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "applied" in migrated.stdout and f"SQL functions {loader.SQL_VERSION}" in migrated.stdout
    ran = run("run", "--sample")
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "OR" in ran.stdout and "districts_changed" in ran.stdout
    shown = run("show", "4100030", "--json")
    assert shown.returncode == 0, shown.stderr
    profile = json.loads(shown.stdout)
    assert profile["leaid"] == "4100030" and len(profile["metrics"]) == 8
    assert any(m["quartile_state"] for m in profile["metrics"])
    version = run("--version")
    assert loader.__version__ in version.stdout and loader.SQL_VERSION in version.stdout


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_alone_without_click_or_rich(module):
    code = (f"import sys, {module}; bad = [m for m in ('click', 'rich') if m in sys.modules]; "
            f"sys.exit(f'{module} imports ' + ', '.join(bad) if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert res.returncode == 0, res.stderr or res.stdout


def _imports(module: str) -> set[str]:
    """The loader modules `module` imports anywhere in it (relative imports resolved)."""
    path = REPO / (module.replace(".", "/") + ".py")
    package = module.rsplit(".", 1)[0] if not module.endswith("__init__") else module.removesuffix(".__init__")
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):          # imports inside functions too: a deferred import hides a cycle, not breaks it
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n in KNOWN)
    return found - {module, module.removesuffix(".__init__")}


KNOWN = {m.removesuffix(".__init__") for m in MODULES}


def test_no_import_cycles_in_loader():
    graph = {m.removesuffix(".__init__"): _imports(m) for m in MODULES}
    # a package imports its __init__ first: loader.x depends on loader
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert graph["loader.ingest"] and "loader.cli" not in set().union(*(graph[m] for m in CORE))


def test_the_sql_version_and_the_package_agree():
    text = (REPO / "db" / "functions" / "benchmarks_version.sql").read_text()
    assert re.search(r"SELECT '([0-9.]+)'::text", text).group(1) == loader.SQL_VERSION
