-- 0040_run_locks: two empty tables that exist only to be locked, replacing advisory locks. Any role can take any
-- advisory key (pg_advisory_lock needs no privilege), so any role could hold up the nightly run. LOCK TABLE in
-- ACCESS SHARE mode needs SELECT, and in every mode that conflicts with SHARE ROW EXCLUSIVE it needs UPDATE,
-- DELETE or TRUNCATE (ROW EXCLUSIVE also INSERT); nothing is granted on these tables, so only their owner (and
-- superusers) can lock them. No rows, and no autovacuum (nothing to do; its lock would only get in the way).
CREATE TABLE public._benchmarks_run_lock () WITH (autovacuum_enabled = false);
COMMENT ON TABLE public._benchmarks_run_lock IS
    'Lock-only, never holds rows: the benchmark run lock (contract in db/functions/compute_all_benchmarks.sql). '
    'The compute functions take it IN SHARE ROW EXCLUSIVE MODE, so runs queue; the loader''s landing '
    'transactions take it IN ROW EXCLUSIVE MODE first, so a landing and a run go one after the other. '
    'Only the owner can lock it.';
REVOKE ALL ON TABLE public._benchmarks_run_lock FROM PUBLIC;

CREATE TABLE public._benchmarks_ingest_lock () WITH (autovacuum_enabled = false);
COMMENT ON TABLE public._benchmarks_ingest_lock IS
    'Lock-only, never holds rows: the loader''s ingest lock. An ingest holds it so that one ingest per database '
    'runs at a time. Only the owner can lock it.';
REVOKE ALL ON TABLE public._benchmarks_ingest_lock FROM PUBLIC;
