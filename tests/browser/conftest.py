"""JupyterLab on 127.0.0.1 with private Jupyter and ancia directories, and Debian's Chromium driven by
Playwright, for tests that use the chat panel the way a person does.

The kernel runs this venv's Python (a kernelspec in the server's own data dir) and finds the tiny model
registered beforehand in its ancia data dir, greedy and short, with the built-in tools off so that its
small context window holds the prompt.
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # no "Select Kernel" dialog when the notebook opens before the kernelspecs are known
    "@jupyterlab/notebook-extension/tracker": {"autoStartDefaultKernel": True},
}
KERNEL = "ancia-test"  # a kernelspec name of our own: a venv's own specs come before the user's data dir
TINY_PARAMS = {"temperature": 0.0, "max_tokens": 24, "context_window": 1024}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register_tiny(env: dict[str, str], model_dir: Path) -> None:
    """Register the tiny model in the server's data dir, through the Python API, as the kernel will see it."""
    from ancia_jupyter.app import close_app

    saved = {k: os.environ.get(k) for k in ("ANCIA_DATA_DIR", "ANCIA_MODELS_DIR")}
    os.environ.update({k: env[k] for k in saved})
    try:
        import ancia_jupyter as ancia
        from ancia_jupyter.app import get_app

        ancia.models.register("tiny", str(model_dir), title="Tiny random llama")
        ancia.models.select("tiny")
        ancia.models.set_params("tiny", **TINY_PARAMS)
        tools = get_app().tools
        for tool in tools.list() if tools is not None else []:
            get_app().store.set_tool_enabled(tool["name"], False)
    finally:
        close_app()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    data_dir: Path

    def notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook into the server's root; returns its name."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ancia tests)",
                                     "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
        nbformat.write(nb, self.root / name)
        return name

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            data = response.read()
        return json.loads(data) if data else None


@pytest.fixture(scope="session")
def lab(tmp_path_factory, tiny_model_dir) -> Iterator[Lab]:
    from sidebar_fixtures import build_panel  # here, not above: test modules load it as a plugin

    build_panel()  # the kernel imports widget.py from this checkout, which serves the built bundle
    base = tmp_path_factory.mktemp("lab")
    dirs = {name: base / name for name in ("config", "data", "runtime", "settings", "workspaces", "ipython",
                                           "root", "ancia", "models")}
    for path in dirs.values():
        path.mkdir()
    kernel = dirs["data"] / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({  # this venv's Python, importing this working tree
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ancia tests)", "language": "python", "env": {"PYTHONPATH": str(REPO)}}))
    for name, values in SETTINGS.items():  # user settings of this server only
        path = dirs["settings"] / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
           "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]), "IPYTHONDIR": str(dirs["ipython"]),
           "ANCIA_DATA_DIR": str(dirs["ancia"]), "ANCIA_MODELS_DIR": str(dirs["models"]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for name in ("ANCIA_OFFLINE", "ANCIA_ENABLE_MODEL_EAGER_LOAD", "ANCIA_PLUGIN_REGISTRY_URL"):
        env.pop(name, None)
    register_tiny(env, tiny_model_dir)
    port, token = free_port(), secrets.token_hex(16)
    log = open(base / "server.log", "w")  # noqa: SIM115 - the server writes to it until the session ends
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={dirs['root']}",
         "--LabApp.expose_app_in_browser=True"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, dirs["root"], dirs["ancia"])
    deadline = time.monotonic() + 60
    while True:
        try:
            lab.api("/api/status")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"JupyterLab did not start: {(base / 'server.log').read_text()[-3000:]}")
            time.sleep(0.25)
    try:
        yield lab
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


class Notebook:
    """One notebook open in JupyterLab, with the steps the tests repeat."""

    def __init__(self, page: Any, lab: Lab, name: str) -> None:
        self.page, self.lab, self.name = page, lab, name

    def open(self) -> Notebook:
        self.page.goto(f"{self.lab.url}/lab/tree/{self.name}?reset&token={self.lab.token}")
        self.page.locator(f"{VISIBLE} .jp-Cell").first.wait_for()
        self.wait_idle()
        return self

    def wait_idle(self) -> None:
        self.page.locator(f"{VISIBLE} .jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()

    def run(self, index: int) -> None:
        """Run one cell and wait until it ran. Clicking inside a widget makes its cell active, so the cell
        is selected first; a run sent while the kernel connection is still settling can be dropped without a
        trace (the prompt stays ``[ ]``), so it is sent again then."""
        cell = self.page.locator(f"{VISIBLE} .jp-Cell").nth(index)
        prompt = cell.locator(".jp-InputPrompt")
        before = prompt.inner_text()
        for _ in range(4):
            cell.locator(".jp-InputArea-editor").click()
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("Shift+Enter")
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                text = prompt.inner_text()
                if re.search(r"\[\d+\]", text) and text != before:
                    return
                self.page.wait_for_timeout(100)
            if "*" in prompt.inner_text():
                prompt.filter(has_text=re.compile(r"\[\d+\]")).wait_for()
                return
        raise AssertionError(f"cell {index} did not run")

    def save(self) -> None:
        self.page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
        self.page.locator(".jp-mod-current.jp-mod-dirty").wait_for(state="detached")

    @property
    def panel(self) -> Any:
        return self.page.locator(f"{VISIBLE} .ancia-chat").first

    def show_panel(self, index: int = 0) -> Any:
        self.run(index)
        self.panel.wait_for()
        self.panel.get_by_role("status", name="Model state").wait_for()
        return self.panel


@pytest.fixture
def notebook(page, lab) -> Any:
    """Make a notebook of ``cells`` and open it: ``notebook("name.ipynb", [PANEL_CELL])``."""

    def open_notebook(name: str, cells: list[str]) -> Notebook:
        return Notebook(page, lab, lab.notebook(name, cells)).open()

    return open_notebook


@pytest.fixture
def tiny_params(lab, monkeypatch) -> Iterator[None]:
    """For a test that changes the tiny model's params in the server's store: they are put back after it."""
    yield
    monkeypatch.setenv("ANCIA_DATA_DIR", str(lab.data_dir))
    import ancia_jupyter as ancia

    ancia.models.set_params("tiny", **TINY_PARAMS)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser, request) -> Iterator[Any]:
    """A fresh browser context; a failed test leaves a screenshot and the console in test-artifacts/."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  permissions=["clipboard-read", "clipboard-write"])
    context.set_default_timeout(30_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))
    try:
        yield page
    finally:
        if request.node.stash.get(FAILED, False):
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^\w.-]", "_", request.node.name)
            page.screenshot(path=str(ARTIFACTS / f"failed-{name}.png"))
            (ARTIFACTS / f"failed-{name}.log").write_text("\n".join(console))
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
