"""Where the package's files are: the SQL it installs and the bundled offline sample.

The SQL's one copy in the repository is db/ (db/migrations, db/functions). A wheel carries it inside the
package as loader/sql/ (pyproject.toml maps the package loader.sql to db/), so an installed tool finds it
there; a source checkout or an editable install finds db/ beside loader/.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def db_dir() -> Path:
    """The directory holding migrations/ and functions/ (override with DISTRICT_BENCHMARKS_DB_DIR)."""
    env = os.environ.get("DISTRICT_BENCHMARKS_DB_DIR")
    if env:
        return Path(env)
    packaged = PACKAGE_DIR / "sql"
    if (packaged / "migrations").is_dir():
        return packaged
    return REPO_ROOT / "db"


def migrations_dir() -> Path:
    return db_dir() / "migrations"


def functions_dir() -> Path:
    return db_dir() / "functions"


def sample_dir() -> Path:
    """The bundled offline sample (pages in the --save-raw layout; see tests/make_sample.py)."""
    return PACKAGE_DIR / "sample_data"
