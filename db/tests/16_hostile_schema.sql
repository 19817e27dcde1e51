-- A role that may CREATE in public (the default before PostgreSQL 15, or granted) plants functions and
-- operators there with the exact argument types of built-ins the function bodies call through a polymorphic,
-- variadic or implicitly-cast signature. An exact match in any schema on the search_path beats those
-- built-ins whatever the schema order, so with public on the pinned search_path the next run would execute the
-- decoys as the functions' owner (SECURITY DEFINER: the superuser in the embedded cluster and under pg_cron).
-- With search_path = pg_catalog, pg_temp and public.-qualified project objects, none of them runs.
BEGIN;
SELECT plan(11);

DELETE FROM district_data_history;
DELETE FROM districts;
DELETE FROM data_refresh_logs;

-- a small fixture: four districts in one state (so tiers exist), one elsewhere, two directory years, two
-- absenteeism years
INSERT INTO districts (leaid, state_fips) VALUES
    ('0100001', '01'), ('0100002', '01'), ('0100003', '01'), ('0100004', '01'), ('0200001', '02');
INSERT INTO district_data_history (leaid, year, source, enrollment, spec_ed_students, ell_students, teachers_fte)
SELECT leaid, y, 'ccd_directory', 100 * n + y - 2019, 10 * n, n, 10
  FROM (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n),
       generate_series(2019, 2022) y;
INSERT INTO district_data_history (leaid, year, source, chronic_absenteeism_rate, expenditure_pp)
SELECT leaid, y, 'crdc_absenteeism', 5 * n + (y - 2020), NULL
  FROM (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n),
       (VALUES (2020), (2022)) y(y);
INSERT INTO district_data_history (leaid, year, source, expenditure_pp)
SELECT leaid, y, 'ccd_finance', 10000 + 500 * n + 100 * (y - 2019)
  FROM (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n),
       generate_series(2019, 2021) y;
-- child poverty, so that every district is eligible for peer groups
INSERT INTO district_data_history (leaid, year, source, children_poverty_percent)
SELECT leaid, 2021, 'saipe', 3 * n + 7
  FROM (VALUES ('0100001', 1), ('0100002', 2), ('0100003', 3), ('0100004', 4), ('0200001', 5)) d(leaid, n);

-- the attacker: no grants, only CREATE on public
GRANT CREATE ON SCHEMA public TO PUBLIC;
CREATE ROLE dbench_test_eve NOLOGIN;
SET ROLE dbench_test_eve;

-- each decoy records that it ran and as whom, tries the escalation, then returns the built-in's result so
-- that the run completes and nothing looks wrong
CREATE TABLE public.eve_loot (decoy text, ran_as name);
GRANT INSERT ON public.eve_loot TO PUBLIC;
CREATE FUNCTION public.eve_strike(p_decoy text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.eve_loot VALUES (p_decoy, current_user);
    IF NOT has_table_privilege('dbench_test_eve', 'public.districts', 'UPDATE') THEN
        BEGIN
            EXECUTE 'GRANT ALL ON TABLE public.districts, public.states TO dbench_test_eve';
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END IF;
END $$;

-- built-ins called with arguments that only a polymorphic or variadic built-in accepts
CREATE FUNCTION public.width_bucket(bigint, bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('width_bucket(bigint, bigint[])'); RETURN pg_catalog.width_bucket($1, $2); END $$;
CREATE FUNCTION public.cardinality(bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('cardinality(bigint[])'); RETURN pg_catalog.cardinality($1); END $$;
CREATE FUNCTION public.eve_agg_step(bigint[], bigint) RETURNS bigint[] LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('array_agg(bigint)'); RETURN pg_catalog.array_append($1, $2); END $$;
CREATE AGGREGATE public.array_agg(bigint) (SFUNC = public.eve_agg_step, STYPE = bigint[]);
CREATE FUNCTION public.num_nonnulls(numeric, numeric, numeric, numeric) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('num_nonnulls(numeric x4)'); RETURN pg_catalog.num_nonnulls($1, $2, $3, $4); END $$;
CREATE FUNCTION public.jsonb_build_object(text, jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('jsonb_build_object(text, jsonb)'); RETURN pg_catalog.jsonb_build_object($1, $2); END $$;
-- operators whose operands the built-ins take only after an implicit cast (numeric op integer, varchar = varchar)
CREATE FUNCTION public.eve_num_ge(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('>=(numeric, integer)'); RETURN $1 >= $2::numeric; END $$;
CREATE OPERATOR public.>= (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.eve_num_ge);
CREATE FUNCTION public.eve_num_gt(numeric, integer) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('>(numeric, integer)'); RETURN $1 > $2::numeric; END $$;
CREATE OPERATOR public.> (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.eve_num_gt);
CREATE FUNCTION public.eve_num_mul(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('*(numeric, integer)'); RETURN $1 * $2::numeric; END $$;
CREATE OPERATOR public.* (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.eve_num_mul);
CREATE FUNCTION public.eve_num_div(numeric, integer) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('/(numeric, integer)'); RETURN $1 / $2::numeric; END $$;
CREATE OPERATOR public./ (LEFTARG = numeric, RIGHTARG = integer, FUNCTION = public.eve_num_div);
CREATE FUNCTION public.eve_varchar_ne(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('<>(varchar, varchar)'); RETURN $1::text <> $2::text; END $$;
CREATE OPERATOR public.<> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.eve_varchar_ne);
CREATE FUNCTION public.eve_varchar_eq(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM public.eve_strike('=(varchar, varchar)'); RETURN $1::text = $2::text; END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.eve_varchar_eq);
RESET ROLE;

-- run a statement as another role
\ir as_role.psql

-- from here on the test's own queries avoid the decoys (text comparisons, no numeric-integer operators)
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proowner = 'dbench_test_eve'::regrole), 13,
          'the attacker planted her decoys in public');

-- the operator's runs: the whole run (as under pg_cron), then each step alone, then as the operator role
SELECT lives_ok($$SELECT public.compute_all_benchmarks()$$, 'compute_all_benchmarks() runs');
SELECT lives_ok($$SELECT public.compute_current_values(), public.compute_state_averages(),
                         public.compute_district_trends(), public.compute_deltas_quartiles(),
                         public.compute_peer_groups()$$,
                'each step runs on its own');
SELECT lives_ok($$SELECT pg_temp.as_role('district_benchmarks_operator', 'SELECT public.compute_all_benchmarks(false)')$$,
                'the operator role runs compute_all_benchmarks()');

SELECT is((SELECT string_agg(DISTINCT decoy, ', ') FROM public.eve_loot), NULL,
          'no decoy ran inside the benchmark functions');
SELECT ok(NOT has_table_privilege('dbench_test_eve', 'public.districts', 'UPDATE'),
          'the attacker gained no UPDATE on districts');
SELECT ok(NOT has_table_privilege('dbench_test_eve', 'public.states', 'SELECT'),
          'the attacker gained no SELECT on states');

-- the runs computed what they should (the decoys, had they run, would have returned the same)
SELECT is((SELECT count(*)::int FROM public.districts WHERE swd_pct IS NOT NULL AND swd_trend_3yr IS NOT NULL),
          5, 'every district got its current percentages and trends');
SELECT is((SELECT array_agg(absenteeism_quartile_state ORDER BY leaid)::text[] FROM public.districts
            WHERE state_fips::text = '01'),
          ARRAY['well_below', 'below', 'above', 'well_above'], 'and its tiers');
SELECT is((SELECT count(*)::int FROM public.data_refresh_logs WHERE data_source::text = 'compute_benchmarks'), 2,
          'both whole runs were logged');
SELECT is((SELECT count(*)::int FROM public.district_peers), 20, 'and every district its four peers');

SELECT * FROM finish();
ROLLBACK;
