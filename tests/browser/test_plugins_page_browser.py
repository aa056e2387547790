"""The Plugins page, in the JupyterLab sidebar, used the way a person does: browse what the registry offers,
install a plugin and watch its row work, see why a broken one did not load, update when a newer version is
listed, turn one off, uninstall. The registry is built here and served on 127.0.0.1, its wheels slowly
enough that the row's busy state can be seen."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from first_hour import load_ancia
from lab import JupyterLab, Notebook
from playwright.sync_api import Locator, Page, expect
from test_plugins import BROKEN, GREETER_V1, GREETER_V2, make_wheel, sha
from test_sidebar_browser import open_sidebar

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

WHEEL_DELAY = 1.5  # seconds each wheel takes to download


class SlowRegistry:
    """registry.json and its wheels in a folder, served over HTTP; each wheel takes WHEEL_DELAY seconds."""

    def __init__(self, root: Path) -> None:
        self.root, self.entries = root, {}

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith(".whl"):
                    time.sleep(WHEEL_DELAY)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/registry.json"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def publish(self, plugin_id: str, version: str, source: str, **extra: object) -> None:
        wheel = make_wheel(self.root, plugin_id, version, {f"{plugin_id}.py": source}, f"{plugin_id}:register")
        self.entries[plugin_id] = {"id": plugin_id, "version": version, "wheel_url": wheel.name, "sha256": sha(wheel),
                                   **extra}
        (self.root / "registry.json").write_text(json.dumps({"plugins": list(self.entries.values())}))


@pytest.fixture
def plugin_registry(tmp_path) -> Iterator[SlowRegistry]:
    root = tmp_path / "registry"
    root.mkdir()
    served = SlowRegistry(root)
    served.publish("greeter", "1.0.0", GREETER_V1, description="Greets people by name.", network=True,
                   author="Ana Lima")
    served.publish("broken", "0.1.0", BROKEN, description="Fails to load, on purpose.")
    ancia.plugins.set_registry_url(served.url)  # in the store the test's kernels read
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def plugin(page_: Locator, plugin_id: str) -> Locator:
    return page_.get_by_role("listitem", name=f"Plugin {plugin_id}")


def test_browse_install_update_disable_and_uninstall_plugins(sidebar_lab: JupyterLab, page: Page, shot, tiny,
                                                             plugin_registry: SlowRegistry):
    name = sidebar_lab.notebook("plugins.ipynb")
    Notebook(page, sidebar_lab, name).open()
    panel = open_sidebar(page)
    load_ancia(panel, name)

    panel.get_by_role("button", name="Plugins").click()
    plugins = panel.get_by_role("region", name="Plugins")
    expect(plugins).to_be_visible()
    expect(panel.get_by_role("region", name="Model settings")).to_be_hidden()
    greeter, broken = plugin(plugins, "greeter"), plugin(plugins, "broken")
    expect(greeter).to_contain_text("Greets people by name.")
    expect(greeter).to_contain_text("v1.0.0")
    expect(greeter).to_contain_text("uses the network")
    expect(broken).to_contain_text("offline")
    shot("plugins-browse")

    greeter.get_by_role("button", name="Install").click()
    expect(greeter).to_have_attribute("aria-busy", "true")
    expect(greeter.get_by_role("status")).to_have_text("Installing…")
    shot("plugins-installing")
    expect(greeter.get_by_role("status")).to_have_text("Installed 1.0.0.", timeout=30_000)
    expect(greeter).not_to_have_attribute("aria-busy", "true")
    expect(greeter).to_contain_text("tools: greeter.hello")
    expect(greeter.get_by_role("switch", name="Enabled")).to_be_checked()
    assert [p["id"] for p in ancia.plugins.list()] == ["greeter"]

    broken.get_by_role("button", name="Install").click()
    expect(broken.get_by_role("alert")).to_contain_text("failed to load", timeout=30_000)
    expect(broken.get_by_role("alert")).to_contain_text("this plugin is broken on purpose")
    expect(broken.get_by_role("switch", name="Enabled")).not_to_be_checked()
    shot("plugins-broken")

    plugin_registry.publish("greeter", "2.0.0", GREETER_V2, description="Greets people, loudly if asked.",
                            network=True)
    plugins.get_by_role("button", name="Refresh plugins").click()
    update = greeter.get_by_role("button", name="Update to 2.0.0")
    expect(update).to_be_visible()
    expect(greeter).to_contain_text("v2.0.0 available")
    update.click()
    expect(greeter.get_by_role("status")).to_have_text("Updating…")
    expect(greeter.get_by_role("status")).to_have_text("Updated 2.0.0.", timeout=30_000)
    expect(update).to_have_count(0)

    greeter.get_by_role("switch", name="Enabled").uncheck()
    expect(greeter.get_by_role("status")).to_have_text("Disabled.")
    expect(greeter).to_contain_text("disabled")
    assert not next(p for p in ancia.plugins.list() if p["id"] == "greeter")["enabled"]
    greeter.get_by_role("switch", name="Enabled").check()
    expect(greeter.get_by_role("status")).to_have_text("Enabled.")

    broken.get_by_role("button", name="Uninstall").click()
    broken.get_by_role("button", name="Confirm uninstall").click()
    expect(broken.get_by_role("button", name="Install")).to_be_visible(timeout=30_000)
    expect(broken.get_by_role("switch", name="Enabled")).to_have_count(0)
    assert [p["id"] for p in ancia.plugins.list()] == ["greeter"]
    shot("plugins-after")
