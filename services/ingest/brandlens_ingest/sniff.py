"""Detect the real type of an uploaded media object from its bytes and check its structure.

The file name and extension are never trusted (they are not even passed in). Detection reads a
small header, then walks the container structure through ranged reads, so a multi-gigabyte video is
checked with a handful of small requests and no decoding (no ffmpeg):

* JPEG: markers are walked to the first frame header (SOFn) for the dimensions.
* PNG: the IHDR chunk, which must come first, gives the dimensions.
* MP4 / MOV (ISO BMFF): the top-level boxes are walked (which catches truncated uploads), then the
  ``moov`` index is read for the duration (``mvhd``) and the first video track (``tkhd``).

Every problem with the bytes is reported as :class:`MediaRejectedError` carrying one sentence a
user can act on. Errors raised by the ``read`` callable itself (network, permissions) propagate
unchanged so the caller can retry them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "MediaFormat",
    "MediaInfo",
    "MediaKind",
    "MediaRejectedError",
    "ReadRange",
    "SniffLimits",
    "sniff",
]

ReadRange = Callable[[int, int], Awaitable[bytes]]
"""read(offset, length) -> bytes; returns fewer bytes only at end of object."""


class MediaKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


class MediaFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    MP4 = "mp4"
    MOV = "mov"


_CONTENT_TYPES: dict[MediaFormat, str] = {
    MediaFormat.JPEG: "image/jpeg",
    MediaFormat.PNG: "image/png",
    MediaFormat.MP4: "video/mp4",
    MediaFormat.MOV: "video/quicktime",
}


@dataclass(frozen=True)
class SniffLimits:
    max_image_pixels: int = 100_000_000  # decompression-bomb guard (width*height)
    max_image_side_px: int = 20_000
    max_video_duration_seconds: float = 6 * 3600
    max_moov_bytes: int = 64 * 1024 * 1024  # refuse to read a larger moov box
    max_top_level_boxes: int = 10_000  # hostile files with millions of tiny boxes


@dataclass(frozen=True)
class MediaInfo:
    kind: MediaKind
    format: MediaFormat
    content_type: str  # image/jpeg, image/png, video/mp4, video/quicktime
    width: int | None  # images: pixels; videos: first video track's tkhd if present, else None
    height: int | None
    duration_seconds: float | None  # videos: from mvhd (duration/timescale); images: None


class MediaRejectedError(Exception):
    """The object is not acceptable media. `reason` is one sentence a user can act on."""

    reason: str

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- reading ---------------------------------------------------------------------------------

_HEAD_BYTES = 64 * 1024  # first read: covers magic numbers, most JPEG headers, a faststart moov
_CHUNK_BYTES = 16 * 1024  # later reads while walking JPEG markers
_BOX_HEADER_READ = 4 * 1024  # a box header read also fetches what follows (often the next header)
_JPEG_SCAN_WINDOW = 1024 * 1024  # a JPEG frame header must start within the first 1 MiB
_MAX_JPEG_MARKERS = 20_000


class _ReadFailedError(Exception):
    """Wraps an exception raised by the caller's ``read`` so parsing guards don't swallow it."""

    def __init__(self, original: Exception) -> None:
        super().__init__(repr(original))
        self.original = original


class _Source:
    """Ranged reads with a tiny cache: the head of the object plus the most recent read."""

    def __init__(self, read: ReadRange, size: int) -> None:
        self._read = read
        self.size = size
        self._head = b""
        self._last_offset = 0
        self._last = b""

    async def load_head(self) -> bytes:
        self._head = await self._fetch_exact(0, min(self.size, _HEAD_BYTES))
        return self._head

    async def get(self, offset: int, length: int, *, prefetch: int = 0) -> bytes:
        """Bytes at ``[offset, offset+length)``, clipped to the object's size.

        On a cache miss, reads ``max(length, prefetch)`` bytes so nearby follow-up requests are
        served without another round trip.
        """
        if offset < 0 or length < 0:
            raise MediaRejectedError("the file is corrupt: it refers to a negative byte offset")
        end = min(offset + length, self.size)
        if offset >= end:
            return b""
        for base, data in ((0, self._head), (self._last_offset, self._last)):
            if base <= offset and end <= base + len(data):
                return data[offset - base : end - base]
        want = min(max(length, prefetch), self.size - offset)
        data = await self._fetch_exact(offset, want)
        self._last_offset, self._last = offset, data
        return data[: end - offset]

    async def get_some(self, offset: int, length: int, *, prefetch: int = 0) -> bytes:
        """Up to ``length`` bytes at ``offset``: only what is cached if any is, else a read.

        Returns b"" only at the end of the object. For scans that can consume partial chunks.
        """
        for base, data in ((0, self._head), (self._last_offset, self._last)):
            if base <= offset < base + len(data):
                return data[offset - base : offset - base + length]
        return await self.get(offset, length, prefetch=prefetch)

    async def _fetch_exact(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            data = await self._read(offset, length)
        except Exception as exc:
            raise _ReadFailedError(exc) from exc
        data = bytes(data)
        if len(data) < length:
            raise MediaRejectedError(
                f"the object is shorter than its declared size of {self.size} bytes "
                f"(it may have been overwritten during the upload); upload it again"
            )
        return data[:length]


# --- entry point -----------------------------------------------------------------------------

_DEFAULT_LIMITS = SniffLimits()


async def sniff(read: ReadRange, size: int, limits: SniffLimits = _DEFAULT_LIMITS) -> MediaInfo:
    """Identify the media in an object of ``size`` bytes readable through ``read``.

    Raises :class:`MediaRejectedError` for anything that is not an acceptable JPEG, PNG, MP4 or
    MOV. Exceptions raised by ``read`` itself propagate unchanged.
    """
    if size < 0:
        raise ValueError(f"size must be >= 0, got {size}")
    if size == 0:
        raise MediaRejectedError("the object is empty (0 bytes)")
    source = _Source(read, size)
    try:
        return await _sniff(source, limits)
    except MediaRejectedError:
        raise
    except _ReadFailedError as exc:
        raise exc.original from None
    except (struct.error, IndexError, ValueError, OverflowError, UnicodeError) as exc:
        # Defence in depth: the parsers check their bounds, but a hostile file must never
        # surface as anything other than a clean rejection.
        raise MediaRejectedError("the file is corrupt and could not be read as media") from exc


async def _sniff(source: _Source, limits: SniffLimits) -> MediaInfo:
    head = await source.load_head()
    if head.startswith(b"\xff\xd8\xff"):
        return await _sniff_jpeg(source, limits)
    if head.startswith(_PNG_SIGNATURE):
        return _sniff_png(head, source.size, limits)
    bmff_format = _bmff_format(head)
    if bmff_format is not None:
        return await _sniff_bmff(source, bmff_format, limits)
    raise MediaRejectedError(
        f"unsupported file type: expected JPEG, PNG, MP4 or MOV, found {_describe(head)}"
    )


# --- images ----------------------------------------------------------------------------------


def _image_info(fmt: MediaFormat, width: int, height: int, limits: SniffLimits) -> MediaInfo:
    if width * height > limits.max_image_pixels:
        raise MediaRejectedError(
            f"image is {width}x{height} pixels, above the limit of {limits.max_image_pixels} pixels"
        )
    if max(width, height) > limits.max_image_side_px:
        raise MediaRejectedError(
            f"image is {width}x{height} pixels; its longest side is above the limit of "
            f"{limits.max_image_side_px} pixels"
        )
    return MediaInfo(
        kind=MediaKind.IMAGE,
        format=fmt,
        content_type=_CONTENT_TYPES[fmt],
        width=width,
        height=height,
        duration_seconds=None,
    )


# JPEG ------------------------------------------------------------------------------------------

_JPEG_SOF_MARKERS = frozenset(
    {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
)
# Markers without a length field: TEM, RSTn, and a (stray) SOI.
_JPEG_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8), 0xD8})
_JPEG_SOS = 0xDA
_JPEG_EOI = 0xD9


def _jpeg_prefetch(pos: int, window_end: int) -> int:
    # Read ahead, but never much past the scan window (a SOF header needs 8 bytes past it).
    return max(0, min(_CHUNK_BYTES, window_end + 16 - pos))


async def _next_jpeg_marker(source: _Source, pos: int, window_end: int) -> tuple[int, int] | None:
    """Find the next marker at or after ``pos``: (marker code, offset just past the code byte).

    Skips fill bytes (runs of 0xFF) and, like libjpeg and Pillow, stray non-marker bytes.
    Returns None if no marker starts before ``window_end``.
    """
    seen_ff = False
    while pos < window_end:
        chunk = await source.get_some(
            pos, min(_CHUNK_BYTES, window_end + 1 - pos), prefetch=_jpeg_prefetch(pos, window_end)
        )
        if not chunk:
            return None
        i = 0
        if not seen_ff:
            i = chunk.find(b"\xff")
            if i < 0:
                pos += len(chunk)
                continue
        while i < len(chunk) and chunk[i] == 0xFF:
            i += 1
        if i == len(chunk):  # the run of 0xFF continues in the next chunk
            seen_ff = True
            pos += len(chunk)
            continue
        seen_ff = False
        if chunk[i] == 0x00:  # 0xFF00 is a stuffed byte, not a marker
            pos += i + 1
            continue
        return chunk[i], pos + i + 1
    return None


async def _sniff_jpeg(source: _Source, limits: SniffLimits) -> MediaInfo:
    size = source.size
    window_end = min(size, _JPEG_SCAN_WINDOW)
    pos = 2  # just past SOI (FF D8)
    for _ in range(_MAX_JPEG_MARKERS):
        found = await _next_jpeg_marker(source, pos, window_end)
        if found is None:
            if window_end == size:
                raise MediaRejectedError(
                    "not a valid JPEG: no frame header found before the end of the file "
                    "(is it truncated?)"
                )
            break
        marker, pos = found
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in (_JPEG_SOS, _JPEG_EOI):
            break  # image data or the end of the image before any frame header
        segment_at = pos - 2
        length_bytes = await source.get(pos, 2, prefetch=_jpeg_prefetch(pos, window_end))
        if len(length_bytes) < 2:
            raise MediaRejectedError(
                f"the JPEG is truncated: it ends inside the segment at byte {segment_at} "
                f"(was the upload interrupted?)"
            )
        (length,) = struct.unpack(">H", length_bytes)
        if length < 2:
            raise MediaRejectedError(
                f"not a valid JPEG: segment 0xFF{marker:02X} at byte {segment_at} "
                f"has an invalid length of {length}"
            )
        remaining = size - pos
        if length > remaining:
            raise MediaRejectedError(
                f"the JPEG is truncated: segment 0xFF{marker:02X} at byte {segment_at} declares "
                f"{length} bytes but only {remaining} remain (was the upload interrupted?)"
            )
        if marker in _JPEG_SOF_MARKERS:
            return _jpeg_frame(await source.get(pos, 8), marker, segment_at, limits)
        pos += length
    raise MediaRejectedError("not a valid JPEG: no frame header found")


def _jpeg_frame(sof: bytes, marker: int, offset: int, limits: SniffLimits) -> MediaInfo:
    # SOFn segment: length (2), sample precision (1), height (2), width (2), components (1), ...
    if len(sof) < 8 or struct.unpack(">H", sof[:2])[0] < 8:
        raise MediaRejectedError(
            f"not a valid JPEG: the frame header 0xFF{marker:02X} at byte {offset} is too short"
        )
    _precision, height, width = struct.unpack(">BHH", sof[2:7])
    if width == 0 or height == 0:
        raise MediaRejectedError(
            f"not a valid JPEG: the frame header declares {width}x{height} pixels"
        )
    return _image_info(MediaFormat.JPEG, width, height, limits)


# PNG -------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MAX_DIMENSION = 2**31 - 1
_PNG_BIT_DEPTHS: dict[int, frozenset[int]] = {
    0: frozenset({1, 2, 4, 8, 16}),  # greyscale
    2: frozenset({8, 16}),  # truecolour
    3: frozenset({1, 2, 4, 8}),  # indexed
    4: frozenset({8, 16}),  # greyscale + alpha
    6: frozenset({8, 16}),  # truecolour + alpha
}


def _sniff_png(head: bytes, size: int, limits: SniffLimits) -> MediaInfo:
    # signature (8) + IHDR chunk: length (4), type (4), data (13), CRC (4)
    if size < 33:
        raise MediaRejectedError(
            f"the PNG is truncated: it is only {size} bytes, too short for its header "
            f"(was the upload interrupted?)"
        )
    length, chunk_type = struct.unpack(">I4s", head[8:16])
    if chunk_type != b"IHDR" or length != 13:
        raise MediaRejectedError("not a valid PNG: the first chunk is not a valid IHDR header")
    data = head[16:29]
    (crc,) = struct.unpack(">I", head[29:33])
    if zlib.crc32(head[12:29]) != crc:
        raise MediaRejectedError("not a valid PNG: the IHDR header is corrupt (checksum mismatch)")
    width, height, bit_depth, color_type, compression, filter_method, interlace = struct.unpack(
        ">IIBBBBB", data
    )
    if width == 0 or height == 0:
        raise MediaRejectedError(f"not a valid PNG: the header declares {width}x{height} pixels")
    if width > _PNG_MAX_DIMENSION or height > _PNG_MAX_DIMENSION:
        raise MediaRejectedError(
            f"not a valid PNG: the header declares {width}x{height} pixels, beyond what PNG allows"
        )
    if bit_depth not in _PNG_BIT_DEPTHS.get(color_type, frozenset()):
        raise MediaRejectedError(
            f"not a valid PNG: bit depth {bit_depth} with color type {color_type} is invalid"
        )
    if compression != 0 or filter_method != 0 or interlace not in (0, 1):
        raise MediaRejectedError("not a valid PNG: the header uses unknown compression options")
    return _image_info(MediaFormat.PNG, width, height, limits)


# --- ISO BMFF (MP4 / MOV) ----------------------------------------------------------------------

# Top-level box types an old QuickTime file (no ftyp) may start with.
_QUICKTIME_FIRST_BOXES = frozenset({b"moov", b"mdat", b"free", b"skip", b"wide"})
# ftyp major brands of HEIF still images, which share the container but are not video.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_MAX_BOX_SIZE_32 = 0xFFFFFFFF


def _bmff_format(head: bytes) -> MediaFormat | None:
    if len(head) < 8:
        return None
    box_size, box_type = struct.unpack(">I4s", head[:8])
    if box_type == b"ftyp":
        if box_size < 16 or len(head) < 12:
            return MediaFormat.MOV  # no readable major brand: treat like old QuickTime
        brand = head[8:12]
        if brand in _HEIF_BRANDS or brand in _AVIF_BRANDS:
            return None  # described as an image by _describe()
        return MediaFormat.MOV if brand == b"qt  " else MediaFormat.MP4
    if box_type in _QUICKTIME_FIRST_BOXES:
        return MediaFormat.MOV
    return None


def _box_name(box_type: bytes) -> str:
    if len(box_type) == 4 and all(0x20 <= b < 0x7F for b in box_type):
        return repr(box_type.decode("ascii"))
    return "0x" + box_type.hex()


@dataclass(frozen=True)
class _Box:
    type: bytes
    offset: int  # of the box header, in the file
    header_len: int
    size: int  # including the header

    @property
    def payload_offset(self) -> int:
        return self.offset + self.header_len

    @property
    def payload_len(self) -> int:
        return self.size - self.header_len


def _parse_box_header(
    header: bytes, offset: int, remaining: int, what: str, *, nested: bool = False
) -> _Box:
    """Validate one box header found at ``offset`` with ``remaining`` bytes left in its parent.

    ``what`` names the container in messages ("the video" for top level). A box running past
    the end of the file means a truncated upload; one running past its parent is corruption.
    """
    if len(header) < 8:
        raise MediaRejectedError(
            f"{what} is truncated: only {remaining} bytes remain at byte {offset}, "
            f"too few for a box header (was the upload interrupted?)"
        )
    size32, box_type = struct.unpack(">I4s", header[:8])
    name = _box_name(box_type)
    if size32 == 1:
        if len(header) < 16:
            raise MediaRejectedError(
                f"{what} is truncated: box {name} at byte {offset} has an incomplete "
                f"64-bit size (was the upload interrupted?)"
            )
        (box_size,) = struct.unpack(">Q", header[8:16])
        header_len = 16
    elif size32 == 0:
        box_size, header_len = remaining, 8
    else:
        box_size, header_len = size32, 8
    if box_size < header_len:
        raise MediaRejectedError(
            f"{what} is corrupt: box {name} at byte {offset} declares a size of {box_size} "
            f"bytes, smaller than its {header_len}-byte header"
        )
    if box_size > remaining:
        if nested:
            raise MediaRejectedError(
                f"{what} is corrupt: box {name} at byte {offset} declares {box_size} bytes but "
                f"only {remaining} remain in its parent box"
            )
        raise MediaRejectedError(
            f"{what} is truncated: box {name} at byte {offset} declares {box_size} bytes but "
            f"only {remaining} remain (was the upload interrupted?)"
        )
    return _Box(box_type, offset, header_len, box_size)


async def _sniff_bmff(source: _Source, fmt: MediaFormat, limits: SniffLimits) -> MediaInfo:
    size = source.size
    moov: _Box | None = None
    has_media = False
    offset = 0
    count = 0
    while offset < size:
        count += 1
        if count > limits.max_top_level_boxes:
            raise MediaRejectedError(
                f"the video has more than {limits.max_top_level_boxes} top-level boxes; "
                f"it is corrupt or malicious"
            )
        header = await source.get(offset, 16, prefetch=_BOX_HEADER_READ)
        box = _parse_box_header(header, offset, size - offset, "the video")
        if box.type == b"moov" and moov is None:
            moov = box
        elif box.type in (b"mdat", b"moof"):
            has_media = True
        offset += box.size

    if moov is None:
        raise MediaRejectedError(
            "the video has no 'moov' index; it is truncated or not finished writing"
        )
    if not has_media:
        raise MediaRejectedError("the video has no media data ('mdat' box); it is incomplete")
    if moov.payload_len > limits.max_moov_bytes:
        raise MediaRejectedError(
            f"the video's 'moov' index is {moov.payload_len} bytes, above the limit of "
            f"{limits.max_moov_bytes} bytes"
        )
    data = await source.get(moov.payload_offset, moov.payload_len)
    return _parse_moov(data, moov.payload_offset, fmt, limits)


def _children(data: bytes, start: int, end: int, base: int) -> Iterator[_Box]:
    """Child boxes of ``data[start:end]``; offsets in the yielded boxes are file offsets.

    Naturally bounded: every box is at least 8 bytes long.
    """
    pos = start
    while pos < end:
        box = _parse_box_header(
            data[pos : min(pos + 16, end)],
            base + pos,
            end - pos,
            "the video's 'moov' index",
            nested=True,
        )
        yield box
        pos += box.size


def _find_child(data: bytes, parent: _Box, base: int, box_type: bytes) -> _Box | None:
    start = parent.payload_offset - base
    for child in _children(data, start, start + parent.payload_len, base):
        if child.type == box_type:
            return child
    return None


def _payload(data: bytes, box: _Box, base: int) -> bytes:
    start = box.payload_offset - base
    return data[start : start + box.payload_len]


def _parse_moov(data: bytes, base: int, fmt: MediaFormat, limits: SniffLimits) -> MediaInfo:
    mvhd: _Box | None = None
    mvex: _Box | None = None
    video_trak: _Box | None = None
    for box in _children(data, 0, len(data), base):
        if box.type == b"mvhd" and mvhd is None:
            mvhd = box
        elif box.type == b"mvex" and mvex is None:
            mvex = box
        elif box.type == b"trak" and video_trak is None and _is_video_trak(data, box, base):
            video_trak = box

    if mvhd is None:
        raise MediaRejectedError("the video's 'moov' index has no 'mvhd' header; it is corrupt")
    timescale, duration = _parse_mvhd(_payload(data, mvhd, base))
    if timescale == 0:
        raise MediaRejectedError(
            "the video is corrupt: its 'mvhd' header declares a timescale of 0"
        )
    if video_trak is None:
        raise MediaRejectedError("the file has no video track (audio only?)")
    if duration == 0 and mvex is not None:
        # Fragmented files may carry the total duration in mvex/mehd instead.
        mehd = _find_child(data, mvex, base, b"mehd")
        if mehd is not None:
            duration = _parse_mehd(_payload(data, mehd, base))
    seconds: float | None
    if duration == 0 and mvex is not None:
        # A fragmented file (browser and live recordings) need not declare its
        # length up front; the framer measures it from the fragments.
        seconds = None
    elif duration == 0:
        raise MediaRejectedError(
            "the video's duration is unknown: its 'mvhd' header declares a duration of 0 "
            f"(timescale {timescale}); it may be empty or not finished writing"
        )
    else:
        seconds = duration / timescale
    if seconds is not None and seconds > limits.max_video_duration_seconds:
        raise MediaRejectedError(
            f"the video is {seconds:.0f} seconds long ({duration} units at timescale "
            f"{timescale}), above the limit of {limits.max_video_duration_seconds:.0f} seconds"
        )
    width, height = _track_dimensions(data, video_trak, base)
    return MediaInfo(
        kind=MediaKind.VIDEO,
        format=fmt,
        content_type=_CONTENT_TYPES[fmt],
        width=width,
        height=height,
        duration_seconds=seconds,
    )


def _full_box_version(payload: bytes, name: str) -> int:
    if len(payload) < 4:
        raise MediaRejectedError(f"the video is corrupt: its {name!r} box is too short")
    return payload[0]


def _parse_mvhd(payload: bytes) -> tuple[int, int]:
    """(timescale, duration); an 'unknown' duration (all ones) is returned as 0."""
    version = _full_box_version(payload, "mvhd")
    if version == 0:
        if len(payload) < 20:
            raise MediaRejectedError("the video is corrupt: its 'mvhd' header is too short")
        timescale, duration = struct.unpack(">II", payload[12:20])
        unknown = 0xFFFFFFFF
    elif version == 1:
        if len(payload) < 32:
            raise MediaRejectedError("the video is corrupt: its 'mvhd' header is too short")
        timescale, duration = struct.unpack(">IQ", payload[20:32])
        unknown = 0xFFFFFFFFFFFFFFFF
    else:
        raise MediaRejectedError(f"the video is corrupt: unknown 'mvhd' version {version}")
    return timescale, 0 if duration == unknown else duration


def _parse_mehd(payload: bytes) -> int:
    version = _full_box_version(payload, "mehd")
    if version == 1 and len(payload) >= 12:
        return int(struct.unpack(">Q", payload[4:12])[0])
    if version == 0 and len(payload) >= 8:
        return int(struct.unpack(">I", payload[4:8])[0])
    return 0


def _is_video_trak(data: bytes, trak: _Box, base: int) -> bool:
    mdia = _find_child(data, trak, base, b"mdia")
    if mdia is None:
        return False
    hdlr = _find_child(data, mdia, base, b"hdlr")
    if hdlr is None:
        return False
    # full box header (4), pre_defined / QuickTime component type (4), handler_type (4)
    payload = _payload(data, hdlr, base)
    return payload[8:12] == b"vide"


def _track_dimensions(data: bytes, trak: _Box, base: int) -> tuple[int | None, int | None]:
    """Width and height (16.16 fixed point, the last 8 bytes of tkhd), rounded to pixels."""
    tkhd = _find_child(data, trak, base, b"tkhd")
    if tkhd is None:
        return None, None
    payload = _payload(data, tkhd, base)
    if not payload:
        return None, None
    end = {0: 84, 1: 96}.get(payload[0])
    if end is None or len(payload) < end:
        return None, None
    width_fx, height_fx = struct.unpack(">II", payload[end - 8 : end])
    width = (width_fx + 0x8000) >> 16
    height = (height_fx + 0x8000) >> 16
    if width == 0 or height == 0:
        return None, None
    return width, height


# --- describing unsupported files --------------------------------------------------------------

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"%PDF", "PDF"),
    (b"FLV\x01", "FLV video"),
    (b"II*\x00", "TIFF image"),
    (b"MM\x00*", "TIFF image"),
    (b"\xff\x0a", "JPEG XL image"),
    (b"\x00\x00\x00\x0cJXL ", "JPEG XL image"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000 image"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM video"),
    (b"\x00\x00\x01\xba", "MPEG program stream"),
    (b"OggS", "Ogg media"),
    (b"fLaC", "FLAC audio"),
    (b"ID3", "MP3 audio"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"Rar!", "RAR archive"),
    (b"MZ", "Windows executable"),
    (b"\x7fELF", "ELF executable"),
)


def _describe(head: bytes) -> str:
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "WebP image", b"AVI ": "AVI video", b"WAVE": "WAV audio"}.get(
            head[8:12], "RIFF data"
        )
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _AVIF_BRANDS:
            return "AVIF image"
        if brand in _HEIF_BRANDS:
            return "HEIF/HEIC image"
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == bytes(4):
        return "BMP image"
    for magic, description in _SIGNATURES:
        if head.startswith(magic):
            return description
    if len(head) >= 376 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG transport stream"
    if _looks_like_text(head[:1024]):
        sample = head[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
        if sample.startswith((b"<!doctype html", b"<html")):
            return "HTML document"
        if sample.startswith(b"<svg") or (sample.startswith(b"<?xml") and b"<svg" in sample):
            return "SVG image (text)"
        return "text"
    return "unknown binary data"


def _looks_like_text(sample: bytes) -> bool:
    if not sample or b"\x00" in sample:
        return False
    # Allow a multi-byte character cut off at the end of the sample.
    text = sample.decode("utf-8", errors="replace")
    if "\ufffd" in text[:-3]:
        return False
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n\f")
    return printable >= 0.95 * len(text)
