"""Published customer segments scored against a synthetic market's hidden segments.

    python -m scoring.segments [--dataset demo] [--run-id ID]     (part of make score)

The synthetic market draws every customer from one hidden segment (deal hunters, premium
loyal, store regulars, occasional; `customers_truth.csv` of its ground truth, docs/market.md).
The platform never reads it; this module compares it with the segments a run published
(`published.customer_segments`) by the adjusted Rand index (ARI: 1 = the same partition, about
0 = no better than chance), over the customers the run clustered (segment 0, customers without
purchases in the 52 weeks before the plan week, is left out and counted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import comb

from promoflow.settings import Settings, get_settings
from promoflow.warehouse import connect, latest_published_run_id

NO_PURCHASE_SEGMENT = 0  # the fixed segment of customers without recent purchases


class SegmentScoringError(RuntimeError):
    """The segments of a run cannot be scored (no ground truth, nothing published)."""


def adjusted_rand_index(labels_true, labels_pred) -> float:
    """The adjusted Rand index of two labelings of the same items (Hubert and Arabie, 1985).

    From the contingency table n_ij, its row sums a_i and column sums b_j and n items:
    index = sum C(n_ij, 2), expected = sum C(a_i, 2) * sum C(b_j, 2) / C(n, 2),
    maximum = (sum C(a_i, 2) + sum C(b_j, 2)) / 2, ARI = (index - expected) / (maximum -
    expected); 1.0 when both labelings are a single cluster or all singletons.
    """
    true, pred = np.asarray(labels_true), np.asarray(labels_pred)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"the labelings differ in shape ({true.shape} and {pred.shape}); "
                         "give one label per item in each.")
    table = pd.crosstab(true, pred).to_numpy()
    index = comb(table, 2).sum()
    rows, columns = comb(table.sum(axis=1), 2).sum(), comb(table.sum(axis=0), 2).sum()
    expected = rows * columns / comb(len(true), 2) if len(true) > 1 else 0.0
    maximum = (rows + columns) / 2
    if maximum == expected:  # one cluster on both sides, or singletons only: identical
        return 1.0
    return float((index - expected) / (maximum - expected))


def published_segments(run_id: str, settings: Settings | None = None
                       ) -> tuple[str, pd.DataFrame]:
    """The run's dataset, and customer_id, segment_id and segment_name of its published
    segments (none for a run published before segmentation existed)."""
    columns = ["customer_id", "segment_id", "segment_name"]
    with connect(settings) as conn, conn.cursor() as cur:
        cur.execute("select dataset from published.plans where run_id = %s", (run_id,))
        row = cur.fetchone()
        if row is None:
            raise SegmentScoringError(f"run {run_id} has no published plan; score a published "
                                      "run.")
        cur.execute("select to_regclass('published.customer_segments')")
        if cur.fetchone()[0] is None:
            return row[0], pd.DataFrame(columns=columns)
        cur.execute("select c.customer_id, c.segment_id, p.segment_name "
                    "from published.customer_segments c join published.segment_profiles p "
                    "using (run_id, segment_id) where c.run_id = %s order by 1", (run_id,))
        return row[0], pd.DataFrame(cur.fetchall(), columns=columns)


def score_segments(segments: pd.DataFrame, truth_dir: Path) -> dict:
    """ARI of the clustered customers' segments against the true ones, with the crosstab."""
    path = truth_dir / "customers_truth.csv"
    if not path.exists():
        raise SegmentScoringError(f"{path} does not exist: only synthetic markets can be scored.")
    truth = pd.read_csv(path, usecols=["customer_id", "segment"])
    if segments.empty:
        raise SegmentScoringError("the run published no customer segments; run the weekly flow "
                                  "again (runs before segmentation have none).")
    clustered = segments[segments["segment_id"] != NO_PURCHASE_SEGMENT].merge(
        truth, on="customer_id", how="inner")
    return {
        "ari": adjusted_rand_index(clustered["segment"], clustered["segment_id"]),
        "clustered": len(clustered),
        "no_purchases": int((segments["segment_id"] == NO_PURCHASE_SEGMENT).sum()),
        "crosstab": pd.crosstab(clustered["segment_name"], clustered["segment"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo", help="score its latest published run")
    parser.add_argument("--run-id", default=None, help="score this run instead")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        run_id = args.run_id or latest_published_run_id(args.dataset, settings)
        if run_id is None:
            raise SegmentScoringError(f"no published run of dataset {args.dataset}; run make "
                                      "weekly first.")
        dataset, segments = published_segments(run_id, settings)
        result = score_segments(segments, settings.ground_truth_dir / dataset)
    except SegmentScoringError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"Segments of run {run_id} against the market's hidden segments: ARI "
          f"{result['ari']:.3f} over {result['clustered']} clustered customers "
          f"({result['no_purchases']} in segment 0, no recent purchases)")
    print(result["crosstab"].to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
