{#- Every Monday from the first week of orders to the plan week + 1 (plan week = last data week + 7 days). -#}
with orders as (

    select * from {{ ref('int_orders__localized') }}

),

data_bounds as (

    select
        min(week_start) as first_week_start,
        max(week_start) as last_week_start
    from orders

),

spine as (

    select
        series.week_start::date as week_start,
        data_bounds.last_week_start
    from data_bounds
    cross join lateral generate_series(
        data_bounds.first_week_start,
        data_bounds.last_week_start + 14,
        interval '7 days'
    ) as series (week_start)

),

final as (

    select
        week_start,
        week_start <= last_week_start as is_data_week,
        week_start = last_week_start + 7 as is_plan_week
    from spine

)

select * from final
