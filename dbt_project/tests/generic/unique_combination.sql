{#- The combination of the given columns identifies one row (a compound primary key). -#}
{% test unique_combination(model, combination_of_columns) %}

with grouped as (

    select
        {{ combination_of_columns | join(', ') }},
        count(*) as rows_count
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

),

final as (

    select * from grouped
    where rows_count > 1

)

select * from final

{% endtest %}
