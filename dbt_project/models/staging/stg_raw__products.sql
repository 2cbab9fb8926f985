with source as (

    select * from {{ source('raw', 'products') }}

),

final as (

    select
        product_id,
        product_name,
        category,
        brand,
        list_price::double precision as list_price,
        unit_cost::double precision as unit_cost
    from source

)

select * from final
