"""Landing slices: staging tables, one set-based upsert, and the slices' checkpoints, in one transaction.

A batch is one or more slices of the same source and year (see loader/ingest.py for how they are grouped).
Their cleaned rows (one per district; CRDC schools already summed), each tagged with its slice's state, are
COPYed into session-local temporary staging tables (ON COMMIT DELETE ROWS) inside the landing transaction,
which then runs one statement that:

1. resolves duplicates of a district deterministically (DISTINCT ON leaid, preferring the record with the most
   non-null values, then the larger values), whatever order the pages came in; the same rule picks one row
   when two slices of the batch carry the same district (two states' queries answering with it);
2. upserts into district_data_history with INSERT .. ON CONFLICT DO UPDATE .. WHERE (..) IS DISTINCT FROM (..),
   so unchanged rows are not rewritten — or, when none of the batch's slices has landed before (`fresh`, the
   normal case of a first load), with a plain INSERT: ON CONFLICT first probes the primary key for every row
   (a speculative insertion), ~15 % of PostgreSQL's CPU in a load. Should a row exist all the same (a district
   that another state's slice already landed, rows loaded by other means), the INSERT fails with a unique
   violation, the transaction rolls back whole, and the caller lands the batch again with the upsert;
3. for ccd_directory, upserts the district's identity columns in `districts`, only from a directory year at
   least as new as the one already there (an older year never overwrites a newer one);
4. returns per-slice figures (rows inserted, rows updated, ...);

and then each slice's 'done' row is written in ingest_slices (one pipelined executemany), still in the same
transaction. No transaction is open while the network is slow, and a process killed at any moment either
committed a batch (its data and all its checkpoints) or left no trace of it.

Each statement's text depends only on the source, so psycopg prepares it after a few executions and
PostgreSQL stops re-parsing it. The dedup sorts order `leaid` by bytes (COLLATE "C"): for seven digits that is
the order of every collation, and it spares a locale-aware string comparison (strcoll) per comparison.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    slice                    varchar(2) NOT NULL,   -- the state of the slice the row came from
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
    children_poverty_percent numeric,          -- on 0-100 (normalize.scale_saipe)
    name                     text,
    city                     text,
    county_name              text,
    urban_centric_locale     smallint,
    agency_type              smallint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_stage_crdc (  -- CRDC schools summed per district (normalize.SchoolSums)
    slice            varchar(2) NOT NULL,
    leaid            varchar(7) NOT NULL,
    schools          integer NOT NULL,
    schools_unpaired integer NOT NULL,
    absent_missing   integer NOT NULL,
    absent_paired    bigint  NOT NULL,
    enr_paired       bigint  NOT NULL,
    absent_all       bigint  NOT NULL
) ON COMMIT DELETE ROWS;
"""

# The columns of ingest_stage_crdc that normalize.SchoolSums.districts() produces, in its order.
CRDC_STAGE_COLUMNS = ("leaid", "schools", "schools_unpaired", "absent_missing", "absent_paired", "enr_paired",
                      "absent_all")
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


@dataclass
class StagedSlice:
    """One slice of a batch, ready to land: its state and cleaned rows."""

    fips: str                         # the state queried; tags the slice's staged rows
    rows: Sequence[tuple]             # the source's stage columns (CRDC: CRDC_STAGE_COLUMNS) without the tag
    fallback: bool = False            # crdc: the rate's denominator is the CCD enrollment


def prepare(conn: psycopg.Connection) -> None:
    """Session setup of a landing connection: the staging tables, and synchronous_commit off.

    synchronous_commit = off only lets a commit return before its WAL reaches disk; the database can never be
    corrupted or half-written by it. If the server crashes, the last few batches may be lost as a whole — data
    and checkpoint together, as they are in one transaction — so the next run simply fetches them again."""
    conn.execute(STAGE_DDL)
    conn.execute("SET synchronous_commit = off")


def copy_rows(conn: psycopg.Connection, table: str, columns: tuple[str, ...], slices: Iterable[StagedSlice]) -> None:
    """COPY every slice's rows, tagged with the slice's state, into staging `table` (ingest_stage, or
    ingest_stage_crdc for SchoolSums.districts()). Must run in the landing transaction: the staging tables empty
    at commit."""
    with conn.cursor() as cur, cur.copy(_copy_statement(table, columns)) as copy:
        for s in slices:
            tag = (s.fips,)
            for row in s.rows:
                copy.write_row(tag + row)


@cache
def _copy_statement(table: str, columns: tuple[str, ...]) -> str:
    return sql.SQL("COPY {} (slice, {}) FROM STDIN").format(sql.Identifier(table), _ids(columns)).as_string()


def _ids(cols) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, cols))


def _prefixed(prefix: str, cols) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(prefix), sql.Identifier(c)) for c in cols)


def _history_upsert(metric_cols: tuple[str, ...], fresh: bool = False) -> sql.Composable:
    """The INSERT .. ON CONFLICT of one source's metric columns, reading CTE `src`, returning (leaid, inserted).
    fresh: a plain INSERT, which fails on an existing row (see the module docstring)."""
    upsert = sql.SQL("""
        ON CONFLICT (leaid, year, source) DO UPDATE
           SET {sets}, updated_at = now()
         WHERE ({hcols}) IS DISTINCT FROM ({xcols})""").format(
        sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in metric_cols),
        hcols=_prefixed("h", metric_cols), xcols=_prefixed("excluded", metric_cols))
    return sql.SQL("""
        INSERT INTO district_data_history AS h (leaid, year, source, {cols})
        SELECT leaid, %(year)s, %(source)s, {cols} FROM src{upsert}
        RETURNING leaid, (xmax = 0) AS inserted""").format(
        cols=_ids(metric_cols), upsert=sql.SQL("") if fresh else upsert)


def _preference(cols: tuple[str, ...]) -> sql.Composable:
    """ORDER BY terms: most non-null values first, then the larger values, then the record's state."""
    nn = sql.SQL(" + ").join(sql.SQL("({} IS NOT NULL)::int").format(sql.Identifier(c)) for c in cols)
    order = sql.SQL(", ").join(sql.SQL("{} DESC NULLS LAST").format(sql.Identifier(c)) for c in cols)
    return sql.SQL("{nn} DESC, {order}, fips").format(nn=nn, order=order)


@cache
def _district_statement(stage_columns: tuple[str, ...], metric_cols: tuple[str, ...], identity: bool,
                        fresh: bool = False) -> str:
    """The one statement that lands a batch of a district-level source; one result row per slice that won at
    least one district: (slice, inserted, updated, identity rows changed). identity: the rows also carry the
    districts' identity columns (the CCD directory), upserted into `districts`."""
    stage_cols = tuple(c for c in stage_columns if c not in ("leaid", "fips"))
    parts = [sql.SQL("""
        WITH src AS (
            SELECT DISTINCT ON (leaid COLLATE "C") slice, leaid, fips, {cols}
              FROM ingest_stage ORDER BY leaid COLLATE "C", {pref}, slice
        ), up AS ({upsert})""").format(cols=_ids(stage_cols), pref=_preference(stage_cols),
                                        upsert=_history_upsert(metric_cols, fresh))]
    if identity:
        # The LEFT JOIN leaves out districts whose identity would not change before the upsert sees them:
        # ON CONFLICT locks (and so writes) every conflicting row even when its WHERE then says no.
        parts.append(sql.SQL(""", ident AS (
            INSERT INTO districts AS d (leaid, {icols})
            SELECT s.leaid, s.name, s.fips, st.abbrev, s.city, s.county_name, s.urban_centric_locale,
                   s.agency_type, %(year)s
              FROM src s JOIN states st ON st.fips = s.fips
              LEFT JOIN districts cur ON cur.leaid = s.leaid
             WHERE cur.leaid IS NULL
                OR ((cur.directory_year IS NULL OR cur.directory_year <= %(year)s)
                    AND ({ccols}) IS DISTINCT FROM (s.name, s.fips, st.abbrev, s.city, s.county_name,
                                                   s.urban_centric_locale, s.agency_type, %(year)s))
            ON CONFLICT (leaid) DO UPDATE
               SET {sets}, updated_at = now()
             WHERE (d.directory_year IS NULL OR d.directory_year <= EXCLUDED.directory_year)
               AND ({dcols}) IS DISTINCT FROM ({xcols})
            RETURNING leaid)""").format(
            icols=_ids(IDENTITY_COLUMNS), ccols=_prefixed("cur", IDENTITY_COLUMNS),
            sets=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c))
                                    for c in IDENTITY_COLUMNS),
            dcols=_prefixed("d", IDENTITY_COLUMNS), xcols=_prefixed("excluded", IDENTITY_COLUMNS)))
        ident_join, ident_count = sql.SQL("LEFT JOIN ident i ON i.leaid = s.leaid"), sql.SQL("count(i.leaid)")
    else:
        ident_join, ident_count = sql.SQL(""), sql.SQL("0")
    parts.append(sql.SQL("""
        SELECT s.slice, count(*) FILTER (WHERE u.inserted), count(*) FILTER (WHERE NOT u.inserted), {ident_count}
          FROM src s
          LEFT JOIN up u ON u.leaid = s.leaid
          {ident_join}
         GROUP BY s.slice""").format(ident_count=ident_count, ident_join=ident_join))
    return sql.Composed(parts).as_string()


def land_district_source(conn: psycopg.Connection, source: str, stage_columns: tuple[str, ...],
                         metric_cols: tuple[str, ...], identity: bool, year: int, slices: Sequence[StagedSlice],
                         fresh: bool = False) -> dict[str, tuple[Landed, dict]]:
    """Upsert the staged rows of a district-level source's batch (stage_columns: what its rows hold; metric_cols:
    the history columns it owns; identity: see _district_statement). Must run inside the batch's transaction.
    -> {slice state: (Landed, extra counts)} for every slice of the batch.

    A slice's districts and duplicates are counted here from its rows (first column: leaid); a district that
    two slices of the batch both carry is counted as landed (inserted/updated) by the slice whose row won."""
    out = {}
    for s in slices:
        districts = len(set(map(itemgetter(0), s.rows)))
        extra = {"duplicates": len(s.rows) - districts}
        if identity:
            extra["districts_identity_changed"] = 0
        out[s.fips] = (Landed(districts), extra)
    rows = conn.execute(_district_statement(stage_columns, metric_cols, identity, fresh),
                        {"year": year, "source": source}).fetchall()
    for fips, inserted, updated, ident in rows:
        landed, extra = out[fips]
        landed.inserted, landed.updated = inserted, updated
        if identity:
            extra["districts_identity_changed"] = ident
    return out


CRDC_RATES = """
WITH cfg AS (
    SELECT * FROM unnest(%(slices)s::text[], %(fallback)s::bool[]) AS c(slice, fallback)
), r AS (
    SELECT d.*, cfg.fallback, c.enrollment AS ccd_enrollment,
           CASE WHEN cfg.fallback
                THEN CASE WHEN d.absent_missing = 0 AND c.enrollment > 0
                          THEN round(100.0 * d.absent_all / c.enrollment, 2) END
                ELSE CASE WHEN d.enr_paired > 0
                          THEN round(100.0 * d.absent_paired / d.enr_paired, 2) END
           END AS raw_rate
      FROM ingest_stage_crdc d
      JOIN cfg ON cfg.slice = d.slice
      LEFT JOIN district_data_history c
             ON c.leaid = d.leaid AND c.year = %(year)s AND c.source = 'ccd_directory'
), per_slice AS (
    SELECT slice, leaid, CASE WHEN raw_rate <= 100 THEN raw_rate END AS chronic_absenteeism_rate FROM r
), src AS (     -- a district answered by two states' queries lands once
    SELECT DISTINCT ON (leaid COLLATE "C") * FROM per_slice
     ORDER BY leaid COLLATE "C", chronic_absenteeism_rate IS NULL, chronic_absenteeism_rate DESC, slice
), up AS ({upsert}),
landed AS (
    SELECT s.slice, count(*) FILTER (WHERE u.inserted) AS inserted, count(*) FILTER (WHERE NOT u.inserted) AS updated
      FROM src s JOIN up u ON u.leaid = s.leaid
     GROUP BY s.slice
), stats AS (
    SELECT slice,
           count(*)                                                              AS districts,
           coalesce(sum(schools), 0)::bigint                                     AS schools,
           coalesce(sum(CASE WHEN fallback THEN absent_missing ELSE schools_unpaired END), 0)::bigint
                                                                                 AS schools_excluded,
           count(*) FILTER (WHERE NOT fallback AND schools_unpaired > 0 AND raw_rate IS NOT NULL)
                                                                                 AS districts_partial,
           count(*) FILTER (WHERE raw_rate IS NULL)                              AS districts_no_rate,
           count(*) FILTER (WHERE raw_rate > 100)                                AS out_of_range,
           count(*) FILTER (WHERE fallback AND (ccd_enrollment IS NULL OR ccd_enrollment <= 0))
                                                                                 AS no_ccd_enrollment
      FROM r
     GROUP BY slice
)
SELECT stats.*, coalesce(landed.inserted, 0), coalesce(landed.updated, 0)
  FROM stats LEFT JOIN landed USING (slice)
"""


@cache
def _crdc_statement(fresh: bool = False) -> str:
    return sql.SQL(CRDC_RATES).format(upsert=_history_upsert(("chronic_absenteeism_rate",), fresh)).as_string()


def land_crdc(conn: psycopg.Connection, source: str, year: int, slices: Sequence[StagedSlice],
              fresh: bool = False) -> dict[str, tuple[Landed, dict]]:
    """The chronic absenteeism rate from the staged per-district sums; upserted. Runs in the batch's transaction.
    -> {slice state: (Landed, extra counts)} for every slice of the batch.

    With CRDC enrollment (the normal case) numerator and denominator are summed over the same schools: those
    that report both a chronically-absent count and an enrollment. A school suppressed in either drops out
    of both sums (counted as schools_excluded), so suppression does not bias the rate downwards; a district
    with no such school gets NULL. Without CRDC enrollment for the slice (`fallback`), the denominator is the
    district's CCD enrollment of the same year from district_data_history; as it covers every school, the
    rate is computed only when no school's count is suppressed. A rate above 100 is impossible and is NULL.
    """
    def extra(fallback, schools=0, unpaired=0, partial=0, no_rate=0, out_of_range=0, no_ccd=0) -> dict:
        e = {"schools": schools, "schools_excluded": unpaired, "districts_partial": partial,
             "districts_no_rate": no_rate, "nulled_out_of_range": out_of_range,
             "denominator": "ccd_enrollment" if fallback else "crdc_enrollment"}
        if fallback:
            e["districts_without_ccd_enrollment"] = no_ccd
        return e

    out = {s.fips: (Landed(), extra(s.fallback)) for s in slices}
    fallback = {s.fips: s.fallback for s in slices}
    rows = conn.execute(_crdc_statement(fresh), {"year": year, "source": source,
                                            "slices": list(fallback), "fallback": list(fallback.values())})
    for (fips, districts, schools, unpaired, partial, no_rate, out_of_range, no_ccd, inserted,
         updated) in rows.fetchall():
        out[fips] = (Landed(districts, inserted, updated),
                     extra(fallback[fips], schools, unpaired, partial, no_rate, out_of_range, no_ccd))
    return out


def never_landed(conn: psycopg.Connection, source: str, year: int, states: Sequence[str]) -> bool:
    """True when none of these slices has landed before (no 'done' checkpoint): their rows are expected to be
    new, and the batch is first tried with a plain INSERT."""
    return conn.execute("""
        SELECT NOT EXISTS (SELECT 1 FROM ingest_slices
                            WHERE source = %s AND year = %s AND state_fips = ANY(%s) AND status = 'done')""",
                        (source, year, list(states))).fetchone()[0]


MARK_DONE = """
    INSERT INTO ingest_slices AS s (source, year, state_fips, status, pages, rows_received, rows_inserted,
                                    rows_updated, rows_unchanged, values_nulled, records_skipped, counts,
                                    error, finished_at)
    VALUES (%s, %s, %s, 'done', %s, %s, %s, %s, %s, %s, %s, %s, NULL, now())
    ON CONFLICT (source, year, state_fips) DO UPDATE
       SET status = 'done', pages = EXCLUDED.pages, rows_received = EXCLUDED.rows_received,
           rows_inserted = EXCLUDED.rows_inserted, rows_updated = EXCLUDED.rows_updated,
           rows_unchanged = EXCLUDED.rows_unchanged, values_nulled = EXCLUDED.values_nulled,
           records_skipped = EXCLUDED.records_skipped, counts = EXCLUDED.counts, error = NULL,
           finished_at = now()"""


@dataclass
class Checkpoint:
    """A slice's 'done' row in ingest_slices."""

    source: str
    year: int
    fips: str
    pages: int
    received: int
    landed: Landed
    nulled: int
    skipped: int
    counts: dict


def mark_done(conn, checkpoints: Sequence[Checkpoint]) -> None:
    """Write the slices' 'done' rows (one pipelined round trip). Runs in the transaction that landed them."""
    with conn.cursor() as cur:
        cur.executemany(MARK_DONE, [
            (c.source, c.year, c.fips, c.pages, c.received, c.landed.inserted, c.landed.updated,
             c.landed.unchanged, c.nulled, c.skipped, Jsonb(c.counts)) for c in checkpoints])


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
