-- 0003_roles: the two cluster-wide roles the project grants to.
--   district_benchmarks_operator  may run the compute functions (and writes through them);
--   district_benchmarks_reader    may read the tables (and views added later).
-- Roles are cluster-wide, so they are created only when missing (another database may have made them).
-- Grant them to login roles: GRANT district_benchmarks_operator TO etl_user;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'district_benchmarks_reader') THEN
        CREATE ROLE district_benchmarks_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'district_benchmarks_operator') THEN
        CREATE ROLE district_benchmarks_operator NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO district_benchmarks_reader, district_benchmarks_operator;
GRANT SELECT ON states, districts, district_data_history, data_refresh_logs
    TO district_benchmarks_reader, district_benchmarks_operator;
