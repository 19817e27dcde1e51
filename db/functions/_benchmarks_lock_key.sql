/*
 * _benchmarks_lock_key() RETURNS bigint — internal; EXECUTE: operator and reader roles
 *
 * The advisory-lock key that serialises benchmark runs: every compute_* function and both value helpers take
 * pg_advisory_xact_lock(_benchmarks_lock_key()) before they read anything, so concurrent runs queue instead
 * of interleaving. The key is the first 8 bytes of sha256('district-benchmarks:compute') as a signed bigint,
 * the migrator's scheme (loader/migrate.py) with another string, so the two cannot collide. In pg_locks: locktype
 * 'advisory', classid / objid = the high / low 32 bits of the key.
 */
-- the function's name before 1.1.4; dropped so an existing database loses it (idempotent, same transaction)
DROP FUNCTION IF EXISTS public.benchmarks_lock_key();

CREATE OR REPLACE FUNCTION public._benchmarks_lock_key()
RETURNS bigint
LANGUAGE sql
IMMUTABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT ('x' || left(encode(sha256(convert_to('district-benchmarks:compute', 'UTF8')), 'hex'), 16))::bit(64)::bigint
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_lock_key() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public._benchmarks_lock_key() TO district_benchmarks_operator, district_benchmarks_reader;
