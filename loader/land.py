"""Landing a slice: staging tables, one set-based upsert, and the slice's checkpoint, in one transaction.

A slice's cleaned rows (one per district; CRDC schools already summed) are COPYed into session-local
temporary staging tables (ON COMMIT DELETE ROWS) inside the landing transaction, which then:

1. resolves duplicates of a district in the slice deterministically (DISTINCT ON leaid, preferring the
   record with the most non-null values, then the larger values), whatever order the pages came in;
2. runs one INSERT .. ON CONFLICT DO UPDATE .. WHERE (..) IS DISTINCT FROM (..) into district_data_history,
   so unchanged rows are not rewritten;
3. for ccd_directory, upserts the district's identity columns in `districts`, only from a directory year at
   least as new as the one already there (an older year never overwrites a newer one);
4. writes the slice's 'done' row in ingest_slices.

No transaction is open while the network is slow, and a process killed at any moment either committed the
slice (and its checkpoint) or left no trace of it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from .normalize import CRDC_STAGE_COLUMNS, STAGE_COLUMNS

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    leaid                    varchar(7) NOT NULL,
    fips                     varchar(2) NOT NULL,
    enrollment               integer,
    spec_ed_students         integer,
    ell_students             integer,
    teachers_fte             numeric(10,2),
    graduation_rate          numeric(5,2),
    math_proficiency         numeric(5,2),
    read_proficiency         numeric(5,2),
    expenditure_pp           numeric(12,2),
    children_poverty_percent numeric,          -- as received; scaled to 0-100 when landing
    name                     text,
    city                     text,
    county_name              text,
    urban_centric_locale     smallint,
    agency_type              smallint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_stage_crdc (  -- CRDC schools summed per district (normalize.SchoolSums)
    leaid            varchar(7) NOT NULL,
    schools          integer NOT NULL,
    schools_unpaired integer NOT NULL,
    absent_missing   integer NOT NULL,
    absent_paired    bigint  NOT NULL,
    enr_paired       bigint  NOT NULL,
    absent_all       bigint  NOT NULL
) ON COMMIT DELETE ROWS;
"""

IDENTITY_COLUMNS = ("name", "state_fips", "state_abbrev", "city", "county_name", "urban_centric_locale",
                    "agency_type", "directory_year")


@dataclass
class Landed:
    districts: int = 0       # distinct districts in the slice after resolving duplicates
    inserted: int = 0
    updated: int = 0

    @property
    def unchanged(self) -> int:
        return self.districts - self.inserted - self.updated


def prepare(conn: psycopg.Connection) -> None:
    conn.execute(STAGE_DDL)


def copy_rows(conn: psycopg.Connection, source: str, rows: Iterable[tuple]) -> None:
    """COPY rows into the staging table of `source` (the CRDC one takes SchoolSums.districts()). Must run in the
    landing transaction: the staging tables empty themselves at commit."""
    cols = CRDC_STAGE_COLUMNS if source == "crdc_absenteeism" else STAGE_COLUMNS[source]
    table = "ingest_stage_crdc" if source == "crdc_absenteeism" else "ingest_stage"
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table),
                                                       sql.SQL(", ").join(map(sql.Identifier, cols)))
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)


def _ids(cols) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, cols))


def _prefixed(prefix: str, cols) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(prefix), sql.Identifier(c)) for c in cols)


def _history_upsert(metric_cols: tuple[str, ...]) -> sql.Composable:
    """The INSERT .. ON CONFLICT of one source's metric columns, reading CTE `src`, returning (inserted)."""
    return sql.SQL("""
        INSERT INTO district_data_history AS h (leaid, year, source, {cols})
        SELECT leaid, %(year)s, %(source)s, {cols} FROM src
        ON CONFLICT (leaid, year, source) DO UPDATE
           SET {sets}, updated_at = now()
         WHERE ({hcols}) IS DISTINCT FROM ({xcols})
        RETURNING (xmax = 0) AS inserted""").format(
        cols=_ids(metric_cols),
        sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in metric_cols),
        hcols=_prefixed("h", metric_cols), xcols=_prefixed("excluded", metric_cols))


def _dedup(cols: tuple[str, ...]) -> sql.Composable:
    """One row per leaid from ingest_stage: most non-null values first, then the larger values (deterministic)."""
    nn = sql.SQL(" + ").join(sql.SQL("({} IS NOT NULL)::int").format(sql.Identifier(c)) for c in cols)
    order = sql.SQL(", ").join(sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(c)) for c in cols)
    return sql.SQL("SELECT DISTINCT ON (leaid) leaid, fips, {cols} FROM ingest_stage "
                   "ORDER BY leaid, {nn} DESC, {order}, fips").format(cols=_ids(cols), nn=nn, order=order)


def land_district_source(conn: psycopg.Connection, source: str, metric_cols: tuple[str, ...], year: int,
                         saipe_factor: int | None = None) -> tuple[Landed, dict]:
    """Upsert the staged rows of a district-level source. Must run inside the slice's transaction."""
    extra: dict = {}
    if saipe_factor is not None:
        row = conn.execute("""
            WITH u AS (
                UPDATE ingest_stage
                   SET children_poverty_percent = CASE WHEN round(children_poverty_percent * %(f)s, 2) <= 100
                                                       THEN round(children_poverty_percent * %(f)s, 2) END
                 WHERE children_poverty_percent IS NOT NULL
             RETURNING children_poverty_percent)
            SELECT count(*) FILTER (WHERE children_poverty_percent IS NULL) FROM u""", {"f": saipe_factor}).fetchone()
        extra["nulled_out_of_range"] = row[0]

    stage_cols = tuple(c for c in STAGE_COLUMNS[source] if c not in ("leaid", "fips"))
    parts = [sql.SQL("WITH src AS ({dedup}), up AS ({upsert})").format(
        dedup=_dedup(stage_cols), upsert=_history_upsert(metric_cols))]
    if source == "ccd_directory":
        parts.append(sql.SQL(""", ident AS (
            INSERT INTO districts AS d (leaid, {icols})
            SELECT s.leaid, s.name, s.fips, st.abbrev, s.city, s.county_name, s.urban_centric_locale,
                   s.agency_type, %(year)s
              FROM src s JOIN states st ON st.fips = s.fips
            ON CONFLICT (leaid) DO UPDATE
               SET {sets}, updated_at = now()
             WHERE (d.directory_year IS NULL OR d.directory_year <= EXCLUDED.directory_year)
               AND ({dcols}) IS DISTINCT FROM ({xcols})
            RETURNING 1)""").format(
            icols=_ids(IDENTITY_COLUMNS),
            sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                                    for c in IDENTITY_COLUMNS),
            dcols=_prefixed("d", IDENTITY_COLUMNS), xcols=_prefixed("excluded", IDENTITY_COLUMNS)))
        ident = sql.SQL("(SELECT count(*) FROM ident)")
    else:
        ident = sql.SQL("0")
    parts.append(sql.SQL("""
        SELECT (SELECT count(*) FROM src), count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted),
               {ident}, (SELECT count(*) FROM ingest_stage) - (SELECT count(*) FROM src)
          FROM up""").format(ident=ident))
    row = conn.execute(sql.Composed(parts), {"year": year, "source": source}).fetchone()
    if source == "ccd_directory":
        extra["districts_identity_changed"] = row[3]
    extra["duplicates"] = row[4]
    return Landed(row[0], row[1], row[2]), extra


CRDC_RATES = """
WITH d AS (
    SELECT * FROM ingest_stage_crdc
), r AS (
    SELECT d.*, c.enrollment AS ccd_enrollment,
           CASE WHEN %(fallback)s
                THEN CASE WHEN d.absent_missing = 0 AND c.enrollment > 0
                          THEN round(100.0 * d.absent_all / c.enrollment, 2) END
                ELSE CASE WHEN d.enr_paired > 0
                          THEN round(100.0 * d.absent_paired / d.enr_paired, 2) END
           END AS raw_rate
      FROM d
      LEFT JOIN district_data_history c
             ON c.leaid = d.leaid AND c.year = %(year)s AND c.source = 'ccd_directory'
), src AS (
    SELECT leaid, CASE WHEN raw_rate <= 100 THEN raw_rate END AS chronic_absenteeism_rate FROM r
), up AS ({upsert}),
stats AS (
    SELECT count(*)                                                              AS districts,
           coalesce(sum(schools), 0)::bigint                                     AS schools,
           coalesce(sum(CASE WHEN %(fallback)s THEN absent_missing ELSE schools_unpaired END), 0)::bigint
                                                                                 AS schools_excluded,
           count(*) FILTER (WHERE NOT %(fallback)s AND schools_unpaired > 0 AND raw_rate IS NOT NULL)
                                                                                 AS districts_partial,
           count(*) FILTER (WHERE raw_rate IS NULL)                              AS districts_no_rate,
           count(*) FILTER (WHERE raw_rate > 100)                                AS out_of_range,
           count(*) FILTER (WHERE %(fallback)s AND (ccd_enrollment IS NULL OR ccd_enrollment <= 0))
                                                                                 AS no_ccd_enrollment
      FROM r
)
SELECT stats.*, (SELECT count(*) FILTER (WHERE inserted) FROM up), (SELECT count(*) FILTER (WHERE NOT inserted) FROM up)
  FROM stats
"""


def land_crdc(conn: psycopg.Connection, year: int, fallback: bool) -> tuple[Landed, dict]:
    """The chronic absenteeism rate from the staged per-district sums; upserted. Runs in the slice's transaction.

    With CRDC enrollment (the normal case) numerator and denominator are summed over the same schools: those
    that report both a chronically-absent count and an enrollment. A school suppressed in either drops out
    of both sums (counted as schools_excluded), so suppression does not bias the rate downwards; a district
    with no such school gets NULL. Without CRDC enrollment for the year (`fallback`), the denominator is the
    district's CCD enrollment of the same year from district_data_history; as it covers every school, the
    rate is computed only when no school's count is suppressed. A rate above 100 is impossible and is NULL.
    """
    q = sql.SQL(CRDC_RATES).format(upsert=_history_upsert(("chronic_absenteeism_rate",)))
    row = conn.execute(q, {"year": year, "source": "crdc_absenteeism", "fallback": fallback}).fetchone()
    (districts, schools, unpaired, partial, no_rate, out_of_range, no_ccd, inserted, updated) = row
    extra = {"schools": schools, "schools_excluded": unpaired, "districts_partial": partial,
             "districts_no_rate": no_rate, "nulled_out_of_range": out_of_range,
             "denominator": "ccd_enrollment" if fallback else "crdc_enrollment"}
    if fallback:
        extra["districts_without_ccd_enrollment"] = no_ccd
    return Landed(districts, inserted, updated), extra


def mark_done(conn, source: str, year: int, fips: str, pages: int, received: int, landed: Landed,
              nulled: int, skipped: int, counts: dict) -> None:
    conn.execute("""
        INSERT INTO ingest_slices AS s (source, year, state_fips, status, pages, rows_received, rows_inserted,
                                        rows_updated, rows_unchanged, values_nulled, records_skipped, counts,
                                        error, finished_at)
        VALUES (%s, %s, %s, 'done', %s, %s, %s, %s, %s, %s, %s, %s, NULL, now())
        ON CONFLICT (source, year, state_fips) DO UPDATE
           SET status = 'done', pages = EXCLUDED.pages, rows_received = EXCLUDED.rows_received,
               rows_inserted = EXCLUDED.rows_inserted, rows_updated = EXCLUDED.rows_updated,
               rows_unchanged = EXCLUDED.rows_unchanged, values_nulled = EXCLUDED.values_nulled,
               records_skipped = EXCLUDED.records_skipped, counts = EXCLUDED.counts, error = NULL,
               finished_at = now()""",
                 (source, year, fips, pages, received, landed.inserted, landed.updated, landed.unchanged,
                  nulled, skipped, Jsonb(counts)))


def mark_failed(conn, source: str, year: int, fips: str, error: str, counts: dict) -> None:
    """Record a failed attempt. A slice that landed before keeps status 'done' (its data is complete)."""
    with conn.transaction():
        conn.execute("""
            INSERT INTO ingest_slices AS s (source, year, state_fips, status, counts, error, finished_at)
            VALUES (%s, %s, %s, 'failed', %s, %s, now())
            ON CONFLICT (source, year, state_fips) DO UPDATE
               SET error = EXCLUDED.error,
                   status = CASE WHEN s.status = 'done' THEN 'done' ELSE 'failed' END,
                   counts = CASE WHEN s.status = 'done' THEN s.counts ELSE EXCLUDED.counts END,
                   finished_at = CASE WHEN s.status = 'done' THEN s.finished_at ELSE now() END""",
                     (source, year, fips, Jsonb(counts), error))
