"""Customer segments: the customers' profiles clustered with Spark MLlib, stable ids, names.

The stage of a weekly run (DAG task `segment_customers`, entry point `segment_customers`):
profiles as of the plan week (`spark_jobs.customer_profiles`), then

1. Clustering. Customers with at least one purchase order in the 52-week window are clustered
   on BEHAVIOUR (log orders, log net spend, promo share, web/app/store order shares, log basket
   units) and their category shares. StandardScaler (mean 0, standard deviation 1 per column),
   then an ElementwiseProduct that turns the category columns back into centred shares scaled
   together so that the category block's total variance equals the behaviour block's (one unit
   per behaviour column): tastes count as much as behaviour however many categories there are,
   and a rare category is not blown up to a full unit of variance. KMeans (k-means||, seed =
   the run's seed) on one sorted partition, so a seed gives the same segments.
2. k. Every k in K_RANGE (3..8, at most one per MIN_CUSTOMERS_PER_SEGMENT customers) is fitted
   (on a fixed sample of CLUSTER_SAMPLE buyers when there are more: the buyers with the lowest
   hash of customer id and seed; every buyer then gets the nearest centroid of the chosen fit,
   so 200,000 customers cost 18 fits of 20,000 and one pass over them) and the highest
   Calinski-Harabasz score wins (between-cluster over within-cluster sum of
   squares, each per its degrees of freedom; from KMeans' training cost). The silhouette
   (MLlib's ClusteringEvaluator) was tried first: on the demo markets (seeds 42 and 7) it
   peaked at k = 5 to 8 by splitting small groups off real segments, while Calinski-Harabasz
   chose k = 4, the market's number of hidden segments, on both.
3. Stable ids. Each cluster's centroid in profile units (the unscaled clustering features,
   `centroid_features` names them) is matched to the segments of the latest earlier plan week
   of the same dataset in `published.segment_profiles` with scipy's linear_sum_assignment, on
   their distance in this week's scaled space; a pair further apart than MAX_MATCH_DISTANCE is
   no match. Unmatched clusters get new ids after the highest id the dataset ever used, larger
   clusters first (ids start at 1 for a dataset's first segmentation).
4. Customers without a purchase order in the window get segment 0, NO_PURCHASES_NAME.
5. Names (`segment_name`) from each segment's profile against the clustered customers' mean
   (see `name_segments`), made unique.

Writes the run folder's `customer_segments.parquet` (one row per profiled customer: segment_id
and the profile columns; written by Spark, no rows collected on the driver) and
`segment_profiles.parquet` (one row per segment, SEGMENT_PROFILE_COLUMNS).
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import ElementwiseProduct, StandardScaler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.linalg import Vectors
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from promoflow.run import Run
from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect, current_plans_table
from spark_jobs.customer_profiles import (
    CHANNELS,
    LIFECYCLES,
    PRICE_TIERS,
    build_customer_profiles,
)
from spark_jobs.session import FeatureJobError, get_spark, read_mart, stop_spark

log = logging.getLogger(__name__)

K_RANGE = range(3, 9)
RESTARTS = 3
MAX_ITER = 50
MIN_CUSTOMERS_PER_SEGMENT = 5
#: at most this many buyers are clustered; the others get the nearest centroid
CLUSTER_SAMPLE = 20_000
NO_PURCHASES = 0
NO_PURCHASES_NAME = "no recent purchases"
#: centroids further apart than this (in the week's scaled space, where a behaviour column's
#: standard deviation is 1) are not the same segment
MAX_MATCH_DISTANCE = 1.0
TOP_CATEGORIES = 3
DECIMALS = 9  # of the segment profiles' numbers
CATEGORY_PREFIX = "category:"

#: the behaviour columns clustered, in profile units (log1p of counts and money)
BEHAVIOUR = ("log_orders", "log_spend", "promo_share", *(f"{c}_share" for c in CHANNELS),
             "log_basket_units")


def _behaviour() -> list[F.Column]:
    """The BEHAVIOUR columns of a profile (built once a Spark session runs)."""
    return [F.log1p("frequency_orders_52w"),
            F.log1p(F.greatest("monetary_value_52w", F.lit(0.0))),
            F.col("promo_share"),
            *(F.col(f"{c}_share") for c in CHANNELS),
            F.log1p("basket_units")]


SEGMENT_PROFILE_COLUMNS = [
    "segment_id", "segment_name", "customers", "share", "avg_monetary_value_52w",
    "avg_frequency_orders_52w", "avg_basket_units", "promo_share", "promo_depth",
    "avg_price_index", "price_tier", "web_share", "app_share", "store_share", "top_categories",
    *[f"{stage}_share" for stage in LIFECYCLES], "centroid", "centroid_features",
]

# naming rules against the clustered customers' mean (name_segments)
DEAL_PROMO_SHARE = 1.1  # promo share at least 10% above the mean
OCCASIONAL_FREQUENCY = 0.65  # orders at most 65% of the mean
HIGH_VALUE_MONETARY = 1.5  # spend at least 50% above the mean
FREQUENT_FREQUENCY = 1.4  # orders at least 40% above the mean
CHANNEL_MAJORITY = 0.5  # the segment places at least half its orders in its leading channel


class SegmentationError(FeatureJobError):
    """Customers cannot be segmented (too few buyers)."""


@dataclass(frozen=True)
class PreviousSegments:
    """The segments a dataset published for its latest earlier plan week."""

    ids: list[int]
    features: list[list[str]]  # centroid_features of each
    centroids: list[list[float]]
    max_id: int  # the highest segment id the dataset used before this plan week

    def aligned(self, features: list[str]) -> np.ndarray:
        """The centroids on `features` (a feature they lack, e.g. a new category, is 0)."""
        return np.array([[dict(zip(names, values)).get(f, 0.0) for f in features]
                         for names, values in zip(self.features, self.centroids)])


@dataclass(frozen=True)
class Segmentation:
    customers: DataFrame  # customer_id, segment_id and the profile columns
    profiles: pd.DataFrame  # SEGMENT_PROFILE_COLUMNS, segment 0 first
    k: int
    calinski_harabasz: dict[int, float]  # per k tried


def segment_customers(run: Run, settings: Settings | None = None) -> dict:
    """The segmentation stage of a weekly run: profiles as of its plan week, segments, and the
    run folder's customer_segments.parquet and segment_profiles.parquet; returns a summary."""
    s = settings or get_settings()
    plan_week = run.plan_week  # RunConfigError before Spark starts when it is not resolved
    started = time.time()
    own_session = SparkSession.getActiveSession() is None
    spark = get_spark(s)
    try:
        order_lines = read_mart(spark, s, "order_lines").cache()
        profiles = build_customer_profiles(
            order_lines, read_mart(spark, s, "customers"), plan_week).cache()
        previous = previous_segments(run.params.dataset, plan_week, s)
        result = build_segments(profiles, run.params.seed, previous)
        folder = run.folder(s)
        folder.path.mkdir(parents=True, exist_ok=True)
        result.customers.orderBy("customer_id").coalesce(1).write.mode("overwrite").parquet(
            str(folder.customer_segments))
        tmp = folder.segment_profiles.with_name(f".{folder.segment_profiles.name}.tmp")
        result.profiles.to_parquet(tmp, index=False)
        os.replace(tmp, folder.segment_profiles)
        profiles.unpersist()
        order_lines.unpersist()
    finally:
        if own_session:
            stop_spark(spark)
    summary = {
        "k": result.k,
        "customers": int(result.profiles["customers"].sum()),
        "segments": dict(zip(result.profiles["segment_id"].astype(str),
                             result.profiles["segment_name"])),
        "seconds": round(time.time() - started, 1),
    }
    log.info("Run %s: %d customers in %d segments (k=%d) in %.1f s", run.run_id,
             summary["customers"], len(result.profiles), result.k, summary["seconds"])
    return summary


def build_segments(profiles: DataFrame, seed: int,
                   previous: PreviousSegments | None = None,
                   sample_size: int = CLUSTER_SAMPLE) -> Segmentation:
    """Segments of the profiled customers (see the module docstring); k-means is fitted on at
    most `sample_size` buyers."""
    buyers = profiles.where(F.col("frequency_orders_52w") > 0)
    categories = sorted(row[0] for row in buyers.select(
        F.explode(F.map_keys("category_shares"))).distinct().collect())
    features = [*BEHAVIOUR, *(CATEGORY_PREFIX + c for c in categories)]
    raw = buyers.select(
        "customer_id",
        array_to_vector(F.array(
            *_behaviour(),
            *(F.coalesce(F.col("category_shares")[c], F.lit(0.0)) for c in categories),
        ).cast("array<double>")).alias("raw"),
    ).repartition(1).sortWithinPartitions("customer_id").cache()  # one ordered input: one answer
    n = raw.count()
    ks = [k for k in K_RANGE if k * MIN_CUSTOMERS_PER_SEGMENT <= n]
    if not ks:
        raise SegmentationError(
            f"Only {n} customers bought in the 52 weeks before the plan week; segmentation needs "
            f"at least {K_RANGE[0] * MIN_CUSTOMERS_PER_SEGMENT}.")

    scaler = StandardScaler(inputCol="raw", outputCol="scaled", withMean=True,
                            withStd=True).fit(raw)
    std = scaler.std.toArray()
    weights = _feature_weights(std, len(BEHAVIOUR))
    scaled = ElementwiseProduct(scalingVec=Vectors.dense(weights), inputCol="scaled",
                                outputCol="features").transform(scaler.transform(raw)).cache()
    total = scaled.select(F.aggregate(vector_to_array("features"), F.lit(0.0),
                                      lambda acc, v: acc + v * v).alias("ss")
                          ).agg(F.sum("ss")).first()[0]  # total sum of squares (mean is 0)
    raw.unpersist()  # `scaled` holds it from here on
    fitted_on, m = scaled, n
    if n > sample_size:
        fitted_on = (scaled.withColumn("_h", F.xxhash64("customer_id", F.lit(seed)))
                     .orderBy("_h", "customer_id").limit(sample_size).drop("_h")
                     .repartition(1).sortWithinPartitions("customer_id").cache())
        m = fitted_on.count()
        squares, mean = fitted_on.select(
            F.aggregate(vector_to_array("features"), F.lit(0.0),
                        lambda acc, v: acc + v * v).alias("ss"), "features",
        ).agg(F.sum("ss"), Summarizer.mean(F.col("features"))).first()
        total = squares - m * float(np.square(mean.toArray()).sum())  # about the sample's mean
        log.info("k-means on a sample of %d of the %d buyers", m, n)

    scores, models = {}, {}
    for k in ks:
        # the best of RESTARTS fits (seeds seed, seed + 1, ...): one k-means|| start can
        # settle in a poor local optimum and misjudge its k
        model = min((KMeans(k=k, seed=seed + i, featuresCol="features", maxIter=MAX_ITER)
                     .fit(fitted_on) for i in range(RESTARTS)),
                    key=lambda fitted: fitted.summary.trainingCost)
        within = model.summary.trainingCost
        found = len(model.clusterCenters())
        if found < 2 or within <= 0:
            continue  # fewer distinct customers than k: no spread to score
        scores[k] = ((total - within) / (found - 1)) / (within / (m - found))
        models[k] = model
        log.info("k=%d: Calinski-Harabasz %.1f", k, scores[k])
    if not scores:
        raise SegmentationError(f"The {n} buying customers have too few distinct profiles to "
                                "form segments.")
    k = max(scores, key=lambda key: (scores[key], -key))
    clusters = models[k].transform(scaled).select("customer_id", "prediction", "raw")

    stats = clusters.groupBy("prediction").agg(
        F.count("*").alias("customers"), Summarizer.mean(F.col("raw")).alias("centroid")
    ).orderBy("prediction").collect()
    centroids = np.array([row["centroid"].toArray() for row in stats])
    scale = np.where(std > 0, weights / np.where(std > 0, std, 1.0), 0.0)
    ids = match_segment_ids(centroids, features, scale, [row["customers"] for row in stats],
                            previous)
    spark = profiles.sparkSession
    id_of = spark.createDataFrame([(row["prediction"], ids[i]) for i, row in enumerate(stats)],
                                  "prediction int, segment_id int")
    customers = profiles.join(
        clusters.join(id_of, "prediction").select("customer_id", "segment_id"), "customer_id",
        "left",
    ).withColumn("segment_id", F.coalesce("segment_id", F.lit(NO_PURCHASES)))
    customers = customers.select("customer_id", "segment_id",
                                 *[c for c in profiles.columns if c != "customer_id"])
    table = segment_table(customers)
    centroid_of = {ids[i]: [round(float(v), DECIMALS) for v in c]
                   for i, c in enumerate(centroids)}
    table["centroid"] = [centroid_of.get(segment) for segment in table["segment_id"]]
    table["centroid_features"] = table["segment_id"].map(
        lambda segment: features if segment != NO_PURCHASES else None)
    table["segment_name"] = name_segments(table)
    return Segmentation(customers, table[SEGMENT_PROFILE_COLUMNS], k, scores)


def _feature_weights(std: np.ndarray, n_behaviour: int) -> np.ndarray:
    """ElementwiseProduct weights after standardization: 1 per behaviour column; the category
    columns back to centred shares, scaled so their total variance is n_behaviour."""
    categories = std[n_behaviour:]
    variance = float((categories ** 2).sum())
    factor = math.sqrt(n_behaviour / variance) if variance > 0 else 0.0
    return np.concatenate([np.ones(n_behaviour), categories * factor])


def match_segment_ids(centroids: np.ndarray, features: list[str], scale: np.ndarray,
                      sizes: list[int], previous: PreviousSegments | None) -> list[int]:
    """Segment id of each cluster: its match among the previous segments (linear sum
    assignment on the scaled centroid distance, at most MAX_MATCH_DISTANCE apart), else a new
    id after the dataset's highest, larger clusters first."""
    ids: list[int | None] = [None] * len(centroids)
    if previous is not None and previous.ids:
        cost = cdist(centroids * scale, previous.aligned(features) * scale)
        for row, col in zip(*linear_sum_assignment(cost)):
            log.info("cluster of %d customers: nearest previous segment %d at %.2f", sizes[row],
                     previous.ids[col], cost[row, col])
            if cost[row, col] <= MAX_MATCH_DISTANCE:
                ids[row] = previous.ids[col]
    next_id = max(previous.max_id if previous else NO_PURCHASES, NO_PURCHASES) + 1
    for i in sorted(range(len(ids)), key=lambda i: (-sizes[i], i)):
        if ids[i] is None:
            ids[i], next_id = next_id, next_id + 1
    return ids


def segment_table(customers: DataFrame) -> pd.DataFrame:
    """One row per segment: size, share and mean profile (a few rows on the driver)."""
    means = customers.groupBy("segment_id").agg(
        F.count("*").alias("customers"),
        F.avg("monetary_value_52w").alias("avg_monetary_value_52w"),
        F.avg("frequency_orders_52w").alias("avg_frequency_orders_52w"),
        F.avg("basket_units").alias("avg_basket_units"),
        F.avg("promo_share").alias("promo_share"),
        F.avg("promo_depth").alias("promo_depth"),
        F.avg("price_index").alias("avg_price_index"),
        *[F.avg(f"{c}_share").alias(f"{c}_share") for c in CHANNELS],
        *[F.avg((F.col("lifecycle") == stage).cast("double")).alias(f"{stage}_share")
          for stage in LIFECYCLES],
    )
    tastes = (
        customers.select("segment_id", F.explode("category_shares").alias("category", "share"))
        .groupBy("segment_id", "category").agg(F.sum("share").alias("share"))
        .withColumn("rank", F.row_number().over(
            Window.partitionBy("segment_id").orderBy(F.desc("share"), F.asc("category"))))
        .where(F.col("rank") <= TOP_CATEGORIES)
    )
    # rounded: Spark sums in no fixed order, and a rerun should publish the same numbers
    table = means.toPandas().sort_values("segment_id").reset_index(drop=True).round(DECIMALS)
    table["share"] = (table["customers"] / table["customers"].sum()).round(DECIMALS)
    top = tastes.toPandas().merge(table[["segment_id", "customers"]], on="segment_id")
    top["text"] = top["category"] + " " + (100 * top["share"] / top["customers"]).round(
        ).astype(int).astype(str) + "%"
    text = top.sort_values(["segment_id", "rank"]).groupby("segment_id")["text"].agg(", ".join)
    table["top_categories"] = table["segment_id"].map(text).fillna("")
    table["top_category"] = table["segment_id"].map(  # for names only, not published
        top[top["rank"] == 1].set_index("segment_id")["category"]).fillna("")
    table["price_tier"] = table["avg_price_index"].map(tier_of)
    return table


def tier_of(index: float | None) -> str | None:
    """The price tier of a price index (spark_jobs.customer_profiles.PRICE_TIERS)."""
    if index is None or pd.isna(index):
        return None
    return next(tier for limit, tier in PRICE_TIERS if index < limit)


def name_segments(table: pd.DataFrame) -> list[str]:
    """A readable, unique name per segment from its profile against the mean of the clustered
    customers. Its trait, the first that applies: 'deal-driven' (promo share >= DEAL_PROMO_SHARE
    x the mean), 'occasional' (orders <= OCCASIONAL_FREQUENCY x), 'high-value' (spend >=
    HIGH_VALUE_MONETARY x), 'frequent' (orders >= FREQUENT_FREQUENCY x), 'premium' (premium
    price tier); its channel: the one where it places at least CHANNEL_MAJORITY of its orders,
    above the mean share. A store segment without a trait or only frequent is 'store
    regulars', one without trait and channel 'mainstream shoppers', else '<trait> <channel>
    shoppers'. Equal names get the segment's top category, then its id, appended."""
    clustered = table[table["segment_id"] != NO_PURCHASES]
    weights = clustered["customers"] / clustered["customers"].sum()
    mean = {c: float((clustered[c] * weights).sum()) for c in (
        "promo_share", "avg_frequency_orders_52w", "avg_monetary_value_52w",
        *(f"{c}_share" for c in CHANNELS))}

    def trait(row) -> str | None:
        frequency = row.avg_frequency_orders_52w / mean["avg_frequency_orders_52w"]
        if row.promo_share >= DEAL_PROMO_SHARE * mean["promo_share"]:
            return "deal-driven"
        if frequency <= OCCASIONAL_FREQUENCY:
            return "occasional"
        if row.avg_monetary_value_52w >= HIGH_VALUE_MONETARY * mean["avg_monetary_value_52w"]:
            return "high-value"
        if frequency >= FREQUENT_FREQUENCY:
            return "frequent"
        return "premium" if row.price_tier == "premium" else None

    def channel(row) -> str | None:
        lead = max(CHANNELS, key=lambda c: getattr(row, f"{c}_share") - mean[f"{c}_share"])
        share = getattr(row, f"{lead}_share")
        return lead if share >= CHANNEL_MAJORITY and share > mean[f"{lead}_share"] else None

    names = []
    for row in table.itertuples():
        if row.segment_id == NO_PURCHASES:
            names.append(NO_PURCHASES_NAME)
            continue
        adjective, where = trait(row), channel(row)
        if where == "store" and adjective in (None, "frequent"):
            names.append("store regulars")
        elif adjective is None and where is None:
            names.append("mainstream shoppers")
        else:
            names.append(" ".join(w for w in (adjective, where, "shoppers") if w))
    return _unique(names, table)


def _unique(names: list[str], table: pd.DataFrame) -> list[str]:
    for extra in (lambda row: row.top_category, lambda row: f"#{row.segment_id}"):
        counts = pd.Series(names).value_counts()
        names = [f"{name} ({extra(row)})" if counts[name] > 1 and extra(row) else name
                 for name, row in zip(names, table.itertuples())]
    return names


def previous_segments(dataset: str, plan_week: date,
                      settings: Settings | None = None) -> PreviousSegments | None:
    """The segments published for the dataset's latest plan week before `plan_week` (None
    when there are none)."""
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('published.segment_profiles')")
        if cur.fetchone()[0] is None:
            return None
        # the current versions of the earlier weeks
        earlier = (f"from published.segment_profiles s join {current_plans_table(cur)} p "
                   "using (run_id) where p.dataset = %(dataset)s and p.plan_week < %(week)s")
        cur.execute(f"select max(s.segment_id), max(p.plan_week) {earlier}",
                    {"dataset": dataset, "week": plan_week})
        max_id, latest = cur.fetchone()
        if latest is None:
            return None
        cur.execute(f"select s.segment_id, s.centroid_features, s.centroid {earlier} "
                    "and p.plan_week = %(latest)s and s.segment_id <> %(none)s order by 1",
                    {"dataset": dataset, "week": plan_week, "latest": latest,
                     "none": NO_PURCHASES})
        rows = cur.fetchall()
    return PreviousSegments(ids=[r[0] for r in rows], features=[r[1] for r in rows],
                            centroids=[r[2] for r in rows], max_id=max_id)
