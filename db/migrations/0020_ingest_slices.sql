-- 0020_ingest_slices: the loader's checkpoint, one row per slice (source x survey year x state).
-- A slice's data and its 'done' row are committed in the same transaction, so a rerun can skip exactly the
-- slices that landed and nothing else (`district-benchmarks ingest` skips 'done' slices unless --refresh).
-- A 'failed' row records why the last attempt failed; a rerun tries it again.
CREATE TABLE ingest_slices (
    source         varchar(32) NOT NULL CHECK (source IN (
                       'ccd_directory', 'ccd_finance', 'edfacts_grad',
                       'edfacts_assess', 'crdc_absenteeism', 'saipe')),
    year           smallint    NOT NULL CHECK (year BETWEEN 1980 AND 2100),
    state_fips     varchar(2)  NOT NULL REFERENCES states (fips) ON UPDATE CASCADE,
    status         varchar(8)  NOT NULL CHECK (status IN ('done', 'failed')),
    pages          integer     NOT NULL DEFAULT 0 CHECK (pages >= 0),
    rows_received  integer     NOT NULL DEFAULT 0 CHECK (rows_received >= 0),
    rows_inserted  integer     NOT NULL DEFAULT 0 CHECK (rows_inserted >= 0),
    rows_updated   integer     NOT NULL DEFAULT 0 CHECK (rows_updated >= 0),
    rows_unchanged integer     NOT NULL DEFAULT 0 CHECK (rows_unchanged >= 0),
    values_nulled  integer     NOT NULL DEFAULT 0 CHECK (values_nulled >= 0),
    records_skipped integer    NOT NULL DEFAULT 0 CHECK (records_skipped >= 0),
    counts         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    error          text,
    finished_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, year, state_fips)
);
COMMENT ON TABLE ingest_slices IS
    'Loader checkpoint: one row per (source, year, state) slice. status done = landed in the same transaction '
    'as its data; failed = last attempt failed (error says why; a done slice keeps status done when a '
    '--refresh of it fails, with the failure in error).';

GRANT SELECT ON ingest_slices TO district_benchmarks_reader, district_benchmarks_operator;
