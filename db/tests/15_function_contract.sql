-- The function set's contract: who may execute what, SECURITY DEFINER, volatility, pinned search_path.
BEGIN;
SELECT plan(73);

DELETE FROM data_refresh_logs;

CREATE ROLE dbench_test_nobody NOLOGIN;

-- run a statement as another role; the role is reset afterwards (or rolled back with throws_ok's
-- subtransaction when it fails), so pgTAP's own bookkeeping keeps running as the test's user
\ir as_role.psql

-- every compute function: operator may execute, PUBLIC / an unrelated role / the reader may not
SELECT function_privs_are('public', f, args, 'district_benchmarks_operator', ARRAY['EXECUTE'],
                          f || ': the operator role may execute it')
  FROM (VALUES ('compute_current_values', ARRAY[]::name[]), ('compute_state_averages', ARRAY[]::name[]),
               ('compute_district_trends', ARRAY[]::name[]), ('compute_deltas_quartiles', ARRAY[]::name[]),
               ('compute_peer_groups', ARRAY[]::name[]), ('compute_all_benchmarks', ARRAY['boolean']::name[])) fn(f, args);
SELECT function_privs_are('public', f, args, 'dbench_test_nobody', ARRAY[]::text[],
                          f || ': PUBLIC has no EXECUTE (an unrelated role cannot run it)')
  FROM (VALUES ('compute_current_values', ARRAY[]::name[]), ('compute_state_averages', ARRAY[]::name[]),
               ('compute_district_trends', ARRAY[]::name[]), ('compute_deltas_quartiles', ARRAY[]::name[]),
               ('compute_peer_groups', ARRAY[]::name[]), ('compute_all_benchmarks', ARRAY['boolean']::name[])) fn(f, args);
SELECT function_privs_are('public', 'compute_all_benchmarks', ARRAY['boolean'], 'district_benchmarks_reader',
                          ARRAY[]::text[], 'the reader role cannot run a computation');
SELECT function_privs_are('public', 'benchmarks_version', ARRAY[]::name[], 'district_benchmarks_reader',
                          ARRAY['EXECUTE'], 'the reader role may ask for the version');

SELECT throws_ok($$SELECT pg_temp.as_role('dbench_test_nobody', 'SELECT compute_all_benchmarks()')$$, '42501', NULL,
                 'a role without the grant is refused');
SELECT throws_ok($$SELECT pg_temp.as_role('dbench_test_nobody', 'SELECT compute_state_averages()')$$, '42501', NULL,
                 'also for a single step');
SELECT throws_ok($$SELECT pg_temp.as_role('district_benchmarks_operator', 'UPDATE districts SET swd_pct = 1')$$, '42501', NULL,
                 'the operator has no direct write access to the tables ...');
SELECT is(pg_temp.as_role('district_benchmarks_operator', 'SELECT compute_all_benchmarks() ->> ''version'''),
          benchmarks_version(), '... yet runs the whole computation, because the functions are SECURITY DEFINER');
SELECT is((SELECT count(*)::int FROM data_refresh_logs WHERE data_source = 'compute_benchmarks'), 1,
          'and the operator''s run was logged');

-- SECURITY DEFINER; every function pins search_path = pg_catalog, pg_temp and nothing else: a schema others
-- can CREATE in (public before PostgreSQL 15) must not be on it, since an exact-type function or operator there
-- beats a polymorphic or implicitly-cast built-in whatever the order (16_hostile_schema.sql); pg_temp last, so
-- temp objects cannot shadow built-in types. The project's own objects are named with public.
SELECT is_definer('public', f, args, f || ' is SECURITY DEFINER')
  FROM (VALUES ('compute_current_values', ARRAY[]::name[]), ('compute_state_averages', ARRAY[]::name[]),
               ('compute_district_trends', ARRAY[]::name[]), ('compute_deltas_quartiles', ARRAY[]::name[]),
               ('compute_peer_groups', ARRAY[]::name[]), ('compute_all_benchmarks', ARRAY['boolean']::name[])) fn(f, args);
SELECT isnt_definer('public', 'benchmarks_version', ARRAY[]::name[], 'benchmarks_version runs as its caller');
-- each of the eleven by its signature (a missing function reads as NULL and fails)
SELECT is((SELECT substr(c, length('search_path=') + 1)
             FROM unnest((SELECT p.proconfig FROM pg_proc p WHERE p.oid = to_regprocedure('public.' || sig))) c
            WHERE c LIKE 'search\_path=%'),
          'pg_catalog, pg_temp', sig || ': its pinned search_path is exactly pg_catalog, pg_temp')
  FROM (VALUES ('compute_current_values()'), ('compute_state_averages()'), ('compute_district_trends()'),
               ('compute_deltas_quartiles()'), ('compute_peer_groups()'), ('compute_all_benchmarks(boolean)'),
               ('benchmarks_version()'), ('_benchmarks_trend_values()'), ('_benchmarks_delta_values()'),
               ('_benchmarks_peer_values()'), ('_benchmarks_peers_written()'),
               ('_benchmarks_store_trend_years()')) fn(sig);
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^_?(compute|benchmarks)_'
              AND NOT ('search_path=pg_catalog, pg_temp' = ANY (coalesce(p.proconfig, '{}')))),
          NULL, 'every function of the set pins search_path = pg_catalog, pg_temp');
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
            AND p.proname ~ '^_?(compute|benchmarks)_'), 12,
          'the function set is the 12 documented functions (no stray overloads)');

-- the API is the seven compute_* / benchmarks_version functions; everything else is an internal helper whose
-- name starts with an underscore; the helpers' names before 1.1.4 are gone, and so is the advisory-lock key
-- function (1.1.5: the run lock is a table lock, see 17_run_lock.sql)
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.proname ~ '^_?(compute|benchmarks)_'
              AND p.proname NOT IN ('compute_current_values', 'compute_state_averages', 'compute_district_trends',
                                    'compute_deltas_quartiles', 'compute_peer_groups', 'compute_all_benchmarks',
                                    'benchmarks_version')),
          ARRAY['_benchmarks_delta_values', '_benchmarks_peer_values', '_benchmarks_peers_written',
                '_benchmarks_store_trend_years', '_benchmarks_trend_values'],
          'the functions outside the API are the three value helpers, the trend years'' store and the district_peers '
          'trigger function, each '
          'named with a leading underscore');
SELECT hasnt_function('public', f, f || '() no longer exists')
  FROM (VALUES ('benchmarks_trend_values'), ('benchmarks_delta_values'), ('benchmarks_lock_key'),
               ('_benchmarks_lock_key')) fn(f);
SELECT is(benchmarks_version(), '1.3.0', 'benchmarks_version() is 1.3.0');

-- the internal value functions (shared by a step and compute_all_benchmarks) are not callable from outside
SELECT function_privs_are('public', f, ARRAY[]::name[], r, ARRAY[]::text[], f || ': ' || r || ' may not execute it')
  FROM (VALUES ('_benchmarks_trend_values'), ('_benchmarks_delta_values'), ('_benchmarks_peer_values'),
               ('_benchmarks_peers_written'), ('_benchmarks_store_trend_years')) fn(f),
       (VALUES ('district_benchmarks_operator'), ('dbench_test_nobody')) rl(r);
SELECT throws_ok($$SELECT pg_temp.as_role('district_benchmarks_operator', 'SELECT count(*) FROM _benchmarks_trend_values()')$$,
                 '42501', NULL, 'the operator cannot call an internal value function directly');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc p
            WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'compute\_%'
              AND NOT ('jit=off' = ANY (coalesce(p.proconfig, '{}')))),
          NULL, 'the compute functions run without JIT (compilation costs more than it saves here)');

-- volatility
SELECT volatility_is('public', f, args, 'volatile', f || ' is VOLATILE (it writes)')
  FROM (VALUES ('compute_current_values', ARRAY[]::name[]), ('compute_state_averages', ARRAY[]::name[]),
               ('compute_district_trends', ARRAY[]::name[]), ('compute_deltas_quartiles', ARRAY[]::name[]),
               ('compute_peer_groups', ARRAY[]::name[]), ('compute_all_benchmarks', ARRAY['boolean']::name[])) fn(f, args);
SELECT volatility_is('public', 'benchmarks_version', ARRAY[]::name[], 'stable', 'benchmarks_version is STABLE');

-- signatures and return types
SELECT function_returns('public', f, args, rettype, f || ' returns ' || rettype)
  FROM (VALUES ('compute_current_values', ARRAY[]::name[], 'integer'), ('compute_state_averages', ARRAY[]::name[], 'integer'),
               ('compute_district_trends', ARRAY[]::name[], 'integer'), ('compute_deltas_quartiles', ARRAY[]::name[], 'integer'),
               ('compute_peer_groups', ARRAY[]::name[], 'integer'), ('compute_all_benchmarks', ARRAY['boolean']::name[], 'jsonb')) fn(f, args, rettype);
SELECT is((compute_all_benchmarks() ->> 'refresh_current')::boolean, true, 'refresh_current defaults to true');

-- the tiers rank value × 100 as an exact bigint key (_benchmarks_delta_values()): that needs every ranked
-- value to have at most two decimals, which these column types guarantee (swd_pct / ell_pct are also
-- rounded to 2 where they are computed). A migration that widens a scale must revisit the ranking.
SELECT is((SELECT array_agg(column_name::text || ' ' || numeric_scale ORDER BY column_name)
             FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = 'districts'
              AND column_name IN ('chronic_absenteeism_rate', 'graduation_rate_total', 'student_teacher_ratio',
                                  'swd_pct', 'ell_pct', 'math_proficiency_pct', 'read_proficiency_pct',
                                  'expenditure_per_pupil')),
          ARRAY['chronic_absenteeism_rate 2', 'ell_pct 2', 'expenditure_per_pupil 2', 'graduation_rate_total 2',
                'math_proficiency_pct 2', 'read_proficiency_pct 2', 'student_teacher_ratio 2', 'swd_pct 2'],
          'the eight ranked value columns have scale 2, so value × 100 is an exact integer ranking key');

SELECT * FROM finish();
ROLLBACK;
