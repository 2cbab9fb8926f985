{#- Incremental strategy `changed_weeks`: replace, a whole week at a time, the weeks whose rows
    differ between the model's new rows and the table (dbt_project/README.md, "Incremental marts").

    The incremental materialization first writes every row of the model's query into a temporary
    table. Each week of that table and of the mart is summarized by its row count and a
    fingerprint (the sum over its rows of a 64-bit hash of the whole row, the columns taken by
    name in the same order on both sides). A week whose count or fingerprint differs, or that is on one side only, is deleted
    from the mart and inserted again from the new rows; every other week already holds exactly
    its new rows. So the mart equals a full refresh after every run, whatever changed in raw:
    a later delivery, late or corrected rows in old weeks, rows quarantined, a replay that cut
    history. The model sets unique_key to its week column, which must not be null.

    Models: {{ config(materialized='incremental', incremental_strategy='changed_weeks',
                      unique_key='week_start', on_schema_change='fail') }} -#}
{% macro get_incremental_changed_weeks_sql(arg_dict) %}
    {%- set target = arg_dict["target_relation"] -%}
    {%- set new_rows = arg_dict["temp_relation"] -%}
    {%- set week = arg_dict["unique_key"] -%}
    {%- if week is not string -%}
        {{ exceptions.raise_compiler_error(
            "The changed_weeks strategy of " ~ target ~ " needs unique_key set to its one week "
            ~ "column, e.g. unique_key='week_start'.") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    {%- set weeks = make_temp_relation(target, "__weeks") -%}

    {%- call statement("changed_weeks", fetch_result=True) -%}
        create temporary table {{ weeks }} as
        with new_weeks as (

            {{ week_fingerprints(new_rows, week, columns) }}

        ),

        old_weeks as (

            {{ week_fingerprints(target, week, columns) }}

        )

        select
            {{ week }},
            (
                new_weeks.rows_count is distinct from old_weeks.rows_count
                or new_weeks.fingerprint is distinct from old_weeks.fingerprint
            ) as is_changed
        from new_weeks
        full outer join old_weeks using ({{ week }});

        select
            count(*) filter (where is_changed) as replaced,
            count(*) filter (where not is_changed) as kept
        from {{ weeks }}
    {%- endcall -%}
    {%- set counts = load_result("changed_weeks")["data"][0] -%}
    {%- do log(target.schema ~ "." ~ target.identifier ~ ": " ~ counts[0] ~ " week(s) replaced, "
               ~ counts[1] ~ " kept", info=True) -%}

    delete from {{ target }}
    where {{ week }} in (select {{ week }} from {{ weeks }} where is_changed);

    {#- last, so that dbt reports the rows written; the temporary tables go with the session -#}
    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ new_rows }}
    where {{ week }} in (select {{ week }} from {{ weeks }} where is_changed)
{% endmacro %}


{#- One row per week of `relation`: its row count and the sum of a hash of each row (the columns
    in the given order). hash_record_extended combines the column hashes linearly, so each row's
    hash is mixed once more (hashint8extended) before the sum: otherwise two rows swapping a
    value would leave the sum unchanged. -#}
{% macro week_fingerprints(relation, week, columns) %}
    select
        {{ week }},
        count(*) as rows_count,
        sum(hashint8extended(hash_record_extended(row_values, 0), 0)) as fingerprint
    from (select {{ columns }} from {{ relation }}) as row_values
    group by {{ week }}
{% endmacro %}
