/*
 * _benchmarks_trend_values() RETURNS TABLE (leaid, swd_pct, ell_pct, the eight *_trend_3yr, out_of_range,
 *                                           changed)
 * Internal: no EXECUTE for PUBLIC or the operator role.
 *
 * Writes nothing. Returns, for every district, the values its trend columns must hold: the one implementation
 * of the trend rules, shared by compute_district_trends() and compute_all_benchmarks().
 *   - swd_pct = 100 × spec_ed_students ÷ enrollment, ell_pct = 100 × ell_students ÷ enrollment, from the
 *     district's current values; NULL unless enrollment > 0 and the count is present (not negative).
 *   - Per trend metric, from district_data_history of its source, negative values as NULL: Y = the latest
 *     year in which any row has a value of the metric, B = max(earliest such year, Y − 3); no trend when
 *     B = Y. Absenteeism is biennial: B = the latest year before Y in which any row has a rate. The ratio's
 *     value in a row is enrollment ÷ teachers_fte; a year counts for it when some row has enrollment and
 *     teachers_fte > 0.
 *   - A district's trend compares its own values at Y and B; NULL when either is missing. Point change
 *     v_Y − v_B (absenteeism, graduation, math, read, ratio); % change 100 × (v_Y − v_B) ÷ v_B, NULL when
 *     v_B = 0 (swd and ell counts, expenditure).
 *   - Exact numeric arithmetic, one round(x, 2) at the end; a value that does not fit its column is returned
 *     as NULL and counted in the row's out_of_range. changed = the values differ from the stored ones.
 *   - Leaves the years compared in the transaction-local setting district_benchmarks.trend_years: a jsonb
 *     object {metric: [B, Y]} (B NULL when there is no trend), which the callers store in benchmark_metrics.
 */
-- the function's name before 1.1.4; dropped so an existing database loses it (idempotent, same transaction)
DROP FUNCTION IF EXISTS public.benchmarks_trend_values();

CREATE OR REPLACE FUNCTION public._benchmarks_trend_values()
RETURNS TABLE (leaid varchar(7), swd_pct numeric, ell_pct numeric, swd_trend_3yr numeric, ell_trend_3yr numeric,
               absenteeism_trend_3yr numeric, graduation_trend_3yr numeric,
               student_teacher_ratio_trend_3yr numeric, math_proficiency_trend_3yr numeric,
               read_proficiency_trend_3yr numeric, expenditure_pp_trend_3yr numeric,
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
DECLARE
    -- Y (latest year) and B (base year, NULL when it would equal Y) per metric; *_first = earliest year
    v_swd_y         smallint;  v_swd_first         smallint;  v_swd_b         smallint;
    v_ell_y         smallint;  v_ell_first         smallint;  v_ell_b         smallint;
    v_ratio_y       smallint;  v_ratio_first       smallint;  v_ratio_b       smallint;
    v_graduation_y  smallint;  v_graduation_first  smallint;  v_graduation_b  smallint;
    v_math_y        smallint;  v_math_first        smallint;  v_math_b        smallint;
    v_read_y        smallint;  v_read_first        smallint;  v_read_b        smallint;
    v_expenditure_y smallint;  v_expenditure_first smallint;  v_expenditure_b smallint;
    v_absenteeism_y smallint;                                 v_absenteeism_b smallint;
BEGIN
    -- the run lock (see compute_all_benchmarks.sql), unless this backend holds it already: a helper runs inside
    -- a definer function that took it, and must not need the right to take it itself
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
                      AND l.relation = 'public._benchmarks_run_lock'::pg_catalog.regclass
                      AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
        LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;
    END IF;

    -- Each min()/max() below is answered from the (source, year, leaid) index, scanning from one end
    -- until the first row with a usable value.
    SELECT max(h.year), min(h.year) INTO v_swd_y, v_swd_first
      FROM public.district_data_history h WHERE h.source = 'ccd_directory' AND h.spec_ed_students >= 0;
    SELECT max(h.year), min(h.year) INTO v_ell_y, v_ell_first
      FROM public.district_data_history h WHERE h.source = 'ccd_directory' AND h.ell_students >= 0;
    SELECT max(h.year), min(h.year) INTO v_ratio_y, v_ratio_first
      FROM public.district_data_history h WHERE h.source = 'ccd_directory' AND h.enrollment >= 0 AND h.teachers_fte > 0;
    SELECT max(h.year), min(h.year) INTO v_graduation_y, v_graduation_first
      FROM public.district_data_history h WHERE h.source = 'edfacts_grad' AND h.graduation_rate >= 0;
    SELECT max(h.year), min(h.year) INTO v_math_y, v_math_first
      FROM public.district_data_history h WHERE h.source = 'edfacts_assess' AND h.math_proficiency >= 0;
    SELECT max(h.year), min(h.year) INTO v_read_y, v_read_first
      FROM public.district_data_history h WHERE h.source = 'edfacts_assess' AND h.read_proficiency >= 0;
    SELECT max(h.year), min(h.year) INTO v_expenditure_y, v_expenditure_first
      FROM public.district_data_history h WHERE h.source = 'ccd_finance' AND h.expenditure_pp >= 0;
    SELECT max(h.year) INTO v_absenteeism_y
      FROM public.district_data_history h WHERE h.source = 'crdc_absenteeism' AND h.chronic_absenteeism_rate >= 0;
    SELECT max(h.year) INTO v_absenteeism_b
      FROM public.district_data_history h
     WHERE h.source = 'crdc_absenteeism' AND h.chronic_absenteeism_rate >= 0 AND h.year < v_absenteeism_y;

    v_swd_b         := nullif(greatest(v_swd_first,         v_swd_y - 3),         v_swd_y);
    v_ell_b         := nullif(greatest(v_ell_first,         v_ell_y - 3),         v_ell_y);
    v_ratio_b       := nullif(greatest(v_ratio_first,       v_ratio_y - 3),       v_ratio_y);
    v_graduation_b  := nullif(greatest(v_graduation_first,  v_graduation_y - 3),  v_graduation_y);
    v_math_b        := nullif(greatest(v_math_first,        v_math_y - 3),        v_math_y);
    v_read_b        := nullif(greatest(v_read_first,        v_read_y - 3),        v_read_y);
    v_expenditure_b := nullif(greatest(v_expenditure_first, v_expenditure_y - 3), v_expenditure_y);

    -- the years each metric's trend compares, [B, Y], for the caller to store in benchmark_metrics
    PERFORM set_config('district_benchmarks.trend_years', jsonb_build_object(
        'swd_pct',               jsonb_build_array(v_swd_b, v_swd_y),
        'ell_pct',               jsonb_build_array(v_ell_b, v_ell_y),
        'student_teacher_ratio', jsonb_build_array(v_ratio_b, v_ratio_y),
        'absenteeism',           jsonb_build_array(v_absenteeism_b, v_absenteeism_y),
        'graduation',            jsonb_build_array(v_graduation_b, v_graduation_y),
        'math_proficiency',      jsonb_build_array(v_math_b, v_math_y),
        'read_proficiency',      jsonb_build_array(v_read_b, v_read_y),
        'expenditure_pp',        jsonb_build_array(v_expenditure_b, v_expenditure_y))::text, true);

    RETURN QUERY
    WITH pivot AS (
        -- One row per district with a row in any slice, holding the raw values at Y and B: (leaid, year,
        -- source) is the primary key, so every FILTER sees at most one row. Only the rows of the slices at Y
        -- and B are read; the year is tested first (an integer comparison rejects most rows), and the values
        -- are cleaned after grouping, on one row per district instead of every history row.
        SELECT r.leaid,
               max(r.spec_ed_students)         FILTER (WHERE r.year = v_swd_y AND r.source = 'ccd_directory')            AS spec_ed_y,
               max(r.spec_ed_students)         FILTER (WHERE r.year = v_swd_b AND r.source = 'ccd_directory')            AS spec_ed_b,
               max(r.ell_students)             FILTER (WHERE r.year = v_ell_y AND r.source = 'ccd_directory')            AS ell_y,
               max(r.ell_students)             FILTER (WHERE r.year = v_ell_b AND r.source = 'ccd_directory')            AS ell_b,
               max(r.enrollment)               FILTER (WHERE r.year = v_ratio_y AND r.source = 'ccd_directory')          AS enrollment_y,
               max(r.teachers_fte)             FILTER (WHERE r.year = v_ratio_y AND r.source = 'ccd_directory')          AS teachers_y,
               max(r.enrollment)               FILTER (WHERE r.year = v_ratio_b AND r.source = 'ccd_directory')          AS enrollment_b,
               max(r.teachers_fte)             FILTER (WHERE r.year = v_ratio_b AND r.source = 'ccd_directory')          AS teachers_b,
               max(r.chronic_absenteeism_rate) FILTER (WHERE r.year = v_absenteeism_y AND r.source = 'crdc_absenteeism') AS absenteeism_y,
               max(r.chronic_absenteeism_rate) FILTER (WHERE r.year = v_absenteeism_b AND r.source = 'crdc_absenteeism') AS absenteeism_b,
               max(r.graduation_rate)          FILTER (WHERE r.year = v_graduation_y AND r.source = 'edfacts_grad')      AS graduation_y,
               max(r.graduation_rate)          FILTER (WHERE r.year = v_graduation_b AND r.source = 'edfacts_grad')      AS graduation_b,
               max(r.math_proficiency)         FILTER (WHERE r.year = v_math_y AND r.source = 'edfacts_assess')          AS math_y,
               max(r.math_proficiency)         FILTER (WHERE r.year = v_math_b AND r.source = 'edfacts_assess')          AS math_b,
               max(r.read_proficiency)         FILTER (WHERE r.year = v_read_y AND r.source = 'edfacts_assess')          AS read_y,
               max(r.read_proficiency)         FILTER (WHERE r.year = v_read_b AND r.source = 'edfacts_assess')          AS read_b,
               max(r.expenditure_pp)           FILTER (WHERE r.year = v_expenditure_y AND r.source = 'ccd_finance')      AS expenditure_y,
               max(r.expenditure_pp)           FILTER (WHERE r.year = v_expenditure_b AND r.source = 'ccd_finance')      AS expenditure_b
          FROM public.district_data_history r
         WHERE (r.source = 'ccd_directory'
                AND r.year IN (v_swd_y, v_swd_b, v_ell_y, v_ell_b, v_ratio_y, v_ratio_b))
            OR (r.source = 'crdc_absenteeism' AND r.year IN (v_absenteeism_y, v_absenteeism_b))
            OR (r.source = 'edfacts_grad'     AND r.year IN (v_graduation_y, v_graduation_b))
            OR (r.source = 'edfacts_assess'   AND r.year IN (v_math_y, v_math_b, v_read_y, v_read_b))
            OR (r.source = 'ccd_finance'      AND r.year IN (v_expenditure_y, v_expenditure_b))
         GROUP BY r.leaid
    ),
    history AS (
        -- the values at Y and B, negative codes turned into NULL; the ratio = enrollment ÷ teachers_fte
        SELECT p.leaid,
               CASE WHEN p.spec_ed_y >= 0     THEN p.spec_ed_y END              AS swd_y,
               CASE WHEN p.spec_ed_b >= 0     THEN p.spec_ed_b END              AS swd_b,
               CASE WHEN p.ell_y >= 0         THEN p.ell_y END                  AS ell_y,
               CASE WHEN p.ell_b >= 0         THEN p.ell_b END                  AS ell_b,
               CASE WHEN p.enrollment_y >= 0 AND p.teachers_y > 0
                    THEN p.enrollment_y / p.teachers_y END                      AS ratio_y,
               CASE WHEN p.enrollment_b >= 0 AND p.teachers_b > 0
                    THEN p.enrollment_b / p.teachers_b END                      AS ratio_b,
               CASE WHEN p.absenteeism_y >= 0 THEN p.absenteeism_y END          AS absenteeism_y,
               CASE WHEN p.absenteeism_b >= 0 THEN p.absenteeism_b END          AS absenteeism_b,
               CASE WHEN p.graduation_y >= 0  THEN p.graduation_y END           AS graduation_y,
               CASE WHEN p.graduation_b >= 0  THEN p.graduation_b END           AS graduation_b,
               CASE WHEN p.math_y >= 0        THEN p.math_y END                 AS math_y,
               CASE WHEN p.math_b >= 0        THEN p.math_b END                 AS math_b,
               CASE WHEN p.read_y >= 0        THEN p.read_y END                 AS read_y,
               CASE WHEN p.read_b >= 0        THEN p.read_b END                 AS read_b,
               CASE WHEN p.expenditure_y >= 0 THEN p.expenditure_y END          AS expenditure_y,
               CASE WHEN p.expenditure_b >= 0 THEN p.expenditure_b END          AS expenditure_b
          FROM pivot p
        OFFSET 0  -- a subquery of its own: each value is cleaned once, however often it is used below
    ),
    computed AS (
        -- every district, including those without any history (all trends NULL). OFFSET 0 keeps this a
        -- subquery of its own, so each division runs once per district (merged into the queries below, it
        -- would be repeated in every reference) without storing the rows as MATERIALIZED would
        SELECT d.leaid,
               -- the stored values (s_*), compared column by column at the end (cheaper than a ROW and
               -- record_eq)
               d.swd_pct AS s_swd_pct, d.ell_pct AS s_ell_pct, d.swd_trend_3yr AS s_swd_trend_3yr,
               d.ell_trend_3yr AS s_ell_trend_3yr, d.absenteeism_trend_3yr AS s_absenteeism_trend_3yr,
               d.graduation_trend_3yr AS s_graduation_trend_3yr,
               d.student_teacher_ratio_trend_3yr AS s_student_teacher_ratio_trend_3yr,
               d.math_proficiency_trend_3yr AS s_math_proficiency_trend_3yr,
               d.read_proficiency_trend_3yr AS s_read_proficiency_trend_3yr,
               d.expenditure_pp_trend_3yr AS s_expenditure_pp_trend_3yr,
               CASE WHEN d.enrollment > 0 AND d.spec_ed_students >= 0
                    THEN round((100 * d.spec_ed_students::bigint)::numeric / d.enrollment, 2) END AS swd_pct,
               CASE WHEN d.enrollment > 0 AND d.ell_students >= 0
                    THEN round((100 * d.ell_students::bigint)::numeric / d.enrollment, 2) END     AS ell_pct,
               round((100 * (h.swd_y::bigint - h.swd_b))::numeric / nullif(h.swd_b, 0), 2)      AS swd_trend,
               round((100 * (h.ell_y::bigint - h.ell_b))::numeric / nullif(h.ell_b, 0), 2)      AS ell_trend,
               round(h.absenteeism_y - h.absenteeism_b, 2)                                      AS absenteeism_trend,
               round(h.graduation_y - h.graduation_b, 2)                                        AS graduation_trend,
               round(h.ratio_y - h.ratio_b, 2)                                                  AS ratio_trend,
               round(h.math_y - h.math_b, 2)                                                    AS math_trend,
               round(h.read_y - h.read_b, 2)                                                    AS read_trend,
               round(100 * (h.expenditure_y - h.expenditure_b) / nullif(h.expenditure_b, 0), 2) AS expenditure_trend
          FROM public.districts d
          LEFT JOIN history h ON h.leaid = d.leaid
        OFFSET 0  -- see above
    ),
    fitted AS (
        -- numeric(5,2) holds |x| < 10^3, numeric(8,2) |x| < 10^6; a value is checked only on the sides where
        -- it can go out of range: the percentages are >= 0, a % change is >= -100 (v_Y >= 0, v_B > 0), the
        -- ratio trend (two unbounded ratios) can go either way, and the absenteeism, graduation, math and
        -- read trends, differences of two values in [0, 999.99], always fit (no check)
        SELECT c.*,
               CASE WHEN c.swd_pct < 1e3            THEN c.swd_pct END           AS swd_pct_fit,
               CASE WHEN c.ell_pct < 1e3            THEN c.ell_pct END           AS ell_pct_fit,
               CASE WHEN c.swd_trend < 1e6          THEN c.swd_trend END         AS swd_trend_3yr,
               CASE WHEN c.ell_trend < 1e6          THEN c.ell_trend END         AS ell_trend_3yr,
               c.absenteeism_trend                                                AS absenteeism_trend_3yr,
               c.graduation_trend                                                 AS graduation_trend_3yr,
               CASE WHEN c.ratio_trend > -1e6 AND c.ratio_trend < 1e6
                                                    THEN c.ratio_trend END       AS student_teacher_ratio_trend_3yr,
               c.math_trend                                                       AS math_proficiency_trend_3yr,
               c.read_trend                                                       AS read_proficiency_trend_3yr,
               CASE WHEN c.expenditure_trend < 1e6  THEN c.expenditure_trend END AS expenditure_pp_trend_3yr
          FROM computed c
    )

    SELECT f.leaid, f.swd_pct_fit, f.ell_pct_fit, f.swd_trend_3yr, f.ell_trend_3yr, f.absenteeism_trend_3yr,
           f.graduation_trend_3yr, f.student_teacher_ratio_trend_3yr, f.math_proficiency_trend_3yr,
           f.read_proficiency_trend_3yr, f.expenditure_pp_trend_3yr,
           num_nonnulls(f.swd_pct, f.ell_pct, f.swd_trend, f.ell_trend, f.ratio_trend, f.expenditure_trend)
           - num_nonnulls(f.swd_pct_fit, f.ell_pct_fit, f.swd_trend_3yr, f.ell_trend_3yr,
                          f.student_teacher_ratio_trend_3yr, f.expenditure_pp_trend_3yr),
           (f.s_swd_pct, f.s_ell_pct, f.s_swd_trend_3yr, f.s_ell_trend_3yr, f.s_absenteeism_trend_3yr,
            f.s_graduation_trend_3yr, f.s_student_teacher_ratio_trend_3yr, f.s_math_proficiency_trend_3yr,
            f.s_read_proficiency_trend_3yr, f.s_expenditure_pp_trend_3yr)
           IS DISTINCT FROM
               (f.swd_pct_fit, f.ell_pct_fit, f.swd_trend_3yr, f.ell_trend_3yr, f.absenteeism_trend_3yr,
                f.graduation_trend_3yr, f.student_teacher_ratio_trend_3yr, f.math_proficiency_trend_3yr,
                f.read_proficiency_trend_3yr, f.expenditure_pp_trend_3yr)
      FROM fitted f;
END
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_trend_values() FROM PUBLIC;
