"""``Answer``: the handle a question returns. It knows its chat and messages from the start and is the one
stream of the answer's events, for whoever asked and for the views that follow the chat.

The events are kept in order in a log: the asker iterates it (with a place of its own, so an interrupted
loop carries on where it was), and a subscriber added late first gets what was already said, then the rest
as it comes, which lets a view that opens in the middle of an answer show all of it. Writing an event costs
what a queue put does, plus the calls to the chat's subscribers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from .. import events as ev
from ..rendering import show_stream
from ..response import Response

Subscriber = Callable[[ev.Event], None]
STOP_GRACE = 5.0  # seconds an interrupted asker waits for the answer's ``done``


class Answer:
    """One question's answer, as it comes. Iterate it for its events; Ctrl-C (KeyboardInterrupt) while
    waiting stops the answer and the stream still ends with ``done`` (status ``stopped``).

    ``message_id`` is the assistant message the answer starts writing; a tool round starts another one (its
    own ``message_started``), and ``response().message_id`` is the last.
    """

    def __init__(self, chat_id: int, message_id: int, user_message_id: int | None, model: str) -> None:
        self.chat_id = chat_id
        self.message_id = message_id
        self.user_message_id = user_message_id
        self.model = model
        self.done: ev.Done | None = None
        self._log: list[ev.Event] = []
        self._subscribers: tuple[Subscriber, ...] = ()
        self._changed = threading.Condition()
        self._read = 0  # the asker's place in the log
        self._stop = threading.Event()

    def __repr__(self) -> str:
        state = self.done.status if self.done else "in progress"
        return f"<Answer chat={self.chat_id} message={self.message_id}: {state}>"

    # -- the engine's end -----------------------------------------------------------------------------

    def put(self, event: ev.Event) -> None:
        """Add an event; the subscribers get it in order, before the next one is added. Nothing comes
        after ``done``."""
        with self._changed:
            if self.done is not None:
                return
            self._log.append(event)
            if isinstance(event, ev.Done):
                self.done = event
            self._changed.notify_all()
            for subscriber in self._subscribers:
                _deliver(subscriber, event)

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # -- the asker's and the views' end ---------------------------------------------------------------

    @property
    def events(self) -> list[ev.Event]:
        """The events so far, in order."""
        return self._log

    @property
    def finished(self) -> bool:
        return self.done is not None

    def stop(self) -> None:
        """Ask the answer to stop; it ends soon after with ``done`` (status ``stopped``). Safe from any thread."""
        self._stop.set()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every event: those already said at once, then each new one as it comes.
        Returns the function that unsubscribes; no event is delivered after it returns."""
        with self._changed:
            for event in self._log:
                _deliver(subscriber, event)
            self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            with self._changed:
                self._subscribers = tuple(s for s in self._subscribers if s is not subscriber)

        return unsubscribe

    def __iter__(self) -> Iterator[ev.Event]:
        """The events, as they come. Ctrl-C stops the answer and waits (a few seconds at most) for its
        ``done``; a second Ctrl-C leaves at once: a waiting cell is always freed."""
        interrupted = 0
        while True:
            try:
                event = self._next(STOP_GRACE if interrupted else None)
            except KeyboardInterrupt:
                self.stop()
                interrupted += 1
                if interrupted > 1:
                    return
                continue
            if event is None:
                return
            yield event

    def drain(self, feed: Subscriber) -> None:
        """Give ``feed`` every event, in order, on this thread. Ctrl-C, while waiting or while ``feed`` runs,
        stops the answer and its end is still fed; a second Ctrl-C leaves at once."""
        events = iter(self)
        interrupted = False
        while True:
            try:
                for event in events:
                    feed(event)
                return
            except KeyboardInterrupt:  # it landed in ``feed``: the answer carries on to its end
                if interrupted:
                    return
                interrupted = True
                self.stop()

    def _next(self, timeout: float | None) -> ev.Event | None:
        """The asker's next event; None at the end, or when ``timeout`` passes without one."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._read < len(self._log) or self.done is not None, timeout):
                return None
            if self._read >= len(self._log):
                return None
            event = self._log[self._read]
            self._read += 1
            return event

    def response(self) -> Response:
        """Wait for the end of the answer and return it whole (status ``stopped`` if the asker left before
        the end, with a second Ctrl-C)."""
        for _ in self:
            pass
        events = list(self._log)
        if self.done is None:
            events.append(ev.Done(self.chat_id, self.message_id, "stopped"))
        return Response.from_events(events)

    def _ipython_display_(self) -> None:
        show_stream(self)


def _deliver(subscriber: Subscriber, event: ev.Event) -> None:
    try:
        subscriber(event)
    except Exception:  # a broken view must never break the answer
        pass
