-- compute_peer_groups(): hand-computed cases (a feature without spread, ties in distance, fewer than K
-- eligible districts, ineligible districts, fewer than 10 peers with a value, negative inputs), then a
-- brute-force comparison on 300 generated districts after a first run, after a few districts' features change,
-- after a district is deleted and after a hand edit of district_peers; reruns that write nothing; grants.
BEGIN;
SELECT plan(45);

DELETE FROM district_data_history;
DELETE FROM districts;
DELETE FROM data_refresh_logs;

\ir as_role.psql

-- The peers every eligible district must have, computed plainly: z-scores with the mean and population
-- standard deviation summed in leaid order (a feature without spread is 0), every pair's distance, the 40
-- nearest, equal distances by peer_leaid.
CREATE FUNCTION pg_temp.brute_force_peers()
RETURNS TABLE (leaid text, peer_leaid text, peer_rank bigint, distance double precision) LANGUAGE sql AS $$
    WITH e AS (
        SELECT d.leaid::text AS leaid, ln(d.enrollment::float8) AS x1, d.children_poverty_percent::float8 AS x2,
               d.ell_pct::float8 AS x3, d.swd_pct::float8 AS x4
          FROM districts d
         WHERE d.enrollment > 0 AND d.children_poverty_percent >= 0 AND d.ell_pct >= 0 AND d.swd_pct >= 0
    ),
    m AS (
        SELECT count(*) AS n,
               sum(x1 ORDER BY leaid COLLATE "C") / count(*) AS m1, sum(x2 ORDER BY leaid COLLATE "C") / count(*) AS m2,
               sum(x3 ORDER BY leaid COLLATE "C") / count(*) AS m3, sum(x4 ORDER BY leaid COLLATE "C") / count(*) AS m4,
               min(x1) < max(x1) AS v1, min(x2) < max(x2) AS v2, min(x3) < max(x3) AS v3, min(x4) < max(x4) AS v4
          FROM e
    ),
    s AS (
        SELECT m.*,
               CASE WHEN v1 THEN sqrt(sum((x1 - m1) * (x1 - m1) ORDER BY leaid COLLATE "C") / n) ELSE 0 END AS s1,
               CASE WHEN v2 THEN sqrt(sum((x2 - m2) * (x2 - m2) ORDER BY leaid COLLATE "C") / n) ELSE 0 END AS s2,
               CASE WHEN v3 THEN sqrt(sum((x3 - m3) * (x3 - m3) ORDER BY leaid COLLATE "C") / n) ELSE 0 END AS s3,
               CASE WHEN v4 THEN sqrt(sum((x4 - m4) * (x4 - m4) ORDER BY leaid COLLATE "C") / n) ELSE 0 END AS s4
          FROM e, m GROUP BY m.n, m.m1, m.m2, m.m3, m.m4, m.v1, m.v2, m.v3, m.v4
    ),
    z AS (
        SELECT e.leaid,
               CASE WHEN s1 > 0 THEN (x1 - m1) / s1 ELSE 0 END AS z1, CASE WHEN s2 > 0 THEN (x2 - m2) / s2 ELSE 0 END AS z2,
               CASE WHEN s3 > 0 THEN (x3 - m3) / s3 ELSE 0 END AS z3, CASE WHEN s4 > 0 THEN (x4 - m4) / s4 ELSE 0 END AS z4
          FROM e, s
    )
    SELECT r.leaid, r.peer_leaid, r.peer_rank, r.distance
      FROM (SELECT a.leaid, b.leaid AS peer_leaid, x.d AS distance,
                   row_number() OVER (PARTITION BY a.leaid ORDER BY x.d, b.leaid COLLATE "C") AS peer_rank
              FROM z a JOIN z b ON b.leaid <> a.leaid,
                   LATERAL (SELECT sqrt((a.z1 - b.z1) * (a.z1 - b.z1) + (a.z2 - b.z2) * (a.z2 - b.z2)
                                        + (a.z3 - b.z3) * (a.z3 - b.z3) + (a.z4 - b.z4) * (a.z4 - b.z4)) AS d) x) r
     WHERE r.peer_rank <= 40
$$;
-- the stored rows against the brute force: the same (district, peer, rank) triples, and every distance within
-- 1e-9 of the plain one; NULL when they agree, else what differs first
CREATE FUNCTION pg_temp.peers_differ() RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(
        (SELECT format('%s: rank %s is %s in district_peers, %s by brute force', coalesce(s.leaid, b.leaid),
                       coalesce(s.peer_rank, b.peer_rank), coalesce(s.peer_leaid, '-'), coalesce(b.peer_leaid, '-'))
           FROM (SELECT dp.leaid::text, dp.peer_leaid::text, dp.peer_rank::bigint, dp.distance FROM district_peers dp) s
           FULL JOIN pg_temp.brute_force_peers() b ON b.leaid = s.leaid AND b.peer_rank = s.peer_rank
          WHERE s.peer_leaid IS DISTINCT FROM b.peer_leaid
          ORDER BY 1 LIMIT 1),
        (SELECT format('%s -> %s: distance %s, brute force %s', s.leaid, s.peer_leaid, s.distance, b.distance)
           FROM district_peers s JOIN pg_temp.brute_force_peers() b ON b.leaid = s.leaid AND b.peer_rank = s.peer_rank
          WHERE abs(s.distance - b.distance) > 1e-9 LIMIT 1))
$$;
-- every eligible district's differences against a plain mean of its peers' values (negative = missing)
CREATE FUNCTION pg_temp.differences_differ() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        SELECT d.leaid, d.math_proficiency_vs_peers AS got,
               CASE WHEN count(p.math_proficiency_pct) FILTER (WHERE p.math_proficiency_pct >= 0) >= 10
                         AND d.math_proficiency_pct >= 0
                    THEN round(d.math_proficiency_pct - avg(p.math_proficiency_pct) FILTER (WHERE p.math_proficiency_pct >= 0), 2)
               END AS want
          FROM districts d
          LEFT JOIN district_peers dp ON dp.leaid = d.leaid
          LEFT JOIN districts p ON p.leaid = dp.peer_leaid
         GROUP BY d.leaid, d.math_proficiency_vs_peers, d.math_proficiency_pct) x
     WHERE x.got IS DISTINCT FROM x.want
$$;

-- 1. Five eligible districts that differ only in child poverty (10, 20, ..., 50): enrollment, ELL % and SWD %
-- have no spread and are left out, so z = (x - 30) / sqrt(200) and the middle district is exactly as far from
-- its two neighbours (1 / sqrt(2)) and from the two outer ones (sqrt(2)). Plus ineligible districts: poverty
-- missing, poverty negative, enrollment 0, SWD % negative (with stale differences and a stale peer row).
INSERT INTO districts (leaid, state_fips, enrollment, children_poverty_percent, ell_pct, swd_pct) VALUES
    ('0100005', '01', 100, 50, 0, 12), ('0100004', '01', 100, 40, 0, 12), ('0100003', '01', 100, 30, 0, 12),
    ('0100002', '01', 100, 20, 0, 12), ('0100001', '01', 100, 10, 0, 12),
    ('0100011', '01', 100, NULL, 0, 12), ('0100012', '01', 100, -1, 0, 12), ('0100013', '01', 0, 30, 0, 12),
    ('0100014', '01', 100, 30, 0, -3);
UPDATE districts SET math_proficiency_vs_peers = 9.99, absenteeism_vs_peers = 1 WHERE leaid IN ('0100011', '0100014');
INSERT INTO district_peers (leaid, peer_leaid, peer_rank, distance) VALUES ('0100011', '0100001', 1, 0.5);

SELECT is(compute_peer_groups(), 20 + 1 + 2, 'first run: 5 x 4 peer rows written, the stale row deleted, '
                                              'the stale differences of 2 districts cleared');
SELECT results_eq(
    $$SELECT peer_leaid::text, peer_rank::int FROM district_peers WHERE leaid = '0100003' ORDER BY peer_rank$$,
    $$VALUES ('0100002', 1), ('0100004', 2), ('0100001', 3), ('0100005', 4)$$,
    'fewer than K others: all of them; equal distances ranked by peer_leaid (0100002 before 0100004)');
SELECT ok((SELECT bool_and(abs(distance - CASE WHEN peer_rank <= 2 THEN 10 ELSE 20 END / sqrt(200::float8)) < 1e-12)
             FROM district_peers WHERE leaid = '0100003'),
          'distances 10 / sqrt(200) and 20 / sqrt(200): the features without spread are left out');
SELECT ok((SELECT bool_and(d.distance = e.distance) FROM district_peers d
             JOIN district_peers e ON e.leaid = d.leaid AND e.peer_rank = d.peer_rank + 1
            WHERE d.leaid = '0100003' AND d.peer_rank IN (1, 3)),
          'the tied distances are exactly equal');
SELECT results_eq(
    $$SELECT peer_leaid::text, peer_rank::int FROM district_peers WHERE leaid = '0100001' ORDER BY peer_rank$$,
    $$VALUES ('0100002', 1), ('0100003', 2), ('0100004', 3), ('0100005', 4)$$,
    'the outer district: its peers by distance');
SELECT is((SELECT count(*)::int FROM district_peers
            WHERE leaid IN ('0100011', '0100012', '0100013', '0100014')
               OR peer_leaid IN ('0100011', '0100012', '0100013', '0100014')), 0,
          'ineligible districts (poverty missing or negative, enrollment 0, SWD % negative) have no peers and are '
          'nobody''s peer');
SELECT is((SELECT count(*)::int FROM districts
            WHERE num_nonnulls(absenteeism_vs_peers, graduation_vs_peers, student_teacher_ratio_vs_peers,
                               swd_pct_vs_peers, ell_pct_vs_peers, math_proficiency_vs_peers,
                               read_proficiency_vs_peers, expenditure_pp_vs_peers) > 0), 0,
          'no difference with 4 peers (fewer than 10 with a value), and an ineligible district''s stale ones are gone');
SELECT is(pg_temp.peers_differ(), NULL, 'the five districts'' peers equal the brute force');

-- 2. Twelve eligible districts, each the peer of all others (11 < K), through compute_all_benchmarks(false)
-- (swd_pct and ell_pct from the counts): math 10, 20, ..., 110 and -2 (missing) for the twelfth; graduation
-- for 11 of them; absenteeism for 10; spending 5,000,000 for the first (its difference does not fit)
DELETE FROM districts;
INSERT INTO districts (leaid, state_fips, enrollment, spec_ed_students, ell_students, children_poverty_percent,
                       math_proficiency_pct, graduation_rate_total, chronic_absenteeism_rate, expenditure_per_pupil)
SELECT '02000' || lpad(i::text, 2, '0'), '02', 1000 + 37 * i, 100 + i, 10 * i, 5 + i,
       CASE WHEN i = 12 THEN -2 ELSE 10 * i END, CASE WHEN i <= 11 THEN 79 + i END, CASE WHEN i <= 10 THEN 5 * i END,
       CASE WHEN i = 1 THEN 5000000 ELSE 10000 END
  FROM generate_series(1, 12) i;
INSERT INTO districts (leaid, state_fips, enrollment, math_proficiency_pct, math_proficiency_vs_peers)
VALUES ('0200099', '02', 500, 50, 12.34);   -- no poverty: ineligible, stale difference
SELECT compute_all_benchmarks(false) AS summary \gset
SELECT is((:'summary'::jsonb -> 'steps' -> 'peer_groups') - 'ms',
          '{"rows_changed": 145, "out_of_range": 1}'::jsonb,
          'the run''s peer step: 132 peer rows and 13 districts rows (12 with differences, 1 cleared), one value '
          'out of range');
SELECT ok((:'summary'::jsonb ->> 'out_of_range')::int >= 1 AND (:'summary'::jsonb ->> 'districts_changed')::int >= 13,
          'the run''s totals include the peer step');
SELECT is((:'summary'::jsonb ->> 'districts_written')::int, 13,
          'each district row is written once: its peer differences in the same UPDATE as its trends and deltas');
SELECT results_eq(
    $$SELECT leaid::text, math_proficiency_vs_peers FROM districts WHERE leaid IN ('0200001', '0200011', '0200012')
       ORDER BY leaid$$,
    $$VALUES ('0200001', -55.00::numeric), ('0200011', 55.00), ('0200012', NULL)$$,
    'math: value - mean of the 10 peers with a value (the -2 is missing: 10 - 65, 110 - 55); none of its own');
SELECT results_eq(
    $$SELECT leaid::text, graduation_vs_peers FROM districts WHERE leaid IN ('0200001', '0200011', '0200012')
       ORDER BY leaid$$,
    $$VALUES ('0200001', -5.50::numeric), ('0200011', 5.50), ('0200012', NULL)$$,
    'graduation: 10 peers with a value are enough (80 - 85.5); a district without a value gets none');
SELECT is((SELECT count(absenteeism_vs_peers)::int FROM districts), 0,
          'absenteeism: 9 peers with a value are too few');
SELECT results_eq(
    $$SELECT leaid::text, expenditure_pp_vs_peers FROM districts WHERE leaid IN ('0200001', '0200002') ORDER BY leaid$$,
    $$VALUES ('0200001', NULL::numeric), ('0200002', round(10000 - 5100000 / 11.0, 2))$$,
    'a difference that does not fit numeric(8,2) (4,990,000) is NULL; the others are rounded to 2 decimals');
SELECT is((SELECT math_proficiency_vs_peers FROM districts WHERE leaid = '0200099'), NULL,
          'an ineligible district''s stale difference is cleared');
SELECT is(pg_temp.differences_differ(), 0::bigint, 'every math difference equals the plain mean of the peers');

-- 3. 300 generated districts (with repeated feature vectors, so distances tie exactly) against the brute force
DELETE FROM districts;
INSERT INTO districts (leaid, state_fips, enrollment, children_poverty_percent, ell_pct, swd_pct, math_proficiency_pct)
SELECT '06' || lpad(i::text, 5, '0'), '06',
       20 + (j * 7919) % 60000, round(((j * 37) % 400) / 10.0 + (j % 3) * 0.05, 2), round(((j * j) % 900) / 20.0, 2),
       round(6 + ((j * 29) % 230) / 10.0, 2), CASE WHEN i % 7 <> 0 THEN (i * 13) % 100 END
  FROM generate_series(1, 300) i, LATERAL (SELECT CASE WHEN i > 280 THEN i - 280 ELSE i END AS j) r;
INSERT INTO districts (leaid, state_fips, enrollment) VALUES ('0600999', '06', 100);   -- not eligible

SELECT is(compute_peer_groups(), 300 * 40 + 300, 'first run: 12,000 peer rows and 300 districts'' differences');
SELECT is(pg_temp.peers_differ(), NULL, 'same peers, ranks and distances (1e-9) as the brute force');
SELECT is((SELECT count(*)::int FROM district_peers WHERE distance = 0), 2 * 20,
          'the 20 repeated feature vectors are each other''s nearest peers at distance 0');
SELECT is(pg_temp.differences_differ(), 0::bigint, 'the differences equal the plain means');

-- a rerun on unchanged data writes nothing
SELECT n_tup_ins + n_tup_upd + n_tup_del AS peer_writes FROM pg_stat_xact_user_tables WHERE relname = 'district_peers' \gset
SELECT n_tup_upd AS district_writes FROM pg_stat_xact_user_tables WHERE relname = 'districts' \gset
SELECT is(compute_peer_groups(), 0, 'a rerun changes nothing');
SELECT is((SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables WHERE relname = 'district_peers'),
          :peer_writes::bigint, 'and writes no district_peers row');
SELECT is((SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'districts'), :district_writes::bigint,
          'and no districts row');

-- a few districts' features change: the others keep or re-rank their peers; the result is the brute force's
UPDATE districts SET children_poverty_percent = children_poverty_percent + 7.5 WHERE leaid IN ('0600010', '0600150');
UPDATE districts SET enrollment = enrollment * 3 WHERE leaid = '0600201';
SELECT cmp_ok(compute_peer_groups(), '>', 0, 'three districts moved: rows change');
SELECT is(pg_temp.peers_differ(), NULL, 'still the brute force''s peers, ranks and distances');
SELECT is(pg_temp.differences_differ(), 0::bigint, 'and the differences follow their new peers');
SELECT is(compute_peer_groups(), 0, 'the rerun after it changes nothing');

-- a small change (one poverty rate by 0.01): the standard deviations barely move, so nearly every district
-- keeps its peers in their order and only its distances are rewritten; still the brute force's result
UPDATE districts SET children_poverty_percent = children_poverty_percent + 0.01 WHERE leaid = '0600100';
SELECT cmp_ok(compute_peer_groups(), '>', 11000, 'a small change rewrites (nearly) every distance');
SELECT is(pg_temp.peers_differ(), NULL, 'and the rows equal the brute force''s');

-- one district's metric value changes: the peers stand, the differences of those who have it as a peer move
UPDATE districts SET math_proficiency_pct = 99 WHERE leaid = '0600002';
SELECT cmp_ok(compute_peer_groups(), '>', 0, 'a new value changes differences');
SELECT is(pg_temp.differences_differ(), 0::bigint, 'every difference is the plain mean again');

-- a district is deleted: its rows go with it (cascade), the next run gives its former peers new ones
DELETE FROM districts WHERE leaid = '0600003';
SELECT is((SELECT count(*)::int FROM district_peers WHERE '0600003' IN (leaid, peer_leaid)), 0,
          'deleting a district deletes its peer rows and the rows naming it as a peer');
SELECT cmp_ok(compute_peer_groups(), '>', 0, 'the next run fills the gaps');
SELECT is(pg_temp.peers_differ(), NULL, 'and matches the brute force');

-- a hand edit of district_peers is not trusted: the next run repairs it
UPDATE district_peers SET distance = 0 WHERE leaid = '0600004' AND peer_rank = 5;
DELETE FROM district_peers WHERE leaid = '0600005' AND peer_rank = 40;
SELECT is(compute_peer_groups(), 2, 'the run after a hand edit rewrites the two rows');
SELECT is(pg_temp.peers_differ(), NULL, 'district_peers is the brute force''s again');
SELECT is(compute_peer_groups(), 0, 'and the run after that writes nothing');

-- a stale difference is repaired by a rerun, which writes only that row
UPDATE districts SET math_proficiency_vs_peers = 12.34 WHERE leaid = '0600006';
SELECT is(compute_peer_groups(), 1, 'a stale difference is rewritten');
SELECT is(pg_temp.differences_differ(), 0::bigint, 'and is right again');

-- grants
SELECT table_privs_are('public', 'district_peers', 'district_benchmarks_reader', ARRAY['SELECT'],
                       'the reader role may select district_peers, nothing else');
SELECT is(pg_temp.as_role('district_benchmarks_reader', 'SELECT count(*) FROM public.district_peers'), '11960',
          'the reader role reads district_peers');
SELECT throws_ok($$SELECT pg_temp.as_role('district_benchmarks_reader', 'SELECT public.compute_peer_groups()')$$,
                 '42501', NULL, 'the reader role cannot run it');
UPDATE districts SET children_poverty_percent = 1 WHERE leaid = '0600007';
SELECT cmp_ok(pg_temp.as_role('district_benchmarks_operator', 'SELECT public.compute_peer_groups()')::int, '>', 0,
              'the operator role runs it (SECURITY DEFINER: it writes without write grants)');
SELECT is(pg_temp.peers_differ(), NULL, 'with the same result');

SELECT * FROM finish();
ROLLBACK;
