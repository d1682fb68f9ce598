"""Unit tests for brandlens_ingest.sniff: media type detection and cheap structure checks.

All inputs are built here: images with Pillow, real MP4/MOV clips with the imageio-ffmpeg binary,
and hand-built ISO BMFF box sequences for the edge cases.
"""

from __future__ import annotations

import io
import random
import struct
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from brandlens_ingest.sniff import (
    MediaFormat,
    MediaInfo,
    MediaKind,
    MediaRejectedError,
    SniffLimits,
    sniff,
)

# --- helpers -------------------------------------------------------------------------------------


@dataclass
class FakeObject:
    """An in-memory object exposed as a ReadRange that records every read."""

    data: bytes
    calls: list[tuple[int, int]] = field(default_factory=list)

    async def read(self, offset: int, length: int) -> bytes:
        assert offset >= 0
        assert length > 0
        assert offset + length <= len(self.data), "sniff must not read past the object's end"
        self.calls.append((offset, length))
        return self.data[offset : offset + length]

    @property
    def bytes_read(self) -> int:
        return sum(length for _, length in self.calls)


async def sniff_bytes(data: bytes, limits: SniffLimits | None = None) -> MediaInfo:
    obj = FakeObject(data)
    if limits is None:
        return await sniff(obj.read, len(data))
    return await sniff(obj.read, len(data), limits)


async def rejection(data: bytes, limits: SniffLimits | None = None) -> str:
    with pytest.raises(MediaRejectedError) as excinfo:
        await sniff_bytes(data, limits)
    reason = excinfo.value.reason
    assert reason
    assert str(excinfo.value) == reason
    return reason


def image_bytes(fmt: str, width: int, height: int, **save_args: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 60)).save(buf, fmt, **save_args)
    return buf.getvalue()


def box(box_type: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + box_type + payload


def large_box(box_type: bytes, payload: bytes = b"") -> bytes:
    """A box using the 64-bit largesize form (size field == 1)."""
    return struct.pack(">I", 1) + box_type + struct.pack(">Q", 16 + len(payload)) + payload


def full_box(box_type: bytes, version: int, payload: bytes, flags: int = 0) -> bytes:
    return box(box_type, struct.pack(">I", (version << 24) | flags) + payload)


def ftyp(brand: bytes = b"isom") -> bytes:
    return box(b"ftyp", brand + struct.pack(">I", 0x200) + brand + b"iso2mp41")


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    tail = bytes(80)  # rate, volume, reserved, matrix, pre_defined, next_track_ID
    if version == 1:
        return full_box(b"mvhd", 1, struct.pack(">QQIQ", 0, 0, timescale, duration) + tail)
    return full_box(b"mvhd", version, struct.pack(">IIII", 0, 0, timescale, duration) + tail)


def tkhd(width: float, height: float, version: int = 0) -> bytes:
    if version == 1:
        head = struct.pack(">QQIIQ", 0, 0, 1, 0, 0)
    else:
        head = struct.pack(">IIIII", 0, 0, 1, 0, 0)
    middle = bytes(8) + bytes(8) + bytes(36)  # reserved, layer..volume, matrix
    dims = struct.pack(">II", int(width * 65536), int(height * 65536))
    return full_box(b"tkhd", version, head + middle + dims, flags=3)


def hdlr(handler: bytes) -> bytes:
    return full_box(b"hdlr", 0, bytes(4) + handler + bytes(12) + b"handler\x00")


def trak(handler: bytes, width: float = 0, height: float = 0, *, with_tkhd: bool = True) -> bytes:
    mdia = box(b"mdia", full_box(b"mdhd", 0, bytes(20)) + hdlr(handler))
    return box(b"trak", (tkhd(width, height) if with_tkhd else b"") + mdia)


def moov(*children: bytes) -> bytes:
    return box(b"moov", b"".join(children))


def video_moov(
    timescale: int = 1000, duration: int = 2500, width: int = 640, height: int = 360
) -> bytes:
    return moov(
        mvhd(timescale, duration),
        trak(b"soun"),
        trak(b"vide", width, height),
    )


def mdat(n: int = 64) -> bytes:
    return box(b"mdat", bytes(n))


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the top-level boxes of a well-formed file."""
    out = []
    offset = 0
    while offset < len(data):
        size, box_type = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:
            size = len(data) - offset
        out.append((box_type, offset, size))
        offset += size
    return out


def without_box(data: bytes, box_type: bytes) -> bytes:
    return b"".join(
        data[off : off + size] for t, off, size in top_level_boxes(data) if t != box_type
    )


def png_header(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        # A (bogus but irrelevant) IDAT and IEND so the file looks complete.
        + struct.pack(">I", 0)
        + b"IDAT"
        + struct.pack(">I", zlib.crc32(b"IDAT"))
        + struct.pack(">I", 0)
        + b"IEND"
        + struct.pack(">I", zlib.crc32(b"IEND"))
    )


def jpeg_segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_sof(width: int, height: int, marker: int = 0xC0) -> bytes:
    return jpeg_segment(marker, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")


SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
APP0 = jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


# --- ffmpeg clips --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clips:
    mp4: bytes
    mp4_faststart: bytes
    mov: bytes
    audio_only: bytes
    fragmented: bytes
    big_mp4: bytes


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    out_dir = tmp_path_factory.mktemp("clips")
    video = ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1"]

    def make(name: str, *args: str) -> bytes:
        path: Path = out_dir / name
        cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", "-y", *args, str(path)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        return path.read_bytes()

    return Clips(
        mp4=make("clip.mp4", *video),
        mp4_faststart=make("faststart.mp4", *video, "-movflags", "+faststart"),
        mov=make("clip.mov", *video, "-f", "mov"),
        audio_only=make("sine.mp4", "-f", "lavfi", "-i", "sine", "-t", "1", "-c:a", "aac"),
        fragmented=make("frag.mp4", *video, "-movflags", "frag_keyframe+empty_moov"),
        big_mp4=make(
            "big.mp4",
            *["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "4"],
            *["-c:v", "mpeg4", "-q:v", "1"],
        ),
    )


# --- empty / unsupported -------------------------------------------------------------------------


async def test_empty_object_is_rejected_without_reading() -> None:
    obj = FakeObject(b"")
    with pytest.raises(MediaRejectedError) as excinfo:
        await sniff(obj.read, 0)
    assert excinfo.value.reason == "the object is empty (0 bytes)"
    assert obj.calls == []


async def test_negative_size_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="size"):
        await sniff(FakeObject(b"").read, -1)


async def test_text_file_is_rejected_as_text() -> None:
    # e.g. a file someone named "video.mp4" that contains "hello"
    reason = await rejection(b"hello")
    assert reason == "unsupported file type: expected JPEG, PNG, MP4 or MOV, found text"


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (image_bytes("GIF", 10, 10), "GIF image"),
        (b"PK\x03\x04" + bytes(40), "ZIP archive"),
        (image_bytes("BMP", 4, 4), "BMP image"),
        (b"BMW logo, please", "text"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(20), "WebP image"),
        (b"\x1aE\xdf\xa3" + bytes(30), "Matroska/WebM video"),
        (ftyp(b"heic") + mdat(), "HEIF/HEIC image"),
        (ftyp(b"avif") + mdat(), "AVIF image"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", "HTML document"),
        ("Grüße, naïve café ✓\n".encode() * 10, "text"),
        (bytes([0x00, 0x13, 0x9A, 0xFE, 0x01, 0x02, 0x80, 0x00]) * 8, "unknown binary data"),
    ],
)
async def test_unsupported_types_are_described(data: bytes, found: str) -> None:
    reason = await rejection(data)
    assert reason == f"unsupported file type: expected JPEG, PNG, MP4 or MOV, found {found}"


async def test_read_errors_propagate_unchanged() -> None:
    async def failing_read(offset: int, length: int) -> bytes:
        raise OSError("connection reset")

    with pytest.raises(OSError, match="connection reset"):
        await sniff(failing_read, 1000)


async def test_object_shorter_than_declared_size_is_rejected() -> None:
    data = image_bytes("PNG", 10, 10)

    async def read(offset: int, length: int) -> bytes:
        return data[offset : offset + length]

    with pytest.raises(MediaRejectedError, match="shorter than its declared size"):
        await sniff(read, len(data) + 500)


# --- JPEG ----------------------------------------------------------------------------------------


async def test_jpeg_happy_path() -> None:
    data = image_bytes("JPEG", 321, 123)
    obj = FakeObject(data)
    info = await sniff(obj.read, len(data))
    assert info == MediaInfo(
        kind=MediaKind.IMAGE,
        format=MediaFormat.JPEG,
        content_type="image/jpeg",
        width=321,
        height=123,
        duration_seconds=None,
    )
    assert len(obj.calls) == 1


async def test_progressive_jpeg_with_exif() -> None:
    exif = Image.Exif()
    exif[0x010F] = "BrandLens Test Camera"
    data = image_bytes("JPEG", 64, 48, progressive=True, exif=exif.tobytes())
    info = await sniff_bytes(data)
    assert (info.format, info.width, info.height) == (MediaFormat.JPEG, 64, 48)


async def test_jpeg_fill_bytes_and_standalone_markers() -> None:
    data = (
        SOI
        + b"\xff\x01"  # TEM
        + b"\xff\xff\xff"  # fill bytes before the next marker
        + APP0
        + b"\xff\xd0"  # RST0
        + b"\xff\xff"
        + jpeg_sof(800, 600, marker=0xC2)
        + EOI
    )
    info = await sniff_bytes(data)
    assert (info.width, info.height) == (800, 600)


@pytest.mark.parametrize("marker", [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCB, 0xCF])
async def test_all_sof_markers_are_recognised(marker: int) -> None:
    data = SOI + APP0 + jpeg_segment(0xC4, bytes(30)) + jpeg_sof(40, 30, marker) + EOI
    info = await sniff_bytes(data)
    assert (info.width, info.height) == (40, 30)


async def test_jpeg_dht_dac_and_jpg_markers_are_not_frames() -> None:
    # 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) sit inside the SOF range but are not frame headers.
    data = (
        SOI
        + jpeg_segment(0xC4, bytes(10))
        + jpeg_segment(0xC8, bytes(10))
        + jpeg_segment(0xCC, bytes(10))
        + jpeg_sof(17, 19)
        + EOI
    )
    assert (await sniff_bytes(data)).width == 17


async def test_jpeg_sof_beyond_first_read_is_found_with_small_reads() -> None:
    big_app = jpeg_segment(0xE1, bytes(65_000))
    data = SOI + big_app * 8 + jpeg_sof(1024, 768) + bytes(200_000) + EOI
    obj = FakeObject(data)
    info = await sniff(obj.read, len(data))
    assert (info.width, info.height) == (1024, 768)
    assert obj.bytes_read < 300_000  # segments are skipped, not read


async def test_jpeg_without_frame_header_in_scan_window_is_rejected() -> None:
    big_app = jpeg_segment(0xE2, bytes(65_000))
    data = SOI + big_app * 20 + jpeg_sof(100, 100) + EOI  # SOF at ~1.3 MB
    obj = FakeObject(data)
    with pytest.raises(MediaRejectedError) as excinfo:
        await sniff(obj.read, len(data))
    assert excinfo.value.reason == "not a valid JPEG: no frame header found"
    assert obj.bytes_read <= 1024 * 1024 + 64


async def test_jpeg_of_only_fill_bytes_is_bounded() -> None:
    data = b"\xff\xd8\xff" + b"\xff" * 3_000_000
    obj = FakeObject(data)
    with pytest.raises(MediaRejectedError) as excinfo:
        await sniff(obj.read, len(data))
    assert excinfo.value.reason == "not a valid JPEG: no frame header found"
    assert obj.bytes_read <= 1024 * 1024 + 64


async def test_jpeg_scan_before_frame_header_is_rejected() -> None:
    data = SOI + APP0 + jpeg_segment(0xDA, bytes(10)) + bytes(100) + EOI
    assert await rejection(data) == "not a valid JPEG: no frame header found"


async def test_jpeg_with_only_soi_is_rejected() -> None:
    reason = await rejection(b"\xff\xd8\xff")
    assert "no frame header found" in reason


async def test_truncated_jpeg_segment_is_rejected() -> None:
    data = SOI + APP0 + b"\xff\xe1" + struct.pack(">H", 1000) + bytes(100)
    reason = await rejection(data)
    assert reason.startswith("the JPEG is truncated: segment 0xFFE1 at byte 20 declares 1000 bytes")
    assert "was the upload interrupted?" in reason


async def test_truncated_real_jpeg_before_frame_header() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000
    data = image_bytes("JPEG", 50, 50, exif=exif.tobytes())
    reason = await rejection(data[:3000])
    assert "truncated" in reason


async def test_jpeg_segment_length_below_two_is_rejected() -> None:
    data = SOI + b"\xff\xe0\x00\x01" + bytes(50)
    reason = await rejection(data)
    assert reason == "not a valid JPEG: segment 0xFFE0 at byte 2 has an invalid length of 1"


async def test_jpeg_short_frame_header_is_rejected() -> None:
    data = SOI + jpeg_segment(0xC0, b"\x08\x00") + EOI
    reason = await rejection(data)
    assert "frame header" in reason
    assert "too short" in reason


async def test_jpeg_zero_height_is_rejected() -> None:
    reason = await rejection(SOI + jpeg_sof(100, 0) + EOI)
    assert reason == "not a valid JPEG: the frame header declares 100x0 pixels"


async def test_jpeg_bomb_is_rejected() -> None:
    data = SOI + APP0 + jpeg_sof(60000, 60000) + EOI
    reason = await rejection(data)
    assert reason == "image is 60000x60000 pixels, above the limit of 100000000 pixels"


async def test_jpeg_long_side_is_rejected() -> None:
    reason = await rejection(SOI + jpeg_sof(30000, 10) + EOI)
    assert reason == (
        "image is 30000x10 pixels; its longest side is above the limit of 20000 pixels"
    )


# --- PNG -----------------------------------------------------------------------------------------


async def test_png_happy_path() -> None:
    data = image_bytes("PNG", 257, 99)
    obj = FakeObject(data)
    info = await sniff(obj.read, len(data))
    assert info == MediaInfo(
        kind=MediaKind.IMAGE,
        format=MediaFormat.PNG,
        content_type="image/png",
        width=257,
        height=99,
        duration_seconds=None,
    )
    assert len(obj.calls) == 1


async def test_png_decompression_bomb_is_rejected() -> None:
    reason = await rejection(png_header(50000, 50000))
    assert reason == "image is 50000x50000 pixels, above the limit of 100000000 pixels"


async def test_png_limits_are_configurable() -> None:
    data = png_header(2000, 1000)
    assert (await sniff_bytes(data)).width == 2000
    reason = await rejection(data, SniffLimits(max_image_pixels=1_000_000))
    assert reason == "image is 2000x1000 pixels, above the limit of 1000000 pixels"
    reason = await rejection(data, SniffLimits(max_image_side_px=1500))
    assert "above the limit of 1500 pixels" in reason


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (0, 100, "not a valid PNG: the header declares 0x100 pixels"),
        (100, 0, "not a valid PNG: the header declares 100x0 pixels"),
        (2**32 - 1, 1, "beyond what PNG allows"),
    ],
)
async def test_png_absurd_dimensions_are_rejected(width: int, height: int, expected: str) -> None:
    assert expected in await rejection(png_header(width, height))


async def test_png_invalid_bit_depth_is_rejected() -> None:
    reason = await rejection(png_header(10, 10, bit_depth=3, color_type=2))
    assert "bit depth 3" in reason


async def test_png_corrupt_ihdr_checksum_is_rejected() -> None:
    data = bytearray(png_header(10, 10))
    data[30] ^= 0xFF
    assert "checksum" in await rejection(bytes(data))


async def test_png_first_chunk_must_be_ihdr() -> None:
    data = bytearray(png_header(10, 10))
    data[12:16] = b"tEXt"
    assert "IHDR" in await rejection(bytes(data))


async def test_png_truncated_header_is_rejected() -> None:
    reason = await rejection(png_header(10, 10)[:20])
    assert reason.startswith("the PNG is truncated")


# --- MP4 / MOV from ffmpeg -----------------------------------------------------------------------


async def test_mp4_happy_path(clips: Clips) -> None:
    obj = FakeObject(clips.mp4)
    info = await sniff(obj.read, len(clips.mp4))
    assert info.kind is MediaKind.VIDEO
    assert info.format is MediaFormat.MP4
    assert info.content_type == "video/mp4"
    assert (info.width, info.height) == (160, 120)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.15)
    assert len(obj.calls) <= 3


async def test_faststart_mp4_is_sniffed_in_one_read(clips: Clips) -> None:
    obj = FakeObject(clips.mp4_faststart)
    info = await sniff(obj.read, len(clips.mp4_faststart))
    assert (info.format, info.width, info.height) == (MediaFormat.MP4, 160, 120)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.15)
    assert len(obj.calls) == 1


async def test_mov_happy_path(clips: Clips) -> None:
    info = await sniff_bytes(clips.mov)
    assert info.kind is MediaKind.VIDEO
    assert info.format is MediaFormat.MOV
    assert info.content_type == "video/quicktime"
    assert (info.width, info.height) == (160, 120)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.15)


async def test_mp4_cut_in_half_is_truncated(clips: Clips) -> None:
    data = clips.mp4[: len(clips.mp4) // 2]
    reason = await rejection(data)
    assert reason.startswith("the video is truncated: box 'mdat' at byte ")
    assert reason.endswith("(was the upload interrupted?)")


@pytest.mark.parametrize("cut", [1, 3, 7])
async def test_mp4_missing_last_bytes_is_truncated(clips: Clips, cut: int) -> None:
    reason = await rejection(clips.mp4[:-cut])
    assert reason.startswith("the video is truncated: box 'moov'")
    moov_box = next(b for b in top_level_boxes(clips.mp4) if b[0] == b"moov")
    assert f"declares {moov_box[2]} bytes but only {moov_box[2] - cut} remain" in reason


async def test_faststart_mp4_cut_in_half_is_truncated(clips: Clips) -> None:
    data = clips.mp4_faststart[: len(clips.mp4_faststart) // 2]
    assert "truncated" in await rejection(data)


async def test_mp4_without_moov_is_rejected(clips: Clips) -> None:
    reason = await rejection(without_box(clips.mp4, b"moov"))
    assert reason == "the video has no 'moov' index; it is truncated or not finished writing"


async def test_mp4_without_mdat_is_rejected(clips: Clips) -> None:
    reason = await rejection(without_box(clips.mp4, b"mdat"))
    assert "no media data" in reason


async def test_audio_only_mp4_is_rejected(clips: Clips) -> None:
    assert await rejection(clips.audio_only) == "the file has no video track (audio only?)"


async def test_fragmented_mp4_without_duration_is_accepted_with_unknown_duration(
    clips: Clips,
) -> None:
    # ffmpeg's empty_moov fragmented output has mvhd duration 0 and no mehd:
    # browser recordings look like this; the framer measures the length.
    info = await sniff_bytes(clips.fragmented)
    assert info.kind is MediaKind.VIDEO
    assert info.duration_seconds is None


async def test_large_mp4_reads_a_small_fraction(clips: Clips) -> None:
    data = clips.big_mp4
    assert len(data) > 1_000_000
    obj = FakeObject(data)
    info = await sniff(obj.read, len(data))
    assert (info.width, info.height) == (640, 360)
    assert info.duration_seconds == pytest.approx(4.0, abs=0.15)
    assert obj.bytes_read < len(data) / 10
    assert len(obj.calls) <= 3


async def test_huge_mdat_reads_a_tiny_fraction(clips: Clips) -> None:
    real_moov = next(
        clips.mp4[off : off + size] for t, off, size in top_level_boxes(clips.mp4) if t == b"moov"
    )
    data = ftyp() + large_box(b"mdat", bytes(20_000_000)) + real_moov
    obj = FakeObject(data)
    info = await sniff(obj.read, len(data))
    assert (info.width, info.height) == (160, 120)
    assert obj.bytes_read < 100_000
    assert len(obj.calls) <= 3


# --- hand-built ISO BMFF edge cases --------------------------------------------------------------


async def test_hand_built_mp4() -> None:
    info = await sniff_bytes(ftyp() + mdat() + video_moov())
    assert info == MediaInfo(
        kind=MediaKind.VIDEO,
        format=MediaFormat.MP4,
        content_type="video/mp4",
        width=640,
        height=360,
        duration_seconds=2.5,
    )


@pytest.mark.parametrize(
    ("brand", "fmt"),
    [
        (b"qt  ", MediaFormat.MOV),
        (b"isom", MediaFormat.MP4),
        (b"mp42", MediaFormat.MP4),
        (b"M4V ", MediaFormat.MP4),
        (b"dash", MediaFormat.MP4),
        (b"avc1", MediaFormat.MP4),
    ],
)
async def test_major_brand_decides_the_format(brand: bytes, fmt: MediaFormat) -> None:
    info = await sniff_bytes(ftyp(brand) + video_moov() + mdat())
    assert info.format is fmt


@pytest.mark.parametrize("first", [b"moov", b"mdat", b"free", b"wide"])
async def test_old_quicktime_without_ftyp_is_mov(first: bytes) -> None:
    boxes = {b"moov": video_moov(), b"mdat": mdat(), b"free": box(b"free"), b"wide": box(b"wide")}
    rest = [boxes[t] for t in (b"moov", b"mdat") if t != first]
    data = boxes[first] + b"".join(rest)
    info = await sniff_bytes(data)
    assert info.format is MediaFormat.MOV
    assert info.content_type == "video/quicktime"


async def test_fragments_count_as_media_data() -> None:
    moov_with_mehd = moov(
        mvhd(1000, 0),
        trak(b"vide", 320, 240),
        box(b"mvex", full_box(b"mehd", 0, struct.pack(">I", 3000))),
    )
    data = ftyp(b"iso6") + moov_with_mehd + box(b"moof", bytes(20)) + mdat()
    info = await sniff_bytes(data)
    assert info.duration_seconds == 3.0


async def test_mvhd_version_1() -> None:
    data = ftyp() + moov(mvhd(90000, 90000 * 12, version=1), trak(b"vide", 1920, 1080)) + mdat()
    info = await sniff_bytes(data)
    assert info.duration_seconds == 12.0
    assert (info.width, info.height) == (1920, 1080)


async def test_tkhd_version_1_and_fractional_dimensions() -> None:
    video = box(
        b"trak",
        tkhd(853.5, 480.25, version=1) + box(b"mdia", hdlr(b"vide")),
    )
    data = ftyp() + moov(mvhd(1000, 1000), video) + mdat()
    info = await sniff_bytes(data)
    assert (info.width, info.height) == (854, 480)


async def test_video_track_without_tkhd_has_unknown_dimensions() -> None:
    data = ftyp() + moov(mvhd(1000, 1000), trak(b"vide", with_tkhd=False)) + mdat()
    info = await sniff_bytes(data)
    assert (info.width, info.height) == (None, None)
    assert info.duration_seconds == 1.0


async def test_first_video_track_is_used() -> None:
    data = (
        ftyp()
        + moov(mvhd(1000, 1000), trak(b"soun"), trak(b"vide", 1280, 720), trak(b"vide", 64, 64))
        + mdat()
    )
    info = await sniff_bytes(data)
    assert (info.width, info.height) == (1280, 720)


async def test_absurd_duration_is_rejected() -> None:
    data = ftyp() + video_moov(timescale=1000, duration=10 * 24 * 3600 * 1000) + mdat()
    reason = await rejection(data)
    assert reason == (
        "the video is 864000 seconds long (864000000 units at timescale 1000), "
        "above the limit of 21600 seconds"
    )


async def test_duration_limit_is_configurable() -> None:
    data = ftyp() + video_moov(duration=120_000) + mdat()
    assert (await sniff_bytes(data)).duration_seconds == 120.0
    reason = await rejection(data, SniffLimits(max_video_duration_seconds=60))
    assert "above the limit of 60 seconds" in reason


@pytest.mark.parametrize("duration", [0, 0xFFFFFFFF])
async def test_zero_or_unknown_duration_is_rejected(duration: int) -> None:
    reason = await rejection(ftyp() + video_moov(duration=duration) + mdat())
    assert "duration is unknown" in reason


async def test_zero_timescale_is_rejected() -> None:
    reason = await rejection(ftyp() + video_moov(timescale=0) + mdat())
    assert reason == "the video is corrupt: its 'mvhd' header declares a timescale of 0"


async def test_missing_mvhd_is_rejected() -> None:
    reason = await rejection(ftyp() + moov(trak(b"vide", 10, 10)) + mdat())
    assert "no 'mvhd'" in reason


async def test_unknown_mvhd_version_is_rejected() -> None:
    bad = full_box(b"mvhd", 7, bytes(96))
    reason = await rejection(ftyp() + moov(bad, trak(b"vide", 10, 10)) + mdat())
    assert "unknown 'mvhd' version 7" in reason


async def test_short_mvhd_is_rejected() -> None:
    bad = full_box(b"mvhd", 0, bytes(4))
    assert "too short" in await rejection(ftyp() + moov(bad, trak(b"vide", 10, 10)) + mdat())


async def test_box_smaller_than_its_header_is_rejected() -> None:
    bad = struct.pack(">I4s", 4, b"free")
    data = ftyp() + bad + video_moov() + mdat()
    reason = await rejection(data)
    assert reason == (
        "the video is corrupt: box 'free' at byte 28 declares a size of 4 bytes, "
        "smaller than its 8-byte header"
    )


async def test_largesize_smaller_than_its_header_is_rejected() -> None:
    bad = struct.pack(">I4sQ", 1, b"mdat", 12)
    reason = await rejection(ftyp() + video_moov() + bad + bytes(64))
    assert "smaller than its 16-byte header" in reason


async def test_largesize_box_is_supported() -> None:
    data = ftyp() + large_box(b"mdat", bytes(1000)) + large_box(b"free") + video_moov()
    info = await sniff_bytes(data)
    assert info.duration_seconds == 2.5


async def test_largesize_box_past_end_is_truncated() -> None:
    bad = struct.pack(">I4sQ", 1, b"mdat", 2**40) + bytes(100)
    data = ftyp() + video_moov() + bad
    reason = await rejection(data)
    assert reason.startswith(f"the video is truncated: box 'mdat' at byte {len(data) - 116}")
    assert f"declares {2**40} bytes but only 116 remain" in reason


async def test_incomplete_largesize_header_is_truncated() -> None:
    data = ftyp() + video_moov() + mdat() + struct.pack(">I4s", 1, b"mdat") + b"\x00\x00"
    assert "truncated" in await rejection(data)


async def test_trailing_bytes_too_short_for_a_box_are_truncated() -> None:
    data = ftyp() + video_moov() + mdat() + b"\x00\x00\x01"
    reason = await rejection(data)
    assert reason.startswith("the video is truncated: only 3 bytes remain")


async def test_size_zero_box_extends_to_end_of_file() -> None:
    data = ftyp() + video_moov() + struct.pack(">I4s", 0, b"mdat") + bytes(5000)
    info = await sniff_bytes(data)
    assert info.width == 640


async def test_moov_larger_than_limit_is_refused_without_reading_it() -> None:
    padding = box(b"free", bytes(200_000))
    big_moov = moov(mvhd(1000, 1000), trak(b"vide", 10, 10), padding)
    data = ftyp() + mdat() + big_moov
    obj = FakeObject(data)
    with pytest.raises(MediaRejectedError) as excinfo:
        await sniff(obj.read, len(data), SniffLimits(max_moov_bytes=100_000))
    assert excinfo.value.reason == (
        f"the video's 'moov' index is {len(big_moov) - 8} bytes, above the limit of 100000 bytes"
    )
    assert obj.bytes_read < 100_000


async def test_too_many_top_level_boxes_is_rejected() -> None:
    data = ftyp() + box(b"free") * 100 + video_moov() + mdat()
    reason = await rejection(data, SniffLimits(max_top_level_boxes=50))
    assert "more than 50 top-level boxes" in reason
    assert (await sniff_bytes(data)).width == 640


async def test_millions_of_tiny_boxes_are_bounded() -> None:
    data = ftyp() + box(b"free") * 200_000 + video_moov() + mdat()
    obj = FakeObject(data)
    with pytest.raises(MediaRejectedError, match="more than 10000 top-level boxes"):
        await sniff(obj.read, len(data))
    assert len(obj.calls) < 100


async def test_corrupt_box_inside_moov_is_rejected() -> None:
    bad_trak = struct.pack(">I4s", 5000, b"trak") + bytes(20)
    reason = await rejection(ftyp() + moov(mvhd(1000, 1000), bad_trak) + mdat())
    assert reason.startswith("the video's 'moov' index is corrupt: box 'trak' at byte ")
    assert reason.endswith("declares 5000 bytes but only 28 remain in its parent box")


async def test_non_printable_box_type_is_shown_as_hex() -> None:
    bad = struct.pack(">I", 3) + b"\x00\x01\x02\x03"
    reason = await rejection(ftyp() + bad + video_moov() + mdat())
    assert "box 0x00010203 at byte" in reason


async def test_hdlr_too_short_is_not_a_video_track() -> None:
    short = box(b"trak", box(b"mdia", full_box(b"hdlr", 0, b"\x00\x00")))
    reason = await rejection(ftyp() + moov(mvhd(1000, 1000), short) + mdat())
    assert reason == "the file has no video track (audio only?)"


# --- robustness ----------------------------------------------------------------------------------


def _mutations(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    choice = rng.randrange(4)
    if choice == 0:  # flip a few bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1:  # truncate
        del data[rng.randrange(1, len(data)) :]
    elif choice == 2:  # overwrite a 4-byte field with an extreme value
        pos = rng.randrange(max(1, len(data) - 4))
        data[pos : pos + 4] = rng.choice(
            [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x01"]
        )
    else:  # splice in random bytes
        pos = rng.randrange(len(data))
        data[pos:pos] = rng.randbytes(rng.randint(1, 64))
    return bytes(data)


async def sniff_outcome(obj: FakeObject, data: bytes) -> MediaInfo | MediaRejectedError:
    """Any exception other than MediaRejectedError propagates and fails the test."""
    try:
        return await sniff(obj.read, len(data))
    except MediaRejectedError as exc:
        return exc


async def test_fuzz_only_clean_outcomes(clips: Clips) -> None:
    rng = random.Random(20240611)
    seeds = [
        image_bytes("JPEG", 40, 30),
        image_bytes("PNG", 40, 30),
        clips.mp4,
        clips.mov,
        clips.mp4_faststart,
        ftyp() + mdat() + video_moov(),
    ]
    magics = [
        b"\xff\xd8\xff",
        b"\x89PNG\r\n\x1a\n",
        b"\x00\x00\x00\x18ftypisom",
        b"\x00\x00\x00\x08moov",
    ]
    outcomes = {"info": 0, "rejected": 0}
    for i in range(500):
        kind = i % 3
        if kind == 0:
            data = rng.randbytes(rng.randint(1, 300))
        elif kind == 1:
            data = rng.choice(magics) + rng.randbytes(rng.randint(0, 300))
        else:
            data = _mutations(rng, rng.choice(seeds))
        obj = FakeObject(data)
        result = await sniff_outcome(obj, data)
        if isinstance(result, MediaRejectedError):
            assert isinstance(result.reason, str)
            assert result.reason
            outcomes["rejected"] += 1
        else:
            assert isinstance(result, MediaInfo)
            outcomes["info"] += 1
        assert obj.bytes_read <= max(len(data), 1) + 1024 * 1024
    assert outcomes["info"] > 0
    assert outcomes["rejected"] > 0
