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


def gallery_key(job_id: str, frame_index: int) -> str:
    return f"results/{job_id}/gallery/{frame_index:06d}.jpg"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow's own scalable font (FreeType)
    except (TypeError, OSError):  # built without FreeType: the small bitmap font
        return ImageFont.load_default()


def draw_proof(
    jpeg: bytes, labels: list[dict[str, Any]], caption: str, *, name_boxes: bool = False
) -> bytes:
    """The frame scaled to 480 px wide, boxes drawn (with their brand and confidence when
    ``name_boxes``), the caption in a band at the bottom."""
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
        if name_boxes:
            tag = f"{label.get('name')} {float(label.get('confidence') or 0):.0f}%"
            small = _font(13)
            text_box = draw.textbbox((left, top), tag, font=small)
            y = top - (text_box[3] - text_box[1]) - 6 if top > 20 else top
            draw.rectangle(
                (left, y, left + text_box[2] - text_box[0] + 6, y + text_box[3] - text_box[1] + 6),
                fill=BOX,
            )
            draw.text((left + 3, y + 1), tag, fill=(0, 0, 0), font=small)
    font = _font(16)
    band = 26
    draw.rectangle((0, height - band, width, height), fill=(0, 0, 0))
    draw.text((8, height - band + 4), caption, fill=(255, 255, 255), font=font)
    out = io.BytesIO()
    frame.save(out, format="JPEG", quality=85)
    return out.getvalue()
