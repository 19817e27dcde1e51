-- compute_deltas_quartiles(): deltas against the stored state / national averages with each metric's own
-- district column, percentile-rank tiers with ties, all-equal values, n < 4, NULLs, no state, row order.
BEGIN;
SELECT plan(21);

DELETE FROM district_data_history;
DELETE FROM districts;

-- stored averages (compute_state_averages() is not run here: the deltas must use what is stored)
UPDATE states SET avg_chronic_absenteeism_rate = NULL, avg_graduation_rate = NULL, avg_student_teacher_ratio = NULL,
       avg_swd_pct = NULL, avg_ell_pct = NULL, avg_math_proficiency = NULL, avg_read_proficiency = NULL,
       avg_expenditure_per_pupil = NULL;
UPDATE states SET avg_chronic_absenteeism_rate = 10, avg_graduation_rate = 85, avg_student_teacher_ratio = 15,
       avg_swd_pct = 12.5, avg_ell_pct = 4.25, avg_math_proficiency = 45, avg_read_proficiency = 48,
       avg_expenditure_per_pupil = 12500.50
 WHERE fips = '01';
UPDATE states SET avg_chronic_absenteeism_rate = 15, avg_graduation_rate = 84, avg_student_teacher_ratio = 16.25,
       avg_swd_pct = 13, avg_ell_pct = 10, avg_math_proficiency = 40, avg_read_proficiency = 52,
       avg_expenditure_per_pupil = 14000
 WHERE fips = '00';
UPDATE states SET avg_chronic_absenteeism_rate = 20 WHERE fips = '02';
UPDATE states SET avg_expenditure_per_pupil = 100 WHERE fips = '11';

-- one district with a different value in every metric (and misleading raw counts that must not be used)
INSERT INTO districts (leaid, state_fips, chronic_absenteeism_rate, graduation_rate_total, student_teacher_ratio, swd_pct,
                       ell_pct, math_proficiency_pct, read_proficiency_pct, expenditure_per_pupil,
                       spec_ed_students, ell_students, enrollment) VALUES
    ('0100001', '01', 12, 80, 15.5, 14, 3, 45, 50, 13000, 999, 999, 1);
INSERT INTO districts (leaid, state_fips, chronic_absenteeism_rate) VALUES
    ('0100002', '01', 10), ('0100003', '01', 20), ('0100004', '01', 30),                       -- n = 4, with 12
    ('0200001', '02', 10), ('0200002', '02', 20), ('0200003', '02', 20), ('0200004', '02', 20),
    ('0200005', '02', 40),                                                                     -- ties
    ('0400001', '04', 7.5), ('0400002', '04', 7.5), ('0400003', '04', 7.5), ('0400004', '04', 7.5), -- all equal
    ('0500001', '05', 1), ('0500002', '05', 2), ('0500003', '05', 3),                          -- n = 3
    ('0600001', '06', 4), ('0600002', '06', 3), ('0600003', '06', 2), ('0600004', '06', 1),
    ('0600005', '06', NULL), ('0600006', '06', NULL),                                          -- n = 4 + NULLs
    ('0800001', '08', 1), ('0800002', '08', 2), ('0800003', '08', 3),
    ('0800004', '08', NULL), ('0800005', '08', NULL),                                          -- n = 3 + NULLs
    ('0900001', '09', -1),                                                                     -- negative: missing
    ('9900001', NULL, 50),                                                                     -- no state
    ('0000001', '00', 5);                                                                      -- filed under '00'
INSERT INTO districts (leaid, state_fips, expenditure_per_pupil) VALUES ('1100001', '11', 5000000);
UPDATE districts SET updated_at = '2000-01-01';

SELECT is(compute_deltas_quartiles(), 25, 'first run changes the 25 districts that have a value to compare');
SELECT is(current_setting('district_benchmarks.out_of_range'), '2',
          'the expenditure deltas of 1100001 (4999900.00 and 4986000.00) do not fit numeric(8,2)');

SELECT results_eq(
    $$SELECT absenteeism_vs_state, graduation_vs_state, student_teacher_ratio_vs_state, swd_pct_vs_state,
             ell_pct_vs_state, math_proficiency_vs_state, read_proficiency_vs_state, expenditure_pp_vs_state
        FROM districts WHERE leaid = '0100001'$$,
    $$VALUES (2.00::numeric, -5.00::numeric, 0.50::numeric, 1.50::numeric, -1.25::numeric, 0.00::numeric,
              2.00::numeric, 499.50::numeric)$$,
    'vs_state = district value - stored state average, each metric from its own column');
SELECT results_eq(
    $$SELECT absenteeism_vs_national, graduation_vs_national, student_teacher_ratio_vs_national, swd_pct_vs_national,
             ell_pct_vs_national, math_proficiency_vs_national, read_proficiency_vs_national, expenditure_pp_vs_national
        FROM districts WHERE leaid = '0100001'$$,
    $$VALUES (-3.00::numeric, -4.00::numeric, -0.75::numeric, 1.00::numeric, -7.00::numeric, 5.00::numeric,
              -2.00::numeric, -1000.00::numeric)$$,
    'vs_national = district value - the ''00'' average (negative = below)');

SELECT results_eq(
    $$SELECT leaid::text, absenteeism_vs_state, absenteeism_vs_national, absenteeism_quartile_state
        FROM districts WHERE leaid IN ('0200001', '0200005', '9900001', '0000001', '0900001', '1100001') ORDER BY leaid$$,
    $$VALUES ('0000001', NULL::numeric, -10.00::numeric, NULL::varchar),
             ('0200001', -10.00, -5.00, 'well_below'),
             ('0200005', 20.00, 25.00, 'well_above'),
             ('0900001', NULL, NULL, NULL),
             ('1100001', NULL, NULL, NULL),
             ('9900001', NULL, 35.00, NULL)$$,
    'signs; no state or state ''00'': national delta only, no tier; negative value: nothing');
SELECT results_eq(
    $$SELECT expenditure_pp_vs_state, expenditure_pp_vs_national FROM districts WHERE leaid = '1100001'$$,
    $$VALUES (NULL::numeric, NULL::numeric)$$,
    'deltas that do not fit numeric(8,2) are NULL');

-- tiers: PR = (smaller + ½ equal) / n
SELECT results_eq(
    $$SELECT leaid::text, absenteeism_quartile_state FROM districts WHERE state_fips = '01' ORDER BY leaid$$,
    $$VALUES ('0100001', 'below'::varchar), ('0100002', 'well_below'), ('0100003', 'above'), ('0100004', 'well_above')$$,
    'n = 4 distinct values: PR .375 / .125 / .625 / .875');
SELECT results_eq(
    $$SELECT leaid::text, absenteeism_quartile_state FROM districts WHERE state_fips = '02' ORDER BY leaid$$,
    $$VALUES ('0200001', 'well_below'::varchar), ('0200002', 'above'), ('0200003', 'above'), ('0200004', 'above'),
             ('0200005', 'well_above')$$,
    'ties share a tier: 10 -> PR .1, the three 20s -> PR (1 + 1.5) / 5 = .5, 40 -> .9');
SELECT results_eq(
    $$SELECT DISTINCT absenteeism_quartile_state FROM districts WHERE state_fips = '04'$$,
    $$VALUES ('above'::varchar)$$,
    'all equal values: PR = .5 for everyone -> above');
SELECT is((SELECT count(*)::int FROM districts WHERE state_fips IN ('05', '08') AND absenteeism_quartile_state IS NOT NULL), 0,
          'n = 3 (also with NULL values beside them): no tiers');
SELECT results_eq(
    $$SELECT leaid::text, absenteeism_quartile_state FROM districts WHERE state_fips = '06' ORDER BY leaid$$,
    $$VALUES ('0600001', 'well_above'::varchar), ('0600002', 'above'), ('0600003', 'below'), ('0600004', 'well_below'),
             ('0600005', NULL), ('0600006', NULL)$$,
    'NULL values are outside n and get no tier');
SELECT is((SELECT count(*)::int FROM districts WHERE leaid = '0100001'
            AND num_nonnulls(graduation_quartile_state, student_teacher_ratio_quartile_state, swd_pct_quartile_state,
                             ell_pct_quartile_state, math_proficiency_quartile_state, read_proficiency_quartile_state,
                             expenditure_pp_quartile_state) = 0), 1,
          'a metric with a single value in the state has no tier');

SELECT is((SELECT count(*)::int FROM districts WHERE updated_at = now()), 25, 'updated_at set on the changed rows only');

CREATE TEMP TABLE before_ctid AS SELECT leaid, ctid AS row_ctid FROM districts;
SELECT is(compute_deltas_quartiles(), 0, 'second run changes zero rows');
SELECT is((SELECT count(*)::int FROM districts d JOIN before_ctid b USING (leaid) WHERE d.ctid <> b.row_ctid), 0,
          'second run rewrites no row');

-- 41 districts with heavy ties and some NULLs in Delaware: compare with a brute-force oracle of the rules
-- formula, then insert the same districts in the opposite order and expect identical tiers
INSERT INTO districts (leaid, state_fips, chronic_absenteeism_rate)
SELECT '10' || lpad(i::text, 5, '0'), '10', CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 7) % 10 END
  FROM generate_series(1, 41) i ORDER BY i;
SELECT is(compute_deltas_quartiles(), 35, 'the 35 Delaware districts with a value change');
SELECT results_eq(
    $$SELECT leaid::text, absenteeism_quartile_state FROM districts WHERE state_fips = '10' ORDER BY leaid$$,
    $$SELECT d.leaid::text,
             CASE WHEN d.chronic_absenteeism_rate IS NULL THEN NULL
                  WHEN x.smaller + 0.5 * x.equal >= 0.75 * x.n THEN 'well_above'
                  WHEN x.smaller + 0.5 * x.equal >= 0.50 * x.n THEN 'above'
                  WHEN x.smaller + 0.5 * x.equal >= 0.25 * x.n THEN 'below'
                  ELSE 'well_below' END::varchar
        FROM districts d,
             LATERAL (SELECT count(*) FILTER (WHERE o.chronic_absenteeism_rate < d.chronic_absenteeism_rate) AS smaller,
                             count(*) FILTER (WHERE o.chronic_absenteeism_rate = d.chronic_absenteeism_rate) AS equal,
                             count(o.chronic_absenteeism_rate) AS n
                        FROM districts o WHERE o.state_fips = '10') x
       WHERE d.state_fips = '10' ORDER BY d.leaid$$,
    'tiers match a brute-force evaluation of PR = (smaller + ½ equal) / n');

CREATE TEMP TABLE first_order AS
SELECT leaid, absenteeism_quartile_state FROM districts WHERE state_fips = '10';
DELETE FROM districts WHERE state_fips = '10';
INSERT INTO districts (leaid, state_fips, chronic_absenteeism_rate)
SELECT '10' || lpad(i::text, 5, '0'), '10', CASE WHEN i % 6 = 0 THEN NULL ELSE (i * 7) % 10 END
  FROM generate_series(1, 41) i ORDER BY i DESC;
SELECT is(compute_deltas_quartiles(), 35, 'the re-inserted districts change again');
SELECT results_eq(
    $$SELECT leaid::text, absenteeism_quartile_state FROM districts WHERE state_fips = '10' ORDER BY leaid$$,
    $$SELECT leaid::text, absenteeism_quartile_state FROM first_order ORDER BY leaid$$,
    'the same districts inserted in the opposite order get the same tiers');

-- values one cent apart (adjacent ranking keys) in another metric: smaller and equal must not blur
-- (9.99, 10.00, 10.01, 10.01, 10.02 -> PR .1, .3, .6, .6, .9)
INSERT INTO districts (leaid, state_fips, math_proficiency_pct) VALUES
    ('1200001', '12', 10.01), ('1200002', '12', 9.99), ('1200003', '12', 10.02), ('1200004', '12', 10.00),
    ('1200005', '12', 10.01);
SELECT is(compute_deltas_quartiles(), 5, 'the five Hawaii districts change');
SELECT results_eq(
    $$SELECT leaid::text, math_proficiency_quartile_state FROM districts WHERE state_fips = '12' ORDER BY leaid$$,
    $$VALUES ('1200001', 'above'::varchar), ('1200002', 'well_below'), ('1200003', 'well_above'),
             ('1200004', 'below'), ('1200005', 'above')$$,
    'values 0.01 apart rank apart, equal values together');

SELECT * FROM finish();
ROLLBACK;
