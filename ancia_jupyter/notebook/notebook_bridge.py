"""The kernel's end of a front end that answers for the notebook: the JupyterLab sidebar, in JupyterLab and
Notebook 7 (``labextension/src/notebook-bridge.ts``).

The sidebar offers the notebook when it connects (the ``notebook_bridge`` action); its ``PanelSession`` then
attaches a ``NotebookBridge`` to the app's ``NotebookAccess``, which the notebook tools use, and detaches it
when the sidebar goes. A request goes out on the sidebar's comm as ``{"type": "notebook_request", "id", "op",
...}`` and waits, on the tool's thread, for the front end's ``{"type": "notebook_reply", "id", "ok", "data" |
"error"}``, which the session hands to ``deliver`` (``docs/panel-protocol.md``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ToolError

POLL = 0.05  # seconds between looks at whether a run was stopped
INTERRUPT_GRACE = 5.0  # seconds the front end has to report a run it was asked to interrupt
GONE = "the notebook's front end went away (the sidebar closed or lost the kernel)"


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    data: Any = None
    error: str | None = None


class NotebookBridge:
    """A front end's answers about the notebook, as the tools' ``FrontEnd``. ``answers_while_busy``: its
    replies come on a kernel subshell, so they arrive while the main thread runs a cell."""

    def __init__(self, send: Callable[[dict], None], *, answers_while_busy: bool) -> None:
        self._send = send
        self.answers_while_busy = answers_while_busy
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()
        self._closed = False

    def request(self, op: str, args: dict[str, Any], *, timeout: float,
                stop: Callable[[], bool] | None = None) -> Any:
        """Ask the front end and wait for its reply; when ``stop()`` turns true, ask it to interrupt the
        kernel and wait ``INTERRUPT_GRACE`` more for the reply (the run's outputs, KeyboardInterrupt included)."""
        pending, request_id = _Pending(), next(self._ids)
        with self._lock:
            if self._closed:
                raise ToolError(GONE)
            self._pending[request_id] = pending
        try:
            self._send({"type": "notebook_request", "id": request_id, "op": op, **args})
            deadline, interrupted = time.monotonic() + timeout, False
            while not pending.done.wait(POLL):
                if stop is not None and not interrupted and stop():
                    interrupted = True
                    self._send({"type": "notebook_request", "id": next(self._ids), "op": "interrupt"})
                    deadline = min(deadline, time.monotonic() + INTERRUPT_GRACE)
                if time.monotonic() > deadline:
                    raise ToolError("the notebook was asked to stop the run and did not say it had" if interrupted
                                    else f"the notebook did not answer within {timeout:g} s")
        finally:
            with self._lock:
                self._pending.pop(request_id, None)
        if pending.error is not None:
            raise ToolError(pending.error)
        return pending.data

    def deliver(self, msg: dict) -> None:
        """A ``notebook_reply`` from the front end; one that nobody waits for any more is dropped."""
        with self._lock:
            pending = self._pending.get(msg.get("id"))  # type: ignore[arg-type]
        if pending is None:
            return
        if msg.get("ok") is True:
            pending.data = msg.get("data")
        else:
            error = " ".join(str(msg.get("error") or "the notebook refused without saying why").split())
            pending.error = error[:300]
        pending.done.set()

    def close(self) -> None:
        """The front end went away: what waits for it fails at once."""
        with self._lock:
            self._closed = True
            waiting = list(self._pending.values())
        for pending in waiting:
            pending.error = GONE
            pending.done.set()
