with source as (

    select * from {{ source('raw', 'contact_consents') }}

),

final as (

    select
        customer_id,
        channel,
        consented_at,
        withdrawn_at
    from source

)

select * from final
