-- The report's "Top movers": the ten tasks and the ten accounts whose cost changed most.
select dimension, name, change_usd, cost_usd, previous_cost_usd
from analytics.cost_movers
where change_rank <= 10
order by dimension desc, change_rank
