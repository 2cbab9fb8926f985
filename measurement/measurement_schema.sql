-- What each published plan week really did (promo_measure, measurement/measure.py), measured on
-- the week's current version; a week measured again (after a rerun, on the new version) replaces
-- its rows. The BI role reads these tables like the rest of `published`.
create schema if not exists published;

create table if not exists published.plan_results (
    run_id                        text not null references published.plans (run_id) on delete cascade,
    dataset                       text not null,
    plan_week                     date not null,
    product_id                    bigint not null,
    discount_depth                double precision not null,
    forecast_units                double precision not null,
    baseline_units                double precision not null,
    actual_units                  double precision not null,
    forecast_error_units          double precision not null,
    realized_incremental_units    double precision not null,
    realized_incremental_revenue  double precision not null,
    realized_incremental_profit   double precision not null,
    planned_incremental_profit    double precision not null,
    promotion_cost                double precision not null,
    roi                           double precision,
    following_weeks               integer not null,
    following_units               double precision,
    dip_units                     double precision,
    measured_at                   timestamptz not null default now(),
    primary key (dataset, plan_week, product_id)
);
comment on table published.plan_results is 'Per promoted plan line: the week''s actual units against the forecast at the chosen discount and against the no-promotion forecast (baseline); realized incremental = actual at the promoted price minus baseline at list price.';
alter table published.plan_results add column if not exists forecast_baseline_units double precision;
alter table published.plan_results add column if not exists control_level double precision;
comment on column published.plan_results.forecast_baseline_units is 'The no-promotion forecast (P50 at discount 0, at most the stock on hand).';
comment on column published.plan_results.control_level is 'The week''s level: actual over no-promotion forecast of the products the plan did not promote, their expected cannibalized units added back (0.5-2).';
comment on column published.plan_results.baseline_units is 'The counterfactual: forecast_baseline_units x control_level.';
comment on column published.plan_results.dip_units is 'Units below the no-promotion forecast over the following weeks that are in the warehouse (up to 3); null until one is.';

create table if not exists published.experiment_results (
    run_id              text not null references published.plans (run_id) on delete cascade,
    dataset             text not null,
    plan_week           date not null,
    scope               text not null check (scope in ('overall', 'product')),
    product_id          bigint,
    metric              text not null check (metric in ('purchase_rate', 'spend_per_customer')),
    test                text not null,
    treated_n           integer not null,
    control_n           integer not null,
    treated_value       double precision not null,
    control_value       double precision not null,
    difference          double precision not null,
    ci_low              double precision not null,
    ci_high             double precision not null,
    p_value             double precision not null,
    mde                 double precision not null,
    variance_reduction  double precision not null default 0,
    measured_at         timestamptz not null default now(),
    check ((scope = 'overall') = (product_id is null))
);
create unique index if not exists experiment_results_key
    on published.experiment_results (dataset, plan_week, scope, coalesce(product_id, -1), metric);
comment on table published.experiment_results is 'Treatment minus holdout among the targeted customers, per targeted product and over all (customer-product pairs): purchase rate of the product in the plan week (two-proportion z-test) and spend on it (Welch t-test, CUPED with the customer''s spend on it in the 8 weeks before); 95% interval, p-value, minimum detectable effect at 80% power.';

create table if not exists published.forecast_accuracy (
    run_id            text not null references published.plans (run_id) on delete cascade,
    dataset           text not null,
    plan_week         date not null,
    products          integer not null,
    actual_units      double precision not null,
    forecast_units    double precision not null,
    wape              double precision,
    bias              double precision,
    p10_p90_coverage  double precision,
    measured_at       timestamptz not null default now(),
    primary key (dataset, plan_week)
);
comment on table published.forecast_accuracy is 'The plan week''s forecast of every product at the level the plan gave it, against the actual units: WAPE, bias (forecast / actual - 1), share inside P10-P90.';
