{{
    config(
        materialized='incremental',
        incremental_strategy='changed_weeks',
        unique_key='week_start',
        on_schema_change='fail',
    )
}}

with order_lines as (

    select * from {{ ref('order_lines') }}

),

products as (

    select * from {{ ref('stg_raw__products') }}

),

weeks as (

    select * from {{ ref('int_weeks__spined') }}

),

promotion_weeks as (

    select * from {{ ref('int_promotions__expanded_to_weeks') }}

),

inventory as (

    select * from {{ ref('stg_raw__inventory') }}

),

contacts as (

    select * from {{ ref('stg_raw__campaign_contacts') }}

),

{# A snapshot belongs to the week (Monday to Sunday) of its date; snapshot dates are calendar
    dates already, so no time zone applies. A product is stocked out in a week when any of the
    week's snapshots shows nothing on hand. #}
stock_weeks as (

    select
        product_id,
        {{ week_start('snapshot_date') }} as week_start,
        bool_or(on_hand_units = 0) as is_stocked_out
    from inventory
    group by product_id, {{ week_start('snapshot_date') }}

),

{# A campaign message belongs to the week of its sent_at on the UTC calendar: contacts have no
    store, so they follow UTC as orders without a store do. A customer contacted several times
    about a product in a week counts once. #}
contact_weeks as (

    select
        product_id,
        {{ local_week_start('sent_at', "'UTC'") }} as week_start,
        count(distinct customer_id) as contacted_customers
    from contacts
    group by product_id, {{ local_week_start('sent_at', "'UTC'") }}

),

product_weeks as (

    select
        products.product_id,
        products.category,
        products.list_price,
        weeks.week_start
    from products
    cross join weeks
    where weeks.is_data_week

),

{# Money is summed in numeric, exactly: a float sum depends on the order the lines are read in,
    which differs between a fully rebuilt and an incrementally updated order_lines, and a
    week's figures must not. #}
weekly_sales as (

    select
        product_id,
        week_start,
        sum(quantity) filter (where not is_return) as units,
        sum(-quantity) filter (where is_return) as returned_units,
        sum(revenue::numeric) filter (where not is_return)::double precision as revenue,
        count(distinct order_id) filter (where not is_return) as orders_count,
        sum((quantity * unit_list_price)::numeric) filter (where not is_return)::double precision
            as list_value
    from order_lines
    group by product_id, week_start

),

filled as (

    select
        product_weeks.product_id,
        product_weeks.category,
        product_weeks.week_start,
        coalesce(weekly_sales.units, 0) as units,
        coalesce(weekly_sales.returned_units, 0) as returned_units,
        coalesce(weekly_sales.revenue, 0) as revenue,
        coalesce(weekly_sales.orders_count, 0) as orders_count,
        coalesce(weekly_sales.list_value / nullif(weekly_sales.units, 0), product_weeks.list_price)
            as avg_list_price,
        coalesce(weekly_sales.revenue / nullif(weekly_sales.units, 0), product_weeks.list_price)
            as avg_paid_price,
        coalesce(promotion_weeks.promo_discount_depth, 0) as promo_discount_depth,
        promotion_weeks.product_id is not null as has_promotion,
        coalesce(promotion_weeks.has_price_cut, false) as promo_price_cut,
        coalesce(promotion_weeks.has_display, false) as promo_display,
        coalesce(promotion_weeks.has_mailer, false) as promo_mailer,
        coalesce(promotion_weeks.has_coupon, false) as promo_coupon,
        coalesce(stock_weeks.is_stocked_out, false) as is_stocked_out,
        coalesce(contact_weeks.contacted_customers, 0)::integer as contacted_customers
    from product_weeks
    left join weekly_sales
        on product_weeks.product_id = weekly_sales.product_id
        and product_weeks.week_start = weekly_sales.week_start
    left join promotion_weeks
        on product_weeks.product_id = promotion_weeks.product_id
        and product_weeks.week_start = promotion_weeks.week_start
    left join stock_weeks
        on product_weeks.product_id = stock_weeks.product_id
        and product_weeks.week_start = stock_weeks.week_start
    left join contact_weeks
        on product_weeks.product_id = contact_weeks.product_id
        and product_weeks.week_start = contact_weeks.week_start

),

priced as (

    select
        *,
        1 - avg_paid_price / avg_list_price as discount_depth
    from filled

),

final as (

    select
        product_id,
        category,
        week_start,
        units,
        returned_units,
        revenue,
        orders_count,
        avg_list_price,
        avg_paid_price,
        discount_depth,
        has_promotion or discount_depth >= 0.01 as is_promoted,
        promo_discount_depth,
        promo_price_cut,
        promo_display,
        promo_mailer,
        promo_coupon,
        is_stocked_out,
        contacted_customers
    from priced

)

select * from final
