-- Since when the warehouse holds each account's runs: the first UTC day with a run created.
select account_id, min((created_at at time zone 'UTC')::date) as data_since
from analytics.runs
group by account_id
order by data_since, account_id
