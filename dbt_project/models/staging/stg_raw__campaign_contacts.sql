with source as (

    select * from {{ source('raw', 'campaign_contacts') }}

),

final as (

    select
        customer_id,
        product_id,
        sent_at,
        channel
    from source

)

select * from final
