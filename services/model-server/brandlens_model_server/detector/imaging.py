"""Bringing images to the network's input: decode, fit into the input canvas, to tensor."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from brandlens_core.images import to_rgb

# Input canvas (width, height): 16:9 frames fill it exactly; others are letterboxed.
DEFAULT_INPUT = (448, 256)


class InvalidImageError(ValueError):
    """The bytes are not a decodable JPEG or PNG image."""


@dataclass(frozen=True)
class Fitted:
    array: np.ndarray  # (H, W, 3) uint8, the input canvas
    scale: float  # canvas pixels per original pixel
    original_size: tuple[int, int]  # (width, height) of the source image


def decode(data: bytes, target: tuple[int, int] | None = None) -> Image.Image:
    """Decode JPEG/PNG bytes to RGB (transparency composited on white); with ``target``,
    let JPEG decode at a reduced scale."""
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in ("JPEG", "PNG"):
            raise InvalidImageError(f"expected a JPEG or PNG image, got {img.format or 'unknown'}")
        size = img.size
        if target is not None and img.format == "JPEG":
            img.draft("RGB", (target[0], target[1]))  # DCT scaling: decode 1/2, 1/4 or 1/8
        rgb = to_rgb(img)  # transparent pixels on white, as the framer does
    except InvalidImageError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidImageError(f"the image could not be decoded: {exc}") from None
    rgb.info["original_size"] = size
    return rgb


def fit(
    img: Image.Image, canvas: tuple[int, int], original: tuple[int, int] | None = None
) -> Fitted:
    """Scale ``img`` to fit the canvas (aspect kept), pad right/bottom with grey."""
    original = original or img.info.get("original_size") or img.size
    cw, ch = canvas
    ow, oh = original
    scale = min(cw / ow, ch / oh)
    w, h = max(1, round(ow * scale)), max(1, round(oh * scale))
    resized = img.resize((w, h), Image.Resampling.BILINEAR) if img.size != (w, h) else img
    out = np.full((ch, cw, 3), 114, np.uint8)
    out[:h, :w] = np.asarray(resized)
    return Fitted(out, scale, (ow, oh))
