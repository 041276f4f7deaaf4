-- analytics.runs: run_id is never null and never repeated. Returns the ids that break it.
-- on update: run_id
select run_id, count(*) as rows
from analytics.runs
group by run_id
having run_id is null or count(*) > 1
