"""The demo counts the ground truth's appearances by the aggregation's merge rule."""

from __future__ import annotations

from brandlens_cli.demo import merged


def test_runs_closer_than_the_gap_count_as_one_appearance() -> None:
    assert merged([], 2.0) == 0
    assert merged([(0.0, 1.0), (2.0, 3.0), (6.0, 7.0)], 2.0) == 2  # 1 s gap merges, 3 s not
    assert merged([(0.0, 1.0), (3.0, 4.0)], 2.0) == 2  # a gap of exactly the setting splits
    assert merged([(5.0, 6.0), (0.0, 1.0), (0.5, 2.0)], 0.0) == 2  # unsorted, overlapping
