"""Feast definitions: project, entities, sources, feature views and feature services.

The sources read the Parquet folders that spark_jobs writes under lake/features/<name>/, so
the objects are built for a given Settings (paths come from the environment at runtime).
Importing this module imports feast: keep it out of DAG parsing.
"""

from __future__ import annotations

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bool, Float64, Int64, String

from promoflow.settings import Settings

PROJECT = "promoflow"
OWNER = "ml-platform@promoflow.dev"
TAGS = {"owner": "ml-platform", "team": "promotions"}

# --- entities ---------------------------------------------------------------------------
customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A registered shopper (marts.customers.customer_id).",
)
product = Entity(
    name="product",
    join_keys=["product_id"],
    value_type=ValueType.INT64,
    description="A catalogue product (marts.products.product_id).",
)

FEATURE_VIEW_NAMES = ("customer_features", "product_features", "product_week_features")
FEATURE_SERVICE_NAMES = ("recommender_v1", "forecaster_v1")


# --- sources ----------------------------------------------------------------------------
def source(settings: Settings, name: str) -> FileSource:
    """The Parquet folder lake/features/<name>/ written by spark_jobs (its part files)."""
    return FileSource(
        name=f"{name}_source",
        path=str(settings.feature_dir(name) / "*.parquet"),
        file_format=ParquetFormat(),
        timestamp_field="event_timestamp",
        description=f"Spark feature job output lake/features/{name}/.",
        owner=OWNER,
        tags=TAGS,
    )


# --- feature views ----------------------------------------------------------------------
def feature_views(settings: Settings) -> dict[str, FeatureView]:
    """The three feature views, keyed by name."""
    customer_features = FeatureView(
        name="customer_features",
        entities=[customer],
        ttl=timedelta(days=14),
        schema=[
            Field(name="recency_days", dtype=Int64,
                  description="Days since the last purchase (or since signup without one)."),
            Field(name="frequency_orders_52w", dtype=Int64,
                  description="Purchase orders in the 52 weeks before the snapshot."),
            Field(name="monetary_value_52w", dtype=Float64,
                  description="Net revenue in the 52 weeks before the snapshot."),
            Field(name="avg_discount_depth", dtype=Float64,
                  description="1 - paid / list value of the units bought in 52 weeks."),
            Field(name="promo_share", dtype=Float64,
                  description="Share of the units bought in 52 weeks that were promoted."),
            Field(name="top_category", dtype=String,
                  description="Category with most units bought in 52 weeks ('none' if none)."),
        ],
        source=source(settings, "customer_features"),
        online=True,
        description="Weekly customer snapshots (RFM, discount affinity) for the recommender.",
        owner=OWNER,
        tags=TAGS,
    )
    product_features = FeatureView(
        name="product_features",
        entities=[product],
        ttl=timedelta(days=14),
        schema=[
            Field(name="category", dtype=String, description="Product category."),
            Field(name="list_price", dtype=Float64, description="Catalogue list price."),
            Field(name="unit_cost", dtype=Float64, description="Unit cost."),
            Field(name="margin_rate", dtype=Float64, description="(list - cost) / list."),
            Field(name="popularity_units_12w", dtype=Int64,
                  description="Units sold in the 12 weeks before the snapshot."),
            Field(name="promo_lift", dtype=Float64,
                  description="Smoothed ratio of mean weekly units promoted vs not."),
        ],
        source=source(settings, "product_features"),
        online=True,
        description="Weekly product snapshots (catalogue, popularity, promo lift).",
        owner=OWNER,
        tags=TAGS,
    )
    product_week_features = FeatureView(
        name="product_week_features",
        entities=[product],
        ttl=timedelta(days=6),
        schema=[
            Field(name="category_idx", dtype=Int64, description="0-based category index."),
            Field(name="week_of_year", dtype=Int64, description="ISO week number."),
            Field(name="is_holiday_week", dtype=Bool, description="A holiday falls in the week."),
            Field(name="units_lag_1", dtype=Int64, description="Units sold 1 week before."),
            Field(name="units_lag_2", dtype=Int64, description="Units sold 2 weeks before."),
            Field(name="units_lag_4", dtype=Int64, description="Units sold 4 weeks before."),
            Field(name="units_lag_52", dtype=Int64, description="Units sold 52 weeks before."),
            Field(name="units_roll_mean_4", dtype=Float64,
                  description="Mean weekly units over the 4 weeks before."),
            Field(name="units_roll_mean_12", dtype=Float64,
                  description="Mean weekly units over the 12 weeks before."),
            Field(name="units_roll_std_12", dtype=Float64,
                  description="Standard deviation of weekly units over the 12 weeks before."),
            Field(name="discount_depth", dtype=Float64,
                  description="The week's discount depth (0 in the plan week)."),
            Field(name="is_promoted", dtype=Bool,
                  description="The week is promoted (false in the plan week)."),
            Field(name="list_price", dtype=Float64, description="The week's list price."),
            Field(name="discount_depth_lag_1", dtype=Float64,
                  description="Realized discount depth 1 week before (0 when none)."),
            Field(name="discount_depth_lag_2", dtype=Float64,
                  description="Realized discount depth 2 weeks before (0 when none)."),
            Field(name="discount_depth_lag_3", dtype=Float64,
                  description="Realized discount depth 3 weeks before (0 when none)."),
            Field(name="promo_display", dtype=Float64,
                  description="1.0 when a display promotion overlaps the week (0 in the plan "
                  "week)."),
            Field(name="promo_mailer", dtype=Float64,
                  description="1.0 when a mailer promotion overlaps the week (0 in the plan "
                  "week)."),
            Field(name="promo_coupon", dtype=Float64,
                  description="1.0 when a coupon promotion overlaps the week (0 in the plan "
                  "week)."),
            Field(name="category_promo_pressure", dtype=Float64,
                  description="Sum over the other promoted products of the category of their "
                  "12-week unit share times their discount depth (0 in the plan week)."),
            Field(name="category_promo_count", dtype=Float64,
                  description="Other products of the category promoted in the week (0 in the "
                  "plan week)."),
            Field(name="is_stocked_out", dtype=Float64,
                  description="1.0 when a snapshot of the week shows 0 on hand (0 in the plan "
                  "week)."),
            Field(name="stocked_out_lag_1", dtype=Float64,
                  description="is_stocked_out of the week before."),
            Field(name="contacted_customers", dtype=Float64,
                  description="Distinct customers sent a campaign message about the product in "
                  "the week (0 in the plan week)."),
        ],
        source=source(settings, "product_week_features"),
        online=True,
        description="One row per product and week (plan week included) for the forecaster.",
        owner=OWNER,
        tags=TAGS,
    )
    return {view.name: view for view in (customer_features, product_features,
                                         product_week_features)}


# --- feature services -------------------------------------------------------------------
FORECASTER_PRODUCT_FEATURES = [
    "category", "unit_cost", "margin_rate", "popularity_units_12w", "promo_lift",
]


def feature_services(views: dict[str, FeatureView]) -> dict[str, FeatureService]:
    """One service per model version.

    forecaster_v1 takes list_price from product_week_features only (the week's price), since
    both views name a feature list_price.
    """
    recommender_v1 = FeatureService(
        name="recommender_v1",
        features=[views["customer_features"], views["product_features"]],
        description="Customer and product snapshots for the two-tower recommender.",
        owner=OWNER,
        tags=TAGS,
    )
    forecaster_v1 = FeatureService(
        name="forecaster_v1",
        features=[
            views["product_week_features"],
            views["product_features"][FORECASTER_PRODUCT_FEATURES],
        ],
        description="Product-week covariates and product snapshots for the demand forecaster.",
        owner=OWNER,
        tags=TAGS,
    )
    return {service.name: service for service in (recommender_v1, forecaster_v1)}


def all_objects(settings: Settings) -> list:
    """Everything `apply` registers, in dependency order."""
    views = feature_views(settings)
    return [customer, product, *views.values(), *feature_services(views).values()]
