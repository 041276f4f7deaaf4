-- One row per sync whose end the next sync recorded: how it ended (the newest record kept).
with source as (
    select * from raw.sync_outcomes
),

newest as (
    select *
    from source
    qualify row_number() over (partition by synced_at order by recorded_at desc) = 1
)

select
    synced_at,
    ended_at,
    exit_code,
    published,
    accounts,
    accounts_failed,
    runs_new,
    runs_updated,
    runs_refreshed,
    runs_lost,
    requests,
    retries,
    budget_seconds,
    lists_seconds,
    details_pending,
    archive,
    archive_error,
    error,
    recorded_at
from newest
