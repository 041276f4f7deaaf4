-- Each account's row of the newest sync: the report names those that failed or may have a gap.
select synced_at, account_id, error, possible_gap
from analytics.sync_log
where synced_at = (select max(synced_at) from analytics.sync_log)
order by account_id
