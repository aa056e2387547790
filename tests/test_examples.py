"""The quickstart notebook runs top to bottom, in a real kernel, on the real default model."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.real_model


def test_quickstart_runs_top_to_bottom_on_the_default_model(smollm2, ancia_home, monkeypatch):
    from ancia_jupyter.app import close_app

    close_app()  # the kernel is the one that uses this data dir now
    notebook = nbformat.read(REPO / "examples" / "quickstart.ipynb", as_version=4)
    env = {**os.environ, "ANCIA_DATA_DIR": str(ancia_home), "ANCIA_MODELS_DIR": os.environ["ANCIA_MODELS_DIR"]}
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO / "examples")}})
    client.execute(env=env)
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "smollm2-135m-instruct" in text and "Paris" in text
