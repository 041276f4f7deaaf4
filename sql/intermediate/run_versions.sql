-- materialized: table
-- One row per run: its last list answer and its last retrieve answer reconciled, with the
-- answer each group of fields comes from. The latest answer wins, but a field an answer did
-- not carry keeps the value of the latest answer that did (errors and attempts come only from
-- some answers, env only from list mode; an API field one mode omits, such as relatedRuns or
-- batchId, is null in that answer and the other answer's value stands). analytics.runs is this
-- table, named for analysts.
--
-- A sync rebuilds only the rows of the runs it loaded:
-- incremental: run_id from staging.run_answers
with listed as (
    select * from staging.run_answers where observed_by = 'list'
),

retrieved as (
    select * from staging.run_answers where observed_by = 'retrieve'
),

paired as (
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
        retrieved.observation_id as retrieved_id,
        listed.account_id,
        coalesce(listed.env_name, retrieved.env_name) as env_name,
        coalesce(retrieved.reported_attempt_count, listed.reported_attempt_count) as reported_attempt_count,
        -- the latest answer first: a field it left null keeps the other answer's value
        if(retrieved_is_latest, retrieved, listed) as latest,
        if(retrieved_is_latest, listed, retrieved) as earlier,
        listed as l,
        retrieved as r
    from listed
    left join retrieved using (run_id)
),

reconciled as (
    select
        run_id,
        retrieved_is_latest,
        attempts_from,
        error_from,
        listed_id,
        retrieved_id,
        account_id,
        if(retrieved_is_latest, r.status, l.status) as status,
        if(retrieved_is_latest, r.is_test, l.is_test) as is_test,
        env_name,
        if(retrieved_is_latest, r.task_identifier, l.task_identifier) as task_identifier,
        if(retrieved_is_latest, r.created_at, l.created_at) as created_at,
        if(retrieved_is_latest, r.updated_at, l.updated_at) as updated_at,
        if(retrieved_is_latest, r.started_at, l.started_at) as started_at,
        if(retrieved_is_latest, r.finished_at, l.finished_at) as finished_at,
        if(retrieved_is_latest, r.duration_ms, l.duration_ms) as duration_ms,
        if(retrieved_is_latest, r.cost_cents, l.cost_cents) as cost_cents,
        if(retrieved_is_latest, r.base_cost_cents, l.base_cost_cents) as base_cost_cents,
        case attempts_from
            when 'retrieve' then r.attempts_listed
            when 'list' then l.attempts_listed
        end as attempts_listed,
        reported_attempt_count,
        case error_from
            when 'retrieve' then r.error_message
            when 'list' then l.error_message
        end as error_message,
        coalesce(l.env_id, r.env_id) as env_id,
        coalesce(latest.version, earlier.version) as version,
        coalesce(latest.batch_id, earlier.batch_id) as batch_id,
        coalesce(latest.depth, earlier.depth) as depth,
        coalesce(latest.idempotency_key, earlier.idempotency_key) as idempotency_key,
        coalesce(latest.trigger_function, earlier.trigger_function) as trigger_function,
        coalesce(latest.task_kind, earlier.task_kind) as task_kind,
        coalesce(latest.region, earlier.region) as region,
        case error_from
            when 'retrieve' then r.error_name
            when 'list' then l.error_name
        end as error_name,
        coalesce(latest.metadata, earlier.metadata) as metadata,
        coalesce(latest.parent_run_id, earlier.parent_run_id) as parent_run_id,
        coalesce(latest.root_run_id, earlier.root_run_id) as root_run_id,
        coalesce(latest.delayed_until, earlier.delayed_until) as delayed_until,
        coalesce(latest.expired_at, earlier.expired_at) as expired_at,
        coalesce(latest.ttl, earlier.ttl) as ttl
    from paired
),

final as (
    select
        *,
        -- the run's cost in US dollars, kept here so that no report query computes it per run
        -- (times 0.01, not / 100: DuckDB divides decimals as doubles)
        ((coalesce(cost_cents, 0) + coalesce(base_cost_cents, 0)) * 0.01)::decimal(20, 8) as total_cost_usd
    from reconciled
)

select * from final
