"""Procedural backgrounds: gradients, noise, stripes, random shapes, shelves, billboards.

Every generator takes a numpy ``Generator`` and returns an RGB image; the same generator
state gives the same pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from .brands import RGB, hsv_color, neutral_color

BackgroundKind = Literal["gradient", "noise", "stripes", "shapes", "shelf", "billboard"]
BACKGROUND_KINDS: tuple[BackgroundKind, ...] = get_args(BackgroundKind)

FloatArray = np.ndarray[tuple[int, ...], np.dtype[np.float32]]


def random_color(
    rng: np.random.Generator,
    s: tuple[float, float] = (0.15, 0.8),
    v: tuple[float, float] = (0.2, 0.95),
) -> RGB:
    return hsv_color(float(rng.random()), float(rng.uniform(*s)), float(rng.uniform(*v)))


def _to_image(arr: FloatArray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _upscaled(arr: FloatArray, width: int, height: int) -> Image.Image:
    """A smooth low-resolution RGB field, resized to the frame (cheap smooth gradients)."""
    return _to_image(arr).resize((width, height), Image.Resampling.BILINEAR)


def noise_tile(rng: np.random.Generator, sigma: float, size: int = 256) -> np.ndarray:
    """A ``size`` x ``size`` x 3 tile of Gaussian noise (int16), tiled over frames."""
    return (rng.standard_normal((size, size, 3), dtype=np.float32) * np.float32(sigma)).astype(
        np.int16
    )


def add_noise(img: Image.Image, tile: np.ndarray, dx: int = 0, dy: int = 0) -> Image.Image:
    """``img`` plus the noise ``tile`` repeated over it (offset by ``dx``, ``dy``)."""
    width, height = img.size
    th, tw = tile.shape[:2]
    reps = (math.ceil((height + dy) / th), math.ceil((width + dx) / tw), 1)
    noise = np.tile(tile, reps)[dy : dy + height, dx : dx + width]
    arr = np.asarray(img.convert("RGB")).astype(np.int16) + noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _grain(rng: np.random.Generator, img: Image.Image, sigma: float) -> Image.Image:
    return add_noise(img, noise_tile(rng, sigma, 128))


def _small(width: int, height: int, factor: int = 8) -> tuple[int, int]:
    return max(2, math.ceil(width / factor)), max(2, math.ceil(height / factor))


def _linear(width: int, height: int, angle: float) -> FloatArray:
    """0..1 along direction ``angle`` (radians)."""
    xs = np.arange(width, dtype=np.float32)[None, :] * np.float32(math.cos(angle))
    ys = np.arange(height, dtype=np.float32)[:, None] * np.float32(math.sin(angle))
    t = xs + ys
    lo, hi = float(t.min()), float(t.max())
    return ((t - np.float32(lo)) / np.float32(max(hi - lo, 1e-6))).astype(np.float32)


def _blend(t: FloatArray, c0: RGB, c1: RGB) -> FloatArray:
    a = np.asarray(c0, np.float32)
    b = np.asarray(c1, np.float32)
    return a + (b - a) * t[..., None]


def _gradient_image(
    width: int, height: int, angle: float, c0: RGB, c1: RGB, vignette: float = 0.0
) -> Image.Image:
    sw, sh = _small(width, height)
    arr = _blend(_linear(sw, sh, angle), c0, c1)
    if vignette:
        xs = (np.arange(sw, dtype=np.float32)[None, :] / sw - 0.5) * 2
        ys = (np.arange(sh, dtype=np.float32)[:, None] / sh - 0.5) * 2
        fall = np.float32(1) - np.float32(vignette / 2) * (xs * xs + ys * ys)
        arr = (arr * fall[..., None]).astype(np.float32)
    return _upscaled(arr, width, height)


def _angle(rng: np.random.Generator) -> float:
    return float(rng.uniform(0, 2 * math.pi))


def gradient(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    vignette = float(rng.uniform(0.15, 0.45)) if rng.random() < 0.5 else 0.0
    img = _gradient_image(
        width, height, _angle(rng), random_color(rng), random_color(rng), vignette
    )
    return _grain(rng, img, 2.0)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cells: int) -> FloatArray:
    gh = max(2, round(cells * height / width))
    small = (rng.random((gh, cells)) * 255).astype(np.uint8)
    up = Image.fromarray(small, "L").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(up, dtype=np.float32) / np.float32(255)


def noise(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Multi-octave value noise between two colours, with a colour tint (made at half size)."""
    hw, hh = _small(width, height, 2)
    n = np.zeros((hh, hw), np.float32)
    total = 0.0
    for cells, amp in (
        (int(rng.integers(3, 8)), 1.0),
        (int(rng.integers(12, 30)), 0.5),
        (int(rng.integers(60, 140)), 0.25),
    ):
        n += _smooth_noise(rng, hw, hh, cells) * np.float32(amp)
        total += amp
    n = (n - n.min()) / max(float(n.max() - n.min()), 1e-6)
    arr = _blend(n, random_color(rng), random_color(rng))
    tint = _smooth_noise(rng, hw, hh, 6) - np.float32(0.5)
    arr += tint[..., None] * np.asarray(random_color(rng), np.float32) * np.float32(0.3)
    img = _to_image(arr).resize((width, height), Image.Resampling.BICUBIC)
    return _grain(rng, img, 3.0)


def stripes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Parallel bands of a few colours at some angle, under a soft shading gradient."""
    angle = float(
        rng.choice([0.0, math.pi / 2, math.pi / 4, -math.pi / 4, rng.uniform(0, math.pi)])
    )
    palette = [random_color(rng) for _ in range(int(rng.integers(2, 5)))]
    n = int(rng.integers(3, 9))
    widths = [float(w) for w in rng.uniform(8, 120, size=n)]
    colors = [palette[int(i)] for i in rng.integers(len(palette), size=n)]
    nx, ny = math.cos(angle), math.sin(angle)
    tx, ty = -ny, nx
    reach = float(width + height)
    proj = [x * nx + y * ny for x in (0, width) for y in (0, height)]
    period = sum(widths)
    pos = math.floor(min(proj) / period) * period
    img = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(img)
    k = 0
    while pos < max(proj):
        w = widths[k % n]
        a0, a1 = pos, pos + w + 0.5
        draw.polygon(
            [
                (a0 * nx - reach * tx, a0 * ny - reach * ty),
                (a1 * nx - reach * tx, a1 * ny - reach * ty),
                (a1 * nx + reach * tx, a1 * ny + reach * ty),
                (a0 * nx + reach * tx, a0 * ny + reach * ty),
            ],
            fill=colors[k % n],
        )
        pos += w
        k += 1
    grey = int(rng.integers(150, 200))
    shade = _gradient_image(width, height, _angle(rng), (grey,) * 3, (255, 255, 255))
    return _grain(rng, ImageChops.multiply(img, shade), 2.5)


def _random_polygon(
    rng: np.random.Generator, cx: float, cy: float, r: float
) -> list[tuple[float, float]]:
    k = int(rng.integers(3, 8))
    angles = np.sort(rng.uniform(0, 2 * math.pi, size=k))
    radii = r * rng.uniform(0.5, 1.0, size=k)
    return [
        (cx + float(rr * math.cos(a)), cy + float(rr * math.sin(a)))
        for a, rr in zip(angles, radii, strict=True)
    ]


def draw_random_shapes(
    rng: np.random.Generator,
    img: Image.Image,
    count: int,
    size: tuple[float, float],
    color: Callable[[np.random.Generator], RGB],
) -> None:
    """``count`` translucent ellipses, rectangles, polygons and thick lines, in place."""
    draw = ImageDraw.Draw(img, "RGBA")
    width, height = img.size
    for _ in range(count):
        r = math.exp(rng.uniform(math.log(size[0]), math.log(size[1])))
        cx, cy = rng.uniform(-r / 2, width + r / 2), rng.uniform(-r / 2, height + r / 2)
        fill = (*color(rng), int(rng.integers(110, 256)))
        kind = rng.integers(4)
        if kind == 0:
            ry = r * rng.uniform(0.4, 1.0)
            draw.ellipse((cx - r, cy - ry, cx + r, cy + ry), fill=fill)
        elif kind == 1:
            ry = r * rng.uniform(0.3, 1.0)
            draw.rectangle((cx - r, cy - ry, cx + r, cy + ry), fill=fill)
        elif kind == 2:
            draw.polygon(_random_polygon(rng, cx, cy, r), fill=fill)
        else:
            a = rng.uniform(0, math.pi)
            dx, dy = r * math.cos(a), r * math.sin(a)
            draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=fill, width=max(2, int(r * 0.15)))


def shapes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    img = _gradient_image(width, height, _angle(rng), random_color(rng), random_color(rng))
    draw_random_shapes(
        rng, img, int(rng.integers(15, 60)), (8, 0.35 * height), lambda g: random_color(g)
    )
    return _grain(rng, img, 2.0)


def shelf(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Store shelves: boards with rows of boxes and bottles in random colours."""
    img = _gradient_image(
        width, height, math.pi / 2, neutral_color(rng, (0.6, 0.95)), neutral_color(rng, (0.35, 0.7))
    )
    draw = ImageDraw.Draw(img)
    rows = int(rng.integers(2, 5))
    row_h = height / rows
    board = hsv_color(
        float(rng.uniform(0.05, 0.11)), float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.3, 0.75))
    )
    unit = max(4.0, height / 720 * 90)
    for r in range(rows):
        board_th = row_h * rng.uniform(0.06, 0.1)
        y_board = (r + 1) * row_h - board_th
        x = float(rng.uniform(0, unit / 3))
        while x < width:
            pw = float(rng.uniform(0.4, 1.6)) * unit
            ph = float(rng.uniform(0.45, 0.85)) * (row_h - board_th)
            fill = random_color(rng, (0.1, 0.9), (0.25, 0.95))
            edge = tuple(int(c * 0.6) for c in fill)
            top = y_board - ph
            if rng.random() < 0.3:  # bottle: body, shoulder and neck
                neck = pw * 0.3
                draw.rectangle((x, top + ph * 0.3, x + pw, y_board), fill=fill, outline=edge)
                draw.rectangle(
                    (x + (pw - neck) / 2, top, x + (pw + neck) / 2, top + ph * 0.3), fill=edge
                )
            else:
                draw.rectangle((x, top, x + pw, y_board), fill=fill, outline=edge)
            band = random_color(rng)
            by = top + ph * rng.uniform(0.4, 0.6)
            draw.rectangle((x + 2, by, x + pw - 2, by + ph * rng.uniform(0.12, 0.3)), fill=band)
            x += pw + float(rng.uniform(0.02, 0.2)) * unit
        draw.rectangle((0, y_board, width, y_board + board_th), fill=board)
        light = tuple(min(255, int(c * 1.3)) for c in board)
        draw.line((0, y_board, width, y_board), fill=light, width=max(1, int(board_th * 0.15)))
    return _grain(rng, img, 2.0)


def billboard(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A street: sky, buildings with windows, ground and framed billboard panels."""
    sky_top = hsv_color(
        float(rng.uniform(0.5, 0.68)), float(rng.uniform(0.2, 0.7)), float(rng.uniform(0.5, 0.95))
    )
    sky_low = hsv_color(
        float(rng.uniform(0.0, 0.15)), float(rng.uniform(0.05, 0.4)), float(rng.uniform(0.7, 1.0))
    )
    img = _gradient_image(width, height, math.pi / 2, sky_top, sky_low)
    draw = ImageDraw.Draw(img)
    horizon = height * float(rng.uniform(0.6, 0.82))
    x = float(rng.uniform(-50, 0))
    while x < width:
        bw = width * float(rng.uniform(0.06, 0.18))
        top = horizon - height * float(rng.uniform(0.15, 0.55))
        wall = neutral_color(rng, (0.15, 0.6))
        draw.rectangle((x, top, x + bw, horizon), fill=wall)
        win = neutral_color(rng, (0.5, 0.95))
        step = max(6.0, bw / float(rng.integers(3, 7)))
        wy = top + step * 0.4
        while wy < horizon - step * 0.5:
            wx = x + step * 0.3
            while wx < x + bw - step * 0.5:
                draw.rectangle((wx, wy, wx + step * 0.45, wy + step * 0.55), fill=win)
                wx += step
            wy += step
        x += bw + float(rng.uniform(0, 20))
    draw.rectangle((0, horizon, width, height), fill=neutral_color(rng, (0.2, 0.6)))
    for _ in range(int(rng.integers(1, 4))):
        bw = width * float(rng.uniform(0.22, 0.45))
        bh = bw * float(rng.uniform(0.35, 0.55))
        bx = float(rng.uniform(-0.1 * bw, width - 0.9 * bw))
        by = float(rng.uniform(0.05 * height, max(0.06 * height, horizon - bh - 0.12 * height)))
        frame = neutral_color(rng, (0.1, 0.5))
        pole = max(3.0, bw * 0.03)
        for px in (bx + bw * 0.25, bx + bw * 0.75):
            draw.rectangle((px - pole, by + bh, px + pole, horizon + 0.02 * height), fill=frame)
        draw.rectangle((bx, by, bx + bw, by + bh), fill=frame)
        inset = max(2.0, bw * 0.02)
        panel = _gradient_image(
            max(1, int(bw - 2 * inset)),
            max(1, int(bh - 2 * inset)),
            _angle(rng),
            random_color(rng),
            random_color(rng),
        )
        img.paste(panel, (int(bx + inset), int(by + inset)))
        draw = ImageDraw.Draw(img)
    return _grain(rng, img, 1.5)


_GENERATORS: dict[str, Callable[[np.random.Generator, int, int], Image.Image]] = {
    "gradient": gradient,
    "noise": noise,
    "stripes": stripes,
    "shapes": shapes,
    "shelf": shelf,
    "billboard": billboard,
}


def make_background(
    rng: np.random.Generator, width: int, height: int, kind: str | None = None
) -> Image.Image:
    """An RGB ``width`` x ``height`` background of ``kind`` (random kind when ``None``)."""
    if kind is None:
        kind = str(rng.choice(BACKGROUND_KINDS))
    if kind not in _GENERATORS:
        raise ValueError(f"unknown background kind {kind!r}; expected one of {BACKGROUND_KINDS}")
    return _GENERATORS[kind](rng, width, height)
