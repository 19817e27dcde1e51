/*
 * benchmarks_delta_values() RETURNS TABLE (leaid, the 16 {m}_vs_state / {m}_vs_national, the 8
 *                                          {m}_quartile_state, out_of_range, changed)
 *
 * Owns: the rules of compute_deltas_quartiles() — internal, not callable by PUBLIC or the operator role. It
 * writes nothing: it returns, for every district, the values its delta and tier columns must hold, so that
 * compute_deltas_quartiles() (its own UPDATE) and compute_all_benchmarks() (one UPDATE per district for
 * trends, deltas and tiers) share one implementation.
 *
 * Input: the stored states averages and district values, except swd_pct and ell_pct, which come from the
 * caller's temporary table pg_temp.benchmarks_district_values (leaid, swd_pct, ell_pct, ...):
 * compute_deltas_quartiles() fills it with the stored percentages, compute_all_benchmarks() with the ones
 * benchmarks_trend_values() just computed (they are written in the same UPDATE).
 *
 * Contract (SPEC §3, §4):
 *   - The district value of each m (negative = NULL): absenteeism = chronic_absenteeism_rate,
 *     graduation = graduation_rate_total, student_teacher_ratio = student_teacher_ratio, swd_pct = swd_pct,
 *     ell_pct = ell_pct, math_proficiency = math_proficiency_pct, read_proficiency = read_proficiency_pct,
 *     expenditure_pp = expenditure_per_pupil.
 *   - {m}_vs_state = value − the stored average of the district's state row, {m}_vs_national = value − the
 *     stored average of the '00' row (positive = above). NULL when either side is NULL. Districts without
 *     a state (state_fips NULL) or filed under '00' have no state: NULL vs_state and tiers.
 *   - Tier within the state, among the n districts of the state whose value is not NULL: percentile rank
 *     PR = (number smaller + ½ × number equal) ÷ n, the district itself counted among the equal ones.
 *     PR ≥ 0.75 well_above, ≥ 0.50 above, ≥ 0.25 below, else well_below; NULL when n < 4. Computed with
 *     integers only: with lt = number smaller and le = number smaller or equal, PR = (lt + le) ÷ 2n, so
 *     PR ≥ 0.75 ⇔ 2(lt + le) ≥ 3n, PR ≥ 0.5 ⇔ lt + le ≥ n, PR ≥ 0.25 ⇔ 2(lt + le) ≥ n. Equal values get
 *     the same tier and row order cannot matter (rank() and a RANGE frame treat peers alike).
 *   - A delta that does not fit numeric(8,2) is returned as NULL and counted in the row's out_of_range.
 *   - changed = the returned values differ from the stored ones (IS DISTINCT FROM).
 *
 * Cost: one pass over districts with one sort per metric for the window functions.
 */
CREATE OR REPLACE FUNCTION benchmarks_delta_values()
RETURNS TABLE (leaid varchar(7),
               absenteeism_vs_state numeric, absenteeism_vs_national numeric,
               graduation_vs_state numeric, graduation_vs_national numeric,
               student_teacher_ratio_vs_state numeric, student_teacher_ratio_vs_national numeric,
               swd_pct_vs_state numeric, swd_pct_vs_national numeric,
               ell_pct_vs_state numeric, ell_pct_vs_national numeric,
               math_proficiency_vs_state numeric, math_proficiency_vs_national numeric,
               read_proficiency_vs_state numeric, read_proficiency_vs_national numeric,
               expenditure_pp_vs_state numeric, expenditure_pp_vs_national numeric,
               absenteeism_quartile_state text, graduation_quartile_state text,
               student_teacher_ratio_quartile_state text, swd_pct_quartile_state text,
               ell_pct_quartile_state text, math_proficiency_quartile_state text,
               read_proficiency_quartile_state text, expenditure_pp_quartile_state text,
               out_of_range integer, changed boolean)
LANGUAGE plpgsql
VOLATILE
SET search_path = public, pg_temp
SET jit = off
SET work_mem = '64MB'
SET max_parallel_workers_per_gather = 0
AS $function$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(benchmarks_lock_key());

    RETURN QUERY
    WITH vals AS (
        SELECT d.leaid,
               CASE WHEN d.state_fips <> '00' THEN d.state_fips END                                AS state_fips,
               CASE WHEN d.chronic_absenteeism_rate >= 0 THEN d.chronic_absenteeism_rate END AS absenteeism,
               CASE WHEN d.graduation_rate_total >= 0    THEN d.graduation_rate_total END    AS graduation,
               CASE WHEN d.student_teacher_ratio >= 0    THEN d.student_teacher_ratio END    AS ratio,
               CASE WHEN p.swd_pct >= 0                  THEN p.swd_pct END                  AS swd,
               CASE WHEN p.ell_pct >= 0                  THEN p.ell_pct END                  AS ell,
               CASE WHEN d.math_proficiency_pct >= 0     THEN d.math_proficiency_pct END     AS math,
               CASE WHEN d.read_proficiency_pct >= 0     THEN d.read_proficiency_pct END     AS read,
               CASE WHEN d.expenditure_per_pupil >= 0    THEN d.expenditure_per_pupil END    AS expenditure
          FROM districts d
          JOIN pg_temp.benchmarks_district_values p ON p.leaid = d.leaid
    ),
    ranked AS (
        -- per metric and state: n = values present, lt = values smaller, le = values smaller or equal
        -- (NULLs sort last, so they never count as smaller or equal to a value)
        SELECT v.*,
               count(v.absenteeism) OVER s AS absenteeism_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.absenteeism) - 1 AS absenteeism_lt,
               count(v.absenteeism) OVER (PARTITION BY v.state_fips ORDER BY v.absenteeism)     AS absenteeism_le,
               count(v.graduation)  OVER s AS graduation_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.graduation) - 1  AS graduation_lt,
               count(v.graduation)  OVER (PARTITION BY v.state_fips ORDER BY v.graduation)      AS graduation_le,
               count(v.ratio)       OVER s AS ratio_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.ratio) - 1       AS ratio_lt,
               count(v.ratio)       OVER (PARTITION BY v.state_fips ORDER BY v.ratio)           AS ratio_le,
               count(v.swd)         OVER s AS swd_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.swd) - 1         AS swd_lt,
               count(v.swd)         OVER (PARTITION BY v.state_fips ORDER BY v.swd)             AS swd_le,
               count(v.ell)         OVER s AS ell_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.ell) - 1         AS ell_lt,
               count(v.ell)         OVER (PARTITION BY v.state_fips ORDER BY v.ell)             AS ell_le,
               count(v.math)        OVER s AS math_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.math) - 1        AS math_lt,
               count(v.math)        OVER (PARTITION BY v.state_fips ORDER BY v.math)            AS math_le,
               count(v.read)        OVER s AS read_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.read) - 1        AS read_lt,
               count(v.read)        OVER (PARTITION BY v.state_fips ORDER BY v.read)            AS read_le,
               count(v.expenditure) OVER s AS expenditure_n,
               rank()               OVER (PARTITION BY v.state_fips ORDER BY v.expenditure) - 1 AS expenditure_lt,
               count(v.expenditure) OVER (PARTITION BY v.state_fips ORDER BY v.expenditure)     AS expenditure_le
          FROM vals v
        WINDOW s AS (PARTITION BY v.state_fips)
    ),
    computed AS MATERIALIZED (
        -- Deltas of the numeric(5,2) metrics always fit numeric(8,2): the value is in [0, 999.99] and the
        -- average in [-999.99, 999.99]. Only the ratio (numeric(8,2)) and expenditure (numeric(12,2))
        -- deltas can overflow; those are checked (|x| < 10^6) and their unchecked value kept for counting.
        -- Materialised: every expression runs once per district.
        SELECT r.leaid,
               r.absenteeism - st.avg_chronic_absenteeism_rate AS absenteeism_vs_state,
               r.absenteeism - us.avg_chronic_absenteeism_rate AS absenteeism_vs_national,
               r.graduation  - st.avg_graduation_rate          AS graduation_vs_state,
               r.graduation  - us.avg_graduation_rate          AS graduation_vs_national,
               r.ratio - st.avg_student_teacher_ratio AS ratio_vs_state_unchecked,
               CASE WHEN abs(r.ratio - st.avg_student_teacher_ratio) < 1e6
                    THEN r.ratio - st.avg_student_teacher_ratio END AS ratio_vs_state,
               r.ratio - us.avg_student_teacher_ratio AS ratio_vs_national_unchecked,
               CASE WHEN abs(r.ratio - us.avg_student_teacher_ratio) < 1e6
                    THEN r.ratio - us.avg_student_teacher_ratio END AS ratio_vs_national,
               r.swd         - st.avg_swd_pct                  AS swd_vs_state,
               r.swd         - us.avg_swd_pct                  AS swd_vs_national,
               r.ell         - st.avg_ell_pct                  AS ell_vs_state,
               r.ell         - us.avg_ell_pct                  AS ell_vs_national,
               r.math        - st.avg_math_proficiency         AS math_vs_state,
               r.math        - us.avg_math_proficiency         AS math_vs_national,
               r.read        - st.avg_read_proficiency         AS read_vs_state,
               r.read        - us.avg_read_proficiency         AS read_vs_national,
               r.expenditure - st.avg_expenditure_per_pupil AS expenditure_vs_state_unchecked,
               CASE WHEN abs(r.expenditure - st.avg_expenditure_per_pupil) < 1e6
                    THEN r.expenditure - st.avg_expenditure_per_pupil END AS expenditure_vs_state,
               r.expenditure - us.avg_expenditure_per_pupil AS expenditure_vs_national_unchecked,
               CASE WHEN abs(r.expenditure - us.avg_expenditure_per_pupil) < 1e6
                    THEN r.expenditure - us.avg_expenditure_per_pupil END AS expenditure_vs_national,
               CASE WHEN r.absenteeism IS NULL OR r.state_fips IS NULL OR r.absenteeism_n < 4 THEN NULL
                    WHEN 2 * (r.absenteeism_lt + r.absenteeism_le) >= 3 * r.absenteeism_n THEN 'well_above'
                    WHEN r.absenteeism_lt + r.absenteeism_le >= r.absenteeism_n THEN 'above'
                    WHEN 2 * (r.absenteeism_lt + r.absenteeism_le) >= r.absenteeism_n THEN 'below'
                    ELSE 'well_below' END AS absenteeism_quartile_state,
               CASE WHEN r.graduation IS NULL OR r.state_fips IS NULL OR r.graduation_n < 4 THEN NULL
                    WHEN 2 * (r.graduation_lt + r.graduation_le) >= 3 * r.graduation_n THEN 'well_above'
                    WHEN r.graduation_lt + r.graduation_le >= r.graduation_n THEN 'above'
                    WHEN 2 * (r.graduation_lt + r.graduation_le) >= r.graduation_n THEN 'below'
                    ELSE 'well_below' END AS graduation_quartile_state,
               CASE WHEN r.ratio IS NULL OR r.state_fips IS NULL OR r.ratio_n < 4 THEN NULL
                    WHEN 2 * (r.ratio_lt + r.ratio_le) >= 3 * r.ratio_n THEN 'well_above'
                    WHEN r.ratio_lt + r.ratio_le >= r.ratio_n THEN 'above'
                    WHEN 2 * (r.ratio_lt + r.ratio_le) >= r.ratio_n THEN 'below'
                    ELSE 'well_below' END AS student_teacher_ratio_quartile_state,
               CASE WHEN r.swd IS NULL OR r.state_fips IS NULL OR r.swd_n < 4 THEN NULL
                    WHEN 2 * (r.swd_lt + r.swd_le) >= 3 * r.swd_n THEN 'well_above'
                    WHEN r.swd_lt + r.swd_le >= r.swd_n THEN 'above'
                    WHEN 2 * (r.swd_lt + r.swd_le) >= r.swd_n THEN 'below'
                    ELSE 'well_below' END AS swd_pct_quartile_state,
               CASE WHEN r.ell IS NULL OR r.state_fips IS NULL OR r.ell_n < 4 THEN NULL
                    WHEN 2 * (r.ell_lt + r.ell_le) >= 3 * r.ell_n THEN 'well_above'
                    WHEN r.ell_lt + r.ell_le >= r.ell_n THEN 'above'
                    WHEN 2 * (r.ell_lt + r.ell_le) >= r.ell_n THEN 'below'
                    ELSE 'well_below' END AS ell_pct_quartile_state,
               CASE WHEN r.math IS NULL OR r.state_fips IS NULL OR r.math_n < 4 THEN NULL
                    WHEN 2 * (r.math_lt + r.math_le) >= 3 * r.math_n THEN 'well_above'
                    WHEN r.math_lt + r.math_le >= r.math_n THEN 'above'
                    WHEN 2 * (r.math_lt + r.math_le) >= r.math_n THEN 'below'
                    ELSE 'well_below' END AS math_proficiency_quartile_state,
               CASE WHEN r.read IS NULL OR r.state_fips IS NULL OR r.read_n < 4 THEN NULL
                    WHEN 2 * (r.read_lt + r.read_le) >= 3 * r.read_n THEN 'well_above'
                    WHEN r.read_lt + r.read_le >= r.read_n THEN 'above'
                    WHEN 2 * (r.read_lt + r.read_le) >= r.read_n THEN 'below'
                    ELSE 'well_below' END AS read_proficiency_quartile_state,
               CASE WHEN r.expenditure IS NULL OR r.state_fips IS NULL OR r.expenditure_n < 4 THEN NULL
                    WHEN 2 * (r.expenditure_lt + r.expenditure_le) >= 3 * r.expenditure_n THEN 'well_above'
                    WHEN r.expenditure_lt + r.expenditure_le >= r.expenditure_n THEN 'above'
                    WHEN 2 * (r.expenditure_lt + r.expenditure_le) >= r.expenditure_n THEN 'below'
                    ELSE 'well_below' END AS expenditure_pp_quartile_state
          FROM ranked r
          LEFT JOIN states st ON st.fips = r.state_fips
          LEFT JOIN states us ON us.fips = '00'
    )

    SELECT f.leaid,
           f.absenteeism_vs_state, f.absenteeism_vs_national, f.graduation_vs_state, f.graduation_vs_national,
           f.ratio_vs_state, f.ratio_vs_national, f.swd_vs_state, f.swd_vs_national, f.ell_vs_state,
           f.ell_vs_national, f.math_vs_state, f.math_vs_national, f.read_vs_state, f.read_vs_national,
           f.expenditure_vs_state, f.expenditure_vs_national,
           f.absenteeism_quartile_state, f.graduation_quartile_state, f.student_teacher_ratio_quartile_state,
           f.swd_pct_quartile_state, f.ell_pct_quartile_state, f.math_proficiency_quartile_state,
           f.read_proficiency_quartile_state, f.expenditure_pp_quartile_state,
           num_nonnulls(f.ratio_vs_state_unchecked, f.ratio_vs_national_unchecked,
                        f.expenditure_vs_state_unchecked, f.expenditure_vs_national_unchecked)
           - num_nonnulls(f.ratio_vs_state, f.ratio_vs_national, f.expenditure_vs_state, f.expenditure_vs_national),
           (o.absenteeism_vs_state, o.absenteeism_vs_national, o.graduation_vs_state, o.graduation_vs_national,
            o.student_teacher_ratio_vs_state, o.student_teacher_ratio_vs_national, o.swd_pct_vs_state,
            o.swd_pct_vs_national, o.ell_pct_vs_state, o.ell_pct_vs_national, o.math_proficiency_vs_state,
            o.math_proficiency_vs_national, o.read_proficiency_vs_state, o.read_proficiency_vs_national,
            o.expenditure_pp_vs_state, o.expenditure_pp_vs_national,
            o.absenteeism_quartile_state, o.graduation_quartile_state, o.student_teacher_ratio_quartile_state,
            o.swd_pct_quartile_state, o.ell_pct_quartile_state, o.math_proficiency_quartile_state,
            o.read_proficiency_quartile_state, o.expenditure_pp_quartile_state)
           IS DISTINCT FROM
               (f.absenteeism_vs_state, f.absenteeism_vs_national, f.graduation_vs_state,
                f.graduation_vs_national, f.ratio_vs_state, f.ratio_vs_national, f.swd_vs_state,
                f.swd_vs_national, f.ell_vs_state, f.ell_vs_national, f.math_vs_state,
                f.math_vs_national, f.read_vs_state, f.read_vs_national,
                f.expenditure_vs_state, f.expenditure_vs_national,
                f.absenteeism_quartile_state::varchar, f.graduation_quartile_state::varchar,
                f.student_teacher_ratio_quartile_state::varchar, f.swd_pct_quartile_state::varchar,
                f.ell_pct_quartile_state::varchar, f.math_proficiency_quartile_state::varchar,
                f.read_proficiency_quartile_state::varchar, f.expenditure_pp_quartile_state::varchar)
      FROM computed f
      JOIN districts o ON o.leaid = f.leaid;  -- the stored values, joined after the sorts (narrower rows)
END
$function$;

REVOKE ALL ON FUNCTION benchmarks_delta_values() FROM PUBLIC;
