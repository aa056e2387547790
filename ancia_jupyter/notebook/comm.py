"""The kernel end of the JupyterLab sidebar: a comm target named ``ancia``.

The sidebar opens a comm with ``kernel.createComm("ancia")`` on the kernel of the notebook in focus. Each
comm gets its own :class:`~ancia_jupyter.notebook.panel_session.PanelSession`, which answers the sidebar's requests and
pushes the events of the chat it shows (``docs/panel-protocol.md``); this module only wires the comm to it.

Loading the extension also opens (and closes at once) a comm to the front end's ``ancia.loaded`` target, so
a sidebar that found no target here connects without being asked. (A name of its own: JupyterLab shares
one kernel subshell among the comms of a target, and a comm opened and closed at once under ``ancia``
could take that subshell away from the sidebar's comm.)

The sidebar leaves by sending ``{"type": "close"}`` rather than closing the comm itself, and the comm is
closed from here: JupyterLab deletes a comm's kernel subshell as soon as the comm is closed on its side,
and a ``comm_close`` sent on that subshell can be dropped with it, which would leave the session open.

When a session cannot start (the store cannot be opened, say), the comm is closed at once with
``{"error": "<one line>"}`` as its close data, so the sidebar can show why instead of "not loaded".
"""

from __future__ import annotations

import logging
from typing import Any

TARGET = "ancia"
LOADED_TARGET = "ancia.loaded"  # the front end's target that hears "ancia was loaded here"

log = logging.getLogger(__name__)

_sessions: dict[str, tuple[Any, Any]] = {}  # comm id -> (comm, PanelSession), for the comms open now


def register_comm_target() -> None:
    """Answer the sidebar's comms in this kernel, and tell the sidebars already showing it (they said
    "not loaded") to connect now. Calling it again changes nothing."""
    from comm import get_comm_manager

    get_comm_manager().register_target(TARGET, _on_open)
    _announce()


def _announce() -> None:
    """A comm opened to the front end and closed at once: the sidebars of this kernel connect."""
    from comm import create_comm

    try:
        create_comm(target_name=LOADED_TARGET, data={"version": _version()}).close()
    except Exception:  # no front end to tell; the sidebar finds the target when it next connects
        log.debug("ancia: could not announce the comm target", exc_info=True)


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
    from .panel_session import PanelSession

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
        if not isinstance(data, dict):
            return
        if data.get("type") == "close":  # the sidebar leaves: close from here (see the module's docstring)
            if _sessions.pop(comm_id, None) is not None:
                session.close()
            comm.close()
            return
        session.handle(data)

    def on_close(msg: dict) -> None:
        if _sessions.pop(comm_id, None) is not None:
            session.close()

    comm.on_msg(on_msg)
    comm.on_close(on_close)
    first = open_msg.get("content", {}).get("data")
    if isinstance(first, dict) and first.get("type") == "request":
        session.handle(first)


def _version() -> str:
    from ..version import __version__

    return __version__


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:299] + "…"
