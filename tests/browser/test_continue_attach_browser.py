"""The composer and a cut answer in the notebook panel, the way a person meets them: an answer cut at the
max_tokens limit says so and Continue extends the same message; with no model that sees images, the attach
button says what to pull instead of opening a file picker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PANEL_CELL = "import ancia_jupyter as ancia\nancia.panel()"
CUT_CELL = '''# answers that never end by themselves: cut at 8 tokens
from scripted import endless, install, says

ancia.models.set_params("tiny", max_tokens=8)
ancia.models.load()
undo = install(endless())'''
THEN_CELL = '''# the rest of the story, with room for it
undo()
undo = install(says(" The end."))
ancia.models.set_params("tiny", max_tokens=60)'''


def ask(panel, text: str) -> None:
    box = panel.get_by_role("textbox", name="Message")
    box.click()
    box.fill(text)
    box.press("Enter")


def test_an_answer_cut_at_the_limit_says_so_and_continue_extends_it(notebook, artifacts, tiny_params):
    nb = notebook("continue.ipynb", [PANEL_CELL, CUT_CELL, THEN_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("button", name="New chat", exact=True).click()
    ask(panel, "Tell me a story")
    answer = panel.get_by_role("article", name="Assistant message")
    expect(answer).to_have_count(1)
    expect(answer).to_contain_text("Stopped at the 8-token limit", timeout=30_000)
    cont = answer.get_by_role("button", name="Continue")
    expect(cont).to_be_visible()
    expect(panel.get_by_role("status").filter(has_text="continue_()")).to_have_count(0)  # the marker says it
    first = answer.locator(".ancia-md").inner_text()
    message_id = answer.get_attribute("data-id")
    panel.screenshot(path=str(artifacts / "panel-cut-answer.png"))

    nb.run(2)
    cont.click()
    expect(answer.locator(".ancia-md")).to_have_text(re.compile(r"The end\.\s*$"), timeout=30_000)
    expect(answer).not_to_contain_text("token limit")
    expect(cont).to_have_count(0)
    expect(answer).to_have_count(1)  # the same message grew
    expect(answer).to_have_attribute("data-id", message_id)
    assert answer.locator(".ancia-md").inner_text().startswith(first.strip()[:10])
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    panel.screenshot(path=str(artifacts / "panel-continued.png"))


def test_the_attach_button_says_what_to_pull_without_a_vision_model(notebook, artifacts):
    nb = notebook("no-eyes.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    attach = panel.get_by_role("button", name="Attach image")
    expect(attach).to_be_visible()
    expect(attach).to_have_class(re.compile("ancia-attach-off"))
    hint = attach.get_attribute("title")
    assert hint and "vision" in hint and "\n" not in hint
    attach.click()
    notice = panel.get_by_role("status").filter(has_text=hint)
    expect(notice).to_be_visible()
    panel.screenshot(path=str(artifacts / "panel-attach-hint.png"))
