with products as (

    select * from {{ ref('stg_raw__products') }}

),

inventory as (

    select * from {{ ref('stg_raw__inventory') }}

),

latest_inventory as (

    select distinct on (product_id)
        product_id,
        snapshot_date,
        on_hand_units
    from inventory
    order by product_id, snapshot_date desc

),

final as (

    select
        products.product_id,
        products.product_name,
        products.category,
        products.brand,
        products.list_price,
        products.unit_cost,
        products.list_price - products.unit_cost as unit_margin,
        (products.list_price - products.unit_cost) / products.list_price as margin_rate,
        coalesce(latest_inventory.on_hand_units, 0) as on_hand_units,
        latest_inventory.snapshot_date as inventory_snapshot_date
    from products
    left join latest_inventory on products.product_id = latest_inventory.product_id

)

select * from final
