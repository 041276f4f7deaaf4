-- One row per account per sync, as the sync recorded it.
with source as (
    select * from raw.sync_log
),

renamed as (
    select
        synced_at,
        account_id,
        runs_seen,
        runs_new,
        runs_updated,
        runs_refreshed,
        runs_lost,
        coalesce(runs_foreign, 0) as runs_foreign,
        possible_gap,
        coalesce(first_sync, false) as first_sync,
        error,
        details_pending,
        finished_at
    from source
)

select * from renamed
