-- docker-compose: the Airflow metadata database beside the warehouse, and the warehouse roles.
create database promo_airflow;

-- The pipeline's writer role and the read-only BI role (see promoflow/roles.py). Names and
-- passwords come from the postgres container's environment: PROMO_WRITER_USER (default
-- promo_writer), PROMO_WRITER_PASSWORD, PROMO_BI_USER (default promo_bi), PROMO_BI_PASSWORD.
-- A role whose password is not set is not created here. Grants are per database and are made
-- by promoflow.roles.ensure_roles(), which the weekly flow runs (it also creates missing roles).
\getenv writer_user PROMO_WRITER_USER
\if :{?writer_user}
\else
\set writer_user promo_writer
\endif
\getenv writer_password PROMO_WRITER_PASSWORD
\if :{?writer_password}
create role :"writer_user" with login nosuperuser nocreatedb nocreaterole noinherit
    password :'writer_password';
grant connect, temporary, create on database promo to :"writer_user";
\else
\echo PROMO_WRITER_PASSWORD is not set: the writer role is left to promoflow.roles.ensure_roles()
\endif

\getenv bi_user PROMO_BI_USER
\if :{?bi_user}
\else
\set bi_user promo_bi
\endif
\getenv bi_password PROMO_BI_PASSWORD
\if :{?bi_password}
create role :"bi_user" with login nosuperuser nocreatedb nocreaterole noinherit
    password :'bi_password';
grant connect on database promo to :"bi_user";
\else
\echo PROMO_BI_PASSWORD is not set: the BI role is left to promoflow.roles.ensure_roles()
\endif
revoke temporary on database promo from public;
