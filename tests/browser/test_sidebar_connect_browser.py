"""The sidebar connecting to a kernel the way a person sees it, and what goes over the wire meanwhile: its own
first request is the one `state` it asks for; the chat starts from that reply (docs/panel-protocol.md)."""

from __future__ import annotations

import re

import pytest
from first_hour import load_ancia
from lab import JupyterLab, Notebook
from playwright.sync_api import Page, expect
from test_sidebar_browser import open_sidebar

pytestmark = pytest.mark.browser

STATE_REQUEST = re.compile(rb'"action":\s*"state"')


def test_the_sidebar_asks_for_the_state_once_when_it_connects(sidebar_lab: JupyterLab, page: Page, shot, tiny):
    sent: list[bytes] = []

    def watch(ws) -> None:
        if "/channels" in ws.url:
            ws.on("framesent", lambda payload: sent.append(payload if isinstance(payload, bytes)
                                                           else payload.encode()))

    page.on("websocket", watch)
    name = sidebar_lab.notebook("once.ipynb", "%load_ext ancia_jupyter")
    nb = Notebook(page, sidebar_lab, name).open()
    panel = open_sidebar(page)
    expect(panel.get_by_role("status")).to_contain_text("Ancia is not loaded", timeout=30_000)
    sent.clear()  # the first look asked too, and found no ancia there
    load_ancia(panel, name)
    expect(panel.get_by_text("Ask anything. Your chats stay on this machine")).to_be_visible()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Not loaded")
    page.wait_for_timeout(4000)  # longer than the chat's own first retry (1.5 s), had it asked
    assert sum(len(STATE_REQUEST.findall(frame)) for frame in sent) == 1

    # Connecting again (a restarted kernel, ancia loaded from a cell) is one request again.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:restart-kernel'); }")
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    expect(panel.get_by_role("status")).to_contain_text("Ancia is not loaded", timeout=30_000)
    nb.wait_idle()
    sent.clear()
    nb.run(0)
    expect(panel.get_by_role("textbox", name="Message")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(4000)
    assert sum(len(STATE_REQUEST.findall(frame)) for frame in sent) == 1
    shot("connected-once")
