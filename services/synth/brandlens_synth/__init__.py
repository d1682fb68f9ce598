"""brandlens_synth: the project's own synthetic benchmark for brand-logo detection.

Procedural brands (:func:`default_brands`, :func:`render_logo`), scenes with exact boxes
(:func:`render_scene`), grouped JPEG datasets with a Ground Truth manifest
(:func:`generate_dataset`) and H.264 videos with per-frame ground truth
(:func:`generate_video`). Pillow, numpy and the imageio-ffmpeg binary only; everything
is deterministic for a seed.
"""

from .backgrounds import BACKGROUND_KINDS, make_background
from .brands import Brand, default_brands, near_miss, render_logo
from .dataset import Sample, generate_dataset, manifest_line
from .scene import (
    Box,
    Effects,
    Placement,
    Scene,
    SceneConfig,
    SceneSpec,
    compose,
    draw_boxes,
    drift_spec,
    render_scene,
    sample_scene_spec,
)
from .video import (
    Appearance,
    FrameTruth,
    generate_video,
    make_schedule,
    render_video_frames,
)

__all__ = [
    "BACKGROUND_KINDS",
    "Appearance",
    "Box",
    "Brand",
    "Effects",
    "FrameTruth",
    "Placement",
    "Sample",
    "Scene",
    "SceneConfig",
    "SceneSpec",
    "compose",
    "default_brands",
    "draw_boxes",
    "drift_spec",
    "generate_dataset",
    "generate_video",
    "make_background",
    "make_schedule",
    "manifest_line",
    "near_miss",
    "render_logo",
    "render_scene",
    "render_video_frames",
    "sample_scene_spec",
]
