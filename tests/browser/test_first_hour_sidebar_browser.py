"""The sidebar in a new user's first hour, in JupyterLab and in Jupyter Notebook 7, light and dark: opened from
the View menu (Notebook 7's left area has no tabs) or the shortcut; chat titles that wrap to two lines with the
whole title in a tooltip; a model picker whose short label fits, the full title in its tooltip; tools that say
when they cannot run and why, and a "trusted" switch for the tools that reach the network; and, in Notebook 7,
a sidebar that follows the notebook open in its browser tab."""

from __future__ import annotations

import re

import pytest
from first_hour import fits, lines, load_ancia, open_sidebar, set_theme, shoot, view_menu
from lab import JupyterLab, Notebook
from playwright.sync_api import Page, expect

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

LONG = "How do I read a CSV file with pandas and plot two of its columns against each other"
SMOLLM2 = "smollm2-135m-instruct"
TICKED = re.compile(r"\blm-mod-toggled\b")  # a menu entry with a tick


def tool_trusted(name: str) -> bool:
    (row,) = [t for t in ancia.tools.list() if t["name"] == name]
    return bool(row["trusted"])


def test_titles_the_picker_and_the_tools_fit_and_say_what_is_true(front_end: JupyterLab, page: Page, tiny,
                                                                   artifacts):
    ancia.chats.create("Short one")
    ancia.chats.create(LONG)
    name = front_end.notebook("first.ipynb", "x = 1")
    Notebook(page, front_end, name).open()
    panel = open_sidebar(page)
    load_ancia(panel, name)
    folder = artifacts / "first-hour" / type(front_end).__name__.lower()

    panel.get_by_role("button", name="Show chats").click()
    item = panel.get_by_role("list", name="Chats").get_by_role("button", name=LONG)
    expect(item).to_have_attribute("title", LONG)
    assert lines(item.locator(".ancia-chat-title")) == 2, "the title in the list of chats wraps to two lines"
    page.wait_for_timeout(400)
    shoot(page, folder, "sidebar-chats", dark=False)
    item.click()
    title = panel.locator(".ancia-title")
    expect(title).to_have_text(LONG)
    expect(title).to_have_attribute("title", LONG)
    assert lines(title) == 2, "the chat's title wraps to two lines"

    picker = panel.get_by_role("combobox", name="Model")
    expect(picker).to_have_attribute("title", re.compile("^Tiny random llama · <1 MB on disk"))
    assert fits(picker)
    picker.select_option(SMOLLM2)
    expect(picker.locator("option:checked")).to_have_text("SmolLM2 135M ↓")
    expect(picker).to_have_attribute("title", "SmolLM2 135M Instruct (embedded, Q4_1) · 90 MB to download")
    assert fits(picker), "the picker's label is cut"
    assert ancia.models.selected() == SMOLLM2

    panel.get_by_role("button", name="Model settings").click()
    drawer = panel.get_by_role("region", name="Model settings")
    expect(drawer).to_contain_text("90 MB to download")
    expect(drawer).not_to_contain_text("on disk ·")
    expect(drawer.get_by_role("slider", name="Max tokens slider")).to_have_attribute("max", "2048")
    expect(drawer.get_by_role("slider", name="Context window slider")).to_have_attribute("max", "8192")

    variables = drawer.get_by_role("switch", name="Tool kernel.variables")
    row = drawer.locator(".ancia-tool-row[data-tool='kernel.variables']")
    expect(variables).to_be_disabled()
    expect(variables).not_to_be_checked()
    expect(row).to_contain_text("unavailable")
    expect(row).to_have_attribute("title", re.compile("Unavailable while Kernel context is off"))
    search = drawer.locator(".ancia-tool-row[data-tool='web.search.duckduckgo']")
    expect(search).to_contain_text("asks first")
    expect(search.get_by_role("checkbox", name="Trust web.search.duckduckgo")).not_to_be_checked()
    drawer.get_by_role("switch", name="Kernel context").scroll_into_view_if_needed()
    shoot(page, folder, "sidebar-tools", dark=False)

    drawer.get_by_role("switch", name="Kernel context").check()
    expect(variables).to_be_enabled()
    expect(variables).to_be_checked()
    expect(row).not_to_contain_text("unavailable")
    assert ancia.settings.get()["kernel_context"] is True

    search.get_by_role("checkbox", name="Trust web.search.duckduckgo").check()
    expect(search).not_to_contain_text("asks first")
    assert tool_trusted("web.search.duckduckgo")
    set_theme(page, dark=True)
    shoot(page, folder, "sidebar-tools", dark=True)
    search.get_by_role("checkbox", name="Trust web.search.duckduckgo").uncheck()
    expect(search).to_contain_text("asks first")
    assert not tool_trusted("web.search.duckduckgo")

    panel.get_by_role("button", name="Model settings").click()
    panel.get_by_role("button", name="Show chats").click()
    page.wait_for_timeout(400)  # the list slides in
    shoot(page, folder, "sidebar-chats", dark=True)
    set_theme(page, dark=False)


def test_notebook7_shows_the_sidebar_from_the_view_menu_and_it_follows_the_notebook_in_its_tab(
        notebook7, page: Page, tiny, artifacts):
    ancia.models.set_params(tiny, context_window=2048)
    first = notebook7.notebook("first.ipynb", "x = 6 * 7")
    second = notebook7.notebook("second.ipynb", "y = 1")
    Notebook(page, notebook7, first).open()
    panel = page.locator("#ancia-sidebar")
    expect(panel).to_be_hidden()

    page.get_by_role("menuitem", name="View", exact=True).click()
    entry = page.locator(".lm-Menu-item[data-command='ancia:toggle']")  # a menuitemcheckbox once ticked
    expect(entry).to_have_text("Ancia Chat")
    expect(entry).not_to_have_class(TICKED)
    entry.click()
    expect(panel).to_be_visible()
    page.get_by_role("menuitem", name="View", exact=True).click()
    expect(entry).to_have_class(TICKED)
    entry.click()  # ticked: hides it again
    expect(panel).to_be_hidden()
    page.keyboard.press("Control+Shift+A")  # the same shortcut as in JupyterLab
    expect(panel).to_be_visible()
    view_menu(page, "Ancia Chat")
    expect(panel).to_be_hidden()

    panel = open_sidebar(page)
    expect(panel.locator(".jp-AnciaSidebar-context")).to_have_text("first.ipynb · Python 3 (ipykernel)")
    box = load_ancia(panel, first)
    box.fill("Hello there")
    box.press("Enter")
    answer = panel.locator(".ancia-role-assistant .ancia-md")
    expect(answer).to_have_count(1, timeout=30_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=30_000)
    expect(panel.locator(".ancia-role-user")).to_contain_text("Hello there")
    folder = artifacts / "first-hour" / "notebook7"
    shoot(page, folder, "sidebar-answered", dark=False)
    set_theme(page, dark=True)
    shoot(page, folder, "sidebar-answered", dark=True)
    set_theme(page, dark=False)

    # Another notebook in another browser tab: that tab's sidebar follows it.
    other = page.context.new_page()
    Notebook(other, notebook7, second).open()
    other_panel = open_sidebar(other)
    expect(other_panel.locator(".jp-AnciaSidebar-context")).to_have_text("second.ipynb · Python 3 (ipykernel)")
    expect(other_panel.get_by_role("status")).to_contain_text("Ancia is not loaded in the kernel of second.ipynb",
                                                              timeout=30_000)
    expect(panel.locator(".ancia-role-user")).to_contain_text("Hello there")  # the first tab's chat is as it was
