-- Since when the warehouse holds each account's runs: the first UTC day with a run created.
select account_id, min(make_timestamp(epoch_us(created_at))::date) as data_since
from analytics.runs
group by account_id
order by data_since, account_id
