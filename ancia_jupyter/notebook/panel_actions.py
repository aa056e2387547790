"""What a chat view can ask of the kernel: one table from each action's name to a small handler, with the
arguments it takes declared beside it and checked before it runs (``docs/panel-protocol.md``).

Handlers call the Python API (`api.py`), nothing else; none holds chat logic of its own. A handler
returns the reply's data, or ``SNAPSHOT`` when the reply is the fresh snapshot.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .. import api
from .. import events as ev
from ..engine.answer import Answer
from ..errors import AnciaError, InvalidValueError

SNAPSHOT = object()  # what a handler returns when its reply is the fresh snapshot


class RequestError(AnciaError):
    """A request the UI made wrong (missing or mistyped argument); its message goes back as the error."""


class Panel(Protocol):
    """What a handler uses of the view's session; everything else it asks of the public API."""

    current_chat: int | None

    def approve(self, call: ev.ToolCall) -> bool: ...  # asks this view about a tool call marked confirm=True

    def chat(self) -> int: ...

    def chat_or_none(self) -> int | None: ...

    def follow(self, *, replay: bool = False) -> None: ...

    def notebook_bridge(self, enabled: bool) -> dict: ...  # this view's front end answers for the notebook


_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", list: "a list", dict: "an object"}


@dataclass(frozen=True)
class Arg:
    """One argument of an action: its JSON type, whether it must be there, and how to read it."""

    kind: type
    required: bool = True
    convert: Callable[[Any], Any] | None = None

    def read(self, msg: dict, name: str, action: str) -> Any:
        value = msg.get(name)
        if value is None:
            if self.required:
                raise RequestError(f"Missing {name!r} for {action}.")
            return None
        if self.kind is int and isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) and self.kind is not bool or not isinstance(value, self.kind):
            raise RequestError(f"{name!r} must be {_KIND_NAMES[self.kind]} (got {value!r}).")
        return self.convert(value) if self.convert else value


@dataclass(frozen=True)
class Action:
    name: str
    handler: Callable[..., Any]
    args: Mapping[str, Arg]
    slow: bool = False  # it waits for the model worker: answered from a thread of its own

    def __call__(self, panel: Panel, msg: dict) -> Any:
        values = {name: arg.read(msg, name, self.name) for name, arg in self.args.items()}
        return self.handler(panel, **values)


ACTIONS: dict[str, Action] = {}


def action(name: str, /, *, slow: bool = False, **args: Arg) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        ACTIONS[name] = Action(name, handler, args, slow)
        return handler

    return register


def optional(kind: type) -> Arg:
    return Arg(kind, required=False)


INT, STR, BOOL, DICT = Arg(int), Arg(str), Arg(bool), Arg(dict)


def _images(items: list) -> list[dict]:
    """Attached images as the UI sends them, ``{data: base64, mime}``, decoded."""
    images = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("data"), str):
            raise RequestError("Each image must be {data: base64, mime}.")
        mime = item.get("mime") or "image/png"
        if not isinstance(mime, str) or not mime.startswith("image/"):
            raise RequestError(f"Only images can be attached (got {mime!r}).")
        try:
            data = base64.b64decode(item["data"].split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("An attached image is not valid base64.") from None
        images.append({"data": data, "mime": mime})
    return images


# -- chats ----------------------------------------------------------------------------------------------

@action("state")
def _state(p: Panel) -> object:
    p.follow(replay=True)  # a view that just (re)connected gets the answer in progress from its start
    return SNAPSHOT


@action("select_chat", chat_id=INT)
def _select_chat(p: Panel, chat_id: int) -> object:
    p.current_chat = api.chats.get(chat_id).id
    return SNAPSHOT


@action("new_chat", title=optional(str))
def _new_chat(p: Panel, title: str | None) -> object:
    p.current_chat = api.chats.create(title or None).id
    return SNAPSHOT


@action("rename_chat", chat_id=INT, title=STR)
def _rename_chat(p: Panel, chat_id: int, title: str) -> object:
    api.chats.rename(chat_id, title)
    return SNAPSHOT


@action("delete_chat", chat_id=INT)
def _delete_chat(p: Panel, chat_id: int) -> object:
    api.chats.delete(chat_id)
    if p.current_chat == chat_id:
        p.current_chat = None
    return SNAPSHOT


@action("duplicate_chat", chat_id=INT)
def _duplicate_chat(p: Panel, chat_id: int) -> object:
    p.current_chat = api.chats.duplicate(chat_id).id
    return SNAPSHOT


# -- questions and answers --------------------------------------------------------------------------------

@action("send", text=STR, images=Arg(list, required=False, convert=_images))
def _send(p: Panel, text: str, images: list[dict] | None) -> dict:
    answer = api.chat(text, chat=p.chat_or_none(), images=images, approve=p.approve, stream=True)
    assert isinstance(answer, Answer)
    p.current_chat = answer.chat_id
    return {"chat_id": answer.chat_id, "message_id": answer.user_message_id}


@action("stop", chat_id=optional(int))
def _stop(p: Panel, chat_id: int | None) -> dict:
    return {"stopped": api.stop(chat_id)}


@action("regenerate", message_id=optional(int))
def _regenerate(p: Panel, message_id: int | None) -> dict:
    chat = p.chat()
    api.chats.get(chat).regenerate(message_id=message_id, approve=p.approve, stream=True)
    return {"chat_id": chat}


@action("continue", message_id=optional(int))
def _continue(p: Panel, message_id: int | None) -> dict:
    chat = p.chat()  # the answer cut at the max_tokens limit (default: the chat's last) grows in place
    api.chats.get(chat).continue_(message_id=message_id, approve=p.approve, stream=True)
    return {"chat_id": chat}


@action("edit_message", message_id=INT, content=STR, regenerate=optional(bool))
def _edit_message(p: Panel, message_id: int, content: str, regenerate: bool | None) -> object:
    chat = p.chat()
    if not content.strip():
        raise InvalidValueError("A message cannot be empty: delete it instead.")
    if regenerate:
        api.chats.get(chat).edit_and_resend(message_id, content, approve=p.approve, stream=True)
    else:
        api.chats.edit_message(chat, message_id, content)
    return SNAPSHOT


@action("delete_message", message_id=INT)
def _delete_message(p: Panel, message_id: int) -> object:
    api.chats.delete_message(p.chat(), message_id)
    return SNAPSHOT


@action("approve_tool", call_id=STR, approved=BOOL)
def _approve_tool(p: Panel, call_id: str, approved: bool) -> dict:
    api.chats.decide(call_id, approved)
    return {"call_id": call_id, "approved": approved}


# -- models, settings and tools ---------------------------------------------------------------------------

@action("select_model", model_id=STR)
def _select_model(p: Panel, model_id: str) -> object:
    api.models.select(model_id)
    return SNAPSHOT


@action("set_params", model_id=optional(str), params=DICT)
def _set_params(p: Panel, model_id: str | None, params: dict) -> object:
    api.models.set_params(model_id, **params)
    return SNAPSHOT


@action("update_settings", settings=DICT)
def _update_settings(p: Panel, settings: dict) -> object:
    api.settings.update(**settings)
    return SNAPSHOT


@action("load_model", slow=True, model_id=optional(str))
def _load_model(p: Panel, model_id: str | None) -> object:
    api.models.load(model_id)  # downloads off the model worker, then loads on it
    return SNAPSHOT


@action("unload_model", slow=True)
def _unload_model(p: Panel) -> object:
    api.models.unload()  # waits for the answers in progress
    return SNAPSHOT


@action("set_tool_trusted", name=STR, trusted=BOOL)
def _set_tool_trusted(p: Panel, name: str, trusted: bool) -> object:
    (api.tools.trust if trusted else api.tools.untrust)(name)
    return SNAPSHOT


@action("notebook_bridge", enabled=optional(bool))
def _notebook_bridge(p: Panel, enabled: bool | None) -> dict:
    return p.notebook_bridge(enabled is not False)  # the sidebar, on connect: the notebook tools may use it


@action("set_tool_enabled", name=STR, enabled=BOOL)
def _set_tool_enabled(p: Panel, name: str, enabled: bool) -> object:
    (api.tools.enable if enabled else api.tools.disable)(name)
    return SNAPSHOT


@action("delete_model_files", slow=True, model_id=STR)
def _delete_model_files(p: Panel, model_id: str) -> object:
    if not api.models.delete_cache(model_id):  # unloads it first, once its answers in progress have ended
        raise InvalidValueError(f"{model_id} has no downloaded files to delete.")
    return SNAPSHOT


# -- plugins ----------------------------------------------------------------------------------------------
# Each returns the Plugins page: what is installed, what the registry offers (its error, if it could not be
# read, in one line), and where it is. Reading the registry may download it: these run off the comm's thread.

def _plugins_page() -> dict:
    try:
        registry, error = api.plugins.registry(), None
    except AnciaError as exc:
        registry, error = [], " ".join(str(exc).split())
    return {"installed": api.plugins.list(), "registry": registry, "registry_error": error,
            "registry_location": api.plugins.registry_location()}


@action("plugins", slow=True)
def _plugins(p: Panel) -> dict:
    return _plugins_page()


def _plugin_verb(verb: str) -> Callable[..., dict]:
    def run(p: Panel, plugin_id: str) -> dict:
        getattr(api.plugins, verb)(plugin_id)
        return _plugins_page()

    return run


for _verb in ("install", "update", "enable", "disable", "uninstall"):  # each answers with the page as it is now
    action(f"{_verb}_plugin", slow=True, plugin_id=STR)(_plugin_verb(_verb))


# -- finding and exporting chats ----------------------------------------------------------------------------

@action("search", query=STR, limit=optional(int))
def _search(p: Panel, query: str, limit: int | None) -> dict:
    return {"query": query, "results": api.chats.search(query, 50 if limit is None else limit)}


@action("export_chat", chat_id=INT, format=STR)
def _export_chat(p: Panel, chat_id: int, format: str) -> dict:
    chat = api.chats.get(chat_id)
    return {"chat_id": chat_id, "title": chat.title, "format": format, "text": chat.export(format)}
