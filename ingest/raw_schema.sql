-- The raw contract as warehouse tables. Ingest validates every landing row against
-- docs/raw_contract.md; rows that pass land here, the others in raw.quarantine.
create schema if not exists raw;
create schema if not exists audit;

create table if not exists raw.customers (
    customer_id        bigint primary key,
    signup_date        date not null,
    region             text not null,
    age_band           text,
    preferred_channel  text check (preferred_channel in ('email', 'app_push', 'sms'))
);

create table if not exists raw.products (
    product_id    bigint primary key,
    product_name  text not null,
    category      text not null,
    brand         text,
    list_price    numeric(12, 2) not null check (list_price > 0),
    unit_cost     numeric(12, 2) not null check (unit_cost > 0)
);

create table if not exists raw.stores (
    store_id    bigint primary key,
    store_name  text not null,
    region      text,
    timezone    text not null   -- IANA name; the store's weeks follow its local calendar
);

create table if not exists raw.orders (
    order_id     bigint primary key,
    customer_id  bigint references raw.customers (customer_id),  -- null: guest checkout
    ordered_at   timestamp not null,
    channel      text not null check (channel in ('web', 'app', 'store'))
);
-- the store of the order (null: none, e.g. online), added after the first release
alter table raw.orders add column if not exists store_id bigint references raw.stores (store_id);

create table if not exists raw.order_lines (
    order_id         bigint not null references raw.orders (order_id),
    line_number      integer not null,
    product_id       bigint not null references raw.products (product_id),
    quantity         integer not null check (quantity <> 0),   -- negative: a return
    unit_list_price  numeric(12, 2) not null check (unit_list_price > 0),
    unit_paid_price  numeric(12, 2) not null check (unit_paid_price > 0),
    promotion_id     bigint,
    primary key (order_id, line_number),
    check (unit_paid_price <= unit_list_price)   -- discount depth 1 - paid/list in [0, 1)
);

create table if not exists raw.promotions (
    promotion_id    bigint primary key,
    product_id      bigint not null references raw.products (product_id),
    start_date      date not null,
    end_date        date not null,
    discount_depth  numeric(6, 4) not null check (discount_depth >= 0 and discount_depth < 1),
    promo_type      text not null check (promo_type in ('price_cut', 'display', 'mailer', 'coupon')),
    check (end_date >= start_date)
);

create table if not exists raw.inventory (
    product_id     bigint not null references raw.products (product_id),
    snapshot_date  date not null,
    on_hand_units  integer not null check (on_hand_units >= 0),
    primary key (product_id, snapshot_date)
);

create table if not exists raw.holidays (
    holiday_date  date primary key,
    holiday_name  text not null
);

-- the send log of the marketing-automation tool: one row per message sent (an optional file,
-- added after the first release)
create table if not exists raw.campaign_contacts (
    customer_id  bigint not null references raw.customers (customer_id),
    product_id   bigint not null references raw.products (product_id),
    sent_at      timestamp not null,
    channel      text not null check (channel in ('email', 'app_push', 'sms')),
    primary key (customer_id, product_id, sent_at)
);

-- the consent log: per customer and channel, when consent to be contacted was given and when
-- it was withdrawn (null: still valid); an optional file, added after the first release
create table if not exists raw.contact_consents (
    customer_id   bigint not null references raw.customers (customer_id),
    channel       text not null check (channel in ('email', 'app_push', 'sms')),
    consented_at  timestamp not null,
    withdrawn_at  timestamp,
    primary key (customer_id, channel, consented_at),
    check (withdrawn_at >= consented_at)
);

create table if not exists raw.quarantine (
    run_id          text not null,
    table_name      text not null,
    source_file     text not null,
    source_line     integer,          -- 1-based line in the file, header is line 1
    reason          text not null,    -- a reason code from docs/raw_contract.md, e.g. 'orphan_order'
    detail          text,
    record          jsonb,
    quarantined_at  timestamptz not null default now()
);

create table if not exists audit.ingest_runs (
    run_id            text not null,
    table_name        text not null,
    source_file       text not null,
    input_rows        bigint not null,
    loaded_rows       bigint not null,
    quarantined_rows  bigint not null,
    loaded_at         timestamptz not null default now(),
    primary key (run_id, table_name),
    check (input_rows = loaded_rows + quarantined_rows)
);
-- the landing folder of the load: quality gates compare a load with the previous one of the
-- same folder (added after the first release, hence the alter)
alter table audit.ingest_runs add column if not exists source_dir text;
-- a replay's load (ingest.load.cut_as_of): the time it was as of, and the rows of the files
-- dated at or after it, left out because they did not exist yet (input_rows counts the rest)
alter table audit.ingest_runs add column if not exists as_of timestamp;
alter table audit.ingest_runs add column if not exists later_rows bigint not null default 0;

-- what a load's landing folder held that no table reads (ingest.load.unread_files): a
-- re-delivered part under another name, a file in the wrong folder; the run summary names them
create table if not exists audit.landing_unread (
    run_id      text not null,
    path        text not null,   -- relative to the landing folder
    primary key (run_id, path)
);
