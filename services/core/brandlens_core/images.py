"""Pixels every service reads the same way."""

from __future__ import annotations

from PIL import Image

# Transparent pixels are shown on white, as browsers, slide decks and print show a
# transparent logo. Dropping the alpha channel instead keeps whatever colour the file
# stores under it, black in most files: a dark logo then vanishes into its background.
BACKGROUND = (255, 255, 255)


def has_alpha(img: Image.Image) -> bool:
    """True when the image carries transparency (alpha channel or a transparent colour)."""
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def to_rgb(img: Image.Image, background: tuple[int, int, int] = BACKGROUND) -> Image.Image:
    """The image as RGB, transparency composited over ``background`` (white)."""
    if not has_alpha(img):
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")
