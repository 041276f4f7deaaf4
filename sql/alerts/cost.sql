-- `recoup alert`: the accounts whose cost on one UTC day ($1) is a spike (in analytics.cost_anomalies,
-- more than `anomaly_multiple` times their 7-day trailing median) or over a daily budget ($2, US
-- dollars; null: no budget). Test runs are included, as in analytics.daily_cost.
with day_cost as (
    select account_id, sum(total_cost_usd) as total_cost_usd
    from analytics.daily_cost
    where day = $1
    group by all
),

spikes as (
    select account_id, trailing_median_usd, ratio
    from analytics.cost_anomalies
    where day = $1
)

select
    day_cost.account_id,
    day_cost.total_cost_usd,
    spikes.trailing_median_usd,
    spikes.ratio,
    spikes.account_id is not null as spike,
    coalesce(day_cost.total_cost_usd > $2, false) as over_budget
from day_cost
left join spikes using (account_id)
where spikes.account_id is not null or coalesce(day_cost.total_cost_usd > $2, false)
order by day_cost.total_cost_usd desc, day_cost.account_id
