/*
 * _benchmarks_lock_key() RETURNS bigint
 *
 * Owns: the advisory-lock key that serialises benchmark runs.
 * Contract: every compute_* function takes pg_advisory_xact_lock(_benchmarks_lock_key()) before it reads
 * anything, so concurrent runs (pg_cron and a person, or two people) queue instead of interleaving. The
 * key is the first 8 bytes of sha256('district-benchmarks:compute') as a signed bigint, the same scheme as
 * the migrator's lock (loader/migrate.py), so it cannot collide with it. Monitoring can find a waiting or
 * running computation in pg_locks (locktype 'advisory', classid/objid = high/low 32 bits of the key).
 */
-- the function's name before 1.1.4; dropped so an existing database loses it (idempotent, same transaction)
DROP FUNCTION IF EXISTS benchmarks_lock_key();

CREATE OR REPLACE FUNCTION _benchmarks_lock_key()
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $function$
    SELECT ('x' || left(encode(sha256(convert_to('district-benchmarks:compute', 'UTF8')), 'hex'), 16))::bit(64)::bigint
$function$;

REVOKE ALL ON FUNCTION _benchmarks_lock_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION _benchmarks_lock_key() TO district_benchmarks_operator, district_benchmarks_reader;
