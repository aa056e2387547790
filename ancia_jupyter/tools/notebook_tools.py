"""The assistant works in the notebook: ``notebook.cells``, ``notebook.insert_cell`` and ``notebook.run_code``.

Off until the user turns on the setting ``notebook_agent`` (``%ancia agent on``, the panel's "Work in the
notebook" switch), because they read and change the user's work. ``notebook.run_code`` asks before every run
(``confirm=True``): the approval card shows the exact code, and ``approve=`` decides in the API. The tools reach
the notebook through the ``NotebookAccess`` in their ``ToolContext`` (``notebook_access.py``): a front end that
answers for the notebook when one is attached, the kernel itself otherwise, and they say which in their output.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from ..errors import ToolError
from .calling import current
from .notebook_access import Cells

SOURCE_CHARS = 1_500  # of each cell's source in the listing
OUTPUT_CHARS = 400  # of each cell's outputs in the listing
LISTED = 60  # the most cells listed (the last ones)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]} […{len(text) - limit} more characters]"


def _cell_text(cell: dict[str, Any], active: str | None) -> str:
    count = cell.get("execution_count")
    head = f"### cell {cell.get('id')} · {cell.get('type', 'code')}" + (f" · [{count}]" if count else "") \
        + (" · active" if cell.get("id") == active else "")
    lines = [head]
    source = str(cell.get("source") or "")
    fence = "python" if cell.get("type") == "code" else ""
    lines += [f"```{fence}", _cut(source, SOURCE_CHARS), "```"] if source.strip() else ["(empty)"]
    outputs = "\n".join(str(o) for o in cell.get("outputs") or [] if str(o).strip())
    if outputs:
        lines += ["output:", "```", _cut(outputs, OUTPUT_CHARS), "```"]
    return "\n".join(lines)


def _cells_text(found: Cells) -> str:
    if found.history_because:
        head = (f"This is the kernel's input history, not the notebook: {found.history_because}. The code run so "
                "far, in order, with each result; the ids are history entries, not cell ids.")
        if not found.cells:
            return head + "\n\nNothing has run in this kernel yet."
    else:
        head = f"The notebook {found.path or ''}".rstrip() + f", {len(found.cells)} cells, in order."
        if not found.cells:
            return head
    shown = found.cells[-LISTED:]
    left = len(found.cells) - len(shown)
    lines = [head] + ([f"({left} earlier cells are not shown.)"] if left else [])
    return "\n\n".join(lines + [_cell_text(c, found.active) for c in shown])


def cells() -> str:
    """See the user's notebook: every cell's id, kind, source and a short part of its output. Look before you
    insert a cell or run code, so that what you add fits what is there."""
    return _cells_text(current().notebook.cells())


def insert_cell(source: str, kind: Literal["code", "markdown"] = "code", after: str | None = None) -> str:
    """Add a code or Markdown cell to the user's notebook, without running it.

    Args:
        source: The cell's text.
        kind: "code" or "markdown".
        after: The id of the cell to insert after (from notebook_cells); leave it out for below the active cell.
    """
    if kind not in ("code", "markdown"):
        raise ToolError(f"kind must be 'code' or 'markdown' (got {kind!r})")
    placed = current().notebook.insert(source, kind, after)
    below = f" below cell {placed['after']}" if placed.get("after") else " at the top"
    return f"Inserted a {kind} cell (id {placed.get('id')}){below}. It has not run."


def run_code(code: str) -> str:
    """Run Python code in the user's kernel, where the notebook's variables are, and get back what it prints, the
    value of its last line and any error. The user approves each run. Where the notebook is open, the code goes
    into a new cell below and runs there, so it stays in the notebook.

    Args:
        code: The Python code to run.
    """
    if not code.strip():
        raise ToolError("there is no code to run")
    context = current()
    notebook = context.notebook

    def stop() -> bool:
        return context.cancelled.is_set() or notebook.stop_requested(context.chat_id)

    left = context.deadline - time.monotonic() if context.deadline is not None else 600.0
    result = notebook.run(code, stop=stop, timeout=max(1.0, left))
    return ("The run was stopped.\n\n" if result.stopped else "") + result.text()


def register(registry: Any) -> None:
    registry.register(cells, name="notebook.cells", requires="notebook_agent")
    registry.register(insert_cell, name="notebook.insert_cell", requires="notebook_agent")
    registry.register(run_code, name="notebook.run_code", requires="notebook_agent", confirm=True)
