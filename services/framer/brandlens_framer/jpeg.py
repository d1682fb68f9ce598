"""Split a stream of concatenated JPEGs (ffmpeg's image2pipe output) into images."""

from __future__ import annotations

import struct

_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0-7: no length field
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class JpegStreamError(ValueError):
    pass


class JpegSplitter:
    """Feed bytes; get back each complete JPEG. Memory holds at most one image in progress."""

    def __init__(self, max_image_bytes: int = 64 * 1024 * 1024) -> None:
        self._buf = bytearray()
        self._pos = 0  # parse position inside the current image
        self._in_scan = False
        self._max = max_image_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        images: list[bytes] = []
        while True:
            end = self._parse()
            if end is None:
                if len(self._buf) > self._max:
                    raise JpegStreamError(f"a JPEG in the stream exceeds {self._max} bytes")
                return images
            images.append(bytes(self._buf[:end]))
            del self._buf[:end]
            self._pos, self._in_scan = 0, False

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)

    def _parse(self) -> int | None:
        """End offset of the first complete image in the buffer, or None if incomplete."""
        buf = self._buf
        if self._pos == 0:
            if len(buf) < 2:
                return None
            if buf[0] != 0xFF or buf[1] != 0xD8:
                raise JpegStreamError("the stream does not start with a JPEG image")
            self._pos = 2
        while True:
            if self._in_scan:
                # Entropy-coded data: 0xFF is followed by 0x00 (stuffing) or RSTn inside.
                while True:
                    i = buf.find(b"\xff", self._pos)
                    if i < 0 or i + 1 >= len(buf):
                        self._pos = max(self._pos, len(buf) - 1) if i < 0 else i
                        return None
                    nxt = buf[i + 1]
                    if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                        self._pos = i + (1 if nxt == 0xFF else 2)
                        continue
                    self._pos = i
                    self._in_scan = False
                    break
            if self._pos + 2 > len(buf):
                return None
            if buf[self._pos] != 0xFF:
                raise JpegStreamError(f"expected a JPEG marker at byte {self._pos}")
            marker = buf[self._pos + 1]
            if marker == 0xFF:  # fill byte
                self._pos += 1
                continue
            if marker == 0xD9:  # EOI
                return self._pos + 2
            if marker in _STANDALONE or marker == 0xD8:
                self._pos += 2
                continue
            if self._pos + 4 > len(buf):
                return None
            (length,) = struct.unpack(">H", buf[self._pos + 2 : self._pos + 4])
            if length < 2:
                raise JpegStreamError("a JPEG segment has an invalid length")
            if self._pos + 2 + length > len(buf):
                return None
            self._pos += 2 + length
            if marker == 0xDA:  # SOS: entropy-coded data follows
                self._in_scan = True


def jpeg_size(image: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's frame header."""
    pos = 2
    while pos + 4 <= len(image):
        if image[pos] != 0xFF:
            break
        marker = image[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", image[pos + 2 : pos + 4])
        if marker in SOF_MARKERS and pos + 9 <= len(image):
            height, width = struct.unpack(">HH", image[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise JpegStreamError("no frame header in the JPEG")
