with source as (

    select * from {{ source('raw', 'orders') }}

),

final as (

    select
        order_id,
        customer_id,
        ordered_at,
        channel,
        store_id
    from source

)

select * from final
