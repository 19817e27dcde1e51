/*
 * compute_district_trends() RETURNS integer
 *
 * Owns: districts.swd_pct, ell_pct and the eight *_trend_3yr columns — swd, ell, absenteeism, graduation,
 * student_teacher_ratio, math_proficiency, read_proficiency, expenditure_pp — for every district, and
 * districts.updated_at of the rows it changes.
 *
 * Contract (SPEC §2, §3, §4):
 *   - swd_pct = 100 × spec_ed_students ÷ enrollment and ell_pct = 100 × ell_students ÷ enrollment, from
 *     the district's current values, NULL unless enrollment > 0 and the count is present (not negative).
 *   - Per trend metric, from district_data_history of its source, with negative values as NULL:
 *       Y = the latest year in which any row has a value of the metric,
 *       B = max(earliest such year, Y − 3); no trend when B = Y.
 *     Absenteeism is biennial: B = the latest year before Y in which any row has a rate.
 *     The ratio's value in a row is enrollment ÷ teachers_fte, and a year counts for it when some row has
 *     enrollment and teachers_fte > 0.
 *   - A district's trend compares its own value at Y with its own value at B; NULL when either is missing.
 *     Point change = v_Y − v_B (absenteeism, graduation, math, read, ratio); % change =
 *     100 × (v_Y − v_B) ÷ v_B, NULL when v_B = 0 (swd and ell counts, expenditure).
 *   - Exact numeric arithmetic, one round(x, 2) at the end; a value that does not fit its column becomes
 *     NULL and is counted in the transaction-local setting district_benchmarks.out_of_range.
 *   - Returns the number of districts rows changed; unchanged rows are not written.
 *
 * The values come from _benchmarks_trend_values(), which holds the rules above (compute_all_benchmarks()
 * uses the same function and writes them together with the deltas and tiers).
 *
 * Cost: that function's pass over the history slices at Y and B, and one UPDATE of the changed rows.
 */
CREATE OR REPLACE FUNCTION compute_district_trends()
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

    WITH t AS MATERIALIZED (
        SELECT * FROM _benchmarks_trend_values()
    ),
    changed AS (
        UPDATE districts d
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

    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_rows_changed;
END
$function$;

REVOKE ALL ON FUNCTION compute_district_trends() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION compute_district_trends() TO district_benchmarks_operator;
