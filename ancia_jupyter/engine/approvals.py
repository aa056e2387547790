"""Tool calls waiting for a person's yes or no.

A tool marked ``confirm=True`` asks before it runs. When a view started the answer, the question waits here,
on the answer's thread (never the model worker's), until the view's approve or deny button decides it, the
answer is stopped, the view goes away, or ``APPROVAL_TIMEOUT`` passes; all but a yes deny the call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import events as ev
from ..errors import NotFoundError

APPROVAL_TIMEOUT = 300.0  # seconds a tool call waits for approve/deny before it is denied
POLL = 0.1  # seconds between looks at whether the answer was stopped

Announce = Callable[[dict], None]


@dataclass
class _Pending:
    call: dict  # {id, name, arguments}, as a view shows it
    owner: object  # the view that was asked
    decided: threading.Event = field(default_factory=threading.Event)
    approved: bool = False


class Approvals:
    """The pending questions of every view in the kernel; ``stopped(chat_id)`` says whether that chat's
    answer was asked to stop."""

    def __init__(self, stopped: Callable[[int], bool]) -> None:
        self._stopped = stopped
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def ask(self, call: ev.ToolCall, *, owner: object, announce: Announce) -> bool:
        """Show ``call`` to ``owner`` (``announce``) and wait for its decision; True only for a yes."""
        pending = _Pending({"id": call.id, "name": call.name, "arguments": call.arguments}, owner)
        with self._lock:
            self._pending[call.id] = pending
        try:
            announce(pending.call)
            deadline = time.monotonic() + APPROVAL_TIMEOUT
            while not pending.decided.wait(POLL):
                if self._stopped(call.chat_id) or time.monotonic() > deadline:
                    return False
            return pending.approved
        finally:
            with self._lock:
                self._pending.pop(call.id, None)

    def decide(self, call_id: str, approved: bool) -> None:
        with self._lock:
            pending = self._pending.get(call_id)
        if pending is None:
            raise NotFoundError(f"No tool call {call_id!r} is waiting for approval (it may have timed out).")
        pending.approved = approved
        pending.decided.set()

    def pending(self, owner: object) -> list[dict]:
        """The calls waiting for ``owner``'s decision, oldest first."""
        with self._lock:
            return [p.call for p in self._pending.values() if p.owner is owner]

    def withdraw(self, owner: object) -> None:
        """``owner`` is gone: deny what waits for it."""
        with self._lock:
            gone = [p for p in self._pending.values() if p.owner is owner]
        for pending in gone:
            pending.decided.set()
