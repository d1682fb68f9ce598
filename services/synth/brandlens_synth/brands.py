"""Procedural brands: a coloured shape, a monogram and a wordmark, drawn with Pillow only.

A :class:`Brand` is a frozen description; :func:`render_logo` draws it as a tight RGBA
image of an exact height. :func:`default_brands` gives ``n`` clearly distinct brands
(distinct name, hue, shape/layout combination, lettering). Brand colours are always
saturated (HSV saturation >= :data:`BRAND_MIN_SATURATION`); :func:`neutral_color` draws
colours no brand uses, for distractors and occluders.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
Shape = Literal["circle", "rounded_square", "triangle", "hexagon", "star"]
Layout = Literal["side", "stacked", "badge"]
Case = Literal["upper", "lower", "title"]

SHAPES: tuple[Shape, ...] = get_args(Shape)
LAYOUTS: tuple[Layout, ...] = get_args(Layout)
CASES: tuple[Case, ...] = get_args(Case)

#: Every brand primary colour has at least this HSV saturation; neutral colours stay below
#: :data:`NEUTRAL_MAX_SATURATION`, so a distractor can never wear a brand's colour.
BRAND_MIN_SATURATION = 0.6
NEUTRAL_MAX_SATURATION = 0.15

BRAND_NAMES: tuple[str, ...] = (
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "soylent",
    "cyberdyne",
    "tyrell",
    "wonka",
    "stark",
    "wayne",
    "oscorp",
    "aperture",
    "vandelay",
    "monarch",
    "dunder",
    "gekko",
    "nakatomi",
    "virtucon",
    "massive",
    "krusty",
    "duff",
    "sterling",
    "prestige",
)

_CHARCOAL: RGB = (34, 34, 40)
_WHITE: RGB = (255, 255, 255)


@dataclass(frozen=True)
class Brand:
    """A procedurally drawn brand logo.

    ``primary`` fills the shape (or the badge), ``secondary`` is the monogram inside the
    shape (or the icon and lettering on a badge), ``text_color`` is the wordmark colour
    for the ``side`` and ``stacked`` layouts. ``wordmark`` is the text shown (defaults to
    ``name``), styled by ``case``, ``bold``, ``italic`` and ``tracking`` (extra letter
    spacing as a fraction of the font size).
    """

    name: str
    shape: Shape = "circle"
    primary: RGB = (220, 40, 40)
    secondary: RGB = _WHITE
    text_color: RGB = _CHARCOAL
    layout: Layout = "side"
    wordmark: str | None = None
    case: Case = "title"
    bold: bool = False
    italic: bool = False
    tracking: float = 0.0
    monogram: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a brand needs a non-empty name")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; expected one of {LAYOUTS}")
        if self.case not in CASES:
            raise ValueError(f"unknown case {self.case!r}; expected one of {CASES}")
        for color in (self.primary, self.secondary, self.text_color):
            if len(color) != 3 or not all(0 <= c <= 255 for c in color):
                raise ValueError(f"colours are (r, g, b) tuples of 0..255, got {color!r}")

    @property
    def text(self) -> str:
        """The lettering as drawn (wordmark or name, with the brand's case applied)."""
        word = self.wordmark if self.wordmark is not None else self.name
        if self.case == "upper":
            return word.upper()
        if self.case == "lower":
            return word.lower()
        return word[:1].upper() + word[1:]


def hsv_color(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return (round(r * 255), round(g * 255), round(b * 255))


def saturation(color: RGB) -> float:
    return colorsys.rgb_to_hsv(*(c / 255 for c in color))[1]


def luminance(color: RGB) -> float:
    r, g, b = (c / 255 for c in color)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def neutral_color(rng: np.random.Generator, value: tuple[float, float] = (0.08, 0.95)) -> RGB:
    """A grey-ish colour (HSV saturation <= NEUTRAL_MAX_SATURATION): never a brand colour."""
    return hsv_color(
        float(rng.random()),
        float(rng.uniform(0.0, NEUTRAL_MAX_SATURATION)),
        float(rng.uniform(*value)),
    )


_SYLLABLES = (
    "ka", "lo", "ve", "tri", "zen", "mar", "qui", "dro", "bel", "nix",
    "por", "sa", "tu", "vel", "xo", "ra", "mi", "cor", "fen", "gal",
)  # fmt: skip


def _generated_name(i: int, taken: set[str]) -> str:
    rng = np.random.default_rng([20_260_101, i])
    while True:
        parts = rng.choice(len(_SYLLABLES), size=int(rng.integers(2, 4)))
        name = "".join(_SYLLABLES[int(p)] for p in parts)
        if name not in taken:
            return name


def default_brands(n: int) -> list[Brand]:
    """``n`` clearly distinct brands, always the same for the same ``n`` (a prefix grows).

    The first 24 take well-known fictional names (acme, globex, initech, umbrella, hooli,
    ...); later ones get generated pronounceable names. Hues follow the golden-ratio
    sequence, shape and layout cycle with co-prime periods (5 and 3), so the first 15
    brands all have different shape/layout pairs.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    brands: list[Brand] = []
    taken: set[str] = set()
    for i in range(n):
        name = BRAND_NAMES[i] if i < len(BRAND_NAMES) else _generated_name(i, taken)
        taken.add(name)
        hue = (0.0 + i * 0.618_033_988_75) % 1.0
        sat = (0.9, 0.75, 0.85)[i % 3]
        val = (0.88, 0.72, 0.95, 0.62)[i % 4]
        primary = hsv_color(hue, sat, val)
        secondary = _WHITE if luminance(primary) < 0.55 else hsv_color(hue, 0.9, 0.3)
        layout = LAYOUTS[i % 3]
        if layout == "badge":
            text_color = secondary
        elif i % 2 == 0:
            text_color = hsv_color(hue, min(1.0, sat + 0.05), val * 0.55)
        else:
            text_color = _CHARCOAL
        brands.append(
            Brand(
                name=name,
                shape=SHAPES[i % 5],
                primary=primary,
                secondary=secondary,
                text_color=text_color,
                layout=layout,
                case=CASES[(i // 2) % 3],
                bold=i % 4 in (0, 3),
                italic=i % 7 in (2, 5),
                tracking=(0.0, 0.1, 0.02, 0.22)[i % 4],
                monogram=i % 6 != 4,
            )
        )
    return brands


# --------------------------------------------------------------------------- lettering


@lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font (Aileron Regular): no font files, no downloads."""
    loaded = ImageFont.load_default(size=max(1, size))
    if not isinstance(loaded, ImageFont.FreeTypeFont):  # pragma: no cover - Pillow < 10
        raise RuntimeError("Pillow built without FreeType: cannot draw scalable text")
    return loaded


def text_mask(
    text: str, height_px: int, *, bold: bool = False, italic: bool = False, tracking: float = 0.0
) -> Image.Image:
    """An ``L`` mask of ``text`` whose line (ascent + descent) is ``height_px`` tall.

    The mask is cropped horizontally to the ink; vertically it keeps the full line so
    that words sit on the same baseline whatever their letters.
    """
    probe = font(100)
    ascent, descent = probe.getmetrics()
    size = max(1, round(height_px * 100 / (ascent + descent)))
    f = font(size)
    ascent, descent = f.getmetrics()
    stroke = max(1, round(size * 0.045)) if bold else 0
    spacing = tracking * size
    widths = [f.getlength(ch) for ch in text]
    width = math.ceil(sum(widths) + spacing * max(0, len(text) - 1)) + 2 * stroke + 4
    line_h = ascent + descent + 2 * stroke
    mask = Image.new("L", (width, line_h), 0)
    draw = ImageDraw.Draw(mask)
    x = float(stroke + 2)
    for ch, w in zip(text, widths, strict=True):
        draw.text(
            (x, ascent + stroke), ch, fill=255, font=f, anchor="ls",
            stroke_width=stroke, stroke_fill=255,
        )  # fmt: skip
        x += w + spacing
    if italic:
        k = 0.2
        h = mask.height
        mask = mask.transform(
            (mask.width + math.ceil(k * h), h),
            Image.Transform.AFFINE,
            (1.0, k, -k * h, 0.0, 1.0, 0.0),
            resample=Image.Resampling.BICUBIC,
        )
    bbox = mask.getbbox()
    if bbox is None:
        return mask
    return mask.crop((bbox[0], 0, bbox[2], mask.height))


def _colored(mask: Image.Image, color: RGB) -> Image.Image:
    layer = Image.new("RGBA", mask.size, (*color, 0))
    layer.putalpha(mask)
    return layer


# --------------------------------------------------------------------------- shapes


def star_points(cx: float, cy: float, r: float, inner: float = 0.45) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else r * inner
        a = -math.pi / 2 + k * math.pi / 5
        points.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return points


def shape_mask(shape: Shape, size: int) -> tuple[Image.Image, tuple[float, float]]:
    """An ``L`` mask of ``shape`` in a ``size`` square and the point to centre a monogram on."""
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    m = size * 0.03
    c = size / 2
    centre = (c, c)
    if shape == "circle":
        draw.ellipse((m, m, size - m, size - m), fill=255)
    elif shape == "rounded_square":
        draw.rounded_rectangle((m, m, size - m, size - m), radius=size * 0.22, fill=255)
    elif shape == "triangle":
        draw.polygon([(c, m), (size - m, size - m), (m, size - m)], fill=255)
        centre = (c, size * 0.64)
    elif shape == "hexagon":
        draw.regular_polygon((c, c, c - m), 6, rotation=30, fill=255)
    elif shape == "star":
        draw.polygon(star_points(c, size * 0.53, c - m), fill=255)
        centre = (c, size * 0.55)
    else:  # pragma: no cover - validated by Brand
        raise ValueError(shape)
    return mask, centre


def _emblem(brand: Brand, size: int, fill: RGB, monogram: bool) -> Image.Image:
    mask, centre = shape_mask(brand.shape, size)
    layer = _colored(mask, fill)
    if monogram:
        small = brand.shape in ("triangle", "star")
        letter_h = round(size * (0.42 if small else 0.62))
        letter = text_mask(brand.name[:1].upper(), letter_h, bold=brand.bold)
        ink = letter.getbbox() or (0, 0, letter.width, letter.height)
        letter = letter.crop(ink)
        x = round(centre[0] - letter.width / 2)
        y = round(centre[1] - letter.height / 2)
        layer.paste(_colored(letter, brand.secondary), (x, y), letter)
    return layer


# --------------------------------------------------------------------------- logos


def _word(brand: Brand, height_px: int) -> Image.Image:
    return text_mask(
        brand.text, height_px, bold=brand.bold, italic=brand.italic, tracking=brand.tracking
    )


def _draw_logo(brand: Brand, h: int) -> Image.Image:
    if brand.layout == "side":
        emblem = _emblem(brand, h, brand.primary, brand.monogram)
        word = _word(brand, round(0.5 * h))
        gap = round(0.14 * h)
        canvas = Image.new("RGBA", (h + gap + word.width, h), (0, 0, 0, 0))
        canvas.alpha_composite(emblem, (0, 0))
        canvas.alpha_composite(_colored(word, brand.text_color), (h + gap, (h - word.height) // 2))
        return canvas
    if brand.layout == "stacked":
        size = round(0.6 * h)
        word = _word(brand, round(0.33 * h))
        width = max(size, word.width)
        canvas = Image.new("RGBA", (width, h), (0, 0, 0, 0))
        canvas.alpha_composite(
            _emblem(brand, size, brand.primary, brand.monogram), ((width - size) // 2, 0)
        )
        canvas.alpha_composite(
            _colored(word, brand.text_color), ((width - word.width) // 2, h - word.height)
        )
        return canvas
    # badge: a pill in the primary colour holding an icon and the lettering in secondary
    icon = round(0.6 * h)
    word = _word(brand, round(0.46 * h))
    pad = round(0.28 * h)
    gap = round(0.12 * h)
    width = pad + icon + gap + word.width + pad
    canvas = Image.new("RGBA", (width, h), (0, 0, 0, 0))
    pill = Image.new("L", (width, h), 0)
    radius = h * (0.5 if brand.shape in ("circle", "star") else 0.18)
    ImageDraw.Draw(pill).rounded_rectangle((0, 0, width - 1, h - 1), radius=radius, fill=255)
    canvas.alpha_composite(_colored(pill, brand.primary))
    canvas.alpha_composite(_emblem(brand, icon, brand.secondary, False), (pad, (h - icon) // 2))
    canvas.alpha_composite(
        _colored(word, brand.secondary), (pad + icon + gap, (h - word.height) // 2)
    )
    return canvas


@lru_cache(maxsize=256)
def _master(brand: Brand, height_px: int) -> Image.Image:
    """The logo drawn large (``height_px`` tall, tight), to be downscaled with antialiasing."""
    big = _draw_logo(brand, height_px)
    bbox = big.getchannel("A").getbbox()
    if bbox is not None:
        big = big.crop(bbox)
    width = max(1, round(big.width * height_px / big.height))
    return big.resize((width, height_px), Image.Resampling.LANCZOS)


@lru_cache(maxsize=2048)
def _logo_cached(brand: Brand, height_px: int) -> Image.Image:
    level = 128
    while level < 2 * height_px:
        level *= 2
    master = _master(brand, level)
    width = max(1, round(master.width * height_px / master.height))
    return master.resize((width, height_px), Image.Resampling.LANCZOS, reducing_gap=3.0)


def render_logo(brand: Brand, height_px: int) -> Image.Image:
    """``brand`` drawn as an RGBA image exactly ``height_px`` tall, tight around its ink.

    Downscaled (antialiased) from a cached drawing at least twice as tall; a fresh copy is
    returned.
    """
    if height_px < 4:
        raise ValueError("height_px must be >= 4")
    return _logo_cached(brand, int(height_px)).copy()


def logo_aspect(brand: Brand) -> float:
    """Width / height of the brand's logo."""
    logo = _master(brand, 128)
    return logo.width / logo.height


def quantized_height(height_px: float, step: float = 1.06) -> int:
    """``height_px`` rounded to a geometric ladder (6 % steps), so that logo renders are
    reused: a placement draws the logo at this height and warps it to the exact one."""
    if height_px <= 8:
        return max(4, round(height_px))
    k = round(math.log(height_px / 8) / math.log(step))
    return max(4, round(8 * step**k))


# --------------------------------------------------------------------------- near misses

_LOOKALIKE = {
    "a": "o", "b": "d", "c": "e", "d": "b", "e": "c", "f": "t", "g": "q", "h": "n",
    "i": "l", "k": "x", "l": "i", "m": "n", "n": "m", "o": "a", "p": "q", "q": "p",
    "r": "n", "s": "z", "t": "f", "u": "v", "v": "u", "w": "vv", "x": "k", "y": "v",
    "z": "s",
}  # fmt: skip


def near_miss(word: str, rng: np.random.Generator, forbidden: set[str] | None = None) -> str:
    """A misspelling of ``word`` (look-alike letter, swap, drop or doubled letter).

    The result is lower case, differs from ``word`` and is not in ``forbidden`` (compared
    case-insensitively), e.g. ``acme`` -> ``acne``.
    """
    base = word.lower()
    banned = {w.lower() for w in (forbidden or set())} | {base}
    for _ in range(100):
        letters = list(base)
        op = rng.choice(["lookalike", "lookalike", "lookalike", "swap", "drop", "double"])
        i = int(rng.integers(len(letters)))
        if op == "lookalike" and letters[i] in _LOOKALIKE:
            letters[i] = _LOOKALIKE[letters[i]]
        elif op == "swap" and len(letters) > 1:
            j = min(i, len(letters) - 2)
            letters[j], letters[j + 1] = letters[j + 1], letters[j]
        elif op == "drop" and len(letters) > 3:
            del letters[i]
        else:
            letters.insert(i, letters[i])
        candidate = "".join(letters)
        if candidate not in banned:
            return candidate
    return base + "x" if base + "x" not in banned else base + "zq"


def brand_words(brands: list[Brand] | tuple[Brand, ...]) -> set[str]:
    """All words that identify a brand (names and wordmarks), lower case."""
    words = {b.name.lower() for b in brands}
    words |= {b.wordmark.lower() for b in brands if b.wordmark}
    return words
