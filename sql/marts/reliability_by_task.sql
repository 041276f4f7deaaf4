-- One row per task over the reporting period: how often its finished runs fail, and how
-- many runs needed more than one attempt. failure_rate = failed / finished (0..1).
-- Columns:
--   run_count: runs created in the period
--   finished_run_count: of those, runs that finished (is_finished: their status will not change)
--   failed_run_count: of those, runs whose status_group is failed
--   failure_rate: failed_run_count / finished_run_count, 0 to 1; null without a finished run
--   retried_run_count: runs that needed more than one attempt
with runs as (
    select * from analytics.runs_in_period
),

final as (
    select
        task_identifier,
        count(*)::integer as run_count,
        count(*) filter (where is_finished)::integer as finished_run_count,
        count(*) filter (where status_group = 'failed')::integer as failed_run_count,
        count(*) filter (where status_group = 'failed') / nullif(count(*) filter (where is_finished), 0)
            as failure_rate,
        count(*) filter (where attempt_count > 1)::integer as retried_run_count
    from runs
    group by all
)

select * from final
