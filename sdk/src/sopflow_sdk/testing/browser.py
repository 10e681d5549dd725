"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools
protocol on a websocket: enough to open a page, fill a form, submit it, press a
key, wait for what the page shows and take a screenshot.  No browser download:
the set-up installs Debian's package when it is missing (``chromium_path``).

Shared by the hosted-form tests (plugins/forms) and the operator console's
(tests/test_console_browser.py); needs ``websockets`` (a dev dependency)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx


def chromium_path() -> str:
    """Debian's chromium, installed with apt-get when missing (as root, e.g. in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        if subprocess.run(install, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, check=True)
            subprocess.run(install, capture_output=True, check=True)
        found = shutil.which("chromium")
    if not found:
        raise RuntimeError("Debian's chromium is needed: apt-get install -y chromium")
    return found


class Chromium:
    """One headless browser with one page; ``with Chromium() as b: b.open(url)``."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="sopflow-chromium-")
        self.process = subprocess.Popen(
            [
                chromium_path(),
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ws: Any = None
        self._stack = contextlib.ExitStack()
        self._id = 0

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        port_file, deadline = Path(self.profile) / "DevToolsActivePort", time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        self.ws = self._stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        )
        self.call("Page.enable")
        return self

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=20))
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _wait_load(self) -> None:
        while True:
            msg = json.loads(self.ws.recv(timeout=20))
            if msg.get("method") == "Page.loadEventFired":
                return

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self._wait_load()

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def submit(self, form_selector: str = "form") -> None:
        """Submit like a person pressing the button (the browser's own validation runs)."""
        self.js(f"document.querySelector({json.dumps(form_selector)}).querySelector('button').click()")
        self._wait_load()

    def text(self) -> str:
        return str(self.js("document.body.innerText"))

    def click(self, selector: str, *, navigates: bool = True) -> None:
        """Click the element (a link or a submit button); wait for the next page when it navigates."""
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        if navigates:
            self._wait_load()

    def press(self, key: str, code: str, key_code: int) -> None:
        """A real key press on the focused element (``"ArrowRight", "ArrowRight", 39``)."""
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=code, windowsVirtualKeyCode=key_code)

    def wait_for(self, expression: str, timeout: float = 10.0) -> None:
        """Poll ``expression`` until it is truthy in JavaScript (an element found, a
        text shown), bounded by ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.js(f"Boolean({expression})"):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout} s: {expression}")
            time.sleep(0.05)

    def screenshot(self, path: Path, width: int = 1280, height: int = 800) -> None:
        """Save the page as a PNG at ``width`` x ``height`` CSS pixels."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = self.call("Page.captureScreenshot", format="png")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
