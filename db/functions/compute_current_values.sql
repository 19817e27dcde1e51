/*
 * compute_current_values() RETURNS integer — the number of districts rows changed
 *
 * Owns districts' current-value columns — enrollment, spec_ed_students, ell_students, teachers_fte,
 * student_teacher_ratio, chronic_absenteeism_rate, graduation_rate_total, math_proficiency_pct,
 * read_proficiency_pct, expenditure_per_pupil, children_poverty_percent — and updated_at of the rows it
 * changes; every district is recomputed, unchanged rows are not written.
 *   - Per metric column of a source, Y = the latest year in which any row of that source has a non-null,
 *     non-negative value in that column. A district's current value is its own value at Y; NULL when it has
 *     no row at Y or its value there is NULL or negative (the API's missing / not applicable / suppressed codes).
 *   - student_teacher_ratio = round(enrollment / teachers_fte, 2) of those values, when both are present and
 *     teachers_fte > 0.
 *   - benchmark_metrics.value_year (the rows it changes, and their updated_at): per metric its column's Y; for
 *     student_teacher_ratio, swd_pct and ell_pct (quotients of two counts) the earlier of the two counts' Y
 *     (enrollment's and teachers_fte's / spec_ed_students' / ell_students'), NULL unless both exist. These rows
 *     are not counted in the result (a year changes only with the values, which are).
 *   - Out of range: see compute_all_benchmarks.sql.
 */
CREATE OR REPLACE FUNCTION public.compute_current_values()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
AS $function$
DECLARE
    v_enrollment_y      smallint;
    v_spec_ed_y         smallint;
    v_ell_y             smallint;
    v_teachers_y        smallint;
    v_absenteeism_y     smallint;
    v_graduation_y      smallint;
    v_math_y            smallint;
    v_read_y            smallint;
    v_expenditure_y     smallint;
    v_poverty_y         smallint;
    v_rows_changed      integer;
    v_out_of_range      integer;
BEGIN
    LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;  -- the run lock: see compute_all_benchmarks.sql

    -- Y per metric column: each max() is a backward scan of the (source, year, leaid) index that stops at
    -- the first row with a usable value.
    SELECT (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'ccd_directory'    AND h.enrollment >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'ccd_directory'    AND h.spec_ed_students >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'ccd_directory'    AND h.ell_students >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'ccd_directory'    AND h.teachers_fte >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'crdc_absenteeism' AND h.chronic_absenteeism_rate >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'edfacts_grad'     AND h.graduation_rate >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'edfacts_assess'   AND h.math_proficiency >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'edfacts_assess'   AND h.read_proficiency >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'ccd_finance'      AND h.expenditure_pp >= 0),
           (SELECT max(h.year) FROM public.district_data_history h WHERE h.source = 'saipe'            AND h.children_poverty_percent >= 0)
      INTO v_enrollment_y, v_spec_ed_y, v_ell_y, v_teachers_y, v_absenteeism_y,
           v_graduation_y, v_math_y, v_read_y, v_expenditure_y, v_poverty_y;

    -- the metrics' years: eight rows, rewritten only when a year changes
    UPDATE public.benchmark_metrics bm
       SET value_year = y.year, updated_at = now()
      FROM (VALUES ('absenteeism',           v_absenteeism_y),
                   ('graduation',            v_graduation_y),
                   ('student_teacher_ratio', CASE WHEN v_enrollment_y IS NOT NULL AND v_teachers_y IS NOT NULL
                                                  THEN least(v_enrollment_y, v_teachers_y) END),
                   ('swd_pct',               CASE WHEN v_enrollment_y IS NOT NULL AND v_spec_ed_y IS NOT NULL
                                                  THEN least(v_enrollment_y, v_spec_ed_y) END),
                   ('ell_pct',               CASE WHEN v_enrollment_y IS NOT NULL AND v_ell_y IS NOT NULL
                                                  THEN least(v_enrollment_y, v_ell_y) END),
                   ('math_proficiency',      v_math_y),
                   ('read_proficiency',      v_read_y),
                   ('expenditure_pp',        v_expenditure_y)) y(metric, year)
     WHERE bm.metric = y.metric AND bm.value_year IS DISTINCT FROM y.year;

    WITH latest AS (
        -- One row per district that has a row in any of the slices; each value from its own column's Y, raw
        -- ((leaid, year, source) is the primary key, so every FILTER sees at most one row); negative codes
        -- are turned into NULL below, once per district rather than once per history row.
        SELECT h.leaid,
               max(h.enrollment)               FILTER (WHERE h.source = 'ccd_directory'    AND h.year = v_enrollment_y)  AS enrollment,
               max(h.spec_ed_students)         FILTER (WHERE h.source = 'ccd_directory'    AND h.year = v_spec_ed_y)     AS spec_ed_students,
               max(h.ell_students)             FILTER (WHERE h.source = 'ccd_directory'    AND h.year = v_ell_y)         AS ell_students,
               max(h.teachers_fte)             FILTER (WHERE h.source = 'ccd_directory'    AND h.year = v_teachers_y)    AS teachers_fte,
               max(h.chronic_absenteeism_rate) FILTER (WHERE h.source = 'crdc_absenteeism' AND h.year = v_absenteeism_y) AS chronic_absenteeism_rate,
               max(h.graduation_rate)          FILTER (WHERE h.source = 'edfacts_grad'     AND h.year = v_graduation_y)  AS graduation_rate_total,
               max(h.math_proficiency)         FILTER (WHERE h.source = 'edfacts_assess'   AND h.year = v_math_y)        AS math_proficiency_pct,
               max(h.read_proficiency)         FILTER (WHERE h.source = 'edfacts_assess'   AND h.year = v_read_y)        AS read_proficiency_pct,
               max(h.expenditure_pp)           FILTER (WHERE h.source = 'ccd_finance'      AND h.year = v_expenditure_y) AS expenditure_per_pupil,
               max(h.children_poverty_percent) FILTER (WHERE h.source = 'saipe'            AND h.year = v_poverty_y)     AS children_poverty_percent
          FROM public.district_data_history h
         WHERE (h.source = 'ccd_directory'    AND h.year IN (v_enrollment_y, v_spec_ed_y, v_ell_y, v_teachers_y))
            OR (h.source = 'crdc_absenteeism' AND h.year = v_absenteeism_y)
            OR (h.source = 'edfacts_grad'     AND h.year = v_graduation_y)
            OR (h.source = 'edfacts_assess'   AND h.year IN (v_math_y, v_read_y))
            OR (h.source = 'ccd_finance'      AND h.year = v_expenditure_y)
            OR (h.source = 'saipe'            AND h.year = v_poverty_y)
         GROUP BY h.leaid
    ),
    computed AS (
        -- every district, including those without any history (all NULL), negative values as NULL; OFFSET 0
        -- keeps this a subquery of its own, so the ratio's division runs once per district
        SELECT c.*, CASE WHEN c.teachers_fte > 0 THEN round(c.enrollment / c.teachers_fte, 2) END AS ratio_unchecked
          FROM (
                SELECT d.leaid,
                       CASE WHEN l.enrollment >= 0               THEN l.enrollment END               AS enrollment,
                       CASE WHEN l.spec_ed_students >= 0         THEN l.spec_ed_students END         AS spec_ed_students,
                       CASE WHEN l.ell_students >= 0             THEN l.ell_students END             AS ell_students,
                       CASE WHEN l.teachers_fte >= 0             THEN l.teachers_fte END             AS teachers_fte,
                       CASE WHEN l.chronic_absenteeism_rate >= 0 THEN l.chronic_absenteeism_rate END AS chronic_absenteeism_rate,
                       CASE WHEN l.graduation_rate_total >= 0    THEN l.graduation_rate_total END    AS graduation_rate_total,
                       CASE WHEN l.math_proficiency_pct >= 0     THEN l.math_proficiency_pct END     AS math_proficiency_pct,
                       CASE WHEN l.read_proficiency_pct >= 0     THEN l.read_proficiency_pct END     AS read_proficiency_pct,
                       CASE WHEN l.expenditure_per_pupil >= 0    THEN l.expenditure_per_pupil END    AS expenditure_per_pupil,
                       CASE WHEN l.children_poverty_percent >= 0 THEN l.children_poverty_percent END AS children_poverty_percent
                  FROM public.districts d
                  LEFT JOIN latest l ON l.leaid = d.leaid
                OFFSET 0
               ) c
        OFFSET 0
    ),
    fitted AS (
        -- numeric(8,2) holds |x| < 10^6
        SELECT c.*, CASE WHEN abs(c.ratio_unchecked) < 1e6 THEN c.ratio_unchecked END AS student_teacher_ratio
          FROM computed c
    ),
    changed AS (
        UPDATE public.districts d
           SET enrollment               = f.enrollment,
               spec_ed_students         = f.spec_ed_students,
               ell_students             = f.ell_students,
               teachers_fte             = f.teachers_fte,
               student_teacher_ratio    = f.student_teacher_ratio,
               chronic_absenteeism_rate = f.chronic_absenteeism_rate,
               graduation_rate_total    = f.graduation_rate_total,
               math_proficiency_pct     = f.math_proficiency_pct,
               read_proficiency_pct     = f.read_proficiency_pct,
               expenditure_per_pupil    = f.expenditure_per_pupil,
               children_poverty_percent = f.children_poverty_percent,
               updated_at               = now()
          FROM fitted f
         WHERE d.leaid = f.leaid
           AND (d.enrollment, d.spec_ed_students, d.ell_students, d.teachers_fte, d.student_teacher_ratio,
                d.chronic_absenteeism_rate, d.graduation_rate_total, d.math_proficiency_pct,
                d.read_proficiency_pct, d.expenditure_per_pupil, d.children_poverty_percent)
               IS DISTINCT FROM
               (f.enrollment, f.spec_ed_students, f.ell_students, f.teachers_fte, f.student_teacher_ratio,
                f.chronic_absenteeism_rate, f.graduation_rate_total, f.math_proficiency_pct,
                f.read_proficiency_pct, f.expenditure_per_pupil, f.children_poverty_percent)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM changed),
           (SELECT count(*) FROM fitted f WHERE f.ratio_unchecked IS NOT NULL AND f.student_teacher_ratio IS NULL)
      INTO v_rows_changed, v_out_of_range;

    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_rows_changed;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_current_values() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_current_values() TO district_benchmarks_operator;
