"""Running one tool call: in its own thread, bounded in time, its result turned into text.

Kept apart from the registry because this is the part that touches user code: whatever a tool does
(raise, hang, return something huge or odd), the caller gets a value or an error string, never an
exception, and the kernel's event loop is never used.
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import inspect
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AnciaError, ToolError
from .notebook_access import NotebookAccess
from .tool import MAX_OUTPUT_CHARS, Tool

if TYPE_CHECKING:
    from ..store.database import Store

MAX_ERROR_CHARS = 2_000


@dataclass
class ToolContext:
    """What a running tool may want to know: the store and the settings, the chat it was called for,
    itself, and when its time is up: a tool that waits on the network bounds its wait by ``deadline`` and
    stops when ``cancelled`` is set (the call timed out), since its thread cannot be killed. ``notebook`` is
    the app's door to the notebook, for the notebook tools."""

    store: Store
    settings: Callable[[], dict]
    chat_id: int | None
    tool: Tool
    deadline: float | None = None  # time.monotonic() at which the call is given up
    cancelled: threading.Event = field(default_factory=threading.Event)
    notebook: NotebookAccess = field(default_factory=NotebookAccess)


_CURRENT: contextvars.ContextVar[ToolContext | None] = contextvars.ContextVar("ancia_tool", default=None)


def current() -> ToolContext:
    """The context of the tool call running in this thread (for tools that act on their chat)."""
    context = _CURRENT.get()
    if context is None:
        raise ToolError("No tool call is running: this works only inside a tool that ancia called.")
    return context


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump") and callable(value.model_dump):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset, tuple)):
        return [*value]
    return repr(value)


def to_text(value: Any, limit: int = MAX_OUTPUT_CHARS) -> str:
    """A result as the model reads it: text as is, anything else as JSON (or its repr), cut to ``limit``."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=_jsonable)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = (f"{text[:limit]}\n[… truncated: the result has {len(text)} characters; "
                f"only the first {limit} are shown]")
    return text


def error_text(exc: BaseException) -> str:
    """An exception as one message: ours as they are, others with their type."""
    try:
        text = str(exc) if isinstance(exc, AnciaError) else f"{type(exc).__name__}: {exc}".removesuffix(": ")
    except BaseException:  # an exception whose str() raises still has a name
        text = type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " […]"


def run_tool(tool: Tool, kwargs: dict[str, Any], timeout: float,
             context: ToolContext) -> tuple[str | None, str | None]:
    """Run a tool in its own thread (async ones in their own event loop), wait at most ``timeout``, and
    return ``(text, error)``.

    A sync function cannot be killed: one that hangs is left behind in a daemon thread, its context is
    cancelled, and the model is told it timed out, so the chat goes on. Whatever the tool raises, even
    ``SystemExit`` or ``KeyboardInterrupt``, and whatever its result's ``repr`` raises, stays in that thread.
    """
    box: dict[str, Any] = {}
    context = dataclasses.replace(context, deadline=time.monotonic() + timeout)

    async def bounded(awaitable: Any) -> Any:
        import asyncio

        async def settled() -> Any:  # asyncio lets these two out of its loop, then logs the task as lost
            try:
                return await awaitable
            except (SystemExit, KeyboardInterrupt) as exc:
                box["raised"] = exc

        task = asyncio.ensure_future(settled())
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            box["timeout"] = True
            return None
        return task.result()

    def target() -> None:
        token = _CURRENT.set(context)
        try:
            value = tool.func(**kwargs)
            if inspect.isawaitable(value):
                import asyncio

                value = asyncio.run(bounded(value))  # a fresh loop in this thread: never the kernel's
                if "raised" in box:
                    raise box["raised"]
            try:
                box["text"] = to_text(value, tool.max_output)
            except BaseException as exc:
                box["error"] = f"the result could not be shown as text ({error_text(exc)})"
        except BaseException as exc:  # reported to the model, never raised into the engine
            box["error"] = error_text(exc)
        finally:
            _CURRENT.reset(token)

    thread = threading.Thread(target=target, name=f"ancia-tool-{tool.name}", daemon=True)
    thread.start()
    thread.join(timeout + 0.25)
    if thread.is_alive() or box.get("timeout"):
        context.cancelled.set()
        return None, f"timed out after {timeout:g} s (the setting tool_timeout)"
    if "error" in box:
        return None, box["error"]
    return box.get("text"), None
