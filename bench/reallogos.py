"""Real brand logos composited onto real photographs: a detector test set built at bench time.

Nothing here is committed but code: the assets are fetched into ``bench/.cache/reallogos/
assets/`` (git-ignored) the first time, through the package registries this machine reaches:

* **logos**: the npm package ``simple-icons`` (CC0-1.0; the logos themselves may be
  trademarks of their owners), version :data:`SIMPLE_ICONS_VERSION`, from ``npm pack``:
  ``icons/<slug>.svg`` (one monochrome 24x24 path) and ``data/simple-icons.json`` (each
  brand's ``title`` and ``hex`` colour). Rendered with cairosvg, filled with the brand colour.
* **photos**: the Debian package ``mate-backgrounds`` (GPL-2+; ``apt-get download`` +
  ``dpkg-deb -x``, no root install), its ``nature/*.jpg`` photographs, plus the real
  photographs bundled inside the scikit-image wheel (:data:`SKIMAGE_PHOTOS`, read from the
  installed package's data directory: no pooch download).

Photos are split into disjoint TRAIN and TEST photos (60/40 within each source, by seed).
A frame is a 1280x720 random crop (scale, position, mirror) of one photo with 0-3 logo
instances: :data:`TARGETS` (labelled) and :data:`DISTRACTORS` (drawn, never labelled; they
include look-alikes of the targets, :data:`LOOKALIKES`; a third of the distractor draws
pick one). An instance is the icon in its brand colour (two-tone like the real logo for
the brands in :data:`TWO_TONE`, e.g. Facebook's white f, Shell's red and yellow), or
(35 %) on a plate (rectangle or rounded board: white, dark, or the brand colour with the
icon in white/contrast); its width is 3-35 % of the frame width (log-uniform); it is
rotated a little (sd 6 deg), perspective-warped mildly, shaded (brightness and a
gradient), sometimes blurred, sometimes (30 %) partly occluded (up to 25 % of the icon's
alpha) by a patch of the photo or a solid bar; then the whole frame gets
exposure/contrast/gamma/colour changes, sometimes blur and noise, and is saved as JPEG at
quality 40-95.

**The box is the icon's, never the plate's**: the tight axis-aligned extent of the pixels
where the icon's *visible* alpha (after warp, blur and occlusion) is >= 0.25. Global
effects move no pixel, so boxes hold. Logos of a frame never overlap each other.

TRAIN: ``train_frames`` frames (default 180), exactly ``train_boxes_per_brand`` (default
50, the most issue 19 allows and about what its user labelled) boxes per target brand,
15 % of the frames without targets (distractors only, or nothing). TEST: ``test_frames``
(default 400, TEST photos only), 20 % negatives. Each frame's ``group`` is its source
photo, so splits by group never share a photo.

Each set is a directory laid out as ``brandlens_synth.generate_dataset`` writes it
(``000000.jpg`` ..., ``samples.jsonl`` = :class:`brandlens_synth.Sample` dicts plus a
``distractors`` list of unlabelled boxes, ``manifest.jsonl`` = Ground Truth lines), plus
``brands.json`` (targets, distractors, look-alike pairs, the photo split). Sets are cached
under ``bench/.cache/reallogos/<set>-<params>/`` and reused. Everything is a function of
the seed and parameters, whatever the number of worker processes.

API: :func:`real_logo_sets`. CLI: ``.venv/bin/python bench/reallogos.py [--seed 0]
[--train-frames 180] [--test-frames 400] [--workers 2]`` builds both sets, prints counts
and writes a contact sheet to ``bench/.cache/reallogos/preview.png``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import subprocess  # nosec B404 - fixed argv lists for npm, apt-get and dpkg-deb
import sys
import tarfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from brandlens_synth import Box, Brand, Sample, manifest_line

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache" / "reallogos"
ASSETS = CACHE / "assets"
PREVIEW = CACHE / "preview.png"

SIMPLE_ICONS_VERSION = "15.22.0"
#: Bump when the generator changes what it draws: cached sets are keyed on it.
GENERATOR_VERSION = 3

RGB = tuple[int, int, int]

WIDTH, HEIGHT = 1280, 720
ALPHA_THRESHOLD = 0.25
MAX_OCCLUDED = 0.25
MIN_SIZE, MAX_SIZE = 0.03, 0.35  # icon width as a fraction of the frame width
PLATE_PROBABILITY = 0.35
LOOKALIKE_SHARE = 0.35  # share of distractor draws that pick a look-alike of a target

#: Labelled brands (simple-icons slugs). Nike is the small, dark (#111111) one.
TARGETS: tuple[str, ...] = ("youtube", "facebook", "starbucks", "bmw", "nike", "shell")
#: (target, distractor) pairs that are easy to confuse: sub-brands and same-shape logos.
LOOKALIKES: tuple[tuple[str, str], ...] = (
    ("youtube", "youtubekids"),  # sub-brand: same red rounded play button
    ("youtube", "youtubeshorts"),  # sub-brand: red play mark
    ("facebook", "messenger"),  # sister brand (Meta): same blue, round
    ("starbucks", "skoda"),  # dark-green roundel with a white emblem
    ("bmw", "volkswagen"),  # blue circular roundel
    ("bmw", "mini"),  # sister brand (BMW Group)
    ("nike", "jordan"),  # sister brand (Nike Inc.): black mark
)
#: Unlabelled logos drawn in frames of both sets (the look-alikes first).
DISTRACTORS: tuple[str, ...] = (
    "youtubekids", "youtubeshorts", "messenger", "skoda", "volkswagen", "mini", "jordan",
    "spotify", "mastercard", "apple", "ubuntu", "firefox", "playstation", "audi", "toyota",
    "honda", "redbull", "mcdonalds", "adidas", "puma", "reebok", "jira", "trello",
    "dropbox", "paypal", "visa", "ikea", "airbnb", "netflix", "instagram", "whatsapp",
    "telegram", "github", "docker", "tesla", "cocacola", "intel", "nvidia", "kfc",
    "burgerking", "pinterest", "snapchat", "citroen", "renault",
)  # fmt: skip

#: Two-colour logos: the counters (holes) of the monochrome icon filled as the real logo
#: has them -- "hull" fills the convex hull (a counter open to the edge, e.g. Facebook's
#: f), "holes" only enclosed holes -- (method, fill colour, ink colour or None = brand hex).
#: Used for 80 % of the instances; the rest stay monochrome, as single-colour prints are.
TWO_TONE: dict[str, tuple[str, RGB, RGB | None]] = {
    "youtube": ("hull", (255, 255, 255), None),
    "youtubekids": ("hull", (255, 255, 255), None),
    "youtubeshorts": ("holes", (255, 255, 255), None),
    "facebook": ("hull", (255, 255, 255), None),
    "messenger": ("holes", (255, 255, 255), None),
    "starbucks": ("hull", (255, 255, 255), None),
    "skoda": ("hull", (255, 255, 255), None),
    "bmw": ("hull", (255, 255, 255), None),
    "volkswagen": ("hull", (255, 255, 255), None),
    "shell": ("holes", (255, 213, 0), (221, 29, 33)),  # yellow shell, red outline
    "spotify": ("hull", (0, 0, 0), None),
    "whatsapp": ("holes", (255, 255, 255), None),
    "telegram": ("hull", (255, 255, 255), None),
    "pinterest": ("hull", (255, 255, 255), None),
}
TWO_TONE_PROBABILITY = 0.8

#: Real photographs shipped inside the scikit-image wheel (no download); grey ones included.
SKIMAGE_PHOTOS: tuple[str, ...] = (
    "astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
    "hubble_deep_field.jpg", "camera.png", "brick.png", "grass.png", "gravel.png",
)  # fmt: skip
MATE_NATURE = Path("usr/share/backgrounds/mate/nature")
TRAIN_PHOTO_SHARE = 0.6

FloatArray = np.ndarray[Any, np.dtype[np.float32]]
UInt8Array = np.ndarray[Any, np.dtype[np.uint8]]


class AssetError(RuntimeError):
    """A source is missing and could not be fetched; the message says how to get it."""


# --------------------------------------------------------------------------- assets


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)  # nosec B603


def simple_icons_dir() -> Path:
    """The unpacked simple-icons package (``icons/``, data file); ``npm pack`` it if missing."""
    pkg = ASSETS / f"simple-icons-{SIMPLE_ICONS_VERSION}" / "package"
    if (pkg / "icons").is_dir():
        return pkg
    ASSETS.mkdir(parents=True, exist_ok=True)
    tgz = ASSETS / f"simple-icons-{SIMPLE_ICONS_VERSION}.tgz"
    if not tgz.exists():
        npm = shutil.which("npm")
        how = f"(cd {ASSETS} && npm pack simple-icons@{SIMPLE_ICONS_VERSION})"
        if npm is None:
            raise AssetError(f"npm is not on PATH: install Node.js/npm, then run {how}")
        r = _run([npm, "pack", f"simple-icons@{SIMPLE_ICONS_VERSION}", "--silent"], ASSETS)
        if r.returncode != 0 or not tgz.exists():
            raise AssetError(f"npm pack failed ({r.stderr.strip()[-500:]}); run {how}")
    with tarfile.open(tgz) as tar:
        tar.extractall(pkg.parent, filter="data")
    if not (pkg / "icons").is_dir():
        raise AssetError(f"{tgz} has no package/icons/: delete it and run again")
    return pkg


def simple_icons_data(pkg: Path) -> dict[str, dict[str, Any]]:
    """``{slug: {"title", "hex", ...}}`` from the package's data file (path varies by version)."""
    for rel in ("data/simple-icons.json", "_data/simple-icons.json"):
        path = pkg / rel
        if path.exists():
            raw = json.loads(path.read_text(encoding="utf-8"))
            entries = raw["icons"] if isinstance(raw, dict) else raw
            return {str(e["slug"]): e for e in entries if "slug" in e}
    raise AssetError(f"no data/simple-icons.json or _data/simple-icons.json under {pkg}")


def mate_nature_dir() -> Path:
    """``.../backgrounds/mate/nature`` from the mate-backgrounds .deb (fetched if missing)."""
    root = ASSETS / "mate-backgrounds"
    nature = root / MATE_NATURE
    if nature.is_dir() and any(nature.glob("*.jpg")):
        return nature
    ASSETS.mkdir(parents=True, exist_ok=True)
    how = (
        f"(cd {ASSETS} && apt-get download mate-backgrounds) (after `apt-get update` if apt "
        "knows no such package), or put mate-backgrounds_*.deb there yourself"
    )
    debs = sorted(ASSETS.glob("mate-backgrounds_*.deb"))
    if not debs:
        apt = shutil.which("apt-get")
        if apt is None:
            raise AssetError(f"apt-get is not available; get the package with {how}")
        r = _run([apt, "download", "mate-backgrounds"], ASSETS)
        debs = sorted(ASSETS.glob("mate-backgrounds_*.deb"))
        if not debs:
            raise AssetError(f"apt-get download failed ({r.stderr.strip()[-500:]}); run {how}")
    dpkg = shutil.which("dpkg-deb")
    if dpkg is None:
        raise AssetError(f"dpkg-deb is not available to unpack {debs[-1]}")
    r = _run([dpkg, "-x", str(debs[-1]), str(root)], ASSETS)
    if r.returncode != 0 or not any(nature.glob("*.jpg")):
        raise AssetError(f"dpkg-deb -x {debs[-1]} failed ({r.stderr.strip()[-500:]})")
    return nature


def skimage_data_dir() -> Path:
    try:
        import skimage
    except ImportError as e:  # pragma: no cover - it is a dependency of the venv
        raise AssetError("scikit-image is not installed: .venv/bin/pip install scikit-image") from e
    data = Path(skimage.__file__).parent / "data"
    missing = [n for n in SKIMAGE_PHOTOS if not (data / n).exists()]
    if missing:
        raise AssetError(f"scikit-image's wheel lacks {missing} in {data}: reinstall scikit-image")
    return data


@dataclass(frozen=True)
class Photo:
    name: str  # group id: "<source>-<stem>"
    path: str


def all_photos() -> list[Photo]:
    nature = mate_nature_dir()
    data = skimage_data_dir()
    mate = [Photo(f"mate-{p.stem}", str(p)) for p in sorted(nature.glob("*.jpg"))]
    skim = [Photo(f"skimage-{n.split('.')[0]}", str(data / n)) for n in SKIMAGE_PHOTOS]
    return mate + skim


def split_photos(photos: list[Photo], seed: int) -> tuple[list[Photo], list[Photo]]:
    """Disjoint (train, test) photos: TRAIN_PHOTO_SHARE of each source, chosen by seed."""
    rng = np.random.default_rng([seed, 7])
    train: list[Photo] = []
    test: list[Photo] = []
    for source in ("mate-", "skimage-"):
        group = [p for p in photos if p.name.startswith(source)]
        order = rng.permutation(len(group))
        k = round(TRAIN_PHOTO_SHARE * len(group))
        train += [group[i] for i in sorted(order[:k])]
        test += [group[i] for i in sorted(order[k:])]
    return train, test


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class Icon:
    slug: str
    title: str
    color: RGB
    svg: str  # the icon's SVG with the brand colour as its fill


def _hex_rgb(value: str) -> RGB:
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def load_icons(slugs: list[str]) -> dict[str, Icon]:
    pkg = simple_icons_dir()
    data = simple_icons_data(pkg)
    out = {}
    for slug in slugs:
        path = pkg / "icons" / f"{slug}.svg"
        if slug not in data or not path.exists():
            raise AssetError(f"simple-icons {SIMPLE_ICONS_VERSION} has no icon {slug!r}")
        out[slug] = Icon(
            slug, str(data[slug]["title"]), _hex_rgb(str(data[slug]["hex"])), path.read_text()
        )
    return out


def _luminance(c: RGB) -> float:
    """WCAG relative luminance (sRGB linearised)."""
    lin = [
        v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (x / 255 for x in c)
    ]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: RGB, b: RGB) -> float:
    la, lb = _luminance(a) + 0.05, _luminance(b) + 0.05
    return max(la, lb) / min(la, lb)


_TIGHT: dict[str, tuple[float, float, float, float]] = {}


def _render_svg(svg: str, size: int) -> FloatArray:
    """Alpha (0..1) of the 24x24 icon rendered at ``size`` x ``size`` pixels."""
    import cairosvg  # type: ignore[import-untyped]

    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=size, output_height=size)
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    return np.asarray(img, dtype=np.float32)[:, :, 3] / 255.0


def icon_alpha(icon: Icon, width_px: float) -> FloatArray:
    """The icon's alpha cropped to its own extent, ``width_px`` wide (aspect kept)."""
    if icon.slug not in _TIGHT:
        a = _render_svg(icon.svg, 480)
        ys, xs = np.nonzero(a > 0.02)
        _TIGHT[icon.slug] = (
            xs.min() / 480,
            ys.min() / 480,
            (xs.max() + 1) / 480,
            (ys.max() + 1) / 480,
        )
    x0, y0, x1, y1 = _TIGHT[icon.slug]
    canvas = max(8, round(width_px / (x1 - x0)))
    a = _render_svg(icon.svg, canvas)
    crop = a[
        max(0, math.floor(y0 * canvas) - 1) : math.ceil(y1 * canvas) + 1,
        max(0, math.floor(x0 * canvas) - 1) : math.ceil(x1 * canvas) + 1,
    ]
    return np.ascontiguousarray(crop)


def _icon_aspect(icon: Icon) -> float:
    if icon.slug not in _TIGHT:
        icon_alpha(icon, 48)
    x0, y0, x1, y1 = _TIGHT[icon.slug]
    return (y1 - y0) / (x1 - x0)


@dataclass
class Layer:
    """A logo instance before placement: colour, total alpha, and the icon's own alpha."""

    rgb: FloatArray  # h x w x 3, 0..255, defined everywhere (no dark fringes when warped)
    alpha: FloatArray  # h x w, what is drawn (plate included)
    icon: FloatArray  # h x w, the icon only: the box comes from this


def _hull(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain)."""
    pts = sorted(set(points))
    if len(pts) < 3:
        return pts

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return lower[:-1] + upper[:-1]


def counters(a: FloatArray, method: str) -> FloatArray:
    """The mask (0/1) of the icon's counters: enclosed holes, or its convex hull minus ink."""
    ink = a >= 0.5
    h, w = ink.shape
    if method == "holes":  # what a flood fill from the border does not reach
        img = Image.new("L", (w + 2, h + 2), 0)
        img.paste(Image.fromarray((ink * 255).astype(np.uint8)), (1, 1))
        ImageDraw.floodfill(img, (0, 0), 128)
        filled = np.asarray(img)[1:-1, 1:-1] != 128
    else:  # the hull of each row's extreme ink pixels (corners included)
        pts: list[tuple[float, float]] = []
        for y in np.nonzero(ink.any(axis=1))[0]:
            xs = np.nonzero(ink[y])[0]
            for x in (float(xs[0]), float(xs[-1]) + 1):
                pts += [(x, float(y)), (x, float(y) + 1)]
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).polygon(_hull(pts), fill=255)
        filled = (np.asarray(img) > 127) | ink
    out: FloatArray = np.logical_and(filled, ~ink).astype(np.float32)
    return out


def make_layer(icon: Icon, width_px: float, rng: np.random.Generator) -> Layer:
    a = icon_alpha(icon, width_px)
    h, w = a.shape
    ink_rgb = icon.color
    fill: tuple[FloatArray, RGB] | None = None
    if icon.slug in TWO_TONE and rng.random() < TWO_TONE_PROBABILITY:
        method, fill_rgb, ink_override = TWO_TONE[icon.slug]
        ink_rgb = ink_override or icon.color
        fill = counters(a, method), fill_rgb
    if rng.random() >= PLATE_PROBABILITY:
        if fill is None:
            rgb = np.broadcast_to(np.array(ink_rgb, np.float32), (h, w, 3)).copy()
            return Layer(rgb, a.copy(), a)
        holes, fill_rgb = fill
        a3 = a[:, :, None]
        rgb = np.array(fill_rgb, np.float32) * (1 - a3) + np.array(ink_rgb, np.float32) * a3
        total = np.maximum(a, holes)
        return Layer(rgb.astype(np.float32), total, total.copy())
    kind = rng.choice(["white", "dark", "brand"], p=[0.45, 0.3, 0.25])
    if kind == "white":
        plate: RGB = tuple(int(v) for v in rng.integers(228, 256, 3))  # type: ignore[assignment]
    elif kind == "dark":
        plate = tuple(int(v) for v in rng.integers(14, 45, 3))  # type: ignore[assignment]
    else:
        plate = icon.color
    ink = ink_rgb
    if _contrast(ink, plate) < 2.2:
        ink = (255, 255, 255) if _luminance(plate) < 0.5 else (24, 24, 24)
        fill = None  # recoloured: a one-colour print on the plate
    pad = rng.uniform(0.12, 0.45) * max(h, w)
    pad_x = round(pad * rng.uniform(0.8, 1.6))
    pad_y = round(pad)
    ph, pw = h + 2 * pad_y, w + 2 * pad_x
    ss = 3  # supersampled plate for smooth corners
    big = Image.new("L", (pw * ss, ph * ss), 0)
    radius = int(rng.choice([0.0, rng.uniform(0.08, 0.3)]) * min(pw, ph) * ss)
    ImageDraw.Draw(big).rounded_rectangle((0, 0, pw * ss - 1, ph * ss - 1), radius, fill=255)
    plate_a = np.asarray(big.resize((pw, ph), Image.Resampling.BOX), dtype=np.float32) / 255
    icon_a = np.zeros((ph, pw), dtype=np.float32)
    icon_a[pad_y : pad_y + h, pad_x : pad_x + w] = a
    ia = icon_a[:, :, None]
    base = np.broadcast_to(np.array(plate, np.float32), (ph, pw, 3))
    box_a = icon_a
    if fill is not None:  # counters in the fill colour, under the ink
        hm = np.zeros_like(icon_a)
        hm[pad_y : pad_y + h, pad_x : pad_x + w] = fill[0]
        base = base * (1 - hm[:, :, None]) + np.array(fill[1], np.float32) * hm[:, :, None]
        box_a = np.maximum(icon_a, hm)
    rgb = base * (1 - ia) + np.array(ink, np.float32) * ia
    return Layer(rgb.astype(np.float32), np.maximum(plate_a, icon_a), box_a)


def _homography(src: np.ndarray[Any, Any], dst: np.ndarray[Any, Any]) -> list[float]:
    """Coefficients (a..h) mapping ``dst`` points to ``src`` points (PIL's PERSPECTIVE)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return [float(c) for c in np.linalg.solve(np.array(rows), np.array(rhs))]


def warp_layer(layer: Layer, rng: np.random.Generator) -> Layer:
    """Small rotation and a mild perspective warp, then (sometimes) blur and shading."""
    b = 3  # transparent border; colour extended so interpolation adds no dark fringe
    rgb = np.pad(layer.rgb, ((b, b), (b, b), (0, 0)), mode="edge")
    alpha = np.pad(layer.alpha, b)
    icon = np.pad(layer.icon, b)
    h, w = alpha.shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    size = max(w, h)
    theta = math.radians(float(np.clip(rng.normal(0, 6), -15, 15)))
    c, s = math.cos(theta), math.sin(theta)
    centred = src - [w / 2, h / 2]
    dst = centred @ np.array([[c, s], [-s, c]])
    dst += rng.uniform(-0.07, 0.07, (4, 2)) * size  # mild perspective
    dst -= dst.min(axis=0)
    ow, oh = (math.ceil(v) + 1 for v in dst.max(axis=0))
    coeffs = _homography(src, dst)

    def tf(arr: FloatArray, scale: float) -> FloatArray:
        img = Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8))
        out = img.transform((ow, oh), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
        if blur > 0:
            out = out.filter(ImageFilter.GaussianBlur(blur))
        return np.asarray(out, dtype=np.float32) / scale

    blur = float(rng.uniform(0.4, 1.6)) if rng.random() < 0.35 else 0.0
    out_rgb = tf(rgb, 1.0)
    out_alpha = tf(alpha, 255.0)
    out_icon = tf(icon, 255.0)
    # lighting on the logo: overall brightness and a linear gradient across it
    gain = rng.uniform(0.6, 1.15)
    slope = rng.uniform(-0.35, 0.35)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:oh, 0:ow].astype(np.float32)
    ramp = ((xx / ow - 0.5) * math.cos(angle) + (yy / oh - 0.5) * math.sin(angle)) * slope
    shade = np.clip(gain * (1 + ramp), 0.3, 1.4)[:, :, None]
    return Layer(np.clip(out_rgb * shade, 0, 255).astype(np.float32), out_alpha, out_icon)


@dataclass(frozen=True)
class FrameJob:
    out_dir: str
    index: int
    photo: Photo
    seed: int
    logos: tuple[tuple[str, bool], ...]  # (slug, labelled)
    negative: bool
    uri_prefix: str


_PHOTOS: dict[str, Image.Image] = {}
_ICONS: dict[str, Icon] = {}


def _photo(p: Photo) -> Image.Image:
    if p.path not in _PHOTOS:
        img = Image.open(p.path).convert("RGB")
        if img.height > 1100:  # crops are >= 63 % of it: still >= 720 px high
            img = img.resize((round(img.width * 1100 / img.height), 1100), Image.Resampling.LANCZOS)
        _PHOTOS[p.path] = img
    return _PHOTOS[p.path]


def background(p: Photo, rng: np.random.Generator) -> UInt8Array:
    """A random 16:9 crop (40-100 % of the largest), maybe mirrored, resized to 1280x720."""
    img = _photo(p)
    pw, ph = img.size
    cw = min(pw, ph * WIDTH / HEIGHT) * rng.uniform(0.4, 1.0) ** 0.5
    ch = cw * HEIGHT / WIDTH
    x = rng.uniform(0, pw - cw)
    y = rng.uniform(0, ph - ch)
    crop = img.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR, box=(x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.array(crop, dtype=np.uint8)


def _place(
    shape: tuple[int, int], taken: list[tuple[int, int, int, int]], rng: np.random.Generator
) -> tuple[int, int] | None:
    h, w = shape
    if w > WIDTH - 8 or h > HEIGHT - 8:
        return None
    for _ in range(60):
        x = int(rng.integers(4, WIDTH - w - 3))
        y = int(rng.integers(4, HEIGHT - h - 3))
        m = 6
        if all(x + w + m <= tx or tx + tw + m <= x or y + h + m <= ty or ty + th + m <= y
               for tx, ty, tw, th in taken):  # fmt: skip
            return x, y
    return None


def occluder(
    frame_bg: UInt8Array,
    region: tuple[int, int, int, int],
    icon: FloatArray,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, tuple[int, int]]:
    """An occluder over one side of the icon: (rgb, alpha, (x, y)) hiding <= MAX_OCCLUDED."""
    x, y, w, h = region
    ys, xs = np.nonzero(icon > ALPHA_THRESHOLD)
    ix0, ix1, iy0, iy1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    side = rng.choice(["left", "right", "top", "bottom"])
    horizontal = side in ("left", "right")
    extent = (ix1 - ix0) if horizontal else (iy1 - iy0)
    depth = extent * rng.uniform(0.12, 0.4)
    total = float(icon.sum())
    for _ in range(12):
        d = max(1, round(depth))
        mask = np.zeros_like(icon)
        if side == "left":
            mask[:, : ix0 + d] = 1
        elif side == "right":
            mask[:, ix1 - d :] = 1
        elif side == "top":
            mask[: iy0 + d, :] = 1
        else:
            mask[iy1 - d :, :] = 1
        if float((icon * mask).sum()) <= MAX_OCCLUDED * total:
            break
        depth *= 0.75
    # limit it across the other axis too sometimes (a post, a head, a hand...)
    if rng.random() < 0.5:
        if horizontal:
            a = int(rng.integers(0, max(1, (iy1 - iy0) // 2)))
            mask[: iy0 + a, :] = 0
        else:
            a = int(rng.integers(0, max(1, (ix1 - ix0) // 2)))
            mask[:, : ix0 + a] = 0
    soft = Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    alpha = (np.asarray(soft, dtype=np.float32) / 255).astype(np.float32)
    if rng.random() < 0.6:  # a piece of the photo from elsewhere (a foreground object)
        sx = int(rng.integers(0, WIDTH - w + 1))
        sy = int(rng.integers(0, HEIGHT - h + 1))
        rgb = frame_bg[sy : sy + h, sx : sx + w].astype(np.float32)
    else:  # a solid, shaded bar
        base = rng.uniform(15, 230, 3).astype(np.float32)
        rgb = np.broadcast_to(base, (h, w, 3)).astype(np.float32) * rng.uniform(0.8, 1.1)
    return rgb.astype(np.float32), alpha, (x, y)


def _box(label: str, vis: FloatArray, x: int, y: int) -> Box | None:
    ys, xs = np.nonzero(vis >= ALPHA_THRESHOLD)
    if xs.size == 0:
        return None
    return Box(label, x + int(xs.min()), y + int(ys.min()),
               int(xs.max() - xs.min()) + 1, int(ys.max() - ys.min()) + 1)  # fmt: skip


def render_frame(job: FrameJob) -> dict[str, Any]:
    if not _ICONS:
        _ICONS.update(load_icons(list(TARGETS) + list(DISTRACTORS)))
    rng = np.random.default_rng([job.seed, job.index])
    bg = background(job.photo, rng)
    frame = bg.copy()
    taken: list[tuple[int, int, int, int]] = []
    placed: list[tuple[str, bool, int, int, FloatArray]] = []  # slug, labelled, x, y, vis
    for slug, labelled in job.logos:
        icon = _ICONS[slug]
        frac = math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE)))
        width_px = frac * WIDTH
        width_px = min(width_px, 0.5 * HEIGHT / _icon_aspect(icon))  # tall icons: cap height
        for _ in range(6):
            layer = warp_layer(make_layer(icon, width_px, rng), rng)
            pos = _place(layer.alpha.shape, taken, rng)
            if pos is not None:
                break
            width_px *= 0.75
        else:
            continue
        x, y = pos
        h, w = layer.alpha.shape
        a = layer.alpha[:, :, None]
        under = frame[y : y + h, x : x + w].astype(np.float32)
        frame[y : y + h, x : x + w] = np.clip(under * (1 - a) + layer.rgb * a + 0.5, 0, 255)
        taken.append((x, y, w, h))
        placed.append((slug, labelled, x, y, layer.icon.copy()))
        if rng.random() < 0.3:
            orgb, oa, (ox, oy) = occluder(bg, (x, y, w, h), layer.icon, rng)
            oa3 = oa[:, :, None]
            under = frame[oy : oy + h, ox : ox + w].astype(np.float32)
            frame[oy : oy + h, ox : ox + w] = np.clip(under * (1 - oa3) + orgb * oa3 + 0.5, 0, 255)
            placed[-1][4][...] *= 1 - oa  # logos never overlap: only this one is hidden
    # global effects: exposure, contrast, colour cast, gamma (one LUT), blur, noise; no
    # pixel moves, so boxes hold
    img = Image.fromarray(frame)
    levels = np.arange(256, dtype=np.float64) / 255
    gamma, contrast, bias = rng.uniform(0.8, 1.25), rng.uniform(0.75, 1.2), rng.uniform(-0.08, 0.08)
    lut: list[int] = []
    for cast in rng.uniform(0.93, 1.07, 3):
        curve = ((levels**gamma - 0.5) * contrast + 0.5 + bias) * cast
        lut += [int(v) for v in np.clip(np.round(curve * 255), 0, 255)]
    img = img.point(lut)
    if rng.random() < 0.25:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.4)))
    if rng.random() < 0.6:
        arr = np.asarray(img, dtype=np.float32)
        arr += rng.standard_normal(arr.shape, dtype=np.float32) * np.float32(rng.uniform(2, 9))
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    name = f"{job.index:06d}.jpg"
    path = Path(job.out_dir) / name
    img.save(path, "JPEG", quality=int(rng.integers(40, 96)))
    boxes: list[Box] = []
    distractors: list[Box] = []
    for slug, labelled, x, y, vis in placed:
        box = _box(slug, vis, x, y)
        if box is not None:
            (boxes if labelled else distractors).append(box)
    sample = Sample(
        index=job.index, name=name, path=path, source_ref=job.uri_prefix + name,
        group=job.photo.name, width=WIDTH, height=HEIGHT, boxes=tuple(boxes),
        negative=not boxes,
    )  # fmt: skip
    return {**sample.to_dict(), "distractors": [b.to_dict() for b in distractors]}


def _render_chunk(jobs: list[FrameJob]) -> list[dict[str, Any]]:
    return [render_frame(j) for j in jobs]


# --------------------------------------------------------------------------- planning


def _distractor(rng: np.random.Generator) -> str:
    looks = [d for _, d in LOOKALIKES]
    if rng.random() < LOOKALIKE_SHARE:
        return str(rng.choice(looks))
    return str(rng.choice([d for d in DISTRACTORS if d not in looks]))


def plan(
    kind: str, n: int, photos: list[Photo], seed: int, out_dir: Path, *,
    negative_fraction: float, boxes_per_brand: int | None,
) -> list[FrameJob]:  # fmt: skip
    """The frames of a set: photo, logos (targets labelled) and negative flag of each."""
    rng = np.random.default_rng([seed, 1 if kind == "train" else 2])
    n_neg = round(negative_fraction * n)
    n_pos = n - n_neg
    if boxes_per_brand is not None:  # exactly that many labelled boxes per brand
        pool = [t for t in TARGETS for _ in range(boxes_per_brand)]
        if len(pool) < n_pos:
            n_pos = len(pool)
        if len(pool) > 2 * n_pos:
            raise ValueError(f"{len(pool)} target boxes do not fit in {n_pos} frames (<= 2 each)")
    else:  # balanced over brands; about 30 % of the frames get a second target
        total = n_pos + round(0.3 * n_pos)
        cycle = [str(t) for _ in range(total // len(TARGETS) + 1) for t in rng.permutation(TARGETS)]
        pool = cycle[:total]
    order = [str(t) for t in rng.permutation(pool)]
    targets: list[list[str]] = [[t] for t in order[:n_pos]]
    for t in order[n_pos:]:  # second targets, never twice the same brand in a frame
        free = [f for f in targets if len(f) == 1 and f[0] != t]
        free[int(rng.integers(len(free)))].append(t)
    frames: list[list[tuple[str, bool]]] = []
    for ts in targets:
        k = (
            int(rng.choice([0, 1, 2], p=[0.35, 0.45, 0.2]))
            if len(ts) == 1
            else int(rng.random() < 0.4)
        )
        frames.append([(t, True) for t in ts] + [(_distractor(rng), False) for _ in range(k)])
    for _ in range(n - n_pos):
        k = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.35, 0.25, 0.15]))
        frames.append([(_distractor(rng), False) for _ in range(k)])
    perm = rng.permutation(len(frames))
    photo_of = [photos[i % len(photos)] for i in rng.permutation(n)]
    prefix = f"s3://brandlens-reallogos/{out_dir.name}/"
    jobs = []
    for i, f in enumerate(perm):
        logos = frames[int(f)]
        order_l = [logos[int(j)] for j in rng.permutation(len(logos))]
        jobs.append(
            FrameJob(str(out_dir), i, photo_of[i], seed * 1000 + (1 if kind == "train" else 2),
                     tuple(order_l), not any(lab for _, lab in logos), prefix)
        )  # fmt: skip
    return jobs


def _write_set(
    out: Path, jobs: list[FrameJob], info: dict[str, Any], workers: int
) -> list[dict[str, Any]]:
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    jobs = [FrameJob(str(tmp), j.index, j.photo, j.seed, j.logos, j.negative, j.uri_prefix)
            for j in jobs]  # fmt: skip
    chunks = [jobs[i : i + 10] for i in range(0, len(jobs), 10)]
    if workers <= 1:
        results = [_render_chunk(c) for c in chunks]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_render_chunk, chunks))
    samples = [s for chunk in results for s in chunk]
    brands = [Brand(name=t) for t in TARGETS]
    with (tmp / "samples.jsonl").open("w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(s, separators=(",", ":")) + "\n")
    with (tmp / "manifest.jsonl").open("w", encoding="utf-8") as f:
        for s in samples:
            line = manifest_line(
                _sample(s, out), brands, job_name="labeling-job/brandlens-reallogos"
            )
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    (tmp / "brands.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return samples


def _sample(d: dict[str, Any], root: Path) -> Sample:
    return Sample(
        index=d["index"], name=d["file"], path=root / d["file"], source_ref=d["source-ref"],
        group=d["group"], width=d["width"], height=d["height"], negative=d["negative"],
        boxes=tuple(Box(**b) for b in d["boxes"]),
    )  # fmt: skip


def brands_info(train: list[Photo], test: list[Photo]) -> dict[str, Any]:
    icons = load_icons(list(TARGETS) + list(DISTRACTORS))

    def entry(s: str) -> dict[str, str]:
        return {
            "slug": s,
            "title": icons[s].title,
            "hex": "".join(f"{v:02X}" for v in icons[s].color),
        }

    return {
        "source": f"npm simple-icons@{SIMPLE_ICONS_VERSION} (CC0-1.0; logos may be trademarks)",
        "labels": list(TARGETS),
        "targets": [entry(s) for s in TARGETS],
        "distractors": [entry(s) for s in DISTRACTORS],
        "lookalikes": [list(p) for p in LOOKALIKES],
        "box": "tight box of the icon's visible alpha >= 0.25 (never the plate)",
        "photos": {"train": [p.name for p in train], "test": [p.name for p in test]},
        "generator_version": GENERATOR_VERSION,
    }


def real_logo_sets(
    seed: int = 0,
    train_frames: int = 180,
    test_frames: int = 400,
    *,
    train_boxes_per_brand: int = 50,
    workers: int = 2,
    cache: Path = CACHE,
) -> tuple[Path, Path, list[str]]:
    """(train_dir, test_dir, labels): fetch assets if missing, generate sets if not cached.

    Raises :class:`AssetError` (saying how to get it) when a source cannot be fetched.
    """
    if not 0 < train_boxes_per_brand <= 50:
        raise ValueError("train_boxes_per_brand must be within 1..50")
    v = f"s{seed}-g{GENERATOR_VERSION}"
    train_dir = cache / f"train-{v}-f{train_frames}-b{train_boxes_per_brand}"
    test_dir = cache / f"test-{v}-f{test_frames}"
    done = [d for d in (train_dir, test_dir) if (d / "brands.json").exists()]
    if len(done) < 2:
        photos = all_photos()
        train, test = split_photos(photos, seed)
        info = brands_info(train, test)
        specs = (
            (train_dir, "train", train_frames, train, 0.15, train_boxes_per_brand),
            (test_dir, "test", test_frames, test, 0.2, None),
        )
        for out, kind, n, ph, neg, per in specs:
            if out in done:
                continue
            t = time.monotonic()
            jobs = plan(kind, n, ph, seed, out, negative_fraction=neg, boxes_per_brand=per)
            _write_set(out, jobs, info, workers)
            print(f"reallogos: generated {out.name} ({n} frames) in {time.monotonic() - t:.1f}s",
                  flush=True)  # fmt: skip
    return train_dir, test_dir, list(TARGETS)


# --------------------------------------------------------------------------- CLI


def load_samples(d: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (d / "samples.jsonl").read_text().splitlines()]


def size_buckets(samples: list[dict[str, Any]]) -> dict[str, int]:
    c: Counter[str] = Counter()
    for s in samples:
        for b in s["boxes"]:
            f = b["width"] / s["width"]
            c["<5%" if f < 0.05 else "5-10%" if f <= 0.10 else ">10%"] += 1
    return {k: c[k] for k in ("<5%", "5-10%", ">10%")}


def contact_sheet(train_dir: Path, test_dir: Path, out: Path, n: int = 6) -> None:
    """A grid of ``n`` train and ``n`` test frames: labelled boxes green, distractors orange."""
    cell_w, cell_h = 640, 360
    tiles = []
    for d in (train_dir, test_dir):
        samples = load_samples(d)
        picks = [s for s in samples if s["boxes"]][: n - 1] + [s for s in samples if s["negative"]][
            :1
        ]
        for s in picks:
            img = Image.open(d / s["file"]).convert("RGB").resize((cell_w, cell_h))
            k = cell_w / s["width"]
            draw = ImageDraw.Draw(img)
            for b, color in [(b, (0, 255, 0)) for b in s["boxes"]] + [
                (b, (255, 140, 0)) for b in s.get("distractors", [])
            ]:
                x0, y0 = b["left"] * k, b["top"] * k
                x1, y1 = (b["left"] + b["width"]) * k, (b["top"] + b["height"]) * k
                draw.rectangle((x0, y0, x1, y1), outline=color, width=1)
                draw.text((x0, max(0, y0 - 11)), b["label"], fill=color)
            draw.text(
                (4, 4), f"{d.name.split('-')[0]} {s['file']} {s['group']}", fill=(255, 255, 0)
            )
            tiles.append(img)
    cols = 3
    rows = math.ceil(len(tiles) / cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (0, 0, 0))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * cell_w, (i // cols) * cell_h))
    sheet.save(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-frames", type=int, default=180)
    ap.add_argument("--test-frames", type=int, default=400)
    ap.add_argument("--train-boxes-per-brand", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    t = time.monotonic()
    try:
        train_dir, test_dir, labels = real_logo_sets(
            args.seed, args.train_frames, args.test_frames,
            train_boxes_per_brand=args.train_boxes_per_brand, workers=args.workers,
        )  # fmt: skip
    except AssetError as e:
        print(f"reallogos: {e}", file=sys.stderr)
        return 2
    print(f"sets ready in {time.monotonic() - t:.1f}s: {train_dir}  {test_dir}")
    info = json.loads((train_dir / "brands.json").read_text())
    print(f"labels: {labels}")
    print(f"look-alikes: {', '.join(f'{a}~{b}' for a, b in info['lookalikes'])}")
    print(f"distractors: {len(info['distractors'])}")
    for name, d in (("train", train_dir), ("test", test_dir)):
        samples = load_samples(d)
        per = Counter(b["label"] for s in samples for b in s["boxes"])
        neg = sum(s["negative"] for s in samples)
        dis = sum(len(s["distractors"]) for s in samples)
        looks = {b for _, b in LOOKALIKES}
        dl = sum(1 for s in samples for b in s["distractors"] if b["label"] in looks)
        photos = info["photos"][name]
        print(f"{name}: {len(samples)} frames, {sum(per.values())} boxes, negatives {neg} "
              f"({100 * neg / len(samples):.1f} %), distractor instances {dis} "
              f"({dl} look-alikes), groups {len({s['group'] for s in samples})}")  # fmt: skip
        print(f"  boxes per brand: {dict(sorted(per.items()))}")
        print(f"  box width / frame width: {size_buckets(samples)}")
        print(f"  photos ({len(photos)}): {', '.join(photos)}")
    CACHE.mkdir(parents=True, exist_ok=True)
    contact_sheet(train_dir, test_dir, PREVIEW)
    print(f"contact sheet: {PREVIEW}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
