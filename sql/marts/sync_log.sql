-- materialized: view
-- One row per account per sync: what it received and whether it failed or may have a gap.
-- runs_seen: distinct runs received (list and runId calls); runs_new: not stored before;
-- runs_updated: stored runs whose updatedAt or status changed (in-flight refreshes included).
-- possible_gap: the list was full and reached back to no stored run. first_sync: the account's
-- first full list (the API shows nothing older; not a gap). details_pending: finished runs of
-- the account still waiting for their details fetch after this sync (null before it was kept).
-- runs_foreign: listed runs already stored under another account (left with it). error: every
-- problem of the account, each rejected run named.
select * from staging.sync_log
