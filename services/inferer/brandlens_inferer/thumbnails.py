"""Proof thumbnails: the frame of each appearance with the brand's boxes and the timecode."""

from __future__ import annotations

import hashlib
import io
import re
from typing import Any

from PIL import Image, ImageDraw, ImageFont

WIDTH = 480
BOX = (255, 200, 0)


def thumbnail_key(job_id: str, brand: str, appearance: int) -> str:
    """A key per brand and appearance; brand names are free text, so they are slugged
    and made unique with a short hash."""
    slug = re.sub(r"[^a-z0-9]+", "-", brand.lower()).strip("-")[:40] or "brand"
    digest = hashlib.sha256(brand.encode()).hexdigest()[:8]
    return f"results/{job_id}/proof/{slug}-{digest}-{appearance:04d}.jpg"


def draw_proof(jpeg: bytes, labels: list[dict[str, Any]], caption: str) -> bytes:
    """The frame scaled to 480 px wide, boxes drawn, the caption in a band at the bottom."""
    with Image.open(io.BytesIO(jpeg)) as img:
        frame = img.convert("RGB")
    frame.thumbnail((WIDTH, WIDTH * 4))
    width, height = frame.size
    draw = ImageDraw.Draw(frame)
    stroke = max(2, width // 160)
    for label in labels:
        box = label.get("box")
        if not box:
            continue
        left, top = box["left"] * width, box["top"] * height
        right, bottom = left + box["width"] * width, top + box["height"] * height
        draw.rectangle((left, top, right, bottom), outline=BOX, width=stroke)
    font = ImageFont.load_default()
    band = 18
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    draw.text((6, height - band + 3), caption, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=85)
    return out.getvalue()
