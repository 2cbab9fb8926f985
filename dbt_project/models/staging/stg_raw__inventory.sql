with source as (

    select * from {{ source('raw', 'inventory') }}

),

final as (

    select
        product_id,
        snapshot_date,
        on_hand_units
    from source

)

select * from final
