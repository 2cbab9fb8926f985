{#- Promotions spread over every week they overlap, up to the last week of the spine (an
    open end such as 9999-12-31 stops there), then rolled up per product and week: how many,
    the deepest discount and one flag per promo_type (a product-week may have several
    promotions, of several types). -#}
with promotions as (

    select * from {{ ref('stg_raw__promotions') }}

),

spine_end as (

    select max(week_start) as last_week_start from {{ ref('int_weeks__spined') }}

),

promotion_weeks as (

    select
        promotions.promotion_id,
        promotions.product_id,
        promotions.discount_depth,
        promotions.promo_type,
        series.week_start::date as week_start
    from promotions
    cross join spine_end
    cross join lateral generate_series(
        {{ week_start('promotions.start_date') }},
        least({{ week_start('promotions.end_date') }}, spine_end.last_week_start),
        interval '7 days'
    ) as series (week_start)

),

final as (

    select
        product_id,
        week_start,
        count(*) as promotions_count,
        max(discount_depth) as promo_discount_depth,
        bool_or(promo_type = 'price_cut') as has_price_cut,
        bool_or(promo_type = 'display') as has_display,
        bool_or(promo_type = 'mailer') as has_mailer,
        bool_or(promo_type = 'coupon') as has_coupon
    from promotion_weeks
    group by product_id, week_start

)

select * from final
