-- The long-form view district_benchmarks: one row per district × metric, columns wired to the right sources.
BEGIN;
SELECT plan(27);

SELECT has_view('public', 'district_benchmarks', 'the view exists');
SELECT columns_are('public', 'district_benchmarks',
    ARRAY['leaid', 'name', 'state_abbrev', 'metric', 'value', 'state_avg', 'national_avg',
          'vs_state', 'vs_national', 'quartile_state', 'trend_3yr', 'peer_avg', 'vs_peers', 'tier_rank', 'unit',
          'trend_unit', 'higher_is_better', 'value_year', 'trend_base_year', 'trend_end_year', 'state_fips',
          'enrollment'],
    'the view has exactly the documented columns');

-- fixture: one district in Alabama with a value for every metric, averages on AL and US.
UPDATE states SET avg_chronic_absenteeism_rate = 12.50, avg_graduation_rate = 88.00, avg_student_teacher_ratio = 15.00,
       avg_swd_pct = 14.00, avg_ell_pct = 5.00, avg_math_proficiency = 40.00, avg_read_proficiency = 45.00,
       avg_expenditure_per_pupil = 12000.00
 WHERE fips = '01';
UPDATE states SET avg_chronic_absenteeism_rate = 15.00, avg_graduation_rate = 86.00, avg_student_teacher_ratio = 16.00,
       avg_swd_pct = 15.00, avg_ell_pct = 10.00, avg_math_proficiency = 38.00, avg_read_proficiency = 44.00,
       avg_expenditure_per_pupil = 14000.00
 WHERE fips = '00';
INSERT INTO districts (leaid, name, state_fips, state_abbrev,
        chronic_absenteeism_rate, graduation_rate_total, student_teacher_ratio, swd_pct, ell_pct,
        math_proficiency_pct, read_proficiency_pct, expenditure_per_pupil,
        absenteeism_vs_state, absenteeism_vs_national, absenteeism_quartile_state, absenteeism_trend_3yr,
        swd_trend_3yr, expenditure_pp_trend_3yr, expenditure_pp_quartile_state, graduation_vs_national,
        absenteeism_vs_peers, math_proficiency_vs_peers)
VALUES ('0100001', 'Test District', '01', 'AL',
        20.00, 90.00, 14.25, 16.00, 2.00, 41.00, 46.00, 13000.00,
        7.50, 5.00, 'well_above', -1.50,
        12.34, 3.21, 'below', 4.00,
        -2.25, 3.10),
       ('0100002', 'Empty District', '01', 'AL',
        NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

SELECT is((SELECT count(*)::int FROM district_benchmarks WHERE leaid = '0100001'), 8, 'eight metrics per district');
SELECT is((SELECT count(*)::int FROM district_benchmarks WHERE leaid = '0100002'), 8,
    'a district with no values still has its eight rows (all NULL)');
SELECT set_eq($$SELECT metric FROM district_benchmarks WHERE leaid = '0100001'$$,
    ARRAY['absenteeism', 'graduation', 'student_teacher_ratio', 'swd_pct', 'ell_pct',
          'math_proficiency', 'read_proficiency', 'expenditure_pp'], 'the eight metric names');
SELECT results_eq(
    $$SELECT value, state_avg, national_avg, vs_state, vs_national, quartile_state::text, trend_3yr
        FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'absenteeism'$$,
    $$VALUES (20.00::numeric, 12.50::numeric, 15.00::numeric, 7.50::numeric, 5.00::numeric, 'well_above', -1.50::numeric)$$,
    'absenteeism row: value, averages, deltas, tier and trend come from the absenteeism columns');
SELECT is((SELECT value FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'graduation'), 90.00,
    'graduation value is graduation_rate_total');
SELECT is((SELECT vs_national FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'graduation'), 4.00,
    'graduation vs_national is graduation_vs_national');
SELECT is((SELECT value FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'student_teacher_ratio'), 14.25,
    'student_teacher_ratio value');
SELECT is((SELECT trend_3yr FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'swd_pct'), 12.34,
    'swd_pct trend is swd_trend_3yr');
SELECT results_eq(
    $$SELECT value, state_avg, national_avg, quartile_state::text, trend_3yr
        FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'expenditure_pp'$$,
    $$VALUES (13000.00::numeric, 12000.00::numeric, 14000.00::numeric, 'below', 3.21::numeric)$$,
    'expenditure_pp row uses expenditure_per_pupil and its averages');
SELECT is((SELECT state_avg FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'read_proficiency'), 45.00,
    'read_proficiency state average');
SELECT is((SELECT national_avg FROM district_benchmarks WHERE leaid = '0100001' AND metric = 'ell_pct'), 10.00,
    'ell_pct national average');

-- the peer comparison: vs_peers from the metric's own column, peer_avg = value - vs_peers; the columns the view
-- had before come first, in their old order (a view can only gain columns at the end)
SELECT results_eq(
    $$SELECT metric, value, peer_avg, vs_peers FROM district_benchmarks
       WHERE leaid = '0100001' AND metric IN ('absenteeism', 'math_proficiency', 'graduation') ORDER BY metric$$,
    $$VALUES ('absenteeism'::text, 20.00::numeric, 22.25::numeric, -2.25::numeric),
             ('graduation', 90.00, NULL, NULL),
             ('math_proficiency', 41.00, 37.90, 3.10)$$,
    'vs_peers is {m}_vs_peers; peer_avg = value - vs_peers, NULL without a difference');
SELECT is((SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'public.district_benchmarks'::regclass AND attnum > 0),
          ARRAY['leaid', 'name', 'state_abbrev', 'metric', 'value', 'state_avg', 'national_avg', 'vs_state',
                'vs_national', 'quartile_state', 'trend_3yr', 'peer_avg', 'vs_peers', 'tier_rank', 'unit',
                'trend_unit', 'higher_is_better', 'value_year', 'trend_base_year', 'trend_end_year', 'state_fips',
                'enrollment'],
          'the new columns come last, after the existing ones in their order');

-- 1.3.0: a sortable tier, the units and direction, the years, the state and the enrollment
SELECT col_type_is('public', 'district_benchmarks', 'tier_rank', 'smallint', 'tier_rank is a smallint');
SELECT col_type_is('public', 'district_benchmarks', 'value_year', 'smallint', 'value_year is a smallint');
SELECT col_type_is('public', 'district_benchmarks', 'higher_is_better', 'boolean', 'higher_is_better is a boolean');
UPDATE districts SET enrollment = 5000, graduation_quartile_state = 'above', math_proficiency_quartile_state = 'well_below',
       read_proficiency_quartile_state = 'below'
 WHERE leaid = '0100001';
SELECT results_eq(
    $$SELECT metric, quartile_state::text, tier_rank::int FROM district_benchmarks
       WHERE leaid = '0100001' AND quartile_state IS NOT NULL ORDER BY tier_rank$$,
    $$VALUES ('math_proficiency'::text, 'well_below'::text, 1), ('read_proficiency', 'below', 2),
             ('expenditure_pp', 'below', 2), ('graduation', 'above', 3), ('absenteeism', 'well_above', 4)$$,
    'tier_rank: 1 = well_below ... 4 = well_above, so tiers sort');
SELECT is((SELECT count(*)::int FROM district_benchmarks WHERE quartile_state IS NULL AND tier_rank IS NOT NULL), 0,
    'no tier, no tier_rank');
SELECT results_eq(
    $$SELECT metric, unit, trend_unit, higher_is_better FROM district_benchmarks WHERE leaid = '0100001' ORDER BY metric$$,
    $$VALUES ('absenteeism'::text, 'percent'::text, 'percentage points'::text, false),
             ('ell_pct', 'percent', 'percent change', NULL::boolean),
             ('expenditure_pp', 'dollars', 'percent change', NULL),
             ('graduation', 'percent', 'percentage points', true),
             ('math_proficiency', 'percent', 'percentage points', true),
             ('read_proficiency', 'percent', 'percentage points', true),
             ('student_teacher_ratio', 'students per teacher', 'students per teacher', false),
             ('swd_pct', 'percent', 'percent change', NULL)$$,
    'unit, trend_unit and higher_is_better per metric');
UPDATE benchmark_metrics SET value_year = 2022, trend_base_year = 2018, trend_end_year = 2021 WHERE metric = 'absenteeism';
UPDATE benchmark_metrics SET value_year = 2021, trend_base_year = 2018, trend_end_year = 2021 WHERE metric = 'graduation';
SELECT results_eq(
    $$SELECT leaid, metric, value_year::int, trend_base_year::int, trend_end_year::int FROM district_benchmarks
       WHERE metric IN ('absenteeism', 'graduation') ORDER BY leaid, metric$$,
    $$VALUES ('0100001'::varchar, 'absenteeism'::text, 2022, 2018, 2021),
             ('0100001', 'graduation', 2021, NULL, NULL),
             ('0100002', 'absenteeism', NULL, NULL, NULL),
             ('0100002', 'graduation', NULL, NULL, NULL)$$,
    'value_year with a value only, the trend years with a trend only (graduation has a value but no trend)');
SELECT results_eq(
    $$SELECT DISTINCT state_fips, enrollment FROM district_benchmarks WHERE leaid = '0100001'$$,
    $$VALUES ('01'::varchar, 5000)$$,
    'state_fips and enrollment are the district''s');
SELECT is((SELECT count(*)::int FROM district_benchmarks), 8 * (SELECT count(*)::int FROM districts),
    'the join to benchmark_metrics adds no rows');

-- privileges: readers may read the view, nobody else by default
SELECT table_privs_are('public', 'district_benchmarks', 'district_benchmarks_reader', ARRAY['SELECT'],
    'the reader role may select from the view');
SET LOCAL ROLE district_benchmarks_reader;
SELECT is((SELECT count(*)::int FROM district_benchmarks WHERE leaid = '0100001'), 8, 'the reader role reads the view');
SELECT throws_ok($$UPDATE districts SET name = 'x' WHERE leaid = '0100001'$$, '42501', NULL,
    'the reader role cannot write districts');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
