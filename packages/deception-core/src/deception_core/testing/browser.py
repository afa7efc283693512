"""Drive a headless Chromium from Python through the DevTools protocol over a pipe (no extra packages).

Chromium started with ``--remote-debugging-pipe`` reads protocol messages (JSON, each ended by a
NUL byte) on file descriptor 3 and writes its answers on descriptor 4; this module wires two OS
pipes to those descriptors. Nothing is downloaded: it uses Debian's ``chromium`` (or whichever
binary ``CHROMIUM`` names). Used by the report's browser tests and `scripts/report_benchmark.py`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from deception_core.base.types import JSONObject, JSONValue, json_object

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """The Chromium binary: ``$CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on PATH."""
    override = os.environ.get("CHROMIUM")
    if override:
        return override if Path(override).is_file() else shutil.which(override)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(RuntimeError):
    pass


def _flags(profile: str) -> list[str]:
    return [*FLAGS, f"--user-data-dir={profile}"]


def dump_dom(url: str, timeout: float = 120.0, binary: str | None = None) -> str:
    """The DOM after the page's scripts ran (``chromium --dump-dom``)."""
    binary = binary or find_chromium()
    if binary is None:
        raise BrowserError("no Chromium found (apt-get install chromium, or set CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="deception-chromium-") as profile:
        done = subprocess.run([binary, *_flags(profile), "--dump-dom", url], capture_output=True, timeout=timeout,
                              check=False)
    if done.returncode != 0:
        raise BrowserError(f"chromium --dump-dom failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return done.stdout.decode("utf-8")


class Browser:
    """One headless Chromium with one page.

    >>> with Browser() as page:  # doctest: +SKIP
    ...     page.open("file:///tmp/report.html")
    ...     page.evaluate("document.title")
    """

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 900, timeout: float = 120.0) -> None:
        found = binary or find_chromium()
        if found is None:
            raise BrowserError("no Chromium found (apt-get install chromium, or set CHROMIUM)")
        self.binary: str = found
        self.width, self.height, self.timeout = width, height, timeout
        self._next_id = 0
        self._buffer = b""
        self._events: list[JSONObject] = []
        self.session: str | None = None

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="deception-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: the protocol's descriptors 3 (in) and 4 (out)
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)
            os.set_inheritable(3, True)  # dup2 onto the same number keeps close-on-exec
            os.set_inheritable(4, True)

        self._process = subprocess.Popen(
            [self.binary, *_flags(self._profile.name), "--remote-debugging-pipe",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False)
        os.close(to_child_r)
        os.close(from_child_w)
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = str(self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"])
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False})
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.call("Browser.close", session=False)
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_child)
        os.close(self._from_child)
        self._profile.cleanup()

    # protocol
    def _send(self, message: JSONObject) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._to_child, data)
            data = data[written:]

    def _receive(self, deadline: float) -> JSONObject:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_child], [], [], remaining)[0]:
                raise BrowserError("Chromium did not answer in time")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the protocol pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        decoded: JSONObject = json.loads(message)
        return decoded

    def call(self, method: str, params: JSONObject | None = None, session: bool = True) -> JSONObject:
        self._next_id += 1
        message: JSONObject = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return dict(json_object(answer.get("result", {})))
            self._events.append(answer)

    def wait_event(self, method: str) -> JSONObject:
        for i, event in enumerate(self._events):
            if event.get("method") == method:
                return self._events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._receive(deadline)
            if event.get("method") == method:
                return event
            self._events.append(event)

    # page
    def open(self, url: str) -> float:
        """Navigate to ``url`` and wait for its load event; returns the wall seconds it took."""
        self._events.clear()
        started = time.perf_counter()
        self.call("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        return time.perf_counter() - started

    def evaluate(self, expression: str) -> JSONValue:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"script error: {result['exceptionDetails']}")
        return json_object(result["result"]).get("value")

    def screenshot(self, path: str | Path, full_page: bool = False) -> Path:
        params: JSONObject = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = base64.b64decode(str(self.call("Page.captureScreenshot", params)["data"]))
        path = Path(path)
        path.write_bytes(data)
        return path
