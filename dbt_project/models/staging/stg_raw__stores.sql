with source as (

    select * from {{ source('raw', 'stores') }}

),

final as (

    select
        store_id,
        store_name,
        region,
        timezone
    from source

)

select * from final
