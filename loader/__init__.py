"""district-benchmarks: load the Urban Institute Education Data API into PostgreSQL and run the benchmark functions."""

__version__ = "0.1.0"
