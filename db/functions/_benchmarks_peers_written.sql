/*
 * _benchmarks_peers_written() RETURNS trigger — internal: no EXECUTE for PUBLIC or the operator role
 *
 * Keeps compute_peer_groups()'s record of its inputs honest. The function skips the search, and trusts the
 * stored rows of district_peers, when the features of the eligible districts equal those recorded in
 * public._benchmarks_peer_inputs. Any write to district_peers that is not the function's own (a person's
 * UPDATE or DELETE, a TRUNCATE, the ON DELETE CASCADE of a deleted district) therefore empties that record, so
 * the next run recomputes every peer group and repairs the table.
 *   - AFTER ... FOR EACH STATEMENT on INSERT, UPDATE, DELETE and TRUNCATE of public.district_peers (created
 *     below; CREATE OR REPLACE TRIGGER keeps the file idempotent).
 *   - compute_peer_groups() sets the transaction-local setting district_benchmarks.writing_peers to 'on' around
 *     its own writes; then the trigger does nothing.
 *   - SECURITY DEFINER, so that a role allowed to write district_peers (or to delete districts) empties the
 *     record whatever its own rights on it.
 */
CREATE OR REPLACE FUNCTION public._benchmarks_peers_written()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $function$
BEGIN
    IF current_setting('district_benchmarks.writing_peers', true) IS DISTINCT FROM 'on' THEN
        DELETE FROM public._benchmarks_peer_inputs;
    END IF;
    RETURN NULL;
END
$function$;

REVOKE ALL ON FUNCTION public._benchmarks_peers_written() FROM PUBLIC;

CREATE OR REPLACE TRIGGER district_peers_written
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.district_peers
    FOR EACH STATEMENT EXECUTE FUNCTION public._benchmarks_peers_written();
