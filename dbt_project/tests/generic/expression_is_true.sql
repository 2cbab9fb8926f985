{#- Every row makes the boolean SQL expression true (a null result passes, as in a check constraint). -#}
{% test expression_is_true(model, expression) %}

with final as (

    select *
    from {{ model }}
    where not ({{ expression }})

)

select * from final

{% endtest %}
