"""Where the SQL lives. The package is installed editable from the repository, so db/ sits beside loader/."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def db_dir() -> Path:
    """The db/ directory (override with DISTRICT_BENCHMARKS_DB_DIR)."""
    return Path(os.environ.get("DISTRICT_BENCHMARKS_DB_DIR", REPO_ROOT / "db"))


def migrations_dir() -> Path:
    return db_dir() / "migrations"


def functions_dir() -> Path:
    return db_dir() / "functions"
