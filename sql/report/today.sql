-- Today so far: the UTC day the report runs on is not complete, so never in its period. The
-- same runs counted as the period (analytics.runs_in_scope).
select count(*)::integer as runs, coalesce(sum(total_cost_usd), 0) as cost
from analytics.runs_in_scope
where day = (now() at time zone 'UTC')::date
    and created_at >= now() - interval 2 day  -- skips the row groups of older runs
