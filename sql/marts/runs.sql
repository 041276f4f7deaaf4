-- One row per run id: the run's latest known state. The base of every question about runs.
-- Money: cost_cents and base_cost_cents as the API gives them (cents, with fractions);
-- total_cost_usd = (cost_cents + base_cost_cents) / 100.
with versions as (
    select * from intermediate.run_versions
),

observations as (
    select * from intermediate.observations
),

groups as (
    select * from staging.status_groups
),

final as (
    select
        versions.run_id,
        listed.account_id,
        latest.status,
        coalesce(groups.status_group, 'unknown') as status_group,
        latest.is_test,
        coalesce(listed.env_name, latest.env_name) as env_name,
        latest.task_identifier,
        latest.created_at,
        latest.updated_at,
        latest.started_at,
        latest.finished_at,
        latest.duration_ms,
        latest.cost_cents,
        latest.base_cost_cents,
        (coalesce(latest.cost_cents, 0) + coalesce(latest.base_cost_cents, 0)) / 100 as total_cost_usd,
        coalesce(attempted.attempts_carried, versions.reported_attempt_count)::integer as attempt_count,
        errored.error_message
    from versions
    inner join observations as latest on latest.observation_id = versions.latest_id
    left join observations as listed on listed.observation_id = versions.listed_id
    left join observations as attempted on attempted.observation_id = versions.attempts_id
    left join observations as errored on errored.observation_id = versions.error_id
    left join groups on groups.status = latest.status
)

select * from final
