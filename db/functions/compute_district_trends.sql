/*
 * compute_district_trends() RETURNS integer — the number of districts rows changed
 *
 * Owns districts.swd_pct, ell_pct and the eight *_trend_3yr columns (swd, ell, absenteeism, graduation,
 * student_teacher_ratio, math_proficiency, read_proficiency, expenditure_pp) of every district, and updated_at
 * of the rows it changes; unchanged rows are not written.
 *   - The values and their rules: see _benchmarks_trend_values.sql.
 *   - benchmark_metrics.trend_base_year / trend_end_year: the years the trends compare (rows whose years change).
 *   - Out of range: see compute_all_benchmarks.sql.
 */
CREATE OR REPLACE FUNCTION public.compute_district_trends()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $function$
DECLARE
    v_rows_changed  integer;
    v_out_of_range  integer;
BEGIN
    LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;  -- the run lock: see compute_all_benchmarks.sql

    WITH t AS MATERIALIZED (
        SELECT * FROM public._benchmarks_trend_values()
    ),
    changed AS (
        UPDATE public.districts d
           SET swd_pct                         = t.swd_pct,
               ell_pct                         = t.ell_pct,
               swd_trend_3yr                   = t.swd_trend_3yr,
               ell_trend_3yr                   = t.ell_trend_3yr,
               absenteeism_trend_3yr           = t.absenteeism_trend_3yr,
               graduation_trend_3yr            = t.graduation_trend_3yr,
               student_teacher_ratio_trend_3yr = t.student_teacher_ratio_trend_3yr,
               math_proficiency_trend_3yr      = t.math_proficiency_trend_3yr,
               read_proficiency_trend_3yr      = t.read_proficiency_trend_3yr,
               expenditure_pp_trend_3yr        = t.expenditure_pp_trend_3yr,
               updated_at                      = now()
          FROM t
         WHERE d.leaid = t.leaid AND t.changed
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM changed), (SELECT coalesce(sum(t.out_of_range), 0) FROM t)
      INTO v_rows_changed, v_out_of_range;

    -- the years the trends compare ([B, Y] per metric, left by the helper): rewritten only when they change
    PERFORM public._benchmarks_store_trend_years();

    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_rows_changed;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_district_trends() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_district_trends() TO district_benchmarks_operator;
