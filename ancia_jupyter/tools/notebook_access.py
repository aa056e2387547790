"""The notebook as the notebook tools (``notebook_tools.py``) reach it: through a front end that answers for it
when one is attached, through the kernel itself otherwise.

The tools cannot import the front ends, which live in a room above (``notebook/``). A front end that can answer
for the notebook (the JupyterLab sidebar, in JupyterLab and Notebook 7, over its comm) attaches itself to the
app's ``NotebookAccess`` instead (``notebook/notebook_bridge.py``) and detaches when it goes. Without one, the
kernel stands in: its input and output history for the cells, its namespace for running code; inserting a
cell is refused.

A front end runs code as a new cell, through the kernel's main thread. While that thread runs the cell that
asked (``%%ancia``, ``ancia.chat`` in a cell), no other cell can run until it ends, so the code runs in the
namespace instead (``main_thread_busy``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import ToolError
from .kernel_run import RunResult, describe_value, run_in_namespace

FRONT_END_WAIT = 10.0  # seconds a front end has to list or insert cells
HISTORY_CELLS = 50  # the most entries of the kernel's history listed in place of the notebook
NO_FRONT_END = ("no notebook front end is connected (open the notebook in JupyterLab or Notebook 7 with the Ancia "
                "sidebar showing it)")
BUSY = "the kernel is running a cell (the one that asked, say), and no new cell can run before it ends"
BUSY_FRONT_END = "the notebook's front end cannot answer while the kernel runs a cell (the one that asked, say)"
NO_KERNEL = "The notebook tools need an IPython kernel (a Jupyter notebook or IPython); there is none here."


class FrontEnd(Protocol):
    """A front end that answers for the notebook of this kernel (``notebook/notebook_bridge.py``)."""

    @property
    def answers_while_busy(self) -> bool: ...  # its replies arrive while a cell runs (a comm on a subshell)

    def request(self, op: str, args: dict[str, Any], *, timeout: float,
                stop: Callable[[], bool] | None = None) -> Any:
        """The front end's data for ``op``; a ``ToolError`` in one line when it refuses or does not answer. When
        ``stop()`` turns true, the front end is asked to interrupt the kernel, and its reply still awaited."""
        ...


@dataclass(frozen=True)
class Cells:
    """The cells the model is shown: the notebook's, or the kernel's history standing in for them."""

    cells: list[dict[str, Any]]  # {id, type, source, execution_count, outputs: [text]}
    active: str | None = None
    path: str | None = None
    history_because: str | None = None  # set when these are the kernel's history: why


def kernel_shell() -> Any:
    """The IPython shell of this kernel; a ``ToolError`` without one (the CLI, plain Python)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        raise ToolError(NO_KERNEL)
    return shell


def main_thread_busy() -> bool:
    """Whether the kernel's main thread is running a cell now (the cell that asked, say)."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name in ("run_code", "run_cell") and \
                frame.f_globals.get("__name__") == "IPython.core.interactiveshell":
            return True
        frame = frame.f_back
    return False


def history_cells(because: str) -> Cells:
    """The kernel's input history as typed (magics as magics) and its results (``Out``), the last
    ``HISTORY_CELLS``."""
    shell = kernel_shell()
    inputs = getattr(shell.history_manager, "input_hist_raw", None) or shell.user_ns.get("In") or []
    outputs = shell.user_ns.get("Out") or {}
    cells = [{"id": f"In[{n}]", "type": "code", "source": source, "execution_count": None,
              "outputs": [describe_value(outputs[n])] if n in outputs else []}
             for n, source in enumerate(inputs) if n and str(source).strip()]
    return Cells(cells[-HISTORY_CELLS:], history_because=because)


class NotebookAccess:
    """The app's door to the notebook: the front ends attached to it, newest first, and the kernel's fallback.
    ``stopped(chat_id)`` says whether that chat's answer was asked to stop."""

    def __init__(self, stopped: Callable[[int], bool] | None = None) -> None:
        self._stopped = stopped
        self._front_ends: list[FrontEnd] = []
        self._lock = threading.Lock()

    def attach(self, front_end: FrontEnd) -> Callable[[], None]:
        """``front_end`` answers for the notebook from now on; returns the function that detaches it."""
        with self._lock:
            self._front_ends.append(front_end)

        def detach() -> None:
            with self._lock:
                if front_end in self._front_ends:
                    self._front_ends.remove(front_end)

        return detach

    def front_end(self) -> FrontEnd | None:
        """The newest front end attached, if any."""
        with self._lock:
            return self._front_ends[-1] if self._front_ends else None

    def stop_requested(self, chat_id: int | None) -> bool:
        return chat_id is not None and self._stopped is not None and self._stopped(chat_id)

    def _answering(self) -> tuple[FrontEnd | None, str]:
        """The front end that can answer now, or None and why not."""
        front_end = self.front_end()
        if front_end is None:
            return None, NO_FRONT_END
        if not front_end.answers_while_busy and main_thread_busy():
            return None, BUSY_FRONT_END
        return front_end, ""

    def cells(self) -> Cells:
        front_end, why = self._answering()
        if front_end is None:
            return history_cells(why)
        data = _object(front_end.request("cells", {}, timeout=FRONT_END_WAIT))
        return Cells(list(data.get("cells") or []), data.get("active"), data.get("path"))

    def insert(self, source: str, kind: str, after: str | None) -> dict[str, Any]:
        """Insert a cell (never run); the front end's ``{id, index, after}``."""
        front_end, why = self._answering()
        if front_end is None:
            raise ToolError(f"{why}: the cell was not inserted")
        return _object(front_end.request("insert", {"source": source, "kind": kind, "after": after},
                                         timeout=FRONT_END_WAIT))

    def run(self, code: str, *, stop: Callable[[], bool], timeout: float) -> RunResult:
        """Run ``code`` in a new cell where a front end can, in the kernel's namespace otherwise."""
        front_end = self.front_end()
        if front_end is not None and not main_thread_busy():
            return _cell_result(_object(front_end.request("run", {"code": code}, timeout=timeout, stop=stop)))
        why = NO_FRONT_END if front_end is None else BUSY
        return run_in_namespace(code, kernel_shell().user_ns, stop=stop,
                                where=f"Ran in the kernel's namespace, not in a cell: {why}.")


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ToolError(f"the notebook's front end answered with {type(data).__name__}, not an object")
    return data


def _cell_result(data: dict[str, Any]) -> RunResult:
    """A front end's reply to ``run``: the new cell and its outputs (``docs/panel-protocol.md``)."""
    count = data.get("execution_count")
    where = (f"Ran in a new cell{f' [{count}]' if count else ''} (id {data.get('cell_id')})"
             + (f" below cell {data['after']}" if data.get("after") else "") + ", in the notebook.")
    result = RunResult(where)
    stdout: list[str] = []
    stderr: list[str] = []
    for output in data.get("outputs") or []:
        kind = output.get("type")
        if kind == "stream":
            (stderr if output.get("name") == "stderr" else stdout).append(str(output.get("text", "")))
        elif kind == "error":
            lines = [line for line in output.get("traceback") or [] if line.strip("- \n")]  # not IPython's rulers
            result.error = "\n".join(lines) or f"{output.get('ename')}: {output.get('evalue')}"
        elif kind == "result":
            result.value = str(output.get("text", ""))
        else:
            result.shown.append(str(output.get("text") or ", ".join(output.get("mime") or []) or kind))
    result.stdout, result.stderr = "".join(stdout), "".join(stderr)
    try:
        outputs = kernel_shell().user_ns.get("Out") or {}
    except ToolError:
        outputs = {}
    if isinstance(count, int) and count in outputs:  # the value itself: summarised as kernel.variables does
        result.value = describe_value(outputs[count])
    result.stopped = "KeyboardInterrupt" in (result.error or "")
    return result
