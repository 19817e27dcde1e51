-- Every column of the tables and the view people read has a COMMENT (BI tools and psql's \d+ show them).
BEGIN;
SELECT plan(4);

SELECT is((SELECT array_agg(c.relname || '.' || a.attname ORDER BY c.relname, a.attnum)
             FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relnamespace = 'public'::regnamespace
              AND c.relname IN ('states', 'districts', 'district_data_history', 'district_peers', 'data_refresh_logs',
                                'ingest_slices', 'benchmark_metrics', 'district_benchmarks')
              AND coalesce(col_description(c.oid, a.attnum), '') = ''),
          NULL, 'every column of the tables and of the view has a comment (listed here when one has none)');
SELECT is((SELECT count(*)::int FROM pg_class c
            WHERE c.relnamespace = 'public'::regnamespace
              AND c.relname IN ('states', 'districts', 'district_data_history', 'district_peers', 'data_refresh_logs',
                                'ingest_slices', 'benchmark_metrics', 'district_benchmarks')
              AND coalesce(obj_description(c.oid, 'pg_class'), '') <> ''), 8,
          'and each of them has a comment of its own');
SELECT is((SELECT count(*)::int FROM pg_attribute a
            WHERE a.attrelid = 'public.district_benchmarks'::regclass AND a.attnum > 0), 22,
          'the view''s 22 columns are the ones counted');
SELECT matches(col_description('public.district_benchmarks'::regclass,
                               (SELECT attnum FROM pg_attribute WHERE attrelid = 'public.district_benchmarks'::regclass
                                   AND attname = 'tier_rank')),
               '1 = well_below.*4 = well_above', 'tier_rank''s comment says how the numbers map to tiers');

SELECT * FROM finish();
ROLLBACK;
