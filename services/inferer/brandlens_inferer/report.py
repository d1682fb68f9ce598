"""A self-contained HTML report of one job: no scripts, fonts or images from elsewhere.

Charts are inline SVG; proof thumbnails are embedded as ``data:`` URIs. Everything
shown comes from the job's summary (:class:`brandlens_inferer.aggregate.Summary`).
"""

from __future__ import annotations

import base64
from html import escape

from brandlens_inferer.aggregate import BrandStats, Summary

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}.muted{color:#777}
.proofs{display:flex;flex-wrap:wrap;gap:.75rem}.proofs figure{margin:0}
.proofs img{max-width:320px;border:1px solid #ccc}figcaption{font-size:.8rem;color:#555}
.map td{width:2.2rem;height:2.2rem;text-align:center;border:1px solid #eee}
.brands td{white-space:nowrap}svg text{font-size:12px;fill:#222}svg text.muted{fill:#777}
.gallery{display:flex;flex-wrap:wrap;gap:.75rem}.gallery figure{margin:0}
.gallery img{max-width:480px;border:1px solid #ccc}
"""


def _ms(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def _color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _colors(summary: Summary) -> dict[str, str]:
    """One colour per brand, the same in every chart: by rank of screen time."""
    brands = sorted(summary.brands.values(), key=lambda b: -b.screen_time_ms)
    return {b.brand: _color(i) for i, b in enumerate(brands)}


def screen_time_bars(summary: Summary) -> str:
    brands = sorted(summary.brands.values(), key=lambda b: -b.screen_time_ms)
    if not brands:
        return "<p class='muted'>No brand was detected.</p>"
    longest = max(b.screen_time_ms for b in brands) or 1.0
    rows = []
    for i, b in enumerate(brands):
        width = 400 * b.screen_time_ms / longest
        rows.append(
            f"<g transform='translate(0,{i * 26})'><text x='0' y='16'>{escape(b.brand)}</text>"
            f"<rect class='bar' x='140' y='4' width='{width:.1f}' height='16' fill='{_color(i)}'/>"
            f"<text x='{146 + width:.1f}' y='16'>{_ms(b.screen_time_ms)} "
            f"({100 * b.share_of_voice:.0f} %)</text></g>"
        )
    height = 26 * len(brands) + 4
    return (
        f"<svg class='chart screen-time' width='680' height='{height}' role='img' "
        f"aria-label='screen time per brand'>{''.join(rows)}</svg>"
    )


def timeline(summary: Summary) -> str:
    if not summary.brands or summary.duration_ms <= 0:
        return ""
    scale = 600 / summary.duration_ms
    colors = _colors(summary)
    rows = []
    for i, b in enumerate(sorted(summary.brands.values(), key=lambda b: b.first_seen_ms)):
        bars = "".join(
            f"<rect class='appearance' x='{140 + a.start_ms * scale:.1f}' y='4' "
            f"width='{max(a.duration_ms * scale, 1.5):.1f}' height='16' "
            f"fill='{colors[b.brand]}'>"
            f"<title>{escape(b.brand)} {a.start_timecode}-{a.end_timecode}</title></rect>"
            for a in b.appearances
        )
        rows.append(
            f"<g transform='translate(0,{i * 26})'><text x='0' y='16'>{escape(b.brand)}</text>"
            f"<line x1='140' y1='12' x2='740' y2='12' stroke='#eee'/>{bars}</g>"
        )
    height = 26 * len(summary.brands) + 20
    step = _tick_step(summary.duration_ms / 1000)
    ticks = []
    t = 0.0
    while t * 1000 <= summary.duration_ms + 1e-6:
        x = 140 + t * 1000 * scale
        anchor = "end" if x > 720 else "middle" if t else "start"
        ticks.append(
            f"<line x1='{x:.1f}' y1='{height - 16}' x2='{x:.1f}' y2='{height - 12}' "
            f"stroke='#999'/><text x='{x:.1f}' y='{height - 2}' class='muted' "
            f"text-anchor='{anchor}'>{_clock(t)}</text>"
        )
        t += step
    axis = "".join(ticks)
    return (
        f"<svg class='chart timeline' width='760' height='{height}' role='img' "
        f"aria-label='appearances over time'>{''.join(rows)}{axis}</svg>"
    )


def _tick_step(seconds: float) -> float:
    """A round step giving 4 to 10 ticks over ``seconds``."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if seconds / step <= 10:
            return float(step)
    return 7200.0


def _clock(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def per_minute(b: BrandStats, color: str) -> str:
    """Bars of the share of each minute's sampled frames showing the brand (0-100 %)."""
    if not b.per_minute:
        return ""
    width = max(14, min(40, 600 // len(b.per_minute)))
    left, top, plot = 40, 6, 100
    label_every = max(1, round(len(b.per_minute) / 15))
    parts = []
    for i, m in enumerate(b.per_minute):
        x = left + i * width
        parts.append(
            f"<rect class='minute' x='{x}' y='{top + plot - plot * m.share:.1f}' "
            f"width='{width - 2}' height='{plot * m.share:.1f}' fill='{color}'>"
            f"<title>minute {m.minute + 1}: {100 * m.share:.0f} % of frames, "
            f"{m.seconds:.1f} s</title></rect>"
        )
        if i % label_every == 0:
            parts.append(
                f"<text x='{x + (width - 2) / 2:.1f}' y='{top + plot + 14}' class='muted' "
                f"text-anchor='middle'>{m.minute + 1}</text>"
            )
    total = left + width * len(b.per_minute)
    axis = (
        f"<line x1='{left}' y1='{top + plot}' x2='{total}' y2='{top + plot}' stroke='#999'/>"
        f"<text x='{left - 4}' y='{top + 4}' class='muted' text-anchor='end'>100 %</text>"
        f"<text x='{left - 4}' y='{top + plot}' class='muted' text-anchor='end'>0</text>"
        f"<text x='{total + 4}' y='{top + plot + 14}' class='muted'>min</text>"
    )
    return (
        f"<svg class='chart per-minute' width='{total + 30}' height='{top + plot + 20}' "
        f"role='img' aria-label='share of frames per minute'>{''.join(parts)}{axis}</svg>"
    )


def screen_map(b: BrandStats) -> str:
    peak = max((c for row in b.screen_map for c in row), default=0) or 1
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td style='background:rgba(214,39,40,{0.1 + 0.9 * c / peak:.2f})'>{c}</td>"
            for c in row
        )
        + "</tr>"
        for row in b.screen_map
    )
    return f"<table class='map' aria-label='where on screen'>{rows}</table>"


def _data_uri(data: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(data).decode()


def gallery(summary: Summary, thumbnails: dict[str, bytes]) -> str:
    """Each analysed image with its boxes drawn, and what was found in it."""
    figures = []
    for image in summary.images:
        found = (
            ", ".join(
                f"{escape(str(x.get('name')))} {float(x.get('confidence') or 0):.0f} %"
                for x in image.labels
            )
            or "no brand found"
        )
        data = thumbnails.get(image.thumbnail_key or "")
        picture = (
            f"<img class='gallery-image' src='{_data_uri(data)}' alt='image "
            f"{image.frame_index} with its boxes'>"
            if data is not None
            else "<p class='muted'>(image not available)</p>"
        )
        figures.append(f"<figure>{picture}<figcaption>{found}</figcaption></figure>")
    return f"<div class='gallery'>{''.join(figures)}</div>"


def _page(title: str, subtitle: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f"<h1>{title}</h1><p class='muted'>{subtitle}</p>{body}</body></html>"
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def _subtitle(summary: Summary) -> str:
    if summary.media_kind == "image":  # a still: what was found in it, not time
        found = sum(b.detections for b in summary.brands.values())
        what = (
            f"{_plural(summary.frame_count, 'image')}, {_plural(found, 'detection')} of "
            f"{_plural(len(summary.brands), 'brand')}"
        )
    else:
        what = f"{_plural(summary.frame_count, 'sampled frame')} over {_ms(summary.duration_ms)}"
    return (
        f"project {escape(summary.project or '-')}, {summary.media_kind}, {what}; "
        f"model {escape(summary.model or '-')}"
    )


def render_images(summary: Summary, thumbnails: dict[str, bytes]) -> str:
    """The report of an image job: the gallery, then per brand what and where."""
    brands = sorted(summary.brands.values(), key=lambda b: (-b.detections, -b.frames, b.brand))
    rows = "".join(
        f"<tr><td>{escape(b.brand)}</td><td>{b.detections}</td>"
        f"<td>{100 * b.share_of_voice:.1f} %</td><td>{b.frames}</td>"
        f"<td>{b.mean_confidence:.1f} / {b.max_confidence:.1f}</td>"
        f"<td>{100 * b.mean_box_share:.2f} %</td></tr>"
        for b in brands
    )
    # share of voice among the brands in the image(s): by detections, a still has no time
    table = (
        "<table class='brands'><thead><tr><th>brand</th><th>detections</th>"
        "<th>share of voice</th><th>images</th>"
        "<th>confidence mean / max</th><th>mean box share</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if brands
        else "<p class='muted'>No brand was detected.</p>"
    )
    maps = "".join(
        f"<section class='brand'><h3>{escape(b.brand)}: where on screen</h3>{screen_map(b)}"
        "</section>"
        for b in brands
    )
    body = f"<h2>Images</h2>{gallery(summary, thumbnails)}<h2>Brands</h2>{table}{maps}"
    return _page(f"brandlens report: {escape(summary.job_id)}", _subtitle(summary), body)


def render(summary: Summary, thumbnails: dict[str, bytes]) -> str:
    """The report; ``thumbnails`` maps proof (or gallery) keys to their JPEG bytes."""
    if summary.media_kind == "image":
        return render_images(summary, thumbnails)
    colors = _colors(summary)
    brands = sorted(summary.brands.values(), key=lambda b: -b.screen_time_ms)
    table_rows = "".join(
        f"<tr><td>{escape(b.brand)}</td><td>{_ms(b.screen_time_ms)}</td>"
        f"<td>{_ms(b.qualifying_screen_time_ms)}</td><td>{len(b.appearances)}</td>"
        f"<td>{100 * b.share_of_voice:.1f} %</td><td>{100 * b.share_of_frames:.1f} %</td>"
        f"<td>{b.first_seen_timecode}</td><td>{b.last_seen_timecode}</td>"
        f"<td>{b.mean_confidence:.1f} / {b.max_confidence:.1f}</td>"
        f"<td>{100 * b.mean_box_share:.2f} %</td></tr>"
        for b in brands
    )
    sections = []
    for b in brands:
        proofs = []
        for a in b.appearances:
            data = thumbnails.get(a.proof_thumbnail_key or "")
            if data is None:
                continue
            proofs.append(
                f"<figure><img class='proof' src='{_data_uri(data)}' alt='{escape(b.brand)} at "
                f"{a.start_timecode}'><figcaption>{a.start_timecode} - {a.end_timecode} "
                f"({_ms(a.duration_ms)})</figcaption></figure>"
            )
        sections.append(
            f"<section class='brand'><h2>{escape(b.brand)}</h2>"
            f"<h3>Share of sampled frames per minute</h3>{per_minute(b, colors[b.brand])}"
            f"<h3>Where on screen</h3>{screen_map(b)}"
            f"<h3>Proof, one per appearance</h3><div class='proofs'>{''.join(proofs)}</div>"
            "</section>"
        )
    over_time = timeline(summary)
    if over_time:
        over_time = f"<h2>Appearances over time</h2>{over_time}"
    body = (
        f"<h2>Screen time and share of voice</h2>{screen_time_bars(summary)}"
        f"{over_time}"
        "<table class='brands'><thead><tr><th>brand</th><th>screen time</th>"
        "<th>qualifying</th><th>appearances</th><th>share of voice</th><th>frames</th>"
        "<th>first seen</th><th>last seen</th><th>confidence mean / max</th>"
        f"<th>mean box share</th></tr></thead><tbody>{table_rows}</tbody></table>"
        f"{''.join(sections)}"
    )
    return _page(f"brandlens report: {escape(summary.job_id)}", _subtitle(summary), body)
