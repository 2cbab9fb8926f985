with source as (

    select * from {{ source('raw', 'holidays') }}

),

final as (

    select
        holiday_date,
        holiday_name
    from source

)

select * from final
