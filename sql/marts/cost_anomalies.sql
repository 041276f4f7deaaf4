-- One row per account and UTC day whose cost exceeds a multiple (default 3, or
-- `set variable anomaly_multiple = 5`) of that account's median daily cost over the 7 days
-- before it. Days with no runs count as zero. For spotting runaway spend. With a period set
-- (`set variable period_start = ...`, as the report does), only the days from its start on:
-- the same rows for those days, with the costs read from a week before it.
-- Columns:
--   day: the UTC day that cost too much
--   total_cost_usd: the account's cost that day in US dollars
--   trailing_median_usd: the median of the account's daily cost over the 7 days before
--   ratio: total_cost_usd / trailing_median_usd; null when the median is 0
with bound as (
    select
        coalesce(getvariable('period_start')::date, date '0001-01-08') as shown_from,
        shown_from - 7 as read_from
),

first_days as (
    -- an account's calendar starts at its first day, or a week before the period
    select account_id, greatest(min(day), any_value(bound.read_from)) as first_day
    from analytics.daily_cost, bound
    group by account_id
),

daily as (
    select day, account_id, sum(total_cost_usd) as total_cost_usd
    from analytics.daily_cost, bound
    where day >= bound.read_from
    group by all
),

calendar as (
    select
        daily.account_id,
        unnest(generate_series(first_days.first_day, max(daily.day), interval 1 day))::date as day
    from daily
    inner join first_days using (account_id)
    group by daily.account_id, first_days.first_day
),

filled as (
    select calendar.day, calendar.account_id, coalesce(daily.total_cost_usd, 0) as total_cost_usd
    from calendar
    left join daily using (account_id, day)
),

windowed as (
    select
        *,
        median(total_cost_usd) over (
            partition by account_id order by day rows between 7 preceding and 1 preceding
        ) as trailing_median_usd,
        count(*) over (partition by account_id order by day rows between 7 preceding and 1 preceding)
            as trailing_days
    from filled
),

final as (
    select
        day,
        account_id,
        total_cost_usd,
        trailing_median_usd,
        total_cost_usd / nullif(trailing_median_usd, 0) as ratio
    from windowed, bound
    where trailing_days = 7
        and total_cost_usd > coalesce(getvariable('anomaly_multiple'), 3) * trailing_median_usd
        and day >= bound.shown_from
)

select * from final
