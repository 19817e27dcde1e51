/*
 * compute_all_benchmarks(refresh_current boolean DEFAULT true) RETURNS jsonb — the run's summary
 *
 * Owns a benchmark run: the order of its steps, its lock, its data_refresh_logs row and its summary.
 *   - Runs compute_current_values() (only when refresh_current), compute_state_averages(), then the trends,
 *     the deltas/tiers and the peer groups of compute_district_trends(), compute_deltas_quartiles() and
 *     compute_peer_groups(), taken from the same helpers _benchmarks_trend_values() / _benchmarks_delta_values()
 *     / _benchmarks_peer_values() (the deltas and the peers use the fresh swd_pct / ell_pct); district_peers is
 *     written by the peer helper, and the trends, deltas, tiers and peer differences of a district in ONE
 *     UPDATE per district; benchmark_metrics' trend years as compute_district_trends() does (its value years
 *     come with compute_current_values()). All in the caller's transaction, under the run lock
 *     (below): a second run queues, then computes from what the first committed. Call
 *     it in READ COMMITTED (the default): a REPEATABLE READ snapshot taken before the lock was granted would
 *     not see the first run's results.
 *   - Out of range: each step stores a value that does not fit its column as NULL and leaves the number of
 *     such values in the transaction-local setting district_benchmarks.out_of_range.
 *   - Inserts one data_refresh_logs row: data_source 'compute_benchmarks', status 'success', records_updated =
 *     states_changed + districts_changed, records_failed = 0 (an out-of-range value is not a failed record),
 *     started_at / completed_at, details = the summary.
 *   - Returns the summary: version, refresh_current, states_changed, districts_changed (district row writes
 *     summed over the steps; 0 = nothing changed), districts_written (district rows actually written: current
 *     values + the combined write), out_of_range, duration_ms, lock_wait_ms (queueing, not in duration_ms), and
 *     steps: {step: {rows_changed, out_of_range, ms}} for each step that ran; district_trends /
 *     deltas_quartiles / peer_groups count the rows whose trend / delta-and-tier / peer-difference columns
 *     changed (peer_groups also its district_peers rows; only its districts rows are in districts_changed), and
 *     deltas_quartiles.ms includes the combined write.
 *   - On error the whole run, log row included, rolls back with the transaction and the error reaches the
 *     caller, which records the failure (the CLI in a 'failed' row of its own transaction, pg_cron in
 *     cron.job_run_details).
 *
 * The run lock. Every compute_* function takes LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE
 * MODE (a lock-only table, migration 0040) before it reads anything; each value helper takes it unless this
 * backend holds it already. The lock is held to the end of the caller's transaction.
 *   - Self-conflicting: concurrent runs and steps queue. It also conflicts with ROW EXCLUSIVE, which the
 *     loader's landing transactions take on the same table before they write: whichever transaction holds the
 *     table first goes first, so a landing and a run never interleave or deadlock.
 *   - Only the owner can take it: no role is granted anything on the table, and LOCK TABLE in a mode that
 *     conflicts with this one needs UPDATE, DELETE or TRUNCATE. The functions take it as their owner (SECURITY
 *     DEFINER), so the operator role runs them without being able to hold up a run itself.
 *   - The wait obeys the caller's lock_timeout (55P03 lock_not_available when it expires). A waiting or holding
 *     backend shows in pg_locks as locktype 'relation', relation = 'public._benchmarks_run_lock'::regclass
 *     (granted = holder, NOT granted = waiting). The summary's lock_wait_ms is the time spent waiting for it.
 *
 * Every function of the set pins search_path = pg_catalog, pg_temp and names the project's own tables and
 * functions public.*: no schema others may CREATE in is searched, so no function or operator planted there
 * (an exact-type match beats a polymorphic or implicitly-cast built-in) runs with the owner's rights.
 */
-- the advisory-lock key function the run lock replaced in 1.1.5, under both its names (idempotent; the function
-- files are installed in one transaction, so no function is ever left calling it)
DROP FUNCTION IF EXISTS public._benchmarks_lock_key();
DROP FUNCTION IF EXISTS public.benchmarks_lock_key();

CREATE OR REPLACE FUNCTION public.compute_all_benchmarks(refresh_current boolean DEFAULT true)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
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
    v_trends_rows     integer;
    v_trends_oor      integer;
    v_trends_ms       numeric;
    v_written         integer;
    v_districts_written integer := 0;
    v_deltas_ms       double precision;
    v_peer_rows       integer;
    v_peer_oor        integer;
    v_peer_ms         numeric;
    v_peer_districts  integer;
    v_summary         jsonb;
BEGIN
    LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;  -- the run lock: see the header
    v_started_at := clock_timestamp();

    IF refresh_current THEN
        v_step_started := clock_timestamp();
        v_rows := public.compute_current_values();
        v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
        v_districts := v_districts + v_rows;
        v_districts_written := v_districts_written + v_rows;
        v_out_of_range := v_out_of_range + v_step_oor;
        v_steps := v_steps || jsonb_build_object('current_values', jsonb_build_object(
            'rows_changed', v_rows, 'out_of_range', v_step_oor,
            'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));
    END IF;

    v_step_started := clock_timestamp();
    v_rows := public.compute_state_averages();
    v_step_oor := current_setting('district_benchmarks.out_of_range')::integer;
    v_states_changed := v_rows;
    v_out_of_range := v_out_of_range + v_step_oor;
    v_steps := v_steps || jsonb_build_object('state_averages', jsonb_build_object(
        'rows_changed', v_rows, 'out_of_range', v_step_oor,
        'ms', round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)));

    -- Trends, deltas and tiers, peer groups: the rules of compute_district_trends(), compute_deltas_quartiles()
    -- and compute_peer_groups() (in _benchmarks_trend_values() / _benchmarks_delta_values() /
    -- _benchmarks_peer_values()), but each district row is written once. The trend values go to a temporary
    -- table, from which the deltas and the peer groups take the fresh swd_pct / ell_pct.
    v_step_started := clock_timestamp();
    IF to_regclass('pg_temp.benchmarks_district_values') IS NOT NULL THEN
        DROP TABLE pg_temp.benchmarks_district_values;
    END IF;
    CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
        SELECT * FROM public._benchmarks_trend_values();
    -- the years the trends compare ([B, Y] per metric, left by the helper): rewritten only when they change
    PERFORM public._benchmarks_store_trend_years();
    SELECT coalesce(sum(t.out_of_range), 0) INTO v_step_oor FROM pg_temp.benchmarks_district_values t;
    v_out_of_range := v_out_of_range + v_step_oor;
    v_trends_ms := round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1);
    v_trends_oor := v_step_oor;

    -- the deltas and tiers, kept for the write
    v_step_started := clock_timestamp();
    IF to_regclass('pg_temp.benchmarks_delta_values') IS NOT NULL THEN
        DROP TABLE pg_temp.benchmarks_delta_values;
    END IF;
    CREATE TEMPORARY TABLE benchmarks_delta_values ON COMMIT DROP AS
        SELECT * FROM public._benchmarks_delta_values();
    SELECT coalesce(sum(x.out_of_range), 0) INTO v_step_oor FROM pg_temp.benchmarks_delta_values x;
    v_deltas_ms := extract(epoch FROM clock_timestamp() - v_step_started) * 1000;

    -- the peer groups: district_peers written now, the differences that change left for the write
    v_step_started := clock_timestamp();
    v_peer_rows := public._benchmarks_peer_values();
    v_peer_oor := current_setting('district_benchmarks.out_of_range')::integer;
    v_peer_ms := round((extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1);

    -- the one write per district
    v_step_started := clock_timestamp();
    WITH written AS (
        UPDATE public.districts d
           SET swd_pct                              = t.swd_pct,
               ell_pct                              = t.ell_pct,
               swd_trend_3yr                        = t.swd_trend_3yr,
               ell_trend_3yr                        = t.ell_trend_3yr,
               absenteeism_trend_3yr                = t.absenteeism_trend_3yr,
               graduation_trend_3yr                 = t.graduation_trend_3yr,
               student_teacher_ratio_trend_3yr      = t.student_teacher_ratio_trend_3yr,
               math_proficiency_trend_3yr           = t.math_proficiency_trend_3yr,
               read_proficiency_trend_3yr           = t.read_proficiency_trend_3yr,
               expenditure_pp_trend_3yr             = t.expenditure_pp_trend_3yr,
               absenteeism_vs_state                 = x.absenteeism_vs_state,
               absenteeism_vs_national              = x.absenteeism_vs_national,
               graduation_vs_state                  = x.graduation_vs_state,
               graduation_vs_national               = x.graduation_vs_national,
               student_teacher_ratio_vs_state       = x.student_teacher_ratio_vs_state,
               student_teacher_ratio_vs_national    = x.student_teacher_ratio_vs_national,
               swd_pct_vs_state                     = x.swd_pct_vs_state,
               swd_pct_vs_national                  = x.swd_pct_vs_national,
               ell_pct_vs_state                     = x.ell_pct_vs_state,
               ell_pct_vs_national                  = x.ell_pct_vs_national,
               math_proficiency_vs_state            = x.math_proficiency_vs_state,
               math_proficiency_vs_national         = x.math_proficiency_vs_national,
               read_proficiency_vs_state            = x.read_proficiency_vs_state,
               read_proficiency_vs_national         = x.read_proficiency_vs_national,
               expenditure_pp_vs_state              = x.expenditure_pp_vs_state,
               expenditure_pp_vs_national           = x.expenditure_pp_vs_national,
               absenteeism_quartile_state           = x.absenteeism_quartile_state,
               graduation_quartile_state            = x.graduation_quartile_state,
               student_teacher_ratio_quartile_state = x.student_teacher_ratio_quartile_state,
               swd_pct_quartile_state               = x.swd_pct_quartile_state,
               ell_pct_quartile_state               = x.ell_pct_quartile_state,
               math_proficiency_quartile_state      = x.math_proficiency_quartile_state,
               read_proficiency_quartile_state      = x.read_proficiency_quartile_state,
               expenditure_pp_quartile_state        = x.expenditure_pp_quartile_state,
               absenteeism_vs_peers                 = CASE WHEN p.leaid IS NULL THEN d.absenteeism_vs_peers
                                                           ELSE p.absenteeism_vs_peers END,
               graduation_vs_peers                  = CASE WHEN p.leaid IS NULL THEN d.graduation_vs_peers
                                                           ELSE p.graduation_vs_peers END,
               student_teacher_ratio_vs_peers       = CASE WHEN p.leaid IS NULL THEN d.student_teacher_ratio_vs_peers
                                                           ELSE p.student_teacher_ratio_vs_peers END,
               swd_pct_vs_peers                     = CASE WHEN p.leaid IS NULL THEN d.swd_pct_vs_peers
                                                           ELSE p.swd_pct_vs_peers END,
               ell_pct_vs_peers                     = CASE WHEN p.leaid IS NULL THEN d.ell_pct_vs_peers
                                                           ELSE p.ell_pct_vs_peers END,
               math_proficiency_vs_peers            = CASE WHEN p.leaid IS NULL THEN d.math_proficiency_vs_peers
                                                           ELSE p.math_proficiency_vs_peers END,
               read_proficiency_vs_peers            = CASE WHEN p.leaid IS NULL THEN d.read_proficiency_vs_peers
                                                           ELSE p.read_proficiency_vs_peers END,
               expenditure_pp_vs_peers              = CASE WHEN p.leaid IS NULL THEN d.expenditure_pp_vs_peers
                                                           ELSE p.expenditure_pp_vs_peers END,
               updated_at                           = now()
          FROM pg_temp.benchmarks_district_values t
          JOIN pg_temp.benchmarks_delta_values x ON x.leaid = t.leaid
          LEFT JOIN pg_temp.benchmarks_peer_differences p ON p.leaid = t.leaid
         WHERE d.leaid = t.leaid AND (t.changed OR x.changed OR p.leaid IS NOT NULL)
        RETURNING t.changed AS trends_changed, x.changed AS deltas_changed, p.leaid IS NOT NULL AS peers_changed
    )
    SELECT count(*) FILTER (WHERE w.trends_changed), count(*) FILTER (WHERE w.deltas_changed),
           count(*) FILTER (WHERE w.peers_changed), count(*)
      FROM written w
      INTO v_trends_rows, v_rows, v_peer_districts, v_written;
    DROP TABLE pg_temp.benchmarks_district_values, pg_temp.benchmarks_delta_values,
               pg_temp.benchmarks_peer_differences;
    v_districts := v_districts + v_trends_rows + v_rows + v_peer_districts;
    v_districts_written := v_districts_written + v_written;
    v_out_of_range := v_out_of_range + v_step_oor + v_peer_oor;
    v_steps := v_steps
        || jsonb_build_object('district_trends', jsonb_build_object(
               'rows_changed', v_trends_rows, 'out_of_range', v_trends_oor, 'ms', v_trends_ms))
        || jsonb_build_object('deltas_quartiles', jsonb_build_object(
               'rows_changed', v_rows, 'out_of_range', v_step_oor,
               'ms', round((v_deltas_ms + extract(epoch FROM clock_timestamp() - v_step_started) * 1000)::numeric, 1)))
        || jsonb_build_object('peer_groups', jsonb_build_object(
               'rows_changed', v_peer_rows + v_peer_districts, 'out_of_range', v_peer_oor, 'ms', v_peer_ms));

    v_summary := jsonb_build_object(
        'version',           public.benchmarks_version(),
        'refresh_current',   refresh_current,
        'states_changed',    v_states_changed,
        'districts_changed', v_districts,
        'districts_written', v_districts_written,
        'out_of_range',      v_out_of_range,
        'duration_ms',       round((extract(epoch FROM clock_timestamp() - v_started_at) * 1000)::numeric, 1),
        'lock_wait_ms',      round((extract(epoch FROM v_started_at - v_called_at) * 1000)::numeric, 1),
        'steps',             v_steps);

    INSERT INTO public.data_refresh_logs (data_source, records_updated, records_failed, status, started_at, completed_at, details)
    VALUES ('compute_benchmarks', v_states_changed + v_districts, 0, 'success', v_called_at, clock_timestamp(), v_summary);

    RETURN v_summary;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_all_benchmarks(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_all_benchmarks(boolean) TO district_benchmarks_operator;
