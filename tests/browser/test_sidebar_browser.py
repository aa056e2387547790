"""The Ancia sidebar in JupyterLab, driven in Chromium: the tab, loading ancia into a notebook's kernel,
asking and streaming, following the notebook in focus, stopping an answer, refusing another version."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sidebar_fixtures import (  # noqa: F401  (fixtures)
    Lab,
    browser,
    endless_model,
    endless_model_dir,
    lab,
    labextension,
    page,
    shot,
)

pytestmark = pytest.mark.browser

VISIBLE_NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def sidebar(page: Page):
    return page.locator("#ancia-sidebar")


def open_sidebar(page: Page):
    page.get_by_role("tab", name="Ancia").click()
    panel = sidebar(page)
    expect(panel).to_be_visible()
    return panel


def open_notebook(page: Page, lab: Lab, name: str) -> None:
    page.goto(lab.tree(name))
    expect(page.locator(f"{VISIBLE_NOTEBOOK} .jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_attached(
        timeout=60_000)


def test_tab_palette_and_shortcut_without_a_notebook(lab: Lab, page: Page):
    page.goto(lab.tree())
    tab = page.get_by_role("tab", name="Ancia")
    expect(tab).to_be_visible(timeout=60_000)
    panel = open_sidebar(page)
    expect(panel.get_by_role("heading", name="Ancia")).to_be_visible()
    expect(panel.get_by_role("status")).to_contain_text("Open a notebook to chat with Ancia")
    shot(page, "no-notebook")

    tab.click()  # collapses the left area
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+A")
    expect(panel).to_be_visible()

    tab.click()
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    palette.get_by_role("textbox").fill("Ancia: Open chat")
    palette.locator(".lm-CommandPalette-item", has_text="Ancia: Open chat").first.click()
    expect(panel).to_be_visible()


def test_load_ancia_ask_and_see_the_answer_stream(lab: Lab, page: Page, tiny):
    name = lab.notebook("first.ipynb", "x = 6 * 7")
    open_notebook(page, lab, name)
    panel = open_sidebar(page)
    expect(panel.get_by_role("status")).to_contain_text("Ancia is not loaded in the kernel of first.ipynb")
    expect(panel).to_contain_text("first.ipynb")
    shot(page, "not-loaded")

    panel.get_by_role("button", name="Load Ancia in this kernel").click()
    box = panel.get_by_role("textbox", name="Message")
    expect(box).to_be_visible(timeout=30_000)
    shot(page, "loaded")

    box.fill("Hello there")
    box.press("Enter")
    answer = panel.locator(".ancia-role-assistant .ancia-md").last
    expect(answer).not_to_be_empty(timeout=30_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    shot(page, "answered")

    import ancia_jupyter as ancia

    chat = ancia.chats.list()[0]
    history = ancia.chats.history(chat["id"])
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "Hello there"
    assert history[1]["status"] == "complete" and history[1]["content"]
    assert panel.get_by_text("Hello there").count() >= 1
