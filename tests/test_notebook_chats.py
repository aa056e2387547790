"""Chats belong to their notebook: each notebook goes on in its own current chat (remembered across
reopenings and kernel restarts), shared by its panel, its sidebar and its magics; a notebook without one
starts a new chat at its first question, never an unrelated old one; the chat list still opens any chat."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from scripted import says, scripted
from test_panel_protocol import Client

import ancia_jupyter as ancia
from ancia_jupyter.app import close_app


def in_notebook(monkeypatch, path: str) -> None:
    """Be a kernel that Jupyter Server started for ``path`` (it sets this variable)."""
    monkeypatch.setenv("JPY_SESSION_NAME", path)


def view() -> Client:
    return Client()


@pytest.fixture
def old_chat(tiny):
    with scripted(says("An old answer.")):
        return ancia.chat("An unrelated old question", tools=False).chat_id


def test_a_fresh_notebook_opens_on_no_chat_and_its_first_question_starts_one(old_chat, monkeypatch):
    in_notebook(monkeypatch, "work/analysis.ipynb")
    panel = view()
    try:
        assert panel.ok("state")["current_chat"] is None  # not the newest chat of all
        with scripted(says("Fresh.")):
            asked = panel.ok("send", text="First question here")
            panel.wait_done()
        assert asked["chat_id"] != old_chat
        assert [m["role"] for m in ancia.chats.history(asked["chat_id"])] == ["user", "assistant"]
        assert [m["content"] for m in ancia.chats.history(old_chat)][0] == "An unrelated old question"
    finally:
        panel.session.close()


def test_a_notebook_reopened_or_restarted_goes_on_in_its_chat(old_chat, monkeypatch):
    in_notebook(monkeypatch, "work/analysis.ipynb")
    first = view()
    with scripted(says("Noted.")):
        chat = first.ok("send", text="Remember the number 7")["chat_id"]
        first.wait_done()
    first.session.close()
    close_app()  # the kernel restarts
    again = view()
    try:
        assert again.ok("state")["current_chat"] == chat
    finally:
        again.session.close()
    in_notebook(monkeypatch, "work/other.ipynb")  # another notebook does not get it
    other = view()
    try:
        assert other.ok("state")["current_chat"] is None
        assert chat in [c["id"] for c in other.ok("state")["chats"]]  # the list still opens any chat
        assert other.ok("select_chat", chat_id=old_chat)["current_chat"] == old_chat
    finally:
        other.session.close()


def test_the_views_of_one_notebook_share_its_chat(old_chat, monkeypatch):
    in_notebook(monkeypatch, "shared.ipynb")
    panel, sidebar = view(), view()
    try:
        picked = panel.ok("select_chat", chat_id=old_chat)["current_chat"]
        sidebar.wait_state(lambda s: s["current_chat"] == picked)  # the sidebar follows the panel
        made = sidebar.ok("new_chat", title="Made in the sidebar")["current_chat"]
        panel.wait_state(lambda s: s["current_chat"] == made)
    finally:
        panel.session.close()
        sidebar.session.close()


def test_deleting_the_notebooks_chat_leaves_it_starting_a_new_one(old_chat, monkeypatch):
    in_notebook(monkeypatch, "gone.ipynb")
    panel = view()
    try:
        panel.ok("select_chat", chat_id=old_chat)
        assert panel.ok("delete_chat", chat_id=old_chat)["current_chat"] is None
    finally:
        panel.session.close()
    again = view()
    try:
        assert again.ok("state")["current_chat"] is None
    finally:
        again.session.close()
def test_the_magics_and_the_panel_of_a_notebook_share_its_chat(old_chat, monkeypatch):
    in_notebook(monkeypatch, "magics.ipynb")
    shell = InteractiveShell.instance()
    panel = view()
    try:
        shell.extension_manager.load_extension("ancia_jupyter")
        with scripted(says("From a cell.")):
            shell.run_cell_magic("ancia", "--no-tools", "A question from a cell")
        made = panel.wait_state(lambda s: s["current_chat"] not in (None, old_chat) and s)["current_chat"]
        assert ancia.chats.history(made)[0]["content"] == "A question from a cell"
        panel.ok("select_chat", chat_id=old_chat)  # the panel switches: the magics follow
        with scripted(says("Into the old chat.")):
            shell.run_cell_magic("ancia", "--no-tools", "Next question")
        assert ancia.chats.history(old_chat)[-2]["content"] == "Next question"
    finally:
        panel.session.close()
        shell.extension_manager.unload_extension("ancia_jupyter")
        InteractiveShell.clear_instance()
