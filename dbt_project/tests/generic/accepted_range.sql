{#- Every non-null value lies in [min_value, max_value] (max exclusive when max_inclusive is false). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none, max_inclusive=true) %}

with final as (

    select {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null
      and (
          false
          {%- if min_value is not none %}
          or {{ column_name }} < {{ min_value }}
          {%- endif %}
          {%- if max_value is not none %}
          or {{ column_name }} {{ '>' if max_inclusive else '>=' }} {{ max_value }}
          {%- endif %}
      )

)

select * from final

{% endtest %}
