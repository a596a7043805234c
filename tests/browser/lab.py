"""A throw-away JupyterLab server and helpers to drive notebooks in it with Playwright.

The server runs on 127.0.0.1 on a free port with a random token, in its own process group,
with its own config, runtime, settings and workspace folders (nothing from the user's Jupyter
set-up leaks in). Notebooks are served from a temporary copy, and autosave is off, so a test run
never writes into the repository. ``stop`` shuts the kernels down through the REST API and
then ends the server by its own PID and process group.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# JupyterLab settings for a quiet, deterministic UI: no autosave (never write the notebook), no
# news or update checks (no network), every cell rendered (no windowing) so outputs are in the DOM.
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    process: subprocess.Popen
    port: int
    token: str
    root: Path
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api(self, path: str, method: str = "GET") -> object:
        request = urllib.request.Request(f"{self.base_url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook_url(self, relative: str) -> str:
        return f"{self.base_url}/lab/tree/{relative}?token={self.token}&reset"


def start(repo: Path, notebooks: list[str], workdir: Path, timeout: float = 90) -> LabServer:
    """Copy ``notebooks`` (paths relative to ``repo``) into ``workdir/root`` and serve them."""
    root = workdir / "root"
    for relative in notebooks:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        notebook = json.loads((repo / relative).read_text())
        for cell in notebook["cells"]:  # the lessons are stored executed: start from blank cells, so every
            if cell["cell_type"] == "code":  # output the test sees comes from this run in the browser
                cell["outputs"], cell["execution_count"] = [], None
        (root / relative).write_text(json.dumps(notebook))
    for name, values in SETTINGS.items():
        path = workdir / "settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(workdir / "config"), "JUPYTER_RUNTIME_DIR": str(workdir / "runtime"),
           "IPYTHONDIR": str(workdir / "ipython"), "JUPYTER_PLATFORM_DIRS": "1"}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               f"--LabApp.user_settings_dir={workdir / 'settings'}", f"--LabApp.workspaces_dir={workdir / 'workspaces'}",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:
        command.append("--allow-root")  # Jupyter refuses to run as root without it
    log = workdir / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                   start_new_session=True)  # own process group, ended by its PID
    server = LabServer(process, port, token, root, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status")
            return server
        except OSError:
            time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def stop(server: LabServer) -> None:
    """Shut down the kernels, then end the server's process group (SIGTERM, then SIGKILL)."""
    try:
        for kernel in server.api("/api/kernels") or []:
            server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    except OSError:
        pass  # the server is already gone; its group is ended below
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        if server.process.poll() is not None:
            break
        try:
            os.killpg(server.process.pid, sig)  # the group id is the server's PID (start_new_session)
        except ProcessLookupError:
            break
        try:
            server.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


# -- driving a notebook in the page ---------------------------------------------------------------

KERNEL_IDLE = """() => {
  const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = panel && panel.sessionContext && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}"""

RUN_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  for (const cell of cells) {
    const outputs = cell.model.outputs.toJSON();
    const error = outputs.find(o => o.output_type === 'error');
    if (error) return 'error: ' + error.ename + ': ' + error.evalue;
  }
  const kernel = panel.sessionContext.session.kernel;
  const done = cells.every(c => c.model.executionCount !== null) && kernel.status === 'idle';
  return done ? 'done' : 'running';
}"""


def open_and_run_all(page, server: LabServer, notebook: str, timeout_s: float = 90) -> None:
    """Open ``notebook``, wait for its kernel, run every cell and wait until all have run."""
    page.goto(server.notebook_url(notebook))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    deadline = time.monotonic() + timeout_s
    state = "running"
    while time.monotonic() < deadline:
        state = page.evaluate(RUN_STATE)
        if state != "running":
            break
        page.wait_for_timeout(500)
    if state != "done":
        raise AssertionError(f"running {notebook} in JupyterLab ended with: {state}")


def wait_until_settled(page, quiet_ms: int = 1500, timeout_s: float = 60) -> None:
    """Wait until the kernel has been idle for ``quiet_ms`` (every widget message handled)."""
    deadline, quiet_since = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if page.evaluate(KERNEL_IDLE):
            quiet_since = quiet_since or time.monotonic()
            if (time.monotonic() - quiet_since) * 1000 >= quiet_ms:
                page.wait_for_timeout(300)  # the last image message: let the <img> load
                return
        else:
            quiet_since = None
        page.wait_for_timeout(100)
    raise AssertionError(f"the kernel did not settle within {timeout_s} s")


def image_size(locator) -> tuple[int, int]:
    """Natural size of a rendered <img> (0, 0 until it has loaded)."""
    return tuple(locator.evaluate("img => [img.complete ? img.naturalWidth : 0, img.complete ? img.naturalHeight : 0]"))


def parse_metric_table(text: str) -> dict[str, tuple[float | None, ...]]:
    """The metric playground's readout (``class IoU Dice BF1`` rows) as ``{name: (iou, dice, bf1)}``."""
    rows = {}
    for line in text.strip().splitlines()[1:]:
        *name, iou, dice, bf1 = line.split()
        rows[" ".join(name)] = tuple(None if v == "n/a" else float(v) for v in (iou, dice, bf1))
    return rows
