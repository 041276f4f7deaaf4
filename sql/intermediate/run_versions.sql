-- materialized: table
-- One row per run: its last list answer and its last retrieve answer side by side, with the
-- answer each group of fields comes from. The latest answer wins, but a field an answer did
-- not carry keeps the value of the latest answer that did (errors and attempts come only from
-- some answers, env only from list mode).
with listed as (
    select * from staging.run_answers where observed_by = 'list'
),

retrieved as (
    select * from staging.run_answers where observed_by = 'retrieve'
),

final as (
    select
        listed.run_id,
        coalesce(retrieved.seen_at > listed.seen_at, false) as retrieved_is_latest,
        case
            when retrieved.has_attempts and (not listed.has_attempts or retrieved.seen_at > listed.seen_at)
                then 'retrieve'
            when listed.has_attempts then 'list'
        end as attempts_from,
        case
            when retrieved.has_error and (not listed.has_error or retrieved.seen_at > listed.seen_at)
                then 'retrieve'
            when listed.has_error then 'list'
        end as error_from,
        listed.observation_id as listed_id,
        retrieved.observation_id as retrieved_id
    from listed
    left join retrieved using (run_id)
)

select * from final
