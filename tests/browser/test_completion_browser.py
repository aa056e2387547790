"""Inline completion in JupyterLab and in Jupyter Notebook 7, typed the way a person types: ghost text from
the kernel's model appears in a code cell, Escape dismisses it (and leaves the cell), asking again (Alt+\\)
brings it back, and Tab accepts it into the cell. The cell names a live DataFrame: the prompt the model was
given holds its columns. The model is the tiny fill-in-the-middle GGUF (tests/tiny_fim.py), scripted to
suggest a column.
"""

from __future__ import annotations

import pytest
from lab import JupyterLab, Notebook
from playwright.sync_api import Page, expect
from tiny_fim import build_tiny_fim_gguf

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

# Every kernel of the server: ancia loaded, the model scripted, and each prompt written kept in PROMPTS.
KERNEL_START = """
from scripted import install, says
install(says(then='city")'))
get_ipython().run_line_magic("load_ext", "ancia_jupyter")
from ancia_jupyter.completion import prompt as _prompt
PROMPTS = []
_write = _prompt.PromptWriter.write
_prompt.PromptWriter.write = lambda self, request, live: PROMPTS.append(_write(self, request, live)) or PROMPTS[-1]
"""
DATA = 'import pandas as pd\ndf = pd.DataFrame({"city": ["Oslo", "Rome"], "temp": [3.5, 18.0]})'
CHECK = ('text = PROMPTS[-1].text\nprint("columns in the prompt:", "df: pandas.DataFrame, 2 rows × 2 columns: city ("'
         ' in text and "temp (float64)" in text, "| fim:", PROMPTS[-1].fim)')


@pytest.fixture
def coder(tmp_path) -> str:
    ancia.models.register("tiny-coder", str(build_tiny_fim_gguf(tmp_path / "tiny-coder.gguf")),
                          title="Tiny random coder")
    ancia.models.select("tiny-coder")
    ancia.models.set_params("tiny-coder", temperature=0.0)
    return "tiny-coder"


def test_ghost_text_from_the_kernel_is_dismissed_asked_again_and_accepted(front_end: JupyterLab, page: Page, coder,
                                                                            artifacts):
    front_end.at_kernel_start(KERNEL_START)
    notebook = Notebook(page, front_end, front_end.notebook("complete.ipynb", DATA, "", CHECK)).open()
    notebook.run(0)
    source = notebook.cell(1).locator(".cm-content")
    source.click()
    page.keyboard.type('by_city = df.groupby("', delay=40)
    ghost = page.locator(".jp-GhostText")
    expect(ghost).to_have_text('city")', timeout=30_000)
    folder = artifacts / "completion"
    folder.mkdir(exist_ok=True)
    page.screenshot(path=str(folder / f"ghost-text-{type(front_end).__name__.lower()}.png"))

    page.keyboard.press("Escape")  # JupyterLab leaves the editor, and the ghost text goes with it
    expect(ghost).to_have_count(0)
    expect(source).to_have_text('by_city = df.groupby("')
    page.keyboard.press("Enter")  # back into the cell, then JupyterLab's "Invoke Inline Completer"
    page.keyboard.press("End")
    page.keyboard.press("Alt+Backslash")
    expect(ghost).to_have_text('city")', timeout=30_000)
    page.keyboard.press("Tab")
    expect(ghost).to_have_count(0)
    expect(source).to_have_text('by_city = df.groupby("city")')

    check = notebook.run(2)
    expect(check.locator(".jp-OutputArea-output")).to_contain_text("columns in the prompt: True | fim: True")
