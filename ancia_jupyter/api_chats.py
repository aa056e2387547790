"""Asking and chats: ``ancia.chat``, ``ancia.stop``, the ``Chat`` handle and ``ancia.chats``.

Thin: each call finds the kernel's app and asks the conversation service or the store.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterable
from typing import Any

from . import events as ev
from .app import get_app
from .engine.answer import Answer
from .engine.conversation import NEW_CHAT_TITLE
from .errors import InvalidValueError
from .response import Response, answer_markdown

PARAM_OPTIONS = ("temperature", "top_p", "top_k", "max_tokens", "context_window")


def _images(images: Iterable[Any] | None) -> list[dict]:
    out = []
    for image in images or ():
        if isinstance(image, (bytes, bytearray)):
            out.append({"data": bytes(image), "mime": "image/png"})
        elif isinstance(image, dict):
            out.append(image)
        elif hasattr(image, "save") and hasattr(image, "size"):  # a PIL image
            import io

            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            out.append({"data": buffer.getvalue(), "mime": "image/png"})
        else:
            out.append({"path": str(image)})
    return out


def chat(prompt: str, *, chat: int | None = None, model: str | None = None, system: str | None = None,
         temperature: float | None = None, top_p: float | None = None, top_k: int | None = None,
         max_tokens: int | None = None, tools: list[str] | bool | None = None, stream: bool = False,
         images: Iterable[Any] | None = None, context: list[str] | None = None,
         approve: Callable[[ev.ToolCall], bool] | None = None, copies: bool = False) -> Response | Answer:
    """Ask a question. Without ``chat=`` it starts a new chat; ``stream=True`` returns the ``Answer`` (its
    events as they come, its ``chat_id`` and ``message_id`` at once) instead of waiting for the whole
    answer. Per-call options override the model's stored params for this call only. ``copies=True``: the
    answer will copy much of the question (a fixed cell, code in a given shape), so it is drafted from it."""
    params = {k: v for k, v in dict(temperature=temperature, top_p=top_p, top_k=top_k,
                                     max_tokens=max_tokens).items() if v is not None}
    answer = get_app().conversations.send(prompt, chat=chat, model=model, system=system, params=params,
                                          tools=tools, images=_images(images), context=_context_text(context),
                                          approve=approve, copies=copies)
    return answer if stream else answer.response()


def _context_text(names: list[str] | None) -> str | None:
    if not names:
        return None
    from .tools.kernel_context import describe_variables

    return describe_variables(names)


def stop(chat: int | None = None) -> int:
    """Stop the answer in progress (or only that chat's); returns how many answers were stopped."""
    return get_app().conversations.stop(chat)


def export_chat(chat_id: int, format: str = "md") -> str:
    """A chat as Markdown (``md``) or JSON (``json``)."""
    store = get_app().store
    info = store.get_chat(chat_id)
    history = store.history(info["id"])
    if format == "json":
        for m in history:
            for a in m["attachments"]:
                if a.get("data") is not None:
                    import base64

                    a["data"] = base64.b64encode(a["data"]).decode()
        return json.dumps({"chat": info, "messages": history}, indent=2, ensure_ascii=False)
    if format not in ("md", "markdown"):
        raise InvalidValueError(f"Export format must be 'md' or 'json' (got {format!r}).")
    lines = [f"# {info['title']}", ""]
    for role, turn in _turns(history):
        if role == "user":
            lines += ["**user**", "", turn[0]["content"], ""]
            continue
        last = turn[-1]
        status = f" ({last['status']})" if last["status"] != "complete" else ""
        errors = [m["error"] for m in turn if m.get("error")]
        lines += [f"**assistant**{status}", "", answer_markdown(_parts(turn), (), errors, last["status"]), ""]
    return "\n".join(lines)


def _turns(history: list[dict]) -> list[tuple[str, list[dict]]]:
    """The stored messages as the chat reads: each question, then everything that answered it (the model's
    messages and its tools' results) as one answer."""
    turns: list[tuple[str, list[dict]]] = []
    for m in history:
        role = "user" if m["role"] in ("user", "system") else "assistant"
        if role == "user" or not turns or turns[-1][0] == "user":
            turns.append((role, [m]))
        else:
            turns[-1][1].append(m)
    return turns


def _parts(answer: list[dict]) -> list[dict]:
    """An answer's stored messages as the parts ``answer_markdown`` shows: words and tool calls in order,
    each call with its result."""
    parts: list[dict] = []
    calls: dict[str, dict] = {}
    for m in answer:
        if m["role"] == "tool":
            error = m["content"][len("error: "):] if m["content"].startswith("error: ") else None
            calls.setdefault(m["tool_call_id"] or "", {"name": m["tool_name"]}).update(
                output=None if error else m["content"], error=error)
            continue
        if m["content"]:
            parts.append({"text": m["content"]})
        for call in m.get("tool_calls") or []:
            calls[call["id"]] = {"name": call["name"], "arguments": call["arguments"]}
            parts.append({"tool": calls[call["id"]]})
    return parts


class Chat:
    """A handle on one chat: the chat verbs plus ``send`` and ``regenerate``."""

    def __init__(self, chat_id: int) -> None:
        self.id = get_app().store.get_chat(chat_id)["id"]

    def __repr__(self) -> str:
        info = self.info()
        return f"<Chat {self.id}: {info['title']!r}, {info['message_count']} messages>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chat) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def info(self) -> dict:
        return get_app().store.get_chat(self.id)

    @property
    def title(self) -> str:
        return self.info()["title"]

    def send(self, prompt: str, **options: Any) -> Response | Answer:
        return chat(prompt, chat=self.id, **options)

    def regenerate(self, *, stream: bool = False, **options: Any) -> Response | Answer:
        """Drop the last answer (everything after the last user message) and answer again. Options: model,
        system, tools, approve and the per-call params of ``ancia.chat``."""
        params = {k: options.pop(k) for k in list(options) if k in PARAM_OPTIONS}
        answer = get_app().conversations.regenerate(self.id, params=params, **options)
        return answer if stream else answer.response()

    def continue_(self, message_id: int | None = None, *, stream: bool = False, model: str | None = None,
                  approve: Callable[[ev.ToolCall], bool] | None = None, **params: Any) -> Response | Answer:
        """Carry on the last answer, cut at the max_tokens limit or stopped: the same message grows by up to
        ``max_tokens`` more tokens. Options: the per-call params of ``ancia.chat``."""
        unknown = set(params) - set(PARAM_OPTIONS)
        if unknown:
            raise InvalidValueError(f"Unknown option(s) {', '.join(sorted(unknown))}; options are: "
                                    f"{', '.join(PARAM_OPTIONS)}.")
        answer = get_app().conversations.continue_(self.id, message_id=message_id, model=model, params=params,
                                                   approve=approve)
        return answer if stream else answer.response()

    def edit_and_resend(self, message_id: int, content: str, *, stream: bool = False, model: str | None = None,
                        approve: Callable[[ev.ToolCall], bool] | None = None) -> Response | Answer:
        """Rewrite one of your questions and answer it anew (what followed it is dropped)."""
        answer = get_app().conversations.edit_and_resend(self.id, message_id, content, model=model, approve=approve)
        return answer if stream else answer.response()

    def rename(self, title: str) -> Chat:
        get_app().store.update_chat(self.id, title=title)
        return self

    def delete(self) -> None:
        get_app().store.delete_chat(self.id)

    def duplicate(self) -> Chat:
        return Chat(get_app().store.duplicate_chat(self.id)["id"])

    def history(self) -> list[dict]:
        return get_app().store.history(self.id)

    def clear(self) -> int:
        return get_app().store.clear_messages(self.id)

    def edit_message(self, message_id: int, content: str) -> dict:
        return get_app().store.edit_message(self.id, message_id, content)

    def delete_message(self, message_id: int) -> None:
        get_app().store.delete_message(self.id, message_id)

    def set_options(self, **options: Any) -> dict:
        """Per-chat switches, e.g. ``kernel_context=True`` lets the model inspect this kernel's variables."""
        allowed = {"kernel_context": bool}
        for key, value in options.items():
            if key not in allowed or not isinstance(value, allowed[key]):
                raise InvalidValueError(f"Unknown chat option {key}={value!r}; options are: kernel_context (bool).")
        info = get_app().store.update_chat(self.id, options={**self.info()["options"], **options})
        return info["options"]

    def set_mood(self, mood: str) -> None:
        get_app().store.update_chat(self.id, mood=mood)

    def export(self, format: str = "md") -> str:
        return export_chat(self.id, format)


class Chats:
    """``ancia.chats``: every chat in the store."""

    def create(self, title: str | None = None, *, model: str | None = None, system: str | None = None) -> Chat:
        """A new chat; without a title it is "New chat" until its first question names it."""
        app = get_app()
        model_id = app.models.spec(model).id if model else None
        return Chat(app.store.create_chat(title or NEW_CHAT_TITLE, model_id=model_id, system_prompt=system)["id"])

    def list(self) -> builtins.list[dict]:
        return get_app().store.list_chats()

    def get(self, chat_id: int) -> Chat:
        return Chat(chat_id)

    def rename(self, chat_id: int, title: str) -> Chat:
        return Chat(chat_id).rename(title)

    def delete(self, chat_id: int) -> None:
        get_app().store.delete_chat(chat_id)

    def duplicate(self, chat_id: int) -> Chat:
        return Chat(chat_id).duplicate()

    def history(self, chat_id: int) -> builtins.list[dict]:
        return get_app().store.history(chat_id)

    def clear(self, chat_id: int) -> int:
        return get_app().store.clear_messages(chat_id)

    def edit_message(self, chat_id: int, message_id: int, content: str) -> dict:
        return get_app().store.edit_message(chat_id, message_id, content)

    def delete_message(self, chat_id: int, message_id: int) -> None:
        get_app().store.delete_message(chat_id, message_id)

    def decide(self, call_id: str, approved: bool) -> None:
        """Approve or deny a tool call that waits for a person (the approval card's buttons do this)."""
        get_app().conversations.approvals.decide(call_id, approved)

    def search(self, query: str, limit: int = 20) -> builtins.list[dict]:
        return get_app().store.search(query, limit)

    def export(self, chat_id: int, format: str = "md") -> str:
        return export_chat(chat_id, format)

    def compact(self) -> dict:
        """Shrink the database file after deleting a lot: its path and its bytes before and after."""
        return get_app().store.compact()
