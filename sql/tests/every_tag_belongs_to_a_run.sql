-- analytics.run_tags: every tag row names a run of analytics.runs.
-- on update: run_id
select tags.run_id, tags.tag
from analytics.run_tags as tags
anti join analytics.runs as runs on runs.run_id = tags.run_id
