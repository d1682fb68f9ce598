"""Finding ffmpeg/ffprobe and running them as asyncio subprocesses."""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass

from brandlens_framer.settings import FramerSettings


class FramingError(Exception):
    """The media cannot be framed; ``reason`` is a sentence a user can act on. Not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientMediaError(Exception):
    """Reading the media failed for a reason that may pass (network, throttling). Retried."""


@dataclass(frozen=True)
class Tools:
    ffmpeg: str
    ffprobe: str | None
    threads: int = 0

    @classmethod
    def find(cls, settings: FramerSettings) -> Tools:
        ffmpeg = settings.ffmpeg_path or shutil.which("ffmpeg")
        if ffmpeg is None:
            try:
                import imageio_ffmpeg  # the wheel ships an ffmpeg binary (no ffprobe)

                ffmpeg = str(imageio_ffmpeg.get_ffmpeg_exe())
            except (ImportError, RuntimeError):
                raise RuntimeError(
                    "no ffmpeg found: install ffmpeg (e.g. apt-get install ffmpeg), "
                    "pip install imageio-ffmpeg, or set BRANDLENS_FRAMER_FFMPEG_PATH"
                ) from None
        ffprobe = settings.ffprobe_path
        if ffprobe is None and settings.ffmpeg_path is None:
            ffprobe = shutil.which("ffprobe")
        return cls(ffmpeg=ffmpeg, ffprobe=ffprobe, threads=settings.ffmpeg_threads)


async def run_capture(
    argv: list[str], *, limit_bytes: int = 256 * 1024 * 1024
) -> tuple[int, bytes, str]:
    """Run a command; return (exit code, stdout, stderr text). Output is size-bounded."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1024 * 1024,
    )
    try:
        stdout, stderr = await _bounded_communicate(proc, limit_bytes)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return proc.returncode or 0, stdout, stderr.decode("utf-8", "replace")


async def _bounded_communicate(
    proc: asyncio.subprocess.Process, limit_bytes: int
) -> tuple[bytes, bytes]:
    assert proc.stdout is not None
    assert proc.stderr is not None

    async def read_all(stream: asyncio.StreamReader, keep_tail: bool) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while chunk := await stream.read(65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit_bytes:
                if not keep_tail:
                    raise FramingError(
                        f"the media produced more than {limit_bytes} bytes of probe output; "
                        "it is too long or malformed"
                    )
                joined = b"".join(chunks)[-limit_bytes // 2 :]
                chunks, size = [joined], len(joined)
        return b"".join(chunks)

    out, err = await asyncio.gather(read_all(proc.stdout, False), read_all(proc.stderr, True))
    await proc.wait()
    return out, err


def classify_failure(stderr: str, what: str) -> Exception:
    """Turn ffmpeg's stderr into a FramingError (media) or TransientMediaError (access)."""
    text = stderr.strip()
    last = _last_error_line(text)
    lower = text.lower()
    transient = (
        "connection refused",
        "connection reset",
        "timed out",
        "timeout",
        "server returned 5",
        "503",
        "temporarily",
        "network is unreachable",
    )
    if any(t in lower for t in transient):
        return TransientMediaError(f"{what}: {last}")
    if "server returned 404" in lower:
        return FramingError("the media object no longer exists (deleted after it was accepted)")
    if "server returned 403" in lower:
        return TransientMediaError(f"{what}: access to the media object was refused ({last})")
    if ("decoder" in lower and "not found" in lower) or "unknown codec" in lower:
        return FramingError(f"the video uses a codec this framer cannot decode ({last})")
    if "moov atom not found" in lower or "invalid data found" in lower:
        return FramingError(f"the video is corrupt or truncated: ffmpeg could not read it ({last})")
    return FramingError(f"ffmpeg could not {what} ({last or 'no error message'})")


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    for line in reversed(lines):
        if not line.startswith(("frame=", "size=", "video:", "Press [q]", "[out#", "Exiting")):
            return line[:300]
    return lines[-1][:300] if lines else ""
