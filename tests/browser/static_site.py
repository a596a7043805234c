"""A throw-away static file server for the built website, on 127.0.0.1 on a free port.

``python -m http.server`` runs in its own process group; ``stop`` ends it by its own PID.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from browser.lab import free_port


@dataclass
class StaticServer:
    process: subprocess.Popen
    port: int
    root: Path
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, page: str) -> str:
        return f"{self.base_url}/{page}"

    def get(self, page: str) -> bytes:
        with urllib.request.urlopen(self.url(page), timeout=10) as response:
            return response.read()


def serve(root: Path, log: Path, timeout: float = 30) -> StaticServer:
    """Serve ``root`` until ``stop``; wait until the server answers."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = StaticServer(process, port, root, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the static server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            server.get("index.html")
            return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise RuntimeError(f"the static server did not answer within {timeout} s:\n{log.read_text()[-2000:]}")


def stop(server: StaticServer) -> None:
    """End the server's process group (its PID), SIGTERM then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if server.process.poll() is not None:
            return
        try:
            os.killpg(server.process.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
