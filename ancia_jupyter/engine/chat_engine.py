"""The chat engine: from a checked request to an answer being written.

It checks a request before anything is stored, stores the user's message and the assistant message the
answer will fill, and answers on a thread of its own (``answer_run.py``): the model's steps on the model
worker, tool calls between rounds, the answer saved as it grows so that a stop, an interrupt, a crash or a
database that refuses writes never loses what was already said (``pending_writes.py``). What to ask and how
a chat is named is the conversation service's (``conversation.py``); what is loaded is the model manager's.
The engine returns an ``Answer`` and never writes into the request it was given.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import events as ev
from ..changes import Change, ChatDeleted, HistoryChanged, Reset
from ..errors import InvalidValueError, NotFoundError, StoreError
from ..model_manager.manager import ModelManager, check_params
from ..store.database import Store
from .answer import Answer
from .answer_run import AnswerRun
from .context_fit import ContextFitter
from .host import ToolCatalog
from .pending_writes import PendingWrites


@dataclass(frozen=True, eq=False)
class ChatRequest:
    """One question (or, with ``prompt=None``, the history answered again), as the caller asked it."""

    chat_id: int | None  # None: a new chat, named ``title``
    prompt: str | None  # None: answer the history as it is (regenerate)
    title: str | None = None  # the chat's name, for a new chat or an untitled one named by its first question
    model: str | None = None
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    tools: Sequence[str] | bool | None = None  # names, False for none, None for every enabled tool
    images: Sequence[dict] = ()  # attachments: {"path"} or {"data", "mime"}
    context: str | None = None  # text to attach to the prompt (kernel variables)
    approve: Callable[[ev.ToolCall], bool] | None = None
    continue_message: int | None = None  # carry on this answer (cut at max_tokens, or stopped) in place
    copies: bool = False  # the answer copies much of its prompt (a fix, code for a cell): worth drafting from it


class Engine:
    """Answers questions: checks and stores each request, then answers it on a thread of its own whose
    model steps run on the model worker, and which runs tools, approvals and downloads itself, so one chat
    waiting on a person or the network never holds up another chat's answer."""

    def __init__(self, store: Store, models: ModelManager, settings: Callable[[], dict], tools: ToolCatalog) -> None:
        self.store = store
        self.models = models
        self.settings = settings
        self.tools = tools
        self.fitter = ContextFitter()
        self.pending = PendingWrites()
        self._runs: set[AnswerRun] = set()
        self._lock = threading.Lock()
        self._hinted = False
        store.changes.subscribe(self._forget_stale)

    def _forget_stale(self, change: Change) -> None:
        """What is remembered of a chat's prompt goes when its history changes or it goes."""
        if isinstance(change, (HistoryChanged, ChatDeleted)):
            self.fitter.forget(change.chat_id)
        elif isinstance(change, Reset):
            self.fitter.forget()

    def submit(self, request: ChatRequest) -> Answer:
        """Check the request, store the user's message (in a new chat when ``chat_id`` is None) and the
        assistant message to fill, then answer it. Bad input raises here and stores nothing."""
        check_prompt(request.prompt)
        self.pending.flush()  # what earlier answers could not save comes first
        chat = self.store.get_chat(request.chat_id) if request.chat_id is not None else None
        spec = self.models.spec(request.model)  # None: the model picked (the conversation service's rule)
        model_id = spec.id
        params = {**self.models.params(model_id), **check_params(spec, dict(request.params))}
        if request.images and not spec.vision:  # the conversation service routes images (``model_for``)
            raise InvalidValueError(f"{model_id} cannot see images: name a vision model to attach images.")
        self._check_tools(request)
        if request.continue_message is not None:
            return self._continue(request, chat, model_id, params)
        if chat is None and (request.prompt is None or not request.title):
            raise InvalidValueError("A new chat needs a prompt and a title.")
        created = chat is None
        chat_id, user_id, message_id, question = self._store_question(request, chat, model_id, params)
        answer = Answer(chat_id, message_id, user_id, model_id)
        answer.put(ev.MessageStarted(chat_id, message_id, user_id, model_id))
        return self._start(AnswerRun(self, answer, model_id, params, created, system=request.system,
                                     tools=request.tools, approve=request.approve, reservation=self.models.reserve(),
                                     copies=request.copies, question=question))

    def _continue(self, request: ChatRequest, chat: dict | None, model_id: str, params: dict) -> Answer:
        """Carry on an answer cut short (at the max_tokens limit, or stopped): the same message grows. Its
        views get it from the start again: ``message_started``, then its text so far as one token."""
        if chat is None:
            raise InvalidValueError("Name the chat whose answer to continue.")
        history = self.store.history(chat["id"])
        message = next((m for m in history if m["id"] == request.continue_message), None)
        if message is None:
            raise NotFoundError(f"Message {request.continue_message} is not in this chat.")
        if message is not history[-1] or message["role"] != "assistant":
            raise InvalidValueError("Only the last answer of a chat can be continued.")
        if message["finish_reason"] not in ("length", "stopped") and message["status"] != "stopped":
            raise InvalidValueError("This answer ended on its own: ask a follow-up instead.")
        if not message["content"]:
            raise InvalidValueError("There is nothing to continue: answer again instead.")
        self.store.update_message(message["id"], status="partial", model_id=model_id)
        answer = Answer(chat["id"], message["id"], None, model_id)
        answer.put(ev.MessageStarted(chat["id"], message["id"], None, model_id))
        answer.put(ev.Token(chat["id"], message["content"], message["id"]))
        return self._start(AnswerRun(self, answer, model_id, params, False, system=request.system,
                                     tools=request.tools, approve=request.approve,
                                     reservation=self.models.reserve(), continuing=message["content"],
                                     copies=True))

    def _start(self, run: AnswerRun) -> Answer:
        with self._lock:
            self._runs.add(run)
        try:
            threading.Thread(target=run.run, name=f"ancia-answer-{run.chat_id}", daemon=True).start()
        except BaseException as exc:  # no thread to answer on: the answer still ends
            run._fail(exc)
            run._end("error")
        return run.answer

    def _store_question(self, request: ChatRequest, chat: dict | None, model_id: str,
                        params: dict) -> tuple[int, int | None, int, str | None]:
        """Store the question and the assistant message its answer fills: (chat, question, answer) ids, and
        the question's text as the model reads it (None with images, which it reads otherwise).
        When the database refuses part of it, what was stored of it is taken back, so a refused question
        leaves no trace (an empty new chat, a question without an answer)."""
        created: int | None = None
        stored: list[int] = []
        try:
            if chat is None:
                assert request.title is not None
                chat = self.store.create_chat(request.title, model_id=model_id)
                created = chat["id"]
            elif request.title:
                self.store.update_chat(chat["id"], title=request.title)
            chat_id = chat["id"]
            user_id, content = None, None
            if request.prompt is not None:
                content = request.prompt if not request.context else f"{request.prompt}\n\n{request.context}"
                user_id = self.store.add_message(chat_id, "user", content, attachments=list(request.images))["id"]
                stored.append(user_id)
            if chat["model_id"] != model_id:
                self.store.update_chat(chat_id, model_id=model_id)
            message_id = self.store.add_message(chat_id, "assistant", "", status="partial", model_id=model_id,
                                                params=params)["id"]
            return chat_id, user_id, message_id, None if request.images else content
        except StoreError:
            with contextlib.suppress(StoreError, NotFoundError):
                if created is not None:
                    self.store.delete_chat(created)
                elif chat is not None:
                    for message_id in stored:
                        self.store.delete_message(chat["id"], message_id)
            raise

    def _check_tools(self, request: ChatRequest) -> None:
        """Tools named by the caller must exist and be on: said before anything is stored."""
        names = request.tools
        if names is None or isinstance(names, bool):
            return
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise InvalidValueError(f"tools must be a list of tool names, None for every enabled tool or False "
                                    f"for none (got {names!r}).")
        self.tools.schemas(list(names), chat_id=request.chat_id)

    # -- what an answer's thread asks of the engine ---------------------------------------------------

    def runtime_hint(self, model_id: str) -> str | None:
        """Advice on the runtime that will run ``model_id``, given once per kernel."""
        hint = self.models.choice(self.models.spec(model_id)).hint
        if not hint or self._hinted:
            return None
        self._hinted = True
        return hint

    def answer_ended(self, run: AnswerRun) -> None:
        with self._lock:
            self._runs.discard(run)

    def close(self) -> bool:
        """At the kernel's end: a last attempt to write what the database refused; whether all was written."""
        return self.pending.close()


def check_prompt(prompt: object) -> None:
    """A question must say something: the one check of a prompt, for every front end."""
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidValueError("The prompt is empty: ask something.")
