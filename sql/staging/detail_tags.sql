-- One row per tag of a run as retrieve mode (?runId=) last answered it.
with source as (
    select * from raw.run_details__tags
),

renamed as (
    select
        observation_id,
        tag_index::integer as tag_index,
        value as tag
    from source
)

select * from renamed
