/*
 * _benchmarks_peer_values() RETURNS integer — the number of district_peers rows it changed
 * Internal: no EXECUTE for PUBLIC or the operator role.
 *
 * The one implementation of the peer-group rules, shared by compute_peer_groups() and compute_all_benchmarks().
 * Writes district_peers and its record public._benchmarks_peer_inputs; leaves the districts' new {m}_vs_peers for
 * the eight metrics m (absenteeism, graduation, student_teacher_ratio, swd_pct, ell_pct, math_proficiency,
 * read_proficiency, expenditure_pp) in pg_temp.benchmarks_peer_differences (leaid, the eight {m}_vs_peers): one
 * row per district whose stored differences must change, for the caller to write (and drop). Reads the stored
 * current values, except swd_pct / ell_pct, which come from the caller's temporary table
 * pg_temp.benchmarks_district_values (leaid, swd_pct, ell_pct, ...), as for _benchmarks_delta_values().
 *
 * The rules:
 *   - Eligible: enrollment > 0 and children_poverty_percent, ell_pct, swd_pct all present (a negative value
 *     counts as missing). An ineligible district has no peers and NULL differences.
 *   - Features of an eligible district: ln(enrollment), children_poverty_percent, ell_pct, swd_pct, each
 *     standardised over the eligible districts, z = (x − mean) ÷ population standard deviation, in double
 *     precision. Mean and variance are plain sums taken in leaid order, so equal inputs always give bit-equal
 *     distances. A feature whose values are all equal (no spread) is left out (z = 0 for everyone).
 *   - Distance: Euclidean between z vectors, sqrt of the sum of the squared differences in feature order.
 *   - Peers: the K = 40 other eligible districts nearest to it, nationwide; equal distances ranked by peer_leaid;
 *     peer_rank 1..K. With K or fewer other eligible districts, all of them.
 *   - {m}_vs_peers = the district's value of m (the columns of compute_deltas_quartiles(), negative = NULL) minus
 *     the unweighted mean of its peers' values that are present, in numeric, round(x, 2); NULL when its value is
 *     missing, it has no peers, or fewer than 10 peers have a value. A result that does not fit numeric(8,2) is
 *     NULL and counted in district_benchmarks.out_of_range (as the other steps).
 *   - Only rows whose values change are written (district_peers here, districts by the caller); a rerun on
 *     unchanged data writes nothing.
 *
 * How (set-based: no loop over districts, a loop over grid levels). All bounds below carry a slack of 1e-9,
 * far above the rounding of these double-precision distances.
 *   1. The record. For every district eligible when the stored rows were computed, _benchmarks_peer_inputs keeps
 *      its features and metric values, its differences, and three bounds on its stored distances: gap (every
 *      non-peer was at least this far), reach (no peer farther) and spacing (consecutive peers at least this
 *      far apart). Any write to district_peers but this function's empties it (_benchmarks_peers_written.sql).
 *   2. Nothing changed: when every eligible district, its features and values are as recorded (and no other
 *      district is eligible or has differences), one query over districts finds it and the function returns 0;
 *      stored differences that are not the recorded ones are handed back as changes. When only metric values
 *      changed, the peers stand: the differences are recomputed where a value changed.
 *   3. Features changed, untouched districts. Between two districts whose features did not change, each feature's
 *      z difference is scaled by s_old / s_new (its old over its new standard deviation), so the new distance
 *      lies between lambda_min and lambda_max times the old one. A district p whose features did not change,
 *      none of whose stored peers moved (changed features) or left, keeps its peers when
 *          lambda_max × reach + 1e-9  <  T(p) = lambda_min × gap − 1e-9,
 *      and no moved or new district lies within T(p) (a grid range search over the moved ones only): every
 *      other district is then farther than every stored peer. When also
 *          lambda_min × spacing − (lambda_max − lambda_min) × reach > 2e-9,
 *      the order of its peers cannot change either: only the distances are rewritten, in one UPDATE that streams
 *      through district_peers. Its new bounds are T(p), lambda_max × reach + 1e-9 and that spacing expression.
 *   4. Everyone else: an untouched district that failed only the order test or found moved districts within
 *      T(p) re-ranks its stored peers and those; the others are searched exactly on a grid. Level L has cells
 *      of side h = h0 × 1.5^L over the z vectors. A query point p with radius r (at most h(1 − 1e-9)) takes as
 *      candidates the points of the 3^4 cells around its own, less the cells farther than r from p: every point
 *      within r of p differs from it by less than h in each feature, so it lies in one of them. Candidates within
 *      r are kept. p is done when it has at least K of them (its K nearest are then among them, exactly, ties
 *      included), else it moves up a level (a larger jump when it found few) and is searched again. r starts 5 %
 *      beyond the new distance to its farthest stored peer when all K are still eligible (one round then
 *      suffices), else at h; a level whose h covers all points ends every search. With K or fewer others, all
 *      pairs.
 *      Their bounds are exact: gap = distance of the (K+1)-th candidate (else the radius searched), reach and
 *      spacing from the new distances.
 *   5. Writes. Only changed rows; a peer that stays keeps its row (rank and distance updated, HOT when only the
 *      distance changes), a peer that leaves hands its row to one that enters (one foreign-key check instead of
 *      two), the rest are deleted or inserted; ranks are permuted within one UPDATE, hence the deferrable primary
 *      key. Differences are recomputed for districts with new values or new peers, or with a peer with new
 *      values, from district_peers as written; the others are the recorded ones.
 */
CREATE OR REPLACE FUNCTION public._benchmarks_peer_values()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'
SET max_parallel_workers_per_gather = 0
SET enable_mergejoin = off
AS $function$
DECLARE
    c_k          CONSTANT integer          := 40;       -- peers per district
    c_min_values CONSTANT integer          := 10;       -- peers with a value needed for a difference
    c_cells      CONSTANT bigint           := 32768;    -- cell coordinates per feature in a grid key
    c_growth     CONSTANT double precision := 1.5;      -- ratio of successive grid levels
    c_margin     CONSTANT double precision := 1e-9;     -- slack for rounding in the bounds (distances are ~1)
    v_cached        integer;
    v_moved         integer;
    v_revalued      integer;
    v_stale         integer;
    v_search        boolean;
    v_n             integer := 0;
    v_n_old         integer := 0;
    v_dims          integer;
    v_m1 double precision; v_m2 double precision; v_m3 double precision; v_m4 double precision;
    v_s1 double precision; v_s2 double precision; v_s3 double precision; v_s4 double precision;
    v_o1 double precision; v_o2 double precision; v_o3 double precision; v_o4 double precision;
    v_min1 double precision; v_min2 double precision; v_min3 double precision; v_min4 double precision;
    v_max_range     double precision;
    v_lambda_min    double precision;   -- NULL: no district keeps its stored peers without a search
    v_lambda_max    double precision;
    v_ranges        boolean;
    v_moved_leaids  varchar[];          -- the moved districts and those no longer eligible
    v_old_leaids    varchar[];          -- the districts whose stored rows are read (NULL: all)
    v_ctids         tid[];              -- the stored rows that change (fetched by TID scan)
    v_few_moved     boolean;            -- few enough moved districts to range-search them pair by pair
    v_level         integer;
    v_h0            double precision;
    v_h             double precision;
    v_hr            double precision;
    v_start_level   integer;
    v_peer_rows     integer := 0;
    v_streamed      integer := 0;
    v_out_of_range  integer := 0;
BEGIN
    -- the run lock (see compute_all_benchmarks.sql), unless this backend holds it already: a helper runs inside
    -- a definer function that took it, and must not need the right to take it itself
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                    WHERE l.locktype = 'relation' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted
                      AND l.relation = 'public._benchmarks_run_lock'::pg_catalog.regclass
                      AND l.mode IN ('ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')) THEN
        LOCK TABLE public._benchmarks_run_lock IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    -- the differences to write, filled at the end (the caller drops the table)
    CREATE TEMPORARY TABLE benchmarks_peer_differences (
        leaid varchar(7), absenteeism_vs_peers numeric, graduation_vs_peers numeric,
        student_teacher_ratio_vs_peers numeric, swd_pct_vs_peers numeric, ell_pct_vs_peers numeric,
        math_proficiency_vs_peers numeric, read_proficiency_vs_peers numeric, expenditure_pp_vs_peers numeric)
        ON COMMIT DROP;

    -- 2. The common case first, in one pass: the eligible districts, their features and metric values are those
    -- recorded, and the stored differences are the recorded ones (NULL for an ineligible district).
    SELECT count(c.leaid),
           count(*) FILTER (WHERE d.leaid IS NULL OR c.leaid IS NULL
                               OR (d.enrollment, d.poverty, d.ell, d.swd, d.absenteeism, d.graduation, d.ratio, d.math,
                                   d.read, d.expenditure)
                                  IS DISTINCT FROM
                                  (c.enrollment, c.children_poverty_percent, c.ell_pct, c.swd_pct, c.absenteeism,
                                   c.graduation, c.student_teacher_ratio, c.math_proficiency, c.read_proficiency,
                                   c.expenditure_pp)),
           count(*) FILTER (WHERE (d.absenteeism_vs_peers, d.graduation_vs_peers, d.student_teacher_ratio_vs_peers,
                                   d.swd_pct_vs_peers, d.ell_pct_vs_peers, d.math_proficiency_vs_peers,
                                   d.read_proficiency_vs_peers, d.expenditure_pp_vs_peers)
                                  IS DISTINCT FROM
                                  (c.absenteeism_vs_peers, c.graduation_vs_peers, c.student_teacher_ratio_vs_peers,
                                   c.swd_pct_vs_peers, c.ell_pct_vs_peers, c.math_proficiency_vs_peers,
                                   c.read_proficiency_vs_peers, c.expenditure_pp_vs_peers)),
           coalesce(sum(c.out_of_range), 0)
      INTO v_cached, v_moved, v_stale, v_out_of_range
      FROM (SELECT d.leaid, d.enrollment, d.children_poverty_percent AS poverty, p.ell_pct AS ell, p.swd_pct AS swd,
                   d.chronic_absenteeism_rate AS absenteeism, d.graduation_rate_total AS graduation,
                   d.student_teacher_ratio AS ratio, d.math_proficiency_pct AS math, d.read_proficiency_pct AS read,
                   d.expenditure_per_pupil AS expenditure, d.absenteeism_vs_peers, d.graduation_vs_peers,
                   d.student_teacher_ratio_vs_peers, d.swd_pct_vs_peers, d.ell_pct_vs_peers,
                   d.math_proficiency_vs_peers, d.read_proficiency_vs_peers, d.expenditure_pp_vs_peers
              FROM public.districts d
              JOIN pg_temp.benchmarks_district_values p ON p.leaid = d.leaid) d
      FULL JOIN public._benchmarks_peer_inputs c ON c.leaid = d.leaid
     -- a recorded district is in order when all is as recorded (its features as recorded were eligible, so it
     -- still is); one without a record when it is not eligible and its differences are NULL
     WHERE c.leaid IS NOT NULL
        OR coalesce(d.enrollment > 0 AND d.poverty >= 0 AND d.ell >= 0 AND d.swd >= 0, false)
        OR num_nonnulls(d.absenteeism_vs_peers, d.graduation_vs_peers, d.student_teacher_ratio_vs_peers,
                        d.swd_pct_vs_peers, d.ell_pct_vs_peers, d.math_proficiency_vs_peers,
                        d.read_proficiency_vs_peers, d.expenditure_pp_vs_peers) > 0;
    IF v_cached > 0 AND v_moved = 0 THEN
        -- only stored differences that are not the recorded ones (stale): the recorded ones go back
        IF v_stale > 0 THEN
            INSERT INTO pg_temp.benchmarks_peer_differences
                  (leaid, absenteeism_vs_peers, graduation_vs_peers, student_teacher_ratio_vs_peers, swd_pct_vs_peers,
                   ell_pct_vs_peers, math_proficiency_vs_peers, read_proficiency_vs_peers, expenditure_pp_vs_peers)
            SELECT c.leaid, c.absenteeism_vs_peers, c.graduation_vs_peers, c.student_teacher_ratio_vs_peers,
                   c.swd_pct_vs_peers, c.ell_pct_vs_peers, c.math_proficiency_vs_peers, c.read_proficiency_vs_peers,
                   c.expenditure_pp_vs_peers
              FROM public._benchmarks_peer_inputs c
              JOIN public.districts d ON d.leaid = c.leaid
             WHERE (d.absenteeism_vs_peers, d.graduation_vs_peers, d.student_teacher_ratio_vs_peers,
                    d.swd_pct_vs_peers, d.ell_pct_vs_peers, d.math_proficiency_vs_peers, d.read_proficiency_vs_peers,
                    d.expenditure_pp_vs_peers)
                   IS DISTINCT FROM
                   (c.absenteeism_vs_peers, c.graduation_vs_peers, c.student_teacher_ratio_vs_peers, c.swd_pct_vs_peers,
                    c.ell_pct_vs_peers, c.math_proficiency_vs_peers, c.read_proficiency_vs_peers,
                    c.expenditure_pp_vs_peers);
        END IF;
        PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
        RETURN 0;
    END IF;
    v_out_of_range := 0;

    -- every district as it is now: eligible?, features (negative = NULL), the six other metric values as stored
    -- (the record keeps them so; cleaned below), the differences stored
    CREATE TEMPORARY TABLE benchmarks_peer_now ON COMMIT DROP AS
    SELECT d.leaid,
           coalesce(d.enrollment > 0 AND d.children_poverty_percent >= 0 AND p.ell_pct >= 0 AND p.swd_pct >= 0,
                    false)                                                                   AS eligible,
           d.enrollment,
           CASE WHEN d.children_poverty_percent >= 0 THEN d.children_poverty_percent END   AS poverty,
           CASE WHEN p.ell_pct >= 0                  THEN p.ell_pct END                    AS ell,
           CASE WHEN p.swd_pct >= 0                  THEN p.swd_pct END                    AS swd,
           d.chronic_absenteeism_rate AS absenteeism, d.graduation_rate_total AS graduation,
           d.student_teacher_ratio AS ratio, d.math_proficiency_pct AS math, d.read_proficiency_pct AS read,
           d.expenditure_per_pupil AS expenditure,
           d.absenteeism_vs_peers, d.graduation_vs_peers, d.student_teacher_ratio_vs_peers, d.swd_pct_vs_peers,
           d.ell_pct_vs_peers, d.math_proficiency_vs_peers, d.read_proficiency_vs_peers, d.expenditure_pp_vs_peers
      FROM public.districts d
      JOIN pg_temp.benchmarks_district_values p ON p.leaid = d.leaid;

    -- against the record: eligible districts whose features differ (or that are new, or gone), and whose values
    -- differ
    SELECT count(*) FILTER (WHERE c.leaid IS NULL OR n.leaid IS NULL
                               OR (n.enrollment, n.poverty, n.ell, n.swd)
                                  IS DISTINCT FROM (c.enrollment, c.children_poverty_percent, c.ell_pct, c.swd_pct)),
           count(*) FILTER (WHERE (n.absenteeism, n.graduation, n.ratio, n.math, n.read, n.expenditure)
                                  IS DISTINCT FROM (c.absenteeism, c.graduation, c.student_teacher_ratio,
                                                    c.math_proficiency, c.read_proficiency, c.expenditure_pp)),
           count(c.leaid)
      INTO v_moved, v_revalued, v_cached
      FROM (SELECT * FROM pg_temp.benchmarks_peer_now WHERE eligible) n
      FULL JOIN public._benchmarks_peer_inputs c ON c.leaid = n.leaid;
    v_search := v_cached = 0 OR v_moved > 0;

    IF v_search THEN
        -- standardisation now (a feature without spread has s = 0 and is left out)
        WITH x AS (
            SELECT n.leaid, ln(n.enrollment::double precision) AS x1, n.poverty::double precision AS x2,
                   n.ell::double precision AS x3, n.swd::double precision AS x4
              FROM pg_temp.benchmarks_peer_now n WHERE n.eligible
        ),
        m AS (
            SELECT count(*) AS n,
                   sum(x.x1 ORDER BY x.leaid COLLATE "C") / count(*) AS m1,
                   sum(x.x2 ORDER BY x.leaid COLLATE "C") / count(*) AS m2,
                   sum(x.x3 ORDER BY x.leaid COLLATE "C") / count(*) AS m3,
                   sum(x.x4 ORDER BY x.leaid COLLATE "C") / count(*) AS m4,
                   min(x.x1) < max(x.x1) AS spread1, min(x.x2) < max(x.x2) AS spread2,
                   min(x.x3) < max(x.x3) AS spread3, min(x.x4) < max(x.x4) AS spread4
              FROM x
        )
        SELECT m.n, m.m1, m.m2, m.m3, m.m4,
               CASE WHEN m.spread1 THEN sqrt(sum((x.x1 - m.m1) * (x.x1 - m.m1) ORDER BY x.leaid COLLATE "C") / m.n)
                    ELSE 0 END,
               CASE WHEN m.spread2 THEN sqrt(sum((x.x2 - m.m2) * (x.x2 - m.m2) ORDER BY x.leaid COLLATE "C") / m.n)
                    ELSE 0 END,
               CASE WHEN m.spread3 THEN sqrt(sum((x.x3 - m.m3) * (x.x3 - m.m3) ORDER BY x.leaid COLLATE "C") / m.n)
                    ELSE 0 END,
               CASE WHEN m.spread4 THEN sqrt(sum((x.x4 - m.m4) * (x.x4 - m.m4) ORDER BY x.leaid COLLATE "C") / m.n)
                    ELSE 0 END
          INTO v_n, v_m1, v_m2, v_m3, v_m4, v_s1, v_s2, v_s3, v_s4
          FROM x, m
         GROUP BY m.n, m.m1, m.m2, m.m3, m.m4, m.spread1, m.spread2, m.spread3, m.spread4;
        -- and when the stored peers were computed (from the record): only for the scale factors below, which
        -- need it to far better than their 1e-9 slack but not bit for bit
        SELECT count(*),
               CASE WHEN min(c.enrollment) < max(c.enrollment) THEN stddev_pop(ln(c.enrollment::double precision)) ELSE 0 END,
               CASE WHEN min(c.children_poverty_percent) < max(c.children_poverty_percent)
                    THEN stddev_pop(c.children_poverty_percent::double precision) ELSE 0 END,
               CASE WHEN min(c.ell_pct) < max(c.ell_pct) THEN stddev_pop(c.ell_pct::double precision) ELSE 0 END,
               CASE WHEN min(c.swd_pct) < max(c.swd_pct) THEN stddev_pop(c.swd_pct::double precision) ELSE 0 END
          INTO v_n_old, v_o1, v_o2, v_o3, v_o4
          FROM public._benchmarks_peer_inputs c;
        v_n := coalesce(v_n, 0);
        v_n_old := coalesce(v_n_old, 0);

        -- 3. the distance scale factors between districts whose features did not change: only when the same
        -- features have spread now as then, and both times every district had more than K others
        IF v_cached > 0 AND v_n - 1 > c_k AND v_n_old - 1 > c_k
           AND (v_s1 > 0) = (v_o1 > 0) AND (v_s2 > 0) = (v_o2 > 0) AND (v_s3 > 0) = (v_o3 > 0)
           AND (v_s4 > 0) = (v_o4 > 0) THEN
            SELECT coalesce(min(f.ratio), 1), coalesce(max(f.ratio), 1) INTO v_lambda_min, v_lambda_max
              FROM (VALUES (CASE WHEN v_s1 > 0 THEN v_o1 / v_s1 END), (CASE WHEN v_s2 > 0 THEN v_o2 / v_s2 END),
                           (CASE WHEN v_s3 > 0 THEN v_o3 / v_s3 END), (CASE WHEN v_s4 > 0 THEN v_o4 / v_s4 END)) f(ratio);
        END IF;
    END IF;

    -- the eligible districts: id in leaid order (so ordering by id is ordering by leaid), z vector (when
    -- searching), stable = features as recorded, revalued = not recorded or metric values not as recorded, the
    -- recorded bounds, the values and, for the means, the values as integer cents
    CREATE TEMPORARY TABLE benchmarks_peer_points ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY n.leaid COLLATE "C")::integer AS id,
           n.leaid,
           CASE WHEN v_s1 > 0 THEN (ln(n.enrollment::double precision) - v_m1) / v_s1 ELSE 0 END AS z1,
           CASE WHEN v_s2 > 0 THEN (n.poverty::double precision - v_m2) / v_s2 ELSE 0 END          AS z2,
           CASE WHEN v_s3 > 0 THEN (n.ell::double precision - v_m3) / v_s3 ELSE 0 END              AS z3,
           CASE WHEN v_s4 > 0 THEN (n.swd::double precision - v_m4) / v_s4 ELSE 0 END              AS z4,
           coalesce((n.enrollment, n.poverty, n.ell, n.swd)
                    = (c.enrollment, c.children_poverty_percent, c.ell_pct, c.swd_pct), false)    AS stable,
           c.leaid IS NULL
               OR (n.absenteeism, n.graduation, n.ratio, n.swd, n.ell, n.math, n.read, n.expenditure)
                  IS DISTINCT FROM (c.absenteeism, c.graduation, c.student_teacher_ratio, c.swd_pct, c.ell_pct,
                                    c.math_proficiency, c.read_proficiency, c.expenditure_pp)  AS revalued,
           c.gap, c.reach, c.spacing,
           false AS touched, false AS streamed,
           n.enrollment, n.poverty, n.ell, n.swd, v.absenteeism, v.graduation, v.ratio, v.math, v.read,
           v.expenditure,
           (v.absenteeism * 100)::bigint AS c_absenteeism, (v.graduation * 100)::bigint AS c_graduation,
           (v.ratio * 100)::bigint       AS c_ratio,       (n.swd * 100)::bigint        AS c_swd,
           (n.ell * 100)::bigint         AS c_ell,         (v.math * 100)::bigint       AS c_math,
           (v.read * 100)::bigint        AS c_read,        (v.expenditure * 100)::bigint AS c_expenditure
      FROM pg_temp.benchmarks_peer_now n
      CROSS JOIN LATERAL (SELECT CASE WHEN n.absenteeism >= 0 THEN n.absenteeism END AS absenteeism,
                                 CASE WHEN n.graduation >= 0  THEN n.graduation END  AS graduation,
                                 CASE WHEN n.ratio >= 0       THEN n.ratio END       AS ratio,
                                 CASE WHEN n.math >= 0        THEN n.math END        AS math,
                                 CASE WHEN n.read >= 0        THEN n.read END        AS read,
                                 CASE WHEN n.expenditure >= 0 THEN n.expenditure END AS expenditure) v
      LEFT JOIN public._benchmarks_peer_inputs c ON c.leaid = n.leaid
     WHERE n.eligible;
    IF v_search THEN
        ANALYZE pg_temp.benchmarks_peer_points;
    END IF;

    -- the districts whose differences are computed (the others' are as recorded)
    CREATE TEMPORARY TABLE benchmarks_peer_redo (id integer) ON COMMIT DROP;

    IF v_search THEN
        -- the new record's bounds, per district
        CREATE TEMPORARY TABLE benchmarks_peer_bounds (id integer, gap double precision, reach double precision,
                                                       spacing double precision) ON COMMIT DROP;
        -- (id, peer_id, d) of each district whose peers are chosen from candidates, with the stored row when the
        -- candidate is a stored peer
        CREATE TEMPORARY TABLE benchmarks_peer_cand (id integer, peer_id integer, d double precision, row_ctid tid,
                                                     old_rank smallint, old_distance double precision) ON COMMIT DROP;
        -- the queries: a search (its K nearest among all) or a range (every moved district within r)
        CREATE TEMPORARY TABLE benchmarks_peer_search (id integer, is_search boolean, r double precision,
                                                       lvl integer, done boolean, gap_cap double precision)
            ON COMMIT DROP;

        SELECT min(p.z1), min(p.z2), min(p.z3), min(p.z4),
               greatest(max(p.z1) - min(p.z1), max(p.z2) - min(p.z2), max(p.z3) - min(p.z3), max(p.z4) - min(p.z4))
          INTO v_min1, v_min2, v_min3, v_min4, v_max_range
          FROM pg_temp.benchmarks_peer_points p;
        v_dims := (v_s1 > 0)::integer + (v_s2 > 0)::integer + (v_s3 > 0)::integer + (v_s4 > 0)::integer;
        -- the grid: h0 keeps every cell coordinate below c_cells - 1; levels of ratio 1.5 from there. A search
        -- without a radius starts near the radius holding K of v_n points at the centre of a standard normal
        -- cloud in v_dims dimensions (density (2 pi)^(-D/2), ball volume V_D r^D)
        v_h0 := CASE WHEN v_max_range > 0 THEN v_max_range / (c_cells - 2) ELSE 1 END;
        v_h := power(c_k / (greatest(v_n, 1) * power(2 * pi(), -greatest(v_dims, 1) / 2.0)
                            * CASE greatest(v_dims, 1) WHEN 1 THEN 2 WHEN 2 THEN pi() WHEN 3 THEN 4 * pi() / 3
                                                       ELSE pi() * pi() / 2 END),
                     1.0 / greatest(v_dims, 1));
        v_start_level := greatest(0, ceil(ln(greatest(v_h, v_h0) / v_h0) / ln(c_growth)))::integer;
        -- the 3^4 neighbouring cells (only offset 0 for a feature left out), as key deltas
        CREATE TEMPORARY TABLE benchmarks_peer_offsets ON COMMIT DROP AS
        SELECT o1, o2, o3, o4, o1 * c_cells * c_cells * c_cells + o2 * c_cells * c_cells + o3 * c_cells + o4 AS delta
          FROM generate_series(-1, 1) o1, generate_series(-1, 1) o2, generate_series(-1, 1) o3,
               generate_series(-1, 1) o4
         WHERE (o1 = 0 OR v_s1 > 0) AND (o2 = 0 OR v_s2 > 0) AND (o3 = 0 OR v_s3 > 0) AND (o4 = 0 OR v_s4 > 0);
        CREATE TEMPORARY TABLE benchmarks_peer_round (id integer, peer_id integer, d double precision) ON COMMIT DROP;

        IF v_lambda_min IS NOT NULL THEN
            -- 3. touched: a stored peer moved or is no longer eligible (an index scan per such district)
            SELECT array_agg(m.leaid) INTO v_moved_leaids
              FROM (SELECT p.leaid FROM pg_temp.benchmarks_peer_points p WHERE NOT p.stable
                    UNION ALL
                    SELECT c.leaid FROM public._benchmarks_peer_inputs c
                     WHERE NOT EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_now n
                                        WHERE n.leaid = c.leaid AND n.eligible)) m;
            UPDATE pg_temp.benchmarks_peer_points p SET touched = true
              FROM (SELECT DISTINCT dp.leaid FROM public.district_peers dp
                     WHERE dp.peer_leaid = ANY (v_moved_leaids)) t
             WHERE p.leaid = t.leaid;
            -- the untouched districts that keep their peers: a range search over the moved districts within T(p)
            INSERT INTO pg_temp.benchmarks_peer_search (id, is_search, r, lvl, done)
            SELECT p.id, false, v_lambda_min * p.gap - c_margin,
                   greatest(0, ceil(ln(greatest(v_lambda_min * p.gap - c_margin, v_h0) / (v_h0 * (1 - c_margin)))
                                    / ln(c_growth)))::integer,
                   false
              FROM pg_temp.benchmarks_peer_points p
             WHERE p.stable AND NOT p.touched
               AND v_lambda_max * p.reach + c_margin < v_lambda_min * p.gap - c_margin;
            v_few_moved := (SELECT count(*) FROM pg_temp.benchmarks_peer_points m WHERE NOT m.stable) <= 64;
        END IF;

        -- the ranges first (targets: the moved districts only), then the searches (targets: all)
        FOREACH v_ranges IN ARRAY ARRAY[true, false] LOOP
            IF NOT v_ranges THEN
                -- streamed: kept, nothing moved within T(p), and the order of its peers cannot change
                UPDATE pg_temp.benchmarks_peer_points p SET streamed = true
                  FROM pg_temp.benchmarks_peer_search s
                 WHERE s.id = p.id AND NOT s.is_search
                   AND NOT EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_cand c WHERE c.id = s.id)
                   AND v_lambda_min * p.spacing - (v_lambda_max - v_lambda_min) * p.reach > 2 * c_margin;
                ANALYZE pg_temp.benchmarks_peer_points;  -- how many are streamed decides the plans below
                -- everyone else needs the stored rows: the new distances (hints for a search, candidates for a
                -- kept district), and the rows of districts no longer eligible (to be deleted). With streamed
                -- districts, the others' rows by index (the record names every district with rows); else all.
                IF EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_points p WHERE p.streamed) THEN
                    SELECT array_agg(k.leaid) INTO v_old_leaids
                      FROM (SELECT p.leaid FROM pg_temp.benchmarks_peer_points p WHERE NOT p.streamed
                            UNION ALL
                            SELECT c.leaid FROM public._benchmarks_peer_inputs c
                             WHERE NOT EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_points p WHERE p.leaid = c.leaid)) k;
                END IF;
                CREATE TEMPORARY TABLE benchmarks_peer_old ON COMMIT DROP AS
                SELECT dp.ctid AS row_ctid, dp.peer_rank, dp.distance, p.id, q.id AS peer_id,
                       sqrt((p.z1 - q.z1) * (p.z1 - q.z1) + (p.z2 - q.z2) * (p.z2 - q.z2)
                            + (p.z3 - q.z3) * (p.z3 - q.z3) + (p.z4 - q.z4) * (p.z4 - q.z4)) AS d
                  FROM public.district_peers dp
                  LEFT JOIN pg_temp.benchmarks_peer_points p ON p.leaid = dp.leaid
                  LEFT JOIN pg_temp.benchmarks_peer_points q ON q.leaid = dp.peer_leaid
                 WHERE v_old_leaids IS NULL OR dp.leaid = ANY (v_old_leaids);
                ANALYZE pg_temp.benchmarks_peer_old;
                -- kept districts that are not streamed: their stored peers (all stable) join the moved ones found
                INSERT INTO pg_temp.benchmarks_peer_cand (id, peer_id, d, row_ctid, old_rank, old_distance)
                SELECT o.id, o.peer_id, o.d, o.row_ctid, o.peer_rank, o.distance
                  FROM pg_temp.benchmarks_peer_old o
                  JOIN pg_temp.benchmarks_peer_search s ON s.id = o.id AND NOT s.is_search;
                UPDATE pg_temp.benchmarks_peer_cand c
                   SET row_ctid = o.row_ctid, old_rank = o.peer_rank, old_distance = o.distance
                  FROM pg_temp.benchmarks_peer_old o
                 WHERE c.row_ctid IS NULL AND o.id = c.id AND o.peer_id = c.peer_id;
                -- the searches: every other district, with a radius 5 % beyond the new distance to its farthest
                -- stored peer when all K are still eligible (beyond: so that the next non-peer is usually found,
                -- and the recorded gap is its distance, not the K-th). With K or fewer others, all pairs instead.
                IF v_n - 1 <= c_k THEN
                    INSERT INTO pg_temp.benchmarks_peer_cand (id, peer_id, d, row_ctid, old_rank, old_distance)
                    SELECT p.id, q.id,
                           sqrt((p.z1 - q.z1) * (p.z1 - q.z1) + (p.z2 - q.z2) * (p.z2 - q.z2)
                                + (p.z3 - q.z3) * (p.z3 - q.z3) + (p.z4 - q.z4) * (p.z4 - q.z4)),
                           o.row_ctid, o.peer_rank, o.distance
                      FROM pg_temp.benchmarks_peer_points p
                      JOIN pg_temp.benchmarks_peer_points q ON q.id <> p.id
                      LEFT JOIN pg_temp.benchmarks_peer_old o ON o.id = p.id AND o.peer_id = q.id;
                ELSE
                    INSERT INTO pg_temp.benchmarks_peer_search (id, is_search, r, lvl, done)
                    SELECT p.id, true, h.r,
                           CASE WHEN h.r IS NULL THEN v_start_level
                                ELSE greatest(0, ceil(ln(greatest(h.r, v_h0) / (v_h0 * (1 - c_margin)))
                                                      / ln(c_growth)))::integer END,
                           false
                      FROM pg_temp.benchmarks_peer_points p
                      LEFT JOIN (SELECT o.id, 1.05 * max(o.d) + c_margin AS r FROM pg_temp.benchmarks_peer_old o
                                  GROUP BY o.id HAVING count(o.d) >= c_k) h ON h.id = p.id
                     WHERE NOT EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_search s WHERE s.id = p.id);
                END IF;
            END IF;

            IF v_ranges AND v_few_moved THEN
                -- few moved districts: each range pair by pair
                INSERT INTO pg_temp.benchmarks_peer_cand (id, peer_id, d)
                SELECT c.id, c.peer_id, c.d
                  FROM (SELECT s.id, m.id AS peer_id, s.r,
                               sqrt((p.z1 - m.z1) * (p.z1 - m.z1) + (p.z2 - m.z2) * (p.z2 - m.z2)
                                    + (p.z3 - m.z3) * (p.z3 - m.z3) + (p.z4 - m.z4) * (p.z4 - m.z4)) AS d
                          FROM pg_temp.benchmarks_peer_search s
                          JOIN pg_temp.benchmarks_peer_points p ON p.id = s.id
                          JOIN pg_temp.benchmarks_peer_points m ON NOT m.stable AND m.id <> s.id
                         WHERE NOT s.done AND NOT s.is_search
                        OFFSET 0) c
                 WHERE c.d <= c.r;
                UPDATE pg_temp.benchmarks_peer_search SET done = true, gap_cap = r WHERE NOT is_search;
            END IF;
            LOOP
                SELECT min(s.lvl) INTO v_level FROM pg_temp.benchmarks_peer_search s
                 WHERE NOT s.done AND s.is_search = NOT v_ranges;
                EXIT WHEN v_level IS NULL;
                v_h := v_h0 * power(c_growth, v_level);
                v_hr := v_h * (1 - c_margin);

                TRUNCATE pg_temp.benchmarks_peer_round;
                INSERT INTO pg_temp.benchmarks_peer_round (id, peer_id, d)
                SELECT c.id, c.peer_id, c.d
                  FROM (SELECT pr.id, t.id AS peer_id, pr.r,
                               sqrt((pr.z1 - t.z1) * (pr.z1 - t.z1) + (pr.z2 - t.z2) * (pr.z2 - t.z2)
                                    + (pr.z3 - t.z3) * (pr.z3 - t.z3) + (pr.z4 - t.z4) * (pr.z4 - t.z4)) AS d
                          FROM (SELECT q.id, q.r, q.z1, q.z2, q.z3, q.z4, q.key + o.delta AS key
                                  FROM (SELECT s.id, least(s.r, v_hr) AS r, p.z1, p.z2, p.z3, p.z4,
                                               (p.z1 - v_min1) - floor((p.z1 - v_min1) / v_h) * v_h AS f1,
                                               (p.z2 - v_min2) - floor((p.z2 - v_min2) / v_h) * v_h AS f2,
                                               (p.z3 - v_min3) - floor((p.z3 - v_min3) / v_h) * v_h AS f3,
                                               (p.z4 - v_min4) - floor((p.z4 - v_min4) / v_h) * v_h AS f4,
                                               floor((p.z1 - v_min1) / v_h)::bigint * c_cells * c_cells * c_cells
                                               + floor((p.z2 - v_min2) / v_h)::bigint * c_cells * c_cells
                                               + floor((p.z3 - v_min3) / v_h)::bigint * c_cells
                                               + floor((p.z4 - v_min4) / v_h)::bigint AS key
                                          FROM pg_temp.benchmarks_peer_search s
                                          JOIN pg_temp.benchmarks_peer_points p ON p.id = s.id
                                         WHERE s.lvl = v_level AND NOT s.done AND s.is_search = NOT v_ranges
                                        OFFSET 0) q
                                 CROSS JOIN pg_temp.benchmarks_peer_offsets o
                                 -- the cell's nearest point to p is within r (f: p's offset in its own cell)
                                 WHERE CASE o.o1 WHEN -1 THEN q.f1 * q.f1 WHEN 1 THEN (v_h - q.f1) * (v_h - q.f1) ELSE 0 END
                                     + CASE o.o2 WHEN -1 THEN q.f2 * q.f2 WHEN 1 THEN (v_h - q.f2) * (v_h - q.f2) ELSE 0 END
                                     + CASE o.o3 WHEN -1 THEN q.f3 * q.f3 WHEN 1 THEN (v_h - q.f3) * (v_h - q.f3) ELSE 0 END
                                     + CASE o.o4 WHEN -1 THEN q.f4 * q.f4 WHEN 1 THEN (v_h - q.f4) * (v_h - q.f4) ELSE 0 END
                                       <= (q.r + c_margin) * (q.r + c_margin)
                               ) pr
                          JOIN (SELECT p.id, p.z1, p.z2, p.z3, p.z4,
                                       floor((p.z1 - v_min1) / v_h)::bigint * c_cells * c_cells * c_cells
                                       + floor((p.z2 - v_min2) / v_h)::bigint * c_cells * c_cells
                                       + floor((p.z3 - v_min3) / v_h)::bigint * c_cells
                                       + floor((p.z4 - v_min4) / v_h)::bigint AS key
                                  FROM pg_temp.benchmarks_peer_points p
                                 WHERE NOT v_ranges OR NOT p.stable
                                OFFSET 0) t ON t.key = pr.key
                         WHERE t.id <> pr.id
                        OFFSET 0) c
                 WHERE c.d <= c.r;

                -- complete: every target within the query's radius was a candidate (a range: its radius fits the
                -- level); a search is done with K candidates, else it goes up a level (by more when it found
                -- few) without its radius
                UPDATE pg_temp.benchmarks_peer_search s
                   SET done    = x.done,
                       gap_cap = least(s.r, v_hr),
                       r       = CASE WHEN x.done OR v_ranges THEN s.r END,
                       lvl     = CASE WHEN x.done THEN s.lvl
                                      ELSE s.lvl + greatest(1, ceil(ln(1.2 * power(c_k::double precision / (x.found + 1),
                                                                                1.0 / greatest(v_dims, 1)))
                                                                     / ln(c_growth))::integer) END
                  FROM (SELECT s2.id,
                               CASE WHEN v_ranges THEN s2.r <= v_hr ELSE count(r.peer_id) >= c_k END AS done,
                               count(r.peer_id) AS found
                          FROM pg_temp.benchmarks_peer_search s2
                          LEFT JOIN pg_temp.benchmarks_peer_round r ON r.id = s2.id
                         WHERE s2.lvl = v_level AND NOT s2.done AND s2.is_search = NOT v_ranges
                         GROUP BY s2.id, s2.r) x
                 WHERE s.id = x.id;

                INSERT INTO pg_temp.benchmarks_peer_cand (id, peer_id, d)
                SELECT r.id, r.peer_id, r.d
                  FROM pg_temp.benchmarks_peer_round r
                  JOIN pg_temp.benchmarks_peer_search s ON s.id = r.id AND s.done AND s.lvl = v_level
                                                       AND s.is_search = NOT v_ranges;
            END LOOP;
        END LOOP;

        -- the candidates ranked: nearest first, ties by peer_id (= by peer_leaid); a searched district's stored
        -- rows are matched to its new peers by (district, peer)
        CREATE TEMPORARY TABLE benchmarks_peer_ranked ON COMMIT DROP AS
        SELECT c.id, c.peer_id, c.d, row_number() OVER (PARTITION BY c.id ORDER BY c.d, c.peer_id) AS rn,
               c.row_ctid, c.old_rank, c.old_distance
          FROM pg_temp.benchmarks_peer_cand c;
        UPDATE pg_temp.benchmarks_peer_ranked r
           SET row_ctid = o.row_ctid, old_rank = o.peer_rank, old_distance = o.distance
          FROM pg_temp.benchmarks_peer_old o, pg_temp.benchmarks_peer_search s
         WHERE r.row_ctid IS NULL AND r.rn <= c_k AND s.id = r.id AND s.is_search
           AND o.id = r.id AND o.peer_id = r.peer_id;

        -- what changes in district_peers, apart from the streamed districts: (stored row, its district id, old
        -- rank; district id, peer id, new rank, distance); a row without new values leaves, new values without a
        -- row enter. Ranked candidates beyond K with a row leave; so do stored rows that no candidate matched
        -- (a searched district's former peers, the rows of districts no longer eligible).
        CREATE TEMPORARY TABLE benchmarks_peer_diff ON COMMIT DROP AS
        SELECT r.row_ctid, CASE WHEN r.row_ctid IS NOT NULL THEN r.id END AS old_id, r.old_rank,
               CASE WHEN r.rn <= c_k THEN r.id END AS id, r.peer_id, CASE WHEN r.rn <= c_k THEN r.rn END AS peer_rank,
               r.d AS distance
          FROM pg_temp.benchmarks_peer_ranked r
         WHERE (r.rn <= c_k OR r.row_ctid IS NOT NULL)
           AND (r.row_ctid IS NULL OR r.rn > c_k OR r.old_rank <> r.rn OR r.old_distance <> r.d)
        UNION ALL
        SELECT o.row_ctid, o.id, o.peer_rank, NULL, NULL, NULL, NULL
          FROM pg_temp.benchmarks_peer_old o
         WHERE NOT EXISTS (SELECT 1 FROM pg_temp.benchmarks_peer_ranked r WHERE r.row_ctid = o.row_ctid);

        -- write it in one statement (the primary key is checked at its end, the other constraints row by row): a
        -- peer that stays keeps its row; a leaving peer's row goes to an entering peer of the same district
        SELECT array_agg(f.row_ctid) INTO v_ctids FROM pg_temp.benchmarks_peer_diff f WHERE f.row_ctid IS NOT NULL;
        PERFORM set_config('district_benchmarks.writing_peers', 'on', true);
        WITH leaving AS (
            SELECT f.row_ctid, f.old_id, row_number() OVER (PARTITION BY f.old_id ORDER BY f.old_rank) AS k
              FROM pg_temp.benchmarks_peer_diff f WHERE f.id IS NULL
        ),
        entering AS (
            SELECT f.id, f.peer_id, f.peer_rank, f.distance,
                   row_number() OVER (PARTITION BY f.id ORDER BY f.peer_rank) AS k
              FROM pg_temp.benchmarks_peer_diff f WHERE f.row_ctid IS NULL
        ),
        handed AS MATERIALIZED (
            -- no leaid: delete the row; no row_ctid: insert
            SELECT l.row_ctid, p.leaid, q.leaid AS peer_leaid, e.peer_rank, e.distance
              FROM leaving l
              FULL JOIN entering e ON e.id = l.old_id AND e.k = l.k
              LEFT JOIN pg_temp.benchmarks_peer_points p ON p.id = e.id
              LEFT JOIN pg_temp.benchmarks_peer_points q ON q.id = e.peer_id
        ),
        deleted AS (
            DELETE FROM public.district_peers t USING handed h
             WHERE h.leaid IS NULL AND t.ctid = h.row_ctid AND t.ctid = ANY (v_ctids)
            RETURNING 1
        ),
        updated AS (
            UPDATE public.district_peers t
               SET peer_leaid = coalesce(m.peer_leaid, t.peer_leaid), peer_rank = m.peer_rank, distance = m.distance
              FROM (SELECT f.row_ctid, NULL::varchar AS peer_leaid, f.peer_rank, f.distance
                      FROM pg_temp.benchmarks_peer_diff f WHERE f.row_ctid IS NOT NULL AND f.id IS NOT NULL
                    UNION ALL
                    SELECT h.row_ctid, h.peer_leaid, h.peer_rank, h.distance
                      FROM handed h WHERE h.row_ctid IS NOT NULL AND h.leaid IS NOT NULL) m
             WHERE t.ctid = m.row_ctid AND t.ctid = ANY (v_ctids)
            RETURNING 1
        ),
        inserted AS (
            INSERT INTO public.district_peers (leaid, peer_leaid, peer_rank, distance)
            SELECT h.leaid, h.peer_leaid, h.peer_rank, h.distance FROM handed h WHERE h.row_ctid IS NULL
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM deleted) + (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)
          INTO v_peer_rows;

        -- the streamed districts: same peers, same ranks, new distances, in one pass over district_peers
        UPDATE public.district_peers t
           SET distance = sqrt((p.z1 - q.z1) * (p.z1 - q.z1) + (p.z2 - q.z2) * (p.z2 - q.z2)
                               + (p.z3 - q.z3) * (p.z3 - q.z3) + (p.z4 - q.z4) * (p.z4 - q.z4))
          FROM pg_temp.benchmarks_peer_points p, pg_temp.benchmarks_peer_points q
         WHERE p.streamed AND p.leaid = t.leaid AND q.leaid = t.peer_leaid
           AND t.distance <> sqrt((p.z1 - q.z1) * (p.z1 - q.z1) + (p.z2 - q.z2) * (p.z2 - q.z2)
                                  + (p.z3 - q.z3) * (p.z3 - q.z3) + (p.z4 - q.z4) * (p.z4 - q.z4));
        GET DIAGNOSTICS v_streamed = ROW_COUNT;
        v_peer_rows := v_peer_rows + v_streamed;
        PERFORM set_config('district_benchmarks.writing_peers', 'off', true);

        -- the bounds of the new record: a streamed district's scaled, the others' exact (a search's gap is at
        -- most the radius it searched, a kept district's at most T(p))
        INSERT INTO pg_temp.benchmarks_peer_bounds (id, gap, reach, spacing)
        SELECT p.id, v_lambda_min * p.gap - c_margin, v_lambda_max * p.reach + c_margin,
               v_lambda_min * p.spacing - (v_lambda_max - v_lambda_min) * p.reach - 2 * c_margin
          FROM pg_temp.benchmarks_peer_points p WHERE p.streamed
        UNION ALL
        SELECT r.id,
               least(min(r.d) FILTER (WHERE r.rn = c_k + 1), min(s.gap_cap), min(s.r) FILTER (WHERE NOT s.is_search)),
               max(r.d) FILTER (WHERE r.rn <= c_k),
               coalesce(min(r.next_d - r.d) FILTER (WHERE r.rn < c_k AND r.next_d IS NOT NULL), 0)
          FROM (SELECT r.id, r.d, r.rn, lead(r.d) OVER (PARTITION BY r.id ORDER BY r.rn) AS next_d
                  FROM pg_temp.benchmarks_peer_ranked r WHERE r.rn <= c_k + 1) r
          LEFT JOIN pg_temp.benchmarks_peer_search s ON s.id = r.id
         GROUP BY r.id;

        -- differences to compute: districts with new values or not recorded, whose peers changed, or with a
        -- peer with new values (from district_peers as written)
        INSERT INTO pg_temp.benchmarks_peer_redo (id)
        SELECT p.id FROM pg_temp.benchmarks_peer_points p WHERE p.revalued
        UNION
        SELECT f.old_id FROM pg_temp.benchmarks_peer_diff f WHERE f.id IS NULL AND f.old_id IS NOT NULL
        UNION
        SELECT f.id FROM pg_temp.benchmarks_peer_diff f WHERE f.row_ctid IS NULL
        UNION
        SELECT p.id
          FROM public.district_peers dp
          JOIN pg_temp.benchmarks_peer_points q ON q.leaid = dp.peer_leaid AND q.revalued
          JOIN pg_temp.benchmarks_peer_points p ON p.leaid = dp.leaid;
    ELSIF v_revalued > 0 THEN
        -- same peers, new values: districts with new values, or with a peer with new values
        INSERT INTO pg_temp.benchmarks_peer_redo (id)
        SELECT p.id FROM pg_temp.benchmarks_peer_points p WHERE p.revalued
        UNION
        SELECT p.id
          FROM public.district_peers dp
          JOIN pg_temp.benchmarks_peer_points q ON q.leaid = dp.peer_leaid AND q.revalued
          JOIN pg_temp.benchmarks_peer_points p ON p.leaid = dp.leaid;
    END IF;

    -- the differences of every eligible district: computed (value − mean of the peers' values, from sums of
    -- integer cents; unchecked, then NULL where the rounded value does not fit numeric(8,2)), or as recorded
    CREATE TEMPORARY TABLE benchmarks_peer_vs ON COMMIT DROP AS
    SELECT u.leaid,
           CASE WHEN abs(u.absenteeism) < 1e6 THEN u.absenteeism END AS absenteeism_vs_peers,
           CASE WHEN abs(u.graduation) < 1e6  THEN u.graduation END  AS graduation_vs_peers,
           CASE WHEN abs(u.ratio) < 1e6       THEN u.ratio END       AS student_teacher_ratio_vs_peers,
           CASE WHEN abs(u.swd) < 1e6         THEN u.swd END         AS swd_pct_vs_peers,
           CASE WHEN abs(u.ell) < 1e6         THEN u.ell END         AS ell_pct_vs_peers,
           CASE WHEN abs(u.math) < 1e6        THEN u.math END        AS math_proficiency_vs_peers,
           CASE WHEN abs(u.read) < 1e6        THEN u.read END        AS read_proficiency_vs_peers,
           CASE WHEN abs(u.expenditure) < 1e6 THEN u.expenditure END AS expenditure_pp_vs_peers,
           (num_nonnulls(u.absenteeism, u.graduation, u.ratio, u.swd, u.ell, u.math, u.read, u.expenditure)
            - num_nonnulls(CASE WHEN abs(u.absenteeism) < 1e6 THEN 1 END, CASE WHEN abs(u.graduation) < 1e6 THEN 1 END,
                           CASE WHEN abs(u.ratio) < 1e6 THEN 1 END, CASE WHEN abs(u.swd) < 1e6 THEN 1 END,
                           CASE WHEN abs(u.ell) < 1e6 THEN 1 END, CASE WHEN abs(u.math) < 1e6 THEN 1 END,
                           CASE WHEN abs(u.read) < 1e6 THEN 1 END, CASE WHEN abs(u.expenditure) < 1e6 THEN 1 END))::smallint
               AS out_of_range
      FROM (SELECT p.leaid,
                   CASE WHEN a.n_absenteeism >= c_min_values
                        THEN round(p.absenteeism - a.s_absenteeism / (100 * a.n_absenteeism), 2) END AS absenteeism,
                   CASE WHEN a.n_graduation >= c_min_values
                        THEN round(p.graduation - a.s_graduation / (100 * a.n_graduation), 2) END    AS graduation,
                   CASE WHEN a.n_ratio >= c_min_values
                        THEN round(p.ratio - a.s_ratio / (100 * a.n_ratio), 2) END                   AS ratio,
                   CASE WHEN a.n_swd >= c_min_values
                        THEN round(p.swd - a.s_swd / (100 * a.n_swd), 2) END                         AS swd,
                   CASE WHEN a.n_ell >= c_min_values
                        THEN round(p.ell - a.s_ell / (100 * a.n_ell), 2) END                         AS ell,
                   CASE WHEN a.n_math >= c_min_values
                        THEN round(p.math - a.s_math / (100 * a.n_math), 2) END                      AS math,
                   CASE WHEN a.n_read >= c_min_values
                        THEN round(p.read - a.s_read / (100 * a.n_read), 2) END                      AS read,
                   CASE WHEN a.n_expenditure >= c_min_values
                        THEN round(p.expenditure - a.s_expenditure / (100 * a.n_expenditure), 2) END AS expenditure
              FROM pg_temp.benchmarks_peer_points p
              LEFT JOIN (SELECT dp.leaid,
                                count(q.c_absenteeism) AS n_absenteeism, sum(q.c_absenteeism) AS s_absenteeism,
                                count(q.c_graduation) AS n_graduation,   sum(q.c_graduation) AS s_graduation,
                                count(q.c_ratio) AS n_ratio,             sum(q.c_ratio) AS s_ratio,
                                count(q.c_swd) AS n_swd,                 sum(q.c_swd) AS s_swd,
                                count(q.c_ell) AS n_ell,                 sum(q.c_ell) AS s_ell,
                                count(q.c_math) AS n_math,               sum(q.c_math) AS s_math,
                                count(q.c_read) AS n_read,               sum(q.c_read) AS s_read,
                                count(q.c_expenditure) AS n_expenditure, sum(q.c_expenditure) AS s_expenditure
                           FROM public.district_peers dp
                           JOIN pg_temp.benchmarks_peer_points q ON q.leaid = dp.peer_leaid
                          WHERE dp.leaid IN (SELECT x.leaid FROM pg_temp.benchmarks_peer_points x
                                              JOIN pg_temp.benchmarks_peer_redo r ON r.id = x.id)
                          GROUP BY dp.leaid) a ON a.leaid = p.leaid
             WHERE p.id IN (SELECT r.id FROM pg_temp.benchmarks_peer_redo r)
            OFFSET 0) u
    UNION ALL
    SELECT c.leaid, c.absenteeism_vs_peers, c.graduation_vs_peers, c.student_teacher_ratio_vs_peers,
           c.swd_pct_vs_peers, c.ell_pct_vs_peers, c.math_proficiency_vs_peers, c.read_proficiency_vs_peers,
           c.expenditure_pp_vs_peers, c.out_of_range
      FROM public._benchmarks_peer_inputs c
      JOIN pg_temp.benchmarks_peer_points p ON p.leaid = c.leaid
     WHERE p.id NOT IN (SELECT r.id FROM pg_temp.benchmarks_peer_redo r);
    SELECT coalesce(sum(v.out_of_range), 0) INTO v_out_of_range FROM pg_temp.benchmarks_peer_vs v;

    -- the differences that change (an ineligible district's are NULL), for the caller to write
    INSERT INTO pg_temp.benchmarks_peer_differences
          (leaid, absenteeism_vs_peers, graduation_vs_peers, student_teacher_ratio_vs_peers, swd_pct_vs_peers,
           ell_pct_vs_peers, math_proficiency_vs_peers, read_proficiency_vs_peers, expenditure_pp_vs_peers)
    SELECT n.leaid, v.absenteeism_vs_peers, v.graduation_vs_peers, v.student_teacher_ratio_vs_peers, v.swd_pct_vs_peers,
           v.ell_pct_vs_peers, v.math_proficiency_vs_peers, v.read_proficiency_vs_peers, v.expenditure_pp_vs_peers
      FROM pg_temp.benchmarks_peer_now n
      LEFT JOIN pg_temp.benchmarks_peer_vs v ON v.leaid = n.leaid
     WHERE (n.absenteeism_vs_peers, n.graduation_vs_peers, n.student_teacher_ratio_vs_peers, n.swd_pct_vs_peers,
            n.ell_pct_vs_peers, n.math_proficiency_vs_peers, n.read_proficiency_vs_peers, n.expenditure_pp_vs_peers)
           IS DISTINCT FROM
           (v.absenteeism_vs_peers, v.graduation_vs_peers, v.student_teacher_ratio_vs_peers, v.swd_pct_vs_peers,
            v.ell_pct_vs_peers, v.math_proficiency_vs_peers, v.read_proficiency_vs_peers, v.expenditure_pp_vs_peers);

    -- the record, rewritten after a search or new values (bounds kept when only values changed)
    IF v_search OR v_revalued > 0 THEN
        IF NOT v_search THEN
            CREATE TEMPORARY TABLE benchmarks_peer_bounds ON COMMIT DROP AS
            SELECT p.id, p.gap, p.reach, p.spacing FROM pg_temp.benchmarks_peer_points p;
        END IF;
        TRUNCATE public._benchmarks_peer_inputs;
        INSERT INTO public._benchmarks_peer_inputs
              (leaid, enrollment, children_poverty_percent, ell_pct, swd_pct, gap, reach, spacing, absenteeism,
               graduation, student_teacher_ratio, math_proficiency, read_proficiency, expenditure_pp,
               absenteeism_vs_peers, graduation_vs_peers, student_teacher_ratio_vs_peers, swd_pct_vs_peers,
               ell_pct_vs_peers, math_proficiency_vs_peers, read_proficiency_vs_peers, expenditure_pp_vs_peers,
               out_of_range)
        SELECT p.leaid, p.enrollment, p.poverty, p.ell, p.swd, b.gap, b.reach, b.spacing, n.absenteeism,
               n.graduation, n.ratio, n.math, n.read, n.expenditure, v.absenteeism_vs_peers, v.graduation_vs_peers,
               v.student_teacher_ratio_vs_peers, v.swd_pct_vs_peers, v.ell_pct_vs_peers, v.math_proficiency_vs_peers,
               v.read_proficiency_vs_peers, v.expenditure_pp_vs_peers, v.out_of_range
          FROM pg_temp.benchmarks_peer_points p
          JOIN pg_temp.benchmarks_peer_now n ON n.leaid = p.leaid
          LEFT JOIN pg_temp.benchmarks_peer_bounds b ON b.id = p.id
          JOIN pg_temp.benchmarks_peer_vs v ON v.leaid = p.leaid;
        DROP TABLE pg_temp.benchmarks_peer_bounds;
    END IF;

    -- the working tables go now (ON COMMIT DROP only covers a call that fails): a second call in the same
    -- transaction creates them again
    DROP TABLE pg_temp.benchmarks_peer_now, pg_temp.benchmarks_peer_points, pg_temp.benchmarks_peer_redo,
               pg_temp.benchmarks_peer_vs;
    IF v_search THEN
        DROP TABLE pg_temp.benchmarks_peer_old, pg_temp.benchmarks_peer_cand, pg_temp.benchmarks_peer_search,
                   pg_temp.benchmarks_peer_round, pg_temp.benchmarks_peer_offsets, pg_temp.benchmarks_peer_ranked,
                   pg_temp.benchmarks_peer_diff;
    END IF;

    PERFORM set_config('district_benchmarks.out_of_range', v_out_of_range::text, true);
    RETURN v_peer_rows;
END
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_peer_values() FROM PUBLIC;
