-- 0060_district_peers: peer groups. Each eligible district is compared with the 40 districts most like it,
-- nationwide (compute_peer_groups(); the rules are in its file's header and in docs/metrics.md).
--
--   district_peers          one row per district and peer: rank 1 = nearest, distance in standardised units
--   districts.{m}_vs_peers  the district's value minus its peers' average, for the eight metrics
--   _benchmarks_peer_inputs internal: the inputs the stored peers and differences were computed from, so that a
--                           rerun on unchanged data can skip the search (no grants)
--   district_benchmarks     gains peer_avg and vs_peers (at the end: a view can only gain columns there)
--
-- district_peers is rewritten in place: a peer that stays keeps its row (rank and distance updated), a peer that
-- leaves hands its row to one that enters. That keeps the foreign-key checks (one per changed peer_leaid) and the
-- index entries to what really changed, but a district's ranks are permuted within one UPDATE, so the primary
-- key is DEFERRABLE (INITIALLY IMMEDIATE: still checked at the end of every statement). fillfactor 50 leaves
-- room on each page for a new version of every row, so a rewrite of the distances alone is a HOT update. The
-- index on peer_leaid serves the ON DELETE CASCADE from districts.
CREATE TABLE public.district_peers (
    leaid       varchar(7)       NOT NULL REFERENCES public.districts (leaid) ON DELETE CASCADE,
    peer_leaid  varchar(7)       NOT NULL REFERENCES public.districts (leaid) ON DELETE CASCADE,
    peer_rank   smallint         NOT NULL CHECK (peer_rank >= 1),
    distance    double precision NOT NULL CHECK (distance >= 0),
    CONSTRAINT district_peers_pkey PRIMARY KEY (leaid, peer_rank) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT district_peers_leaid_peer_leaid_key UNIQUE (leaid, peer_leaid),
    CONSTRAINT district_peers_not_self CHECK (peer_leaid <> leaid)
) WITH (fillfactor = 50);
CREATE INDEX district_peers_peer_leaid_idx ON public.district_peers (peer_leaid);

COMMENT ON TABLE public.district_peers IS
    'Peer groups, written by compute_peer_groups(): for every eligible district (enrollment > 0, child poverty, '
    'ELL % and SWD % known) the 40 other eligible districts nearest to it nationwide in standardised '
    'ln(enrollment), child poverty, ELL % and SWD % (all of them when there are fewer). No rows for an '
    'ineligible district.';
COMMENT ON COLUMN public.district_peers.leaid IS 'The district.';
COMMENT ON COLUMN public.district_peers.peer_leaid IS 'One of its peers.';
COMMENT ON COLUMN public.district_peers.peer_rank IS
    '1 = nearest; equal distances are ranked by peer_leaid.';
COMMENT ON COLUMN public.district_peers.distance IS
    'Euclidean distance between the two districts'' standardised feature vectors (z-scores over all eligible '
    'districts; a feature with no spread is left out).';

ALTER TABLE public.districts
    ADD COLUMN absenteeism_vs_peers           numeric(8,2),
    ADD COLUMN graduation_vs_peers            numeric(8,2),
    ADD COLUMN student_teacher_ratio_vs_peers numeric(8,2),
    ADD COLUMN swd_pct_vs_peers               numeric(8,2),
    ADD COLUMN ell_pct_vs_peers               numeric(8,2),
    ADD COLUMN math_proficiency_vs_peers      numeric(8,2),
    ADD COLUMN read_proficiency_vs_peers      numeric(8,2),
    ADD COLUMN expenditure_pp_vs_peers        numeric(8,2);

COMMENT ON COLUMN public.districts.absenteeism_vs_peers IS
    'chronic_absenteeism_rate minus the unweighted average of its peers'' rates (district_peers); NULL when '
    'fewer than 10 peers have one. Lower absenteeism is better.';
COMMENT ON COLUMN public.districts.graduation_vs_peers IS
    'graduation_rate_total minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.student_teacher_ratio_vs_peers IS
    'student_teacher_ratio minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.swd_pct_vs_peers IS
    'swd_pct minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.ell_pct_vs_peers IS
    'ell_pct minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.math_proficiency_vs_peers IS
    'math_proficiency_pct minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.read_proficiency_vs_peers IS
    'read_proficiency_pct minus its peers'' average (NULL when fewer than 10 peers have a value).';
COMMENT ON COLUMN public.districts.expenditure_pp_vs_peers IS
    'expenditure_per_pupil minus its peers'' average (NULL when fewer than 10 peers have a value).';

-- One row per district that was eligible when the stored peers were computed: its features as read; bounds on
-- its stored distances (gap: at most the distance to any district that is not one of its peers; reach: at least
-- the distance to its farthest peer; spacing: at most the smallest difference between the distances of two
-- consecutive peers); the metric values the stored differences were computed from (swd_pct and ell_pct are also
-- features), and those differences. Written and read only by compute_peer_groups();
-- any other write to district_peers empties it (trigger, db/functions/_benchmarks_peers_written.sql).
CREATE TABLE public._benchmarks_peer_inputs (
    leaid                         varchar(7)   PRIMARY KEY,
    enrollment                    integer      NOT NULL,
    children_poverty_percent      numeric(5,2) NOT NULL,
    ell_pct                       numeric(5,2) NOT NULL,
    swd_pct                       numeric(5,2) NOT NULL,
    gap                           double precision,
    reach                         double precision,
    spacing                       double precision,
    absenteeism                   numeric(5,2),
    graduation                    numeric(5,2),
    student_teacher_ratio         numeric(8,2),
    math_proficiency              numeric(5,2),
    read_proficiency              numeric(5,2),
    expenditure_pp                numeric(12,2),
    absenteeism_vs_peers           numeric(8,2),
    graduation_vs_peers            numeric(8,2),
    student_teacher_ratio_vs_peers numeric(8,2),
    swd_pct_vs_peers               numeric(8,2),
    ell_pct_vs_peers               numeric(8,2),
    math_proficiency_vs_peers      numeric(8,2),
    read_proficiency_vs_peers      numeric(8,2),
    expenditure_pp_vs_peers        numeric(8,2),
    out_of_range                  smallint     NOT NULL DEFAULT 0
);
COMMENT ON TABLE public._benchmarks_peer_inputs IS
    'Internal to compute_peer_groups(): what the stored peer groups and vs_peers differences were computed from, '
    'one row per district eligible at the time, so that a rerun on unchanged data writes nothing and skips the '
    'search. Emptied by any write to district_peers other than the function''s own. No grants.';
REVOKE ALL ON TABLE public._benchmarks_peer_inputs FROM PUBLIC;

GRANT SELECT ON public.district_peers TO district_benchmarks_reader, district_benchmarks_operator;

-- the long-form view: the existing columns unchanged, then the peer figures
CREATE OR REPLACE VIEW public.district_benchmarks AS
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
       m.trend_3yr,
       m.value - m.vs_peers AS peer_avg,
       m.vs_peers
  FROM public.districts d
  LEFT JOIN public.states s  ON s.fips = d.state_fips
  LEFT JOIN public.states n ON n.fips = '00'
  CROSS JOIN LATERAL (VALUES
    ('absenteeism'::text,     d.chronic_absenteeism_rate::numeric, s.avg_chronic_absenteeism_rate::numeric, n.avg_chronic_absenteeism_rate::numeric,
                              d.absenteeism_vs_state, d.absenteeism_vs_national, d.absenteeism_quartile_state, d.absenteeism_trend_3yr,
                              d.absenteeism_vs_peers),
    ('graduation',            d.graduation_rate_total, s.avg_graduation_rate, n.avg_graduation_rate,
                              d.graduation_vs_state, d.graduation_vs_national, d.graduation_quartile_state, d.graduation_trend_3yr,
                              d.graduation_vs_peers),
    ('student_teacher_ratio', d.student_teacher_ratio, s.avg_student_teacher_ratio, n.avg_student_teacher_ratio,
                              d.student_teacher_ratio_vs_state, d.student_teacher_ratio_vs_national,
                              d.student_teacher_ratio_quartile_state, d.student_teacher_ratio_trend_3yr,
                              d.student_teacher_ratio_vs_peers),
    ('swd_pct',               d.swd_pct, s.avg_swd_pct, n.avg_swd_pct,
                              d.swd_pct_vs_state, d.swd_pct_vs_national, d.swd_pct_quartile_state, d.swd_trend_3yr,
                              d.swd_pct_vs_peers),
    ('ell_pct',               d.ell_pct, s.avg_ell_pct, n.avg_ell_pct,
                              d.ell_pct_vs_state, d.ell_pct_vs_national, d.ell_pct_quartile_state, d.ell_trend_3yr,
                              d.ell_pct_vs_peers),
    ('math_proficiency',      d.math_proficiency_pct, s.avg_math_proficiency, n.avg_math_proficiency,
                              d.math_proficiency_vs_state, d.math_proficiency_vs_national,
                              d.math_proficiency_quartile_state, d.math_proficiency_trend_3yr,
                              d.math_proficiency_vs_peers),
    ('read_proficiency',      d.read_proficiency_pct, s.avg_read_proficiency, n.avg_read_proficiency,
                              d.read_proficiency_vs_state, d.read_proficiency_vs_national,
                              d.read_proficiency_quartile_state, d.read_proficiency_trend_3yr,
                              d.read_proficiency_vs_peers),
    ('expenditure_pp',        d.expenditure_per_pupil, s.avg_expenditure_per_pupil, n.avg_expenditure_per_pupil,
                              d.expenditure_pp_vs_state, d.expenditure_pp_vs_national,
                              d.expenditure_pp_quartile_state, d.expenditure_pp_trend_3yr,
                              d.expenditure_pp_vs_peers)
  ) AS m (metric, value, state_avg, national_avg, vs_state, vs_national, quartile_state, trend_3yr, vs_peers);

COMMENT ON VIEW public.district_benchmarks IS
  'One row per district and metric: value, state and national averages, deltas, within-state tier, 3-year trend, '
  'and the comparison with the district''s peer group (peer_avg = value - vs_peers).';
