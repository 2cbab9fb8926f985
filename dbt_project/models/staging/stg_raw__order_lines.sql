with source as (

    select * from {{ source('raw', 'order_lines') }}

),

final as (

    select
        order_id,
        line_number,
        product_id,
        quantity,
        unit_list_price::double precision as unit_list_price,
        unit_paid_price::double precision as unit_paid_price,
        promotion_id
    from source

)

select * from final
