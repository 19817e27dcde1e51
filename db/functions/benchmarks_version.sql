/*
 * benchmarks_version() RETURNS text — EXECUTE: operator and reader roles
 *
 * The version of the benchmark function set (semantic versioning); compute_all_benchmarks() copies it into
 * every run summary and log row. Bump it in the same commit as any change to the function set: major for a
 * changed meaning of a stored column or summary key, minor for a new column or key, patch for anything else
 * (a fix that changes values; hardening or internal renames that do not). STABLE, not IMMUTABLE: constant
 * within a release, different across upgrades.
 */
CREATE OR REPLACE FUNCTION public.benchmarks_version()
RETURNS text
LANGUAGE sql
STABLE
PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $function$
    SELECT '1.3.0'::text
$function$;

REVOKE ALL ON FUNCTION public.benchmarks_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.benchmarks_version() TO district_benchmarks_operator, district_benchmarks_reader;
