"""Steps and measures the first-hour browser tests share: the theme, the sidebar opened from the View menu, and
whether a text fits where it is shown (a picker's label, a title on two lines)."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page, expect

THEMES = {False: "JupyterLab Light", True: "JupyterLab Dark"}

# Whether the label of a <select> fits inside it: the text's width in its font, plus the arrow and padding.
SELECT_FITS = """(select) => {
  const style = getComputedStyle(select);
  const context = document.createElement('canvas').getContext('2d');
  context.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const text = select.selectedOptions[0] ? select.selectedOptions[0].text : '';
  const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
  return context.measureText(text).width + padding + 20 <= select.clientWidth;
}"""
# How many lines of text an element shows.
LINES = """(el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
  const shown = Math.round(el.clientHeight / parseFloat(getComputedStyle(el).lineHeight));
  return Math.min(tops.size, shown);
}"""


def set_theme(page: Page, dark: bool) -> None:
    """Switch the front end's theme (Settings > Theme) and wait until it is applied."""
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{THEMES[dark]}'}})")
    page.wait_for_function(f"document.body.dataset.jpThemeLight === '{'false' if dark else 'true'}'")
    page.wait_for_timeout(300)  # the theme's stylesheet is in


def fits(select: Locator) -> bool:
    return bool(select.evaluate(SELECT_FITS))


def lines(element: Locator) -> int:
    return int(element.evaluate(LINES))


def view_menu(page: Page, item: str) -> None:
    """Click an entry of the View menu."""
    page.get_by_role("menuitem", name="View", exact=True).click()
    page.locator(".lm-Menu-item", has_text=item).first.click()  # a ticked entry is a menuitemcheckbox


def open_sidebar(page: Page) -> Locator:
    """View > Ancia Chat: in JupyterLab and in Notebook 7, whose left area has no tabs to click."""
    view_menu(page, "Ancia Chat")
    panel = page.locator("#ancia-sidebar")
    expect(panel).to_be_visible()
    return panel


def load_ancia(panel: Locator, notebook: str) -> Locator:
    """The sidebar's load button in a kernel without ancia; returns the message box."""
    expect(panel.get_by_role("status")).to_contain_text(f"Ancia is not loaded in the kernel of {notebook}",
                                                        timeout=30_000)
    panel.get_by_role("button", name="Load Ancia in this kernel").click()
    box = panel.get_by_role("textbox", name="Message")
    expect(box).to_be_visible(timeout=30_000)
    return box


def shoot(page: Page, folder: Path, name: str, dark: bool) -> Path:
    """test-artifacts/first-hour/<name>-light.png or -dark.png"""
    path = folder / f"{name}-{'dark' if dark else 'light'}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    return path
