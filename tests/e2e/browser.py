"""A headless Chromium driven over the DevTools protocol, just enough for the UI tests: open a
page, wait for something in it, type into a field, click, read the DOM, take a screenshot.

Chromium is the Debian package (scripts/setup.sh installs it); the protocol goes over a
WebSocket with the `websockets` client that Airflow's uvicorn already brings.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect


def chromium_binary() -> str | None:
    """Path of the Chromium executable, None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    """The browser did not reach what a test waited for (carries the page it was on)."""


class Chromium:
    """One headless Chromium with one tab; close() ends the process it started."""

    def __init__(self, profile: Path, log: Path, width: int = 1366, height: int = 900):
        binary = chromium_binary()
        if binary is None:
            raise BrowserError("chromium is not installed (scripts/setup.sh installs it)")
        profile.mkdir(parents=True, exist_ok=True)
        self._log = log.open("wb")
        self._proc = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={profile}",
                # Port 0: Chromium picks a free one and writes it to DevToolsActivePort.
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._ids = itertools.count(1)
        port = self._devtools_port(profile / "DevToolsActivePort")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.loads(r.read()) if t["type"] == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.call("Page.enable")

    def _devtools_port(self, marker: Path, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self._proc.returncode}")
            if marker.exists() and marker.read_text().strip():
                return int(marker.read_text().split()[0])
            time.sleep(0.1)
        raise BrowserError("chromium did not open its DevTools port")

    def call(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """One protocol command; returns its result (events that arrive meanwhile are
        dropped: the tests poll the page instead of following events)."""
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self._ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll a JavaScript expression until it is truthy (and the page has loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # An element found counts as true (DOM nodes do not serialise to values); an
                # iframe's nodes are not `instanceof Node` of the top window, so test nodeType.
                value = self.evaluate(
                    "document.readyState === 'complete' && "
                    f"(v => v && v.nodeType ? true : v)({expression})"
                )
            except BrowserError:
                value = None  # the page navigated away mid-evaluation
            if value:
                return value
            time.sleep(0.2)
        raise BrowserError(f"timed out waiting for {expression} on {self.url()}")

    def goto(self, url: str, until: str = "true", timeout: float = 60) -> None:
        """Open a URL and wait until the page has loaded and `until` holds."""
        self.call("Page.navigate", url=url)
        self.wait_for(f"location.href !== 'about:blank' && ({until})", timeout)

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type text as keyboard input (what a React form listens to)."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def click(self, selector: str) -> None:
        """Click the first element that matches a CSS selector."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    def url(self) -> str:
        """The current page's URL."""
        return str(self.evaluate("location.href"))

    def dom(self) -> str:
        """The current DOM as HTML (what the user sees, after scripts ran)."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (beyond the window too)."""
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        """Close the connection and end the browser process."""
        try:
            self._ws.close()
        finally:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._log.close()
