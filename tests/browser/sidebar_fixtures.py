"""Fixtures for the sidebar's browser tests: this checkout's labextension (built when stale), a JupyterLab
server of the test's own whose kernels share the test's ANCIA_DATA_DIR, and a model that never stops
talking (to stop it). Chromium and the page come from conftest.py, whose panel tests take the panel's
bundle from ``build_panel`` here.

A test module uses them with ``pytest_plugins = ["sidebar_fixtures"]``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABEXTENSION = REPO / "ancia_jupyter" / "labextension"
PANEL_BUNDLE = REPO / "ancia_jupyter" / "bundle"
# What each bundle is built from: a change in any of them means the bundle is stale.
BUILD_INPUTS = [REPO / "labextension" / "src", REPO / "labextension" / "style", REPO / "labextension" / "schema",
                REPO / "ancia_jupyter" / "static", REPO / "package.json"]
PANEL_INPUTS = [REPO / "ancia_jupyter" / "static", REPO / "labextension" / "build-panel.mjs", REPO / "package.json"]
ARTIFACTS = REPO / "test-artifacts" / "sidebar"
VENV_BIN = Path(sys.executable).parent
NOTIFICATIONS = {"fetchNews": "false", "checkForUpdates": False}


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
    if _stale(LABEXTENSION, "package.json", BUILD_INPUTS):
        _npm_run("build")
    return LABEXTENSION


def build_panel() -> Path:
    """The in-notebook panel's bundle (widget.py's ``_esm`` and ``_css``), built with
    ``npm run build:panel:dev`` when missing or older than its sources."""
    if _stale(PANEL_BUNDLE, "panel.js", PANEL_INPUTS):
        _npm_run("build:panel:dev")
    return PANEL_BUNDLE


@pytest.fixture(scope="session")
def labextension() -> Path:
    return build_labextension()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook(self, name: str, *sources: str) -> str:
        """Write a notebook with these code cells (one empty cell by default) and return its name."""
        import nbformat

        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(s) for s in (sources or ("",))]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
        nbformat.write(nb, self.root / name)
        return name

    def tree(self, path: str = "") -> str:
        """The URL that opens ``path`` (a notebook; none: just JupyterLab) in a fresh workspace."""
        where = f"/lab/tree/{path}" if path else "/lab"
        return f"{self.url}{where}?reset&token={self.token}"


@pytest.fixture
def sidebar_lab(tmp_path: Path, labextension: Path) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with its own Jupyter dirs; this checkout's sidebar comes first in its
    labextension path, and its kernels inherit the test's ANCIA_DATA_DIR / ANCIA_MODELS_DIR."""
    home = tmp_path / "jupyter"
    data = home / "data"
    (data / "labextensions").mkdir(parents=True)
    (data / "labextensions" / "ancia-jupyter").symlink_to(labextension, target_is_directory=True)
    settings = home / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps(NOTIFICATIONS))
    root = tmp_path / "notebooks"
    root.mkdir()
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(data),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    env.pop("JUPYTER_PATH", None)
    log = tmp_path / "jupyterlab.log"
    args = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
        # before the environment's labextensions, where `pip install` put a copy of some earlier build
        f"--LabApp.extra_labextensions_path={data / 'labextensions'}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(args, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited early:\n{log.read_text()[-3000:]}")
            try:
                request = urllib.request.Request(f"{url}/api/status", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Lab(url=url, token=token, root=root, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def shot(page):
    """``shot(name)`` saves a screenshot of the page now, as test-artifacts/sidebar/<name>.png."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path

    return take


def build_endless_model(path: Path, hidden: int = 256, layers: int = 6) -> Path:
    """A random llama that cannot end an answer (the special tokens' output rows are zero) and is slow
    enough on CPU (tens of tokens a second) that a test can stop it mid-answer."""
    import mlx.core as mx
    from mlx.utils import tree_flatten, tree_unflatten
    from mlx_lm.models import llama
    from tiny_model import build_tokenizer

    path.mkdir(parents=True, exist_ok=True)
    vocab = build_tokenizer(path)
    special = [t["id"] for t in json.loads((path / "tokenizer.json").read_text())["added_tokens"]]
    config = {
        "model_type": "llama", "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": 2 * hidden,
        "num_attention_heads": 8, "num_key_value_heads": 4, "rms_norm_eps": 1e-5, "vocab_size": vocab,
        "max_position_embeddings": 8192, "rope_theta": 10000.0, "tie_word_embeddings": False,
    }
    mx.random.seed(1)
    model = llama.Model(llama.ModelArgs.from_dict(config))
    model.update(tree_unflatten([(k, mx.random.normal(v.shape) * (1.0 if "embed" in k else 0.3))
                                 for k, v in tree_flatten(model.parameters()) if "norm" not in k]))
    weights = dict(tree_flatten(model.parameters()))
    keep = mx.ones((vocab, 1))
    keep[mx.array(special)] = 0.0
    weights["lm_head.weight"] = weights["lm_head.weight"] * keep
    mx.save_safetensors(str(path / "model.safetensors"), weights)
    (path / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((path / "tokenizer_config.json").read_text())
    tokenizer_config["model_max_length"] = 8192
    (path / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return path


@pytest.fixture(scope="session")
def endless_model_dir(tmp_path_factory) -> Path:
    return build_endless_model(tmp_path_factory.mktemp("endless") / "endless-llama")


@pytest.fixture
def endless_model(endless_model_dir) -> str:
    """The endless model, registered as ``endless`` and selected, with room for a long answer."""
    import ancia_jupyter as ancia

    ancia.models.register("endless", str(endless_model_dir), title="Endless random llama")
    ancia.models.select("endless")
    ancia.models.set_params("endless", temperature=0.0, max_tokens=2000, context_window=4096)
    return "endless"


__all__ = ["Lab", "build_labextension", "build_panel", "endless_model", "endless_model_dir", "labextension", "shot", "sidebar_lab"]
