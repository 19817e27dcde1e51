-- 0030_district_benchmarks_view: the long-form view for BI tools — one row per district × metric.
-- value, state_avg and national_avg are on the metric's own scale (percent points, students per teacher,
-- dollars); vs_* are value minus the average; trend_3yr is the metric's 3-year trend (points, or % change
-- for swd_pct, ell_pct and expenditure_pp — see the README); quartile_state is the within-state tier.
CREATE VIEW district_benchmarks AS
SELECT d.leaid,
       d.name,
       d.state_abbrev,
       m.metric,
       m.value,
       m.state_avg,
       m.national_avg,
       m.vs_state,
       m.vs_national,
       m.quartile_state,
       m.trend_3yr
  FROM districts d
  LEFT JOIN states s  ON s.fips = d.state_fips
  LEFT JOIN states n ON n.fips = '00'
  CROSS JOIN LATERAL (VALUES
    ('absenteeism'::text,     d.chronic_absenteeism_rate::numeric, s.avg_chronic_absenteeism_rate::numeric, n.avg_chronic_absenteeism_rate::numeric,
                              d.absenteeism_vs_state, d.absenteeism_vs_national, d.absenteeism_quartile_state, d.absenteeism_trend_3yr),
    ('graduation',            d.graduation_rate_total, s.avg_graduation_rate, n.avg_graduation_rate,
                              d.graduation_vs_state, d.graduation_vs_national, d.graduation_quartile_state, d.graduation_trend_3yr),
    ('student_teacher_ratio', d.student_teacher_ratio, s.avg_student_teacher_ratio, n.avg_student_teacher_ratio,
                              d.student_teacher_ratio_vs_state, d.student_teacher_ratio_vs_national,
                              d.student_teacher_ratio_quartile_state, d.student_teacher_ratio_trend_3yr),
    ('swd_pct',               d.swd_pct, s.avg_swd_pct, n.avg_swd_pct,
                              d.swd_pct_vs_state, d.swd_pct_vs_national, d.swd_pct_quartile_state, d.swd_trend_3yr),
    ('ell_pct',               d.ell_pct, s.avg_ell_pct, n.avg_ell_pct,
                              d.ell_pct_vs_state, d.ell_pct_vs_national, d.ell_pct_quartile_state, d.ell_trend_3yr),
    ('math_proficiency',      d.math_proficiency_pct, s.avg_math_proficiency, n.avg_math_proficiency,
                              d.math_proficiency_vs_state, d.math_proficiency_vs_national,
                              d.math_proficiency_quartile_state, d.math_proficiency_trend_3yr),
    ('read_proficiency',      d.read_proficiency_pct, s.avg_read_proficiency, n.avg_read_proficiency,
                              d.read_proficiency_vs_state, d.read_proficiency_vs_national,
                              d.read_proficiency_quartile_state, d.read_proficiency_trend_3yr),
    ('expenditure_pp',        d.expenditure_per_pupil, s.avg_expenditure_per_pupil, n.avg_expenditure_per_pupil,
                              d.expenditure_pp_vs_state, d.expenditure_pp_vs_national,
                              d.expenditure_pp_quartile_state, d.expenditure_pp_trend_3yr)
  ) AS m (metric, value, state_avg, national_avg, vs_state, vs_national, quartile_state, trend_3yr);

COMMENT ON VIEW district_benchmarks IS
  'One row per district and metric: value, state and national averages, deltas, within-state tier, 3-year trend.';

GRANT SELECT ON district_benchmarks TO district_benchmarks_reader, district_benchmarks_operator;
