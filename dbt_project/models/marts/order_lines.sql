{{
    config(
        materialized='incremental',
        incremental_strategy='changed_weeks',
        unique_key='week_start',
        on_schema_change='fail',
    )
}}

with order_lines as (

    select * from {{ ref('stg_raw__order_lines') }}

),

orders as (

    select * from {{ ref('int_orders__localized') }}

),

products as (

    select * from {{ ref('stg_raw__products') }}

),

lines_with_orders as (

    select
        order_lines.order_id,
        order_lines.line_number,
        orders.customer_id,
        order_lines.product_id,
        products.category,
        orders.ordered_at,
        orders.order_date,
        orders.week_start,
        orders.channel,
        orders.store_id,
        order_lines.quantity,
        order_lines.unit_list_price,
        order_lines.unit_paid_price,
        order_lines.promotion_id
    from order_lines
    inner join orders on order_lines.order_id = orders.order_id
    inner join products on order_lines.product_id = products.product_id

),

priced as (

    select
        *,
        1 - unit_paid_price / unit_list_price as discount_depth,
        quantity * unit_paid_price as revenue
    from lines_with_orders

),

final as (

    select
        order_id,
        line_number,
        customer_id,
        product_id,
        category,
        ordered_at,
        order_date,
        week_start,
        channel,
        store_id,
        quantity,
        unit_list_price,
        unit_paid_price,
        discount_depth,
        revenue,
        quantity < 0 as is_return,
        customer_id is null as is_guest,
        promotion_id is not null or discount_depth >= 0.01 as is_promoted
    from priced

)

select * from final
