"""Scenes: logos composited onto procedural backgrounds, with exact, alpha-derived boxes.

The pipeline is split so that groups of frames and videos can reuse it:

* :func:`sample_scene_spec` draws a :class:`SceneSpec` — a background (distractors
  already drawn into it), logo :class:`Placement` s and global :class:`Effects`;
* :func:`compose` renders a spec into a :class:`Scene`: the image, the boxes and the
  visible alpha mask of every logo;
* :func:`drift_spec` moves the logos of a spec slightly (the next frame of a "video").

Boxes are computed from each logo's *visible* alpha after every transform: the warped
logo alpha, times ``1 - alpha`` of everything drawn over it later (occluders, other
logos), clipped to the frame; the box is the extent of the pixels whose visible alpha
is at least :data:`ALPHA_THRESHOLD`. A logo with less than :data:`MIN_VISIBLE_FRACTION`
of its alpha visible (occluded or outside the frame) stays in the picture but gets no
box. Global effects (lighting, noise, blur, JPEG) do not move pixels, so boxes hold.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .backgrounds import BACKGROUND_KINDS, BackgroundKind, add_noise, make_background, noise_tile
from .brands import (
    RGB,
    SHAPES,
    Brand,
    brand_words,
    font,
    hsv_color,
    logo_aspect,
    near_miss,
    neutral_color,
    quantized_height,
    render_logo,
    shape_mask,
    text_mask,
)

#: Visible alpha (0..1) at which a pixel counts as part of the logo's box.
ALPHA_THRESHOLD = 0.25
#: Below this fraction of its alpha visible, a logo is not labelled.
MIN_VISIBLE_FRACTION = 0.4

FloatArray = np.ndarray[tuple[int, ...], np.dtype[np.float32]]
Corners = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]
NO_WARP: Corners = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 0.0))


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in absolute pixels (left/top inclusive), labelled with a brand."""

    label: str
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    def iou(self, other: Box) -> float:
        iw = min(self.right, other.right) - max(self.left, other.left)
        ih = min(self.bottom, other.bottom) - max(self.top, other.top)
        if iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        return inter / (self.area + other.area - inter)

    def to_dict(self) -> dict[str, int | str]:
        return {
            "label": self.label,
            "left": self.left,
            "top": self.top,
            "width": self.width,
            "height": self.height,
        }


@dataclass(frozen=True)
class Occluder:
    """A polygon drawn over a logo; vertices relative to the logo centre, in logo heights."""

    points: tuple[tuple[float, float], ...]
    color: RGB
    outline: RGB


@dataclass(frozen=True)
class Placement:
    """Where and how one logo is drawn.

    ``(cx, cy)`` is the logo centre in frame pixels, ``height`` its height in pixels
    before rotation, ``angle`` a counter-clockwise rotation in degrees, ``corners`` a
    perspective offset of each corner (top-left, top-right, bottom-right, bottom-left),
    in logo heights, ``blur`` a Gaussian radius in pixels, ``gain`` a brightness factor
    for the logo alone. The logo is drawn at ``render_height`` pixels (``height``
    rounded when 0) and then warped to ``height``, so frames that only drift reuse it.
    """

    brand: Brand
    cx: float
    cy: float
    height: float
    angle: float = 0.0
    corners: Corners = NO_WARP
    blur: float = 0.0
    gain: float = 1.0
    occluder: Occluder | None = None
    render_height: int = 0


@dataclass(frozen=True)
class Effects:
    """Whole-frame effects applied after compositing (they never move pixels)."""

    brightness: float = 1.0
    contrast: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise: float = 0.0
    blur: float = 0.0
    jpeg_quality: int | None = None
    seed: int = 0

    @property
    def identity(self) -> bool:
        return self == Effects(seed=self.seed)


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of :func:`sample_scene_spec`; defaults are the benchmark's settings."""

    min_logos: int = 1
    max_logos: int = 4
    logo_height: tuple[float, float] = (0.04, 0.35)  # fraction of the frame height
    rotation_probability: float = 0.6
    max_rotation: float = 25.0  # degrees
    perspective_probability: float = 0.5
    max_perspective: float = 0.25  # strength of the simulated yaw / pitch
    blur_probability: float = 0.3
    max_blur: float = 2.5  # pixels
    occlusion_probability: float = 0.25
    lighting: bool = True
    noise_probability: float = 0.5
    global_blur_probability: float = 0.15
    jpeg_quality: tuple[int, int] | None = (30, 90)
    distractors: tuple[int, int] = (1, 5)
    backgrounds: tuple[BackgroundKind, ...] = BACKGROUND_KINDS

    @classmethod
    def clean(cls) -> SceneConfig:
        """Upright, unwarped, unoccluded logos and no frame effects or distractors."""
        return cls(
            rotation_probability=0.0,
            perspective_probability=0.0,
            blur_probability=0.0,
            occlusion_probability=0.0,
            lighting=False,
            noise_probability=0.0,
            global_blur_probability=0.0,
            jpeg_quality=None,
            distractors=(0, 0),
        )


@dataclass(frozen=True)
class SceneSpec:
    width: int
    height: int
    background: Image.Image = field(compare=False, repr=False)
    placements: tuple[Placement, ...] = ()
    effects: Effects = Effects()


@dataclass(frozen=True)
class LogoInstance:
    """One drawn logo: its visible alpha (cropped at ``offset``) and its box, if labelled."""

    label: str
    box: Box | None
    visible_fraction: float
    offset: tuple[int, int]
    mask: FloatArray = field(repr=False, compare=False)

    def full_mask(self, width: int, height: int) -> FloatArray:
        out = np.zeros((height, width), np.float32)
        x, y = self.offset
        h, w = self.mask.shape
        out[y : y + h, x : x + w] = self.mask
        return out


@dataclass(frozen=True)
class Scene:
    image: Image.Image
    logos: tuple[LogoInstance, ...]

    @property
    def boxes(self) -> list[Box]:
        return [logo.box for logo in self.logos if logo.box is not None]


# --------------------------------------------------------------------------- warping


def perspective_coefficients(
    dst: list[tuple[float, float]], src: list[tuple[float, float]]
) -> tuple[float, ...]:
    """The 8 coefficients PIL's PERSPECTIVE transform needs to map ``dst`` onto ``src``."""
    rows: list[list[float]] = []
    rhs: list[float] = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    sol = np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64))
    return tuple(float(c) for c in sol)


def placement_quad(p: Placement, logo_w: int, logo_h: int) -> list[tuple[float, float]]:
    """Frame coordinates of the logo's corners (TL, TR, BR, BL) after scale, warp, rotation."""
    s = p.height / logo_h
    a = math.radians(p.angle)
    cos, sin = math.cos(a), math.sin(a)
    quad = []
    src = ((0, 0), (logo_w, 0), (logo_w, logo_h), (0, logo_h))
    for (x, y), (jx, jy) in zip(src, p.corners, strict=True):
        dx = (x - logo_w / 2) * s + jx * p.height
        dy = (y - logo_h / 2) * s + jy * p.height
        quad.append((p.cx + dx * cos + dy * sin, p.cy - dx * sin + dy * cos))
    return quad


def warp_logo(p: Placement) -> tuple[Image.Image, int, int]:
    """The placed logo as an RGBA image and the frame position of its top-left pixel."""
    h0 = p.render_height or max(4, round(p.height))
    logo = render_logo(p.brand, h0)
    w0 = logo.width
    quad = placement_quad(p, w0, h0)
    pad = math.ceil(3 * p.blur) + 2
    x0 = math.floor(min(x for x, _ in quad)) - pad
    y0 = math.floor(min(y for _, y in quad)) - pad
    x1 = math.ceil(max(x for x, _ in quad)) + pad
    y1 = math.ceil(max(y for _, y in quad)) + pad
    local = [(x - x0, y - y0) for x, y in quad]
    coeffs = perspective_coefficients(local, [(0, 0), (w0, 0), (w0, h0), (0, h0)])
    warped = logo.convert("RGBa").transform(
        (x1 - x0, y1 - y0),
        Image.Transform.PERSPECTIVE,
        coeffs,
        resample=Image.Resampling.BICUBIC,
    )
    if p.blur > 0:
        warped = warped.filter(ImageFilter.GaussianBlur(p.blur))
    out = warped.convert("RGBA")
    if p.gain != 1.0:
        arr = np.asarray(out).astype(np.float32)
        arr[..., :3] *= np.float32(p.gain)
        out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGBA")
    return out, x0, y0


# --------------------------------------------------------------------------- compositing


@dataclass
class _Layer:
    label: str
    x: int
    y: int
    visible: FloatArray
    total: float


def _clip(x: int, y: int, w: int, h: int, width: int, height: int) -> tuple[int, int, int, int]:
    return max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)


def _cover(layers: list[_Layer], alpha: FloatArray, x: int, y: int) -> None:
    """Multiply the visible alpha of ``layers`` by ``1 - alpha`` (frame region at x, y)."""
    h, w = alpha.shape
    for layer in layers:
        lh, lw = layer.visible.shape
        ix0, iy0 = max(x, layer.x), max(y, layer.y)
        ix1, iy1 = min(x + w, layer.x + lw), min(y + h, layer.y + lh)
        if ix0 >= ix1 or iy0 >= iy1:
            continue
        layer.visible[iy0 - layer.y : iy1 - layer.y, ix0 - layer.x : ix1 - layer.x] *= (
            np.float32(1) - alpha[iy0 - y : iy1 - y, ix0 - x : ix1 - x]
        )


def _occluder_layer(
    occ: Occluder, p: Placement, width: int, height: int
) -> tuple[Image.Image, int, int] | None:
    pts = [(p.cx + u * p.height, p.cy + v * p.height) for u, v in occ.points]
    x0, y0, x1, y1 = _clip(
        math.floor(min(x for x, _ in pts)),
        math.floor(min(y for _, y in pts)),
        0,
        0,
        width,
        height,
    )
    x1 = min(math.ceil(max(x for x, _ in pts)) + 1, width)
    y1 = min(math.ceil(max(y for _, y in pts)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    layer = Image.new("RGBA", (x1 - x0, y1 - y0), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    local = [(x - x0, y - y0) for x, y in pts]
    draw.polygon(local, fill=(*occ.color, 255), outline=(*occ.outline, 255), width=2)
    return layer, x0, y0


def _visible_box(label: str, layer: _Layer) -> Box | None:
    ys, xs = np.nonzero(layer.visible >= ALPHA_THRESHOLD)
    if xs.size == 0:
        return None
    left, top = int(xs.min()) + layer.x, int(ys.min()) + layer.y
    return Box(
        label, left, top, int(xs.max()) + layer.x + 1 - left, int(ys.max()) + layer.y + 1 - top
    )


def _lighting_lut(fx: Effects, mean: float) -> list[int]:
    lut: list[int] = []
    for gain in fx.cast:
        scale = gain * fx.brightness
        lut += [
            min(255, max(0, round(((v - mean) * fx.contrast + mean) * scale))) for v in range(256)
        ]
    return lut


def apply_effects(image: Image.Image, fx: Effects) -> Image.Image:
    """Lighting (brightness, contrast, colour cast), sensor noise, blur, JPEG re-encoding."""
    if fx.identity:
        return image
    if (fx.brightness, fx.contrast, fx.cast) != (1.0, 1.0, (1.0, 1.0, 1.0)):
        mean = float(np.asarray(image.reduce(8)).mean())
        image = image.point(_lighting_lut(fx, mean))
    if fx.noise > 0:
        noise_rng = np.random.default_rng(fx.seed)
        tile = noise_tile(noise_rng, fx.noise)
        dx, dy = (int(v) for v in noise_rng.integers(0, tile.shape[0], size=2))
        image = add_noise(image, tile, dx, dy)
    if fx.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(fx.blur))
    if fx.jpeg_quality is not None:
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=fx.jpeg_quality)
        buf.seek(0)
        with Image.open(buf) as decoded:
            image = decoded.convert("RGB")
    return image


def compose(spec: SceneSpec) -> Scene:
    """Render ``spec``: paste logos (and their occluders) in order, then apply effects."""
    width, height = spec.width, spec.height
    if spec.background.size != (width, height):
        raise ValueError(f"background is {spec.background.size}, scene is {(width, height)}")
    frame = spec.background.convert("RGB").copy()
    layers: list[_Layer] = []
    for p in spec.placements:
        logo, ox, oy = warp_logo(p)
        alpha = np.asarray(logo.getchannel("A"), np.float32) / np.float32(255)
        total = float(alpha.sum())
        fx0, fy0, fx1, fy1 = _clip(ox, oy, logo.width, logo.height, width, height)
        if fx0 < fx1 and fy0 < fy1:
            frame.paste(logo, (ox, oy), logo)
            visible = alpha[fy0 - oy : fy1 - oy, fx0 - ox : fx1 - ox].copy()
            _cover(layers, visible, fx0, fy0)
        else:
            visible = np.zeros((0, 0), np.float32)
        layers.append(_Layer(p.brand.name, fx0, fy0, visible, total))
        if p.occluder is not None:
            occ = _occluder_layer(p.occluder, p, width, height)
            if occ is not None:
                occ_image, lx, ly = occ
                frame.paste(occ_image, (lx, ly), occ_image)
                occ_alpha = np.asarray(occ_image.getchannel("A"), np.float32) / np.float32(255)
                _cover(layers, occ_alpha, lx, ly)
    logos = []
    for layer in layers:
        fraction = float(layer.visible.sum()) / layer.total if layer.total > 0 else 0.0
        box = _visible_box(layer.label, layer) if fraction >= MIN_VISIBLE_FRACTION else None
        logos.append(LogoInstance(layer.label, box, fraction, (layer.x, layer.y), layer.visible))
    return Scene(apply_effects(frame, spec.effects), tuple(logos))


# --------------------------------------------------------------------------- sampling


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_occluder(rng: np.random.Generator, aspect: float) -> Occluder:
    """A pole, a blob or a corner block over part of a logo of width/height ``aspect``."""
    hw, hh = aspect / 2, 0.5
    kind = int(rng.integers(3))
    points: list[tuple[float, float]]
    if kind == 0:  # a pole or a lamp post in front of the logo
        t = min(_uniform(rng, 0.12, 0.45), 0.45 * aspect) / 2
        x = _uniform(rng, -hw, hw)
        tilt = _uniform(rng, -0.3, 0.3)
        points = [
            (x - t + tilt, -3.0),
            (x + t + tilt, -3.0),
            (x + t - tilt, 3.0),
            (x - t - tilt, 3.0),
        ]
    elif kind == 1:  # a blob (a head, a hand) centred on the logo's outline
        side = int(rng.integers(4))
        if side < 2:
            cx, cy = _uniform(rng, -hw, hw), (-hh, hh)[side]
        else:
            cx, cy = (-hw, hw)[side - 2], _uniform(rng, -hh, hh)
        rx = _uniform(rng, 0.3, 0.8) * min(1.0, max(aspect, 0.6))
        ry = _uniform(rng, 0.3, 0.8)
        points = [
            (cx + rx * math.cos(a), cy + ry * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, 28, endpoint=False)
        ]
    else:  # a block covering one corner side of the logo
        fx = _uniform(rng, 0.15, 0.6) * aspect
        fy = _uniform(rng, 0.35, 1.2)
        sx = 1 if rng.random() < 0.5 else -1
        sy = 1 if rng.random() < 0.5 else -1
        x_in, y_in = sx * (hw - fx), sy * (hh - fy)
        x_out, y_out = sx * (hw + 2), sy * (hh + 2)
        points = [(x_in, y_in), (x_out, y_in), (x_out, y_out), (x_in, y_out)]
    color = neutral_color(rng, (0.1, 0.85))
    outline = tuple(int(c * 0.7) for c in color)
    return Occluder(tuple(points), color, (outline[0], outline[1], outline[2]))


def _perspective(rng: np.random.Generator, aspect: float, strength: float) -> Corners:
    """Corner offsets (in logo heights) that look like a yaw and a pitch of the sign."""
    yaw = _uniform(rng, -strength, strength)
    pitch = _uniform(rng, -strength, strength) * 0.6
    j = [(_uniform(rng, -0.03, 0.03), _uniform(rng, -0.03, 0.03)) for _ in range(4)]
    px = pitch * aspect * 0.5
    return (
        (px + j[0][0], yaw * 0.5 + j[0][1]),
        (-px + j[1][0], -yaw * 0.5 + j[1][1]),
        (j[2][0], yaw * 0.5 + j[2][1]),
        (j[3][0], -yaw * 0.5 + j[3][1]),
    )


def _rotated_extent(w: float, h: float, angle: float) -> tuple[float, float]:
    a = math.radians(angle)
    c, s = abs(math.cos(a)), abs(math.sin(a))
    return w * c + h * s, w * s + h * c


def sample_placements(
    rng: np.random.Generator,
    brands: list[Brand] | tuple[Brand, ...],
    width: int,
    height: int,
    n: int,
    config: SceneConfig,
) -> list[Placement]:
    """Up to ``n`` logos of random brands, sizes and poses whose extents do not overlap."""
    placements: list[Placement] = []
    taken: list[tuple[float, float, float, float]] = []
    lo, hi = config.logo_height
    for _ in range(n):
        brand = brands[int(rng.integers(len(brands)))]
        aspect = logo_aspect(brand)
        for _attempt in range(40):
            h = math.exp(_uniform(rng, math.log(lo), math.log(hi))) * height
            h = max(8.0, min(h, 0.9 * width / aspect))
            angle = 0.0
            if rng.random() < config.rotation_probability:
                angle = _uniform(rng, -config.max_rotation, config.max_rotation)
            bw, bh = _rotated_extent(aspect * h, h, angle)
            out = 0.2 if rng.random() < 0.1 else 0.0  # sometimes cut by the frame edge
            cx = _uniform(rng, bw * (0.5 - out), max(bw * (0.5 - out), width - bw * (0.5 - out)))
            cy = _uniform(rng, bh * (0.5 - out), max(bh * (0.5 - out), height - bh * (0.5 - out)))
            rect = (cx - bw / 2 - 4, cy - bh / 2 - 4, cx + bw / 2 + 4, cy + bh / 2 + 4)
            if any(
                rect[0] < t[2] and t[0] < rect[2] and rect[1] < t[3] and t[1] < rect[3]
                for t in taken
            ):
                continue
            taken.append(rect)
            corners = NO_WARP
            if rng.random() < config.perspective_probability:
                corners = _perspective(rng, aspect, config.max_perspective)
            blur = 0.0
            if rng.random() < config.blur_probability:
                blur = _uniform(rng, 0.4, config.max_blur)
            gain = _uniform(rng, 0.8, 1.15) if config.lighting else 1.0
            occluder = None
            if rng.random() < config.occlusion_probability:
                occluder = sample_occluder(rng, aspect)
            placements.append(
                Placement(
                    brand=brand,
                    cx=cx,
                    cy=cy,
                    height=h,
                    angle=angle,
                    corners=corners,
                    blur=blur,
                    gain=gain,
                    occluder=occluder,
                    render_height=quantized_height(h),
                )
            )
            break
    return placements


def sample_effects(rng: np.random.Generator, config: SceneConfig) -> Effects:
    brightness, contrast, cast = 1.0, 1.0, (1.0, 1.0, 1.0)
    if config.lighting:
        brightness = _uniform(rng, 0.65, 1.3)
        contrast = _uniform(rng, 0.7, 1.25)
        c = rng.uniform(0.88, 1.12, size=3)
        cast = (float(c[0]), float(c[1]), float(c[2]))
    noise = _uniform(rng, 1.0, 6.0) if rng.random() < config.noise_probability else 0.0
    blur = _uniform(rng, 0.3, 1.2) if rng.random() < config.global_blur_probability else 0.0
    quality = None
    if config.jpeg_quality is not None:
        quality = int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1))
    return Effects(brightness, contrast, cast, noise, blur, quality, int(rng.integers(2**31)))


DistractorKind = Literal["shape", "word", "knockoff"]


def draw_distractors(
    rng: np.random.Generator,
    image: Image.Image,
    brands: list[Brand] | tuple[Brand, ...],
    count: int,
) -> None:
    """Draw ``count`` things that are *not* logos into ``image`` (in place).

    Plain shapes in neutral colours, misspelled brand names (``acne`` for ``acme``) in
    neutral colours, and "knock-offs": a brand's layout and shape, but in neutral colours
    and with a misspelled name. None carries a brand's colours and correct name.
    """
    width, height = image.size
    forbidden = brand_words(brands)
    for _ in range(count):
        kind: DistractorKind = ("shape", "word", "knockoff")[int(rng.integers(3))]
        source = brands[int(rng.integers(len(brands)))] if brands else None
        h = max(10, round(math.exp(_uniform(rng, math.log(0.03), math.log(0.2))) * height))
        if kind == "shape" or source is None:
            mask, _ = shape_mask(SHAPES[int(rng.integers(len(SHAPES)))], h * 2)
            mask = mask.resize((h, h), Image.Resampling.LANCZOS)
            layer = Image.new("RGBA", mask.size, (*neutral_color(rng), 0))
            layer.putalpha(mask)
        elif kind == "word":
            word = near_miss(source.name, rng, forbidden)
            word = (word.upper(), word.lower(), word.title())[int(rng.integers(3))]
            mask = text_mask(
                word, h, bold=bool(rng.random() < 0.5), italic=bool(rng.random() < 0.3)
            )
            layer = Image.new("RGBA", mask.size, (*neutral_color(rng), 0))
            layer.putalpha(mask)
        else:
            fake = replace(
                source,
                name=near_miss(source.name, rng, forbidden),
                wordmark=None,
                primary=neutral_color(rng, (0.2, 0.9)),
                secondary=neutral_color(rng, (0.85, 1.0)),
                text_color=neutral_color(rng, (0.05, 0.5)),
            )
            layer = render_logo(fake, h)
        if rng.random() < 0.5:
            layer = layer.rotate(
                _uniform(rng, -30, 30), resample=Image.Resampling.BICUBIC, expand=True
            )
        x = int(rng.integers(-layer.width // 4, max(1, width - layer.width * 3 // 4)))
        y = int(rng.integers(-layer.height // 4, max(1, height - layer.height * 3 // 4)))
        image.paste(layer, (x, y), layer)


def sample_scene_spec(
    rng: np.random.Generator,
    brands: list[Brand] | tuple[Brand, ...],
    width: int = 1280,
    height: int = 720,
    *,
    n_logos: int | None = None,
    config: SceneConfig | None = None,
    background: Image.Image | None = None,
) -> SceneSpec:
    """A random scene: background (+ distractors), ``n_logos`` placements, effects.

    ``n_logos=None`` draws between ``config.min_logos`` and ``config.max_logos``; 0 gives
    a negative scene (no logo, distractors still present).
    """
    config = config or SceneConfig()
    if background is None:
        kind = config.backgrounds[int(rng.integers(len(config.backgrounds)))]
        background = make_background(rng, width, height, kind)
        lo, hi = config.distractors
        draw_distractors(rng, background, brands, int(rng.integers(lo, hi + 1)))
    if n_logos is None:
        n_logos = int(rng.integers(config.min_logos, config.max_logos + 1))
    if n_logos and not brands:
        raise ValueError("logos requested but no brands given")
    placements = sample_placements(rng, brands, width, height, n_logos, config)
    return SceneSpec(width, height, background, tuple(placements), sample_effects(rng, config))


def drift_spec(
    rng: np.random.Generator, spec: SceneSpec, config: SceneConfig | None = None
) -> SceneSpec:
    """The next frame of the same shot: same background, logos moved/scaled/turned a little."""
    config = config or SceneConfig()
    moved = []
    for p in spec.placements:
        dx, dy = rng.normal(0, 0.006, size=2) * spec.width
        cx = min(max(p.cx + float(dx), 0.0), float(spec.width))
        cy = min(max(p.cy + float(dy), 0.0), float(spec.height))
        height = p.height * float(np.clip(rng.normal(1, 0.02), 0.94, 1.06))
        angle = p.angle + float(rng.normal(0, 1.0))
        moved.append(replace(p, cx=cx, cy=cy, height=height, angle=angle))
    return replace(spec, placements=tuple(moved), effects=_drift_effects(rng, spec.effects, config))


def _drift_effects(rng: np.random.Generator, fx: Effects, config: SceneConfig) -> Effects:
    """Same shot, next frame: lighting changes a little; new sensor noise and JPEG quality."""
    jitter = rng.normal(1.0, 0.02, size=5)
    quality = fx.jpeg_quality
    if config.jpeg_quality is not None and quality is not None:
        lo, hi = config.jpeg_quality
        quality = int(np.clip(quality + rng.integers(-5, 6), lo, hi))
    return replace(
        fx,
        brightness=fx.brightness * float(jitter[0]) if config.lighting else fx.brightness,
        contrast=fx.contrast * float(jitter[1]) if config.lighting else fx.contrast,
        cast=(
            (
                fx.cast[0] * float(jitter[2]),
                fx.cast[1] * float(jitter[3]),
                fx.cast[2] * float(jitter[4]),
            )
            if config.lighting
            else fx.cast
        ),
        jpeg_quality=quality,
        seed=int(rng.integers(2**31)),
    )


def render_scene(
    rng: np.random.Generator,
    brands: list[Brand] | tuple[Brand, ...],
    width: int = 1280,
    height: int = 720,
    *,
    n_logos: int | None = None,
    config: SceneConfig | None = None,
) -> tuple[Image.Image, list[Box]]:
    """A random RGB scene and the boxes of its visible logos.

    ``n_logos=0`` makes a negative frame (no logo, no box); ``None`` a random count in
    the config's range. A positive scene whose every logo ended up hidden is redrawn
    without occluders, so it keeps at least one box.
    """
    spec = sample_scene_spec(rng, brands, width, height, n_logos=n_logos, config=config)
    scene = compose_positive(spec)
    return scene.image, scene.boxes


def compose_positive(spec: SceneSpec) -> Scene:
    """:func:`compose`, redrawn without occluders if logos were placed but none is labelled."""
    scene = compose(spec)
    if spec.placements and not scene.boxes:
        bare = tuple(replace(p, occluder=None) for p in spec.placements)
        scene = compose(replace(spec, placements=bare))
    return scene


def draw_boxes(image: Image.Image, boxes: list[Box]) -> Image.Image:
    """A copy of ``image`` with the boxes and their labels drawn on it (for eyeballing)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    f = font(16)
    for box in boxes:
        hue = (sum(map(ord, box.label)) * 0.137) % 1.0
        color = hsv_color(hue, 1.0, 1.0)
        draw.rectangle((box.left, box.top, box.right - 1, box.bottom - 1), outline=color, width=2)
        tw = f.getlength(box.label)
        ty = box.top - 20 if box.top >= 20 else box.bottom + 2
        draw.rectangle((box.left, ty, box.left + tw + 6, ty + 19), fill=(0, 0, 0))
        draw.text((box.left + 3, ty + 1), box.label, fill=color, font=f)
    return out
