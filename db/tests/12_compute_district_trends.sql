-- compute_district_trends(): swd/ell percentages, Y/B per metric (B = max(earliest, Y - 3)), biennial
-- absenteeism, % change NULL on a zero base, missing base, short history, out-of-range, stale values cleared.
BEGIN;
SELECT plan(12);

DELETE FROM district_data_history;
DELETE FROM districts;

INSERT INTO districts (leaid, state_fips, enrollment, spec_ed_students, ell_students) VALUES
    ('0100001', '01', 1100, 110,  40),     -- swd 100*110/1100 = 10.00, ell 100*40/1100 = 3.6363 -> 3.64
    ('0100002', '01', 0,    5,    4),      -- enrollment 0: no percentages
    ('0100003', '01', NULL, NULL, NULL),
    ('0100004', '01', 80,   -1,   8),      -- negative count is missing; ell 10.00
    ('0100005', '01', NULL, NULL, NULL),
    ('0100006', '01', 1,    50,   NULL),   -- swd 5000.00 does not fit numeric(5,2)
    ('0200001', '02', NULL, NULL, NULL),   -- no history at all
    ('9900001', NULL, NULL, NULL, NULL);   -- no state
UPDATE districts SET updated_at = '2000-01-01';
-- stale values that must become NULL
UPDATE districts SET swd_trend_3yr = 1, ell_trend_3yr = 1, student_teacher_ratio_trend_3yr = 1, graduation_trend_3yr = 1,
       math_proficiency_trend_3yr = 1, read_proficiency_trend_3yr = 1, expenditure_pp_trend_3yr = 1,
       absenteeism_trend_3yr = 1, swd_pct = 1, ell_pct = 1
 WHERE leaid IN ('0100003', '0200001');

-- ccd_directory years 2016, 2019, 2020, 2022: Y = 2022, B = max(2016, 2022 - 3) = 2019 for swd, ell and ratio
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte) VALUES
    ('0100001', 2016, 'ccd_directory', 10,      1,     1,     1),    -- earliest year, but older than Y - 3
    ('0100001', 2019, 'ccd_directory', 1000,    100,   50,    50),   -- ratio 20
    ('0100001', 2022, 'ccd_directory', 1100,    110,   40,    50),   -- ratio 22: swd +10.00 %, ell -20.00 %, ratio +2.00
    ('0100002', 2019, 'ccd_directory', 100,     0,     3,     0),    -- swd base 0 -> NULL; no ratio at B
    ('0100002', 2022, 'ccd_directory', 90,      5,     4,     9),    -- ell 100*(4-3)/3 = 33.33
    ('0100003', 2020, 'ccd_directory', 100,     10,    10,    10),   -- no row at B = 2019: no trends
    ('0100003', 2022, 'ccd_directory', 100,     12,    12,    10),
    ('0100004', 2019, 'ccd_directory', -1,      -1,    7,     5),    -- negative codes at B are missing
    ('0100004', 2022, 'ccd_directory', 50,      9,     8,     5),    -- ell 100*(8-7)/7 = 14.2857 -> 14.29
    ('0100005', 2019, 'ccd_directory', 30000,   20000, 20000, 7),    -- swd 100*1/20000 = 0.005 -> 0.01,
    ('0100005', 2022, 'ccd_directory', 30001,   20001, 19999, 3),    -- ell -0.005 -> -0.01 (half away from zero)
                                                                     -- ratio 30001/3 - 30000/7 = 5714.619... -> 5714.62
    ('0100006', 2019, 'ccd_directory', 1,       NULL,  NULL,  0.01), -- ratio 100
    ('0100006', 2022, 'ccd_directory', 2000000, NULL,  NULL,  0.01); -- ratio 200000000: change does not fit
-- crdc years 2013, 2015, 2020, and 2021 with only a suppressed rate: Y = 2020, B = 2015 (latest year before Y)
INSERT INTO district_data_history (leaid, year, source, chronic_absenteeism_rate) VALUES
    ('0100001', 2015, 'crdc_absenteeism', 20),
    ('0100001', 2020, 'crdc_absenteeism', 17.5),   -- -2.50
    ('0100002', 2013, 'crdc_absenteeism', 10),
    ('0100002', 2020, 'crdc_absenteeism', 12),     -- no 2015 rate: NULL (2013 is not the base)
    ('0100003', 2015, 'crdc_absenteeism', 5),
    ('0100003', 2020, 'crdc_absenteeism', 6.25),   -- +1.25
    ('0100003', 2021, 'crdc_absenteeism', -3),
    ('9900001', 2015, 'crdc_absenteeism', 10),
    ('9900001', 2020, 'crdc_absenteeism', 11);     -- +1.00 without a state
-- edfacts_grad: short history 2020-2021, so B = max(2020, 2018) = 2020
INSERT INTO district_data_history (leaid, year, source, graduation_rate) VALUES
    ('0100001', 2020, 'edfacts_grad', 80.5),
    ('0100001', 2021, 'edfacts_grad', 85.25),      -- +4.75
    ('0100002', 2021, 'edfacts_grad', 70);         -- no base value
-- edfacts_assess: math in 2018 and 2021 (B = 2018); read only in 2021 (B = Y: no read trend at all)
INSERT INTO district_data_history (leaid, year, source, math_proficiency, read_proficiency) VALUES
    ('0100001', 2018, 'edfacts_assess', 30,   NULL),
    ('0100001', 2021, 'edfacts_assess', 35.5, 60),   -- math +5.50
    ('0100002', 2018, 'edfacts_assess', 50,   NULL),
    ('0100002', 2021, 'edfacts_assess', 45,   61);   -- math -5.00
-- ccd_finance 2018 and 2021
INSERT INTO district_data_history (leaid, year, source, expenditure_pp) VALUES
    ('0100001', 2018, 'ccd_finance', 10000),
    ('0100001', 2021, 'ccd_finance', 11000),       -- +10.00 %
    ('0100002', 2018, 'ccd_finance', 0),
    ('0100002', 2021, 'ccd_finance', 500),         -- base 0: NULL
    ('0100006', 2018, 'ccd_finance', 0.01),
    ('0100006', 2021, 'ccd_finance', 100000);      -- 999999900 %: does not fit numeric(8,2)

SELECT is(compute_district_trends(), 7, 'first run changes 7 districts (0100006 has only out-of-range values: still all NULL)');
SELECT is(current_setting('district_benchmarks.out_of_range'), '3',
          'three values do not fit: 0100006''s swd_pct, ratio trend and expenditure trend');

SELECT results_eq(
    $$SELECT leaid::text, swd_pct, ell_pct, swd_trend_3yr, ell_trend_3yr, student_teacher_ratio_trend_3yr
        FROM districts ORDER BY leaid$$,
    $$VALUES ('0100001', 10.00::numeric, 3.64::numeric, 10.00::numeric, -20.00::numeric, 2.00::numeric),
             ('0100002', NULL,           NULL,          NULL,           33.33,           NULL),
             ('0100003', NULL,           NULL,          NULL,           NULL,            NULL),
             ('0100004', NULL,           10.00,         NULL,           14.29,           NULL),
             ('0100005', NULL,           NULL,          0.01,           -0.01,           5714.62),
             ('0100006', NULL,           NULL,          NULL,           NULL,            NULL),
             ('0200001', NULL,           NULL,          NULL,           NULL,            NULL),
             ('9900001', NULL,           NULL,          NULL,           NULL,            NULL)$$,
    'percentages and ccd_directory trends (B = 2019, not the earliest year 2016)');

SELECT results_eq(
    $$SELECT leaid::text, absenteeism_trend_3yr, graduation_trend_3yr, math_proficiency_trend_3yr,
             read_proficiency_trend_3yr, expenditure_pp_trend_3yr
        FROM districts ORDER BY leaid$$,
    $$VALUES ('0100001', -2.50::numeric, 4.75::numeric, 5.50::numeric, NULL::numeric, 10.00::numeric),
             ('0100002', NULL,           NULL,          -5.00,         NULL,          NULL),
             ('0100003', 1.25,           NULL,          NULL,          NULL,          NULL),
             ('0100004', NULL,           NULL,          NULL,          NULL,          NULL),
             ('0100005', NULL,           NULL,          NULL,          NULL,          NULL),
             ('0100006', NULL,           NULL,          NULL,          NULL,          NULL),
             ('0200001', NULL,           NULL,          NULL,          NULL,          NULL),
             ('9900001', 1.00,           NULL,          NULL,          NULL,          NULL)$$,
    'biennial absenteeism, short graduation history, math vs read years, % change with a zero base');

SELECT is((SELECT count(*)::int FROM districts WHERE updated_at = now()), 7, 'updated_at set on the changed rows only');

CREATE TEMP TABLE before_ctid AS SELECT leaid, ctid AS row_ctid FROM districts;
SELECT is(compute_district_trends(), 0, 'second run changes zero rows');
SELECT is((SELECT count(*)::int FROM districts d JOIN before_ctid b USING (leaid) WHERE d.ctid <> b.row_ctid), 0,
          'second run rewrites no row');

-- graduation years become 2017 and 2021: B = max(2017, 2018) = 2018, a year without data -> no trend
DELETE FROM district_data_history WHERE source = 'edfacts_grad';
INSERT INTO district_data_history (leaid, year, source, graduation_rate) VALUES
    ('0100001', 2017, 'edfacts_grad', 80), ('0100001', 2021, 'edfacts_grad', 85);
SELECT is(compute_district_trends(), 1, 'only 0100001 changes');
SELECT is((SELECT graduation_trend_3yr FROM districts WHERE leaid = '0100001'), NULL::numeric,
          'base year Y - 3 without data: the trend is NULL, not computed from the earliest year');

-- a newer directory year moves Y and B for every ccd metric: Y = 2023, B = 2020
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte) VALUES
    ('0100003', 2023, 'ccd_directory', 100, 15, 5, 5);
SELECT is(compute_district_trends(), 5, '0100001, 0100002, 0100004 and 0100005 lose their ccd trends (no 2020 row), 0100003 gains its own');
SELECT results_eq(
    $$SELECT leaid::text, swd_trend_3yr, ell_trend_3yr, student_teacher_ratio_trend_3yr FROM districts
       WHERE leaid IN ('0100001', '0100003') ORDER BY leaid$$,
    $$VALUES ('0100001', NULL::numeric, NULL::numeric, NULL::numeric), ('0100003', 50.00, -50.00, 10.00)$$,
    '0100003: 2020 -> 2023: swd 10 -> 15 = +50 %, ell 10 -> 5 = -50 %, ratio 10 -> 20 = +10.00');

-- no history at all: every trend is cleared, percentages stay (they come from current values)
DELETE FROM district_data_history;
SELECT is((SELECT count(*)::int FROM districts WHERE num_nonnulls(swd_trend_3yr, ell_trend_3yr, absenteeism_trend_3yr,
               graduation_trend_3yr, student_teacher_ratio_trend_3yr, math_proficiency_trend_3yr,
               read_proficiency_trend_3yr, expenditure_pp_trend_3yr) > 0), compute_district_trends(),
          'without history every district that had a trend changes');

SELECT * FROM finish();
ROLLBACK;
