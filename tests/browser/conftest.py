"""Fixtures for tests that use the chat panel and the sidebar in JupyterLab the way a person does:
Debian's Chromium driven by Playwright, and JupyterLab servers of the tests' own (``lab.JupyterLab``).

- ``lab``: one server for the whole session, with ancia data and models dirs of its own, where the tiny model
  is registered greedy and short, with the built-in tools off so that its small context window holds the
  prompt. ``notebook`` opens a notebook in it.
- ``sidebar_lab``: a server per test whose kernels use the test's ANCIA_DATA_DIR and ANCIA_MODELS_DIR, so
  the models a test registers (``tiny``, ``endless_model``) are the ones its kernels see. Cells and kernels
  script the model's answers with tests/scripted.py (on their PYTHONPATH).
- ``notebook7``: the same as a Jupyter Notebook 7 server (``notebook7.Notebook7``); ``front_end`` is each of
  the two in turn, for what a test checks in both.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lab import JupyterLab, Notebook, build_labextension, build_panel
from notebook7 import Notebook7

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TINY_PARAMS = {"temperature": 0.0, "max_tokens": 24, "context_window": 1024}
FAILED = pytest.StashKey[bool]()


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


@pytest.fixture
def shot(page, artifacts) -> Callable[[str], Path]:
    """``shot(name)`` saves a screenshot of the page now, as test-artifacts/sidebar/<name>.png."""

    def take(name: str) -> Path:
        path = artifacts / "sidebar" / f"{name}.png"
        path.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(path))
        return path

    return take


@pytest.fixture(scope="session")
def labextension() -> Path:
    """This checkout's build of the sidebar, the one every test server serves."""
    return build_labextension()


def register_tiny(lab: JupyterLab, model_dir: Path) -> None:
    """Register the tiny model in the server's data dir, through the Python API, as the kernels will see it."""
    from ancia_jupyter.app import close_app

    dirs = {"ANCIA_DATA_DIR": str(lab.data_dir), "ANCIA_MODELS_DIR": str(lab.models_dir)}
    saved = {k: os.environ.get(k) for k in dirs}
    os.environ.update(dirs)
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


@pytest.fixture(scope="session")
def lab(tmp_path_factory, tiny_model_dir, labextension) -> Iterator[JupyterLab]:
    build_panel()  # the kernel imports widget.py from this checkout, which serves the built bundle
    home = tmp_path_factory.mktemp("lab")
    server = JupyterLab(home, (home / "ancia", home / "models"))
    register_tiny(server, tiny_model_dir)
    with server:
        yield server


@pytest.fixture
def notebook(page, lab) -> Callable[[str, list[str]], Notebook]:
    """Make a notebook of ``cells`` in ``lab`` and open it: ``notebook("name.ipynb", [PANEL_CELL])``."""

    def open_notebook(name: str, cells: list[str]) -> Notebook:
        return Notebook(page, lab, lab.notebook(name, *cells)).open()

    return open_notebook


@pytest.fixture
def tiny_params(lab, monkeypatch) -> Iterator[None]:
    """For a test that changes the tiny model's params in the server's store: they are put back after it."""
    yield
    monkeypatch.setenv("ANCIA_DATA_DIR", str(lab.data_dir))
    import ancia_jupyter as ancia

    ancia.models.set_params("tiny", **TINY_PARAMS)


@pytest.fixture
def sidebar_lab(tmp_path, labextension) -> Iterator[JupyterLab]:
    """A server of this test's own; its kernels use the test's ANCIA_DATA_DIR and ANCIA_MODELS_DIR."""
    dirs = (Path(os.environ["ANCIA_DATA_DIR"]), Path(os.environ["ANCIA_MODELS_DIR"]))
    with JupyterLab(tmp_path / "lab", dirs) as server:
        yield server


@pytest.fixture
def notebook7(tmp_path, labextension) -> Iterator[Notebook7]:
    """A Notebook 7 server of this test's own, like ``sidebar_lab``."""
    dirs = (Path(os.environ["ANCIA_DATA_DIR"]), Path(os.environ["ANCIA_MODELS_DIR"]))
    with Notebook7(tmp_path / "notebook7", dirs) as server:
        yield server


@pytest.fixture(params=[JupyterLab, Notebook7], ids=["jupyterlab", "notebook7"])
def front_end(request, tmp_path, labextension) -> Iterator[JupyterLab]:
    """JupyterLab, then Notebook 7: a server of this test's own, like ``sidebar_lab``."""
    dirs = (Path(os.environ["ANCIA_DATA_DIR"]), Path(os.environ["ANCIA_MODELS_DIR"]))
    with request.param(tmp_path / "server", dirs) as server:
        yield server


@pytest.fixture
def endless_model(sidebar_lab, tiny) -> str:
    """The tiny model with room for a long answer, in a server whose kernels script every answer to go on
    without end at a token every 30 ms (tests/scripted.py), so that a test can stop it mid-answer."""
    import ancia_jupyter as ancia

    sidebar_lab.at_kernel_start("from scripted import endless, install, slow\ninstall(endless(), slow(0.03))\n")
    ancia.models.set_params(tiny, max_tokens=2000, context_window=2048)
    return tiny
