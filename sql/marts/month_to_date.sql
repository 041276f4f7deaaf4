-- One row: the calendar month (UTC) of the reporting period's last day, up to that day, and
-- a straight-line projection to the month's end; with the month before, whole, beside it.
-- Same runs counted as the period.
-- Columns:
--   month_start: the first day of the month
--   through_day: the last day counted (the period's last day)
--   days_counted: days from month_start to through_day, both included
--   days_in_month: the month's length in days
--   cost_usd: what runs created from month_start to through_day cost (exact DECIMAL)
--   projected_cost_usd: cost_usd / days_counted * days_in_month, to the cent: the month's cost
--     if the rest of it spends at the same daily rate
--   previous_month_cost_usd: what the whole month before cost
with period as (
    select
        *,
        date_trunc('month', period_end)::date as month_start
    from staging.report_period
),

runs as (
    select
        runs.day,
        runs.total_cost_usd
    from analytics.runs_in_scope as runs, period
    where runs.day between (period.month_start - interval 1 month)::date and period.period_end
        -- bounded on created_at by constants too, so that older row groups are skipped (see runs_in_period)
        and runs.created_at >= coalesce(
            date_trunc('month', getvariable('period_end')::date) - interval 1 month - interval 1 day,
            date '0001-01-01'
        )
        and runs.created_at < coalesce(getvariable('period_end')::date + 2, date '9999-12-31')
),

final as (
    select
        period.month_start,
        period.period_end as through_day,
        (period.period_end - period.month_start + 1)::integer as days_counted,
        day(last_day(period.month_start))::integer as days_in_month,
        coalesce(sum(runs.total_cost_usd) filter (where runs.day >= period.month_start), 0)::decimal(38, 8)
            as cost_usd,
        round(
            coalesce(sum(runs.total_cost_usd) filter (where runs.day >= period.month_start), 0)
            / (period.period_end - period.month_start + 1) * day(last_day(period.month_start)),
            2
        )::decimal(38, 2) as projected_cost_usd,
        coalesce(sum(runs.total_cost_usd) filter (where runs.day < period.month_start), 0)::decimal(38, 8)
            as previous_month_cost_usd
    from period
    left join runs on true
    group by period.month_start, period.period_end
)

select * from final
