-- compute_all_benchmarks(): runs the steps in order, returns the summary, logs one row per run, skips the
-- current values when asked, counts out-of-range values, and leaves nothing behind when a step fails.
BEGIN;
SELECT plan(24);

DELETE FROM district_data_history;
DELETE FROM districts;
DELETE FROM data_refresh_logs;

INSERT INTO districts (leaid, state_fips) VALUES
    ('0100001', '01'), ('0100002', '01'), ('0100003', '01'), ('0100004', '01'), ('9900001', NULL);
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte) VALUES
    ('0100001', 2019, 'ccd_directory', 100, 10, 1, 10), ('0100001', 2022, 'ccd_directory', 100, 10, 1, 10),
    ('0100002', 2019, 'ccd_directory', 100, 10, 1, 10), ('0100002', 2022, 'ccd_directory', 200, 20, 2, 10),
    ('0100003', 2019, 'ccd_directory', 100, 10, 1, 10), ('0100003', 2022, 'ccd_directory', 300, 30, 3, 10),
    ('0100004', 2019, 'ccd_directory', 100, 10, 1, 10), ('0100004', 2022, 'ccd_directory', 400, 40, 4, 10),
    -- ratio 2000000 / 0.01 does not fit numeric(8,2): one out-of-range value in the current-values step
    ('9900001', 2022, 'ccd_directory', 2000000, NULL, NULL, 0.01);

SELECT n_tup_upd AS upd_before FROM pg_stat_xact_user_tables WHERE relname = 'districts' \gset
SELECT compute_all_benchmarks() AS summary \gset first_
SELECT n_tup_upd AS upd_after FROM pg_stat_xact_user_tables WHERE relname = 'districts' \gset

SELECT is((:'first_summary'::jsonb) - 'duration_ms' - 'lock_wait_ms' - 'steps',
          jsonb_build_object('version', benchmarks_version(), 'refresh_current', true, 'states_changed', 64,
                             'districts_changed', 13, 'districts_written', 9, 'out_of_range', 1),
          'summary: every states row changes once (totals were NULL), 5 + 4 + 4 district rows changed by the steps, '
          '5 + 4 row writes (trends, deltas and tiers of a district are written together), 1 value out of range');
SELECT is((:upd_after - :upd_before)::bigint, 9::bigint,
          'districts_written counts real row writes: trends and deltas of the 4 districts are one UPDATE each');
SELECT is((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(:'first_summary'::jsonb -> 'steps') k),
          ARRAY['current_values', 'deltas_quartiles', 'district_trends', 'peer_groups', 'state_averages'],
          'one entry per step');
SELECT is((SELECT jsonb_object_agg(key, value - 'ms') FROM jsonb_each(:'first_summary'::jsonb -> 'steps')),
          '{"current_values":   {"rows_changed": 5,  "out_of_range": 1},
            "state_averages":   {"rows_changed": 64, "out_of_range": 0},
            "district_trends":  {"rows_changed": 4,  "out_of_range": 0},
            "deltas_quartiles": {"rows_changed": 4,  "out_of_range": 0},
            "peer_groups":      {"rows_changed": 0,  "out_of_range": 0}}'::jsonb,
          'per-step rows changed and out-of-range counts (no district has a poverty rate: none is eligible for peers)');
SELECT ok((SELECT bool_and(jsonb_typeof(value -> 'ms') = 'number' AND (value ->> 'ms')::numeric >= 0)
             FROM jsonb_each(:'first_summary'::jsonb -> 'steps'))
          AND (:'first_summary'::jsonb ->> 'duration_ms')::numeric >= 0
          AND (:'first_summary'::jsonb ->> 'lock_wait_ms')::numeric >= 0,
          'durations are non-negative numbers (ms)');
SELECT matches(benchmarks_version(), '^[0-9]+\.[0-9]+\.[0-9]+$', 'benchmarks_version() is a semantic version');

-- the steps ran in order, each on the previous one's results
SELECT results_eq(
    $$SELECT leaid::text, enrollment, student_teacher_ratio, swd_pct, swd_trend_3yr, student_teacher_ratio_vs_state,
             student_teacher_ratio_quartile_state, swd_pct_quartile_state
        FROM districts ORDER BY leaid$$,
    $$VALUES ('0100001', 100,     10.00::numeric, 10.00::numeric, 0.00::numeric,   -20.00::numeric, 'well_below'::varchar, 'above'::varchar),
             ('0100002', 200,     20.00,          10.00,          100.00,          -10.00,          'below',              'above'),
             ('0100003', 300,     30.00,          10.00,          200.00,          0.00,            'above',              'above'),
             ('0100004', 400,     40.00,          10.00,          300.00,          10.00,           'well_above',         'above'),
             ('9900001', 2000000, NULL,           NULL,           NULL,            NULL,            NULL,                 NULL)$$,
    'current values -> averages (ratio (10*100 + 20*200 + 30*300 + 40*400) / 1000 = 30) -> trends -> deltas and tiers');

SELECT results_eq(
    $$SELECT data_source::text, status::text, records_updated, records_failed, details, started_at <= completed_at
        FROM data_refresh_logs$$,
    format($$VALUES ('compute_benchmarks', 'success', 77, 0, %L::jsonb, true)$$, :'first_summary'),
    'one log row: success, records_updated = states + district rows changed, details = the summary');

-- a second run on unchanged data
SELECT compute_all_benchmarks() AS summary \gset second_
SELECT is((:'second_summary'::jsonb) - 'duration_ms' - 'lock_wait_ms' - 'steps',
          jsonb_build_object('version', benchmarks_version(), 'refresh_current', true, 'states_changed', 0,
                             'districts_changed', 0, 'districts_written', 0, 'out_of_range', 1),
          'second run: nothing changes, the out-of-range value is still reported');
SELECT is((SELECT sum((value ->> 'rows_changed')::int)::int FROM jsonb_each(:'second_summary'::jsonb -> 'steps')), 0,
          'no step changes a row');
SELECT is((SELECT count(*)::int FROM data_refresh_logs WHERE data_source = 'compute_benchmarks'), 2, 'every run logs one row');
SELECT is((SELECT records_updated FROM data_refresh_logs ORDER BY id DESC LIMIT 1), 0, 'the second row records 0 updates');

-- refresh_current = false leaves the current values alone but recomputes the rest from history
UPDATE district_data_history SET spec_ed_students = 50 WHERE leaid = '0100001' AND year = 2022;
SELECT compute_all_benchmarks(false) AS summary \gset third_
SELECT ok(NOT (:'third_summary'::jsonb -> 'steps') ? 'current_values', 'refresh_current = false skips the current-values step');
SELECT is((:'third_summary'::jsonb) ->> 'refresh_current', 'false', 'the summary says so');
SELECT is((:'third_summary'::jsonb ->> 'districts_changed')::int, 1, 'only the swd trend of 0100001 changes');
SELECT results_eq(
    $$SELECT spec_ed_students, swd_pct, swd_trend_3yr FROM districts WHERE leaid = '0100001'$$,
    $$VALUES (10, 10.00::numeric, 400.00::numeric)$$,
    'current value untouched, trend from history (10 -> 50 = +400 %)');
SELECT is(compute_all_benchmarks(true) -> 'steps' -> 'current_values' ->> 'rows_changed', '1',
          'refresh_current = true picks the new history value up');

-- a failing step rolls back everything of the run, including the log row
UPDATE district_data_history SET enrollment = 250 WHERE leaid = '0100002' AND year = 2022;
CREATE FUNCTION pg_temp.refuse_deltas() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.student_teacher_ratio_vs_state IS DISTINCT FROM OLD.student_teacher_ratio_vs_state THEN
        RAISE EXCEPTION 'deltas refused by the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_deltas BEFORE UPDATE ON districts FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse_deltas();
CREATE TEMP TABLE before_failure AS SELECT * FROM districts;
CREATE TEMP TABLE states_before_failure AS SELECT * FROM states;
SELECT count(*) AS n FROM data_refresh_logs \gset logs_before_
SELECT throws_ok('SELECT compute_all_benchmarks()', 'P0001', 'deltas refused by the test',
                 'an error in the last step is raised to the caller');
SELECT is((SELECT count(*)::int FROM districts d JOIN before_failure b USING (leaid)
            WHERE (to_jsonb(d) - 'updated_at') IS DISTINCT FROM (to_jsonb(b) - 'updated_at')), 0,
          'no district value of the earlier steps survives (enrollment, ratio, trends all as before)');
SELECT is((SELECT enrollment FROM districts WHERE leaid = '0100002'), 200, 'e.g. the new enrollment was rolled back');
SELECT is((SELECT count(*)::int FROM states s JOIN states_before_failure b USING (fips)
            WHERE to_jsonb(s) IS DISTINCT FROM to_jsonb(b)), 0, 'no state average changed');
SELECT is((SELECT count(*)::int FROM data_refresh_logs), :logs_before_n, 'a failed run leaves no log row');

DROP TRIGGER refuse_deltas ON districts;
-- 0100002 changes its current values and trends; the Alabama averages move, so all four Alabama districts
-- get new deltas: 1 + 1 + 4 district rows
SELECT is(compute_all_benchmarks() ->> 'districts_changed', '6', 'without the fault the same run succeeds');
SELECT is((SELECT enrollment FROM districts WHERE leaid = '0100002'), 250, 'and its values are stored');

SELECT * FROM finish();
ROLLBACK;
