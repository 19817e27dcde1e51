"""The six sources the loader ingests, the API endpoints behind them, and which survey years each endpoint has.

Years come from the API's own endpoint catalogue (`GET {base}/api-endpoints/`, field `years_available`, e.g.
"1991, 1994&ndash;2020"); FALLBACK_YEARS is the same catalogue as recorded in 2026 and is used when the
catalogue cannot be read or lacks an endpoint.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """One API route. `path` is relative to the API base and has a {year} placeholder."""

    key: str
    path: str
    catalogue_route: str            # endpoint_url in /api-endpoints/ (without the /api/v1 prefix)
    filters: tuple[tuple[str, str], ...] = ()   # server-side filters sent with every request

    def url_path(self, year: int) -> str:
        return self.path.format(year=year)

    def params(self, fips: str) -> list[tuple[str, str]]:
        """Query parameters of a state's request: fips as the API writes it (6, not 06), then the filters."""
        return [("fips", str(int(fips)))] + list(self.filters)


CCD_DIRECTORY = Endpoint("ccd_directory", "school-districts/ccd/directory/{year}/",
                         "school-districts/ccd/directory/{year}/")
CCD_FINANCE = Endpoint("ccd_finance", "school-districts/ccd/finance/{year}/",
                       "school-districts/ccd/finance/{year}/")
# The grad-rates route has one row per district x subgroup; its subgroup columns are API filters, so only the
# all-students row is requested (and checked again on arrival).
EDFACTS_GRAD = Endpoint("edfacts_grad", "school-districts/edfacts/grad-rates/{year}/",
                        "school-districts/edfacts/grad-rates/{year}/",
                        (("race", "99"), ("lep", "99"), ("homeless", "99"), ("disability", "99"),
                         ("econ_disadvantaged", "99"), ("foster_care", "99")))
EDFACTS_ASSESS = Endpoint("edfacts_assess", "school-districts/edfacts/assessments/{year}/grade-99/",
                          "school-districts/edfacts/assessments/{year}/{grade_edfacts}/")
# CRDC is published per school only. The race/sex routes carry one row per school x race x sex; the API filters
# on its filter variables, so only the totals rows (race=99, sex=99) are requested. The loader still keeps
# only rows whose every breakdown column is 99, in case a server ignores the filters.
CRDC_ABSENTEEISM = Endpoint("crdc_chronic_absenteeism", "schools/crdc/chronic-absenteeism/{year}/race/sex/",
                            "schools/crdc/chronic-absenteeism/{year}/race/sex/",
                            (("race", "99"), ("sex", "99")))
CRDC_ENROLLMENT = Endpoint("crdc_enrollment", "schools/crdc/enrollment/{year}/race/sex/",
                           "schools/crdc/enrollment/{year}/race/sex/",
                           (("race", "99"), ("sex", "99")))
SAIPE = Endpoint("saipe", "school-districts/saipe/{year}/", "school-districts/saipe/{year}/")

ENDPOINTS = (CCD_DIRECTORY, CCD_FINANCE, EDFACTS_GRAD, EDFACTS_ASSESS, CRDC_ABSENTEEISM, CRDC_ENROLLMENT, SAIPE)

# years_available of each endpoint in the API's catalogue (GET /api/v1/api-endpoints/), August 2026.
FALLBACK_YEARS: dict[str, str] = {
    CCD_DIRECTORY.key: "1986&ndash;2024",
    CCD_FINANCE.key: "1991, 1994&ndash;2020",
    EDFACTS_GRAD.key: "2010&ndash;2019",
    EDFACTS_ASSESS.key: "2009&ndash;2018, 2020",
    CRDC_ABSENTEEISM.key: "2013, 2015, 2017, 2020, 2021, 2022",
    CRDC_ENROLLMENT.key: "2011, 2013, 2015, 2017, 2020, 2021",
    SAIPE.key: "1995, 1997, 1999&ndash;2024",
}


@dataclass(frozen=True)
class Source:
    """A value of district_data_history.source: the endpoint it is read from and the history columns it fills."""

    name: str
    endpoint: Endpoint
    columns: tuple[str, ...]
    denominator: Endpoint | None = None   # CRDC: school enrollment for the absenteeism rate

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (self.endpoint,) + ((self.denominator,) if self.denominator else ())


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("ccd_directory", CCD_DIRECTORY, ("enrollment", "spec_ed_students", "ell_students", "teachers_fte")),
    Source("ccd_finance", CCD_FINANCE, ("expenditure_pp",)),
    Source("edfacts_grad", EDFACTS_GRAD, ("graduation_rate",)),
    Source("edfacts_assess", EDFACTS_ASSESS, ("math_proficiency", "read_proficiency")),
    Source("crdc_absenteeism", CRDC_ABSENTEEISM, ("chronic_absenteeism_rate",), denominator=CRDC_ENROLLMENT),
    Source("saipe", SAIPE, ("children_poverty_percent",)),
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
