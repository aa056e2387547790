"""The tool registry: which tools exist, which are on, what the model sees, and how a call is run.

Built-ins, plugins and the user's own ``@ancia.tool`` functions all come in through ``register``/``add``;
the app decides which go in when it is made, so this module knows none of them. A call never raises into
the engine: every failure (unknown tool, bad arguments, a crash, a hang, offline mode, a refusal) comes
back as an error string the model reads and can recover from.
"""

from __future__ import annotations

import builtins
import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from ..changes import ToolsChanged
from ..errors import AnciaError, NotFoundError, ToolError
from ..events import ToolCall
from ..store.database import Store
from .calling import ToolContext, error_text, run_tool
from .notebook_access import NotebookAccess
from .schema import ArgumentError, check_arguments
from .tool import Tool, make_tool

OFFLINE_ERROR = "blocked: offline mode"


class ModelTools(Protocol):
    """Whether the picked model can call tools (``model_manager.abilities.ToolAbility``)."""

    @property
    def model_id(self) -> str: ...

    @property
    def usable(self) -> bool | None: ...  # None: not known until the model is loaded

    @property
    def reason(self) -> str | None: ...


def safe_name(name: str) -> str:
    """Many chat templates and models only take ``[A-Za-z0-9_-]`` function names."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


class ToolRegistry:
    """Every tool of one app: built-ins, installed plugins, and the user's ``@ancia.tool`` functions."""

    def __init__(self, store: Store, settings: Callable[[], dict],
                 model_tools: Callable[[], ModelTools] | None = None, notebook: NotebookAccess | None = None) -> None:
        self.store = store
        self.settings = settings
        self.notebook = notebook or NotebookAccess()  # given to every call: the notebook tools reach it there
        self.model_tools = model_tools  # asked by ``list``: whether the picked model can call tools at all
        self._tools: dict[str, Tool] = {}
        self._lock = threading.RLock()
        self._loading = threading.local()  # per thread: the source whose tools ``register`` is adding now

    # -- the door for built-ins, plugins and user tools -------------------------------------------

    def register(self, func: Any, *, name: str | None = None, description: str | None = None,
                 network: bool | None = None, confirm: bool | None = None,
                 requires: str | None = None) -> Tool:
        """Add a tool. Plugins call this from their ``register(registry)`` entry point."""
        tool = make_tool(func, name=name, description=description, network=network, confirm=confirm,
                         source=self.loading_source() or "user", requires=requires)
        return self.add(tool)

    def check_free(self, tool: Tool) -> None:
        existing = self._tools.get(tool.name)
        if existing is not None and existing.source != tool.source:
            raise ToolError(f"The tool name {tool.name!r} is taken by {existing.origin} tool; "
                            "give yours another name with name=...")

    def add(self, tool: Tool) -> Tool:
        with self._lock:
            self.check_free(tool)
            self._tools[tool.name] = tool
        self.store.changes.publish(ToolsChanged(tool.name))
        return tool

    def unregister(self, name: str) -> bool:
        with self._lock:
            removed = self._tools.pop(name, None)
        if removed is not None:
            self.store.changes.publish(ToolsChanged(name))
        return removed is not None

    def remove_source(self, source: str) -> list[str]:
        """Drop every tool from one source (a plugin being disabled, updated or removed)."""
        with self._lock:
            names = [n for n, t in self._tools.items() if t.source == source]
        for name in names:
            self.unregister(name)
        return names

    @contextlib.contextmanager
    def loading(self, source: str) -> Iterator[None]:
        """Tools this thread registers inside belong to ``source``; if loading fails, none of them stay."""
        previous = self.loading_source()
        self._loading.source = source
        try:
            yield
        except BaseException:
            self.remove_source(source)
            raise
        finally:
            self._loading.source = previous

    def loading_source(self) -> str | None:
        """The source this thread is loading (``"builtin"``, ``"plugin:<id>"``), ``None`` outside ``loading``."""
        return getattr(self._loading, "source", None)

    def loading_plugin(self) -> bool:
        """Whether this thread is loading a plugin: an ``@ancia.tool`` in its modules is the plugin's tool,
        registered by its loader, not one of the user's own."""
        return (self.loading_source() or "").startswith("plugin:")

    # -- looking tools up -------------------------------------------------------------------------

    def names(self) -> list[str]:
        return sorted(self._tools)

    def aliases(self) -> dict[str, str]:
        """Tool name → the function name the model sees (unique, ``[A-Za-z0-9_-]``)."""
        out: dict[str, str] = {}
        taken: set[str] = set()
        for name in sorted(self._tools, key=lambda n: (safe_name(n) != n, n)):
            alias, n = safe_name(name), 2
            while alias in taken:
                alias, n = f"{safe_name(name)[:60]}_{n}", n + 1
            out[name] = alias
            taken.add(alias)
        return out

    def get(self, name: str) -> Tool:
        """A tool by its name or by the alias the model sees."""
        with self._lock:
            if name in self._tools:
                return self._tools[name]
            for real, alias in self.aliases().items():
                if alias == name:
                    return self._tools[real]
        raise NotFoundError(f"No tool named {name!r}. Tools: {', '.join(self.names()) or 'none'}.")

    def resolve(self, name: str) -> str:
        """The real name behind an alias (for views that show the call)."""
        try:
            return self.get(name).name
        except NotFoundError:
            return name

    def gate_open(self, tool: Tool, chat_id: int | None) -> bool:
        """Tools that read the kernel (``requires``) run only when the setting or the chat option is on."""
        if tool.requires is None or self.settings().get(tool.requires):
            return True
        if chat_id is None:
            return False
        try:
            options = self.store.get_chat(chat_id)["options"] or {}
        except NotFoundError:
            return False
        return bool(options.get(tool.requires))

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Turn a tool on or off for every chat (remembered)."""
        self.store.set_tool_enabled(self.get(name).name, enabled)

    def needs_approval(self, tool: Tool) -> bool:
        """Whether a call waits for the user's yes: a tool marked ``confirm``, and a tool that reaches the
        network until the user marks it trusted (nothing leaves the machine without a person seeing it)."""
        return tool.confirm or tool.network and tool.name not in self.settings()["trusted_tools"]

    def set_trusted(self, name: str, trusted: bool) -> None:
        """Let a network tool run without asking each time, or make it ask again (remembered)."""
        tool = self.get(name)
        if trusted and not tool.network:
            raise ToolError(f"The tool {tool.name!r} does not reach the network: it runs without asking already"
                            + (" (it is marked confirm=True: it always asks)." if tool.confirm else "."))
        names = [n for n in self.settings()["trusted_tools"] if n != tool.name] + ([tool.name] if trusted else [])
        self.store.set_settings({"trusted_tools": names or None})
        self.store.changes.publish(ToolsChanged(tool.name))

    def list(self, chat_id: int | None = None) -> builtins.list[dict[str, Any]]:
        """Every tool, with ``usable``: whether the picked model can call it now (False with
        ``usable_reason`` when it is off or the model cannot call tools; None when that is not known until
        the model is loaded)."""
        states = self.store.tool_states()
        trusted = set(self.settings()["trusted_tools"])
        try:
            model = self.model_tools() if self.model_tools is not None else None
        except AnciaError:  # a picked model that is gone: the tools are still listed
            model = None
        rows = []
        for t in sorted(self._tools.values(), key=lambda t: t.name):
            enabled, available = states.get(t.name, True), self.gate_open(t, chat_id)
            usable: bool | None = enabled and available
            reason = None if usable else "turned off" if not enabled else f"needs the setting {t.requires}"
            if usable and model is not None and not model.usable:
                usable = model.usable
                reason = (f"{model.model_id} cannot call tools: {model.reason}" if usable is False
                          else f"whether {model.model_id} can call tools is {model.reason}")
            rows.append({**t.info(), "enabled": enabled, "available": available, "usable": usable,
                         "usable_reason": reason, "trusted": t.network and t.name in trusted,
                         "needs_approval": self.needs_approval(t)})
        return rows

    def schema(self, name: str) -> dict[str, Any]:
        tool = self.get(name)
        return {"type": "function", "function": {"name": self.aliases()[tool.name],
                                                 "description": tool.description,
                                                 "parameters": tool.params.schema}}

    def schemas(self, names: builtins.list[str] | None, chat_id: int | None = None) -> builtins.list[dict]:
        """The schemas the model sees: every enabled tool, or exactly ``names`` (each must be on)."""
        states = self.store.tool_states()
        if names is None:
            chosen = [t for t in sorted(self._tools.values(), key=lambda t: t.name)
                      if states.get(t.name, True) and self.gate_open(t, chat_id)]
        else:
            chosen = []
            for name in names:
                tool = self.get(name)
                if not states.get(tool.name, True):
                    raise ToolError(f"The tool {tool.name!r} is disabled: "
                                    f"`ancia.tools.enable({tool.name!r})`.")
                if not self.gate_open(tool, chat_id):
                    raise ToolError(f"The tool {tool.name!r} is off: turn on the setting {tool.requires!r} "
                                    f"(`ancia.settings.update({tool.requires}=True)`) or the chat option.")
                chosen.append(tool)
        return [self.schema(t.name) for t in chosen]

    # -- calling ----------------------------------------------------------------------------------

    def call(self, name: str, arguments: Any, *, chat_id: int | None = None,
             approve: Callable[[Any], bool] | None = None,
             event: Any = None) -> tuple[str | None, str | None]:
        """Run one call the way the engine does; returns ``(output, error)`` and never raises."""
        try:
            tool = self.get(name)
        except NotFoundError:
            known = ", ".join(self.aliases().values()) or "none"
            return None, f"unknown tool {name!r}; the tools are: {known}"
        try:
            settings = self.settings()
            if not self.store.tool_states().get(tool.name, True):
                return None, f"the tool {tool.name!r} is disabled by the user"
            if not self.gate_open(tool, chat_id):
                return None, (f"the tool {tool.name!r} is off: the user has not turned on {tool.requires!r}")
            if tool.network and settings["offline"]:
                return None, OFFLINE_ERROR
            kwargs = check_arguments(tool.params, arguments)
        except ArgumentError as exc:
            return None, f"bad arguments: {exc}"
        except Exception as exc:
            return None, error_text(exc)
        if self.needs_approval(tool):
            if approve is None:
                trust = (f", or trust it once and for all: `ancia.tools.trust({tool.name!r})`" if tool.network
                         and not tool.confirm else "")
                return None, ("denied: this tool needs the user's approval; pass approve=... to ancia.chat "
                              f"(a function that gets the call and returns True), or approve it in the panel{trust}")
            try:
                if event is None:  # called by hand: the approver still gets the call to look at
                    event = ToolCall(0, "manual", tool.name, dict(arguments or {}), 0)
                allowed = approve(event)
            except Exception as exc:
                return None, f"denied: the approval check failed ({error_text(exc)})"
            if not allowed:
                return None, "denied by the user"
        context = ToolContext(self.store, self.settings, chat_id, tool, notebook=self.notebook)
        return run_tool(tool, kwargs, float(settings["tool_timeout"]), context)
