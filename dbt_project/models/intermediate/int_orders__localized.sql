{#- Orders on their store's local calendar: a store order's date and week are those of the
    store's time zone; orders without a store (or without a stores file) follow UTC. -#}
with orders as (

    select * from {{ ref('stg_raw__orders') }}

),

stores as (

    select * from {{ ref('stg_raw__stores') }}

),

localized as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.channel,
        orders.ordered_at,
        {{ local_time('orders.ordered_at', 'stores.timezone') }} as ordered_at_local
    from orders
    left join stores on orders.store_id = stores.store_id

),

final as (

    select
        *,
        ordered_at_local::date as order_date,
        {{ week_start('ordered_at_local') }} as week_start
    from localized

)

select * from final
