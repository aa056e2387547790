"""The kernel end of inline completion: a comm target named ``ancia.complete`` (``docs/panel-protocol.md``).

A comm of its own rather than the sidebar's ``ancia`` comm: the editor needs it whether or not the sidebar
is open, it streams a suggestion as it grows rather than one reply per request, and JupyterLab gives each
comm target its own kernel subshell, so a completion is never queued behind a sidebar action.

Each request runs on a thread of its own, so the comm keeps reading: a newer request, or a ``cancel``, stops
the older one within a token. A kernel running a cell answers ``busy`` at once and reads nothing of the
notebook's variables (they may be changing). IPython's ``pre_run_cell``/``post_run_cell`` events say when
(not ``pre_execute``: the comm package fires that around every comm message, this one's too).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..api_completion import completion_service, user_namespace
from ..completion.request import CompletionRequest
from ..errors import AnciaError
from ..version import __version__

TARGET = "ancia.complete"

log = logging.getLogger(__name__)


class CellsRunning:
    """How many cells the kernel is running now (IPython's run-cell events)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def started(self, *_: Any) -> None:
        with self._lock:
            self.count += 1

    def ended(self, *_: Any) -> None:
        with self._lock:
            self.count = max(0, self.count - 1)  # the cell that registered us, or an empty one, ends unstarted

    @property
    def busy(self) -> bool:
        return self.count > 0


cells_running = CellsRunning()
_comms: dict[str, Any] = {}  # comm id -> comm, for the comms open now


def register_completion_target(ipython: Any) -> None:
    """Answer the editor's completion comms in this kernel; calling it again changes nothing."""
    from comm import get_comm_manager

    events = ipython.events
    if cells_running.started not in events.callbacks["pre_run_cell"]:
        events.register("pre_run_cell", cells_running.started)
        events.register("post_run_cell", cells_running.ended)
    get_comm_manager().register_target(TARGET, _on_open)


def unregister_completion_target(ipython: Any) -> None:
    """Stop answering completion comms and close the open ones (the editor tries again when ancia loads)."""
    from comm import get_comm_manager

    manager = get_comm_manager()
    if manager.targets.get(TARGET) is _on_open:
        manager.unregister_target(TARGET, _on_open)
    for comm_id in list(_comms):
        _comms.pop(comm_id).close()


class CompletionLink:
    """One editor's comm: its requests, each on a thread of its own, and their cancel flags by id."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self._cancels: dict[Any, threading.Event] = {}
        self._lock = threading.Lock()

    def handle(self, data: dict) -> None:
        kind = data.get("type")
        if kind == "cancel":
            with self._lock:
                flag = self._cancels.get(data.get("id"))
            if flag is not None:
                flag.set()
        elif kind == "complete":
            self._start(data)

    def _start(self, data: dict) -> None:
        request_id = data.get("id")
        if cells_running.busy:
            self._send({"type": "done", "id": request_id, "text": "", "reason": "busy"})
            return
        try:
            cells = data.get("cells") or []
            request = CompletionRequest(data.get("prefix", ""), data.get("suffix", ""),
                                        tuple(cells) if isinstance(cells, list) else (), data.get("cell_index"),
                                        data.get("mode", "line"))
        except AnciaError as exc:
            self._send({"type": "done", "id": request_id, "text": "", "reason": "error", "error": str(exc)})
            return
        cancel = threading.Event()
        with self._lock:
            self._cancels[request_id] = cancel
        threading.Thread(target=self._run, args=(request_id, request, cancel), name="ancia-complete",
                         daemon=True).start()

    def _run(self, request_id: Any, request: CompletionRequest, cancel: threading.Event) -> None:
        done: dict[str, Any] = {"type": "done", "id": request_id, "text": "", "reason": "error"}
        try:
            for update in completion_service().stream(request, namespace=user_namespace(), cancelled=cancel):
                if update.reason is None:
                    self._send({"type": "chunk", "id": request_id, "text": update.text})
                else:
                    done.update(text=update.text, reason=update.reason, model=update.model_id)
        except Exception as exc:  # said in the reply; the editor shows nothing rather than an error
            log.debug("ancia: a completion failed", exc_info=True)
            done["error"] = " ".join(str(exc).split())[:300] or type(exc).__name__
        finally:
            with self._lock:
                self._cancels.pop(request_id, None)
            self.send_quietly(done)

    def send_quietly(self, message: dict) -> None:
        try:
            self._send(message)
        except Exception:  # the comm closed meanwhile
            log.debug("ancia: a completion reply was not sent", exc_info=True)

    def close(self) -> None:
        with self._lock:
            for flag in self._cancels.values():
                flag.set()


def _on_open(comm: Any, open_msg: dict) -> None:
    link = CompletionLink(comm.send)
    comm_id = comm.comm_id
    _comms[comm_id] = comm

    def on_msg(msg: dict) -> None:
        data = msg.get("content", {}).get("data")
        if not isinstance(data, dict):
            return
        if data.get("type") == "close":  # closed from here: see comm.py on kernel subshells
            link.close()
            _comms.pop(comm_id, None)
            comm.close()
            return
        link.handle(data)

    def on_close(msg: dict) -> None:
        link.close()
        _comms.pop(comm_id, None)

    comm.on_msg(on_msg)
    comm.on_close(on_close)
    link.send_quietly({"type": "ready", "version": __version__})
