-- 0050_refresh_log_running: a run is logged when it starts, so a run that was killed leaves a trace.
--   running  the run started and has not finished (or its process died: `status` shows it as interrupted);
--   skipped  a loader step that had nothing to fetch (every slice already landed, or none planned);
--   success / failed as before.
ALTER TABLE data_refresh_logs DROP CONSTRAINT data_refresh_logs_status_check;
ALTER TABLE data_refresh_logs ADD CONSTRAINT data_refresh_logs_status_check
    CHECK (status IN ('running', 'success', 'failed', 'skipped'));
COMMENT ON COLUMN data_refresh_logs.status IS
    'running (started; interrupted if its process is gone), success, failed, or skipped (nothing to fetch)';
