-- 0070_benchmark_metrics_and_comments: what BI tools need to read the results without the docs at hand.
--
--   benchmark_metrics    one row per metric of the view: its label, units, direction, and the years its current
--                        values and its trend come from. By SPEC §4 a metric's year is one year for all districts
--                        (the latest year of its source with a value), so it is stored once per metric, not once
--                        per district: compute_current_values() writes value_year, compute_district_trends() and
--                        compute_all_benchmarks() write trend_base_year / trend_end_year, each only when it
--                        changes.
--   district_benchmarks  gains tier_rank, unit, trend_unit, higher_is_better, value_year, trend_base_year,
--                        trend_end_year, state_fips and enrollment (at the end: a view can only gain columns there)
--   COMMENT              on every column of states, districts, district_data_history, data_refresh_logs,
--                        ingest_slices, benchmark_metrics and the view (district_peers has its own since 0060);
--                        BI tools and psql's \d+ show them.
CREATE TABLE public.benchmark_metrics (
    metric            text        PRIMARY KEY,
    position          smallint    NOT NULL UNIQUE,
    label             text        NOT NULL,
    unit              text        NOT NULL,
    trend_unit        text        NOT NULL,
    higher_is_better  boolean,
    value_year        smallint,
    trend_base_year   smallint,
    trend_end_year    smallint,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT benchmark_metrics_trend_years CHECK (trend_base_year < trend_end_year)
);
INSERT INTO public.benchmark_metrics (metric, position, label, unit, trend_unit, higher_is_better) VALUES
    ('absenteeism',           1, 'Chronic absenteeism',        'percent',              'percentage points',    false),
    ('graduation',            2, 'Graduation rate',            'percent',              'percentage points',    true),
    ('student_teacher_ratio', 3, 'Students per teacher',       'students per teacher', 'students per teacher', false),
    ('swd_pct',               4, 'Students with disabilities', 'percent',              'percent change',       NULL),
    ('ell_pct',               5, 'English learners',           'percent',              'percent change',       NULL),
    ('math_proficiency',      6, 'Math proficiency',           'percent',              'percentage points',    true),
    ('read_proficiency',      7, 'Reading proficiency',        'percent',              'percentage points',    true),
    ('expenditure_pp',        8, 'Spending per pupil',         'dollars',              'percent change',       NULL);

COMMENT ON TABLE public.benchmark_metrics IS
    'One row per benchmark metric: label, units, direction, and the school years its current values and its '
    '3-year trend come from (one year per metric for all districts). Years are written by the compute functions.';
COMMENT ON COLUMN public.benchmark_metrics.metric IS
    'Metric name as in district_benchmarks.metric and the districts column names ({m}_vs_state, ...).';
COMMENT ON COLUMN public.benchmark_metrics.position IS 'Display order, 1 = first.';
COMMENT ON COLUMN public.benchmark_metrics.label IS 'Name for people, e.g. Chronic absenteeism.';
COMMENT ON COLUMN public.benchmark_metrics.unit IS
    'Unit of the value, the averages and the differences (vs_state, vs_national, vs_peers): percent (the '
    'differences are then percentage points), students per teacher, or dollars (per pupil).';
COMMENT ON COLUMN public.benchmark_metrics.trend_unit IS
    'Unit of trend_3yr: percentage points (point change), percent change (of the SWD / ELL count or of '
    'spending), or students per teacher (change in the ratio).';
COMMENT ON COLUMN public.benchmark_metrics.higher_is_better IS
    'true when a higher value is better (graduation, proficiency), false when lower is (absenteeism, students '
    'per teacher), NULL when neither (SWD %, ELL %, spending). Tiers describe size, not quality.';
COMMENT ON COLUMN public.benchmark_metrics.value_year IS
    'School year (fall: 2021 = 2021-22) of the metric''s current values: the latest year of its source with a '
    'value (compute_current_values()). For a quotient of two counts (students per teacher, SWD %, ELL %) the '
    'earlier of the two counts'' years. NULL when no value was ever loaded.';
COMMENT ON COLUMN public.benchmark_metrics.trend_base_year IS
    'The year trend_3yr compares from: max(earliest year, end year - 3); for absenteeism (biennial survey) the '
    'survey year before the end year. NULL when only one year is loaded (no trend).';
COMMENT ON COLUMN public.benchmark_metrics.trend_end_year IS
    'The year trend_3yr compares to: the latest year of the source with a value.';
COMMENT ON COLUMN public.benchmark_metrics.updated_at IS 'When a year of this row last changed.';

GRANT SELECT ON public.benchmark_metrics TO district_benchmarks_reader, district_benchmarks_operator;

-- the long-form view: the existing columns unchanged, then the new ones
CREATE OR REPLACE VIEW public.district_benchmarks AS
SELECT d.leaid,
       d.name,
       d.state_abbrev,
       m.metric,
       m.value,
       m.state_avg,
       m.national_avg,
       m.vs_state,
       m.vs_national,
       m.quartile_state,
       m.trend_3yr,
       m.value - m.vs_peers AS peer_avg,
       m.vs_peers,
       (CASE m.quartile_state WHEN 'well_below' THEN 1 WHEN 'below' THEN 2
                              WHEN 'above' THEN 3 WHEN 'well_above' THEN 4 END)::smallint AS tier_rank,
       bm.unit,
       bm.trend_unit,
       bm.higher_is_better,
       CASE WHEN m.value IS NOT NULL THEN bm.value_year END AS value_year,
       CASE WHEN m.trend_3yr IS NOT NULL THEN bm.trend_base_year END AS trend_base_year,
       CASE WHEN m.trend_3yr IS NOT NULL THEN bm.trend_end_year END AS trend_end_year,
       d.state_fips,
       d.enrollment
  FROM public.districts d
  LEFT JOIN public.states s  ON s.fips = d.state_fips
  LEFT JOIN public.states n ON n.fips = '00'
  CROSS JOIN LATERAL (VALUES
    ('absenteeism'::text,     d.chronic_absenteeism_rate::numeric, s.avg_chronic_absenteeism_rate::numeric, n.avg_chronic_absenteeism_rate::numeric,
                              d.absenteeism_vs_state, d.absenteeism_vs_national, d.absenteeism_quartile_state, d.absenteeism_trend_3yr,
                              d.absenteeism_vs_peers),
    ('graduation',            d.graduation_rate_total, s.avg_graduation_rate, n.avg_graduation_rate,
                              d.graduation_vs_state, d.graduation_vs_national, d.graduation_quartile_state, d.graduation_trend_3yr,
                              d.graduation_vs_peers),
    ('student_teacher_ratio', d.student_teacher_ratio, s.avg_student_teacher_ratio, n.avg_student_teacher_ratio,
                              d.student_teacher_ratio_vs_state, d.student_teacher_ratio_vs_national,
                              d.student_teacher_ratio_quartile_state, d.student_teacher_ratio_trend_3yr,
                              d.student_teacher_ratio_vs_peers),
    ('swd_pct',               d.swd_pct, s.avg_swd_pct, n.avg_swd_pct,
                              d.swd_pct_vs_state, d.swd_pct_vs_national, d.swd_pct_quartile_state, d.swd_trend_3yr,
                              d.swd_pct_vs_peers),
    ('ell_pct',               d.ell_pct, s.avg_ell_pct, n.avg_ell_pct,
                              d.ell_pct_vs_state, d.ell_pct_vs_national, d.ell_pct_quartile_state, d.ell_trend_3yr,
                              d.ell_pct_vs_peers),
    ('math_proficiency',      d.math_proficiency_pct, s.avg_math_proficiency, n.avg_math_proficiency,
                              d.math_proficiency_vs_state, d.math_proficiency_vs_national,
                              d.math_proficiency_quartile_state, d.math_proficiency_trend_3yr,
                              d.math_proficiency_vs_peers),
    ('read_proficiency',      d.read_proficiency_pct, s.avg_read_proficiency, n.avg_read_proficiency,
                              d.read_proficiency_vs_state, d.read_proficiency_vs_national,
                              d.read_proficiency_quartile_state, d.read_proficiency_trend_3yr,
                              d.read_proficiency_vs_peers),
    ('expenditure_pp',        d.expenditure_per_pupil, s.avg_expenditure_per_pupil, n.avg_expenditure_per_pupil,
                              d.expenditure_pp_vs_state, d.expenditure_pp_vs_national,
                              d.expenditure_pp_quartile_state, d.expenditure_pp_trend_3yr,
                              d.expenditure_pp_vs_peers)
  ) AS m (metric, value, state_avg, national_avg, vs_state, vs_national, quartile_state, trend_3yr, vs_peers)
  LEFT JOIN public.benchmark_metrics bm ON bm.metric = m.metric;

COMMENT ON VIEW public.district_benchmarks IS
  'One row per district and metric: value and its school year, state and national averages, differences, '
  'within-state tier, 3-year trend and its years, the comparison with the district''s peer group, and the '
  'metric''s units (benchmark_metrics).';
COMMENT ON COLUMN public.district_benchmarks.leaid IS 'NCES local education agency id, 7 digits (districts.leaid).';
COMMENT ON COLUMN public.district_benchmarks.name IS 'District name.';
COMMENT ON COLUMN public.district_benchmarks.state_abbrev IS 'State postal abbreviation, e.g. OR.';
COMMENT ON COLUMN public.district_benchmarks.metric IS
    'absenteeism, graduation, student_teacher_ratio, swd_pct, ell_pct, math_proficiency, read_proficiency or '
    'expenditure_pp (benchmark_metrics.metric).';
COMMENT ON COLUMN public.district_benchmarks.value IS
    'The district''s current value, in unit (percent, students per teacher, dollars per pupil), from value_year.';
COMMENT ON COLUMN public.district_benchmarks.state_avg IS
    'Average of the state''s districts with enrollment > 0: enrollment-weighted (SWD % and ELL %: total count / '
    'total enrollment), so a district can be above the average yet in a low tier.';
COMMENT ON COLUMN public.district_benchmarks.national_avg IS 'The same average over all districts (states row 00).';
COMMENT ON COLUMN public.district_benchmarks.vs_state IS
    'value - state_avg, in unit (percentage points for percent); positive = above.';
COMMENT ON COLUMN public.district_benchmarks.vs_national IS 'value - national_avg, in unit; positive = above.';
COMMENT ON COLUMN public.district_benchmarks.quartile_state IS
    'Within-state tier by percentile rank among the state''s districts with a value (each district counts once, '
    'whatever its size): well_above (top quarter), above, below, well_below. Describes size, not quality. NULL '
    'when fewer than 4 districts of the state have a value.';
COMMENT ON COLUMN public.district_benchmarks.trend_3yr IS
    'Change from trend_base_year to trend_end_year, in trend_unit.';
COMMENT ON COLUMN public.district_benchmarks.peer_avg IS
    'Unweighted average of the district''s peers'' values (district_peers), = value - vs_peers.';
COMMENT ON COLUMN public.district_benchmarks.vs_peers IS
    'value - peer_avg, in unit; NULL when fewer than 10 peers have a value or the district has no peer group.';
COMMENT ON COLUMN public.district_benchmarks.tier_rank IS
    'quartile_state as a number that sorts: 1 = well_below, 2 = below, 3 = above, 4 = well_above.';
COMMENT ON COLUMN public.district_benchmarks.unit IS
    'Unit of value, the averages and the differences: percent, students per teacher, or dollars.';
COMMENT ON COLUMN public.district_benchmarks.trend_unit IS
    'Unit of trend_3yr: percentage points, percent change, or students per teacher.';
COMMENT ON COLUMN public.district_benchmarks.higher_is_better IS
    'true when higher is better, false when lower is, NULL when neither.';
COMMENT ON COLUMN public.district_benchmarks.value_year IS
    'School year of value (fall: 2021 = 2021-22); NULL when value is NULL.';
COMMENT ON COLUMN public.district_benchmarks.trend_base_year IS
    'School year trend_3yr compares from; NULL when trend_3yr is NULL.';
COMMENT ON COLUMN public.district_benchmarks.trend_end_year IS
    'School year trend_3yr compares to; NULL when trend_3yr is NULL.';
COMMENT ON COLUMN public.district_benchmarks.state_fips IS 'State FIPS code, 2 digits (districts.state_fips).';
COMMENT ON COLUMN public.district_benchmarks.enrollment IS 'The district''s current enrollment (students).';

-- states
COMMENT ON COLUMN public.states.fips IS 'State FIPS code, 2 digits; 00 = the national row.';
COMMENT ON COLUMN public.states.abbrev IS 'Postal abbreviation; US for the national row.';
COMMENT ON COLUMN public.states.name IS 'State or territory name.';
COMMENT ON COLUMN public.states.avg_chronic_absenteeism_rate IS
    'Enrollment-weighted average chronic absenteeism rate (percent) of the districts with enrollment > 0.';
COMMENT ON COLUMN public.states.avg_student_teacher_ratio IS
    'Enrollment-weighted average students per teacher of the districts with enrollment > 0.';
COMMENT ON COLUMN public.states.avg_swd_pct IS
    'Students with disabilities, percent: 100 x total spec_ed_students / total enrollment.';
COMMENT ON COLUMN public.states.avg_ell_pct IS
    'English learners, percent: 100 x total ell_students / total enrollment.';
COMMENT ON COLUMN public.states.avg_enrollment IS 'Mean enrollment per district (rounded).';
COMMENT ON COLUMN public.states.avg_math_proficiency IS 'Enrollment-weighted average math proficiency (percent).';
COMMENT ON COLUMN public.states.avg_read_proficiency IS 'Enrollment-weighted average reading proficiency (percent).';
COMMENT ON COLUMN public.states.avg_graduation_rate IS 'Enrollment-weighted average graduation rate (percent).';
COMMENT ON COLUMN public.states.avg_expenditure_per_pupil IS
    'Enrollment-weighted average current expenditure per pupil (dollars).';
COMMENT ON COLUMN public.states.avg_poverty_rate IS
    'Unweighted mean of the districts'' child poverty rates (percent of children 5-17, SAIPE).';
COMMENT ON COLUMN public.states.total_districts IS 'Districts with enrollment > 0 (the averages'' base).';
COMMENT ON COLUMN public.states.total_enrollment IS 'Total enrollment of those districts.';
COMMENT ON COLUMN public.states.aggregates_updated_at IS 'When compute_state_averages() last changed this row.';
COMMENT ON COLUMN public.states.created_at IS 'When the row was inserted.';
COMMENT ON COLUMN public.states.updated_at IS 'When the row was last changed.';

-- districts: identity and descriptive columns
COMMENT ON COLUMN public.districts.leaid IS 'NCES local education agency id, 7 digits (2-digit state FIPS first).';
COMMENT ON COLUMN public.districts.name IS 'District name (CCD directory).';
COMMENT ON COLUMN public.districts.state_fips IS 'State FIPS code (states.fips).';
COMMENT ON COLUMN public.districts.state_abbrev IS 'State postal abbreviation.';
COMMENT ON COLUMN public.districts.city IS 'City of the district office (CCD directory).';
COMMENT ON COLUMN public.districts.county_name IS 'County (CCD directory).';
COMMENT ON COLUMN public.districts.urban_centric_locale IS
    'NCES urban-centric locale code (11-13 city, 21-23 suburb, 31-33 town, 41-43 rural).';
COMMENT ON COLUMN public.districts.agency_type IS
    'NCES agency type (1 = regular local school district, 2 = component of a supervisory union, ...).';
COMMENT ON COLUMN public.districts.directory_year IS
    'Latest CCD directory year (fall) that listed the district; the descriptive columns come from it.';
-- districts: current values (compute_current_values(); year per metric in benchmark_metrics.value_year)
COMMENT ON COLUMN public.districts.enrollment IS 'Enrollment (students), latest CCD directory year with a value.';
COMMENT ON COLUMN public.districts.spec_ed_students IS 'Students with disabilities (IDEA), latest year.';
COMMENT ON COLUMN public.districts.ell_students IS 'English language learners, latest year.';
COMMENT ON COLUMN public.districts.teachers_fte IS 'Teachers, full-time equivalents, latest year.';
COMMENT ON COLUMN public.districts.student_teacher_ratio IS 'enrollment / teachers_fte (students per teacher).';
COMMENT ON COLUMN public.districts.chronic_absenteeism_rate IS
    'Percent of students chronically absent (CRDC, biennial), latest survey year.';
COMMENT ON COLUMN public.districts.graduation_rate_total IS
    'Adjusted cohort graduation rate, percent (EDFacts), latest year.';
COMMENT ON COLUMN public.districts.math_proficiency_pct IS
    'Percent of students proficient in math, all grades (EDFacts), latest year.';
COMMENT ON COLUMN public.districts.read_proficiency_pct IS
    'Percent of students proficient in reading, all grades (EDFacts), latest year.';
COMMENT ON COLUMN public.districts.expenditure_per_pupil IS
    'Current expenditure per pupil, dollars (CCD finance), latest year.';
COMMENT ON COLUMN public.districts.children_poverty_percent IS
    'Percent of children 5-17 in poverty (SAIPE estimate), latest year.';
COMMENT ON COLUMN public.districts.swd_pct IS 'Students with disabilities, percent of enrollment.';
COMMENT ON COLUMN public.districts.ell_pct IS 'English learners, percent of enrollment.';
COMMENT ON COLUMN public.districts.swd_trend_3yr IS
    'Percent change of spec_ed_students over up to 3 years (benchmark_metrics trend years).';
COMMENT ON COLUMN public.districts.ell_trend_3yr IS 'Percent change of ell_students over up to 3 years.';
COMMENT ON COLUMN public.districts.absenteeism_trend_3yr IS
    'Change in chronic_absenteeism_rate, percentage points, since the previous survey year.';
COMMENT ON COLUMN public.districts.graduation_trend_3yr IS
    'Change in graduation_rate_total, percentage points, over up to 3 years.';
COMMENT ON COLUMN public.districts.student_teacher_ratio_trend_3yr IS
    'Change in students per teacher over up to 3 years.';
COMMENT ON COLUMN public.districts.math_proficiency_trend_3yr IS
    'Change in math_proficiency_pct, percentage points, over up to 3 years.';
COMMENT ON COLUMN public.districts.read_proficiency_trend_3yr IS
    'Change in read_proficiency_pct, percentage points, over up to 3 years.';
COMMENT ON COLUMN public.districts.expenditure_pp_trend_3yr IS
    'Percent change of expenditure_per_pupil over up to 3 years.';
COMMENT ON COLUMN public.districts.created_at IS 'When the row was inserted.';
COMMENT ON COLUMN public.districts.updated_at IS 'When the row was last changed (loader or compute functions).';

-- districts: the three columns per metric, and the peer difference where 0060 left it without a direction
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('absenteeism',           'chronic_absenteeism_rate', 'percentage points'),
        ('graduation',            'graduation_rate_total',    'percentage points'),
        ('student_teacher_ratio', 'student_teacher_ratio',    'students per teacher'),
        ('swd_pct',               'swd_pct',                  'percentage points'),
        ('ell_pct',               'ell_pct',                  'percentage points'),
        ('math_proficiency',      'math_proficiency_pct',     'percentage points'),
        ('read_proficiency',      'read_proficiency_pct',     'percentage points'),
        ('expenditure_pp',        'expenditure_per_pupil',    'dollars')) v(m, col, unit)
    LOOP
        EXECUTE format('COMMENT ON COLUMN public.districts.%I IS %L', r.m || '_vs_state',
            format('%s minus the state average (states.avg_*, enrollment-weighted), %s; positive = above.',
                   r.col, r.unit));
        EXECUTE format('COMMENT ON COLUMN public.districts.%I IS %L', r.m || '_vs_national',
            format('%s minus the national average (states row 00), %s; positive = above.', r.col, r.unit));
        EXECUTE format('COMMENT ON COLUMN public.districts.%I IS %L', r.m || '_quartile_state',
            format('Tier of %s among the state''s districts with a value, by percentile rank (each district '
                   'counts once): well_above (top quarter), above, below, well_below. Size, not quality; NULL '
                   'when fewer than 4 districts of the state have a value.', r.col));
    END LOOP;
END
$$;

-- district_data_history
COMMENT ON COLUMN public.district_data_history.leaid IS 'District, NCES LEAID (7 digits).';
COMMENT ON COLUMN public.district_data_history.year IS 'School year as its fall: 2021 = 2021-22.';
COMMENT ON COLUMN public.district_data_history.source IS
    'Where the row came from: ccd_directory, ccd_finance, edfacts_grad, edfacts_assess, crdc_absenteeism, saipe.';
COMMENT ON COLUMN public.district_data_history.enrollment IS 'ccd_directory: enrollment (students).';
COMMENT ON COLUMN public.district_data_history.spec_ed_students IS 'ccd_directory: students with disabilities.';
COMMENT ON COLUMN public.district_data_history.ell_students IS 'ccd_directory: English language learners.';
COMMENT ON COLUMN public.district_data_history.teachers_fte IS 'ccd_directory: teachers, full-time equivalents.';
COMMENT ON COLUMN public.district_data_history.graduation_rate IS 'edfacts_grad: graduation rate, percent.';
COMMENT ON COLUMN public.district_data_history.math_proficiency IS 'edfacts_assess: math proficiency, percent.';
COMMENT ON COLUMN public.district_data_history.read_proficiency IS 'edfacts_assess: reading proficiency, percent.';
COMMENT ON COLUMN public.district_data_history.expenditure_pp IS 'ccd_finance: current expenditure per pupil, dollars.';
COMMENT ON COLUMN public.district_data_history.chronic_absenteeism_rate IS
    'crdc_absenteeism: percent of students chronically absent.';
COMMENT ON COLUMN public.district_data_history.children_poverty_percent IS
    'saipe: percent of children 5-17 in poverty (0-100).';
COMMENT ON COLUMN public.district_data_history.created_at IS 'When the row was first landed.';
COMMENT ON COLUMN public.district_data_history.updated_at IS 'When a value of the row last changed.';

-- data_refresh_logs (status has its comment since 0050)
COMMENT ON COLUMN public.data_refresh_logs.id IS 'Run id.';
COMMENT ON COLUMN public.data_refresh_logs.data_source IS
    'A loader source (ccd_directory, ...) or compute_benchmarks.';
COMMENT ON COLUMN public.data_refresh_logs.records_updated IS
    'Loader: history rows inserted or changed; compute: states and district rows changed.';
COMMENT ON COLUMN public.data_refresh_logs.records_failed IS
    'Loader: records skipped, not failed (no or bad LEAID, wrong year, unknown state; the run still '
    'succeeds); compute: 0.';
COMMENT ON COLUMN public.data_refresh_logs.error_message IS 'Why the run failed.';
COMMENT ON COLUMN public.data_refresh_logs.started_at IS 'When the run started.';
COMMENT ON COLUMN public.data_refresh_logs.completed_at IS 'When it finished; NULL while running.';
COMMENT ON COLUMN public.data_refresh_logs.details IS
    'The run''s figures: compute_all_benchmarks()''s summary, or the loader''s per-source counts.';

-- ingest_slices
COMMENT ON COLUMN public.ingest_slices.source IS 'Loader source.';
COMMENT ON COLUMN public.ingest_slices.year IS 'School year (fall).';
COMMENT ON COLUMN public.ingest_slices.state_fips IS 'State FIPS code.';
COMMENT ON COLUMN public.ingest_slices.status IS 'done (landed) or failed (the next ingest tries again).';
COMMENT ON COLUMN public.ingest_slices.pages IS 'API pages read.';
COMMENT ON COLUMN public.ingest_slices.rows_received IS 'Records received.';
COMMENT ON COLUMN public.ingest_slices.rows_inserted IS 'History rows inserted.';
COMMENT ON COLUMN public.ingest_slices.rows_updated IS 'History rows whose values changed.';
COMMENT ON COLUMN public.ingest_slices.rows_unchanged IS 'History rows already as received.';
COMMENT ON COLUMN public.ingest_slices.values_nulled IS 'Values stored as NULL (negative codes, junk, out of range).';
COMMENT ON COLUMN public.ingest_slices.records_skipped IS 'Records not landed (no or bad LEAID, wrong year, unknown state, ...).';
COMMENT ON COLUMN public.ingest_slices.counts IS 'The cleaning counts by kind.';
COMMENT ON COLUMN public.ingest_slices.error IS 'Why the last attempt failed.';
COMMENT ON COLUMN public.ingest_slices.finished_at IS 'When the last attempt finished.';
