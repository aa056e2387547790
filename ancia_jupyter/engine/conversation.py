"""The conversation service: every question, from code, a magic or a panel, is asked here.

It owns what a conversation means on top of the engine: asking (and naming a new or untitled chat after its
first question), answering again, editing a question and answering it anew, stopping, whether anything is
being answered, the tool calls waiting for a person, and who follows which chat. Each question gives back
one ``Answer``; a view that shows a chat subscribes to that chat and gets the events of every answer
written in it, whoever asked, from its first event even when it subscribes in the middle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .. import events as ev
from ..changes import NotebookChatChanged
from ..errors import InvalidValueError, NotFoundError
from ..model_manager.manager import ModelManager
from ..store.database import Store
from .answer import Answer, Subscriber
from .approvals import Approvals
from .chat_engine import ChatRequest, Engine

NEW_CHAT_TITLE = "New chat"  # a chat nobody named; its first question names it
TITLE_LENGTH = 60

Approve = Callable[[ev.ToolCall], bool]


def title_from(prompt: str) -> str:
    """A chat's title, from its first question."""
    words = " ".join(prompt.split())
    return (words[:TITLE_LENGTH] + "…") if len(words) > TITLE_LENGTH else words


class Conversations:
    """Questions, answers in progress and their followers, for one kernel."""

    def __init__(self, store: Store, engine: Engine, models: ModelManager) -> None:
        self.store = store
        self.engine = engine
        self.models = models
        self.approvals = Approvals(self._stop_requested)
        self._answers: dict[int, list[Answer]] = {}  # chat -> its answers in progress (finished ones pruned)
        self._followers: dict[int, list[_Follower]] = {}
        self._current: dict[None, int | None] = {}  # the current chat of a kernel that runs no notebook
        self._lock = threading.Lock()

    # -- asking ---------------------------------------------------------------------------------------

    def send(self, prompt: str, *, chat: int | None = None, model: str | None = None, system: str | None = None,
             params: Mapping[str, Any] | None = None, tools: Sequence[str] | bool | None = None,
             images: Sequence[dict] = (), context: str | None = None, approve: Approve | None = None,
             copies: bool = False) -> Answer:
        """Ask in ``chat``, or in a new chat named after the question when ``chat`` is None. ``copies``: the
        answer will copy much of the question (a fix, code for a cell)."""
        request = ChatRequest(chat, prompt, title=self._title(chat, prompt), model=self.model_for(model, images),
                              system=system, params=dict(params or {}), tools=tools, images=tuple(images),
                              context=context, approve=approve, copies=copies)
        return self._start(request)

    def regenerate(self, chat_id: int, *, message_id: int | None = None, model: str | None = None,
                   system: str | None = None, params: Mapping[str, Any] | None = None,
                   tools: Sequence[str] | bool | None = None, approve: Approve | None = None,
                   copies: bool = False) -> Answer:
        """Answer again the question at or before ``message_id`` (by default the last question): what
        followed that question is dropped first."""
        history = self.store.history(chat_id)
        if message_id is not None and not any(m["id"] == message_id for m in history):
            raise NotFoundError(f"Message {message_id} is not in this chat.")
        questions = [m for m in history if m["role"] == "user" and (message_id is None or m["id"] <= message_id)]
        if not questions:
            raise InvalidValueError("This chat has no question to answer again.")
        after = [m for m in history if m["id"] > questions[-1]["id"]]
        if after:
            self.store.delete_messages_from(chat_id, after[0]["id"])
        return self._start(ChatRequest(chat_id, None, model=self.model_for(model, questions[-1]["attachments"]),
                                       system=system, params=dict(params or {}), tools=tools, approve=approve,
                                       copies=copies))

    def continue_(self, chat_id: int, *, message_id: int | None = None, model: str | None = None,
                  params: Mapping[str, Any] | None = None, approve: Approve | None = None) -> Answer:
        """Carry on the chat's last answer (``message_id``, if given, must be it), cut at the max_tokens
        limit or stopped: the same message grows."""
        history = self.store.history(chat_id)
        if message_id is None:
            if not history:
                raise InvalidValueError("This chat has no answer to continue.")
            message_id = history[-1]["id"]
        questions = [m for m in history if m["role"] == "user"]  # an answer about images goes on reading them
        model_id = self.model_for(model, questions[-1]["attachments"] if questions else ())
        return self._start(ChatRequest(chat_id, None, model=model_id, params=dict(params or {}),
                                       approve=approve, continue_message=message_id))

    def edit_and_resend(self, chat_id: int, message_id: int, content: str, *, model: str | None = None,
                        approve: Approve | None = None) -> Answer:
        """Rewrite a question and answer it anew (what followed it is dropped)."""
        self.store.edit_message(chat_id, message_id, content)  # an edited question's answer copies the old one
        return self.regenerate(chat_id, message_id=message_id, model=model, approve=approve, copies=True)

    # -- which chat a notebook is in ---------------------------------------------------------------------

    def current_chat(self, notebook: str | None) -> int | None:
        """The chat a notebook's views and magics go on in: the one it was last in (remembered across
        reopenings and kernel restarts; in memory only for a kernel that runs no notebook), or None, and then
        the next question starts a new chat. Never another notebook's chat, nor simply the newest one."""
        if notebook is None:
            with self._lock:
                chat_id = self._current.get(None)
        else:
            chat_id = self.store.notebook_chat(notebook)
        if chat_id is None:
            return None
        try:
            return self.store.get_chat(chat_id)["id"]
        except NotFoundError:  # deleted meanwhile
            return None

    def set_current_chat(self, notebook: str | None, chat_id: int | None) -> None:
        """Make ``chat_id`` the notebook's chat (None: the next question starts a new one); every view and the
        magics of the notebook follow."""
        if chat_id is not None:
            chat_id = self.store.get_chat(chat_id)["id"]
        if notebook is None:
            with self._lock:
                self._current[None] = chat_id
        elif self.store.notebook_chat(notebook) != chat_id:
            self.store.set_notebook_chat(notebook, chat_id)
        else:
            return
        self.store.changes.publish(NotebookChatChanged(notebook, chat_id))

    def model_for(self, model: str | None, images: Sequence[Any] = ()) -> str:
        """The one rule for which model answers, in every front end: the model asked for, else the model
        picked (``ancia.models.select``, the panel's picker, ``%ancia select``), whatever model wrote the
        chat so far; each message remembers the model that wrote it.

        A question with images needs a model that sees: a model asked for that cannot is refused; when
        none is asked for and the picked one cannot, the vision model reads them (the setting
        ``vision_model``, else the smallest downloaded one), and the next question without images goes
        back to the picked model. With no vision model at hand, one line says what to pull."""
        spec = self.models.spec(model)
        if not images or spec.vision:
            return spec.id
        if model is not None:
            raise InvalidValueError(f"{spec.id} cannot see images: name a vision model, or leave the model "
                                    "out and the vision model reads them.")
        choice = self.models.vision_choice()
        if choice.model is None:
            raise InvalidValueError(choice.hint or "No vision model can read the images.")
        return choice.model

    def _title(self, chat_id: int | None, prompt: Any) -> str | None:
        """The name the question gives its chat: a new chat's, or an untitled empty chat's; else None."""
        if not isinstance(prompt, str):
            return None  # the engine says what is wrong with it
        if chat_id is None:
            return title_from(prompt)
        info = self.store.get_chat(chat_id)
        return title_from(prompt) if info["title"] == NEW_CHAT_TITLE and info["message_count"] == 0 else None

    def _start(self, request: ChatRequest) -> Answer:
        answer = self.engine.submit(request)
        with self._lock:
            self._answers = {chat: live for chat, answers in self._answers.items()
                             if (live := [a for a in answers if not a.finished])}
            self._answers.setdefault(answer.chat_id, []).append(answer)
            for follower in self._followers.get(answer.chat_id, ()):
                follower.follow(answer)
        return answer

    # -- answers in progress --------------------------------------------------------------------------

    def _in_progress(self, chat_id: int | None = None) -> list[Answer]:
        with self._lock:
            return [a for chat, answers in self._answers.items() if chat_id is None or chat == chat_id
                    for a in answers if not a.finished]

    def stop(self, chat_id: int | None = None) -> int:
        """Stop the answers in progress (all, or one chat's); safe from any thread. Returns how many."""
        answers = self._in_progress(chat_id)
        for answer in answers:
            answer.stop()
        return len(answers)

    def generating(self, chat_id: int | None = None) -> bool:
        """Whether an answer is being written (anywhere, or in that chat)."""
        return bool(self._in_progress(chat_id))

    def model_state(self) -> str:
        """What a view shows of the model: ``generating`` while any answer is written, else its own state."""
        return "generating" if self.generating() else self.models.state

    def _stop_requested(self, chat_id: int) -> bool:
        return any(a.stop_requested() for a in self._in_progress(chat_id))

    # -- following a chat -----------------------------------------------------------------------------

    def subscribe(self, chat_id: int, subscriber: Subscriber) -> Callable[[], None]:
        """Give ``subscriber`` the events of every answer in ``chat_id``: the one in progress from its
        first event, then those started later. Returns the function that unsubscribes."""
        follower = _Follower(subscriber)
        with self._lock:
            self._followers.setdefault(chat_id, []).append(follower)
            for answer in self._answers.get(chat_id, ()):
                if not answer.finished:
                    follower.follow(answer)

        def unsubscribe() -> None:
            with self._lock:
                followers = self._followers.get(chat_id, [])
                if follower in followers:
                    followers.remove(follower)
                if not followers:
                    self._followers.pop(chat_id, None)
                follower.cancel()

        return unsubscribe


class _Follower:
    """One subscriber of a chat, with its subscriptions to that chat's answers."""

    def __init__(self, subscriber: Subscriber) -> None:
        self.subscriber = subscriber
        self.subscriptions: list[tuple[Answer, Callable[[], None]]] = []

    def follow(self, answer: Answer) -> None:
        self.subscriptions = [(a, cancel) for a, cancel in self.subscriptions if not a.finished]
        self.subscriptions.append((answer, answer.subscribe(self.subscriber)))

    def cancel(self) -> None:
        for _, cancel in self.subscriptions:
            cancel()
        self.subscriptions = []
