-- The run lock (contract in compute_all_benchmarks.sql's header): runs queue on LOCK TABLE
-- public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE, which only the owner can take. No advisory lock:
-- any role can take any advisory key, and with the old key held the nightly run waited forever.
BEGIN;
SELECT plan(35);

DELETE FROM data_refresh_logs;

CREATE ROLE dbench_test_nobody NOLOGIN;
CREATE ROLE dbench_test_helper_caller NOLOGIN;

-- run a statement as another role
\ir as_role.psql

-- the number of rows in a table; NULL when there is no such table
CREATE FUNCTION pg_temp.rows_in(p_table text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE v_rows bigint;
BEGIN
    IF to_regclass(p_table) IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', to_regclass(p_table)) INTO v_rows;
    END IF;
    RETURN v_rows;
END $$;

-- whether running p_sql leaves this backend holding the run lock; p_sql and its lock are rolled back (a
-- subtransaction), so each function is checked from a state where the lock is not held
CREATE FUNCTION pg_temp.takes_run_lock(p_sql text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE v_held boolean;
BEGIN
    BEGIN
        EXECUTE p_sql;
        SELECT EXISTS (SELECT 1 FROM pg_locks l
                        WHERE l.locktype = 'relation' AND l.pid = pg_backend_pid() AND l.granted
                          AND l.relation = to_regclass('public._benchmarks_run_lock')
                          AND l.mode = 'ShareRowExclusiveLock')
          INTO v_held;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0001';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    RETURN v_held;
END $$;

-- the two lock tables: owned by the schema's owner, no privilege for anyone else, commented
SELECT has_table('public', '_benchmarks_run_lock', 'the run lock table exists');
SELECT has_table('public', '_benchmarks_ingest_lock', 'the ingest lock table exists');
SELECT is(pg_temp.rows_in('public._benchmarks_run_lock') + pg_temp.rows_in('public._benchmarks_ingest_lock'),
          0::bigint, 'both are empty');
SELECT is((SELECT array_agg(DISTINCT a.grantee::regrole::text)
             FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
            WHERE c.oid IN (to_regclass('public._benchmarks_run_lock'), to_regclass('public._benchmarks_ingest_lock'))
              AND a.grantee <> c.relowner),
          NULL, 'no role but the owner has any privilege on them (PUBLIC included)');
SELECT ok(obj_description(to_regclass('public.' || t), 'pg_class') IS NOT NULL, t || ' says what it is for')
  FROM (VALUES ('_benchmarks_run_lock'), ('_benchmarks_ingest_lock')) x(t);

-- a role without grants cannot take either lock in any mode that conflicts with SHARE ROW EXCLUSIVE
SELECT throws_ok(format($$SELECT pg_temp.as_role('dbench_test_nobody', 'LOCK TABLE public.%s IN %s MODE')$$, t, m),
                 '42501', NULL, format('a role without grants cannot LOCK %s IN %s MODE', t, m))
  FROM (VALUES ('_benchmarks_run_lock'), ('_benchmarks_ingest_lock')) x(t),
       (VALUES ('ROW EXCLUSIVE'), ('SHARE UPDATE EXCLUSIVE'), ('SHARE'), ('SHARE ROW EXCLUSIVE'), ('EXCLUSIVE'),
               ('ACCESS EXCLUSIVE')) y(m);
-- nor the operator or reader role (they run the functions, which take the lock as the owner)
SELECT throws_ok(format($$SELECT pg_temp.as_role('%s', 'LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE')$$, r),
                 '42501', NULL, r || ' cannot take the run lock directly')
  FROM (VALUES ('district_benchmarks_operator'), ('district_benchmarks_reader')) x(r);

-- every compute function takes the run lock; each value helper takes it too when called alone
SELECT ok(pg_temp.takes_run_lock(coalesce(setup, '') || 'SELECT count(*) FROM public.' || fn), fn || ' takes the run lock')
  FROM (VALUES ('compute_all_benchmarks()', NULL), ('compute_current_values()', NULL),
               ('compute_state_averages()', NULL), ('compute_district_trends()', NULL),
               ('compute_deltas_quartiles()', NULL), ('compute_peer_groups()', NULL), ('_benchmarks_trend_values()', NULL),
               ('_benchmarks_delta_values()', 'CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
                                                 SELECT leaid, swd_pct, ell_pct FROM public.districts; '),
               ('_benchmarks_peer_values()', 'CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
                                                 SELECT leaid, swd_pct, ell_pct FROM public.districts; ')) x(fn, setup);

-- a value helper is called only by a definer function, as the owner. Called alone by a role that cannot take
-- the lock (here given EXECUTE and SELECT for the test), it is refused rather than reading unlocked ...
GRANT EXECUTE ON FUNCTION public._benchmarks_trend_values() TO dbench_test_helper_caller;
GRANT SELECT ON public.districts, public.district_data_history TO dbench_test_helper_caller;
SELECT throws_ok($$SELECT pg_temp.as_role('dbench_test_helper_caller', 'SELECT count(*) FROM public._benchmarks_trend_values()')$$,
                 '42501', NULL, 'a helper called alone by a role that cannot take the lock is refused');

-- no advisory lock anywhere (any role can take any advisory key), and the old key's function is gone
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^_?(compute|benchmarks)_'
              AND p.prosrc ILIKE '%advisory%'),
          NULL, 'no function of the set takes an advisory lock');
SELECT hasnt_function('public', '_benchmarks_lock_key', '_benchmarks_lock_key() is gone');

-- the operator role runs the whole computation (the functions take the lock as their owner); the lock stays
-- held by this transaction from here on
SELECT lives_ok($$SELECT pg_temp.as_role('district_benchmarks_operator', 'SELECT public.compute_all_benchmarks()')$$,
                'the operator role runs compute_all_benchmarks()');
SELECT is((SELECT count(*)::int FROM data_refresh_logs WHERE data_source = 'compute_benchmarks'), 1,
          'and the run was logged');

-- ... while, with the lock already held by this backend (as inside a run), the helper does not take it again
SELECT lives_ok($$SELECT pg_temp.as_role('dbench_test_helper_caller', 'SELECT count(*) FROM public._benchmarks_trend_values()')$$,
                'a helper called while the lock is held runs, even for a role that could not take it');

SELECT * FROM finish();
ROLLBACK;
