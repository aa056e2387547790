"""Finding and exporting chats in the notebook panel, the way a person does: search every chat from the chat
list, see the matches in bold (and a message's HTML as plain text), open a result at its message; export the
open chat as Markdown or JSON from its menu and get a file named after it."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PANEL_CELL = "import ancia_jupyter as ancia\nancia.panel()"
SEED_CELL = '''# chats written from code, one with a long history so the match is far up
from ancia_jupyter.app import get_app

store = get_app().store
trip = ancia.chats.create("Porto weekend")
store.add_message(trip.id, "user", "Where do I find the best francesinha?")
store.add_message(trip.id, "assistant", "Café Santiago makes a famous <img src=x onerror=alert(1)> francesinha.")
for i in range(30):
    store.add_message(trip.id, "user", f"Filler question {i} about trams and tiles.")
    store.add_message(trip.id, "assistant", f"Filler answer {i}: ride tram 22 and look up.")
other = ancia.chats.create("Shopping list")
store.add_message(other.id, "user", "Bread, olive oil and a francesinha sauce.")'''


def test_search_every_chat_and_open_a_result_at_its_message(notebook, artifacts):
    nb = notebook("search.ipynb", [PANEL_CELL, SEED_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    chats = panel.get_by_role("navigation", name="Chat list")
    expect(chats.get_by_role("button", name="Shopping list")).to_be_visible()

    search = panel.get_by_role("searchbox", name="Search chats")
    search.fill("francesinha")
    results = panel.get_by_role("list", name="Search results")
    hits = results.get_by_role("button")
    expect(hits).to_have_count(3)
    expect(chats.get_by_role("list", name="Chats")).to_be_hidden()  # the results take the list's place
    hit = hits.filter(has_text="Café Santiago")
    expect(hit).to_contain_text("Porto weekend")
    expect(hit.locator("b")).to_have_text(["francesinha"])
    expect(hit).to_contain_text("<img src=x onerror=alert(1)>")  # the message's HTML, shown as text
    expect(results.locator("img")).to_have_count(0)
    panel.screenshot(path=str(artifacts / "panel-search.png"))

    hit.click()
    expect(panel.get_by_role("heading", name="Porto weekend")).to_be_visible()
    message = panel.get_by_role("article", name="Assistant message").filter(has_text="Café Santiago")
    expect(message).to_have_class(re.compile("ancia-flash"))
    expect(message).to_be_in_viewport()  # scrolled up to it, past 60 later messages
    expect(message.locator("img")).to_have_count(0)
    panel.screenshot(path=str(artifacts / "panel-search-opened.png"))
    expect(message).not_to_have_class(re.compile("ancia-flash"), timeout=5000)

    search.fill("zebra")
    expect(results).to_contain_text("No message matches “zebra”.")
    search.press("Escape")
    expect(search).to_have_value("")
    expect(results).to_be_hidden()
    expect(chats.get_by_role("button", name="Porto weekend")).to_be_visible()


def test_export_a_chat_as_markdown_and_json(notebook, page, tmp_path, artifacts):
    seed = SEED_CELL.replace("Porto weekend", "Porto: a weekend?").replace("francesinha", "bifana")
    nb = notebook("export.ipynb", [PANEL_CELL, seed])  # words of its own: the search test counts its hits
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("navigation", name="Chat list").get_by_role("button", name="Porto: a weekend?").first.click()
    expect(panel.get_by_role("heading", name="Porto: a weekend?")).to_be_visible()

    panel.get_by_role("button", name="Export chat").click()
    menu = panel.get_by_role("menu", name="Export chat as")
    expect(menu).to_be_visible()
    panel.screenshot(path=str(artifacts / "panel-export-menu.png"))
    with page.expect_download() as md:
        menu.get_by_role("menuitem", name="Markdown (.md)").click()
    assert md.value.suggested_filename == "Porto a weekend.md"  # no characters a file system refuses
    text = tmp_path / "chat.md"
    md.value.save_as(text)
    content = text.read_text()
    assert content.startswith("# Porto: a weekend?") and "Café Santiago" in content
    expect(menu).to_be_hidden()

    panel.get_by_role("button", name="Export chat").click()
    with page.expect_download() as js:
        menu.get_by_role("menuitem", name="JSON (.json)").click()
    assert js.value.suggested_filename == "Porto a weekend.json"
    js.value.save_as(tmp_path / "chat.json")
    document = json.loads((tmp_path / "chat.json").read_text())
    assert document["chat"]["title"] == "Porto: a weekend?" and len(document["messages"]) == 62
