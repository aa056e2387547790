"""The chat panel in a notebook in a new user's first hour, in JupyterLab, light and dark: a question's Markdown
is rendered the way answers are (and its HTML is shown as text, never run), and "Loading tiny…" stays up only
while the model loads."""

from __future__ import annotations

import pytest
from first_hour import set_theme, shoot
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PANEL_CELL = "import ancia_jupyter as ancia\nancia.panel()"
QUESTION = ("Why does `df.plot()` fail here?\n\n```python\nimport pandas as pd\ndf.plot(x='a')\n```\n\n"
            "- **first** point\n- second <b>bold?</b> <img src=x onerror=alert(1)>")
# Every alert line the chat shows, as it is added (a line that goes a moment later is caught too).
RECORD_ALERTS = """(panel) => {
  window.anciaAlerts = [];
  const alerts = panel.querySelector('.ancia-alerts');
  new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) =>
    window.anciaAlerts.push(n.textContent)))).observe(alerts, { childList: true, subtree: true, characterData: true });
}"""


def test_a_question_shows_its_markdown_rendered_and_its_html_as_text(notebook, artifacts):
    nb = notebook("markdown.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    box = panel.get_by_role("textbox", name="Message")
    box.fill(QUESTION)
    box.press("Enter")
    question = panel.locator(".ancia-role-user").last
    expect(question.locator(".ancia-code pre code")).to_have_text("import pandas as pd\ndf.plot(x='a')")
    expect(question.locator("p code")).to_have_text("df.plot()")
    expect(question.locator("li strong")).to_have_text("first")
    expect(question.locator("li")).to_have_count(2)
    expect(question).not_to_contain_text("```")
    expect(question.locator("li").last).to_contain_text("<b>bold?</b> <img src=x onerror=alert(1)>")
    expect(question.locator("b, img")).to_have_count(0)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    folder = artifacts / "first-hour" / "panel"
    for dark in (False, True):
        set_theme(nb.page, dark)
        question.screenshot(path=str(folder / f"question-markdown-{'dark' if dark else 'light'}.png"))
    set_theme(nb.page, False)


def test_the_loading_line_goes_as_soon_as_the_model_is_loaded(notebook, artifacts):
    nb = notebook("loading.ipynb", [PANEL_CELL])  # a new kernel: the model is not loaded in it yet
    panel = nb.show_panel()
    expect(panel.get_by_role("status", name="Model state")).to_have_attribute("title", "Not loaded")
    panel.evaluate(RECORD_ALERTS)
    box = panel.get_by_role("textbox", name="Message")
    box.fill("Hello")
    box.press("Enter")
    expect(panel.locator(".ancia-role-assistant .ancia-md").last).not_to_be_empty(timeout=30_000)
    # The line went when the model was loaded, before the answer's first words: not 5 s later.
    expect(panel.get_by_role("status").filter(has_text="Loading tiny…")).to_have_count(0, timeout=500)
    assert "Loading tiny…" in nb.page.evaluate("window.anciaAlerts.join('|')"), "the loading line was never shown"
    expect(panel.get_by_role("status", name="Model state")).to_have_attribute("title", "Ready", timeout=30_000)
    shoot(nb.page, artifacts / "first-hour" / "panel", "loaded", dark=False)
