/*
 * benchmarks_version() RETURNS text
 *
 * Owns: the version of the benchmark function set (semantic versioning).
 * Contract: bump it in the same commit as any change to what a compute_* function writes or returns —
 * major for a changed meaning of a stored column or summary key, minor for a new column or key, patch
 * for a fix that changes values. compute_all_benchmarks() copies it into every run summary and log row,
 * so a stored figure can always be traced to the rules that produced it.
 * STABLE rather than IMMUTABLE: the value is constant within a release but changes across upgrades.
 */
CREATE OR REPLACE FUNCTION benchmarks_version()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, public, pg_temp
AS $function$
    SELECT '1.1.4'::text
$function$;

REVOKE ALL ON FUNCTION benchmarks_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION benchmarks_version() TO district_benchmarks_operator, district_benchmarks_reader;
