"""Sample media for the demo: deterministic, the right shape, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from brandlens_cli import samples
from brandlens_cli.samples import SampleError, make_fake_video, make_sample_image


def test_the_sample_image_is_a_deterministic_1280x720_jpeg(tmp_path: Path) -> None:
    first = make_sample_image(tmp_path / "a" / "shelf.jpg")
    second = make_sample_image(tmp_path / "b" / "shelf.jpg")
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with Image.open(first) as image:
        assert image.format == "JPEG"
        assert image.size == (1280, 720)
    assert [p.name for p in first.parent.iterdir()] == ["shelf.jpg"]  # no temporary left


def test_the_fake_video_is_text(tmp_path: Path) -> None:
    path = make_fake_video(tmp_path / "not-a-video.mp4")
    assert path.read_text().startswith("This is a text file")


def test_a_failing_ffmpeg_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\necho 'Unknown encoder libx264' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(samples, "ffmpeg_exe", lambda: str(fake))
    out = tmp_path / "out" / "promo.mp4"
    with pytest.raises(SampleError, match=r"exit code 1.*Unknown encoder libx264"):
        samples.make_sample_video(out)
    assert not out.exists()
    assert list(out.parent.iterdir()) == []


def test_the_video_length_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="positive"):
        samples.make_sample_video(tmp_path / "v.mp4", seconds=0)
