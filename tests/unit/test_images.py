"""Transparent images are read on white, the same way by the framer and the detector.

A dark logo in a transparent PNG was flattened onto black (the colour stored under
transparent pixels): a logo found at 70 % on white was not found at all.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from brandlens_core.images import to_rgb
from brandlens_framer.handler import _normalise_image
from brandlens_model_server.detector.imaging import decode

NAVY = (20, 30, 120)


def logo_rgba(size: int = 64) -> Image.Image:
    """A navy square on a fully transparent background whose hidden colour is black."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (size // 2, size // 2), (*NAVY, 255)), (size // 4, size // 4))
    return img


def variants() -> dict[str, Image.Image]:
    rgba = logo_rgba()
    palette = rgba.convert("RGB").quantize(colors=4)
    black_index = palette.getpixel((0, 0))
    palette.info["transparency"] = black_index  # PNG tRNS on a palette entry
    grey = Image.new("LA", (64, 64), (0, 0))
    grey.paste(Image.new("LA", (32, 32), (40, 255)), (16, 16))
    rgb_trns = rgba.convert("RGB")
    rgb_trns.info["transparency"] = (0, 0, 0)  # PNG tRNS on a colour
    return {"RGBA": rgba, "P+tRNS": palette, "LA": grey, "RGB+tRNS": rgb_trns}


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(
        out,
        "PNG",
        **({"transparency": img.info["transparency"]} if "transparency" in img.info else {}),
    )
    return out.getvalue()


@pytest.mark.parametrize("kind", ["RGBA", "P+tRNS", "LA", "RGB+tRNS"])
def test_transparent_pixels_become_white_and_the_logo_keeps_its_colour(kind: str) -> None:
    img = Image.open(io.BytesIO(png(variants()[kind])))
    rgb = np.asarray(to_rgb(img))
    assert tuple(rgb[2, 2]) == (255, 255, 255), "transparent corner not white"
    centre = tuple(int(v) for v in rgb[32, 32])
    assert max(centre) < 130, f"the logo's dark pixels were lost: {centre}"


def test_half_transparent_pixels_are_blended_over_white() -> None:
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert tuple(np.asarray(to_rgb(img))[0, 0]) == pytest.approx((127, 127, 127), abs=1)


def test_opaque_images_are_unchanged() -> None:
    img = Image.new("RGB", (8, 8), NAVY)
    assert np.array_equal(np.asarray(to_rgb(img)), np.asarray(img))


def test_the_detector_sees_a_transparent_png_as_the_same_logo_on_white() -> None:
    transparent = png(logo_rgba())
    on_white = Image.new("RGB", (64, 64), (255, 255, 255))
    on_white.paste(Image.new("RGB", (32, 32), NAVY), (16, 16))
    seen = np.asarray(decode(transparent))
    assert np.array_equal(seen, np.asarray(decode(png(on_white))))
    assert tuple(seen[2, 2]) == (255, 255, 255)


def test_the_framer_writes_a_transparent_png_as_a_jpeg_on_white() -> None:
    frame = _normalise_image(png(logo_rgba(256)), longest_side=1280, quality=95)
    rgb = np.asarray(Image.open(io.BytesIO(frame.jpeg)).convert("RGB")).astype(int)
    assert (frame.width, frame.height) == (256, 256)
    assert rgb[4, 4].min() >= 245, rgb[4, 4]  # JPEG: near white
    assert np.abs(rgb[128, 128] - np.array(NAVY)).max() <= 12, rgb[128, 128]
