-- One row per sync: when it started, published and ended, what it cost in requests and time,
-- the backlog it left, its exit code and whether its archive point was written. A sync's
-- exit code and archive state are known only after it published, so they are recorded by the
-- next sync: until then (the newest sync) they are null and outcome_recorded is false. A sync
-- that ended before publishing (exit 2, 75) has a row with published false, once recorded.
-- Columns:
--   synced_at: when the sync started (UTC): its key in analytics.sync_log
--   published_at: when it had loaded everything and published (UTC); null when it did not publish
--   ended_at: when the command ended, after the models, the publish and the archive step (UTC)
--   duration_seconds: from start to end (to the publish while the end is not recorded yet)
--   published: whether the sync published the warehouse (its sync_log rows exist)
--   exit_code: the exit code cron saw (0 ok, 1 partial, 2 configuration or key, 75 locked out)
--   outcome_recorded: whether the next sync has recorded how this one ended
--   accounts: the accounts the sync set out to list
--   accounts_failed: of those, the accounts that failed or had a run rejected
--   runs_new: runs not stored before
--   runs_updated: stored runs whose state changed
--   runs_refreshed: in-flight runs fetched by id after they left the list
--   runs_lost: stored runs the API answered as unknown
--   requests: HTTP requests the sync made
--   retries: of those, requests retried after a transient failure
--   budget_seconds: the time the sync allowed itself (RECOUP_SYNC_SECONDS)
--   lists_seconds: what listing every account costs at the configured request rate; above
--     budget_seconds, details wait for later syncs
--   details_pending: the backlog the sync left: finished runs still waiting for their details
--   archive: archived, failed or off (no RECOUP_ARCHIVE, or a lake); null while not recorded
--   archive_error: why the archive point could not be written (the next sync archives what was
--     missed)
--   error: why a sync that did not publish stopped, in one line
with logged as (
    select
        synced_at,
        max(finished_at) as published_at,
        count(*) as accounts_logged,
        count(*) filter (where error is not null) as accounts_with_error,
        sum(runs_new) as runs_new,
        sum(runs_updated) as runs_updated,
        sum(runs_refreshed) as runs_refreshed,
        sum(runs_lost) as runs_lost,
        sum(details_pending) as details_pending
    from staging.sync_log
    group by synced_at
),

outcomes as (
    select * from staging.sync_outcomes
)

select
    coalesce(l.synced_at, o.synced_at) as synced_at,
    l.published_at,
    o.ended_at,
    round(epoch(coalesce(o.ended_at, l.published_at) - coalesce(l.synced_at, o.synced_at)), 3)
        as duration_seconds,
    l.synced_at is not null as published,
    o.exit_code,
    o.synced_at is not null as outcome_recorded,
    coalesce(o.accounts, l.accounts_logged)::integer as accounts,
    coalesce(o.accounts_failed, l.accounts_with_error)::integer as accounts_failed,
    coalesce(o.runs_new, l.runs_new)::integer as runs_new,
    coalesce(o.runs_updated, l.runs_updated)::integer as runs_updated,
    coalesce(o.runs_refreshed, l.runs_refreshed)::integer as runs_refreshed,
    coalesce(o.runs_lost, l.runs_lost)::integer as runs_lost,
    o.requests,
    o.retries,
    o.budget_seconds,
    o.lists_seconds,
    coalesce(o.details_pending, l.details_pending)::integer as details_pending,
    o.archive,
    o.archive_error,
    o.error
from logged as l
full join outcomes as o on o.synced_at = l.synced_at
