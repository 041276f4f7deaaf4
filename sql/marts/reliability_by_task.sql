-- materialized: view
-- One row per task over the reporting period: how often its finished runs fail, and how
-- many runs needed more than one attempt. failure_rate = failed / finished (0..1).
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        task_identifier,
        count(*)::integer as run_count,
        count(*) filter (where status_group in ('succeeded', 'failed', 'canceled', 'expired'))::integer
            as finished_run_count,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        count(*) filter (where status_group = 'failed')
            / nullif(count(*) filter (where status_group in ('succeeded', 'failed', 'canceled', 'expired')), 0)
            as failure_rate,
        count(*) filter (where attempt_count > 1)::integer as retried_run_count
    from runs
    group by all
)

select * from final
