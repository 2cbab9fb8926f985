with source as (

    select * from {{ source('raw', 'customers') }}

),

final as (

    select
        customer_id,
        signup_date,
        region,
        age_band,
        preferred_channel
    from source

)

select * from final
