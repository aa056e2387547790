"""The ``%ancia`` subcommands that manage things: models, chats, tools, plugins, settings, and the help.

A mixin of `AnciaMagics`, which owns the current chat and the API. Each subcommand is one API call and a
line or a table of output; an error the user can act on is one line (``UsageError``), never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from ..errors import AnciaError
from .display import show_markdown, table
from .lazy_api import api
from .magic_agent import MagicAgent
from .magic_line import parse_value
from .magic_mcp import MCP_USAGE, MagicMcp

# name: (arguments, what it does, example, the most words it takes: more and the line is a question)
COMMANDS: dict[str, tuple[str, str, str, int]] = {
    "panel": ("", "the chat panel, below the cell", "%ancia panel", 0),
    "models": ("[rm MODEL]", "the models: status, runtime, size, memory, whether they fit; `rm` deletes a "
               "model's downloaded files", "%ancia models rm qwen2.5-0.5b-instruct", 2),
    "select": ("MODEL", "the model new answers use", "%ancia select smollm2-135m-instruct", 1),
    "load": ("[MODEL]", "load a model now (the selected one by default)", "%ancia load", 1),
    "unload": ("", "free the loaded model's memory", "%ancia unload", 0),
    "params": ("[MODEL] [NAME=VALUE …] | [MODEL] reset", "show, set or reset generation parameters",
               "%ancia params temperature=0.3 top_k=40", 99),
    "chats": ("", "the chats, newest first (* is the current one)", "%ancia chats", 0),
    "new": ("[TITLE]", "start a chat and make it current", "%ancia new Data cleaning", 99),
    "use": ("CHAT", "make a chat current, by id or title", "%ancia use Data cleaning", 99),
    "history": ("[CHAT]", "a chat's messages (the current chat by default)", "%ancia history", 1),
    "search": ("QUERY", "full-text search of every chat: where each match is, in bold", "%ancia search groupby", 99),
    "tools": ("", "the tools the model may call", "%ancia tools", 0),
    "plugins": ("[registry | install | enable | disable | update | uninstall] [ID]",
                "installed plugins, the registry, and managing them", "%ancia plugins install ID", 2),
    "mcp": (MCP_USAGE, "MCP servers whose tools the model may call, and managing them", "%ancia mcp trust files", 99),
    "agent": ("[on | off]", "show or switch whether the assistant works in the notebook: reads and adds cells, "
              "runs code after you approve", "%ancia agent on", 1),
    "offline": ("[on | off]", "show or switch offline mode (no network at all)", "%ancia offline on", 1),
    "stop": ("", "stop the answers in progress", "%ancia stop", 0),
    "fix": ("[N]", "explain the last error (or cell N's) and insert a fixed cell below", "%ancia fix", 1),
    "help": ("[COMMAND]", "this list", "%ancia help params", 1),
}
PLUGIN_ACTIONS = ("registry", "install", "enable", "disable", "update", "uninstall")
HELP_FOOTER = (
    "`%ancia QUESTION` asks in the current chat; `%%ancia [options]` asks the cell's text. Options: --new, "
    "--chat CHAT, --model MODEL, --temperature T, --top-p P, --top-k K, --max-tokens N, --system TEXT, "
    "--context NAME …, --no-tools, --approve, --format markdown|code|text|json, --no-interpolate. `{name}`, `{In[3]}`, "
    "`{Out[3]}` and `{Err[3]}` bring variables and earlier cells into the prompt; a line starting with `--` "
    "is always a question."
)


@contextmanager
def user_errors() -> Iterator[None]:
    """An error the user can act on is one line (``UsageError``), never a traceback."""
    try:
        yield
    except AnciaError as exc:
        raise UsageError(str(exc)) from None


class MagicCommands(MagicMcp, MagicAgent):
    """``%ancia SUBCOMMAND …``: one method ``_NAME`` per entry of ``COMMANDS`` (``fix`` asks, so it is the magic's)."""

    chat_id: int | None

    if TYPE_CHECKING:  # provided by `AnciaMagics`
        def _current_chat(self) -> int | None: ...

        def _resolve_chat(self, text: str) -> int: ...

        def _ask(self, prompt: str, args: Any) -> Any: ...

        def _parse(self, options: str) -> Any: ...

    def _panel(self, words: list[str]) -> None:
        from .widget import panel  # anywidget, imported on first use: `%load_ext` stays instant

        with user_errors():
            widget = panel(chat=self._current_chat())
        if widget is not None:
            display(widget)

    def _models(self, words: list[str]) -> None:
        if words:
            if words[0] != "rm":  # "%ancia models are …" is a question
                self._ask(" ".join(["models", *words]), self._parse(""))
            elif len(words) != 2:
                raise UsageError("Name the model: %ancia models rm MODEL (`%ancia models` lists them).")
            else:
                self._remove_model(words[1])
            return
        rows = [{**m, "size": f"{m['size_mb']} MB", "memory": f"{m['memory_mb']} MB",
                 "fits": "yes" if m["fits"] else "no"} for m in api.models.list()]
        info = api.models.info(api.models.selected())
        why = f"\n\n`{info['id']}` runs on **{info['runtime']}**: {info['runtime_reason']}."
        show_markdown(table(rows, [("selected", ""), ("id", "model"), ("title", "title"),
                                   ("status", "status"), ("runtime", "runtime"), ("size", "size"),
                                   ("memory", "memory"), ("fits", "fits")])
                      + why + (f"\n\n{info['runtime_hint']}" if info["runtime_hint"] else ""))

    def _remove_model(self, model: str) -> None:
        from ..api_models import size_text

        with user_errors():
            size = api.models.cache_size(model)  # measured first: afterwards nothing is left to measure
            deleted = api.models.delete_cache(model)
        print(f"Deleted the files of {model}: freed {size_text(size)}." if deleted
              else f"{model} has no downloaded files to delete.")

    def _select(self, words: list[str]) -> None:
        if not words:
            raise UsageError("Name the model: %ancia select MODEL (`%ancia models` lists them).")
        with user_errors():
            model = api.models.select(words[0])
        print(f"Selected {model}: new answers use it.")

    def _load(self, words: list[str]) -> None:
        with user_errors():
            model = api.models.info(words[0] if words else api.models.selected())["id"]
            print(f"Loading {model}…", flush=True)  # a first load may download it: say so before waiting
            api.models.load(model, progress=True)  # a download shows its progress widget in this cell
        print(f"Loaded {model}.")

    def _unload(self, words: list[str]) -> None:
        loaded = api.app_state()["loaded_model"]
        print(f"Unloaded {loaded}." if api.models.unload() else "No model is loaded.")

    def _params(self, words: list[str]) -> None:
        model = words.pop(0) if words and "=" not in words[0] and words[0] != "reset" else None
        with user_errors():
            if words == ["reset"]:
                params = api.models.reset_params(model)
            elif words:
                if not all("=" in w for w in words):
                    raise UsageError("Write parameters as NAME=VALUE, e.g. %ancia params temperature=0.3.")
                changes = {k.replace("-", "_"): parse_value(v) for k, v in (w.split("=", 1) for w in words)}
                params = api.models.set_params(model, **changes)
            else:
                params = api.models.params(model)
            model = model or api.models.selected()
        print(f"{model}: " + ", ".join(f"{k}={v}" for k, v in params.items()))

    def _chats(self, words: list[str]) -> None:
        rows = [{**c, "current": "*" if c["id"] == self.chat_id else ""} for c in api.chats.list()]
        if not rows:
            print("No chats yet: ask a question, or start one with %ancia new.")
            return
        show_markdown(table(rows, [("current", ""), ("id", "id"), ("title", "title"),
                                   ("message_count", "messages"), ("model_id", "model")]))

    def _new(self, title: str) -> None:
        with user_errors():
            chat = api.chats.create(title or None)
        self.chat_id = chat.id
        print(f"Chat {chat.id} ({chat.title}) is now current.")

    def _use(self, chat: str) -> None:
        if not chat:
            raise UsageError("Name the chat: %ancia use CHAT (`%ancia chats` lists them).")
        self.chat_id = self._resolve_chat(chat)
        print(f"Chat {self.chat_id} ({api.Chat(self.chat_id).title}) is now current.")

    def _history(self, words: list[str]) -> None:
        chat = self._resolve_chat(words[0]) if words else self._current_chat()
        if chat is None:
            print("No current chat: ask a question, or start one with %ancia new.")
            return
        show_markdown(api.export_chat(chat, "md"))

    def _search(self, words: list[str]) -> None:
        query = " ".join(words)
        if not query.strip():
            raise UsageError("Say what to look for: %ancia search QUERY.")
        with user_errors():
            hits = api.chats.search(query)
        if not hits:
            print(f"No message in any chat matches {query!r}.")
            return
        show_markdown(table(hits, [("chat_title", "chat"), ("role", "role"), ("snippet", "match"),
                                   ("message_id", "message"), ("chat_id", "chat id")]))

    def _tools(self, words: list[str]) -> None:
        from ..api_tools import tools

        with user_errors():
            rows = tools.list()
            ability = api.models.tool_ability()
        text = table(rows, [("enabled", "on"), ("name", "tool"), ("description", "what it does"),
                            ("source", "from"), ("available", "available")])
        show_markdown(text + (f"\n\n{ability['advice']}" if ability["advice"] else ""))

    def _plugins(self, words: list[str]) -> None:
        action, target = (words + [None, None])[:2]
        if action is not None and action not in PLUGIN_ACTIONS:
            raise UsageError(f"Unknown plugins action {action!r}; use one of: {', '.join(PLUGIN_ACTIONS)}.")
        from ..api_plugins import plugins

        with user_errors():
            if action is None:
                columns = [("enabled", "on"), ("id", "plugin"), ("version", "version"), ("tools", "tools"),
                           ("error", "error")]
                show_markdown(table(plugins.list(), columns))
            elif action == "registry":
                show_markdown(table(plugins.registry(), [("id", "plugin"), ("version", "version"),
                                                         ("installed", "installed"),
                                                         ("description", "what it does")]))
            elif action == "update":
                changed = plugins.update(target)
                print("; ".join(f"Updated {c['id']} {c['from']} → {c['to']}" for c in changed) + "."
                      if changed else "Every plugin is up to date.")
            elif target is None:
                raise UsageError(f"Name the plugin: %ancia plugins {action} ID.")
            elif action == "uninstall":
                plugins.uninstall(target)
                print(f"Uninstalled {target}.")
            else:
                info = getattr(plugins, action)(target)
                tools = f": tools {', '.join(info['tools'])}" if info["tools"] and action != "disable" else ""
                done = {"install": "Installed", "enable": "Enabled", "disable": "Disabled"}[action]
                print(f"{done} {info['id']} {info['version']}{tools}.")

    def _offline(self, words: list[str]) -> None:
        if words and words[0] not in ("on", "off"):
            raise UsageError("Write %ancia offline on, or %ancia offline off.")
        with user_errors():
            settings = (api.settings.update(offline=words[0] == "on") if words
                        else api.settings.get())
        print("Offline mode is on: nothing uses the network." if settings["offline"]
              else "Offline mode is off.")

    def _stop(self, words: list[str]) -> None:
        stopped = api.stop()
        print(f"Stopped {stopped} answer(s)." if stopped else "No answer is in progress.")

    def _help(self, words: list[str]) -> None:
        names = words or list(COMMANDS)
        lines = ["| command | what it does | example |", "|---|---|---|"]
        for n in names:
            usage = f"%ancia {n} {COMMANDS[n][0]}".strip().replace("|", "\\|")
            lines.append(f"| `{usage}` | {COMMANDS[n][1]} | `{COMMANDS[n][2]}` |")
        if not words:
            lines += ["", HELP_FOOTER]
        show_markdown("\n".join(lines))
