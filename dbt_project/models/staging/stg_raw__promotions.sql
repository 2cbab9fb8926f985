with source as (

    select * from {{ source('raw', 'promotions') }}

),

final as (

    select
        promotion_id,
        product_id,
        start_date,
        end_date,
        discount_depth::double precision as discount_depth,
        promo_type
    from source

)

select * from final
