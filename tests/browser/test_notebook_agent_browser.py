"""The assistant works in the notebook, from the JupyterLab sidebar: the user turns it on with the "Work in the
notebook" switch, the model's notebook.run_code call waits on an approval card that shows the code, and the
approved code goes into a new cell below and runs there, its output in the notebook; a denied call changes
nothing; Stop interrupts a cell that runs.

The kernel scripts the tiny model's answers (tests/scripted.py): each question's first generation is a tool
call, the next one "Done.".
"""

from __future__ import annotations

import json
import re
import time

import pytest
from lab import VISIBLE, JupyterLab, Notebook
from playwright.sync_api import Locator, Page, expect

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

APPROVED = "x = 41 + 1\nprint('x is', x)"
DENIED = "y = 1"
SLEEPS = "import time\ntime.sleep(30)"
KERNEL_RUN = """async code => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false });
  let out = '';
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
  await future.done;
  return out.trim();
}"""

ASK_THE_NOTEBOOK = """import threading, ancia_jupyter as ancia
_r = {}

def _ask():
    try:
        _r["cells"] = ancia.tools.call("notebook.cells")
        _r["insert"] = ancia.tools.call("notebook.insert_cell", {"source": "## Notes", "kind": "markdown"})
    except Exception as exc:
        _r["error"] = repr(exc)

threading.Thread(target=_ask).start()"""


def tool_call(code: str) -> str:
    return "<tool_call>" + json.dumps({"name": "notebook_run_code", "arguments": {"code": code}}) + "</tool_call>"


@pytest.fixture
def agent_lab(sidebar_lab: JupyterLab, tiny) -> JupyterLab:
    """A server whose kernels answer three questions with a run of APPROVED, DENIED and SLEEPS, each then "Done.";
    only notebook.run_code is on: the tiny model's tokenizer spends a token on every few characters, and the
    tools' descriptions may take at most half its context window."""
    ancia.models.set_params(tiny, context_window=2048, max_tokens=300)
    for tool in ancia.tools.list():
        if tool["name"] != "notebook.run_code":
            ancia.tools.disable(tool["name"])
    texts = [tool_call(APPROVED), "Done.", tool_call(DENIED), "Done.", tool_call(SLEEPS), "Done."]
    sidebar_lab.at_kernel_start(f"from scripted import install, says\ninstall(says(*{texts!r}))\n")
    return sidebar_lab


def ask(panel: Locator, box: Locator, question: str) -> Locator:
    """Ask, and return the card of the notebook.run_code call it makes."""
    box.fill(question)
    box.press("Enter")
    card = panel.locator("details.ancia-tool").filter(has_text="run_code").last
    expect(card).to_contain_text("waiting for approval", timeout=60_000)
    return card


def test_the_sidebar_runs_approved_code_in_a_new_cell_and_nothing_denied(agent_lab: JupyterLab, page: Page, shot):
    name = agent_lab.notebook("agent.ipynb", "data = [3, 4]")
    notebook = Notebook(page, agent_lab, name).open()
    page.get_by_role("tab", name="Ancia").click()
    panel = page.locator("#ancia-sidebar")
    panel.get_by_role("button", name="Load Ancia in this kernel").click(timeout=30_000)
    box = panel.get_by_role("textbox", name="Message")
    expect(box).to_be_visible(timeout=30_000)

    panel.get_by_role("button", name="Model settings").click()
    switch = panel.get_by_role("switch", name="Work in the notebook")
    expect(switch).not_to_be_checked()
    switch.check()
    deadline = time.monotonic() + 10
    while not ancia.settings.get()["notebook_agent"]:
        assert time.monotonic() < deadline, "the switch did not turn the setting on"
        time.sleep(0.1)
    panel.get_by_role("button", name="Model settings").dispatch_event("click")  # the open drawer covers it
    expect(panel.get_by_role("region", name="Model settings")).to_be_hidden()
    cells = page.locator(f"{VISIBLE} .jp-Cell")
    expect(cells).to_have_count(1)

    # Approved: the code, as code, on the card; then a new cell below that runs, its output in the notebook.
    card = ask(panel, box, "Make x")
    expect(card.locator("pre.ancia-agent-code")).to_have_text(APPROVED)
    shot("agent-approval")
    card.get_by_role("button", name="Approve tool call").click()
    expect(cells).to_have_count(2, timeout=30_000)
    expect(cells.nth(1).locator(".jp-InputArea-editor")).to_contain_text("x = 41 + 1")
    expect(cells.nth(1).locator(".jp-OutputArea-output")).to_have_text("x is 42", timeout=30_000)
    expect(cells.nth(1).locator(".jp-InputPrompt")).to_contain_text("[")
    expect(card).to_contain_text("Ran in a new cell", timeout=30_000)
    expect(card).to_contain_text("x is 42")
    expect(card.locator("pre.ancia-agent-code")).to_have_text(APPROVED)  # stored, then drawn again: still code
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    shot("agent-ran")

    # Denied: no cell, nothing set.
    card = ask(panel, box, "Make y")
    card.get_by_role("button", name="Deny tool call").click()
    expect(card).to_contain_text("denied by the user", timeout=30_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    expect(cells).to_have_count(2)
    assert page.evaluate(KERNEL_RUN, "print(sorted(k for k in ('x', 'y') if k in globals()))") == "['x']"

    # Stop while the cell runs: the kernel is interrupted, the cell ends with KeyboardInterrupt.
    card = ask(panel, box, "Wait a while")
    card.get_by_role("button", name="Approve tool call").click()
    expect(cells).to_have_count(3, timeout=30_000)
    expect(cells.nth(2).locator(".jp-InputPrompt")).to_contain_text("*", timeout=30_000)
    stopped = time.monotonic()
    panel.get_by_role("button", name="Stop").click()
    expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("KeyboardInterrupt", timeout=10_000)
    print(f"Stop to KeyboardInterrupt in the running cell: {time.monotonic() - stopped:.2f} s")
    expect(card).to_contain_text("KeyboardInterrupt", timeout=10_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    shot("agent-stopped")
    notebook.wait_idle()
    (chat,) = ancia.chats.list()
    tools = [m for m in ancia.chats.history(chat["id"]) if m["role"] == "tool"]
    assert [m["tool_name"] for m in tools] == ["notebook_run_code"] * 3
    assert "x is 42" in tools[0]["content"] and tools[1]["content"] == "error: denied by the user"

    # The other two tools, asked from a thread while the kernel is idle: the sidebar lists and inserts.
    ancia.tools.enable("notebook.cells")
    ancia.tools.enable("notebook.insert_cell")
    assert page.evaluate(KERNEL_RUN, ASK_THE_NOTEBOOK) == ""
    expect(cells).to_have_count(4, timeout=10_000)
    assert page.evaluate(KERNEL_RUN, "print(_r.get('error'))") == "None"
    expect(cells.nth(3)).to_have_class(re.compile("jp-MarkdownCell"))
    expect(cells.nth(3).locator("h2")).to_contain_text("Notes")  # rendered
    listing = page.evaluate(KERNEL_RUN, "print(_r['cells'])")
    assert listing.startswith("The notebook agent.ipynb, 3 cells, in order.")
    assert "data = [3, 4]" in listing and "x is 42" in listing and "KeyboardInterrupt" in listing
    assert page.evaluate(KERNEL_RUN, "print(_r['insert'])").startswith("Inserted a markdown cell (id ")
