with customers as (

    select * from {{ ref('stg_raw__customers') }}

),

orders as (

    select * from {{ ref('stg_raw__orders') }}

),

customer_orders as (

    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders_count
    from orders
    where customer_id is not null
    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.signup_date,
        customers.region,
        customers.age_band,
        customers.preferred_channel,
        customer_orders.first_order_at,
        customer_orders.last_order_at,
        coalesce(customer_orders.orders_count, 0) as orders_count
    from customers
    left join customer_orders on customers.customer_id = customer_orders.customer_id

)

select * from final
