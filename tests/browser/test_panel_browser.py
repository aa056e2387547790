"""The chat panel in JupyterLab, used the way a person does: ask, watch the answer stream, stop a long one,
manage chats, reload and find the history, in light and dark themes (screenshots in test-artifacts/)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

VISIBLE = ".jp-NotebookPanel:not(.lm-mod-hidden)"

PANEL_CELL = "import ancia_jupyter as ancia\nancia.panel()"
SLOW_CELL = '''# answers that never end by themselves, a token every 30 ms (to try Stop)
from scripted import endless, install, slow

ancia.models.load()
install(endless(), slow(0.03))
print("slow answers on")'''


def ask(panel, text: str) -> None:
    box = panel.get_by_role("textbox", name="Message")
    box.click()
    box.fill(text)
    box.press("Enter")


def test_shift_enter_is_a_new_line_and_enter_sends(notebook):
    nb = notebook("keys.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    cells = nb.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")
    count = cells.count()
    box = panel.get_by_role("textbox", name="Message")
    box.click()
    box.type("two")
    box.press("Shift+Enter")
    box.type("lines")
    expect(box).to_have_value("two\nlines")
    box.press("Enter")
    expect(panel.get_by_role("article", name="You message").last).to_have_text("two\nlines")
    expect(box).to_have_value("")
    expect(cells).to_have_count(count)  # the keys went to the panel, not to the notebook


def test_ask_a_question_and_see_the_answer_stream(notebook, artifacts):
    nb = notebook("ask.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Not loaded")
    panel.get_by_role("button", name="New chat", exact=True).click()
    expect(panel.get_by_role("heading", name="New chat")).to_be_visible()
    ask(panel, "Hello from the browser")  # the empty new chat takes its name from the question
    user = panel.get_by_role("article", name="You message").last
    expect(user).to_have_text("Hello from the browser")
    answer = panel.get_by_role("article", name="Assistant message").last
    expect(answer.locator(".ancia-md")).not_to_be_empty()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    expect(panel.get_by_role("textbox", name="Message")).to_have_value("")
    expect(panel.get_by_role("navigation", name="Chat list").get_by_role("button", name="Hello from the browser")
           ).to_have_attribute("aria-current", "true")
    panel.screenshot(path=str(artifacts / "panel-answer.png"))

SEED_CELL = '''# a chat written from code: Markdown, a tool call with its result, a mood
from ancia_jupyter.app import get_app

store = get_app().store
chat = ancia.chats.create("Markdown tour")
store.add_message(chat.id, "user", "Plan a picnic, and look up the weather.")
store.add_message(chat.id, "assistant", "", tool_calls=[
    {"id": "call-1", "name": "web.search", "arguments": {"query": "weather Lisbon saturday"}}])
store.add_message(chat.id, "tool", "Sunny, 24 °C, light breeze.", tool_call_id="call-1", tool_name="web.search")
store.add_message(chat.id, "assistant", """## Picnic plan

Saturday looks **sunny** (24 °C), so *go for it*:

1. Pack `sandwiches`, fruit and water
2. Bring a blanket
   - and sunscreen

| item | who |
|---|---|
| bread | Ana |
| cheese | Rui |

```python
basket = ["bread", "cheese", "grapes"]
print(len(basket))
```

More ideas: [picnic tips](https://example.org/picnic) <script>alert(1)</script>
""")
chat.set_mood("happy")
chat.id'''


def test_stop_a_long_answer(notebook, artifacts, tiny_params):
    nb = notebook("stop.ipynb", [PANEL_CELL, SLOW_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("button", name="New chat", exact=True).click()
    panel.get_by_role("button", name="Model settings").click()
    max_tokens = panel.get_by_role("spinbutton", name="Max tokens")
    max_tokens.fill("900")
    max_tokens.press("Enter")
    expect(max_tokens).to_have_value("900")
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    expect(panel.get_by_role("region", name="Model settings")).to_contain_text("fits in memory")
    panel.screenshot(path=str(artifacts / "panel-settings.png"))
    offline = panel.get_by_role("switch", name="Offline mode")
    offline.check()
    expect(panel.get_by_text("offline", exact=True)).to_be_visible()
    offline.uncheck()
    expect(panel.get_by_text("offline", exact=True)).to_be_hidden()
    panel.get_by_role("button", name="Model settings").click()
    expect(panel.get_by_role("region", name="Model settings")).to_be_hidden()
    ask(panel, "Tell me a very long story")
    answer = panel.get_by_role("article", name="Assistant message").last
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Generating…")
    expect(answer).to_have_class(re.compile("ancia-streaming"))
    expect(answer.locator(".ancia-md")).to_have_text(re.compile(r".{20,}"))
    panel.screenshot(path=str(artifacts / "panel-streaming.png"))
    stop = panel.get_by_role("button", name="Stop")
    stop.click()
    expect(answer.get_by_text("Stopped")).to_be_visible()
    expect(stop).to_be_hidden()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    expect(answer).not_to_have_class(re.compile("ancia-streaming"))


def test_chats_made_and_renamed_survive_a_reload(notebook, page, lab, monkeypatch):
    nb = notebook("chats.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    panel.get_by_role("button", name="New chat", exact=True).click()
    expect(panel.get_by_role("heading", name="New chat")).to_be_visible()
    panel.get_by_role("button", name="Rename chat").click()
    title = panel.get_by_role("textbox", name="Chat title")
    title.fill("Trip to Lisbon")
    title.press("Enter")
    chats = panel.get_by_role("navigation", name="Chat list")
    expect(chats.get_by_role("button", name="Trip to Lisbon")).to_have_attribute("aria-current", "true")
    ask(panel, "Where should we eat?")
    expect(panel.get_by_role("article", name="Assistant message").last.locator(".ancia-md")).not_to_be_empty()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    panel.get_by_role("button", name="Duplicate chat").click()
    expect(chats.get_by_role("button", name="Trip to Lisbon (copy)")).to_have_attribute("aria-current", "true")
    panel.get_by_role("button", name="Delete chat").click()
    panel.get_by_role("button", name="Confirm delete chat").click()
    expect(chats.get_by_role("button", name="Trip to Lisbon (copy)")).to_have_count(0)

    monkeypatch.setenv("ANCIA_DATA_DIR", str(lab.data_dir))  # the kernel wrote it all to the store
    import ancia_jupyter as ancia

    saved = next(c for c in ancia.chats.list() if c["title"] == "Trip to Lisbon")
    assert [m["role"] for m in ancia.chats.history(saved["id"])] == ["user", "assistant"]

    nb.save()  # what autosave does: the panel's output stays in the notebook
    page.reload()
    nb.wait_idle()
    panel = nb.panel
    expect(panel).to_be_visible()  # restored from the kernel, no need to run the cell again
    trip = panel.get_by_role("navigation", name="Chat list").get_by_role("button", name="Trip to Lisbon")
    expect(trip).to_be_visible()
    trip.click()  # the notebook's chat was the deleted copy: it starts anew, and the list opens any chat
    expect(panel.get_by_role("heading", name="Trip to Lisbon")).to_be_visible()
    expect(panel.get_by_role("article", name="You message")).to_have_text("Where should we eat?")


def test_markdown_tool_cards_and_mood_in_light_and_dark_themes(notebook, page, artifacts):
    nb = notebook("tour.ipynb", [PANEL_CELL, SEED_CELL])
    panel = nb.show_panel(0)
    nb.run(1)  # written from code: the open panel follows
    chats = panel.get_by_role("navigation", name="Chat list")
    chats.get_by_role("button", name="Markdown tour").click()
    expect(panel.get_by_role("heading", name="Markdown tour")).to_be_visible()
    answer = panel.get_by_role("article", name="Assistant message").last
    expect(answer.get_by_role("heading", name="Picnic plan")).to_be_visible()
    expect(answer.locator("strong")).to_have_text("sunny")
    expect(answer.get_by_role("table")).to_be_visible()
    expect(answer.locator("pre code.language-python")).to_contain_text('basket = ["bread"')
    expect(answer.get_by_role("link", name="picnic tips")).to_have_attribute("href", "https://example.org/picnic")
    expect(answer.locator("script")).to_have_count(0)
    expect(answer).to_contain_text("<script>alert(1)</script>")
    card = panel.locator("details.ancia-tool").first
    expect(card).to_contain_text("web.search")
    expect(card).to_contain_text("done")
    card.locator("summary").click()
    expect(card).to_contain_text("weather Lisbon saturday")
    expect(card).to_contain_text("Sunny, 24 °C")
    expect(panel.get_by_role("img", name="Assistant mood: happy").first).to_be_visible()
    panel.screenshot(path=str(artifacts / "panel-light.png"))
    try:
        page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "false")
        page.wait_for_timeout(300)
        background = panel.evaluate("el => getComputedStyle(el).backgroundColor")
        assert background not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)")
        panel.screenshot(path=str(artifacts / "panel-dark.png"))
    finally:
        page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
        expect(page.locator("body")).to_have_attribute("data-jp-theme-light", "true")

    page.set_viewport_size({"width": 820, "height": 1000})  # a thin notebook: the chat list folds away
    expect(panel).to_have_class(re.compile("ancia-narrow"))
    expect(chats).to_be_hidden()
    panel.screenshot(path=str(artifacts / "panel-narrow.png"))
    toggle = panel.get_by_role("button", name="Show chats")
    toggle.click()
    expect(chats).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel.screenshot(path=str(artifacts / "panel-narrow-chats.png"))
    chats.get_by_role("button", name="Markdown tour").click()
    expect(chats).to_be_hidden()


def test_edit_regenerate_copy_and_delete_messages(notebook, page):
    nb = notebook("actions.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    panel.get_by_role("button", name="New chat", exact=True).click()
    ask(panel, "First question")
    state = panel.get_by_role("status", name="Model state")
    answers = panel.get_by_role("article", name="Assistant message")
    expect(answers).to_have_count(1)
    expect(state).to_have_text("Ready")
    first_id = answers.first.get_attribute("data-id")

    user = panel.get_by_role("article", name="You message")
    user.hover()
    user.get_by_role("button", name="Edit message").click()
    panel.get_by_role("textbox", name="Edit message").fill("An edited question")
    panel.get_by_role("button", name="Save and regenerate").click()
    expect(user).to_have_text("An edited question")
    expect(answers).to_have_count(1)
    expect(answers.first).not_to_have_attribute("data-id", first_id)
    expect(state).to_have_text("Ready")
    second_id = answers.first.get_attribute("data-id")

    answers.first.get_by_role("button", name="Regenerate").click()
    expect(answers.first).not_to_have_attribute("data-id", second_id)
    expect(state).to_have_text("Ready")

    user.get_by_role("button", name="Copy message").click()
    expect(panel.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "An edited question"

    answers.first.get_by_role("button", name="Delete message").click()
    expect(answers).to_have_count(0)
    expect(panel.get_by_role("navigation", name="Chat list").get_by_role("button", name="First question")
           ).to_contain_text("1 message")


def test_images_attach_only_for_a_vision_model(notebook, tiny_model_dir, tmp_path):
    png = tmp_path / "dot.png"
    png.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                                  "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"))
    register = f'ancia.models.register("tiny-eyes", {str(tiny_model_dir)!r}, title="Tiny with eyes", vision=True)'
    nb = notebook("images.ipynb", [PANEL_CELL, register])
    panel = nb.show_panel(0)
    attach = panel.get_by_role("button", name="Attach image")
    expect(attach).to_have_class(re.compile("ancia-attach-off"))  # no model sees images: it says what to pull
    nb.run(1)
    picker = panel.get_by_role("combobox", name="Model")
    expect(picker.locator("option[value='tiny-eyes']")).to_have_count(1)
    picker.select_option("tiny-eyes")
    try:
        expect(attach).to_be_visible()
        with panel.page.expect_file_chooser() as chooser:
            attach.click()
        chooser.value.set_files(str(png))
        thumb = panel.get_by_role("img", name="dot.png")
        expect(thumb).to_be_visible()
        panel.get_by_role("button", name="Remove image dot.png").click()
        expect(thumb).to_have_count(0)
    finally:
        picker.select_option("tiny")
    expect(attach).to_be_visible()


APPROVAL_CELL = '''# a tool that asks first, and a model made to call it
from scripted import install, says

@ancia.tool(confirm=True)
def launch(count: int) -> str:
    """Launch something that needs a yes."""
    return f"launched {count}"

ancia.models.set_params("tiny", max_tokens=100)
ancia.models.load()
install(says('<tool_call>{"name": "launch", "arguments": {"count": 3}}</tool_call>'))'''


def test_a_tool_that_asks_first_runs_after_approve(notebook, artifacts, tiny_params):
    nb = notebook("approve.ipynb", [PANEL_CELL, APPROVAL_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("button", name="New chat", exact=True).click()
    ask(panel, "launch it")
    card = panel.locator("details.ancia-tool").filter(has_text="launch")
    expect(card).to_contain_text("waiting for approval")
    expect(card).to_contain_text('"count": 3')
    panel.screenshot(path=str(artifacts / "panel-approval.png"))
    card.get_by_role("button", name="Approve tool call").click()
    expect(card).to_contain_text("done")
    expect(card).to_contain_text("launched 3")
    expect(card.get_by_role("button", name="Approve tool call")).to_have_count(0)
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")


FAST_CELL = '''# answers that run to max_tokens as fast as the tiny model goes
from scripted import endless, install

ancia.models.set_params("tiny", context_window=2048, max_tokens=2000)
ancia.models.load()
install(endless())'''

WATCH_JS = """panel => {
  const log = panel.querySelector('.ancia-messages');
  window.__ancia = { records: 0, first: 0, last: 0, user: null };
  const watch = window.__ancia;
  new MutationObserver((records) => {
    watch.records += records.length;
    watch.first = watch.first || performance.now();
    watch.last = performance.now();
    watch.user = watch.user || log.querySelector('article.ancia-role-user');
  }).observe(log, { childList: true, subtree: true, characterData: true });
}"""


def test_a_2000_token_answer_streams_without_rebuilding_the_list(notebook, tiny_params):
    nb = notebook("long.ipynb", [PANEL_CELL, FAST_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("button", name="New chat", exact=True).click()
    panel.evaluate(WATCH_JS)
    ask(panel, "Write me a long essay")
    answer = panel.get_by_role("article", name="Assistant message").last
    expect(answer).to_have_class(re.compile("ancia-streaming"))
    expect(answer).not_to_have_class(re.compile("ancia-streaming"), timeout=90_000)
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
    watch = panel.evaluate("""panel => ({ ...window.__ancia, userKept: window.__ancia.user ===
        panel.querySelector('article.ancia-role-user'), chars: panel.querySelector(
        'article.ancia-role-assistant .ancia-md').textContent.length })""")
    elapsed_ms = watch["last"] - watch["first"]
    assert watch["chars"] > 1500  # the whole answer is there
    assert watch["userKept"]  # the question's element was never rebuilt while the answer streamed
    assert watch["records"] <= elapsed_ms / 40 + 30, watch  # Markdown re-rendered at most every ~50 ms


def test_two_views_of_one_panel_stay_in_step(notebook):
    nb = notebook("twice.ipynb", ["import ancia_jupyter as ancia\np = ancia.panel(height='420px')\np", "p"])
    nb.show_panel(0)
    nb.run(1)
    first, second = nb.page.locator(f"{VISIBLE} .ancia-chat").nth(0), nb.page.locator(f"{VISIBLE} .ancia-chat").nth(1)
    expect(second.get_by_role("status", name="Model state")).to_be_visible()
    second.get_by_role("button", name="New chat", exact=True).click()
    second.get_by_role("button", name="Rename chat").click()
    second.get_by_role("textbox", name="Chat title").fill("Shared view")
    second.get_by_role("textbox", name="Chat title").press("Enter")
    expect(first.get_by_role("heading", name="Shared view")).to_be_visible()
    ask(first, "Seen twice?")
    for view in (first, second):
        expect(view.get_by_role("article", name="You message").last).to_have_text("Seen twice?")
        expect(view.get_by_role("article", name="Assistant message").last.locator(".ancia-md")).not_to_be_empty()


def test_a_reload_while_an_answer_streams_picks_it_up(notebook, page, tiny_params):
    nb = notebook("midway.ipynb", [PANEL_CELL, SLOW_CELL])
    panel = nb.show_panel(0)
    nb.run(1)
    panel.get_by_role("button", name="New chat", exact=True).click()
    panel.get_by_role("button", name="Model settings").click()
    panel.get_by_role("spinbutton", name="Max tokens").fill("900")
    panel.get_by_role("spinbutton", name="Max tokens").press("Enter")
    expect(panel.get_by_role("spinbutton", name="Max tokens")).to_have_value("900")
    panel.get_by_role("button", name="Model settings").click()
    ask(panel, "Keep talking while I reload")
    answer = panel.get_by_role("article", name="Assistant message").last
    expect(answer.locator(".ancia-md")).to_have_text(re.compile(r".{10,}"))
    nb.save()
    page.reload()
    nb.wait_idle()
    panel = nb.panel
    answer = panel.get_by_role("article", name="Assistant message").last
    lost = panel.get_by_role("alert").filter(has_text="Not connected to the kernel")
    expect(answer.or_(lost).first).to_be_visible(timeout=15_000)
    if lost.is_visible():  # ipywidgets can restore a widget without its comm while it is busy: run it again
        nb.run(0)
        panel = nb.panel
        answer = panel.get_by_role("article", name="Assistant message").last
    expect(answer).to_have_class(re.compile("ancia-streaming"))
    before = len(answer.locator(".ancia-md").inner_text())
    expect(answer.locator(".ancia-md")).to_have_text(re.compile(f".{{{before + 20},}}", re.DOTALL))
    panel.get_by_role("button", name="Stop").click()
    expect(answer.get_by_text("Stopped")).to_be_visible()
    expect(panel.get_by_role("status", name="Model state")).to_have_text("Ready")
