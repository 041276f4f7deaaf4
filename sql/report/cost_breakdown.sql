-- The report's "Where the money went": one row from analytics.cost_breakdown.
select * from analytics.cost_breakdown
