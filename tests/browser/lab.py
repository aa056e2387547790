"""A JupyterLab server of the tests' own, and the steps a test takes in it: open a notebook, wait for its
kernel, run a cell, save.

The server listens on 127.0.0.1 with a token and keeps everything it writes in one folder (its Jupyter
config, data, runtime, settings and workspaces dirs, its notebooks, its log). Its kernels run this venv's
Python on this checkout, and this checkout's build of the sidebar comes first in its labextension path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat
from scripted import child_env

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
LABEXTENSION = REPO / "ancia_jupyter" / "labextension"
PANEL_BUNDLE = REPO / "ancia_jupyter" / "notebook" / "bundle"
# What each bundle is built from: a change in any of them means the bundle is stale.
LABEXTENSION_INPUTS = [REPO / "labextension" / "src", REPO / "labextension" / "style",
                       REPO / "labextension" / "schema", REPO / "ancia_jupyter" / "notebook" / "static", REPO / "package.json"]
PANEL_INPUTS = [REPO / "ancia_jupyter" / "notebook" / "static", REPO / "labextension" / "build-panel.mjs", REPO / "package.json"]
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # a saved workspace can keep another notebook as a hidden tab
SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # no "Select Kernel" dialog when the notebook opens before the kernelspecs are known
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}
# The toolbar's indicator can say idle before the notebook has its kernel.
KERNEL_IDLE = """() => {
  const context = window.jupyterapp?.shell.currentWidget?.sessionContext;
  return Boolean(context?.isReady && context.session?.kernel?.status === 'idle');
}"""
RAN = re.compile(r"\[\d+\]")  # the prompt of a cell that ran


def _newest(paths: list[Path], suffixes: tuple[str, ...] = ()) -> float:
    newest = 0.0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if not suffixes or file.suffix in suffixes:
                newest = max(newest, file.stat().st_mtime)
    return newest


def _stale(built: Path, marker: str, inputs: list[Path]) -> bool:
    newest = _newest([built]) if (built / marker).is_file() else 0.0
    return newest < _newest(inputs, (".ts", ".js", ".mjs", ".css", ".json", ".svg"))


def _npm_run(script: str) -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    if not (REPO / "node_modules" / ".package-lock.json").is_file():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=REPO, env=env, check=True)
    subprocess.run(["npm", "run", script], cwd=REPO, env=env, check=True)


def build_labextension() -> Path:
    """The sidebar's bundle, built with ``npm run build`` when missing or older than its sources."""
    if _stale(LABEXTENSION, "package.json", LABEXTENSION_INPUTS):
        _npm_run("build")
    return LABEXTENSION


def build_panel() -> Path:
    """The in-notebook panel's bundle (widget.py's ``_esm`` and ``_css``), built with
    ``npm run build:panel:dev`` when missing or older than its sources."""
    if _stale(PANEL_BUNDLE, "panel.js", PANEL_INPUTS):
        _npm_run("build:panel:dev")
    return PANEL_BUNDLE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """One JupyterLab server, kept in ``home``: ``with JupyterLab(home, ancia_dirs) as lab: ...``.

    Its kernels inherit its environment: ANCIA_DATA_DIR and ANCIA_MODELS_DIR are ``ancia_dirs``, and the
    offline, eager-load and plugin-registry variables are unset.
    """

    MODULE, APP_CLASS, NAME = "jupyterlab", "LabApp", "JupyterLab"  # Notebook 7: notebook7.py

    def __init__(self, home: Path, ancia_dirs: tuple[Path, Path]) -> None:
        self.home = home
        self.data_dir, self.models_dir = ancia_dirs  # the ancia data and models dirs the kernels use
        self.root = home / "notebooks"
        self.log = home / "server.log"
        self.url, self.token = "", secrets.token_hex(16)
        self._server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def at_kernel_start(self, code: str) -> None:
        """Code every kernel of this server started from now on runs first (an IPython startup file)."""
        startup = self.home / "jupyter" / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "50-tests.py").write_text(code)

    def _environment(self) -> dict[str, str]:
        jupyter = self.home / "jupyter"
        env = {**os.environ,
               "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_DATA_DIR": str(jupyter / "data"),
               "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"), "IPYTHONDIR": str(jupyter / "ipython"),
               "ANCIA_DATA_DIR": str(self.data_dir), "ANCIA_MODELS_DIR": str(self.models_dir),
               "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # "python" in python3's kernelspec
               "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
               "PYTHONUNBUFFERED": "1"}
        for name in ("JUPYTER_PATH", "ANCIA_OFFLINE", "ANCIA_ENABLE_MODEL_EAGER_LOAD", "ANCIA_PLUGIN_REGISTRY_URL"):
            env.pop(name, None)
        return child_env(env)  # cells can script the model with tests/scripted.py

    def start(self) -> JupyterLab:
        """Start the server and return once ``/api/status`` answers."""
        jupyter = self.home / "jupyter"
        extensions = jupyter / "data" / "labextensions"
        extensions.mkdir(parents=True)
        (extensions / "ancia-jupyter").symlink_to(build_labextension(), target_is_directory=True)
        for name, values in SETTINGS.items():  # user settings of this server only
            path = jupyter / "settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.root.mkdir(parents=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        app = self.APP_CLASS
        args = [
            sys.executable, "-m", self.MODULE, "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
            f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}", f"--{app}.user_settings_dir={jupyter / 'settings'}",
            f"--{app}.workspaces_dir={jupyter / 'workspaces'}", f"--{app}.expose_app_in_browser=True",
            # before the environment's labextensions, where `pip install` put a copy of some earlier build
            f"--{app}.extra_labextensions_path={extensions}",
        ]
        with self.log.open("wb") as out:
            self._server = subprocess.Popen(args, cwd=self.root, env=self._environment(), stdout=out,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.api("/api/status")
                return self
            except OSError:
                if self._server.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.NAME} did not start:\n{self.log.read_text()[-3000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server by its PID and wait until it has exited (its kernels with it)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
        return json.loads(data) if data else None

    def notebook(self, name: str, *sources: str) -> str:
        """Write a notebook with these code cells (one empty cell by default) and return its name."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in (sources or ("",))]
        nbformat.write(nb, self.root / name)
        return name

    def tree(self, path: str = "") -> str:
        """The URL that opens ``path`` (a notebook; none: just JupyterLab) in a fresh workspace."""
        where = f"/lab/tree/{path}" if path else "/lab"
        return f"{self.url}{where}?reset&token={self.token}"


class Notebook:
    """The notebook in view in a page of ``lab``, with the steps the tests repeat."""

    def __init__(self, page: Any, lab: JupyterLab, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name

    def open(self) -> Notebook:
        """Open the notebook in a fresh workspace and wait until its kernel is idle."""
        self.page.goto(self.lab.tree(self.name))
        self.page.locator(f"{VISIBLE} .jp-Cell").first.wait_for()
        self.wait_idle()
        return self

    def wait_idle(self) -> None:
        """Until the notebook in view has its kernel, idle."""
        self.page.wait_for_function(KERNEL_IDLE, timeout=60_000)

    def cell(self, index: int) -> Any:
        return self.page.locator(f"{VISIBLE} .jp-Cell").nth(index)

    def run(self, index: int) -> Any:
        """Run one cell and return it once it ran. Clicking inside a widget makes its cell active, so the
        cell is selected first; a run sent while the kernel connection is still settling can be dropped
        without a trace (the prompt stays ``[ ]``), so it is sent again then."""
        cell = self.cell(index)
        prompt = cell.locator(".jp-InputPrompt")
        before = prompt.inner_text()
        for _ in range(4):
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("Shift+Enter")
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                text = prompt.inner_text()
                if RAN.search(text) and text != before:
                    return cell
                self.page.wait_for_timeout(100)
            if "*" in prompt.inner_text():
                prompt.filter(has_text=RAN).wait_for()
                return cell
        raise AssertionError(f"cell {index} did not run")

    def save(self) -> None:
        self.page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
        self.page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached")

    @property
    def panel(self) -> Any:
        """The first chat panel in the notebook's outputs."""
        return self.page.locator(f"{VISIBLE} .ancia-chat").first

    def show_panel(self, index: int = 0) -> Any:
        """Run the cell that shows the chat panel and return the panel once it is there."""
        self.run(index)
        self.panel.wait_for()
        self.panel.get_by_role("status", name="Model state").wait_for()
        return self.panel
