-- Tables BI tools read. Every row carries the run that wrote it; a plan week holds one plan.
create schema if not exists published;

create table if not exists published.plans (
    run_id                        text primary key,
    plan_week                     date not null unique,
    published_at                  timestamptz not null default now(),
    dataset                       text not null,
    budget                        double precision not null,
    max_discount                  double precision not null,
    margin_floor                  double precision not null,
    max_promos_per_category       integer not null,
    audience_size                 integer not null,
    holdout_fraction              double precision not null,
    products_considered           integer not null,
    products_promoted             integer not null,
    promotion_cost                double precision not null,
    expected_incremental_revenue  double precision not null,
    expected_incremental_profit   double precision not null,
    solver_status                 text not null
);

-- Columns added since the first release: existing warehouses are migrated in place.
alter table published.plans add column if not exists discount_step double precision not null default 0.1; -- the step before it was a parameter
alter table published.plans add column if not exists seed integer;
alter table published.plans add column if not exists mip_gap double precision;
alter table published.plans add column if not exists spend_at_confidence double precision;
alter table published.plans add column if not exists budget_confidence double precision;
alter table published.plans add column if not exists expected_dip_cost double precision;
alter table published.plans add column if not exists expected_cannibalization_cost double precision;
alter table published.plans add column if not exists contact_effect double precision;
alter table published.plans add column if not exists contact_effect_weeks integer;
alter table published.plans add column if not exists expected_contact_units double precision;
comment on column published.plans.contact_effect is 'Extra buyers per treated target that the plan counts for its contacts: the treatment-minus-holdout purchase-rate difference of the plan weeks measured before (inverse-variance pooled; 0 before any).';
comment on column published.plans.expected_contact_units is 'Units the plan''s contacts are expected to add (contact_effect x treated targets, summed over the lines).';
comment on column published.plans.spend_at_confidence is 'Spend the plan stays within at budget_confidence: P50 spend plus z times the standard deviation of its sum (from the lines'' P10-P90).';
comment on column published.plans.expected_incremental_profit is 'Net of the post-promotion dip in the next weeks and of the category siblings'' lost profit (the program''s objective).';
comment on column published.plans.solver_status is 'HiGHS model status of the discount program (Optimal, Time limit reached, ...).';
comment on column published.plans.mip_gap is 'Relative gap between the plan''s objective and the solver''s proven bound (0 = proven optimal).';

create table if not exists published.plan_lines (
    run_id                        text not null references published.plans (run_id) on delete cascade,
    plan_week                     date not null,
    product_id                    bigint not null,
    product_name                  text,
    category                      text not null,
    list_price                    double precision not null,
    unit_cost                     double precision not null,
    discount_depth                double precision not null,
    promo_price                   double precision not null,
    on_hand_units                 integer not null,
    baseline_units_p50            double precision not null,
    units_p10                     double precision not null,
    units_p50                     double precision not null,
    units_p90                     double precision not null,
    expected_units                double precision not null,
    promotion_cost                double precision not null,
    expected_incremental_revenue  double precision not null,
    expected_incremental_profit   double precision not null,
    binding_constraint            text not null,
    primary key (run_id, product_id)
);

alter table published.plan_lines add column if not exists promotion_cost_p90 double precision not null default 0;
alter table published.plan_lines add column if not exists dip_units double precision not null default 0;
alter table published.plan_lines add column if not exists dip_cost double precision not null default 0;
alter table published.plan_lines add column if not exists cannibalized_units double precision not null default 0;
alter table published.plan_lines add column if not exists cannibalization_cost double precision not null default 0;
alter table published.plan_lines add column if not exists contact_units double precision not null default 0;
comment on column published.plan_lines.contact_units is 'Units the line''s contacts are expected to add (measured effect x treated targets); included in units_p10/p50/p90 and expected_units.';
comment on column published.plan_lines.promotion_cost_p90 is 'Discount given away if the line sells its P90 units (stock-capped).';
comment on column published.plan_lines.dip_units is 'Units the promotion takes from the product''s next weeks (post-promotion dip), forecast.';
comment on column published.plan_lines.cannibalized_units is 'Units the category siblings lose to this promotion, forecast (before the category cap).';

create table if not exists published.plan_targets (
    run_id       text not null references published.plans (run_id) on delete cascade,
    plan_week    date not null,
    product_id   bigint not null,
    customer_id  bigint not null,
    score        double precision not null,
    rank         integer not null,
    assignment   text not null check (assignment in ('treatment', 'holdout')),
    channel      text not null,
    primary key (run_id, product_id, customer_id)
);

create table if not exists published.forecasts (
    run_id          text not null references published.plans (run_id) on delete cascade,
    plan_week       date not null,
    product_id      bigint not null,
    discount_depth  double precision not null,
    units_p10       double precision not null,
    units_p50       double precision not null,
    units_p90       double precision not null,
    primary key (run_id, product_id, discount_depth)
);

create table if not exists published.model_metrics (
    run_id          text not null references published.plans (run_id) on delete cascade,
    model           text not null,
    metric          text not null,
    model_value     double precision,
    baseline        text not null,
    baseline_value  double precision,
    primary key (run_id, model, metric)
);

create or replace view published.current_plan as
    select * from published.plans
    where plan_week = (select max(plan_week) from published.plans);

create or replace view published.current_plan_lines as
    select l.* from published.plan_lines l join published.current_plan p using (run_id);

create or replace view published.current_plan_targets as
    select t.* from published.plan_targets t join published.current_plan p using (run_id);

create table if not exists published.forecast_backtest (
    run_id            text not null references published.plans (run_id) on delete cascade,
    plan_week         date not null,
    week_start        text not null,
    model             text not null,
    rows              integer not null,
    wape              double precision,
    bias              double precision,
    mase              double precision,
    quantile_loss     double precision,
    p10_p90_coverage  double precision,
    primary key (run_id, week_start, model)
);
comment on table published.forecast_backtest is 'Rolling-origin backtest of the forecaster (model, seasonal_naive, lightgbm): one row per forecast week (YYYY-MM-DD) and model, and week_start = ''overall'' over all of them.';

-- Write-audit-publish staging: a run's rows land here first, are audited in SQL, then moved to
-- published in one transaction and removed. Unlogged (scratch data) and without keys or checks,
-- so that the audit, not a constraint error, reports a bad row. BI cannot read this schema.
create schema if not exists published_staging;
create unlogged table if not exists published_staging.plans (like published.plans including defaults);
alter table published_staging.plans add column if not exists discount_step double precision not null default 0.1; -- the step before it was a parameter
alter table published_staging.plans add column if not exists seed integer;
alter table published_staging.plans add column if not exists mip_gap double precision;
alter table published_staging.plans add column if not exists spend_at_confidence double precision;
alter table published_staging.plans add column if not exists budget_confidence double precision;
alter table published_staging.plans add column if not exists expected_dip_cost double precision;
alter table published_staging.plans add column if not exists expected_cannibalization_cost double precision;
create unlogged table if not exists published_staging.plan_lines (like published.plan_lines including defaults);
alter table published_staging.plan_lines add column if not exists promotion_cost_p90 double precision not null default 0;
alter table published_staging.plan_lines add column if not exists dip_units double precision not null default 0;
alter table published_staging.plan_lines add column if not exists dip_cost double precision not null default 0;
alter table published_staging.plan_lines add column if not exists cannibalized_units double precision not null default 0;
alter table published_staging.plan_lines add column if not exists cannibalization_cost double precision not null default 0;
create unlogged table if not exists published_staging.plan_targets (like published.plan_targets);
create unlogged table if not exists published_staging.forecasts (like published.forecasts);
create unlogged table if not exists published_staging.model_metrics (like published.model_metrics);
create unlogged table if not exists published_staging.forecast_backtest (like published.forecast_backtest);

-- A synthetic market's plans scored on its ground truth (python -m scoring.score), one row per
-- policy: the plan, no promotion, a simple rule and the oracle.
create table if not exists published.plan_scores (
    run_id                   text not null references published.plans (run_id) on delete cascade,
    plan_week                date not null,
    dataset                  text not null,
    policy                   text not null check (policy in ('plan', 'no_promotion', 'simple_rule', 'oracle')),
    products_promoted        integer not null,
    true_spend               double precision not null,
    budget                   double precision not null,
    within_budget            boolean not null,
    true_net_profit          double precision not null,
    true_incremental_profit  double precision not null,
    efficiency               double precision,
    violations               text not null,
    primary key (run_id, policy)
);
alter table published.plan_scores add column if not exists true_dip_cost double precision not null default 0;
alter table published.plan_scores add column if not exists true_cannibalization_cost double precision not null default 0;
comment on column published.plan_scores.true_net_profit is 'True profit of the plan week minus the true cost of the post-promotion dip in the next weeks.';
comment on column published.plan_scores.true_cannibalization_cost is 'True profit the category siblings lost to the policy''s promotions.';

