"""district-benchmarks: load the Urban Institute Education Data API into PostgreSQL and run the benchmark functions.

Versions. `__version__` is the version of this Python package (pyproject.toml reads it from here).
`SQL_VERSION` is the version of the SQL function set the package ships, as `benchmarks_version()` returns it
once `district-benchmarks migrate` has installed it (db/functions/benchmarks_version.sql is its source; a test
keeps the two equal). Each package release ships exactly one SQL version; the SQL version follows its own
semantic-versioning rules (see that file's header), so a package release may leave it unchanged.
"""

__version__ = "0.2.0"
SQL_VERSION = "1.3.0"
