/*
 * compute_all_benchmarks(refresh_current boolean DEFAULT true) RETURNS jsonb
 *
 * Owns: a benchmark run — the order of the steps, the run's lock, its data_refresh_logs row and summary.
 *
 * Contract (SPEC §4):
 *   - Runs compute_current_values() (only when refresh_current), compute_state_averages(),
 *     compute_district_trends(), compute_deltas_quartiles(), in that order, in the caller's transaction
 *     (one transaction: a function cannot commit), under pg_advisory_xact_lock(benchmarks_lock_key()), so
 *     concurrent runs queue and the second one computes from what the first committed. Call it in READ
 *     COMMITTED (the default): a REPEATABLE READ snapshot taken before the lock was granted could not see
 *     the first run's results.
 *   - Inserts one data_refresh_logs row: data_source 'compute_benchmarks', status 'success',
 *     records_updated = states_changed + districts_changed, records_failed = 0 (a value that does not fit
 *     is not a failed record; see out_of_range), started_at / completed_at, details = the summary.
 *   - Returns the summary: version, refresh_current, states_changed, districts_changed (district row
 *     writes summed over the steps: a district changed by two steps counts twice; 0 means nothing
 *     changed), out_of_range (values stored as NULL because they did not fit their column), duration_ms,
 *     lock_wait_ms (time spent queueing behind another run, not part of duration_ms), and
 *     steps: {step: {rows_changed, out_of_range, ms}} for each step that ran.
 *   - On any error every change of the run is rolled back with the transaction and the error is raised
 *     to the caller. That includes the log row: a failed run leaves no row here (PostgreSQL has no
 *     autonomous transactions); the caller records the failure — the CLI writes a 'failed' row in its
 *     own transaction, pg_cron records it in cron.job_run_details.
 */
CREATE OR REPLACE FUNCTION compute_all_benchmarks(refresh_current boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = public, pg_temp
SET jit = off
AS $function$
DECLARE
    v_called_at       timestamptz := clock_timestamp();
    v_started_at      timestamptz;
    v_step_started    timestamptz;
    v_rows            integer;
    v_steps           jsonb := '{}'::jsonb;
    v_states_changed  integer := 0;
    v_districts       integer := 0;
    v_out_of_range    integer := 0;
    v_step_oor        integer;
    v_summary         jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(benchmarks_lock_key());
    v_started_at := clock_timestamp();

    IF refresh_current THEN
        v_step_started := clock_timestamp();
        v_rows := compute_current_values();
        v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
        v_districts := v_districts + v_rows;
        v_out_of_range := v_out_of_range + v_step_oor;
        v_steps := v_steps || jsonb_build_object('current_values', jsonb_build_object(
            'rows_changed', v_rows, 'out_of_range', v_step_oor,
            'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));
    END IF;

    v_step_started := clock_timestamp();
    v_rows := compute_state_averages();
    v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
    v_states_changed := v_rows;
    v_out_of_range := v_out_of_range + v_step_oor;
    v_steps := v_steps || jsonb_build_object('state_averages', jsonb_build_object(
        'rows_changed', v_rows, 'out_of_range', v_step_oor,
        'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));

    v_step_started := clock_timestamp();
    v_rows := compute_district_trends();
    v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
    v_districts := v_districts + v_rows;
    v_out_of_range := v_out_of_range + v_step_oor;
    v_steps := v_steps || jsonb_build_object('district_trends', jsonb_build_object(
        'rows_changed', v_rows, 'out_of_range', v_step_oor,
        'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));

    v_step_started := clock_timestamp();
    v_rows := compute_deltas_quartiles();
    v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
    v_districts := v_districts + v_rows;
    v_out_of_range := v_out_of_range + v_step_oor;
    v_steps := v_steps || jsonb_build_object('deltas_quartiles', jsonb_build_object(
        'rows_changed', v_rows, 'out_of_range', v_step_oor,
        'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));

    v_summary := jsonb_build_object(
        'version',           benchmarks_version(),
        'refresh_current',   refresh_current,
        'states_changed',    v_states_changed,
        'districts_changed', v_districts,
        'out_of_range',      v_out_of_range,
        'duration_ms',       round((extract(epoch FROM clock_timestamp() - v_started_at) * 1000)::numeric, 1),
        'lock_wait_ms',      round((extract(epoch FROM v_started_at - v_called_at) * 1000)::numeric, 1),
        'steps',             v_steps);

    INSERT INTO data_refresh_logs (data_source, records_updated, records_failed, status, started_at, completed_at, details)
    VALUES ('compute_benchmarks', v_states_changed + v_districts, 0, 'success', v_called_at, clock_timestamp(), v_summary);

    RETURN v_summary;
END
$function$;

REVOKE ALL ON FUNCTION compute_all_benchmarks(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_all_benchmarks(boolean) TO district_benchmarks_operator;
