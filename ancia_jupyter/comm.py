"""The kernel end of the JupyterLab sidebar: a comm target named ``ancia``.

The sidebar opens a comm with ``kernel.createComm("ancia")`` on the kernel of the notebook in focus. Each
comm gets its own :class:`~ancia_jupyter.panel.PanelSession`, which answers the sidebar's requests and
pushes the engine's events (``docs/panel-protocol.md``); this module only wires the comm to it.

When a session cannot start (the store cannot be opened, say), the comm is closed at once with
``{"error": "<one line>"}`` as its close data, so the sidebar can show why instead of "not loaded".
"""

from __future__ import annotations

import logging
from typing import Any

TARGET = "ancia"

log = logging.getLogger(__name__)

_sessions: dict[str, tuple[Any, Any]] = {}  # comm id -> (comm, PanelSession), for the comms open now


def register_comm_target() -> None:
    """Answer the sidebar's comms in this kernel. Calling it again changes nothing."""
    from comm import get_comm_manager

    get_comm_manager().register_target(TARGET, _on_open)


def unregister_comm_target() -> None:
    """Stop answering new sidebar comms and close the open ones (their sidebars offer to load ancia again)."""
    from comm import get_comm_manager

    manager = get_comm_manager()
    if manager.targets.get(TARGET) is _on_open:
        manager.unregister_target(TARGET, _on_open)
    for comm_id in list(_sessions):
        comm, session = _sessions.pop(comm_id)
        session.close()
        comm.close()


def open_sessions() -> int:
    """How many sidebars are connected to this kernel."""
    return len(_sessions)


def _on_open(comm: Any, open_msg: dict) -> None:
    from .panel import PanelSession

    try:
        session = PanelSession(comm.send)
    except Exception as exc:  # shown in the sidebar; the kernel keeps running
        log.warning("ancia: the sidebar could not start: %s", exc, exc_info=True)
        comm.close(data={"error": _one_line(exc)})
        return
    comm_id = comm.comm_id
    _sessions[comm_id] = (comm, session)

    def on_msg(msg: dict) -> None:
        data = msg.get("content", {}).get("data")
        if isinstance(data, dict):
            session.handle(data)

    def on_close(msg: dict) -> None:
        if _sessions.pop(comm_id, None) is not None:
            session.close()

    comm.on_msg(on_msg)
    comm.on_close(on_close)
    first = open_msg.get("content", {}).get("data")
    if isinstance(first, dict) and first.get("type") == "request":
        session.handle(first)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
