"""The example notebooks: kept clean in git, and the quickstart runs top to bottom, in a real kernel, on the real
default model, from where it lies, without writing anything next to it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.ipynb")), ids=lambda p: p.name)
def test_example_notebooks_are_valid_and_kept_without_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.outputs == [] and cell.execution_count is None for cell in code)


@pytest.mark.real_model
def test_quickstart_runs_top_to_bottom_on_the_default_model(smollm2, ancia_home, monkeypatch):
    from ancia_jupyter.app import close_app

    close_app()  # the kernel is the one that uses this data dir now
    before = _files(EXAMPLES)
    notebook = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    env = {**os.environ, "ANCIA_DATA_DIR": str(ancia_home), "ANCIA_MODELS_DIR": os.environ["ANCIA_MODELS_DIR"]}
    client = NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}})
    client.execute(env=env)
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs if o.output_type == "error"]
    assert errors == []
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/markdown", ""))
                     for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "smollm2-135m-instruct" in text and "Paris" in text
    assert _files(EXAMPLES) == before  # running the examples leaves the clone as it was
