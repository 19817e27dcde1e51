"""The main job, `district-benchmarks run`: migrate, ingest, compute_all_benchmarks(), then the states' figures.

Slices that fail to load do not stop the job: the benchmarks are computed from what landed, and the outcome
lists the failures (a rerun fetches only them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from . import report
from .compute import DEFAULT_LOCK_WAIT, run_compute
from .db import connect
from .ingest import IngestOutcome, IngestProgress, IngestRequest, run_ingest
from .migrate import MigrateResult, migrate


class RunProgress(IngestProgress, Protocol):
    """What run_pipeline() reports besides the ingest's progress."""

    def stage(self, name: str) -> None:
        """A stage starts: migrate, ingest or compute."""

    def note(self, text: str) -> None:
        """A line worth showing (a migration applied, a warning)."""


@dataclass
class RunOutcome:
    migrated: MigrateResult
    ingested: IngestOutcome
    summary: dict                 # compute_all_benchmarks()'s run summary
    states: list[dict]            # report.state_summary()

    def as_dict(self) -> dict:
        """The outcome as plain data (`run --json`)."""
        return {"migrate": {"applied": self.migrated.applied, "functions_changed": self.migrated.functions_changed,
                            "sql_version": self.migrated.sql_version, "warnings": self.migrated.warnings},
                "ingest": self.ingested.as_dict(), "compute": self.summary, "states": self.states}


def run_pipeline(conninfo: str, request: IngestRequest, progress: RunProgress, allow_writable_schema: bool = False,
                 lock_wait: float | None = DEFAULT_LOCK_WAIT) -> RunOutcome:
    progress.stage("migrate")
    with connect(conninfo, autocommit=True) as conn:
        migrated = migrate(conn, echo=progress.note, allow_writable_schema=allow_writable_schema)
    progress.stage("ingest")
    ingested = run_ingest(conninfo, request, progress)
    progress.stage("compute")
    summary = run_compute(conninfo, lock_wait=lock_wait)
    with connect(conninfo) as conn:
        states = report.state_summary(conn)
    return RunOutcome(migrated, ingested, summary, states)
