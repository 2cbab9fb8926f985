with customers as (

    select * from {{ ref('stg_raw__customers') }}

),

consents as (

    select * from {{ ref('stg_raw__contact_consents') }}

),

{# Every period of the consent log: from consented_at until withdrawn_at (null: still valid). #}
logged as (

    select
        customer_id,
        channel,
        'consent_log' as source,
        consented_at as consented_from,
        withdrawn_at
    from consents

),

{# A preferred channel the log says nothing about (no row at all for that customer and channel)
    counts as consent from the customer's signup date: the contract's rule from before the log,
    so that landing folders without it keep their contacts. No preferred channel and no log
    row: no consent anywhere. #}
implied as (

    select
        customers.customer_id,
        customers.preferred_channel as channel,
        'preferred_channel' as source,
        customers.signup_date::timestamp as consented_from,
        null::timestamp as withdrawn_at
    from customers
    where customers.preferred_channel is not null
        and not exists (
            select 1
            from consents
            where consents.customer_id = customers.customer_id
                and consents.channel = customers.preferred_channel
        )

),

final as (

    select * from logged
    union all
    select * from implied

)

select * from final
