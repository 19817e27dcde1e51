/*
 * compute_deltas_quartiles() RETURNS integer
 *
 * Owns: districts.{m}_vs_state, {m}_vs_national and {m}_quartile_state for the eight metrics m —
 * absenteeism, graduation, student_teacher_ratio, swd_pct, ell_pct, math_proficiency, read_proficiency,
 * expenditure_pp — for every district, and districts.updated_at of the rows it changes.
 *
 * Contract (SPEC §3, §4):
 *   - The district value of each m (negative = NULL): absenteeism = chronic_absenteeism_rate,
 *     graduation = graduation_rate_total, student_teacher_ratio = student_teacher_ratio, swd_pct = swd_pct,
 *     ell_pct = ell_pct, math_proficiency = math_proficiency_pct, read_proficiency = read_proficiency_pct,
 *     expenditure_pp = expenditure_per_pupil. Run compute_state_averages() and compute_district_trends()
 *     first (compute_all_benchmarks() does).
 *   - {m}_vs_state = value − the stored average of the district's state row, {m}_vs_national = value − the
 *     stored average of the '00' row (positive = above). NULL when either side is NULL. Districts without
 *     a state (state_fips NULL) or filed under '00' have no state: NULL vs_state and tiers.
 *   - Tier within the state, among the n districts of the state whose value is not NULL: percentile rank
 *     PR = (number smaller + ½ × number equal) ÷ n, the district itself counted among the equal ones.
 *     PR ≥ 0.75 well_above, ≥ 0.50 above, ≥ 0.25 below, else well_below; NULL when n < 4. Computed with
 *     integers only: with lt = number smaller and le = number smaller or equal, PR = (lt + le) ÷ 2n, so
 *     PR ≥ 0.75 ⇔ 2(lt + le) ≥ 3n, PR ≥ 0.5 ⇔ lt + le ≥ n, PR ≥ 0.25 ⇔ 2(lt + le) ≥ n. Equal values get
 *     the same tier and row order cannot matter (both counts are binary searches in the sorted values).
 *   - A delta that does not fit numeric(8,2) becomes NULL and is counted in the transaction-local setting
 *     district_benchmarks.out_of_range.
 *   - Returns the number of districts rows changed; unchanged rows are not written.
 *
 * The values come from _benchmarks_delta_values(), which holds the rules above (compute_all_benchmarks()
 * uses the same function and writes them together with the trends). This function hands it the stored
 * swd_pct / ell_pct in the temporary table pg_temp.benchmarks_district_values (dropped at commit).
 *
 * Cost: that function's pass over districts with one sort per metric, and one UPDATE of the changed rows.
 */
CREATE OR REPLACE FUNCTION compute_deltas_quartiles()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $function$
DECLARE
    v_rows_changed  integer;
    v_out_of_range  integer;
BEGIN
    PERFORM pg_advisory_xact_lock(_benchmarks_lock_key());

    -- the percentages _benchmarks_delta_values() compares: the stored ones
    IF to_regclass('pg_temp.benchmarks_district_values') IS NOT NULL THEN
        DROP TABLE pg_temp.benchmarks_district_values;
    END IF;
    CREATE TEMPORARY TABLE benchmarks_district_values ON COMMIT DROP AS
        SELECT d.leaid, d.swd_pct, d.ell_pct FROM districts d;

    WITH x AS MATERIALIZED (
        SELECT * FROM _benchmarks_delta_values()
    ),
    changed AS (
        UPDATE districts d
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

REVOKE ALL ON FUNCTION compute_deltas_quartiles() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_deltas_quartiles() TO district_benchmarks_operator;
