-- One row per run id: the run's latest known state. The base of every question about runs.
-- Money: cost_cents and base_cost_cents as the API gives them (cents, with fractions);
-- total_cost_usd = (cost_cents + base_cost_cents) / 100.
with versions as (
    select * from intermediate.run_versions
),

listed as (
    select * from staging.run_answers where observed_by = 'list'
),

retrieved as (
    select * from staging.run_answers where observed_by = 'retrieve'
),

groups as (
    select * from staging.status_groups
),

picked as (
    select
        versions.run_id,
        listed.account_id,
        if(versions.retrieved_is_latest, retrieved.status, listed.status) as status,
        if(versions.retrieved_is_latest, retrieved.is_test, listed.is_test) as is_test,
        coalesce(listed.env_name, retrieved.env_name) as env_name,
        if(versions.retrieved_is_latest, retrieved.task_identifier, listed.task_identifier) as task_identifier,
        if(versions.retrieved_is_latest, retrieved.created_at, listed.created_at) as created_at,
        if(versions.retrieved_is_latest, retrieved.updated_at, listed.updated_at) as updated_at,
        if(versions.retrieved_is_latest, retrieved.started_at, listed.started_at) as started_at,
        if(versions.retrieved_is_latest, retrieved.finished_at, listed.finished_at) as finished_at,
        if(versions.retrieved_is_latest, retrieved.duration_ms, listed.duration_ms) as duration_ms,
        if(versions.retrieved_is_latest, retrieved.cost_cents, listed.cost_cents) as cost_cents,
        if(versions.retrieved_is_latest, retrieved.base_cost_cents, listed.base_cost_cents) as base_cost_cents,
        case versions.attempts_from
            when 'retrieve' then retrieved.attempts_listed
            when 'list' then listed.attempts_listed
        end as attempts_listed,
        coalesce(retrieved.reported_attempt_count, listed.reported_attempt_count) as reported_attempt_count,
        case versions.error_from
            when 'retrieve' then retrieved.error_message
            when 'list' then listed.error_message
        end as error_message
    from versions
    inner join listed on listed.observation_id = versions.listed_id
    left join retrieved on retrieved.observation_id = versions.retrieved_id
),

final as (
    select
        picked.run_id,
        picked.account_id,
        picked.status,
        coalesce(groups.status_group, 'unknown') as status_group,
        picked.is_test,
        picked.env_name,
        picked.task_identifier,
        picked.created_at,
        picked.updated_at,
        picked.started_at,
        picked.finished_at,
        picked.duration_ms,
        picked.cost_cents,
        picked.base_cost_cents,
        (coalesce(picked.cost_cents, 0) + coalesce(picked.base_cost_cents, 0)) / 100 as total_cost_usd,
        coalesce(picked.attempts_listed, picked.reported_attempt_count)::integer as attempt_count,
        picked.error_message
    from picked
    left join groups on groups.status = picked.status
)

select * from final
