"""The demo counts the ground truth's appearances by the aggregation's merge rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from brandlens_cli.demo import _verdict, merged, screen_time_errors
from brandlens_synth.demo import BrandTruth, DemoMedia


def test_runs_closer_than_the_gap_count_as_one_appearance() -> None:
    assert merged([], 2.0) == 0
    assert merged([(0.0, 1.0), (2.0, 3.0), (6.0, 7.0)], 2.0) == 2  # 1 s gap merges, 3 s not
    assert merged([(0.0, 1.0), (3.0, 4.0)], 2.0) == 2  # a gap of exactly the setting splits
    assert merged([(5.0, 6.0), (0.0, 1.0), (0.5, 2.0)], 0.0) == 2  # unsorted, overlapping


def _media(**seconds: float) -> DemoMedia:
    brands = {n: BrandTruth(n, ((0.0, s),) if s else (), s, int(s * 2)) for n, s in seconds.items()}
    path = Path("unused")
    return DemoMedia(tuple(seconds), path, path, (), path, (), brands, 2.0, 2.0, 0.0)


def _summary(**seconds: float) -> dict[str, Any]:
    return {"brands": {n: {"screen_time_ms": s * 1000} for n, s in seconds.items()}}


def test_the_demo_fails_when_a_brands_screen_time_is_more_than_5_percent_off() -> None:
    media = _media(acme=20.0, globex=10.0, initech=0.0)
    errors = screen_time_errors(media, _summary(acme=19.2, globex=10.6))
    assert errors == {"acme": pytest.approx(-0.04), "globex": pytest.approx(0.06)}
    assert _verdict(media, _summary(acme=19.2, globex=10.6)) == 1  # globex +6 %
    assert _verdict(media, _summary(acme=19.2, globex=10.4)) == 0  # both within 5 %
    assert _verdict(media, _summary(acme=19.2)) == 1  # globex missed
