"""The Ancia sidebar in JupyterLab, driven in Chromium the way a person uses it: the tab, the command and
the shortcut; loading ancia into a notebook's kernel from the sidebar and asking; following the notebook
in focus and kernel restarts; sending a cell; stopping a long answer; refusing a kernel of another version.

Each test has its own JupyterLab server (``sidebar_lab``, from conftest.py) whose kernels use the test's
ANCIA_DATA_DIR, so the models registered here by the ``tiny`` / ``endless_model`` fixtures are the ones the
kernel sees.
"""

from __future__ import annotations

import json
import time

import pytest
from first_hour import load_ancia
from lab import VISIBLE, JupyterLab, Notebook
from playwright.sync_api import Locator, Page, expect

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

SESSIONS_CELL = "from ancia_jupyter.notebook import comm\nprint('sidebars:', comm.open_sessions())"


@pytest.fixture
def tiny_model(tiny) -> str:
    """The tiny model with a context window that holds the tools' prompt."""
    ancia.models.set_params(tiny, context_window=2048)
    return tiny


def sidebar(page: Page) -> Locator:
    return page.locator("#ancia-sidebar")


def open_sidebar(page: Page) -> Locator:
    page.get_by_role("tab", name="Ancia").click()
    panel = sidebar(page)
    expect(panel).to_be_visible()
    return panel


def answers(panel: Locator) -> Locator:
    return panel.locator(".ancia-role-assistant .ancia-md")


def test_tab_command_and_shortcut_without_a_notebook(sidebar_lab: JupyterLab, page: Page, shot, labextension):
    page.goto(sidebar_lab.tree())
    config = json.loads(page.locator("#jupyter-config-data").text_content())
    (ours,) = [e for e in config["federated_extensions"] if e["name"] == "ancia-jupyter"]
    assert (labextension / ours["load"]).is_file(), "JupyterLab serves another build of the sidebar"
    tab = page.get_by_role("tab", name="Ancia")
    expect(tab).to_be_visible(timeout=60_000)
    panel = open_sidebar(page)
    expect(panel.get_by_role("heading", name="Ancia")).to_be_visible()
    expect(panel.get_by_role("status")).to_have_text(
        "Open a notebook to chat with Ancia. The chat runs in the notebook's kernel: the same chats, models "
        "and settings as %ancia there.")
    expect(panel.get_by_role("textbox")).to_have_count(0)
    shot("no-notebook")

    tab.click()  # collapses the left area
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+A")
    expect(panel).to_be_visible()

    tab.click()
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#command-palette")
    palette.get_by_role("textbox").fill("Ancia: Open chat")
    palette.locator(".lm-CommandPalette-item", has_text="Ancia: Open chat").click()
    expect(panel).to_be_visible()


def test_load_ancia_ask_send_a_cell_and_follow_a_restart(sidebar_lab: JupyterLab, page: Page, shot, tiny_model):
    name = sidebar_lab.notebook("first.ipynb", "x = 6 * 7\ny = x + 1")
    Notebook(page, sidebar_lab, name).open()
    panel = open_sidebar(page)
    expect(panel.locator(".jp-AnciaSidebar-context")).to_have_text("first.ipynb · Python 3 (ipykernel)")
    shot("not-loaded")
    box = load_ancia(panel, name)
    shot("loaded")

    box.fill("Hello there")
    box.press("Enter")
    expect(answers(panel)).to_have_count(1)
    expect(answers(panel).last).not_to_be_empty(timeout=30_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    expect(panel.locator(".ancia-role-user")).to_contain_text("Hello there")
    shot("answered")
    (chat,) = ancia.chats.list()
    user, answer = ancia.chats.history(chat["id"])
    assert (user["role"], user["content"]) == ("user", "Hello there")
    assert answer["role"] == "assistant" and answer["status"] == "complete" and answer["content"]

    # "Send cell to Ancia" on a cell: the whole cell, fenced, waits in the message box.
    cell = page.locator(f"{VISIBLE} .jp-Cell").first
    cell.locator(".jp-InputArea-editor").click(button="right")
    page.get_by_role("menuitem", name="Send cell to Ancia").click()
    expect(box).to_have_value("Explain this code:\n```python\nx = 6 * 7\ny = x + 1\n```\n")
    expect(box).to_be_focused()
    # ... and only the selected text when there is a selection.
    second_line = cell.locator(".cm-line").nth(1)
    second_line.click()
    page.keyboard.press("End")
    page.keyboard.press("Shift+Home")
    second_line.click(button="right")
    page.get_by_role("menuitem", name="Send cell to Ancia").click()
    expect(box).to_have_value("Explain this code:\n```python\ny = x + 1\n```\n")
    shot("cell-sent")

    # A restarted kernel is a new process without ancia: the sidebar says so, then loads it again.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:restart-kernel'); }")  # it waits for the dialog
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Restart Kernel?")
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    box = load_ancia(panel, name)
    expect(panel.locator(".ancia-role-user")).to_contain_text("Hello there")  # the chat lives in the store
    expect(answers(panel)).to_have_count(1)
    shot("after-restart")

    # Another kernel for the notebook: the sidebar follows it; no kernel at all: it says so.
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.changeKernel({name: 'python3'})"
                  ".then(() => null)")
    load_ancia(panel, name)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    expect(panel.get_by_role("status")).to_have_text(
        "first.ipynb has no kernel. Select a Python kernel to chat with Ancia.")
    expect(panel.get_by_role("textbox")).to_have_count(0)


def test_follows_the_notebook_in_focus(sidebar_lab: JupyterLab, page: Page, shot, tiny_model, tmp_path):
    first = sidebar_lab.notebook("one.ipynb", SESSIONS_CELL)
    other_data = tmp_path / "other-data"
    second = sidebar_lab.notebook(
        "two.ipynb", f"import os\nos.environ['ANCIA_DATA_DIR'] = {str(other_data)!r}", SESSIONS_CELL)
    one = Notebook(page, sidebar_lab, first).open()
    two = Notebook(page, sidebar_lab, second)
    panel = open_sidebar(page)
    box = load_ancia(panel, first)
    box.fill("Hello from one")
    box.press("Enter")
    expect(answers(panel).last).not_to_be_empty(timeout=30_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)

    # Opening another notebook moves the sidebar to its kernel, which has not loaded ancia.
    page.evaluate("path => window.jupyterapp.commands.execute('docmanager:open', {path}).then(() => null)", second)
    expect(panel.locator(".jp-AnciaSidebar-context")).to_contain_text("two.ipynb")
    two.wait_idle()
    expect(panel.get_by_role("status")).to_contain_text("Ancia is not loaded in the kernel of two.ipynb",
                                                        timeout=30_000)
    expect(panel.get_by_text("Hello from one")).to_have_count(0)
    two.run(0)  # this kernel keeps its chats elsewhere
    # A cell sent before the chat is there waits for it.
    page.locator(f"{VISIBLE} .jp-Cell").nth(1).locator(".jp-InputArea-editor").click(button="right")
    page.get_by_role("menuitem", name="Send cell to Ancia").click()
    box = load_ancia(panel, second)
    expect(box).to_have_value(f"Explain this code:\n```python\n{SESSIONS_CELL}\n```\n")
    expect(panel.get_by_text("Ask anything. Your chats stay on this machine")).to_be_visible()
    expect(panel.get_by_text("Hello from one")).to_have_count(0)
    shot("second-notebook")

    # Back on the first notebook: its kernel's chat again, over one comm (the one opened before is closed).
    page.get_by_role("tab", name="one.ipynb").click()
    expect(panel.locator(".jp-AnciaSidebar-context")).to_contain_text("one.ipynb")
    expect(panel.locator(".ancia-role-user")).to_contain_text("Hello from one", timeout=30_000)
    output = one.run(0).locator(".jp-OutputArea-output")
    expect(output).to_have_text("sidebars: 1")
    shot("first-notebook-again")


def test_watch_a_long_answer_stream_and_stop_it(sidebar_lab: JupyterLab, page: Page, shot, endless_model):
    name = sidebar_lab.notebook("long.ipynb")
    Notebook(page, sidebar_lab, name).open()
    panel = open_sidebar(page)
    box = load_ancia(panel, name)
    box.fill("Tell me a very long story")
    box.press("Enter")
    stop = panel.get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=30_000)
    answer = answers(panel).last
    expect(answer).not_to_be_empty(timeout=30_000)
    first = len(answer.inner_text())
    deadline = time.monotonic() + 20
    while len(answer.inner_text()) <= first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(answer.inner_text()) > first, "the answer did not grow while it was being written"
    shot("streaming")

    stop.click()
    expect(stop).to_be_hidden(timeout=15_000)
    expect(panel.locator(".ancia-role-assistant .ancia-msg-status")).to_have_text("Stopped")
    shot("stopped")
    (chat,) = ancia.chats.list()
    stored = ancia.chats.history(chat["id"])[-1]
    assert stored["status"] == "stopped"
    assert stored["content"]


def test_refuses_a_kernel_of_another_version(sidebar_lab: JupyterLab, page: Page, shot, tiny_model):
    # The kernel pretends to run another version (the package's and the snapshot's, wherever it is read).
    pretend = "import ancia_jupyter, ancia_jupyter.notebook.panel_session\nancia_jupyter.__version__ = ancia_jupyter.notebook.panel_session.__version__ = {!r}"
    name = sidebar_lab.notebook("old.ipynb", pretend.format("0.0.1") + "\n%load_ext ancia_jupyter",
                                pretend.format(ancia.__version__), SESSIONS_CELL)
    nb = Notebook(page, sidebar_lab, name).open()
    panel = open_sidebar(page)
    expect(panel.get_by_role("status")).to_contain_text("Ancia is not loaded in the kernel of old.ipynb")
    nb.run(0)  # loading ancia from a cell connects the sidebar
    expect(panel.get_by_role("status")).to_contain_text(
        f"Version mismatch: this sidebar is Ancia {ancia.__version__}, but the kernel runs ancia-jupyter 0.0.1.")
    expect(panel.get_by_role("status")).to_contain_text(f"pip install ancia-jupyter=={ancia.__version__}")
    expect(panel.get_by_role("textbox", name="Message")).to_have_count(0)
    shot("version-mismatch")
    expect(nb.run(2).locator(".jp-OutputArea-output")).to_have_text("sidebars: 0")  # refused: closed

    nb.run(1)  # the kernel now runs the sidebar's version
    panel.get_by_role("button", name="Try again").click()
    expect(panel.get_by_role("textbox", name="Message")).to_be_visible()
