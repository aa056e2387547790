"""One rule for which model answers, whichever front end asks: the model asked for, else the model picked
(``ancia.models.select``, ``%ancia select``, the panel's picker), never the model that wrote the chat before.
Each message remembers the model that wrote it."""

from __future__ import annotations

import time

import pytest
from IPython.core.interactiveshell import InteractiveShell
from scripted import says, scripted
from test_panel_protocol import Client

import ancia_jupyter as ancia


@pytest.fixture
def two_models(tiny, tiny_model_dir):
    """``tiny`` and ``other`` (the same weights under another id); a chat ``tiny`` wrote, then ``other``
    picked."""
    ancia.models.register("other", str(tiny_model_dir), title="Another tiny model")
    ancia.models.set_params("other", temperature=0.0, max_tokens=12, context_window=2048)
    with scripted(says("First.")):
        first = ancia.chat("Hello", model="tiny", tools=False)
    ancia.models.select("other")
    return first.chat_id


def models_of(chat_id: int) -> list[str]:
    return [m["model_id"] for m in ancia.chats.history(chat_id) if m["role"] == "assistant"]


def test_ancia_chat_answers_an_old_chat_with_the_model_picked(two_models):
    with scripted(says("Second.")):
        ancia.chat("Again", chat=two_models, tools=False)
    assert models_of(two_models) == ["tiny", "other"]


def test_ancia_chat_answers_with_the_model_asked_for(two_models):
    with scripted(says("Second.")):
        ancia.chat("Again", chat=two_models, model="tiny", tools=False)
    assert models_of(two_models) == ["tiny", "tiny"]


def test_regenerating_uses_the_model_picked_now(two_models):
    with scripted(says("Again.")):
        ancia.chats.get(two_models).regenerate(tools=False)
    assert models_of(two_models) == ["other"]


def test_the_magics_answer_with_the_model_picked(two_models):
    shell = InteractiveShell.instance()
    try:
        shell.extension_manager.load_extension("ancia_jupyter")
        shell.run_line_magic("ancia", f"use {two_models}")
        with scripted(says("From a cell.")):
            shell.run_cell_magic("ancia", "--no-tools", "And now?")
        assert models_of(two_models) == ["tiny", "other"]
        shell.run_line_magic("ancia", "select tiny")
        with scripted(says("Picked again.")):
            shell.run_cell_magic("ancia", "--no-tools", "And now?")
        assert models_of(two_models) == ["tiny", "other", "tiny"]
    finally:
        shell.extension_manager.unload_extension("ancia_jupyter")
        InteractiveShell.clear_instance()


def test_the_panel_answers_with_the_model_picked_in_it(two_models):
    client = Client()
    try:
        client.ok("select_chat", chat_id=two_models)
        client.ok("select_model", model_id="tiny")
        with scripted(says("From the panel.")):
            client.ok("send", text="And now?")
            client.wait_done()
        assert models_of(two_models) == ["tiny", "tiny"]
        assert ancia.models.selected() == "tiny"  # and code and the magics now answer with it too
    finally:
        client.session.close()


class SidebarComm:
    """The kernel's end of the sidebar's comm, as the comm package hands it to the target."""

    comm_id = "sidebar-1"

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.handler = None

    def send(self, data: dict) -> None:
        self.sent.append(data)

    def on_msg(self, handler) -> None:
        self.handler = handler

    def on_close(self, handler) -> None:
        pass

    def close(self, data: dict | None = None) -> None:
        pass

    def request(self, action: str, **args) -> dict:
        request_id = len(self.sent) + 1000
        self.handler({"content": {"data": {"type": "request", "id": request_id, "action": action, **args}}})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            replies = [m for m in self.sent if m.get("type") == "reply" and m["id"] == request_id]
            if replies:
                assert replies[0]["ok"], replies[0]
                return replies[0]
            time.sleep(0.02)
        raise AssertionError(f"no reply to {action}")


def test_the_sidebar_answers_with_the_model_picked_in_it(two_models):
    from ancia_jupyter.notebook import comm

    sidebar = SidebarComm()
    comm._on_open(sidebar, {"content": {"data": None}})
    try:
        sidebar.request("select_chat", chat_id=two_models)
        sidebar.request("select_model", model_id="tiny")
        with scripted(says("From the sidebar.")):
            sidebar.request("send", text="And now?")
            deadline = time.monotonic() + 30
            while not any(m.get("type") == "events" and any(e["type"] == "done" for e in m["events"])
                          for m in sidebar.sent) and time.monotonic() < deadline:
                time.sleep(0.05)
        assert models_of(two_models) == ["tiny", "tiny"]
    finally:
        sidebar.handler({"content": {"data": {"type": "close"}}})
