-- One row per task and per account whose cost changed between the period before and the
-- reporting period (of the same length): the "why did cost go up" answer. Same runs counted
-- as the period (test and in-flight runs unless the session leaves them out).
-- Columns:
--   dimension: task or account
--   name: the task_identifier or the account_id
--   previous_cost_usd: what it cost in the period just before (same number of days)
--   cost_usd: what it cost in the reporting period
--   change_usd: cost_usd - previous_cost_usd
--   change_rank: 1 for the largest change either way within its dimension
with period as (
    select
        *,
        period_start - (period_end - period_start)::integer - 1 as previous_start
    from staging.report_period
),

runs as (
    select
        runs.task_identifier,
        runs.account_id,
        runs.total_cost_usd,
        runs.day >= period.period_start as in_period
    from analytics.runs_in_scope as runs, period
    where runs.day between period.previous_start and period.period_end
        -- bounded on created_at by constants too, so that older row groups are skipped (see runs_in_period)
        and runs.created_at >= coalesce(
            getvariable('period_start')::date
                - (getvariable('period_end')::date - getvariable('period_start')::date)::integer - 2,
            date '0001-01-01'
        )
        and runs.created_at < coalesce(getvariable('period_end')::date + 2, date '9999-12-31')
),

by_name as (
    select 'task' as dimension, task_identifier as name, in_period, total_cost_usd from runs
    union all
    select 'account' as dimension, account_id as name, in_period, total_cost_usd from runs
),

totals as (
    select
        dimension,
        name,
        coalesce(sum(total_cost_usd) filter (where not in_period), 0)::decimal(38, 8) as previous_cost_usd,
        coalesce(sum(total_cost_usd) filter (where in_period), 0)::decimal(38, 8) as cost_usd
    from by_name
    group by all
),

final as (
    select
        dimension,
        name,
        previous_cost_usd,
        cost_usd,
        cost_usd - previous_cost_usd as change_usd,
        row_number() over (
            partition by dimension order by abs(cost_usd - previous_cost_usd) desc, name
        )::integer as change_rank
    from totals
    where cost_usd <> previous_cost_usd
)

select * from final
