"""The HTML report in a real browser (Debian's headless Chromium, over CDP).

A realistic summary (three brands, several appearances, proof thumbnails drawn by the
inferer's own code) is rendered, opened from a file and checked the way a person would
see it: nothing fails to load, every chart and proof shows, nothing is fetched from
elsewhere. Full-page screenshots are kept in ``tests/artifacts/`` for a human to look at.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageStat

from brandlens_inferer.aggregate import AggregationSettings, Summary, aggregate, timecode
from brandlens_inferer.report import render
from brandlens_inferer.thumbnails import draw_proof, gallery_key, thumbnail_key
from tests.support_browser import Browser, chromium_path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

BRANDS: dict[str, dict[str, Any]] = {
    # name: the frames (1 s apart) showing it, where its box is, its colour in the frames
    "Acme": {
        "frames": [*range(0, 20), *range(40, 45), *range(100, 130)],
        "box": (0.05, 0.08, 0.3, 0.22),
        "fill": (220, 60, 50),
    },
    "Globex": {
        # one frame missing at 75 s: merged into one appearance (gap < merge_gap_ms)
        "frames": [*range(10, 15), *range(60, 75), *range(76, 90), *range(140, 150)],
        "box": (0.66, 0.68, 0.28, 0.26),
        "fill": (40, 120, 220),
    },
    "Ben & Jerry's": {
        # first seen before Globex but less screen time: the charts' orders differ
        "frames": [*range(3, 7), *range(120, 123)],
        "box": (0.44, 0.44, 0.12, 0.12),
        "fill": (60, 170, 80),
    },
}
SECONDS = 150


def frame_jpeg(index: int, labels: list[dict[str, Any]]) -> bytes:
    """A synthetic 960x540 frame: a changing backdrop with each brand's logo in its box."""
    img = Image.new("RGB", (960, 540), (30 + index % 50, 40, 60 + index % 80))
    draw = ImageDraw.Draw(img)
    for x in range(0, 960, 120):
        draw.line((x + index % 120, 0, x + index % 120 - 200, 540), fill=(90, 90, 110), width=3)
    for label in labels:
        box = label["box"]
        left, top = box["left"] * 960, box["top"] * 540
        right, bottom = left + box["width"] * 960, top + box["height"] * 540
        draw.rectangle((left, top, right, bottom), fill=BRANDS[label["name"]]["fill"])
        draw.text((left + 6, top + 6), label["name"], fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=85)
    return out.getvalue()


def video_frames() -> list[dict[str, Any]]:
    frames = []
    for i in range(SECONDS):
        labels = []
        for name, brand in BRANDS.items():
            if i in brand["frames"]:
                left, top, width, height = brand["box"]
                grow = 0.015 * (i % 5)  # the box varies: the proof frame is a real choice
                labels.append(
                    {"name": name, "confidence": 70.0 + (i * 7) % 29,
                     "box": {"left": left, "top": top, "width": width + grow,
                             "height": height + grow}}
                )  # fmt: skip
        frames.append(
            {"index": i, "key": f"frames/j/{i:06d}.jpg", "timestamp_ms": i * 1000.0,
             "labels": labels}
        )  # fmt: skip
    return frames


def with_proofs(
    summary: Summary, frames: list[dict[str, Any]], *, skip: Collection[tuple[str, int]] = ()
) -> dict[str, bytes]:
    """Proof thumbnails as the inferer makes them (see ``handler.aggregate``); the
    appearances in ``skip`` get none, like a proof that could not be drawn."""
    by_index = {int(f["index"]): f for f in frames}
    thumbnails: dict[str, bytes] = {}
    for brand, stats in summary.brands.items():
        for number, appearance in enumerate(stats.appearances):
            if (brand, number) in skip:
                continue
            frame = by_index[appearance.proof_frame_index]
            own = [x for x in frame["labels"] if x.get("name") == brand]
            jpeg = frame_jpeg(int(frame["index"]), frame["labels"])
            caption = f"{brand}  {timecode(float(frame['timestamp_ms']))}"
            key = thumbnail_key(summary.job_id, brand, number)
            thumbnails[key] = draw_proof(jpeg, own, caption)
            appearance.proof_thumbnail_key = key
    return thumbnails


# Everything a person would look at, measured in the page.
INSPECT = """(() => {
  const all = (s, root = document) => [...root.querySelectorAll(s)];
  const box = e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  const texts = svg => all('text', svg).map(t => {
    const b = t.getBBox();
    return {text: t.textContent, x: b.x, right: b.x + b.width, width: b.width};
  });
  const fills = g => [
    all('text', g)[0]?.textContent, all('rect', g).map(r => r.getAttribute('fill'))];
  return {
    colours: {
      screenTime: all('svg.screen-time g').map(fills),
      timeline: all('svg.timeline g').map(fills),
      perMinute: all('section.brand').map(s => [s.querySelector('h2, h3').textContent,
        all('svg.per-minute rect', s).map(r => r.getAttribute('fill'))]),
    },
    screenTime: all('svg.screen-time').map(svg => ({
      size: box(svg), width: svg.width.baseVal.value,
      bars: all('rect.bar', svg).map(r => r.width.baseVal.value), texts: texts(svg)})),
    timeline: all('svg.timeline').map(svg => ({
      size: box(svg), width: svg.width.baseVal.value,
      rows: all('g', svg).map(g => all('rect.appearance', g).length), texts: texts(svg),
      marks: all('rect.appearance', svg).map(r => [r.x.baseVal.value, r.width.baseVal.value])})),
    perMinute: all('section.brand').map(s => all('svg.per-minute rect.minute', s).map(
      r => r.height.baseVal.value)),
    perMinuteSizes: all('svg.per-minute').map(box),
    maps: all('section.brand').map(s => all('table.map', s).map(t => ({
      size: box(t), cells: all('td', t).map(td => Number(td.textContent))}))),
    proofs: all('img.proof').map(i => ({complete: i.complete, width: i.naturalWidth,
      height: i.naturalHeight, shown: box(i), src: i.src.slice(0, 23)})),
    gallery: all('img.gallery-image').map(i => ({complete: i.complete, width: i.naturalWidth,
      height: i.naturalHeight, shown: box(i)})),
    captions: all('.gallery figcaption').map(c => c.textContent),
    sections: all('section.brand h2').map(h => h.textContent),
    text: document.body.innerText,
    resources: performance.getEntriesByType('resource').map(e => e.name),
    pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth,
  };
})()"""


@pytest.fixture
async def browser(tmp_path: Path):  # type: ignore[no-untyped-def]
    if chromium_path() is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    async with Browser.launch(tmp_path) as b:
        yield b


async def open_report(browser: Browser, html: str, path: Path) -> dict[str, Any]:
    path.write_text(html, encoding="utf-8")
    await browser.open(path.as_uri())
    page: dict[str, Any] = await browser.evaluate(INSPECT)
    assert browser.problems == []  # console errors/warnings, exceptions, failed loads
    # nothing from elsewhere: the file itself, then data: URIs only
    assert [u for u in browser.requests if u != path.as_uri() and not u.startswith("data:")] == []
    assert [u for u in page["resources"] if not u.startswith("data:")] == []
    assert page["pageWidth"] <= page["viewport"]  # no sideways scrolling at 1280 px
    return page


def keep_screenshot(png: bytes, name: str) -> Image.Image:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_bytes(png)
    with Image.open(io.BytesIO(png)) as img:
        img.load()
        rgb = img.convert("RGB")
    assert img.format == "PNG"
    assert 1000 <= rgb.width <= 4000
    assert 600 <= rgb.height <= 20_000
    assert max(ImageStat.Stat(rgb).stddev) > 10  # not one flat colour
    assert len(rgb.getcolors(maxcolors=1 << 20) or []) > 50
    return rgb


def assert_svg_text_fits(chart: dict[str, Any]) -> None:
    """Labels stay inside the chart and brand names end before the bars (x=140)."""
    for t in chart["texts"]:
        assert t["x"] >= 0, t
        assert t["right"] <= chart["width"] + 0.5, t
        if t["x"] < 1 and t["text"] in BRANDS:
            assert t["right"] < 140, t


async def test_a_video_report_renders_every_part_in_chromium(
    browser: Browser, tmp_path: Path
) -> None:
    frames = video_frames()
    summary = aggregate(
        frames, job_id="job-video-1", project="spring-campaign", model="arn:model/brands-v3",
        media_kind="video",
        settings=AggregationSettings(merge_gap_ms=1500, min_duration_ms=2000),
    )  # fmt: skip
    appearances = {name: len(b.appearances) for name, b in summary.brands.items()}
    assert appearances == {"Acme": 3, "Globex": 3, "Ben & Jerry's": 2}
    thumbnails = with_proofs(summary, frames, skip={("Globex", 2)})
    assert len(thumbnails) == 7

    page = await open_report(browser, render(summary, thumbnails), tmp_path / "report.html")

    (screen_time,) = page["screenTime"]
    assert len(screen_time["bars"]) == 3
    assert all(width > 0 for width in screen_time["bars"])
    assert max(screen_time["bars"]) == pytest.approx(400)  # the longest screen time
    assert min(screen_time["size"]) > 0
    assert_svg_text_fits(screen_time)

    (timeline,) = page["timeline"]
    assert sorted(timeline["rows"]) == sorted(appearances.values())  # a mark per appearance
    assert len(timeline["marks"]) == sum(appearances.values())
    for x, width in timeline["marks"]:
        assert x >= 140
        assert x + width <= 740 + 0.5
    assert_svg_text_fits(timeline)

    # three minutes of frames (0-59, 60-119, 120-149 s): a bar per minute and brand
    assert len(page["perMinute"]) == 3
    assert all(len(bars) == 3 for bars in page["perMinute"])
    assert all(any(h > 0 for h in bars) for bars in page["perMinute"])
    assert all(w > 0 and h > 0 for w, h in page["perMinuteSizes"])

    for maps, name in zip(page["maps"], page["sections"], strict=True):
        (the_map,) = maps
        assert len(the_map["cells"]) == 9
        assert sum(the_map["cells"]) == len(BRANDS[name]["frames"])
        assert min(the_map["size"]) > 0

    assert len(page["proofs"]) == 7  # one per appearance with a thumbnail
    for proof in page["proofs"]:
        assert proof["complete"]
        assert (proof["width"], proof["height"]) == (480, 270)
        assert min(proof["shown"]) > 0
        assert proof["src"] == "data:image/jpeg;base64,"

    for name in BRANDS:
        assert name in page["text"]
    assert "job-video-1" in page["text"]

    # a brand has one colour in every chart, whatever order each chart lists brands in
    order = {chart: [name for name, _ in rows] for chart, rows in page["colours"].items()}
    assert order["timeline"] != order["screenTime"]  # the data exercises it
    colours: dict[str, set[str]] = {}
    for rows in page["colours"].values():
        for name, fills in rows:
            colours.setdefault(name, set()).update(fills)
    assert all(len(fills) == 1 for fills in colours.values()), colours
    assert len({next(iter(fills)) for fills in colours.values()}) == 3

    keep_screenshot(await browser.screenshot(), "report-video.png")


async def test_an_image_report_renders_in_chromium(browser: Browser, tmp_path: Path) -> None:
    # an image job is one frame at 0 ms (see the framer): one appearance per brand
    labels = [
        {"name": name, "confidence": 88.0,
         "box": dict(zip(("left", "top", "width", "height"), brand["box"], strict=True))}
        for name, brand in BRANDS.items()
    ]  # fmt: skip
    frames = [{"index": 0, "key": "frames/j/000000.jpg", "timestamp_ms": 0.0, "labels": labels}]
    summary = aggregate(
        frames, job_id="job-image-1", project="spring-campaign", model="arn:model/brands-v3",
        media_kind="image", settings=AggregationSettings(),
    )  # fmt: skip
    # the inferer draws every box on the image for the gallery (see handler.aggregate)
    (image,) = summary.images
    image.thumbnail_key = gallery_key(summary.job_id, 0)
    drawn = draw_proof(frame_jpeg(0, labels), labels, "Acme, Globex, Initech", name_boxes=True)
    thumbnails = {image.thumbnail_key: drawn}

    page = await open_report(browser, render(summary, thumbnails), tmp_path / "report.html")

    assert page["screenTime"] == []  # no screen time for a still image
    assert page["timeline"] == []
    assert page["perMinute"] == [[], [], []]
    assert "Appearances over time" not in page["text"]
    assert page["proofs"] == []  # the gallery stands for them
    (shown,) = page["gallery"]
    assert shown["complete"]
    assert (shown["width"], shown["height"]) == (480, 270)
    assert min(shown["shown"]) > 0
    (caption,) = page["captions"]
    for name in BRANDS:
        assert f"{name} 88 %" in caption
    for maps in page["maps"]:
        assert sum(maps[0]["cells"]) == 1
    for name in BRANDS:
        assert name in page["text"]

    keep_screenshot(await browser.screenshot(), "report-images.png")
