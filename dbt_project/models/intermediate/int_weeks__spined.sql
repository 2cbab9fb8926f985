{#- Every Monday from the first week of orders to the week after the plan week (macros/weeks.sql). -#}
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
        {{ plan_week_after(plan_week_after('data_bounds.last_week_start')) }},
        interval '7 days'
    ) as series (week_start)

),

final as (

    select
        week_start,
        week_start <= last_week_start as is_data_week,
        week_start = {{ plan_week_after('last_week_start') }} as is_plan_week
    from spine

)

select * from final
