-- The report's "Cost by tag": every tag key and value of the period's runs, costliest first.
select tag_key, tag_value, run_count, total_cost_usd
from analytics.cost_by_tag
order by total_cost_usd desc, tag_key, tag_value nulls first
