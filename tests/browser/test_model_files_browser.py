"""Freeing disk space from the notebook panel, the way a person does: the model settings list the models on
disk with their size; a downloaded model's files can be deleted after a confirmation that says how much space
that frees; your own model's files are never offered."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PANEL_CELL = "import ancia_jupyter as ancia\nancia.panel()"
MODEL = "smollm2-135m-instruct"
TITLE = "SmolLM2 135M Instruct (embedded, Q4_1)"
MB = 1024 * 1024


def test_delete_a_downloaded_models_files_after_a_confirmation(notebook, lab, artifacts):
    # What a download leaves in the server's models dir, for either runtime: 3 MB each.
    gguf = lab.models_dir / ".gguf" / f"{MODEL}.gguf"
    mlx = lab.models_dir / MODEL
    gguf.parent.mkdir(parents=True, exist_ok=True)
    mlx.mkdir(parents=True, exist_ok=True)
    gguf.write_bytes(b"\0" * 3 * MB)
    (mlx / "config.json").write_text("{}")
    (mlx / "model.safetensors").write_bytes(b"\0" * 3 * MB)

    nb = notebook("files.ipynb", [PANEL_CELL])
    panel = nb.show_panel()
    panel.get_by_role("button", name="Model settings").click()
    on_disk = panel.get_by_role("list", name="Models on disk")
    mine = on_disk.get_by_role("listitem", name="Tiny random llama")
    expect(mine).to_contain_text("your own files")
    expect(mine.get_by_role("button")).to_have_count(0)  # never offered for files you registered
    downloaded = on_disk.get_by_role("listitem", name=TITLE)
    expect(downloaded).to_contain_text("3 MB")

    downloaded.get_by_role("button", name=f"Delete files of {TITLE}").click()
    confirm = downloaded.get_by_role("group", name=f"Delete the files of {TITLE}?")
    expect(confirm).to_contain_text("This frees 3 MB.")
    panel.screenshot(path=str(artifacts / "panel-delete-model-files.png"))
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_have_count(0)
    assert gguf.exists() and mlx.exists()

    downloaded.get_by_role("button", name=f"Delete files of {TITLE}").click()
    confirm.get_by_role("button", name="Delete files").click()
    expect(panel.get_by_role("status").filter(has_text=f"Deleted the files of {TITLE}: 3 MB freed.")).to_be_visible()
    expect(downloaded).to_have_count(0)
    assert not gguf.exists() and not mlx.exists()
    picker = panel.get_by_role("combobox", name="Model")
    expect(picker.locator(f"option[value='{MODEL}']")).to_contain_text("↓")  # to download
