-- analytics.run_attempts: every attempt row names a run of analytics.runs.
-- on update: run_id
select attempts.run_id, attempts.attempt_id
from analytics.run_attempts as attempts
anti join analytics.runs as runs on runs.run_id = attempts.run_id
