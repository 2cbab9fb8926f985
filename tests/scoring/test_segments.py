"""The adjusted Rand index on hand-computed cases, and segments scored against a truth file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from scoring.segments import SegmentScoringError, adjusted_rand_index, score_segments


def test_adjusted_rand_index_hand_computed() -> None:
    # contingency [[2, 1, 0], [0, 1, 2]]: index 2, rows 3 + 3, columns 1 + 1 + 1, C(6, 2) = 15,
    # expected 6 * 3 / 15 = 1.2, maximum (6 + 3) / 2 = 4.5: (2 - 1.2) / (4.5 - 1.2) = 8 / 33
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]) == pytest.approx(8 / 33)
    # contingency [[1, 1], [1, 1]]: index 0, expected 2 * 2 / 6, maximum 2: -0.5
    assert adjusted_rand_index(["a", "a", "b", "b"], [0, 1, 0, 1]) == pytest.approx(-0.5)


def test_the_same_partition_under_other_labels_scores_one() -> None:
    assert adjusted_rand_index(["x", "x", "y", "z", "z"], [7, 7, 3, 1, 1]) == 1.0
    assert adjusted_rand_index([1, 1, 1], [2, 2, 2]) == 1.0  # one cluster on both sides
    assert adjusted_rand_index([1, 2, 3], [3, 2, 1]) == 1.0  # singletons on both sides


def test_labelings_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        adjusted_rand_index([1, 2, 3], [1, 2])


def test_segments_scored_over_the_clustered_customers(tmp_path: Path) -> None:
    pd.DataFrame({"customer_id": range(1, 8),
                  "segment": ["deal", "deal", "deal", "store", "store", "store", "deal"]}
                 ).to_csv(tmp_path / "customers_truth.csv", index=False)
    segments = pd.DataFrame({"customer_id": range(1, 8), "segment_id": [4, 4, 4, 2, 2, 2, 0],
                             "segment_name": ["d"] * 3 + ["s"] * 3 + ["none"]})
    result = score_segments(segments, tmp_path)
    assert (result["ari"], result["clustered"], result["no_purchases"]) == (1.0, 6, 1)
    assert result["crosstab"].loc["d", "deal"] == 3
    with pytest.raises(SegmentScoringError, match="only synthetic markets"):
        score_segments(segments, tmp_path / "missing")
