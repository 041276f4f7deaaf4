-- One row per run created in the reporting period, most expensive first: the runs behind a
-- bill, with their ids to look up in Trigger.dev.
-- Columns:
--   cost_rank: 1 for the most expensive run of the period (ties by run_id)
--   duration_s: the run's duration in seconds
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        row_number() over (order by total_cost_usd desc nulls last, run_id)::integer as cost_rank,
        run_id,
        account_id,
        task_identifier,
        env_name,
        status_group,
        created_at,
        total_cost_usd,
        duration_ms / 1000 as duration_s,
        attempt_count
    from runs
)

select * from final
