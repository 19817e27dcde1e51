-- compute_state_averages(): enrollment-weighted averages over districts with enrollment > 0, swd/ell as
-- ratio of sums, NULLs and negatives skipped, the '00' row over every district, NULL/0 for empty states.
BEGIN;
SELECT plan(14);

DELETE FROM district_data_history;
DELETE FROM districts;
UPDATE states SET aggregates_updated_at = '2000-01-01', updated_at = '2000-01-01';
-- stale values on a state that will have no eligible district
UPDATE states SET avg_swd_pct = 55, avg_chronic_absenteeism_rate = 5, avg_enrollment = 7, total_districts = 9,
       total_enrollment = 99 WHERE fips = '04';
-- a state that is already right (no districts: NULL averages, 0 totals) must not be rewritten
UPDATE states SET total_districts = 0, total_enrollment = 0 WHERE fips = '06';

INSERT INTO districts (leaid, state_fips, enrollment, chronic_absenteeism_rate, student_teacher_ratio, spec_ed_students,
                       ell_students, math_proficiency_pct, read_proficiency_pct, graduation_rate_total,
                       expenditure_per_pupil, children_poverty_percent) VALUES
    -- Alabama: A1, A2, A5 are eligible (enrollment 100 + 300 + 100)
    ('0100001', '01', 100, 10.02, 20,   10,   5,    40,   50,   80,   10000, 10),
    ('0100002', '01', 300, 20,    NULL, 45,   NULL, NULL, 60,   90,   12000, 20),
    ('0100003', '01', 0,   99,    99,   99,   99,   99,   99,   99,   99,    99),   -- enrollment 0: not eligible
    ('0100004', '01', NULL, 99,   99,   99,   99,   99,   99,   99,   99,    99),   -- no enrollment: not eligible
    ('0100005', '01', 100, -1,    NULL, -3,   NULL, NULL, NULL, NULL, NULL,  -1),   -- negatives are missing
    -- Alaska: one eligible district without values
    ('0200001', '02', 50,  NULL,  NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL),
    -- Arizona: no eligible district
    ('0400001', '04', 0,   30,    NULL, 1,    NULL, NULL, NULL, NULL, NULL,  NULL),
    -- no state, and filed under the national code: they count only towards '00'
    ('9900001', NULL, 100, 30,    NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL),
    ('0000001', '00', 100, 40,    NULL, NULL, NULL, NULL, NULL, NULL, NULL,  NULL);

SELECT is(compute_state_averages(), 63, 'every states row changes except California, which is already right');
SELECT is(current_setting('district_benchmarks.out_of_range'), '0', 'nothing out of range');

-- Alabama by hand:
--   absenteeism (10.02*100 + 20*300) / (100 + 300) = 7002 / 400 = 17.505 -> 17.51 (half away from zero)
--   ratio 20 (only A1); swd 100 * (10 + 45) / (100 + 300) = 13.75; ell 100 * 5 / 100 = 5.00; math 40
--   read (50*100 + 60*300) / 400 = 57.50; graduation (80*100 + 90*300) / 400 = 87.50
--   expenditure (10000*100 + 12000*300) / 400 = 11500.00; mean enrollment 500 / 3 = 166.67 -> 167
--   poverty mean(10, 20) = 15.00 (A5's -1 is missing); 3 districts, 500 students
SELECT results_eq(
    $$SELECT avg_chronic_absenteeism_rate, avg_student_teacher_ratio, avg_swd_pct, avg_ell_pct, avg_math_proficiency,
             avg_read_proficiency, avg_graduation_rate, avg_expenditure_per_pupil, avg_enrollment, avg_poverty_rate,
             total_districts, total_enrollment
        FROM states WHERE fips = '01'$$,
    $$VALUES (17.51::numeric, 20.00::numeric, 13.75::numeric, 5.00::numeric, 40.00::numeric, 57.50::numeric,
              87.50::numeric, 11500.00::numeric, 167, 15.00::numeric, 3, 500::bigint)$$,
    'Alabama: weighted averages over eligible districts, NULLs and negatives skipped');

SELECT results_eq(
    $$SELECT avg_chronic_absenteeism_rate, avg_swd_pct, avg_enrollment, avg_poverty_rate, total_districts, total_enrollment
        FROM states WHERE fips = '02'$$,
    $$VALUES (NULL::numeric, NULL::numeric, 50, NULL::numeric, 1, 50::bigint)$$,
    'Alaska: an eligible district without values gives NULL averages but counts');

SELECT results_eq(
    $$SELECT avg_chronic_absenteeism_rate, avg_swd_pct, avg_enrollment, total_districts, total_enrollment
        FROM states WHERE fips = '04'$$,
    $$VALUES (NULL::numeric, NULL::numeric, NULL::integer, 0, 0::bigint)$$,
    'Arizona: no eligible district -> NULL averages and 0 totals, stale values gone');

-- The nation: A1, A2, A5, the Alaska district, the state-less one and the '00' one (750 students, 6 districts)
--   absenteeism (10.02*100 + 20*300 + 30*100 + 40*100) / (100 + 300 + 100 + 100) = 14002 / 600 = 23.3367 -> 23.34
--   mean enrollment 750 / 6 = 125
SELECT results_eq(
    $$SELECT avg_chronic_absenteeism_rate, avg_student_teacher_ratio, avg_swd_pct, avg_ell_pct, avg_math_proficiency,
             avg_read_proficiency, avg_graduation_rate, avg_expenditure_per_pupil, avg_enrollment, avg_poverty_rate,
             total_districts, total_enrollment
        FROM states WHERE fips = '00'$$,
    $$VALUES (23.34::numeric, 20.00::numeric, 13.75::numeric, 5.00::numeric, 40.00::numeric, 57.50::numeric,
              87.50::numeric, 11500.00::numeric, 125, 15.00::numeric, 6, 750::bigint)$$,
    'the national row covers every eligible district, with or without a state');

SELECT is((SELECT count(*)::int FROM states WHERE fips NOT IN ('00', '01', '02', '04')
             AND total_districts = 0 AND total_enrollment = 0 AND avg_enrollment IS NULL
             AND num_nonnulls(avg_chronic_absenteeism_rate, avg_student_teacher_ratio, avg_swd_pct, avg_ell_pct,
                              avg_math_proficiency, avg_read_proficiency, avg_graduation_rate,
                              avg_expenditure_per_pupil, avg_poverty_rate) = 0),
          (SELECT count(*)::int FROM states WHERE fips NOT IN ('00', '01', '02', '04')),
          'every state without districts has NULL averages and 0 totals');

SELECT is((SELECT count(*)::int FROM states WHERE aggregates_updated_at = now() AND updated_at = now()), 63,
          'aggregates_updated_at and updated_at are set on the changed rows');
SELECT is((SELECT aggregates_updated_at FROM states WHERE fips = '06'), '2000-01-01'::timestamptz,
          'an unchanged state keeps its aggregates_updated_at');

CREATE TEMP TABLE before_ctid AS SELECT fips, ctid AS row_ctid FROM states;
SELECT is(compute_state_averages(), 0, 'second run changes zero rows');
SELECT is((SELECT count(*)::int FROM states s JOIN before_ctid b USING (fips) WHERE s.ctid <> b.row_ctid), 0,
          'second run rewrites no row');

-- a percentage that cannot be stored: 10 students with disabilities among 1 enrolled -> 1000.00 > 999.99
INSERT INTO districts (leaid, state_fips, enrollment, spec_ed_students) VALUES ('0500001', '05', 1, 10);
SELECT is(compute_state_averages(), 2, 'Arkansas and the nation change');
SELECT is(current_setting('district_benchmarks.out_of_range'), '1', 'the overflowing average is counted');
-- nation: 100 * (10 + 45 + 10) / (100 + 300 + 1) = 6500 / 401 = 16.209... -> 16.21
SELECT results_eq(
    $$SELECT fips::text, avg_swd_pct, total_districts FROM states WHERE fips IN ('00', '05') ORDER BY fips$$,
    $$VALUES ('00', 16.21::numeric, 7), ('05', NULL::numeric, 1)$$,
    'the state''s overflowing average is NULL, the nation''s fits and is stored');

SELECT * FROM finish();
ROLLBACK;
