/*
 * _benchmarks_store_trend_years() RETURNS integer — the number of benchmark_metrics rows it changed
 * Internal: no EXECUTE for PUBLIC or the operator role.
 *
 * Stores the years the trends compare, which _benchmarks_trend_values() leaves in the transaction-local setting
 * district_benchmarks.trend_years ({metric: [B, Y]}), in benchmark_metrics.trend_base_year / trend_end_year. A row
 * is rewritten only when its years change. Called by compute_district_trends() and compute_all_benchmarks() after
 * the helper, as their owner.
 */
CREATE OR REPLACE FUNCTION public._benchmarks_store_trend_years()
RETURNS integer
LANGUAGE sql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $function$
    WITH changed AS (
        UPDATE public.benchmark_metrics bm
           SET trend_base_year = (y.years ->> 0)::smallint, trend_end_year = (y.years ->> 1)::smallint,
               updated_at = now()
          FROM jsonb_each(current_setting('district_benchmarks.trend_years')::jsonb) y(metric, years)
         WHERE bm.metric = y.metric
           AND (bm.trend_base_year, bm.trend_end_year)
               IS DISTINCT FROM ((y.years ->> 0)::smallint, (y.years ->> 1)::smallint)
        RETURNING 1
    )
    SELECT count(*)::integer FROM changed;
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_store_trend_years() FROM PUBLIC;
