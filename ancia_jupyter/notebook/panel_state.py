"""The snapshot a chat view draws: chats, the current chat's stored messages, models, params and their bounds,
settings, tools, where an image would go, the downloads under way, and the tool calls waiting for this view
(``docs/panel-protocol.md``). It is read from the store and the app, never from an answer in progress: a view
shows that one from its events."""

from __future__ import annotations

import base64

from ..app import App
from ..model_manager import progress
from ..model_manager.catalog import PARAM_BOUNDS

MAX_INLINE_IMAGE = 4 * 1024 * 1024  # attachments bigger than this are listed without their bytes

CHAT_FIELDS = ("id", "title", "model_id", "mood", "message_count", "created_at", "updated_at")
MESSAGE_FIELDS = ("id", "chat_id", "role", "content", "status", "model_id", "tool_calls", "tool_call_id",
                  "tool_name", "error", "created_at", "completion_tokens", "timings", "finish_reason")


def snapshot(app: App, chat_id: int | None, approvals: list[dict]) -> dict:
    """Everything but ``version``, which the session adds (it is the version the view compares with)."""
    selected = app.models.selected()
    params = app.models.params(selected)
    chat = app.store.get_chat(chat_id) if chat_id is not None else None
    return {
        "chats": [_chat_row(c) for c in app.store.list_chats()],
        "current_chat": chat_id,
        "messages": [_message_row(m) for m in app.store.history(chat["id"])] if chat else [],
        "models": _models(app), "selected_model": selected, "loaded_model": app.models.loaded_id,
        "model_state": app.conversations.model_state(),
        "params": params, "param_bounds": _bounds(app.models.spec(selected).context_length, params),
        "settings": app.settings(), "tools": [] if app.tools is None else app.tools.list(chat_id),
        "mood": chat["mood"] if chat else None, "approvals": approvals, "vision": _vision(app),
        "downloads": [download.to_dict() for download in progress.active()],
    }


def _bounds(context_length: int, params: dict) -> dict:
    """Each parameter's range: the context window up to what the model was trained on, an answer's length up
    to the context window it has to fit in."""
    highest = {"context_window": context_length, "max_tokens": params.get("context_window") or context_length}
    return {name: {"type": kind.__name__, "min": low, "max": max(low, min(high, highest.get(name, high)))}
            for name, (kind, low, high) in PARAM_BOUNDS.items()}


def _models(app: App) -> list[dict]:
    """The model list, each row with where its files come from (``source``: ``hf``, ``pypi``, ``local`` for
    your own files, ``remote`` for a server): a view offers to delete downloaded files only."""
    kinds = {spec.id: spec.source.kind for spec in app.models.specs()}
    return [{**row, "source": kinds.get(row["id"])} for row in app.models.list()]


def _vision(app: App) -> dict:
    """Where an attached image would go (as ``ancia.models.vision_model()`` says): ``model``, the model that sees
    it, or ``None``; ``hint``, one line saying where images go or what to pull."""
    choice = app.models.vision_choice()
    return {"model": choice.model, "hint": choice.hint}


def _chat_row(chat: dict) -> dict:
    return {k: chat.get(k) for k in CHAT_FIELDS}


def _message_row(m: dict) -> dict:
    row = {k: m.get(k) for k in MESSAGE_FIELDS}
    row["attachments"] = [
        {"mime": a.get("mime"), "path": a.get("path"),
         "data": base64.b64encode(a["data"]).decode() if a.get("data") and len(a["data"]) <= MAX_INLINE_IMAGE
         else None}
        for a in m.get("attachments") or []
    ]
    return row
