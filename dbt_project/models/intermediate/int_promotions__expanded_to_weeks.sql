{#- Promotions spread over every week they overlap, then rolled up per product and week. -#}
with promotions as (

    select * from {{ ref('stg_raw__promotions') }}

),

promotion_weeks as (

    select
        promotions.promotion_id,
        promotions.product_id,
        promotions.discount_depth,
        series.week_start::date as week_start
    from promotions
    cross join lateral generate_series(
        {{ week_start('promotions.start_date') }},
        {{ week_start('promotions.end_date') }},
        interval '7 days'
    ) as series (week_start)

),

final as (

    select
        product_id,
        week_start,
        count(*) as promotions_count,
        max(discount_depth) as promo_discount_depth
    from promotion_weeks
    group by product_id, week_start

)

select * from final
