-- Tables BI tools read. Every row carries the run that wrote it. Plans are versioned: every
-- published run keeps its rows (plan version = run id) and published.current_plans names the
-- current version of each (dataset, plan week).
create schema if not exists published;

create table if not exists published.plans (
    run_id                        text primary key,
    plan_week                     date not null,
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
alter table published.plans add column if not exists uplift_learned boolean;
alter table published.plans add column if not exists uplift_rows integer;
alter table published.plans add column if not exists uplift_weeks integer;
alter table published.plans add column if not exists uplift_average double precision;
comment on column published.plans.uplift_learned is 'Whether the targets were chosen by an uplift model learned on measured weeks (false: by deal proneness, before any week was measured).';
comment on column published.plans.uplift_rows is 'Measured targets (treated and holdout) the uplift model learned from.';
comment on column published.plans.uplift_weeks is 'Measured plan weeks the uplift model learned from.';
comment on column published.plans.uplift_average is 'The uplift model''s average effect over the targets it learned from (the measured treated-minus-holdout purchase rate).';
comment on column published.plans.contact_effect is 'Extra buyers per treated target that the plan counts for its contacts: the treatment-minus-holdout purchase-rate difference of the plan weeks measured before (inverse-variance pooled; 0 before any).';
comment on column published.plans.expected_contact_units is 'Incremental buyers (one unit each) the plan''s contacts are expected to add: the sum of the treated targets'' uplift when it was learned, else contact_effect x treated targets.';
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
comment on column published.plan_lines.contact_units is 'Units the line''s contacts are expected to add (the sum of its treated targets'' uplift; before an uplift is learned, the measured effect x treated targets); included in units_p10/p50/p90 and expected_units.';
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
alter table published.plan_targets add column if not exists uplift double precision not null default 0;
comment on column published.plan_targets.uplift is 'Extra chance that a contact makes the customer buy the product (the uplift model''s estimate; 0 before any measured week): the audience is the candidates with the highest.';

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

-- Customer segments of the run's plan week (spark_jobs.customer_segments): one row per profiled
-- customer and one per segment. No personal attributes (region, age, signup date) are published.
create table if not exists published.segment_profiles (
    run_id                    text not null references published.plans (run_id) on delete cascade,
    plan_week                 date not null,
    segment_id                integer not null,
    segment_name              text not null,
    customers                 integer not null,
    share                     double precision not null,
    avg_monetary_value_52w    double precision not null,
    avg_frequency_orders_52w  double precision not null,
    avg_basket_units          double precision not null,
    promo_share               double precision not null,
    promo_depth               double precision not null,
    avg_price_index           double precision,
    price_tier                text,
    web_share                 double precision not null,
    app_share                 double precision not null,
    store_share               double precision not null,
    top_categories            text not null,
    new_share                 double precision not null,
    active_share              double precision not null,
    lapsing_share             double precision not null,
    churned_share             double precision not null,
    centroid                  double precision[],
    centroid_features         text[],
    primary key (run_id, segment_id)
);
comment on table published.segment_profiles is 'One row per customer segment of a plan week: its size and mean profile over the 52 weeks before the plan week. Segment ids are matched week to week by centroid, so an id names the same group of customers over time; segment 0 holds the customers without purchases in the 52 weeks.';
comment on column published.segment_profiles.run_id is 'The run that wrote the segments (and the plan of the week).';
comment on column published.segment_profiles.plan_week is 'Monday of the plan week; profiles use only order lines of the weeks before it.';
comment on column published.segment_profiles.segment_id is 'Segment id, stable across weeks of a dataset (matched by centroid); 0 = no purchases in the 52 weeks before the plan week.';
comment on column published.segment_profiles.segment_name is 'Readable name from the segment''s profile against the mean of the clustered customers (deal-driven, occasional, high-value, frequent, premium; leading channel).';
comment on column published.segment_profiles.customers is 'Customers in the segment.';
comment on column published.segment_profiles.share is 'Share of all profiled customers (segment 0 included) in the segment.';
comment on column published.segment_profiles.avg_monetary_value_52w is 'Mean net revenue per customer in the 52 weeks before the plan week (returns subtract).';
comment on column published.segment_profiles.avg_frequency_orders_52w is 'Mean purchase orders per customer in the 52 weeks.';
comment on column published.segment_profiles.avg_basket_units is 'Mean of the customers'' units per purchase order.';
comment on column published.segment_profiles.promo_share is 'Mean of the customers'' share of units bought on promotion.';
comment on column published.segment_profiles.promo_depth is 'Mean of the customers'' average discount depth of the promoted units they bought (0 for none).';
comment on column published.segment_profiles.avg_price_index is 'Mean of the customers'' paid unit price over the category''s average list price (1 = a typical unit at full price); null for segment 0.';
comment on column published.segment_profiles.price_tier is 'budget (avg_price_index < 0.85), mid (< 1.05) or premium; null for segment 0.';
comment on column published.segment_profiles.web_share is 'Mean of the customers'' share of purchase orders placed on the web.';
comment on column published.segment_profiles.app_share is 'Mean of the customers'' share of purchase orders placed in the app.';
comment on column published.segment_profiles.store_share is 'Mean of the customers'' share of purchase orders placed in a store.';
comment on column published.segment_profiles.top_categories is 'The three categories with the highest mean unit share, with that share (e.g. ''home 15%, toys 12%, books 9%'').';
comment on column published.segment_profiles.new_share is 'Share of the segment''s customers who signed up in the 8 weeks before the plan week.';
comment on column published.segment_profiles.active_share is 'Share of the segment''s customers (not new) with a purchase in the 4 weeks before the plan week.';
comment on column published.segment_profiles.lapsing_share is 'Share of the segment''s customers (not new) whose last purchase was 4 to 13 weeks before the plan week.';
comment on column published.segment_profiles.churned_share is 'Share of the segment''s customers (not new) without a purchase for 13 weeks or more, or ever.';
comment on column published.segment_profiles.centroid is 'The cluster centre in profile units (see centroid_features), used to match the next week''s segments to this one''s ids; null for segment 0.';
comment on column published.segment_profiles.centroid_features is 'Names of the centroid''s dimensions: log1p orders, log1p spend, promo share, channel shares, log1p basket units, then category:<name> unit shares.';

create table if not exists published.customer_segments (
    run_id       text not null references published.plans (run_id) on delete cascade,
    plan_week    date not null,
    customer_id  bigint not null,
    segment_id   integer not null,
    lifecycle    text not null check (lifecycle in ('new', 'active', 'lapsing', 'churned')),
    primary key (run_id, customer_id),
    foreign key (run_id, segment_id) references published.segment_profiles (run_id, segment_id)
        on delete cascade
);
comment on table published.customer_segments is 'Each profiled customer''s segment and lifecycle stage as of the plan week (customers who signed up or bought before it).';
comment on column published.customer_segments.run_id is 'The run that wrote the segments (and the plan of the week).';
comment on column published.customer_segments.plan_week is 'Monday of the plan week; the segment uses only order lines of the weeks before it.';
comment on column published.customer_segments.customer_id is 'The customer (an id only; no personal attributes are published).';
comment on column published.customer_segments.segment_id is 'The customer''s segment (published.segment_profiles); 0 = no purchases in the 52 weeks before the plan week.';
comment on column published.customer_segments.lifecycle is 'new (signed up in the 8 weeks before the plan week), else active (a purchase in the 4 weeks before), lapsing (last purchase 4 to 13 weeks before) or churned (none for 13 weeks or more, or never).';

-- Personal offers of the run's plan (planning/offers.py): a coupon deeper than the public
-- price for the treated targets of one segment on one promoted product.
alter table published.plans add column if not exists max_offers_per_customer integer;
alter table published.plans add column if not exists offers integer;
alter table published.plans add column if not exists offer_recipients integer;
alter table published.plans add column if not exists offer_cost double precision;
alter table published.plans add column if not exists expected_offer_profit double precision;
comment on column published.plans.offer_cost is 'Extra discount the personal offers are expected to give away (within the budget, with the lines).';
comment on column published.plans.expected_offer_profit is 'Incremental profit the personal offers are expected to add over the plain contacts (included in expected_incremental_profit).';
alter table published.plan_targets add column if not exists offer_depth double precision;
comment on column published.plan_targets.offer_depth is 'The personal (coupon) discount depth the treated target is offered; null: the public price (the holdout never gets one).';

create table if not exists published.plan_offers (
    run_id                       text not null references published.plans (run_id) on delete cascade,
    plan_week                    date not null,
    product_id                   bigint not null,
    segment_id                   integer not null,
    segment_name                 text,
    discount_depth               double precision not null,
    offer_depth                  double precision not null check (offer_depth > discount_depth),
    offer_price                  numeric(12, 2) not null,
    recipients                   integer not null check (recipients > 0),
    expected_redemptions         double precision not null,
    expected_incremental_units   double precision not null,
    expected_spend               double precision not null,
    expected_spend_sd            double precision not null,
    expected_incremental_profit  double precision not null,
    primary key (run_id, product_id, segment_id)
);
comment on table published.plan_offers is 'Personal offers: the treated targets of a segment get the promoted product at offer_depth instead of the public discount_depth.';
comment on column published.plan_offers.recipients is 'Treated targets of the product in the segment who get the coupon (after the per-customer cap).';
comment on column published.plan_offers.expected_redemptions is 'Recipients expected to buy the product at the offer price.';
comment on column published.plan_offers.expected_incremental_units is 'Units the coupon is expected to add over the plain contact at the public price.';
comment on column published.plan_offers.expected_spend is 'Extra discount the coupon is expected to give away over the public price.';
comment on column published.plan_offers.expected_incremental_profit is 'Profit the coupon is expected to add over the plain contact at the public price (the segment''s estimated price response).';

-- A replay (the run parameter as_of): the plan used only the data dated before this day.
alter table published.plans add column if not exists as_of date;
comment on column published.plans.as_of is 'Replays only: the plan was made with the data as it stood at 00:00 UTC that day (ingest.load.cut_as_of); null: with all the data landed when it ran.';

-- Plan versions. Every published run keeps its rows (plan version = run id); a rerun of a
-- (dataset, plan week) adds a version and moves that key's pointer below in the publishing
-- transaction, so readers see the previous version or the new one, never both. A republish of
-- the same run id (a task retry) replaces that run's rows only.
-- Migration of warehouses that held one plan per week: the week's uniqueness is dropped in place
-- and every existing plan becomes the current version of its (dataset, plan week).
alter table published.plans drop constraint if exists plans_plan_week_key;
create index if not exists plans_dataset_plan_week on published.plans (dataset, plan_week);

create table if not exists published.current_plans (
    dataset     text not null,
    plan_week   date not null,
    run_id      text not null unique references published.plans (run_id),
    updated_at  timestamptz not null default now(),
    primary key (dataset, plan_week)
);
comment on table published.current_plans is 'The current plan version of each dataset and plan week: the run published last for it. Moved by each publish in the same transaction as its rows.';
comment on column published.current_plans.run_id is 'The current version (published.plans.run_id); the other runs of the week stay in published.plans as earlier versions.';
comment on column published.current_plans.updated_at is 'When this version became current (its publishing transaction''s start).';

-- every (dataset, plan week) without a pointer gets its latest version (the migration's fill)
insert into published.current_plans (dataset, plan_week, run_id, updated_at)
    select distinct on (dataset, plan_week) dataset, plan_week, run_id, published_at
    from published.plans order by dataset, plan_week, published_at desc, run_id desc
    on conflict do nothing;

-- BI views. is_current comes first so that columns added to plans later extend the view.
create or replace view published.plan_versions as
    select p.run_id in (select run_id from published.current_plans) as is_current, p.*
    from published.plans p;
comment on view published.plan_versions is 'Every published plan version (one per run) with whether it is the current version of its dataset and plan week.';

create or replace view published.current_plans_by_week as
    select p.* from published.plans p
    where p.run_id in (select run_id from published.current_plans);
comment on view published.current_plans_by_week is 'The current plan version of every dataset and plan week.';

create or replace view published.current_plan as
    select p.* from published.plans p
    where p.run_id in (select distinct on (dataset) run_id from published.current_plans
                       order by dataset, plan_week desc);
comment on view published.current_plan is 'Per dataset, the current version of its latest plan week (one row per dataset).';

create or replace view published.current_plan_lines as
    select l.* from published.plan_lines l join published.current_plan p using (run_id);
comment on view published.current_plan_lines is 'Lines of published.current_plan (per dataset, its latest plan week''s current version).';

create or replace view published.current_plan_targets as
    select t.* from published.plan_targets t join published.current_plan p using (run_id);
comment on view published.current_plan_targets is 'Targets of published.current_plan (per dataset, its latest plan week''s current version).';

create or replace view published.current_plan_offers as
    select o.* from published.plan_offers o join published.current_plan p using (run_id);
comment on view published.current_plan_offers is 'Personal offers of published.current_plan (per dataset, its latest plan week''s current version).';

-- the segments of current_plan's runs (without depending on that view)
create or replace view published.current_segment_profiles as
    select s.* from published.segment_profiles s
    where s.run_id in (select distinct on (dataset) run_id from published.current_plans
                       order by dataset, plan_week desc);
comment on view published.current_segment_profiles is 'Segments of published.current_plan''s runs (per dataset, its latest plan week''s current version).';

create or replace view published.current_customer_segments as
    select c.* from published.customer_segments c
    where c.run_id in (select distinct on (dataset) run_id from published.current_plans
                       order by dataset, plan_week desc);
comment on view published.current_customer_segments is 'Customer segments of published.current_plan''s runs (per dataset, its latest plan week''s current version).';

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
alter table published_staging.plans add column if not exists contact_effect double precision;
alter table published_staging.plans add column if not exists contact_effect_weeks integer;
alter table published_staging.plans add column if not exists expected_contact_units double precision;
alter table published_staging.plans add column if not exists uplift_learned boolean;
alter table published_staging.plans add column if not exists uplift_rows integer;
alter table published_staging.plans add column if not exists uplift_weeks integer;
alter table published_staging.plans add column if not exists uplift_average double precision;
create unlogged table if not exists published_staging.plan_lines (like published.plan_lines including defaults);
alter table published_staging.plan_lines add column if not exists promotion_cost_p90 double precision not null default 0;
alter table published_staging.plan_lines add column if not exists dip_units double precision not null default 0;
alter table published_staging.plan_lines add column if not exists dip_cost double precision not null default 0;
alter table published_staging.plan_lines add column if not exists cannibalized_units double precision not null default 0;
alter table published_staging.plan_lines add column if not exists cannibalization_cost double precision not null default 0;
create unlogged table if not exists published_staging.plan_targets (like published.plan_targets);
alter table published_staging.plan_targets add column if not exists uplift double precision not null default 0;
create unlogged table if not exists published_staging.forecasts (like published.forecasts);
create unlogged table if not exists published_staging.model_metrics (like published.model_metrics);
create unlogged table if not exists published_staging.forecast_backtest (like published.forecast_backtest);
create unlogged table if not exists published_staging.segment_profiles (like published.segment_profiles);
create unlogged table if not exists published_staging.customer_segments (like published.customer_segments);
alter table published_staging.plans add column if not exists max_offers_per_customer integer;
alter table published_staging.plans add column if not exists offers integer;
alter table published_staging.plans add column if not exists offer_recipients integer;
alter table published_staging.plans add column if not exists offer_cost double precision;
alter table published_staging.plans add column if not exists expected_offer_profit double precision;
alter table published_staging.plan_targets add column if not exists offer_depth double precision;
create unlogged table if not exists published_staging.plan_offers (like published.plan_offers);
alter table published_staging.plans add column if not exists as_of date;

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

