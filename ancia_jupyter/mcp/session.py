"""One MCP server's connection: a thread of its own running an event loop, one client session in it, and
calls into it from other threads, each bounded in time.

The SDK is async (anyio) and the kernel's main thread runs ipykernel's loop, so sessions live elsewhere. Each
server gets its own thread and loop rather than sharing one: the SDK's transports must be entered and left by
the same task, a stdio server's teardown waits out its grace periods (stdin closed, SIGTERM, SIGKILL: up to
~6 s), and a server that misbehaves is given up by ending its loop; one loop per server keeps all of that
from holding up another server. Servers are few, and so are the threads. This module imports the SDK: the
manager imports it only when a server starts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any, TextIO, TypeVar, cast

import anyio
import httpx2
import mcp_types
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ..version import __version__
from .process import MARKER, find_child, kill_group, log_tail, open_log
from .specs import Launch

T = TypeVar("T")
CLOSE_WAIT_S = 8.0  # the SDK's stdio teardown takes at most ~6 s
MAX_PAGES = 20  # of tools/list


class StartFailed(Exception):
    """A server that could not start; the message is one line saying why."""


class SessionProblem(Exception):
    """A request that got no answer. ``broken``: the server is gone or hangs (not merely slow or refusing)."""

    def __init__(self, text: str, broken: bool) -> None:
        super().__init__(text)
        self.broken = broken


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(getattr(exc, "exceptions", None), (list, tuple)) and exc.exceptions:  # type: ignore[attr-defined]
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


def _is_error_answer(exc: BaseException) -> bool:
    """A JSON-RPC error the server sent (an unknown tool, bad params): the server itself is fine."""
    return isinstance(exc, MCPError) and exc.error.code != mcp_types.CONNECTION_CLOSED


async def _list_tools(session: ClientSession) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        result = await session.list_tools(params=mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None)
        found += [{"name": t.name, "description": t.description or t.title or "", "input_schema": t.input_schema}
                  for t in result.tools]
        cursor = result.next_cursor
        if not cursor:
            break
    return found


_warmed = threading.Event()


def _warm_up() -> None:
    """The SDK checks a tool's structured result against its output schema with ``jsonschema``, imported on
    the first call: 1 to 3 s that would count against that call's time. Imported once, in the background."""
    if not _warmed.is_set():
        _warmed.set()
        threading.Thread(target=importlib.import_module, args=("jsonschema",), name="ancia-mcp-warm-up",
                         daemon=True).start()


class ServerSession:
    """One server: ``start`` it, ``call_tool`` and ``list_tools`` from any thread, ``close`` it.

    ``on_end(self, reason)`` is called on the session's own thread when a running server ends without being
    asked to (its process died, the connection closed); it must not wait for this session.
    """

    def __init__(self, launch: Launch, on_end: Callable[[ServerSession, str], None]) -> None:
        self.launch = launch
        self.pid: int | None = None
        self.ended: str | None = None  # why the connection ended, when nobody asked it to
        self._on_end = on_end
        self._closing = False
        self._marker = f"{os.getpid()}-{id(self):x}-{time.monotonic_ns()}"
        self._loop = asyncio.new_event_loop()
        self._wake = asyncio.Event()
        self._session: ClientSession | None = None
        self._runner: concurrent.futures.Future[None] | None = None
        self._thread = threading.Thread(target=self._serve, name=f"ancia-mcp-{launch.name}", daemon=True)

    # -- from other threads -----------------------------------------------------------------------

    def start(self) -> concurrent.futures.Future[list[dict[str, Any]]]:
        """Start the server; the future gets its tools, or ``StartFailed`` within ``launch.start_timeout``."""
        ready: concurrent.futures.Future[list[dict[str, Any]]] = concurrent.futures.Future()
        self._thread.start()
        self._runner = asyncio.run_coroutine_threadsafe(self._run(ready), self._loop)
        return ready

    @property
    def alive(self) -> bool:
        """Whether its thread still runs (a stdio server's process may be there)."""
        return self._thread.is_alive()

    def request(self, make: Callable[[ClientSession], Awaitable[T]], timeout: float) -> T:
        """Run one request on the session's loop; ``TimeoutError`` when it takes longer (it is cancelled)."""
        session = self._session
        if session is None or not self._thread.is_alive():
            raise SessionProblem(self.ended or "it is not running", broken=True)

        async def run() -> T:
            return await make(session)

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(max(0.0, timeout))
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError from None

    def answers(self, timeout: float) -> bool:
        """Whether the server answers a ping within ``timeout``."""
        try:
            self.request(lambda s: s.send_ping(), timeout)
            return True
        except BaseException:
            return False

    def list_tools(self, timeout: float) -> list[dict[str, Any]]:
        return self.request(_list_tools, timeout)

    def call_tool(self, tool: str, arguments: dict[str, Any], deadline: float) -> Any:
        """The server's ``CallToolResult``; ``SessionProblem`` when no answer comes by ``deadline``
        (``time.monotonic()``). What is left at the end is spent on a ping, to tell a slow tool from a server
        that hangs."""
        total = deadline - time.monotonic()
        probe = min(1.0, max(0.05, total * 0.2))
        try:
            return self.request(lambda s: s.call_tool(tool, arguments), total - probe)
        except SessionProblem:
            raise
        except TimeoutError:
            if self.answers(probe * 0.7):
                raise SessionProblem(f"the tool {tool!r} did not finish within {round(total, 1):g} s (the setting "
                                     "tool_timeout); the server still answers", broken=False) from None
            raise SessionProblem(f"it stopped answering: no reply within {round(total, 1):g} s, nor to a ping",
                                 broken=True) from None
        except BaseException as exc:
            if self._closing:
                raise SessionProblem("it was stopped during the call", broken=False) from None
            if self.ended is not None:
                raise SessionProblem(f"it stopped during the call: {self.ended}", broken=True) from None
            if _is_error_answer(exc):
                raise SessionProblem(f"it answered with an error: {exc}", broken=False) from None
            if self.answers(min(1.0, max(0.05, deadline - time.monotonic()))):
                raise SessionProblem(f"the call failed: {self.describe(exc)}", broken=False) from None
            raise SessionProblem(f"it stopped answering ({self.describe(exc)})", broken=True) from None

    def close(self, wait: float = CLOSE_WAIT_S) -> None:
        """Stop the server (a stdio server's process tree is killed if it does not exit), within ``wait``."""
        self._closing = True
        if self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._wake.set)
                if self._session is None and self._runner is not None:  # still starting: stop waiting for it
                    self._runner.cancel()
            self._thread.join(wait)
            if self._thread.is_alive() and self._runner is not None:
                self._runner.cancel()
                self._thread.join(1.0)
        self.kill()

    def kill(self) -> None:
        """Kill what is left of a stdio server's processes (a child that outlived its teardown)."""
        kill_group(self.pid, self._marker)

    def describe(self, exc: BaseException, *, starting: bool = False) -> str:
        """An exception from the SDK or the transport as one line."""
        exc = _leaf(exc)
        tail = log_tail(self.launch.log_path)
        said = f" (it wrote: {tail})" if tail else ""
        if self.ended is not None:
            return self.ended
        if isinstance(exc, FileNotFoundError) and self.launch.kind == "stdio":
            return f"the command {self.launch.command[0]!r} was not found: is it installed and on the kernel's PATH?"
        if isinstance(exc, PermissionError) and self.launch.kind == "stdio":
            return f"the command {self.launch.command[0]!r} cannot be run: {exc.strerror}"
        if isinstance(exc, TimeoutError):
            when = f"within {self.launch.start_timeout:g} s of starting" if starting else "in time"
            return f"it did not answer {when}{said}"
        if isinstance(exc, httpx2.HTTPError):
            return f"cannot reach {self.launch.url}: {type(exc).__name__}: {exc}".rstrip(": ")
        if isinstance(exc, MCPError):
            answered = self.launch.kind == "http" and exc.error.code != mcp_types.CONNECTION_CLOSED
            return f"{self.launch.url} answered: {exc}" if answered else f"{exc}{said}"
        return f"{type(exc).__name__}: {exc}".rstrip(": ") + said

    # -- on the session's own thread --------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _run(self, ready: concurrent.futures.Future[list[dict[str, Any]]]) -> None:
        log: IO[str] | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.launch.kind == "stdio":
                    log = open_log(self.launch.log_path)
                read, write = await self._connect(stack, log)
                relay_send, relay_read = anyio.create_memory_object_stream[Any](0)
                group = await stack.enter_async_context(anyio.create_task_group())
                stack.callback(group.cancel_scope.cancel)
                group.start_soon(self._relay, read, relay_send)
                session = await stack.enter_async_context(ClientSession(
                    relay_read, write, client_info=mcp_types.Implementation(name="ancia-jupyter", version=__version__)))
                try:
                    with anyio.fail_after(self.launch.start_timeout):
                        await session.initialize()
                        tools = await _list_tools(session)
                except BaseException as exc:  # said at once: the teardown that follows may take seconds
                    if not isinstance(exc, asyncio.CancelledError):  # a transport that failed: said below
                        ready.set_exception(StartFailed(self.describe(exc, starting=True)))
                    raise
                self._session = session
                _warm_up()
                ready.set_result(tools)
                await self._wake.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(StartFailed(self.describe(exc, starting=True)))
            elif not self._closing and self.ended is None and ready.exception() is None:
                self.ended = self.describe(exc)
        finally:
            self._session = None
            if log is not None:
                log.close()
            if not self._closing and not ready.cancelled() and ready.exception() is None:
                with contextlib.suppress(Exception):  # whatever the manager does, this thread still ends
                    self._on_end(self, self.ended or "the connection ended")
            self._loop.call_soon(self._loop.stop)

    async def _connect(self, stack: contextlib.AsyncExitStack, log: IO[str] | None) -> tuple[Any, Any]:
        launch = self.launch
        if launch.kind == "stdio":
            params = StdioServerParameters(command=launch.command[0], args=list(launch.command[1:]),
                                           env={**launch.env, MARKER: self._marker})
            read, write = await stack.enter_async_context(stdio_client(params, errlog=cast(TextIO, log or sys.stderr)))
            for _ in range(20):  # its environment is readable once it runs: at once, or nearly
                self.pid = find_child(self._marker)
                if self.pid is not None:
                    break
                await anyio.sleep(0.05)
            return read, write
        assert launch.url is not None
        client = await stack.enter_async_context(httpx2.AsyncClient(
            headers=dict(launch.headers), timeout=httpx2.Timeout(30.0, read=300.0), trust_env=launch.trust_env))
        read, write = await stack.enter_async_context(streamable_http_client(launch.url, http_client=client))
        return read, write

    async def _relay(self, source: Any, sink: Any) -> None:
        """Pass the server's messages to the session, and notice when they stop: a process that died, a
        connection that closed. The server is then marked ended even if no call is waiting."""
        try:
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                async for item in source:
                    await sink.send(item)
            if not self._closing and self.ended is None:  # not when cancelled: a failing transport says why
                what = "its process ended" if self.launch.kind == "stdio" else "the server closed the connection"
                tail = log_tail(self.launch.log_path)
                self.ended = f"{what} (it wrote: {tail})" if tail else what
        finally:
            sink.close()
            self._wake.set()
