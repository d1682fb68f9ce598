"""Aggregation edge cases: gaps, single frames, sampling interval, overlapping brands, none."""

from __future__ import annotations

from typing import Any

import pytest

from brandlens_inferer.aggregate import AggregationSettings, aggregate, timecode


def label(
    name: str, conf: float = 90.0, box: tuple[float, float, float, float] = (0.1, 0.1, 0.2, 0.2)
) -> dict[str, Any]:
    left, top, width, height = box
    return {"name": name, "confidence": conf,
            "box": {"left": left, "top": top, "width": width, "height": height}}  # fmt: skip


def frames(
    interval_ms: float, labels_per_frame: list[list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [
        {"index": i, "key": f"frames/j/{i:06d}.jpg", "timestamp_ms": i * interval_ms, "labels": ls}
        for i, ls in enumerate(labels_per_frame)
    ]


def run(fs: list[dict[str, Any]], **settings: Any) -> Any:
    chosen = {"merge_gap_ms": 1500, "min_duration_ms": 2000} | settings
    return aggregate(
        fs, job_id="j", project="p", model="m", media_kind="video",
        settings=AggregationSettings(**chosen),
    )  # fmt: skip


def test_gaps_shorter_than_the_setting_merge_into_one_appearance() -> None:
    a = [label("acme")]
    # 1 s sampling: seen 0-2 s, hidden at 3 s (a 1 s gap), seen 4-5 s, hidden 6-8 s, seen 9 s
    summary = run(frames(1000, [a, a, a, [], a, a, [], [], [], a]))
    acme = summary.brands["acme"]
    assert [(x.start_ms, x.end_ms, x.frames) for x in acme.appearances] == [
        (0, 6000, 5),  # merged across the 1 s gap
        (9000, 10000, 1),  # 3 s later: a new appearance
    ]
    assert acme.screen_time_ms == 6000  # six frames of 1 s; the gap is not screen time
    assert acme.appearances[0].start_timecode == "00:00:00.000"
    assert acme.appearances[0].end_timecode == "00:00:06.000"


def test_a_single_frame_appearance_counts_but_does_not_qualify() -> None:
    summary = run(frames(500, [[], [], [label("acme")], [], []]))
    acme = summary.brands["acme"]
    assert len(acme.appearances) == 1
    assert acme.appearances[0].duration_ms == 500
    assert acme.screen_time_ms == 500
    assert acme.qualifying_screen_time_ms == 0  # shorter than min_duration_ms
    assert acme.first_seen_ms == acme.last_seen_ms == 1000


def test_screen_time_follows_the_sampling_interval_not_the_frame_rate() -> None:
    seen = [label("acme")]
    every_second = run(frames(1000, [seen] * 10))
    every_quarter = run(frames(250, [seen] * 40))
    assert (
        every_second.brands["acme"].screen_time_ms
        == every_quarter.brands["acme"].screen_time_ms
        == 10_000
    )
    assert every_second.sampling_interval_ms == 1000
    assert every_quarter.sampling_interval_ms == 250
    assert every_quarter.duration_ms == 10_000


def test_overlapping_brands_each_get_their_time_and_share_of_voice() -> None:
    both = [label("acme", 80, (0.0, 0.0, 0.2, 0.2)), label("globex", 70, (0.7, 0.7, 0.3, 0.3))]
    summary = run(frames(1000, [both, both, [label("acme", 95)], [], []]))
    acme, globex = summary.brands["acme"], summary.brands["globex"]
    assert acme.screen_time_ms == 3000
    assert globex.screen_time_ms == 2000
    assert acme.share_of_voice == pytest.approx(0.6)
    assert globex.share_of_voice == pytest.approx(0.4)
    assert acme.max_confidence == 95
    assert acme.mean_confidence == pytest.approx((80 + 80 + 95) / 3, abs=1e-3)
    assert globex.mean_box_share == pytest.approx(0.09)
    assert globex.screen_map == [[0, 0, 0], [0, 0, 0], [0, 0, 2]]  # bottom-right
    assert acme.share_of_frames == pytest.approx(0.6)


def test_small_boxes_do_not_qualify() -> None:
    tiny = [label("acme", box=(0.5, 0.5, 0.01, 0.01))]  # 0.01 % of the frame
    summary = run(frames(1000, [tiny] * 5), min_box_share=0.005)
    assert summary.brands["acme"].screen_time_ms == 5000
    assert summary.brands["acme"].qualifying_screen_time_ms == 0


def test_per_minute_distribution() -> None:
    fs = frames(10_000, [[label("acme")] if i < 3 else [] for i in range(12)])  # 2 minutes
    per_minute = run(fs).brands["acme"].per_minute
    assert [(m.minute, m.frames, m.frames_with_brand, m.seconds) for m in per_minute] == [
        (0, 6, 3, 30.0),
        (1, 6, 0, 0.0),
    ]


def test_an_empty_result() -> None:
    summary = run(frames(1000, [[], [], []]))
    assert summary.brands == {}
    assert summary.frame_count == 3
    assert run([]).frame_count == 0


def test_images_list_their_detections() -> None:
    summary = aggregate(
        frames(0, [[label("acme")]]), job_id="j", project="p", model="m", media_kind="image",
        settings=AggregationSettings(),
    )  # fmt: skip
    (image,) = summary.images
    assert image.labels[0]["name"] == "acme"


def test_timecode() -> None:
    assert timecode(3_723_456) == "01:02:03.456"


def test_proof_thumbnail_draws_the_box_and_names_the_brand() -> None:
    import io

    from PIL import Image

    from brandlens_inferer.thumbnails import draw_proof, thumbnail_key

    plain = io.BytesIO()
    Image.new("RGB", (960, 540), (40, 40, 40)).save(plain, format="JPEG")
    proof = draw_proof(
        plain.getvalue(), [label("acme", box=(0.25, 0.25, 0.5, 0.5))], "acme 00:00:01.000"
    )
    with Image.open(io.BytesIO(proof)) as img:
        assert img.size == (480, 270)
        rgb = img.convert("RGB")
        r, g, b = rgb.getpixel((120, 135))  # on the left edge of the box
        assert r > 200
        assert g > 150
        assert b < 100
        assert rgb.getpixel((240, 135))[0] < 80  # inside: the frame, untouched
    assert thumbnail_key("j", "Ben & Jerry's", 0).startswith("results/j/proof/ben-jerry-s-")
    assert thumbnail_key("j", "a/b", 1) != thumbnail_key("j", "a b", 1)


def test_the_report_is_self_contained_and_shows_every_part() -> None:
    import re

    from brandlens_inferer.report import render

    both = [label("acme", 80, (0.0, 0.0, 0.2, 0.2)), label("Ben & <Jerry>", 70)]
    summary = run(frames(1000, [both, both, [label("acme")], [], []]))
    summary.brands["acme"].appearances[0].proof_thumbnail_key = "results/j/proof/acme.jpg"
    html = render(summary, {"results/j/proof/acme.jpg": b"\xff\xd8fakejpeg"})
    assert "Ben &amp; &lt;Jerry&gt;" in html  # brand names are escaped
    assert "<script" not in html
    # nothing loaded from elsewhere: every src is a data: URI, no external links
    assert all(src.startswith("data:") for src in re.findall(r"src='([^']*)'", html))
    assert "http://" not in html
    assert "https://" not in html
    for part in ("screen-time", "timeline", "per-minute", "class='map'", "class='proof'"):
        assert part in html
