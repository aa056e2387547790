"""The JupyterLab sidebar ships inside the wheel as a prebuilt extension, at the Python package's version,
beside the in-notebook panel's bundle made by the same build; the kernel end of the sidebar's comm hands
each sidebar its own PanelSession."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ancia_jupyter
from ancia_jupyter.notebook import comm as ancia_comm

REPO = Path(__file__).resolve().parent.parent
SHARE = "share/jupyter/labextensions/ancia-jupyter"


def _pyproject_version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    project = text.split("[project]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', project, re.MULTILINE)
    assert match, "pyproject.toml has no [project] version"
    return match.group(1)


def test_one_version_for_python_and_javascript():
    package = json.loads((REPO / "package.json").read_text())
    assert package["version"] == ancia_jupyter.__version__ == _pyproject_version()
    assert package["name"] == "ancia-jupyter"
    assert package["jupyterlab"]["outputDir"] == "ancia_jupyter/labextension"
    assert ancia_jupyter._jupyter_labextension_paths() == [{"src": "labextension", "dest": package["name"]}]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from this checkout the way CI and ``pip install .`` build it (with the hook)."""
    out = tmp_path_factory.mktemp("wheel")
    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SKIP_JUPYTER_BUILDER", None)
    env.pop("HATCH_JUPYTER_BUILDER_SKIP_NPM", None)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--disable-pip-version-check", "-w", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    (built,) = out.glob("ancia_jupyter-*.whl")
    return built


def _data(names: list[str]) -> dict[str, str]:
    """Files under the wheel's share/jupyter/labextensions/ancia-jupyter, by their path below it."""
    prefix = f"ancia_jupyter-{ancia_jupyter.__version__}.data/data/{SHARE}/"
    return {n[len(prefix):]: n for n in names if n.startswith(prefix)}


def test_wheel_carries_the_prebuilt_extension_at_the_python_version(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        files = _data(zf.namelist())
        package = json.loads(zf.read(files["package.json"]))
        install = json.loads(zf.read(files["install.json"]))
        entry = package["jupyterlab"]["_build"]["load"]
    assert package["name"] == "ancia-jupyter"
    assert package["version"] == ancia_jupyter.__version__
    assert re.fullmatch(r"static/remoteEntry\.[0-9a-f]+\.js", entry)
    assert entry in files, f"{entry} is missing from the wheel"
    assert "static/style.js" in files
    assert {"schemas/ancia-jupyter/sidebar.json", "schemas/ancia-jupyter/send-cell.json"} <= set(files)
    assert install == {
        "packageManager": "python", "packageName": "ancia-jupyter",
        "uninstallInstructions": install["uninstallInstructions"],
    }
    assert not any(".map" in name for name in files), "the wheel carries a development build"


def test_wheel_bundle_is_built_from_the_shared_chat_ui(wheel: Path):
    """The sidebar bundles ancia_jupyter/notebook/static/chat-ui.js and chat.css, not a copy of its own."""
    css = (REPO / "ancia_jupyter" / "notebook" / "static" / "chat.css").read_text()
    classes = set(re.findall(r"\.(ancia-[a-z-]+)", css))
    assert classes
    with zipfile.ZipFile(wheel) as zf:
        files = _data(zf.namelist())
        bundle = "".join(zf.read(n).decode() for p, n in files.items() if p.startswith("static/") and p.endswith(".js"))
        shortcuts = json.loads(zf.read(files["schemas/ancia-jupyter/sidebar.json"]))["jupyter.lab.shortcuts"]
        menu = json.loads(zf.read(files["schemas/ancia-jupyter/send-cell.json"]))["jupyter.lab.menus"]["context"]
    assert all(name in bundle for name in classes), "chat.css is not in the bundle"
    assert "Ask anything" in bundle and "Load Ancia in this kernel" in bundle
    assert {"command": "ancia:open", "keys": ["Accel Shift A"], "selector": "body"} in shortcuts
    assert [item["command"] for item in menu] == ["ancia:send-cell"]


def _node_module_exports(source: str, tmp_path: Path) -> dict:
    """Import ``source`` as an ES module in Node; what it exports, by name, with each value's type."""
    path = tmp_path / "panel.mjs"
    path.write_text(source)
    code = (f"const m = await import({json.dumps(path.as_uri())});\n"
            "console.log(JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => "
            "[k, Object.fromEntries(Object.entries(v).map(([kk, vv]) => [kk, typeof vv]))]))));")
    done = subprocess.run(["node", "--input-type=module", "-e", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_wheel_carries_the_panel_bundle_built_from_the_shared_chat_ui(wheel: Path, tmp_path: Path):
    """The panel's ES module and stylesheet come from the build (not joined at import time): one
    self-contained production module whose default export is anywidget's ``{ render }``."""
    css = (REPO / "ancia_jupyter" / "notebook" / "static" / "chat.css").read_text()
    classes = set(re.findall(r"\.(ancia-[a-z-]+)", css))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"ancia_jupyter/notebook/bundle/panel.js", "ancia_jupyter/notebook/bundle/panel.css"} <= names
        esm = zf.read("ancia_jupyter/notebook/bundle/panel.js").decode()
        styles = zf.read("ancia_jupyter/notebook/bundle/panel.css").decode()
    assert not any(name.endswith(".map") for name in names), "the wheel carries a development build"
    assert "sourceMappingURL" not in esm + styles
    assert not re.search(r"""(^|[;}\s])import\s*[\w{*(\s]""", esm), "the bundle imports other modules"
    assert "Ask anything" in esm
    assert all(name in styles for name in classes), "chat.css is not in the panel's stylesheet"
    assert _node_module_exports(esm, tmp_path) == {"default": {"render": "function"}}


def test_the_panel_widget_serves_the_built_bundle(tmp_path: Path):
    from ancia_jupyter.notebook.widget import BUNDLE, ChatPanel

    assert str(ChatPanel._esm) == (BUNDLE / "panel.js").read_text()
    assert str(ChatPanel._css) == (BUNDLE / "panel.css").read_text()
    assert _node_module_exports(str(ChatPanel._esm), tmp_path) == {"default": {"render": "function"}}


def test_wheel_extension_is_listed_enabled_by_jupyterlab(wheel: Path, tmp_path: Path):
    # What pip does with a wheel's data files: copy them under the environment's prefix. (Not pip itself:
    # `pip install --prefix` would uninstall the package from the environment running this test.)
    prefix = tmp_path / "prefix"
    with zipfile.ZipFile(wheel) as zf:
        for path, name in _data(zf.namelist()).items():
            target = prefix / SHARE / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    env = {**os.environ, "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"], env=env,
                            capture_output=True, text=True, check=True)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # no colours
    line = next((ln for ln in listing.splitlines() if "ancia-jupyter" in ln), "")
    assert str(prefix) in listing
    assert re.search(rf"ancia-jupyter v{re.escape(ancia_jupyter.__version__)} enabled\s+OK\s+\(python, ancia-jupyter\)", line), listing


# -- the kernel end of the sidebar's comm ----------------------------------------------------------------


class FakeComm:
    """What ``comm`` hands a target: an id, send, on_msg, on_close, close."""

    def __init__(self, comm_id: str = "c1") -> None:
        self.comm_id = comm_id
        self.sent: list[dict] = []
        self.closed_with: dict | None = None
        self.msg_callback = self.close_callback = None

    def send(self, data: dict) -> None:
        self.sent.append(data)

    def on_msg(self, callback) -> None:
        self.msg_callback = callback

    def on_close(self, callback) -> None:
        self.close_callback = callback

    def close(self, data: dict | None = None) -> None:
        self.closed_with = data or {}

    def replies(self) -> list[dict]:
        return [m for m in self.sent if m.get("type") == "reply"]


def _open(comm: FakeComm, data: dict | None = None) -> None:
    ancia_comm._on_open(comm, {"content": {"comm_id": comm.comm_id, "target_name": "ancia", "data": data or {}}})


def test_comm_target_registration_is_idempotent():
    from comm import get_comm_manager

    manager = get_comm_manager()
    try:
        ancia_comm.register_comm_target()
        ancia_comm.register_comm_target()
        assert manager.targets["ancia"] is ancia_comm._on_open
    finally:
        ancia_comm.unregister_comm_target()
    assert "ancia" not in manager.targets


def test_comm_routes_requests_to_its_own_session_and_closes_it(tiny):
    first, second = FakeComm("c1"), FakeComm("c2")
    _open(first, {"type": "request", "id": -1, "action": "state"})
    _open(second)
    try:
        assert ancia_comm.open_sessions() == 2
        (probe,) = first.replies()
        assert probe["id"] == -1 and probe["ok"] is True
        assert probe["data"]["version"] == ancia_jupyter.__version__
        assert probe["data"]["selected_model"] == "tiny"
        assert second.replies() == []

        second.msg_callback({"content": {"comm_id": "c2", "data": {"type": "request", "id": 7, "action": "new_chat",
                                                                    "title": "From the sidebar"}}})
        (reply,) = second.replies()
        assert reply["id"] == 7 and reply["ok"] is True
        assert [c["title"] for c in reply["data"]["chats"]] == ["From the sidebar"]

        second.msg_callback({"content": {"comm_id": "c2", "data": {"type": "request", "id": 8, "action": "nope"}}})
        assert second.replies()[-1] == {"type": "reply", "id": 8, "ok": False, "error": "Unknown action 'nope'."}

        second.close_callback({"content": {"comm_id": "c2", "data": {}}})
        assert ancia_comm.open_sessions() == 1
    finally:
        ancia_comm.unregister_comm_target()
    assert ancia_comm.open_sessions() == 0
    assert first.closed_with == {}


def test_comm_that_cannot_start_a_session_closes_with_the_reason(monkeypatch):
    from ancia_jupyter.notebook import panel_session as session

    def broken(send):
        raise RuntimeError("The store at /nowhere cannot be opened:\n  disk full")

    monkeypatch.setattr(session, "PanelSession", broken)
    comm = FakeComm()
    _open(comm)
    assert comm.closed_with == {"error": "The store at /nowhere cannot be opened: disk full"}
    assert ancia_comm.open_sessions() == 0
