"""AP per size bucket (issue 19): truths split by width as a share of the frame."""

from __future__ import annotations

import pytest

from brandlens_model_server.detector.metrics import mean_ap_by_size


def test_each_bucket_scores_its_own_truths_and_false_positives() -> None:
    # one 1000-px-wide frame: a small logo (3 %), a medium (8 %) and a large (20 %)
    truths = [[(0, 10, 10, 40, 40), (0, 100, 100, 180, 180), (0, 400, 100, 600, 300)]]
    # the small one missed, the medium found, the large found; one small false positive
    dets = [[(0, 0.9, 101, 99, 181, 179), (0, 0.8, 402, 101, 601, 299), (0, 0.7, 700, 10, 730, 40)]]
    got = mean_ap_by_size(dets, truths, 1, [1000.0])
    assert got["<5%"] == pytest.approx(0.0)  # its truth missed, its false positive counted
    assert got["5-10%"] == pytest.approx(1.0)
    assert got[">10%"] == pytest.approx(1.0)  # the small false positive is not its own


def test_a_bucket_without_truths_is_none() -> None:
    got = mean_ap_by_size([[(0, 0.9, 0, 0, 300, 300)]], [[(0, 0, 0, 300, 300)]], 1, [1000.0])
    assert got["<5%"] is None
    assert got["5-10%"] is None
    assert got[">10%"] == pytest.approx(1.0)
