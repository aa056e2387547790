"""A plugin cannot take ancia down: whatever its code raises, on import, on register or when its tools are
called (``SystemExit``, ``KeyboardInterrupt`` and other ``BaseException`` included), it is recorded as
the plugin's failure, ancia keeps starting, and the plugin can always be uninstalled."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_plugins import GREETER_V1, make_wheel, sha

import ancia_jupyter as ancia
from ancia_jupyter.app import close_app, get_app
from ancia_jupyter.errors import PluginError, ToolError

RAISES = {
    "SystemExit": ('raise SystemExit("plugin wants out")', "SystemExit: plugin wants out"),
    "KeyboardInterrupt": ('raise KeyboardInterrupt("stop")', "KeyboardInterrupt: stop"),
    "GeneratorExit": ("raise GeneratorExit", "GeneratorExit"),
    "a BaseException of its own": ('raise type("Doom", (BaseException,), {})("the end")', "Doom: the end"),
}

CALL_TIME = '''
import asyncio

class Haunted:
    def __repr__(self):
        raise SystemExit("boo")

def leave() -> str:
    """Exits."""
    raise SystemExit(3)

def interrupt() -> str:
    """Interrupts."""
    raise KeyboardInterrupt

async def leave_later() -> str:
    """Exits, asynchronously."""
    await asyncio.sleep(0)
    raise SystemExit("async exit")

def haunted() -> object:
    """Returns something that cannot be shown."""
    return Haunted()

def register(registry):
    for func in (leave, interrupt, leave_later, haunted):
        registry.register(func, name=f"bad.{func.__name__}")
'''


@pytest.fixture
def publish(tmp_path, monkeypatch):
    """Put wheels in a registry file and point ancia at it."""
    document = tmp_path / "registry.json"
    entries: dict[str, dict] = {}

    def add(plugin_id: str, files: dict[str, str], entry_point: str = "plugin_mod:register") -> Path:
        wheel = make_wheel(tmp_path, plugin_id, "1.0.0", files, entry_point)
        entries[plugin_id] = {"id": plugin_id, "version": "1.0.0", "wheel_url": str(wheel), "sha256": sha(wheel)}
        document.write_text(json.dumps({"plugins": list(entries.values())}))
        return wheel

    monkeypatch.setenv("ANCIA_PLUGIN_REGISTRY_URL", str(document))
    yield add
    for name, module in list(sys.modules.items()):  # what this test's plugins left, as a new kernel would
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    sys.path[:] = [entry for entry in sys.path if not entry.startswith(str(tmp_path))]


def plugin_ids_and_states() -> dict[str, tuple[bool, str | None]]:
    return {p["id"]: (p["enabled"], p["error"]) for p in ancia.plugins.list()}


@pytest.mark.parametrize("where", ["import", "register"])
@pytest.mark.parametrize("raised", list(RAISES))
def test_a_plugin_that_raises_anything_while_loading_is_disabled_and_can_be_removed(publish, ancia_home, raised,
                                                                                    where):
    statement, error = RAISES[raised]
    body = f"{statement}\n" if where == "import" else f"def register(registry):\n    {statement}\n"
    publish("doomed", {"plugin_mod.py": body})
    publish("greeter", {"greeter_plugin/__init__.py": GREETER_V1}, "greeter_plugin:register")
    ancia.plugins.install("greeter")

    with pytest.raises(PluginError, match=f"doomed 1.0.0 was installed but failed to load.*{error}"):
        ancia.plugins.install("doomed")
    assert plugin_ids_and_states() == {"doomed": (False, error), "greeter": (True, None)}
    assert ancia.tools.call("greeter.hello", name="Ada") == "hello Ada from v1"

    close_app()  # a restarted kernel starts, without loading it
    assert ancia.tools.call("greeter.hello", name="Bo") == "hello Bo from v1"
    with pytest.raises(PluginError, match=f"stays disabled: {error}"):
        ancia.plugins.enable("doomed")
    assert plugin_ids_and_states()["doomed"] == (False, error)

    ancia.plugins.uninstall("doomed")
    assert plugin_ids_and_states() == {"greeter": (True, None)}
    assert not (ancia_home / "plugins" / "doomed").exists()


def test_a_plugin_that_starts_failing_later_is_disabled_at_start(publish, monkeypatch):
    publish("moody", {"plugin_mod.py": GREETER_V1.replace(
        "def register(registry):\n",
        "def register(registry):\n    import os\n    if os.environ.get('MOODY_EXIT'):\n"
        "        raise SystemExit('exit at register')\n")})
    assert ancia.plugins.install("moody")["tools"] == ["greeter.hello"]
    close_app()
    monkeypatch.setenv("MOODY_EXIT", "1")
    assert "system.time" in [t["name"] for t in ancia.tools.list()]  # the app starts
    assert "greeter.hello" not in [t["name"] for t in ancia.tools.list()]
    assert plugin_ids_and_states() == {"moody": (False, "SystemExit: exit at register")}
    ancia.plugins.uninstall("moody")
    assert ancia.plugins.list() == []


def test_a_plugin_is_recorded_as_enabled_only_once_it_has_loaded(publish, ancia_home):
    """The kernel dies while a plugin loads: the next start does not load it again, and it can be removed."""
    publish("crasher", {"plugin_mod.py": "import os\nos._exit(7)\n"})

    def kernel(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "import json, ancia_jupyter as ancia\n" + code],
                              env=os.environ.copy(), capture_output=True, text=True, timeout=120)

    assert kernel("ancia.plugins.install('crasher')").returncode == 7
    restarted = kernel("print(json.dumps(ancia.plugins.list()))\nancia.tools.call('system.time')\n"
                       "ancia.plugins.uninstall('crasher')\nprint(json.dumps(ancia.plugins.list()))")
    assert restarted.returncode == 0, restarted.stderr
    before, after = map(json.loads, restarted.stdout.splitlines())
    assert [(p["id"], p["enabled"], p["error"]) for p in before] == [
        ("crasher", False, "it did not finish loading")]
    assert after == [] and not (ancia_home / "plugins" / "crasher").exists()


def test_a_plugin_whose_files_are_gone_can_still_be_removed(publish, ancia_home):
    publish("greeter", {"greeter_plugin/__init__.py": GREETER_V1}, "greeter_plugin:register")
    ancia.plugins.install("greeter")
    close_app()
    shutil.rmtree(ancia_home / "plugins" / "greeter")
    assert "greeter.hello" not in [t["name"] for t in ancia.tools.list()]
    enabled, error = plugin_ids_and_states()["greeter"]
    assert not enabled and error.startswith("its files are missing")
    with pytest.raises(PluginError, match="its files are missing"):
        ancia.plugins.enable("greeter")
    ancia.plugins.uninstall("greeter")
    assert ancia.plugins.list() == []


def test_a_plugin_tool_that_raises_anything_when_called_returns_an_error(publish):
    publish("bad", {"plugin_mod.py": CALL_TIME})
    ancia.plugins.install("bad")
    registry = get_app().tools
    assert registry.call("bad.leave", {}) == (None, "SystemExit: 3")
    assert registry.call("bad.interrupt", {}) == (None, "KeyboardInterrupt")
    assert registry.call("bad.leave_later", {}) == (None, "SystemExit: async exit")
    assert registry.call("bad.haunted", {}) == (None, "the result could not be shown as text (SystemExit: boo)")
    with pytest.raises(ToolError, match="bad.leave: SystemExit: 3"):
        ancia.tools.call("bad.leave")
    assert ancia.tools.call("system.time")  # still working
