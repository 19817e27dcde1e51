-- compute_current_values(): each column's value at its own latest year Y, negatives as missing, ratio,
-- stale values cleared, out-of-range ratio NULL + counted, unchanged rows not rewritten.
BEGIN;
SELECT plan(14);

DELETE FROM district_data_history;
DELETE FROM districts;

INSERT INTO districts (leaid, state_fips, updated_at) VALUES
    ('0100001', '01', '2000-01-01'), ('0100002', '01', '2000-01-01'), ('0100003', '01', '2000-01-01'),
    ('0100004', '01', '2000-01-01'), ('0100005', '01', '2000-01-01'), ('0200001', '02', '2000-01-01'),
    ('0200002', '02', '2000-01-01'), ('9900001', NULL, '2000-01-01');
-- stale values that must not survive: 0200001 has no history at all, 0100001's graduation year is not Y
UPDATE districts SET enrollment = 999, spec_ed_students = 9, ell_students = 9, teachers_fte = 9,
       student_teacher_ratio = 111, chronic_absenteeism_rate = 9, graduation_rate_total = 9,
       math_proficiency_pct = 9, read_proficiency_pct = 9, expenditure_per_pupil = 9, children_poverty_percent = 9
 WHERE leaid = '0200001';
UPDATE districts SET graduation_rate_total = 77 WHERE leaid = '0100001';

INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte) VALUES
    -- ccd_directory: 2021 is Y for enrollment, spec_ed and teachers; no 2021 row has an ell count
    -- (-1 and NULL only), so ell's Y is 2020
    ('0100001', 2020, 'ccd_directory', 100, 10,   5,  10),
    ('0100001', 2021, 'ccd_directory', 201, 20,   -1, 8),      -- ratio 201 / 8 = 25.125 -> 25.13
    ('0100002', 2020, 'ccd_directory', 50,  5,    2,  5),      -- no 2021 row: NULL except ell (2020)
    ('0100003', 2021, 'ccd_directory', 90,  NULL, NULL, 0),    -- teachers 0: no ratio
    ('0100004', 2021, 'ccd_directory', -2,  -3,   NULL, 10),   -- negative codes are missing
    ('0100005', 2021, 'ccd_directory', 2000000, 1, NULL, 0.01),-- ratio 200000000 does not fit numeric(8,2)
    ('9900001', 2021, 'ccd_directory', 10,  1,    NULL, 1);    -- a district without a state still gets values
INSERT INTO district_data_history (leaid, year, source, chronic_absenteeism_rate) VALUES
    ('0100001', 2020, 'crdc_absenteeism', 12.5),
    ('0100002', 2022, 'crdc_absenteeism', -3);                 -- 2022 has no usable rate: Y = 2020
INSERT INTO district_data_history (leaid, year, source, graduation_rate) VALUES
    ('0100001', 2019, 'edfacts_grad', 88),
    ('0100002', 2021, 'edfacts_grad', 91.5);                   -- Y = 2021: 0100001 has none -> NULL
INSERT INTO district_data_history (leaid, year, source, math_proficiency, read_proficiency) VALUES
    ('0100001', 2020, 'edfacts_assess', 35, 50),
    ('0100001', 2021, 'edfacts_assess', 40, NULL);             -- math Y = 2021, read Y = 2020
INSERT INTO district_data_history (leaid, year, source, expenditure_pp) VALUES
    ('0100001', 2020, 'ccd_finance', 12000.50);
INSERT INTO district_data_history (leaid, year, source, children_poverty_percent) VALUES
    ('0100001', 2021, 'saipe', 15.25),
    ('0100002', 2020, 'saipe', 30);                            -- older than Y = 2021: not current

SELECT is(compute_current_values(), 7, 'first run changes the 7 districts whose values differ (0200002 is already right)');
SELECT is(current_setting('district_benchmarks.out_of_range'), '1', 'the one ratio that does not fit numeric(8,2) is counted');

SELECT results_eq(
    $$SELECT leaid::text, enrollment, spec_ed_students, ell_students, teachers_fte, student_teacher_ratio
        FROM districts ORDER BY leaid$$,
    $$VALUES ('0100001', 201,     20,   5,    8.00::numeric, 25.13::numeric),
             ('0100002', NULL,    NULL, 2,    NULL,          NULL),
             ('0100003', 90,      NULL, NULL, 0.00,          NULL),
             ('0100004', NULL,    NULL, NULL, 10.00,         NULL),
             ('0100005', 2000000, 1,    NULL, 0.01,          NULL),
             ('0200001', NULL,    NULL, NULL, NULL,          NULL),
             ('0200002', NULL,    NULL, NULL, NULL,          NULL),
             ('9900001', 10,      1,    NULL, 1.00,          10.00)$$,
    'directory values come from each column''s own latest year; ratio rounded half away from zero');

SELECT results_eq(
    $$SELECT leaid::text, chronic_absenteeism_rate, graduation_rate_total, math_proficiency_pct,
             read_proficiency_pct, expenditure_per_pupil, children_poverty_percent
        FROM districts WHERE leaid IN ('0100001', '0100002', '0200001') ORDER BY leaid$$,
    $$VALUES ('0100001', 12.50::numeric, NULL::numeric, 40.00::numeric, 50.00::numeric, 12000.50::numeric, 15.25::numeric),
             ('0100002', NULL,           91.50,         NULL,           NULL,           NULL,              NULL),
             ('0200001', NULL,           NULL,          NULL,           NULL,           NULL,              NULL)$$,
    'other sources: value at Y, NULL (not stale) when the district has none at Y');

SELECT is((SELECT count(*)::int FROM districts WHERE updated_at = now()), 7, 'updated_at set on the changed rows');
SELECT is((SELECT updated_at FROM districts WHERE leaid = '0200002'), '2000-01-01'::timestamptz,
          'an unchanged row keeps its updated_at');

-- a second run on unchanged data writes nothing
CREATE TEMP TABLE before_ctid AS SELECT leaid, ctid AS row_ctid FROM districts;
SELECT is(compute_current_values(), 0, 'second run changes zero rows');
SELECT is((SELECT count(*)::int FROM districts d JOIN before_ctid b USING (leaid) WHERE d.ctid <> b.row_ctid), 0,
          'second run rewrites no row (ctids unchanged)');
SELECT is(current_setting('district_benchmarks.out_of_range'), '1', 'the out-of-range ratio is counted again');

-- new data: a newer year appears for one column only
INSERT INTO district_data_history (leaid, year, source, ell_students) VALUES ('0100003', 2022, 'ccd_directory', 4);
SELECT is(compute_current_values(), 3, 'a newer ell year changes the districts whose ell value changes');
SELECT results_eq(
    $$SELECT leaid::text, enrollment, ell_students FROM districts WHERE leaid IN ('0100001', '0100002', '0100003') ORDER BY leaid$$,
    $$VALUES ('0100001', 201, NULL::integer), ('0100002', NULL, NULL), ('0100003', 90, 4)$$,
    'ell moves to its new Y (2022) while enrollment stays at 2021');

-- a negative value written straight into history is still ignored
UPDATE district_data_history SET teachers_fte = -1 WHERE leaid = '9900001';
SELECT is(compute_current_values(), 1, 'a negative teachers_fte changes that one district');
SELECT results_eq(
    $$SELECT teachers_fte, student_teacher_ratio FROM districts WHERE leaid = '9900001'$$,
    $$VALUES (NULL::numeric, NULL::numeric)$$,
    'negative teachers_fte is missing: no value, no ratio');

-- empty history: every value becomes NULL
DELETE FROM district_data_history;
SELECT is(compute_current_values(), 6, 'with no history the 6 districts that still had a value are cleared');

SELECT * FROM finish();
ROLLBACK;
