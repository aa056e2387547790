"""Plugins: real wheels served from a registry on 127.0.0.1, installed, updated, broken and removed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import zipfile
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import ancia_jupyter as ancia
from ancia_jupyter.app import close_app, user_tools
from ancia_jupyter.errors import NotFoundError, PluginError, ToolError

REPO = Path(__file__).resolve().parent.parent


def make_wheel(folder: Path, dist: str, version: str, files: dict[str, str], entry_point: str | None) -> Path:
    """A real wheel, zipped by hand: the modules, and a .dist-info (METADATA, WHEEL, entry points, RECORD)."""
    info = f"{dist}-{version}.dist-info"
    contents = dict(files)
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    contents[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                                 "Tag: py3-none-any\n")
    if entry_point:
        contents[f"{info}/entry_points.txt"] = f"[ancia_jupyter.plugins]\nmain = {entry_point}\n"
    contents[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in contents) + f"{info}/RECORD,,\n"
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in contents.items():
            archive.writestr(name, text)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


GREETER_V1 = '''
def hello(name: str) -> str:
    """Greet someone."""
    return f"hello {name} from v1"

def register(registry):
    registry.register(hello, name="greeter.hello")
'''

GREETER_V2 = '''
def hello(name: str, shout: bool = False) -> str:
    """Greet someone, loudly if asked."""
    text = f"hello {name} from v2"
    return text.upper() if shout else text

def register(registry):
    registry.register(hello, name="greeter.hello")
'''

BROKEN = '''
raise RuntimeError("this plugin is broken on purpose")
'''

DECORATED = '''
import ancia_jupyter as ancia

@ancia.tool(name="dice.roll", description="Roll a fair die.")
def roll(sides: int = 6) -> int:
    return sides  # deterministic for the test

def helper():
    return "not a tool"
'''


class Registry:
    """A folder of wheels plus registry.json, served over HTTP on 127.0.0.1; requests are recorded."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        self.entries: dict[str, dict] = {}
        owner = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self):
                owner.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/registry.json"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def publish(self, plugin_id: str, wheel: Path, version: str, sha256: str | None = None, **extra) -> None:
        self.entries[plugin_id] = {"id": plugin_id, "version": version, "description": f"{plugin_id} tools",
                                   "network": False, "wheel_url": wheel.name, "sha256": sha256 or sha(wheel),
                                   **extra}
        (self.root / "registry.json").write_text(json.dumps({"plugins": list(self.entries.values())}))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def registry(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    served = Registry(root)
    (root / "registry.json").write_text(json.dumps({"plugins": []}))
    ancia.plugins.set_registry_url(served.url)
    yield served
    served.close()


def tool_names() -> list[str]:
    return [t["name"] for t in ancia.tools.list()]


def test_install_update_uninstall(registry, ancia_home):
    v1 = make_wheel(registry.root, "greeter", "1.0.0", {"greeter_plugin/__init__.py": GREETER_V1},
                    "greeter_plugin:register")
    registry.publish("greeter", v1, "1.0.0")
    assert ancia.plugins.registry() == [{
        "id": "greeter", "version": "1.0.0", "description": "greeter tools", "network": False,
        "wheel_url": registry.url.replace("registry.json", v1.name), "sha256": sha(v1), "installed": None}]

    info = ancia.plugins.install("greeter")
    assert (info["version"], info["enabled"], info["error"], info["tools"]) == ("1.0.0", True, None,
                                                                                 ["greeter.hello"])
    folder = ancia_home / "plugins" / "greeter"
    assert Path(info["path"]) == folder and (folder / "greeter_plugin" / "__init__.py").is_file()
    assert "greeter.hello" in tool_names()
    assert ancia.tools.call("greeter.hello", name="Ada") == "hello Ada from v1"
    assert {t["name"]: t["source"] for t in ancia.tools.list()}["greeter.hello"] == "plugin:greeter"
    assert ancia.plugins.registry()[0]["installed"] == "1.0.0"
    with pytest.raises(PluginError, match="already installed"):
        ancia.plugins.install("greeter")

    close_app()  # a restarted kernel loads installed plugins again
    assert ancia.tools.call("greeter.hello", name="Bo") == "hello Bo from v1"

    v2 = make_wheel(registry.root, "greeter", "2.0.0", {"greeter_plugin/__init__.py": GREETER_V2},
                    "greeter_plugin:register")
    registry.publish("greeter", v2, "2.0.0")
    assert ancia.plugins.update() == [{"id": "greeter", "from": "1.0.0", "to": "2.0.0"}]
    assert ancia.tools.call("greeter.hello", name="Ada", shout=True) == "HELLO ADA FROM V2"
    assert ancia.plugins.list()[0]["version"] == "2.0.0"
    assert ancia.plugins.update("greeter") == []  # already current
    assert sorted(p.name for p in (ancia_home / "plugins").iterdir()) == ["greeter"]  # no staging left

    ancia.plugins.uninstall("greeter")
    assert "greeter.hello" not in tool_names() and not folder.exists()
    assert ancia.plugins.list() == []
    assert str(folder) not in sys.path and "greeter_plugin" not in sys.modules
    with pytest.raises(ToolError, match="unknown tool"):
        ancia.tools.call("greeter.hello", name="Ada")
    with pytest.raises(NotFoundError, match="not installed"):
        ancia.plugins.uninstall("greeter")


def test_a_wrong_sha256_installs_nothing(registry, ancia_home):
    wheel = make_wheel(registry.root, "tampered", "1.0.0", {"tampered_plugin.py": GREETER_V1},
                       "tampered_plugin:register")
    registry.publish("tampered", wheel, "1.0.0", sha256="0" * 64)
    with pytest.raises(PluginError, match="does not match the registry's sha256.*nothing was installed"):
        ancia.plugins.install("tampered")
    assert ancia.plugins.list() == []
    assert "greeter.hello" not in tool_names()
    assert not (ancia_home / "plugins").exists() or list((ancia_home / "plugins").iterdir()) == []
    assert "tampered_plugin" not in sys.modules


def test_a_plugin_that_fails_to_load_is_recorded_and_disabled(registry):
    good = make_wheel(registry.root, "greeter", "1.0.0", {"greeter_plugin/__init__.py": GREETER_V1},
                      "greeter_plugin:register")
    bad = make_wheel(registry.root, "broken", "0.1.0", {"broken_plugin.py": BROKEN}, "broken_plugin:register")
    registry.publish("greeter", good, "1.0.0")
    registry.publish("broken", bad, "0.1.0")
    ancia.plugins.install("greeter")
    with pytest.raises(PluginError, match="installed but failed to load.*broken on purpose"):
        ancia.plugins.install("broken")
    listed = {p["id"]: p for p in ancia.plugins.list()}
    assert listed["broken"]["enabled"] is False
    assert listed["broken"]["error"] == "RuntimeError: this plugin is broken on purpose"
    assert ancia.tools.call("greeter.hello", name="Ada") == "hello Ada from v1"
    assert ancia.tools.call("system.time")
    close_app()  # disabled: not loaded again at start, the others are
    assert "greeter.hello" in tool_names()
    with pytest.raises(PluginError, match="stays disabled"):
        ancia.plugins.enable("broken")
    ancia.plugins.disable("greeter")
    assert "greeter.hello" not in tool_names()
    assert ancia.plugins.enable("greeter")["tools"] == ["greeter.hello"]


def test_a_module_entry_point_exposes_its_decorated_tools(registry):
    wheel = make_wheel(registry.root, "dice", "1.0.0", {"dice_plugin.py": DECORATED}, "dice_plugin")
    registry.publish("dice", wheel, "1.0.0")
    assert ancia.plugins.install("dice")["tools"] == ["dice.roll"]
    assert ancia.tools.call("dice.roll", sides=20) == "20"
    assert user_tools().names() == []  # a plugin's tools are not the user's own
    ancia.plugins.uninstall("dice")
    assert "dice.roll" not in tool_names()


def test_a_wheel_without_an_entry_point_or_with_unsafe_paths_is_refused(registry, ancia_home):
    plain = make_wheel(registry.root, "plain", "1.0.0", {"plain.py": "X = 1\n"}, None)
    registry.publish("plain", plain, "1.0.0")
    with pytest.raises(PluginError, match="declares no 'ancia_jupyter.plugins' entry point"):
        ancia.plugins.install("plain")
    evil = make_wheel(registry.root, "evil", "1.0.0", {"../../escaped.py": "X = 1\n"}, "escaped:register")
    registry.publish("evil", evil, "1.0.0")
    with pytest.raises(PluginError, match="unsafe path '../../escaped.py'"):
        ancia.plugins.install("evil")
    assert not (ancia_home / "escaped.py").exists() and not (ancia_home.parent / "escaped.py").exists()
    with pytest.raises(NotFoundError, match="No plugin 'absent' in the registry"):
        ancia.plugins.install("absent")


def test_registry_documents_from_files_and_their_errors(tmp_path):
    wheel = make_wheel(tmp_path, "greeter", "1.0.0", {"greeter_plugin/__init__.py": GREETER_V1},
                       "greeter_plugin:register")
    document = tmp_path / "registry.json"
    document.write_text(json.dumps({"plugins": [{"id": "greeter", "version": "1.0.0", "wheel_url": wheel.name,
                                                 "sha256": sha(wheel)}]}))
    assert ancia.plugins.set_registry_url(str(document)) == str(document)
    assert ancia.plugins.registry()[0]["wheel_url"] == str(wheel)
    ancia.plugins.install("greeter")
    assert ancia.tools.call("greeter.hello", name="file") == "hello file from v1"
    document.write_text("{not json")
    with pytest.raises(PluginError, match="is not valid JSON"):
        ancia.plugins.registry()
    document.write_text(json.dumps({"plugins": [{"id": "x", "version": "1"}]}))
    with pytest.raises(PluginError, match="malformed entry"):
        ancia.plugins.registry()
    assert ancia.plugins.set_registry_url(None).endswith("default_registry.json")
    assert [e["id"] for e in ancia.plugins.registry()] == ["files", "pydoc"]  # the plugins shipped with ancia


def test_the_example_plugin_builds_and_installs(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(REPO / "examples" / "ancia-plugin-example")], check=True)
    wheel = next(dist.glob("ancia_plugin_example-1.0.0-*.whl"))
    document = tmp_path / "registry.json"
    entry = {"id": "text-stats", "version": "1.0.0", "wheel_url": str(wheel), "sha256": sha(wheel),
             "description": "Text statistics"}
    document.write_text(json.dumps({"plugins": [entry]}))
    ancia.plugins.set_registry_url(str(document))
    assert ancia.plugins.install("text-stats")["tools"] == ["text.reading_time", "text.word_count"]
    counted = json.loads(ancia.tools.call("text.word_count", text="The cat and the hat", top=1))
    assert counted == {"words": 5, "distinct": 4, "most_common": [["the", 2]]}
    assert ancia.tools.call("text.reading_time", text="word " * 460) == "about 2 minute(s)"
    schema = ancia.tools.schema("text.word_count")["function"]
    assert schema["name"] == "text_word_count"
    assert schema["parameters"]["properties"]["top"] == {
        "type": "integer", "description": "How many of the most frequent words to list.", "default": 5}
    ancia.plugins.uninstall("text-stats")
