-- The schema contract: every table, column, type, key, check constraint and the seeded states.
BEGIN;
SELECT plan(155);

-- states
SELECT has_table('public', 'states', 'states exists');
SELECT columns_are('public', 'states', ARRAY['fips', 'abbrev', 'name', 'avg_chronic_absenteeism_rate', 'avg_student_teacher_ratio', 'avg_swd_pct', 'avg_ell_pct', 'avg_enrollment', 'avg_math_proficiency', 'avg_read_proficiency', 'avg_graduation_rate', 'avg_expenditure_per_pupil', 'avg_poverty_rate', 'total_districts', 'total_enrollment', 'aggregates_updated_at', 'created_at', 'updated_at'], 'states has exactly the specified columns');
SELECT col_type_is('public', 'states', 'fips', 'character varying(2)', 'states.fips is character varying(2)');
SELECT col_type_is('public', 'states', 'abbrev', 'character varying(2)', 'states.abbrev is character varying(2)');
SELECT col_type_is('public', 'states', 'name', 'text', 'states.name is text');
SELECT col_type_is('public', 'states', 'avg_chronic_absenteeism_rate', 'numeric(5,2)', 'states.avg_chronic_absenteeism_rate is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_student_teacher_ratio', 'numeric(8,2)', 'states.avg_student_teacher_ratio is numeric(8,2)');
SELECT col_type_is('public', 'states', 'avg_swd_pct', 'numeric(5,2)', 'states.avg_swd_pct is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_ell_pct', 'numeric(5,2)', 'states.avg_ell_pct is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_enrollment', 'integer', 'states.avg_enrollment is integer');
SELECT col_type_is('public', 'states', 'avg_math_proficiency', 'numeric(5,2)', 'states.avg_math_proficiency is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_read_proficiency', 'numeric(5,2)', 'states.avg_read_proficiency is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_graduation_rate', 'numeric(5,2)', 'states.avg_graduation_rate is numeric(5,2)');
SELECT col_type_is('public', 'states', 'avg_expenditure_per_pupil', 'numeric(12,2)', 'states.avg_expenditure_per_pupil is numeric(12,2)');
SELECT col_type_is('public', 'states', 'avg_poverty_rate', 'numeric(5,2)', 'states.avg_poverty_rate is numeric(5,2)');
SELECT col_type_is('public', 'states', 'total_districts', 'integer', 'states.total_districts is integer');
SELECT col_type_is('public', 'states', 'total_enrollment', 'bigint', 'states.total_enrollment is bigint');
SELECT col_type_is('public', 'states', 'aggregates_updated_at', 'timestamp with time zone', 'states.aggregates_updated_at is timestamp with time zone');
SELECT col_type_is('public', 'states', 'created_at', 'timestamp with time zone', 'states.created_at is timestamp with time zone');
SELECT col_type_is('public', 'states', 'updated_at', 'timestamp with time zone', 'states.updated_at is timestamp with time zone');

-- districts
SELECT has_table('public', 'districts', 'districts exists');
SELECT columns_are('public', 'districts', ARRAY['leaid', 'name', 'state_fips', 'state_abbrev', 'city', 'county_name', 'urban_centric_locale', 'agency_type', 'directory_year', 'enrollment', 'spec_ed_students', 'ell_students', 'teachers_fte', 'student_teacher_ratio', 'chronic_absenteeism_rate', 'graduation_rate_total', 'math_proficiency_pct', 'read_proficiency_pct', 'expenditure_per_pupil', 'children_poverty_percent', 'swd_pct', 'ell_pct', 'swd_trend_3yr', 'ell_trend_3yr', 'absenteeism_trend_3yr', 'graduation_trend_3yr', 'student_teacher_ratio_trend_3yr', 'math_proficiency_trend_3yr', 'read_proficiency_trend_3yr', 'expenditure_pp_trend_3yr', 'absenteeism_vs_state', 'absenteeism_vs_national', 'graduation_vs_state', 'graduation_vs_national', 'student_teacher_ratio_vs_state', 'student_teacher_ratio_vs_national', 'swd_pct_vs_state', 'swd_pct_vs_national', 'ell_pct_vs_state', 'ell_pct_vs_national', 'math_proficiency_vs_state', 'math_proficiency_vs_national', 'read_proficiency_vs_state', 'read_proficiency_vs_national', 'expenditure_pp_vs_state', 'expenditure_pp_vs_national', 'absenteeism_quartile_state', 'graduation_quartile_state', 'student_teacher_ratio_quartile_state', 'swd_pct_quartile_state', 'ell_pct_quartile_state', 'math_proficiency_quartile_state', 'read_proficiency_quartile_state', 'expenditure_pp_quartile_state', 'created_at', 'updated_at', 'absenteeism_vs_peers', 'graduation_vs_peers', 'student_teacher_ratio_vs_peers', 'swd_pct_vs_peers', 'ell_pct_vs_peers', 'math_proficiency_vs_peers', 'read_proficiency_vs_peers', 'expenditure_pp_vs_peers'], 'districts has exactly the specified columns');
SELECT col_type_is('public', 'districts', 'leaid', 'character varying(7)', 'districts.leaid is character varying(7)');
SELECT col_type_is('public', 'districts', 'name', 'text', 'districts.name is text');
SELECT col_type_is('public', 'districts', 'state_fips', 'character varying(2)', 'districts.state_fips is character varying(2)');
SELECT col_type_is('public', 'districts', 'state_abbrev', 'character varying(2)', 'districts.state_abbrev is character varying(2)');
SELECT col_type_is('public', 'districts', 'city', 'text', 'districts.city is text');
SELECT col_type_is('public', 'districts', 'county_name', 'text', 'districts.county_name is text');
SELECT col_type_is('public', 'districts', 'urban_centric_locale', 'smallint', 'districts.urban_centric_locale is smallint');
SELECT col_type_is('public', 'districts', 'agency_type', 'smallint', 'districts.agency_type is smallint');
SELECT col_type_is('public', 'districts', 'directory_year', 'smallint', 'districts.directory_year is smallint');
SELECT col_type_is('public', 'districts', 'enrollment', 'integer', 'districts.enrollment is integer');
SELECT col_type_is('public', 'districts', 'spec_ed_students', 'integer', 'districts.spec_ed_students is integer');
SELECT col_type_is('public', 'districts', 'ell_students', 'integer', 'districts.ell_students is integer');
SELECT col_type_is('public', 'districts', 'teachers_fte', 'numeric(10,2)', 'districts.teachers_fte is numeric(10,2)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio', 'numeric(8,2)', 'districts.student_teacher_ratio is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'chronic_absenteeism_rate', 'numeric(5,2)', 'districts.chronic_absenteeism_rate is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'graduation_rate_total', 'numeric(5,2)', 'districts.graduation_rate_total is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'math_proficiency_pct', 'numeric(5,2)', 'districts.math_proficiency_pct is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'read_proficiency_pct', 'numeric(5,2)', 'districts.read_proficiency_pct is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'expenditure_per_pupil', 'numeric(12,2)', 'districts.expenditure_per_pupil is numeric(12,2)');
SELECT col_type_is('public', 'districts', 'children_poverty_percent', 'numeric(5,2)', 'districts.children_poverty_percent is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'swd_pct', 'numeric(5,2)', 'districts.swd_pct is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'ell_pct', 'numeric(5,2)', 'districts.ell_pct is numeric(5,2)');
SELECT col_type_is('public', 'districts', 'swd_trend_3yr', 'numeric(8,2)', 'districts.swd_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'ell_trend_3yr', 'numeric(8,2)', 'districts.ell_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'absenteeism_trend_3yr', 'numeric(8,2)', 'districts.absenteeism_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'graduation_trend_3yr', 'numeric(8,2)', 'districts.graduation_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio_trend_3yr', 'numeric(8,2)', 'districts.student_teacher_ratio_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'math_proficiency_trend_3yr', 'numeric(8,2)', 'districts.math_proficiency_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'read_proficiency_trend_3yr', 'numeric(8,2)', 'districts.read_proficiency_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'expenditure_pp_trend_3yr', 'numeric(8,2)', 'districts.expenditure_pp_trend_3yr is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'absenteeism_vs_state', 'numeric(8,2)', 'districts.absenteeism_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'absenteeism_vs_national', 'numeric(8,2)', 'districts.absenteeism_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'graduation_vs_state', 'numeric(8,2)', 'districts.graduation_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'graduation_vs_national', 'numeric(8,2)', 'districts.graduation_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio_vs_state', 'numeric(8,2)', 'districts.student_teacher_ratio_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio_vs_national', 'numeric(8,2)', 'districts.student_teacher_ratio_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'swd_pct_vs_state', 'numeric(8,2)', 'districts.swd_pct_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'swd_pct_vs_national', 'numeric(8,2)', 'districts.swd_pct_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'ell_pct_vs_state', 'numeric(8,2)', 'districts.ell_pct_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'ell_pct_vs_national', 'numeric(8,2)', 'districts.ell_pct_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'math_proficiency_vs_state', 'numeric(8,2)', 'districts.math_proficiency_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'math_proficiency_vs_national', 'numeric(8,2)', 'districts.math_proficiency_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'read_proficiency_vs_state', 'numeric(8,2)', 'districts.read_proficiency_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'read_proficiency_vs_national', 'numeric(8,2)', 'districts.read_proficiency_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'expenditure_pp_vs_state', 'numeric(8,2)', 'districts.expenditure_pp_vs_state is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'expenditure_pp_vs_national', 'numeric(8,2)', 'districts.expenditure_pp_vs_national is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'absenteeism_vs_peers', 'numeric(8,2)', 'districts.absenteeism_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'graduation_vs_peers', 'numeric(8,2)', 'districts.graduation_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio_vs_peers', 'numeric(8,2)', 'districts.student_teacher_ratio_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'swd_pct_vs_peers', 'numeric(8,2)', 'districts.swd_pct_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'ell_pct_vs_peers', 'numeric(8,2)', 'districts.ell_pct_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'math_proficiency_vs_peers', 'numeric(8,2)', 'districts.math_proficiency_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'read_proficiency_vs_peers', 'numeric(8,2)', 'districts.read_proficiency_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'expenditure_pp_vs_peers', 'numeric(8,2)', 'districts.expenditure_pp_vs_peers is numeric(8,2)');
SELECT col_type_is('public', 'districts', 'absenteeism_quartile_state', 'character varying(15)', 'districts.absenteeism_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'graduation_quartile_state', 'character varying(15)', 'districts.graduation_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'student_teacher_ratio_quartile_state', 'character varying(15)', 'districts.student_teacher_ratio_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'swd_pct_quartile_state', 'character varying(15)', 'districts.swd_pct_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'ell_pct_quartile_state', 'character varying(15)', 'districts.ell_pct_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'math_proficiency_quartile_state', 'character varying(15)', 'districts.math_proficiency_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'read_proficiency_quartile_state', 'character varying(15)', 'districts.read_proficiency_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'expenditure_pp_quartile_state', 'character varying(15)', 'districts.expenditure_pp_quartile_state is character varying(15)');
SELECT col_type_is('public', 'districts', 'created_at', 'timestamp with time zone', 'districts.created_at is timestamp with time zone');
SELECT col_type_is('public', 'districts', 'updated_at', 'timestamp with time zone', 'districts.updated_at is timestamp with time zone');

-- district_data_history
SELECT has_table('public', 'district_data_history', 'district_data_history exists');
SELECT columns_are('public', 'district_data_history', ARRAY['leaid', 'year', 'source', 'enrollment', 'spec_ed_students', 'ell_students', 'teachers_fte', 'graduation_rate', 'math_proficiency', 'read_proficiency', 'expenditure_pp', 'chronic_absenteeism_rate', 'children_poverty_percent', 'created_at', 'updated_at'], 'district_data_history has exactly the specified columns');
SELECT col_type_is('public', 'district_data_history', 'leaid', 'character varying(7)', 'district_data_history.leaid is character varying(7)');
SELECT col_type_is('public', 'district_data_history', 'year', 'smallint', 'district_data_history.year is smallint');
SELECT col_type_is('public', 'district_data_history', 'source', 'character varying(32)', 'district_data_history.source is character varying(32)');
SELECT col_type_is('public', 'district_data_history', 'enrollment', 'integer', 'district_data_history.enrollment is integer');
SELECT col_type_is('public', 'district_data_history', 'spec_ed_students', 'integer', 'district_data_history.spec_ed_students is integer');
SELECT col_type_is('public', 'district_data_history', 'ell_students', 'integer', 'district_data_history.ell_students is integer');
SELECT col_type_is('public', 'district_data_history', 'teachers_fte', 'numeric(10,2)', 'district_data_history.teachers_fte is numeric(10,2)');
SELECT col_type_is('public', 'district_data_history', 'graduation_rate', 'numeric(5,2)', 'district_data_history.graduation_rate is numeric(5,2)');
SELECT col_type_is('public', 'district_data_history', 'math_proficiency', 'numeric(5,2)', 'district_data_history.math_proficiency is numeric(5,2)');
SELECT col_type_is('public', 'district_data_history', 'read_proficiency', 'numeric(5,2)', 'district_data_history.read_proficiency is numeric(5,2)');
SELECT col_type_is('public', 'district_data_history', 'expenditure_pp', 'numeric(12,2)', 'district_data_history.expenditure_pp is numeric(12,2)');
SELECT col_type_is('public', 'district_data_history', 'chronic_absenteeism_rate', 'numeric(5,2)', 'district_data_history.chronic_absenteeism_rate is numeric(5,2)');
SELECT col_type_is('public', 'district_data_history', 'children_poverty_percent', 'numeric(5,2)', 'district_data_history.children_poverty_percent is numeric(5,2)');
SELECT col_type_is('public', 'district_data_history', 'created_at', 'timestamp with time zone', 'district_data_history.created_at is timestamp with time zone');
SELECT col_type_is('public', 'district_data_history', 'updated_at', 'timestamp with time zone', 'district_data_history.updated_at is timestamp with time zone');

-- data_refresh_logs
SELECT has_table('public', 'data_refresh_logs', 'data_refresh_logs exists');
SELECT columns_are('public', 'data_refresh_logs', ARRAY['id', 'data_source', 'records_updated', 'records_failed', 'status', 'error_message', 'started_at', 'completed_at', 'details'], 'data_refresh_logs has exactly the specified columns');
SELECT col_type_is('public', 'data_refresh_logs', 'id', 'bigint', 'data_refresh_logs.id is bigint');
SELECT col_type_is('public', 'data_refresh_logs', 'data_source', 'character varying(64)', 'data_refresh_logs.data_source is character varying(64)');
SELECT col_type_is('public', 'data_refresh_logs', 'records_updated', 'integer', 'data_refresh_logs.records_updated is integer');
SELECT col_type_is('public', 'data_refresh_logs', 'records_failed', 'integer', 'data_refresh_logs.records_failed is integer');
SELECT col_type_is('public', 'data_refresh_logs', 'status', 'character varying(16)', 'data_refresh_logs.status is character varying(16)');
SELECT col_type_is('public', 'data_refresh_logs', 'error_message', 'text', 'data_refresh_logs.error_message is text');
SELECT col_type_is('public', 'data_refresh_logs', 'started_at', 'timestamp with time zone', 'data_refresh_logs.started_at is timestamp with time zone');
SELECT col_type_is('public', 'data_refresh_logs', 'completed_at', 'timestamp with time zone', 'data_refresh_logs.completed_at is timestamp with time zone');
SELECT col_type_is('public', 'data_refresh_logs', 'details', 'jsonb', 'data_refresh_logs.details is jsonb');

-- keys
SELECT col_is_pk('public', 'states', ARRAY['fips'], 'states PK is fips');
SELECT col_is_unique('public', 'states', ARRAY['abbrev'], 'states.abbrev is unique');
SELECT col_not_null('public', 'states', 'abbrev', 'states.abbrev is NOT NULL');
SELECT col_not_null('public', 'states', 'name', 'states.name is NOT NULL');
SELECT col_is_pk('public', 'districts', ARRAY['leaid'], 'districts PK is leaid');
SELECT fk_ok('public', 'districts', ARRAY['state_fips'], 'public', 'states', ARRAY['fips'], 'districts.state_fips references states');
SELECT col_is_pk('public', 'district_data_history', ARRAY['leaid', 'year', 'source'], 'history PK is (leaid, year, source)');
SELECT col_is_pk('public', 'data_refresh_logs', ARRAY['id'], 'data_refresh_logs PK is id');
SELECT has_index('public', 'districts', 'districts_state_fips_idx', 'districts are indexed by state');
SELECT has_index('public', 'district_data_history', 'district_data_history_source_year_idx', 'history is indexed by (source, year)');

-- district_peers
SELECT has_table('public', 'district_peers', 'district_peers exists');
SELECT columns_are('public', 'district_peers', ARRAY['leaid', 'peer_leaid', 'peer_rank', 'distance'],
    'district_peers has exactly the specified columns');
SELECT col_type_is('public', 'district_peers', 'leaid', 'character varying(7)', 'district_peers.leaid is character varying(7)');
SELECT col_type_is('public', 'district_peers', 'peer_leaid', 'character varying(7)', 'district_peers.peer_leaid is character varying(7)');
SELECT col_type_is('public', 'district_peers', 'peer_rank', 'smallint', 'district_peers.peer_rank is smallint');
SELECT col_type_is('public', 'district_peers', 'distance', 'double precision', 'district_peers.distance is double precision');
SELECT col_is_pk('public', 'district_peers', ARRAY['leaid', 'peer_rank'], 'district_peers PK is (leaid, peer_rank)');
SELECT col_is_unique('public', 'district_peers', ARRAY['leaid', 'peer_leaid'], 'a peer appears once per district');
SELECT fk_ok('public', 'district_peers', ARRAY['leaid'], 'public', 'districts', ARRAY['leaid'], 'district_peers.leaid references districts');
SELECT fk_ok('public', 'district_peers', ARRAY['peer_leaid'], 'public', 'districts', ARRAY['leaid'], 'district_peers.peer_leaid references districts');
SELECT is((SELECT array_agg(confdeltype::text ORDER BY conname) FROM pg_constraint
            WHERE conrelid = 'public.district_peers'::regclass AND contype = 'f'),
          ARRAY['c', 'c'], 'both foreign keys cascade on delete');
SELECT has_index('public', 'district_peers', 'district_peers_peer_leaid_idx', 'district_peers are indexed by peer (for the cascade)');

-- every nullable benchmark column really is nullable
SELECT is(
    (SELECT count(*)::int FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'districts' AND is_nullable = 'YES'
        AND (column_name IN ('swd_pct', 'ell_pct') OR column_name ~ '_(trend_3yr|vs_state|vs_national|quartile_state|vs_peers)$')),
    42, 'the 34 benchmark columns and the 8 peer differences exist and are nullable');

-- check constraints behave
SELECT throws_ok($$INSERT INTO district_data_history (leaid, year, source) VALUES ('0100001', 2020, 'ccd_dir')$$,
    '23514', NULL, 'history.source must be one of the six sources');
SELECT lives_ok($$INSERT INTO district_data_history (leaid, year, source, enrollment) VALUES ('0100001', 2020, 'saipe', -1)$$,
    'negative codes may be stored by other tools (functions ignore them)');
SELECT throws_ok($$INSERT INTO districts (leaid, state_fips, swd_pct_quartile_state) VALUES ('0100001', '01', 'top')$$,
    '23514', NULL, 'a quartile label outside the four is refused');
SELECT lives_ok($$INSERT INTO districts (leaid, state_fips, swd_pct_quartile_state) VALUES ('0100002', '01', 'well_above')$$,
    'a valid quartile label is accepted');
SELECT throws_ok($$INSERT INTO districts (leaid, state_fips) VALUES ('0100003', '99')$$,
    '23503', NULL, 'a district in an unknown state is refused');
SELECT throws_ok($$INSERT INTO districts (leaid) VALUES ('12AB')$$, '23514', NULL, 'leaid must be 7 digits');
SELECT throws_ok($$INSERT INTO data_refresh_logs (data_source, status) VALUES ('x', 'done')$$,
    '23514', NULL, 'refresh log status is running, success, failed or skipped');
SELECT lives_ok($$INSERT INTO data_refresh_logs (data_source, status) VALUES ('x', 'running')$$,
    'a run is logged as running when it starts');

-- seeded rows
SELECT results_eq($$SELECT abbrev, name FROM states WHERE fips = '00'$$,
    $$VALUES ('US'::varchar, 'United States'::text)$$, 'the national row is seeded');
SELECT is((SELECT count(*)::int FROM states WHERE fips BETWEEN '01' AND '56'), 51, '50 states and DC are seeded');
SELECT set_has($$SELECT fips::text FROM states$$, $$VALUES ('60'), ('66'), ('69'), ('72'), ('78'), ('59')$$,
    'territories and the BIE are seeded under the API''s FIPS codes');
SELECT is((SELECT abbrev::text FROM states WHERE fips = '06'), 'CA', 'FIPS 06 is CA');
SELECT is((SELECT abbrev::text FROM states WHERE fips = '48'), 'TX', 'FIPS 48 is TX');
SELECT is_empty($$SELECT 1 FROM states WHERE total_districts IS NOT NULL OR avg_swd_pct IS NOT NULL$$,
    'no averages before the first compute');

-- roles created by migrate
SELECT has_role('district_benchmarks_operator', 'operator role exists');
SELECT has_role('district_benchmarks_reader', 'reader role exists');
SELECT table_privs_are('public', 'districts', 'district_benchmarks_reader', ARRAY['SELECT'], 'reader may only read districts');
SELECT ok(EXISTS (SELECT 1 FROM schema_migrations WHERE name = '0001_schema.sql'), 'migrations are recorded');

SELECT * FROM finish();
ROLLBACK;
