"""The MCP servers running in this kernel: starting them, calling their tools, noticing when one fails, and
stopping them all with the app.

A server starts when it is first needed and runs until the app closes, it is turned off, or it fails. It
fails when it cannot start, when its process ends or its connection closes, or when it stops answering (a
call runs out of time and a ping gets no answer either); it is then marked failed with one line, stopped in
the background, and its tools answer with that line until ``refresh`` or ``enable`` starts it again.
"""

from __future__ import annotations

import builtins
import concurrent.futures
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from ..changes import McpServersChanged
from ..errors import ToolError
from ..runtimes.server_url import is_loopback_url
from ..store.database import Store
from ..tools.calling import current
from ..tools.registry import ToolRegistry
from . import specs
from .tools import register_tools

if TYPE_CHECKING:
    from .session import ServerSession

START_TIMEOUT_S = 30.0  # a first `npx -y …` may download its package


@dataclass
class Live:
    """What this kernel knows of one server beyond the store: whether it runs, and why not."""

    state: str = "not started"  # starting, running, failed, blocked (offline mode)
    error: str | None = None
    session: ServerSession | None = None
    settled: threading.Event = field(default_factory=threading.Event)  # set once a start succeeded or failed
    start_s: float | None = None
    skipped: list[str] = field(default_factory=list)  # tools that could not be registered, and why


class Running:
    def __init__(self, store: Store, tools: ToolRegistry, settings: Callable[[], dict], log_dir: Path) -> None:
        self.store = store
        self.tools = tools
        self.settings = settings
        self.log_dir = log_dir  # each stdio server's stderr, <name>.log: its last line explains a failure
        self.start_timeout = START_TIMEOUT_S
        self._live: dict[str, Live] = {}
        self._sessions: set[ServerSession] = set()  # every session whose process may still be there
        self._lock = threading.RLock()
        self._closed = False

    def state(self, name: str) -> Live:
        return self._live.get(name) or Live()

    def register(self, row: dict, listed: builtins.list[dict]) -> None:
        skipped = register_tools(self.tools, row, listed, self.call)
        with self._lock:
            self._live.setdefault(row["name"], Live()).skipped = skipped

    # -- starting ---------------------------------------------------------------------------------

    def start_pending(self) -> None:
        """Start, side by side, the enabled servers this kernel has not started yet, and wait (at most
        ``start_timeout``) until each runs or failed: an answer is about to show the model its tools."""
        with self._lock:
            starting = [self.ensure(row) for row in self.store.mcp_servers()
                        if row["enabled"] and self.state(row["name"]).state in ("not started", "blocked")]
        self._wait(starting)

    def refresh(self) -> None:
        """Start the enabled servers that do not run (failed ones again); list the tools of those that do."""
        waiting = []
        for row in self.store.mcp_servers():
            live = self._live.get(row["name"])
            if not row["enabled"]:
                continue
            if live is not None and live.state == "running" and live.session is not None:
                try:
                    self._listed(row["name"], live.session.list_tools(self.start_timeout))
                except Exception as exc:
                    self._fail(row["name"], live.session, f"it did not list its tools: {live.session.describe(exc)}")
                continue
            with self._lock:
                if live is not None and live.state == "failed":
                    self._live.pop(row["name"], None)
                waiting.append(self.ensure(row))
        self._wait(waiting)

    def ensure(self, row: dict) -> Live:
        """The server's live state, starting it unless it runs, is starting or failed."""
        name = row["name"]
        with self._lock:
            live = self._live.setdefault(name, Live())
            if live.state in ("starting", "running", "failed") or self._closed:
                return live
            live.settled.set()
            if row["kind"] == "http" and self.settings()["offline"] and not is_loopback_url(row["url"]):
                live.state = "blocked"
                live.error = (f"offline mode: {row['url']} is not on this machine. {config.how_to_go_online()}, "
                              "then `ancia.mcp.list(refresh=True)`.")
                return live
            try:
                launch = specs.resolve(row, self.log_dir, self.start_timeout)
            except specs.MissingVariable as exc:
                live.state, live.error = "failed", str(exc)
                return live
            from .session import ServerSession  # the SDK, imported when a server first starts

            session = ServerSession(launch, self._ended)
            self._sessions = {s for s in self._sessions if s.alive} | {session}
            self._live[name] = live = Live(state="starting", session=session, skipped=live.skipped)
            began, starting = time.monotonic(), live
            session.start().add_done_callback(lambda done: self._started(name, starting, session, done, began))
        self.store.changes.publish(McpServersChanged(name))
        return live

    def _started(self, name: str, live: Live, session: ServerSession, done: concurrent.futures.Future,
                 began: float) -> None:
        """On the server's thread, once it has started or failed to; whoever waits for it is let go."""
        failure = done.exception()
        with self._lock:
            if self._live.get(name) is not live or live.session is not session or self._closed:
                live.state, live.error, live.session = "not started", "it was stopped before it started", None
                live.settled.set()
                return
            live.start_s = time.monotonic() - began
            live.state, live.error = ("failed", str(failure)) if failure else ("running", None)
            if failure:
                live.session = None
        try:
            if failure is None:
                self._listed(name, done.result())
        except Exception as exc:  # the store closed meanwhile: the tools stay as they were
            live.state, live.error = "failed", f"its tools could not be registered: {exc}"
        finally:
            live.settled.set()
            self.store.changes.publish(McpServersChanged(name))

    def _listed(self, name: str, listed: builtins.list[dict]) -> None:
        self.store.update_mcp_server(name, tools=listed)
        row = self.store.mcp_server(name)
        if row is not None and row["enabled"]:
            self.register(row, listed)

    def _wait(self, lives: builtins.list[Live]) -> None:
        deadline = time.monotonic() + self.start_timeout + 1.0
        for live in lives:
            live.settled.wait(max(0.0, deadline - time.monotonic()))

    # -- calling (on a tool call's thread) ----------------------------------------------------------

    def call(self, server: str, tool: str, arguments: dict[str, Any]) -> Any:
        """Call a server's tool, starting the server if needed, by the call's deadline; ``ToolError`` with
        one line otherwise (the registry passes it to the model)."""
        try:
            deadline = current().deadline
        except ToolError:
            deadline = None
        if deadline is None:
            deadline = time.monotonic() + float(self.settings()["tool_timeout"])
        row = self.store.mcp_server(server)
        if row is None or not row["enabled"]:
            raise ToolError(f"the MCP server {server!r} is {'removed' if row is None else 'turned off'}")
        live = self.ensure(row)
        live.settled.wait(max(0.0, deadline - time.monotonic() - 0.1))
        session = live.session
        if live.state == "starting":
            raise ToolError(f"the MCP server {server!r} is still starting; try again in a moment")
        if live.state == "failed":
            raise ToolError(f"the MCP server {server!r} failed: {live.error}; `ancia.mcp.list(refresh=True)` "
                            "starts it again")
        if live.state != "running" or session is None:  # blocked by offline mode, or the app is closing
            raise ToolError(f"the MCP server {server!r} is not running: {live.error or 'the assistant is stopping'}")
        from .session import SessionProblem

        try:
            return session.call_tool(tool, arguments, deadline)
        except SessionProblem as exc:
            if exc.broken:
                self._fail(server, session, session.ended or str(exc))  # the same reason as when idle
                raise ToolError(f"the MCP server {server!r} failed: {exc}") from None
            raise ToolError(f"the MCP server {server!r}: {exc}") from None

    def _fail(self, name: str, session: ServerSession, reason: str) -> None:
        """A server that hangs or is gone: marked failed, and stopped in the background."""
        with self._lock:
            live = self._live.get(name)
            if live is None or live.session is not session:
                return
            live.state, live.error, live.session = "failed", reason, None
        threading.Thread(target=session.close, name=f"ancia-mcp-stop-{name}", daemon=True).start()
        self.store.changes.publish(McpServersChanged(name))

    def _ended(self, session: ServerSession, reason: str) -> None:
        """On the server's thread: it ended without being asked (its process died)."""
        with self._lock:
            live = self._live.get(session.launch.name)
            if live is None or live.session is not session:
                return
            live.state, live.error, live.session = "failed", reason, None
        try:
            self.store.changes.publish(McpServersChanged(session.launch.name))
        except Exception:  # a listener's failure is not this thread's to raise
            pass

    # -- stopping -----------------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Stop one server (turned off, replaced or removed) and forget its state."""
        with self._lock:
            live = self._live.pop(name, None)
        if live is not None and live.session is not None:
            live.session.close()

    def close(self) -> None:
        """Stop every server side by side, those failing in the background too: no process is left."""
        with self._lock:
            self._closed = True
            sessions = builtins.list(self._sessions)
            self._sessions.clear()
            self._live.clear()
        closers = [threading.Thread(target=s.close, daemon=True) for s in sessions]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
