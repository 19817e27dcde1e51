-- 0001_schema: the tables of SPEC §1 (states, districts, district_data_history, data_refresh_logs).
-- Forward-only: never edit this file once applied; add a new numbered migration instead.

CREATE TABLE states (
    fips                          varchar(2)  PRIMARY KEY CHECK (fips ~ '^[0-9]{2}$'),
    abbrev                        varchar(2)  NOT NULL UNIQUE CHECK (abbrev ~ '^[A-Z]{2}$'),
    name                          text        NOT NULL,
    avg_chronic_absenteeism_rate  numeric(5,2),
    avg_student_teacher_ratio     numeric(8,2),
    avg_swd_pct                   numeric(5,2),
    avg_ell_pct                   numeric(5,2),
    avg_enrollment                integer,
    avg_math_proficiency          numeric(5,2),
    avg_read_proficiency          numeric(5,2),
    avg_graduation_rate           numeric(5,2),
    avg_expenditure_per_pupil     numeric(12,2),
    avg_poverty_rate              numeric(5,2),
    total_districts               integer     CHECK (total_districts >= 0),
    total_enrollment              bigint      CHECK (total_enrollment >= 0),
    aggregates_updated_at         timestamptz,
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE states IS 'One row per state or territory, plus the national row fips=00 (US). Averages are written by compute_state_averages().';

CREATE TABLE districts (
    leaid                         varchar(7)  PRIMARY KEY CHECK (leaid ~ '^[0-9]{7}$'),
    name                          text,
    state_fips                    varchar(2)  REFERENCES states (fips) ON UPDATE CASCADE,
    state_abbrev                  varchar(2),
    -- descriptive columns (latest CCD directory year that listed the district)
    city                          text,
    county_name                   text,
    urban_centric_locale          smallint,
    agency_type                   smallint,
    directory_year                smallint,
    -- current values (compute_current_values)
    enrollment                    integer,
    spec_ed_students              integer,
    ell_students                  integer,
    teachers_fte                  numeric(10,2),
    student_teacher_ratio         numeric(8,2),
    chronic_absenteeism_rate      numeric(5,2),
    graduation_rate_total         numeric(5,2),
    math_proficiency_pct          numeric(5,2),
    read_proficiency_pct          numeric(5,2),
    expenditure_per_pupil         numeric(12,2),
    children_poverty_percent      numeric(5,2),
    -- the 34 benchmark columns
    swd_pct                            numeric(5,2),
    ell_pct                            numeric(5,2),
    swd_trend_3yr                      numeric(8,2),
    ell_trend_3yr                      numeric(8,2),
    absenteeism_trend_3yr              numeric(8,2),
    graduation_trend_3yr               numeric(8,2),
    student_teacher_ratio_trend_3yr    numeric(8,2),
    math_proficiency_trend_3yr         numeric(8,2),
    read_proficiency_trend_3yr         numeric(8,2),
    expenditure_pp_trend_3yr           numeric(8,2),
    absenteeism_vs_state               numeric(8,2),
    absenteeism_vs_national            numeric(8,2),
    graduation_vs_state                numeric(8,2),
    graduation_vs_national             numeric(8,2),
    student_teacher_ratio_vs_state     numeric(8,2),
    student_teacher_ratio_vs_national  numeric(8,2),
    swd_pct_vs_state                   numeric(8,2),
    swd_pct_vs_national                numeric(8,2),
    ell_pct_vs_state                   numeric(8,2),
    ell_pct_vs_national                numeric(8,2),
    math_proficiency_vs_state          numeric(8,2),
    math_proficiency_vs_national       numeric(8,2),
    read_proficiency_vs_state          numeric(8,2),
    read_proficiency_vs_national       numeric(8,2),
    expenditure_pp_vs_state            numeric(8,2),
    expenditure_pp_vs_national         numeric(8,2),
    absenteeism_quartile_state           varchar(15) CHECK (absenteeism_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    graduation_quartile_state            varchar(15) CHECK (graduation_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    student_teacher_ratio_quartile_state varchar(15) CHECK (student_teacher_ratio_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    swd_pct_quartile_state               varchar(15) CHECK (swd_pct_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    ell_pct_quartile_state               varchar(15) CHECK (ell_pct_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    math_proficiency_quartile_state      varchar(15) CHECK (math_proficiency_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    read_proficiency_quartile_state      varchar(15) CHECK (read_proficiency_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    expenditure_pp_quartile_state        varchar(15) CHECK (expenditure_pp_quartile_state IN ('well_above', 'above', 'below', 'well_below')),
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE districts IS 'One row per local education agency (LEA): identity, current values and the 34 benchmark columns.';

CREATE INDEX districts_state_fips_idx ON districts (state_fips);

CREATE TABLE district_data_history (
    leaid                     varchar(7)  NOT NULL CHECK (leaid ~ '^[0-9]{7}$'),
    year                      smallint    NOT NULL CHECK (year BETWEEN 1980 AND 2100),
    source                    varchar(32) NOT NULL CHECK (source IN (
                                  'ccd_directory', 'ccd_finance', 'edfacts_grad',
                                  'edfacts_assess', 'crdc_absenteeism', 'saipe')),
    enrollment                integer,
    spec_ed_students          integer,
    ell_students              integer,
    teachers_fte              numeric(10,2),
    graduation_rate           numeric(5,2),
    math_proficiency          numeric(5,2),
    read_proficiency          numeric(5,2),
    expenditure_pp            numeric(12,2),
    chronic_absenteeism_rate  numeric(5,2),
    children_poverty_percent  numeric(5,2),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (leaid, year, source)
);
COMMENT ON TABLE district_data_history IS 'Raw facts, one row per (leaid, year, source). Negative values mean missing and are ignored by every function.';

-- The engine reads one source at a time, newest years first.
CREATE INDEX district_data_history_source_year_idx ON district_data_history (source, year, leaid);

CREATE TABLE data_refresh_logs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    data_source    varchar(64) NOT NULL,
    records_updated integer    NOT NULL DEFAULT 0,
    records_failed  integer    NOT NULL DEFAULT 0,
    status         varchar(16) NOT NULL CHECK (status IN ('success', 'failed')),
    error_message  text,
    started_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    details        jsonb
);
COMMENT ON TABLE data_refresh_logs IS 'One row per run of a loader step or of compute_all_benchmarks().';
CREATE INDEX data_refresh_logs_source_started_idx ON data_refresh_logs (data_source, started_at DESC);
