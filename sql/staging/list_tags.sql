-- One row per tag of a run as list mode (GET /api/tasks/runs) last answered it.
with source as (
    select * from raw.runs__tags
),

renamed as (
    select
        observation_id,
        tag_index::integer as tag_index,
        value as tag
    from source
)

select * from renamed
