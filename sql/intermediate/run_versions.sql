-- One row per run: which observation supplies each group of fields. The latest answer wins,
-- but a field an answer did not carry keeps the value of the latest answer that did
-- (errors and attempts come only from some answers, env only from list mode).
select
    run_id,
    arg_max(observation_id, seen_at) as latest_id,
    arg_max(observation_id, seen_at) filter (where has_attempts) as attempts_id,
    arg_max(observation_id, seen_at) filter (where has_error) as error_id,
    arg_max(observation_id, seen_at) filter (where observed_by = 'list') as listed_id,
    arg_max(reported_attempt_count, seen_at) filter (
        where reported_attempt_count is not null
    ) as reported_attempt_count
from intermediate.observations
group by run_id
