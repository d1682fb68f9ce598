"""A headless Chromium driven over the Chrome DevTools Protocol (CDP), for tests.

Debian's ``chromium`` package, a fresh profile in a temporary directory, and a
websocket (aiohttp) to the browser: open a page, collect what went wrong while
it loaded (console errors and warnings, uncaught exceptions, error log entries,
failed loads), evaluate JavaScript and take full-page screenshots. The browser's
whole process group is killed when the context ends, whatever happened.

    async with Browser.launch(tmp_path) as browser:
        await browser.open(path.as_uri())
        assert browser.problems == []
        title = await browser.evaluate("document.title")
        png = await browser.screenshot()
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

DEBIAN_CHROMIUM = "/usr/bin/chromium"

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1280,900",
    "--hide-scrollbars",
]


def chromium_path() -> str | None:
    """Debian's Chromium (``apt-get install chromium``), or None when it is not installed."""
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


class BrowserError(RuntimeError):
    """The browser failed to start, answered a command with an error, or timed out."""


@dataclass(frozen=True)
class Problem:
    """Something that went wrong in the page: ``kind`` is console, exception, log or load."""

    kind: str
    text: str
    url: str = ""


@dataclass
class _Page:
    session_id: str
    loaded: asyncio.Event = field(default_factory=asyncio.Event)


class Browser:
    """One headless Chromium with one page (a CDP session on a target of its own)."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self._process = process
        self._log_path = log_path
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._page: _Page | None = None
        self._request_urls: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.requests: list[str] = []  # every URL the page asked for, in order

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls, workdir: Path, *, timeout: float = 30.0) -> AsyncIterator[Browser]:
        """Start Chromium with a fresh profile under ``workdir``; killed on exit."""
        binary = chromium_path()
        if binary is None:
            raise BrowserError("Debian chromium not installed (apt-get install chromium)")
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        log_path = workdir / "chromium.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: killed as one below
            )
        browser = cls(process, log_path)
        try:
            port, path = await browser._devtools_address(profile, timeout)
            await browser._connect(f"ws://127.0.0.1:{port}{path}")
            await browser._new_page()
            yield browser
        finally:
            await browser._close()

    # -- what tests use ---------------------------------------------------------------

    async def open(self, url: str, *, timeout: float = 30.0) -> None:
        """Navigate the page to ``url`` and wait for its load event."""
        page = self._require_page()
        page.loaded.clear()
        result = await self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise BrowserError(f"navigation to {url} failed: {result['errorText']}")
        try:
            await asyncio.wait_for(page.loaded.wait(), timeout)
        except TimeoutError:
            raise BrowserError(f"{url} did not finish loading in {timeout} s") from None

    async def evaluate(self, expression: str, *, timeout: float = 30.0) -> Any:
        """The JSON value of a JavaScript expression (promises are awaited)."""
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    async def screenshot(self, *, timeout: float = 60.0) -> bytes:
        """A PNG of the whole page, beyond the viewport."""
        metrics = await self.send("Page.getLayoutMetrics", timeout=timeout)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        result = await self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            timeout=timeout,
        )
        return base64.b64decode(result["data"])

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 30.0
    ) -> dict[str, Any]:
        """A CDP command to the page (or to the browser before the page exists)."""
        session = self._page.session_id if self._page else None
        return await self._send(method, params, session=session, timeout=timeout)

    # -- plumbing ---------------------------------------------------------------------

    def _require_page(self) -> _Page:
        if self._page is None:
            raise BrowserError("no page is open")
        return self._page

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    async def _devtools_address(self, profile: Path, timeout: float) -> tuple[int, str]:
        """Chromium writes its port and browser websocket path to DevToolsActivePort."""
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserError(
                    f"chromium exited with {self._process.returncode}:\n{self._log_tail()}"
                )
            with contextlib.suppress(OSError, ValueError):
                lines = marker.read_text().splitlines()
                if len(lines) >= 2 and lines[0].strip().isdigit():
                    return int(lines[0]), lines[1].strip()
            await asyncio.sleep(0.05)
        raise BrowserError(f"chromium did not start in {timeout} s:\n{self._log_tail()}")

    async def _connect(self, url: str) -> None:
        self._http = aiohttp.ClientSession()
        # screenshots arrive as one large message: no size limit
        self._ws = await self._http.ws_connect(url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _new_page(self) -> None:
        target = await self._send("Target.createTarget", {"url": "about:blank"})
        attached = await self._send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        self._page = _Page(session_id=attached["sessionId"])
        for domain in ("Runtime", "Log", "Page", "Network"):
            await self.send(f"{domain}.enable")

    async def _send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        if self._ws is None or self._ws.closed:
            raise BrowserError(f"{method}: not connected to chromium")
        number = next(self._ids)
        message: dict[str, Any] = {"id": number, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[number] = future
        try:
            await self._ws.send_json(message)
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise BrowserError(f"{method}: no answer from chromium in {timeout} s") from None
        finally:
            self._pending.pop(number, None)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for message in self._ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = message.json()
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is None or future.done():
                        continue
                    if "error" in data:
                        future.set_exception(BrowserError(f"CDP error: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                elif "method" in data:
                    self._on_event(data["method"], data.get("params", {}))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the connection to chromium closed"))

    def _on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Page.loadEventFired" and self._page is not None:
            self._page.loaded.set()
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "warning"):
            text = " ".join(
                str(a.get("value", a.get("description", ""))) for a in params.get("args", [])
            )
            self.problems.append(Problem("console", f"{params['type']}: {text}"))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            self.problems.append(Problem("exception", text, details.get("url", "")))
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            if entry.get("level") == "error":
                self.problems.append(Problem("log", entry.get("text", ""), entry.get("url", "")))
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            self._request_urls[params.get("requestId", "")] = url
            self.requests.append(url)
        elif method == "Network.loadingFailed":
            url = self._request_urls.get(params.get("requestId", ""), "")
            self.problems.append(Problem("load", params.get("errorText", ""), url))

    async def _close(self) -> None:
        try:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
            if self._ws is not None:
                await self._ws.close()
            if self._http is not None:
                await self._http.close()
        finally:
            self._kill()

    def _kill(self) -> None:
        """Kill the browser's process group (the browser and its helpers), then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=10)
