/*
 * compute_deltas_quartiles() RETURNS integer — the number of districts rows changed
 *
 * Owns districts.{m}_vs_state, {m}_vs_national and {m}_quartile_state for the eight metrics m (absenteeism,
 * graduation, student_teacher_ratio, swd_pct, ell_pct, math_proficiency, read_proficiency, expenditure_pp) of
 * every district, and updated_at of the rows it changes; unchanged rows are not written. Run
 * compute_state_averages() and compute_district_trends() first (compute_all_benchmarks() does).
 *   - The values and their rules: see _benchmarks_delta_values.sql, here compared with the stored swd_pct /
 *     ell_pct (handed over in pg_temp.benchmarks_district_values, dropped at commit).
 *   - Out of range: see compute_all_benchmarks.sql.
 */
CREATE OR REPLACE FUNCTION public.compute_deltas_quartiles()
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

    -- the percentages _benchmarks_delta_values() compares: the stored ones
    IF to_regclass('pg_temp.benchmarks_district_values') IS NOT NULL THEN
        DROP TABLE pg_temp.benchmarks_district_values;
    END IF;
    CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
        SELECT d.leaid, d.swd_pct, d.ell_pct FROM public.districts d;

    WITH x AS MATERIALIZED (
        SELECT * FROM public._benchmarks_delta_values()
    ),
    changed AS (
        UPDATE public.districts d
           SET absenteeism_vs_state                 = x.absenteeism_vs_state,
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
               updated_at                           = now()
          FROM x
         WHERE d.leaid = x.leaid AND x.changed
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM changed), (SELECT coalesce(sum(x.out_of_range), 0) FROM x)
      INTO v_rows_changed, v_out_of_range;

    DROP TABLE pg_temp.benchmarks_district_values;
    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_rows_changed;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_deltas_quartiles() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_deltas_quartiles() TO district_benchmarks_operator;
