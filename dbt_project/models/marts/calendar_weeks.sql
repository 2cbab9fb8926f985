with weeks as (

    select * from {{ ref('int_weeks__spined') }}

),

holidays as (

    select * from {{ ref('stg_raw__holidays') }}

),

holiday_weeks as (

    select
        {{ week_start('holiday_date') }} as week_start,
        string_agg(holiday_name, ', ' order by holiday_date) as holiday_name
    from holidays
    group by {{ week_start('holiday_date') }}

),

final as (

    select
        weeks.week_start,
        extract(week from weeks.week_start)::integer as week_of_year,
        holiday_weeks.week_start is not null as is_holiday_week,
        holiday_weeks.holiday_name
    from weeks
    left join holiday_weeks on weeks.week_start = holiday_weeks.week_start

)

select * from final
