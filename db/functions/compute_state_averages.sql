/*
 * compute_state_averages() RETURNS integer — the number of states rows changed
 *
 * Owns the aggregates of every states row — avg_chronic_absenteeism_rate, avg_student_teacher_ratio,
 * avg_swd_pct, avg_ell_pct, avg_enrollment, avg_math_proficiency, avg_read_proficiency, avg_graduation_rate,
 * avg_expenditure_per_pupil, avg_poverty_rate, total_districts, total_enrollment — and aggregates_updated_at /
 * updated_at of the rows it changes; unchanged rows are not written.
 *   - A state row other than '00' aggregates its districts with enrollment > 0; '00' aggregates every district
 *     with enrollment > 0, including those without a state (state_fips NULL) or filed under '00', which count
 *     only towards the nation. Negative district values count as NULL, whoever wrote them.
 *   - Enrollment-weighted average of x = Σ(x·enrollment) ÷ Σ enrollment over the districts whose x is not NULL
 *     (absenteeism, ratio, math, read, graduation, expenditure). avg_swd_pct = 100 × Σ spec_ed_students ÷
 *     Σ enrollment over districts with spec_ed_students not NULL; avg_ell_pct likewise. avg_enrollment =
 *     round(mean enrollment); avg_poverty_rate = unweighted mean of children_poverty_percent; total_districts
 *     = count; total_enrollment = Σ enrollment.
 *   - A state without such districts gets NULL averages and 0 / 0 totals, never stale values.
 *   - Exact numeric arithmetic, one round(x, 2) at the end. Out of range: see compute_all_benchmarks.sql.
 */
CREATE OR REPLACE FUNCTION public.compute_state_averages()
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

    WITH eligible AS (
        SELECT d.state_fips,
               d.enrollment,                     -- summed as an integer: a bigint sum is much cheaper than a numeric one
               d.enrollment::numeric                                                          AS weight,  -- converted once per row
               CASE WHEN d.chronic_absenteeism_rate >= 0 THEN d.chronic_absenteeism_rate END AS absenteeism,
               CASE WHEN d.student_teacher_ratio >= 0    THEN d.student_teacher_ratio END    AS ratio,
               CASE WHEN d.spec_ed_students >= 0         THEN d.spec_ed_students END         AS spec_ed,
               CASE WHEN d.ell_students >= 0             THEN d.ell_students END             AS ell,
               CASE WHEN d.math_proficiency_pct >= 0     THEN d.math_proficiency_pct END     AS math,
               CASE WHEN d.read_proficiency_pct >= 0     THEN d.read_proficiency_pct END     AS read,
               CASE WHEN d.graduation_rate_total >= 0    THEN d.graduation_rate_total END    AS graduation,
               CASE WHEN d.expenditure_per_pupil >= 0    THEN d.expenditure_per_pupil END    AS expenditure,
               CASE WHEN d.children_poverty_percent >= 0 THEN d.children_poverty_percent END AS poverty
          FROM public.districts d
         WHERE d.enrollment > 0
    ),
    aggregated AS (
        -- grouping set (state_fips) gives each state, grouping set () the nation
        SELECT CASE WHEN grouping(e.state_fips) = 1 THEN '00' ELSE e.state_fips END AS fips,
               sum(e.absenteeism * e.weight) / sum(e.enrollment) FILTER (WHERE e.absenteeism IS NOT NULL) AS absenteeism,
               sum(e.ratio * e.weight)       / sum(e.enrollment) FILTER (WHERE e.ratio IS NOT NULL)       AS ratio,
               100 * sum(e.spec_ed)::numeric     / sum(e.enrollment) FILTER (WHERE e.spec_ed IS NOT NULL)     AS swd_pct,
               100 * sum(e.ell)::numeric         / sum(e.enrollment) FILTER (WHERE e.ell IS NOT NULL)         AS ell_pct,
               sum(e.math * e.weight)        / sum(e.enrollment) FILTER (WHERE e.math IS NOT NULL)        AS math,
               sum(e.read * e.weight)        / sum(e.enrollment) FILTER (WHERE e.read IS NOT NULL)        AS read,
               sum(e.graduation * e.weight)  / sum(e.enrollment) FILTER (WHERE e.graduation IS NOT NULL)  AS graduation,
               sum(e.expenditure * e.weight) / sum(e.enrollment) FILTER (WHERE e.expenditure IS NOT NULL) AS expenditure,
               round(avg(e.enrollment))::integer AS avg_enrollment,
               avg(e.poverty)                    AS poverty,
               count(*)::integer                 AS total_districts,
               sum(e.enrollment)::bigint         AS total_enrollment
          FROM eligible e
         GROUP BY GROUPING SETS ((e.state_fips), ())
        -- keep the nation and real states; the groups of districts filed under no state or under '00'
        -- would collide with the national row (those districts are already in the national group)
        HAVING grouping(e.state_fips) = 1 OR e.state_fips <> '00'
    ),
    computed AS (
        -- every states row; a state without eligible districts joins nothing and gets NULL / 0
        SELECT s.fips,
               round(a.absenteeism, 2) AS absenteeism,
               round(a.ratio, 2)       AS ratio,
               round(a.swd_pct, 2)     AS swd_pct,
               round(a.ell_pct, 2)     AS ell_pct,
               round(a.math, 2)        AS math,
               round(a.read, 2)        AS read,
               round(a.graduation, 2)  AS graduation,
               round(a.expenditure, 2) AS expenditure,
               a.avg_enrollment,
               round(a.poverty, 2)     AS poverty,
               coalesce(a.total_districts, 0)  AS total_districts,
               coalesce(a.total_enrollment, 0) AS total_enrollment
          FROM public.states s
          LEFT JOIN aggregated a ON a.fips = s.fips
    ),
    fitted AS (
        -- numeric(5,2) holds |x| < 10^3, numeric(8,2) |x| < 10^6, numeric(12,2) |x| < 10^10
        SELECT c.*,
               CASE WHEN abs(c.absenteeism) < 1e3  THEN c.absenteeism END AS avg_chronic_absenteeism_rate,
               CASE WHEN abs(c.ratio) < 1e6        THEN c.ratio END       AS avg_student_teacher_ratio,
               CASE WHEN abs(c.swd_pct) < 1e3      THEN c.swd_pct END     AS avg_swd_pct,
               CASE WHEN abs(c.ell_pct) < 1e3      THEN c.ell_pct END     AS avg_ell_pct,
               CASE WHEN abs(c.math) < 1e3         THEN c.math END        AS avg_math_proficiency,
               CASE WHEN abs(c.read) < 1e3         THEN c.read END        AS avg_read_proficiency,
               CASE WHEN abs(c.graduation) < 1e3   THEN c.graduation END  AS avg_graduation_rate,
               CASE WHEN abs(c.expenditure) < 1e10 THEN c.expenditure END AS avg_expenditure_per_pupil,
               CASE WHEN abs(c.poverty) < 1e3      THEN c.poverty END     AS avg_poverty_rate
          FROM computed c
    ),
    changed AS (
        UPDATE public.states s
           SET avg_chronic_absenteeism_rate = f.avg_chronic_absenteeism_rate,
               avg_student_teacher_ratio    = f.avg_student_teacher_ratio,
               avg_swd_pct                  = f.avg_swd_pct,
               avg_ell_pct                  = f.avg_ell_pct,
               avg_enrollment               = f.avg_enrollment,
               avg_math_proficiency         = f.avg_math_proficiency,
               avg_read_proficiency         = f.avg_read_proficiency,
               avg_graduation_rate          = f.avg_graduation_rate,
               avg_expenditure_per_pupil    = f.avg_expenditure_per_pupil,
               avg_poverty_rate             = f.avg_poverty_rate,
               total_districts              = f.total_districts,
               total_enrollment             = f.total_enrollment,
               aggregates_updated_at        = now(),
               updated_at                   = now()
          FROM fitted f
         WHERE s.fips = f.fips
           AND (s.avg_chronic_absenteeism_rate, s.avg_student_teacher_ratio, s.avg_swd_pct, s.avg_ell_pct,
                s.avg_enrollment, s.avg_math_proficiency, s.avg_read_proficiency, s.avg_graduation_rate,
                s.avg_expenditure_per_pupil, s.avg_poverty_rate, s.total_districts, s.total_enrollment)
               IS DISTINCT FROM
               (f.avg_chronic_absenteeism_rate, f.avg_student_teacher_ratio, f.avg_swd_pct, f.avg_ell_pct,
                f.avg_enrollment, f.avg_math_proficiency, f.avg_read_proficiency, f.avg_graduation_rate,
                f.avg_expenditure_per_pupil, f.avg_poverty_rate, f.total_districts, f.total_enrollment)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM changed),
           (SELECT coalesce(sum(num_nonnulls(f.absenteeism, f.ratio, f.swd_pct, f.ell_pct, f.math, f.read,
                                             f.graduation, f.expenditure, f.poverty)
                                - num_nonnulls(f.avg_chronic_absenteeism_rate, f.avg_student_teacher_ratio,
                                               f.avg_swd_pct, f.avg_ell_pct, f.avg_math_proficiency,
                                               f.avg_read_proficiency, f.avg_graduation_rate,
                                               f.avg_expenditure_per_pupil, f.avg_poverty_rate)), 0)
              FROM fitted f)
      INTO v_rows_changed, v_out_of_range;

    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_rows_changed;
END
$function$;

REVOKE ALL ON FUNCTION public.compute_state_averages() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.compute_state_averages() TO district_benchmarks_operator;
