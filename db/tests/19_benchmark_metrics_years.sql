-- benchmark_metrics: the units are seeded; the years are written by the compute functions, only when they change.
BEGIN;
SELECT plan(12);

SELECT has_table('public', 'benchmark_metrics', 'benchmark_metrics exists');
SELECT set_eq($$SELECT metric FROM benchmark_metrics$$,
    ARRAY['absenteeism', 'graduation', 'student_teacher_ratio', 'swd_pct', 'ell_pct', 'math_proficiency',
          'read_proficiency', 'expenditure_pp'], 'one row per metric of the view');
SELECT table_privs_are('public', 'benchmark_metrics', 'district_benchmarks_reader', ARRAY['SELECT'],
    'the reader role may read it');

-- history: directory 2019-2022 (teachers only to 2021), grad 2018-2020, absenteeism 2017 and 2020, no finance
INSERT INTO districts (leaid, name, state_fips, state_abbrev) VALUES ('0100001', 'A', '01', 'AL'), ('0100002', 'B', '01', 'AL');
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte)
SELECT l, y, 'ccd_directory', 1000, 100, 50, CASE WHEN y <= 2021 THEN 50 END
  FROM unnest(ARRAY['0100001', '0100002']) l, generate_series(2019, 2022) y;
INSERT INTO district_data_history (leaid, year, source, graduation_rate)
SELECT '0100001', y, 'edfacts_grad', 80 + y - 2018 FROM generate_series(2018, 2020) y;
-- a negative code is no value: 2021 does not count as graduation's latest year
INSERT INTO district_data_history (leaid, year, source, graduation_rate) VALUES ('0100001', 2021, 'edfacts_grad', -3);
INSERT INTO district_data_history (leaid, year, source, chronic_absenteeism_rate)
VALUES ('0100001', 2017, 'crdc_absenteeism', 10), ('0100001', 2020, 'crdc_absenteeism', 12);

SELECT compute_current_values();
SELECT results_eq(
    $$SELECT metric, value_year::int FROM benchmark_metrics ORDER BY position$$,
    $$VALUES ('absenteeism'::text, 2020::int), ('graduation', 2020), ('student_teacher_ratio', 2021),
             ('swd_pct', 2022), ('ell_pct', 2022), ('math_proficiency', NULL), ('read_proficiency', NULL),
             ('expenditure_pp', NULL)$$,
    'value_year: the latest year with a value; for students per teacher the earlier of enrollment''s and teachers''');

SELECT compute_district_trends();
SELECT results_eq(
    $$SELECT metric, trend_base_year::int, trend_end_year::int FROM benchmark_metrics ORDER BY position$$,
    $$VALUES ('absenteeism'::text, 2017::int, 2020::int), ('graduation', 2018, 2020),
             ('student_teacher_ratio', 2019, 2021), ('swd_pct', 2019, 2022), ('ell_pct', 2019, 2022),
             ('math_proficiency', NULL, NULL), ('read_proficiency', NULL, NULL), ('expenditure_pp', NULL, NULL)$$,
    'trend years: [max(first, Y - 3), Y]; absenteeism: the survey before Y');
SELECT results_eq(
    $$SELECT metric, value_year::int, trend_base_year::int, trend_end_year::int FROM district_benchmarks
       WHERE leaid = '0100001' AND metric IN ('absenteeism', 'graduation') ORDER BY metric$$,
    $$VALUES ('absenteeism'::text, 2020::int, 2017::int, 2020::int), ('graduation', 2020, 2018, 2020)$$,
    'the view shows them next to the district''s values');

-- a rerun on unchanged data rewrites no row of benchmark_metrics
CREATE TEMPORARY TABLE before_rerun AS SELECT metric, ctid::text AS x FROM benchmark_metrics;
SELECT compute_all_benchmarks();
SELECT is((SELECT count(*)::int FROM benchmark_metrics b JOIN before_rerun r USING (metric) WHERE b.ctid::text <> r.x), 0,
    'compute_all_benchmarks() on unchanged data writes no row of benchmark_metrics');

-- one year only: no trend, so no base year; the end year stays
DELETE FROM district_data_history WHERE source = 'edfacts_grad' AND year < 2020;
SELECT compute_all_benchmarks();
SELECT results_eq($$SELECT value_year::int, trend_base_year::int, trend_end_year::int FROM benchmark_metrics WHERE metric = 'graduation'$$,
    $$VALUES (2020::int, NULL::int, 2020::int)$$, 'with one year loaded: no base year');
SELECT is((SELECT count(*)::int FROM benchmark_metrics b JOIN before_rerun r USING (metric) WHERE b.ctid::text <> r.x), 1,
    'only the row whose years changed was rewritten');

-- all history gone: every year becomes NULL (never a stale leftover)
DELETE FROM district_data_history;
SELECT compute_all_benchmarks();
SELECT is((SELECT count(*)::int FROM benchmark_metrics
            WHERE value_year IS NOT NULL OR trend_base_year IS NOT NULL OR trend_end_year IS NOT NULL), 0,
    'without history every year is NULL');
SELECT is((SELECT count(*)::int FROM district_benchmarks WHERE value_year IS NOT NULL), 0,
    'and the view shows none');

-- compute_all_benchmarks(false) leaves the value years with the stored current values
UPDATE benchmark_metrics SET value_year = 2015 WHERE metric = 'graduation';
SELECT compute_all_benchmarks(false);
SELECT is((SELECT value_year FROM benchmark_metrics WHERE metric = 'graduation'), 2015::smallint,
    'compute_all_benchmarks(false) keeps the value years, as it keeps the current values');

SELECT * FROM finish();
ROLLBACK;
