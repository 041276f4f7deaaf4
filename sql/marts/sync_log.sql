-- materialized: view
-- One row per account per sync: what it received and whether it failed or may have a gap.
-- runs_seen: distinct runs received (list and runId calls); runs_new: not stored before;
-- runs_updated: stored runs whose updatedAt or status changed (in-flight refreshes included).
select * from staging.sync_log
