"""A real headless Chromium (Debian's ``chromium``) driven over the DevTools
protocol on a websocket: enough to open a page, fill a form, submit it and read
what the browser shows.  No browser download: the set-up installs Debian's
package when it is missing (``chromium_path``)."""

from __future__ import annotations

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

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
