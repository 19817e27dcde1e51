/*
 * compute_peer_groups() RETURNS integer — the number of rows it changed, in district_peers and districts together
 *
 * Owns district_peers, districts.{m}_vs_peers for the eight metrics m (absenteeism, graduation,
 * student_teacher_ratio, swd_pct, ell_pct, math_proficiency, read_proficiency, expenditure_pp), updated_at of the
 * districts rows it changes, and the record public._benchmarks_peer_inputs; unchanged rows are not written (a
 * rerun on unchanged data writes nothing). Reads the stored current values and swd_pct / ell_pct: run it after
 * the other steps (compute_all_benchmarks() does, after the deltas, and writes the differences in its one
 * UPDATE per district).
 *   - The rules, and how the 40 nearest are found: see _benchmarks_peer_values.sql, here with the stored
 *     swd_pct / ell_pct (handed over in pg_temp.benchmarks_district_values, dropped at commit).
 *   - Out of range: see compute_all_benchmarks.sql.
 */
CREATE OR REPLACE FUNCTION public.compute_peer_groups()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $function$
DECLARE
    v_peer_rows     integer;
    v_district_rows integer;
BEGIN
    LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;  -- the run lock: see compute_all_benchmarks.sql

    -- the percentages _benchmarks_peer_values() reads: the stored ones
    IF to_regclass('pg_temp.benchmarks_district_values') IS NOT NULL THEN
        DROP TABLE pg_temp.benchmarks_district_values;
    END IF;
    CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
        SELECT d.leaid, d.swd_pct, d.ell_pct FROM public.districts d;

    v_peer_rows := public._benchmarks_peer_values();

    WITH changed AS (
        UPDATE public.districts d
           SET absenteeism_vs_peers           = x.absenteeism_vs_peers,
               graduation_vs_peers            = x.graduation_vs_peers,
               student_teacher_ratio_vs_peers = x.student_teacher_ratio_vs_peers,
               swd_pct_vs_peers               = x.swd_pct_vs_peers,
               ell_pct_vs_peers               = x.ell_pct_vs_peers,
               math_proficiency_vs_peers      = x.math_proficiency_vs_peers,
               read_proficiency_vs_peers      = x.read_proficiency_vs_peers,
               expenditure_pp_vs_peers        = x.expenditure_pp_vs_peers,
               updated_at                     = now()
          FROM pg_temp.benchmarks_peer_differences x
         WHERE d.leaid = x.leaid
        RETURNING 1
    )
    SELECT count(*) INTO v_district_rows FROM changed;

    DROP TABLE pg_temp.benchmarks_peer_differences, pg_temp.benchmarks_district_values;
    RETURN v_peer_rows + v_district_rows;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_peer_groups() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_peer_groups() TO district_benchmarks_operator;
