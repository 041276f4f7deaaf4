-- The report's "Cost anomalies" within the period ($1 its first day, $2 its last).
select day, account_id, total_cost_usd, trailing_median_usd, ratio
from analytics.cost_anomalies
where day between $1 and $2
order by day desc, ratio desc
