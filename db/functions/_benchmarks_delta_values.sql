/*
 * _benchmarks_delta_values() RETURNS TABLE (leaid, the 16 {m}_vs_state / {m}_vs_national, the 8
 *                                           {m}_quartile_state, out_of_range, changed)
 * Internal: no EXECUTE for PUBLIC or the operator role.
 *
 * Writes nothing. Returns, for every district, the values its delta and tier columns must hold: the one
 * implementation of the delta and tier rules, shared by compute_deltas_quartiles() and compute_all_benchmarks().
 * Reads the stored states averages and district values, except swd_pct / ell_pct, which come from the
 * caller's temporary table pg_temp.benchmarks_district_values (leaid, swd_pct, ell_pct, ...).
 *   - The district value of each m (negative = NULL): absenteeism = chronic_absenteeism_rate, graduation =
 *     graduation_rate_total, student_teacher_ratio, swd_pct, ell_pct, math_proficiency = math_proficiency_pct,
 *     read_proficiency = read_proficiency_pct, expenditure_pp = expenditure_per_pupil.
 *   - {m}_vs_state = value − the stored average of the district's state row, {m}_vs_national = value − that
 *     of the '00' row (positive = above); NULL when either side is NULL. A district without a state
 *     (state_fips NULL or '00') gets NULL vs_state and tiers.
 *   - Tier among the n districts of the state with a value: PR = (number smaller + ½ × number equal, itself
 *     included) ÷ n; PR ≥ 0.75 well_above, ≥ 0.50 above, ≥ 0.25 below, else well_below; NULL when n < 4.
 *     In integers: PR = (lt + le) ÷ 2n, lt / le = the number smaller / smaller or equal, so PR ≥ 0.75 ⇔
 *     2(lt + le) ≥ 3n, and so on. lt and le are binary searches (width_bucket) in the state's sorted values,
 *     so equal values share a tier whatever the row order. The values are searched as exact integer keys,
 *     value × 100: each has at most two decimals (numeric(p,2) columns, swd_pct / ell_pct rounded to 2; pgTAP
 *     checks the scales), so lt = le(key − 1).
 *   - A delta that does not fit numeric(8,2) is returned as NULL and counted in the row's out_of_range.
 *     changed = the values differ from the stored ones.
 */
-- the function's name before 1.1.4; dropped so an existing database loses it (idempotent, same transaction)
DROP FUNCTION IF EXISTS public.benchmarks_delta_values();

CREATE OR REPLACE FUNCTION public._benchmarks_delta_values()
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
ROWS 20000  -- about one row per US district: the planner then joins the result by hashing, not row by row
VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET max_parallel_workers_per_gather = 0
AS $function$
#variable_conflict use_column
BEGIN
    -- the run lock (see compute_all_benchmarks.sql), unless this backend holds it already: a helper runs inside
    -- a definer function that took it, and must not need the right to take it itself
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
                      AND l.relation = 'public._benchmarks_run_lock'::pg_catalog.regclass
                      AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
        LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;
    END IF;

    RETURN QUERY
    WITH vals AS MATERIALIZED (
        -- one row per district: its state (none for '00'), the eight values with negative = NULL, and their
        -- integer ranking keys (value × 100, exact: see the header)
        SELECT v.*,
               (v.absenteeism * 100)::bigint AS absenteeism_key, (v.graduation * 100)::bigint AS graduation_key,
               (v.ratio * 100)::bigint       AS ratio_key,       (v.swd * 100)::bigint        AS swd_key,
               (v.ell * 100)::bigint         AS ell_key,         (v.math * 100)::bigint       AS math_key,
               (v.read * 100)::bigint        AS read_key,        (v.expenditure * 100)::bigint AS expenditure_key
          FROM (
                SELECT d.leaid,
                       CASE WHEN d.state_fips <> '00' THEN d.state_fips END                          AS state_fips,
                       CASE WHEN d.chronic_absenteeism_rate >= 0 THEN d.chronic_absenteeism_rate END AS absenteeism,
                       CASE WHEN d.graduation_rate_total >= 0    THEN d.graduation_rate_total END    AS graduation,
                       CASE WHEN d.student_teacher_ratio >= 0    THEN d.student_teacher_ratio END    AS ratio,
                       CASE WHEN p.swd_pct >= 0                  THEN p.swd_pct END                  AS swd,
                       CASE WHEN p.ell_pct >= 0                  THEN p.ell_pct END                  AS ell,
                       CASE WHEN d.math_proficiency_pct >= 0     THEN d.math_proficiency_pct END     AS math,
                       CASE WHEN d.read_proficiency_pct >= 0     THEN d.read_proficiency_pct END     AS read,
                       CASE WHEN d.expenditure_per_pupil >= 0    THEN d.expenditure_per_pupil END    AS expenditure
                  FROM public.districts d
                  JOIN pg_temp.benchmarks_district_values p ON p.leaid = d.leaid
                OFFSET 0  -- each value cleaned once, though the keys read it again
               ) v
    ),
    sorted AS MATERIALIZED (
        -- per state and metric: the keys present, ascending (n = their number)
        SELECT v.state_fips,
               array_agg(v.absenteeism_key ORDER BY v.absenteeism_key) FILTER (WHERE v.absenteeism_key IS NOT NULL) AS absenteeism,
               array_agg(v.graduation_key  ORDER BY v.graduation_key)  FILTER (WHERE v.graduation_key IS NOT NULL)  AS graduation,
               array_agg(v.ratio_key       ORDER BY v.ratio_key)       FILTER (WHERE v.ratio_key IS NOT NULL)       AS ratio,
               array_agg(v.swd_key         ORDER BY v.swd_key)         FILTER (WHERE v.swd_key IS NOT NULL)         AS swd,
               array_agg(v.ell_key         ORDER BY v.ell_key)         FILTER (WHERE v.ell_key IS NOT NULL)         AS ell,
               array_agg(v.math_key        ORDER BY v.math_key)        FILTER (WHERE v.math_key IS NOT NULL)        AS math,
               array_agg(v.read_key        ORDER BY v.read_key)        FILTER (WHERE v.read_key IS NOT NULL)        AS read,
               array_agg(v.expenditure_key ORDER BY v.expenditure_key) FILTER (WHERE v.expenditure_key IS NOT NULL) AS expenditure
          FROM vals v
         WHERE v.state_fips IS NOT NULL
         GROUP BY v.state_fips
    ),
    ranked AS (
        -- per metric: the deltas, unchecked (NULL when either side is NULL; no state row for a district without
        -- a state); n = values present in the state, pos = lt + le (width_bucket(k, sorted) = number of keys
        -- <= k; NULL for a NULL value or a district without a state). OFFSET 0 keeps this a subquery of its
        -- own: each subtraction and binary search runs once per district, and the rows are not stored.
        SELECT v.leaid,
               v.absenteeism - st.avg_chronic_absenteeism_rate AS absenteeism_vs_state,
               v.absenteeism - us.avg_chronic_absenteeism_rate AS absenteeism_vs_national,
               v.graduation  - st.avg_graduation_rate          AS graduation_vs_state,
               v.graduation  - us.avg_graduation_rate          AS graduation_vs_national,
               v.ratio       - st.avg_student_teacher_ratio    AS ratio_vs_state,
               v.ratio       - us.avg_student_teacher_ratio    AS ratio_vs_national,
               v.swd         - st.avg_swd_pct                  AS swd_vs_state,
               v.swd         - us.avg_swd_pct                  AS swd_vs_national,
               v.ell         - st.avg_ell_pct                  AS ell_vs_state,
               v.ell         - us.avg_ell_pct                  AS ell_vs_national,
               v.math        - st.avg_math_proficiency         AS math_vs_state,
               v.math        - us.avg_math_proficiency         AS math_vs_national,
               v.read        - st.avg_read_proficiency         AS read_vs_state,
               v.read        - us.avg_read_proficiency         AS read_vs_national,
               v.expenditure - st.avg_expenditure_per_pupil    AS expenditure_vs_state,
               v.expenditure - us.avg_expenditure_per_pupil    AS expenditure_vs_national,
               cardinality(s.absenteeism) AS absenteeism_n,
               width_bucket(v.absenteeism_key, s.absenteeism) + width_bucket(v.absenteeism_key - 1, s.absenteeism) AS absenteeism_pos,
               cardinality(s.graduation) AS graduation_n,
               width_bucket(v.graduation_key, s.graduation) + width_bucket(v.graduation_key - 1, s.graduation) AS graduation_pos,
               cardinality(s.ratio) AS ratio_n,
               width_bucket(v.ratio_key, s.ratio) + width_bucket(v.ratio_key - 1, s.ratio) AS ratio_pos,
               cardinality(s.swd) AS swd_n,
               width_bucket(v.swd_key, s.swd) + width_bucket(v.swd_key - 1, s.swd) AS swd_pos,
               cardinality(s.ell) AS ell_n,
               width_bucket(v.ell_key, s.ell) + width_bucket(v.ell_key - 1, s.ell) AS ell_pos,
               cardinality(s.math) AS math_n,
               width_bucket(v.math_key, s.math) + width_bucket(v.math_key - 1, s.math) AS math_pos,
               cardinality(s.read) AS read_n,
               width_bucket(v.read_key, s.read) + width_bucket(v.read_key - 1, s.read) AS read_pos,
               cardinality(s.expenditure) AS expenditure_n,
               width_bucket(v.expenditure_key, s.expenditure) + width_bucket(v.expenditure_key - 1, s.expenditure) AS expenditure_pos
          FROM vals v
          LEFT JOIN sorted s ON s.state_fips = v.state_fips
          LEFT JOIN public.states st ON st.fips = v.state_fips
          LEFT JOIN public.states us ON us.fips = '00'
        OFFSET 0  -- see above
    ),
    computed AS (
        -- Deltas of the numeric(5,2) metrics always fit numeric(8,2): the value is in [0, 999.99] and the
        -- average in [-999.99, 999.99]. Only the ratio (numeric(8,2)) and expenditure (numeric(12,2))
        -- deltas can overflow; those are checked (|x| < 10^6), their unchecked value kept for counting.
        -- OFFSET 0 (as in ranked): the range checks and tier CASEs run once per district, unstored.
        SELECT r.leaid,
               r.absenteeism_vs_state, r.absenteeism_vs_national, r.graduation_vs_state, r.graduation_vs_national,
               r.ratio_vs_state AS ratio_vs_state_unchecked,
               CASE WHEN abs(r.ratio_vs_state) < 1e6 THEN r.ratio_vs_state END AS ratio_vs_state,
               r.ratio_vs_national AS ratio_vs_national_unchecked,
               CASE WHEN abs(r.ratio_vs_national) < 1e6 THEN r.ratio_vs_national END AS ratio_vs_national,
               r.swd_vs_state, r.swd_vs_national, r.ell_vs_state, r.ell_vs_national, r.math_vs_state,
               r.math_vs_national, r.read_vs_state, r.read_vs_national,
               r.expenditure_vs_state AS expenditure_vs_state_unchecked,
               CASE WHEN abs(r.expenditure_vs_state) < 1e6 THEN r.expenditure_vs_state END AS expenditure_vs_state,
               r.expenditure_vs_national AS expenditure_vs_national_unchecked,
               CASE WHEN abs(r.expenditure_vs_national) < 1e6 THEN r.expenditure_vs_national END
                   AS expenditure_vs_national,
               CASE WHEN r.absenteeism_pos IS NULL OR r.absenteeism_n < 4 THEN NULL
                    WHEN 2 * r.absenteeism_pos >= 3 * r.absenteeism_n THEN 'well_above'
                    WHEN r.absenteeism_pos >= r.absenteeism_n THEN 'above'
                    WHEN 2 * r.absenteeism_pos >= r.absenteeism_n THEN 'below'
                    ELSE 'well_below' END AS absenteeism_quartile_state,
               CASE WHEN r.graduation_pos IS NULL OR r.graduation_n < 4 THEN NULL
                    WHEN 2 * r.graduation_pos >= 3 * r.graduation_n THEN 'well_above'
                    WHEN r.graduation_pos >= r.graduation_n THEN 'above'
                    WHEN 2 * r.graduation_pos >= r.graduation_n THEN 'below'
                    ELSE 'well_below' END AS graduation_quartile_state,
               CASE WHEN r.ratio_pos IS NULL OR r.ratio_n < 4 THEN NULL
                    WHEN 2 * r.ratio_pos >= 3 * r.ratio_n THEN 'well_above'
                    WHEN r.ratio_pos >= r.ratio_n THEN 'above'
                    WHEN 2 * r.ratio_pos >= r.ratio_n THEN 'below'
                    ELSE 'well_below' END AS student_teacher_ratio_quartile_state,
               CASE WHEN r.swd_pos IS NULL OR r.swd_n < 4 THEN NULL
                    WHEN 2 * r.swd_pos >= 3 * r.swd_n THEN 'well_above'
                    WHEN r.swd_pos >= r.swd_n THEN 'above'
                    WHEN 2 * r.swd_pos >= r.swd_n THEN 'below'
                    ELSE 'well_below' END AS swd_pct_quartile_state,
               CASE WHEN r.ell_pos IS NULL OR r.ell_n < 4 THEN NULL
                    WHEN 2 * r.ell_pos >= 3 * r.ell_n THEN 'well_above'
                    WHEN r.ell_pos >= r.ell_n THEN 'above'
                    WHEN 2 * r.ell_pos >= r.ell_n THEN 'below'
                    ELSE 'well_below' END AS ell_pct_quartile_state,
               CASE WHEN r.math_pos IS NULL OR r.math_n < 4 THEN NULL
                    WHEN 2 * r.math_pos >= 3 * r.math_n THEN 'well_above'
                    WHEN r.math_pos >= r.math_n THEN 'above'
                    WHEN 2 * r.math_pos >= r.math_n THEN 'below'
                    ELSE 'well_below' END AS math_proficiency_quartile_state,
               CASE WHEN r.read_pos IS NULL OR r.read_n < 4 THEN NULL
                    WHEN 2 * r.read_pos >= 3 * r.read_n THEN 'well_above'
                    WHEN r.read_pos >= r.read_n THEN 'above'
                    WHEN 2 * r.read_pos >= r.read_n THEN 'below'
                    ELSE 'well_below' END AS read_proficiency_quartile_state,
               CASE WHEN r.expenditure_pos IS NULL OR r.expenditure_n < 4 THEN NULL
                    WHEN 2 * r.expenditure_pos >= 3 * r.expenditure_n THEN 'well_above'
                    WHEN r.expenditure_pos >= r.expenditure_n THEN 'above'
                    WHEN 2 * r.expenditure_pos >= r.expenditure_n THEN 'below'
                    ELSE 'well_below' END AS expenditure_pp_quartile_state
          FROM ranked r
        OFFSET 0  -- see above
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
      JOIN public.districts o ON o.leaid = f.leaid;  -- the stored values, joined after the sorts (narrower rows)
END
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_delta_values() FROM PUBLIC;
