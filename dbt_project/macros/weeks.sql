{#- The week rules of the platform for SQL. promoflow/weeks.py holds the same rules for Python;
    tests/dbt/test_week_rules.py checks that both give the same weeks, time zones included.
    - A week starts on Monday; week_start is that Monday's date.
    - An order's date and week are those of its store's local calendar (UTC without a store).
    - The plan week is the week after the last week of data. -#}

{#- The Monday (a date) that starts the week of a date or timestamp. -#}
{% macro week_start(expr) -%}
    date_trunc('week', {{ expr }})::date
{%- endmacro %}

{#- The wall-clock time, in the IANA time zone `timezone` (UTC when null), of a UTC timestamp
    (timestamp without time zone, as raw stores it). -#}
{% macro local_time(utc_timestamp, timezone) -%}
    (({{ utc_timestamp }}) at time zone 'UTC') at time zone coalesce({{ timezone }}, 'UTC')
{%- endmacro %}

{#- The week, on the calendar of `timezone`, of a UTC timestamp. -#}
{% macro local_week_start(utc_timestamp, timezone) -%}
    {{ week_start(local_time(utc_timestamp, timezone)) }}
{%- endmacro %}

{#- The plan week of data whose last week starts on `last_week_start`. -#}
{% macro plan_week_after(last_week_start) -%}
    ({{ week_start(last_week_start) }} + 7)
{%- endmacro %}
