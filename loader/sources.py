"""The six sources the loader ingests: the API endpoints behind them (paths, filters, the fields read, the survey
years each has), how their records are cleaned and landed, and what is special about each. Adding a source
means adding its Endpoint and Source here (and its cleaning function in loader/normalize.py).

Years come from the API's own endpoint catalogue (`GET {base}/api-endpoints/`, field `years_available`, e.g.
"1991, 1994&ndash;2020"); FALLBACK_YEARS is the same catalogue as recorded in 2026 and is used when the
catalogue cannot be read or lacks an endpoint.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from . import land
from .normalize import (
    BREAKDOWN_COLUMNS,
    SaipeScale,
    SchoolSums,
    SliceContext,
    assess_rows,
    crdc_school_rows,
    directory_rows,
    finance_rows,
    grad_rows,
    saipe_rows,
    scale_saipe,
)


@dataclass(frozen=True)
class Endpoint:
    """One API route. `path` is relative to the API base and has a {year} placeholder."""

    key: str
    path: str
    catalogue_route: str                        # endpoint_url in /api-endpoints/ (without the /api/v1 prefix)
    fallback_years: str                         # its years_available as recorded (see FALLBACK_YEARS)
    fields: tuple[str, ...]                     # the record fields the cleaning reads; the decoder keeps only these
    filters: tuple[tuple[str, str], ...] = ()   # server-side filters sent with every request
    breakdown: tuple[str, ...] = ()             # breakdown columns of its records: each must be 99 (all students)

    def url_path(self, year: int) -> str:
        return self.path.format(year=year)

    def params(self, fips: str) -> list[tuple[str, str]]:
        """Query parameters of a state's request: fips as the API writes it (6, not 06), then the filters."""
        return [("fips", str(int(fips)))] + list(self.filters)


_WHO = ("leaid", "year", "fips")
# Breakdown columns, from the API's variable lists (the CCD directory and finance and SAIPE have none).
_GRAD_BREAKDOWN = ("race", "lep", "homeless", "disability", "econ_disadvantaged", "foster_care")
_CRDC_BREAKDOWN = ("race", "sex", "disability", "lep", "homeless")

CCD_DIRECTORY = Endpoint(
    "ccd_directory", "school-districts/ccd/directory/{year}/", "school-districts/ccd/directory/{year}/",
    "1986&ndash;2024",
    _WHO + ("enrollment", "spec_ed_students", "english_language_learners", "teachers_total_fte", "lea_name",
            "city_location", "city_mailing", "county_name", "urban_centric_locale", "agency_type"))
CCD_FINANCE = Endpoint(
    "ccd_finance", "school-districts/ccd/finance/{year}/", "school-districts/ccd/finance/{year}/",
    "1991, 1994&ndash;2020", _WHO + ("exp_current_elsec_total", "enrollment_fall_responsible"))
# The grad-rates route has one row per district x subgroup; its subgroup columns are API filters, so only the
# all-students row is requested (and checked again on arrival).
EDFACTS_GRAD = Endpoint(
    "edfacts_grad", "school-districts/edfacts/grad-rates/{year}/", "school-districts/edfacts/grad-rates/{year}/",
    "2010&ndash;2019", _WHO + _GRAD_BREAKDOWN + ("grad_rate_midpt",),
    filters=tuple((c, "99") for c in _GRAD_BREAKDOWN), breakdown=_GRAD_BREAKDOWN)
EDFACTS_ASSESS = Endpoint(
    "edfacts_assess", "school-districts/edfacts/assessments/{year}/grade-99/",
    "school-districts/edfacts/assessments/{year}/{grade_edfacts}/", "2009&ndash;2018, 2020",
    _WHO + BREAKDOWN_COLUMNS + ("math_test_pct_prof_midpt", "read_test_pct_prof_midpt"),
    breakdown=BREAKDOWN_COLUMNS)
# CRDC is published per school only. The race/sex routes carry one row per school x race x sex; the API filters
# on its filter variables, so only the totals rows (race=99, sex=99) are requested. The loader still keeps
# only rows whose every breakdown column is 99, in case a server ignores the filters.
CRDC_ABSENTEEISM = Endpoint(
    "crdc_chronic_absenteeism", "schools/crdc/chronic-absenteeism/{year}/race/sex/",
    "schools/crdc/chronic-absenteeism/{year}/race/sex/", "2013, 2015, 2017, 2020, 2021, 2022",
    _WHO + _CRDC_BREAKDOWN + ("crdc_id", "ncessch", "students_chronically_absent"),
    filters=(("race", "99"), ("sex", "99")), breakdown=_CRDC_BREAKDOWN)
CRDC_ENROLLMENT = Endpoint(
    "crdc_enrollment", "schools/crdc/enrollment/{year}/race/sex/", "schools/crdc/enrollment/{year}/race/sex/",
    "2011, 2013, 2015, 2017, 2020, 2021", _WHO + _CRDC_BREAKDOWN + ("crdc_id", "ncessch", "enrollment_crdc"),
    filters=(("race", "99"), ("sex", "99")), breakdown=_CRDC_BREAKDOWN)
SAIPE = Endpoint(
    "saipe", "school-districts/saipe/{year}/", "school-districts/saipe/{year}/", "1995, 1997, 1999&ndash;2024",
    _WHO + ("est_population_5_17_poverty_pct", "est_population_5_17", "est_population_5_17_poverty"))

ENDPOINTS = (CCD_DIRECTORY, CCD_FINANCE, EDFACTS_GRAD, EDFACTS_ASSESS, CRDC_ABSENTEEISM, CRDC_ENROLLMENT, SAIPE)

# years_available of each endpoint in the API's catalogue (GET /api/v1/api-endpoints/), August 2026: used when
# the catalogue cannot be read or lacks an endpoint.
FALLBACK_YEARS: dict[str, str] = {ep.key: ep.fallback_years for ep in ENDPOINTS}
# The record fields the cleaning reads, by endpoint key (tests/test_normalize.py checks nothing else is read).
RECORD_FIELDS: dict[str, tuple[str, ...]] = {ep.key: ep.fields for ep in ENDPOINTS}

# A fetcher streams one endpoint's pages for the slice being fetched, handing each page's records to `handle`;
# it returns (pages, records received). The ingest run provides it (loader/ingest.py).
Fetch = Callable[[Endpoint, Callable[[list], None]], tuple[int, int]]


@dataclass
class Collected:
    """A fetched and cleaned slice: what the source's land() needs."""

    pages: int
    received: int
    rows: list[tuple]
    fallback: bool = False       # CRDC: the rate's denominator is the district's CCD enrollment


@dataclass(frozen=True)
class Source:
    """A value of district_data_history.source: the endpoint it is read from, how a page of its records is
    cleaned into staging rows, the history columns it owns, and how its slices land. This base class is a
    district-level source with one endpoint and one row per district; the subclasses below add what is special
    about SAIPE and CRDC."""

    name: str
    endpoint: Endpoint
    columns: tuple[str, ...]                  # the district_data_history columns it fills
    stage_columns: tuple[str, ...]            # what its cleaned rows hold (ingest_stage columns, in order)
    clean: Callable[..., list[tuple]] | None = None   # normalize.*_rows(records, ctx, breakdown)
    identity: bool = False                    # its rows also carry the districts' identity (name, city, ...)
    fallback_note: ClassVar[str] = ""         # said once per run about the years that need_fallback ({years})

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (self.endpoint,)

    def years(self, available: dict[str, set[int]]) -> set[int]:
        """The survey years it can be fetched for (available: endpoint key -> years)."""
        return available[self.endpoint.key]

    def needs_fallback(self, year: int, available: dict[str, set[int]]) -> bool:
        """True when the year lacks a second endpoint the source normally reads (see CrdcSource)."""
        return False

    def depends_on(self, year: int, fips: str, fallback: bool) -> tuple[str, int, str] | None:
        """(source, year, state) of a slice that must land before this one, or None."""
        return None

    def collect(self, fetch: Fetch, ctx: SliceContext, fallback: bool) -> Collected:
        """Fetch the slice's pages and clean each as it arrives; only the cleaned rows are kept."""
        rows: list[tuple] = []
        ep = self.endpoint
        pages, got = fetch(ep, lambda recs: rows.extend(self.clean(recs, ctx, ep.breakdown)))
        return Collected(pages, got, rows)

    def copy_target(self) -> tuple[str, tuple[str, ...]]:
        """The staging table its rows are COPYed into, and their columns."""
        return "ingest_stage", self.stage_columns

    def land(self, conn, year: int, staged: Sequence[land.StagedSlice], fresh: bool) -> dict:
        """Upsert a batch of its staged slices (see loader/land.py). -> {state: (Landed, extra counts)}."""
        return land.land_district_source(conn, self.name, self.stage_columns, self.columns, self.identity, year,
                                         staged, fresh)


@dataclass(frozen=True)
class SaipeSource(Source):
    """SAIPE serves the share of children in poverty as a 0-1 fraction or as 0-100, which the slice's records
    decide together (normalize.SaipeScale); the rows are put on 0-100 once the whole slice is read."""

    def collect(self, fetch: Fetch, ctx: SliceContext, fallback: bool) -> Collected:
        scale = SaipeScale()
        rows: list[tuple] = []
        ep = self.endpoint
        pages, got = fetch(ep, lambda recs: rows.extend(saipe_rows(recs, ctx, scale, ep.breakdown)))
        for k, v in scale.describe().items():     # text and figures, set (a Counter would add them)
            ctx.counts[k] = v
        return Collected(pages, got, scale_saipe(rows, scale, ctx.counts))


@dataclass(frozen=True)
class CrdcSource(Source):
    """CRDC is school-level: chronically absent students per school (`endpoint`) over the school's enrollment
    (`denominator`), paired school by school and summed per district (normalize.SchoolSums); loader/land.py
    turns the sums into the rate. A year without CRDC enrollment falls back to the district's CCD enrollment
    of that year, so that slice needs the CCD directory slice landed first."""

    denominator: Endpoint | None = None
    fallback_note: ClassVar[str] = ("no CRDC enrollment for {years}; the rate's denominator is the district's CCD "
                                    "enrollment of that year")

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (self.endpoint, self.denominator)

    def needs_fallback(self, year: int, available: dict[str, set[int]]) -> bool:
        return year not in available[self.denominator.key]

    def depends_on(self, year: int, fips: str, fallback: bool) -> tuple[str, int, str] | None:
        return ("ccd_directory", year, fips) if fallback else None

    def collect(self, fetch: Fetch, ctx: SliceContext, fallback: bool) -> Collected:
        sums = SchoolSums()

        def school_rows(endpoint: Endpoint, kind: str):
            return lambda recs: sums.add(kind, crdc_school_rows(recs, ctx, kind, endpoint.breakdown))

        pages, got = fetch(self.endpoint, school_rows(self.endpoint, "a"))
        if not fallback:
            p2, g2 = fetch(self.denominator, school_rows(self.denominator, "e"))
            pages, got = pages + p2, got + g2
        return Collected(pages, got, sums.districts(),
                         fallback=fallback or (len(sums) > 0 and not sums.has_enrollment()))

    def copy_target(self) -> tuple[str, tuple[str, ...]]:
        return "ingest_stage_crdc", land.CRDC_STAGE_COLUMNS

    def land(self, conn, year: int, staged: Sequence[land.StagedSlice], fresh: bool) -> dict:
        return land.land_crdc(conn, self.name, year, staged, fresh)


_KEY = ("leaid", "fips")
# In run order: the CCD directory first (CRDC's fallback denominator reads its enrollment), CRDC last.
SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("ccd_directory", CCD_DIRECTORY, ("enrollment", "spec_ed_students", "ell_students", "teachers_fte"),
           _KEY + ("enrollment", "spec_ed_students", "ell_students", "teachers_fte", "name", "city",
                   "county_name", "urban_centric_locale", "agency_type"),
           clean=directory_rows, identity=True),
    Source("ccd_finance", CCD_FINANCE, ("expenditure_pp",), _KEY + ("expenditure_pp",), clean=finance_rows),
    Source("edfacts_grad", EDFACTS_GRAD, ("graduation_rate",), _KEY + ("graduation_rate",), clean=grad_rows),
    Source("edfacts_assess", EDFACTS_ASSESS, ("math_proficiency", "read_proficiency"),
           _KEY + ("math_proficiency", "read_proficiency"), clean=assess_rows),
    SaipeSource("saipe", SAIPE, ("children_poverty_percent",), _KEY + ("children_poverty_percent",)),
    CrdcSource("crdc_absenteeism", CRDC_ABSENTEEISM, ("chronic_absenteeism_rate",), land.CRDC_STAGE_COLUMNS,
               denominator=CRDC_ENROLLMENT),
)}
SOURCE_NAMES = tuple(SOURCES)


_RANGE = re.compile(r"^\s*(\d{4})\s*(?:[-\u2013\u2014]|to)\s*(\d{4})\s*$")


def parse_years_available(text: str) -> set[int]:
    """'1991, 1994&ndash;2020' -> {1991, 1994, ..., 2020}. Raises ValueError on anything else."""
    years: set[int] = set()
    for part in html.unescape(text or "").split(","):
        part = part.strip()
        if not part:
            continue
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise ValueError(f"bad year range {part!r}")
            years.update(range(lo, hi + 1))
        elif re.fullmatch(r"\d{4}", part):
            years.add(int(part))
        else:
            raise ValueError(f"cannot read years_available {text!r}")
    return years


def catalogue_years(results: list[dict]) -> dict[str, set[int]]:
    """Map endpoint key -> years from the rows of /api-endpoints/ (endpoints missing or unreadable are left out)."""
    by_route: dict[str, str] = {}
    for row in results:
        url = str(row.get("endpoint_url") or "")
        route = url.split("/api/v1/", 1)[-1].lstrip("/")
        by_route[route] = row.get("years_available") or ""
    out: dict[str, set[int]] = {}
    for ep in ENDPOINTS:
        if ep.catalogue_route in by_route:
            try:
                out[ep.key] = parse_years_available(by_route[ep.catalogue_route])
            except ValueError:
                continue
    return out


def fallback_years() -> dict[str, set[int]]:
    return {k: parse_years_available(v) for k, v in FALLBACK_YEARS.items()}


def format_years(years) -> str:
    """{2015, 2016, 2017, 2020} -> '2015-2017, 2020'."""
    ys = sorted(years)
    parts, i = [], 0
    while i < len(ys):
        j = i
        while j + 1 < len(ys) and ys[j + 1] == ys[j] + 1:
            j += 1
        parts.append(str(ys[i]) if i == j else f"{ys[i]}-{ys[j]}")
        i = j + 1
    return ", ".join(parts) if parts else "none"
