"""Fitting a chat into the context window, cheaply and so that the prompt cache keeps working.

Counting: each message is counted once with the model's tokenizer and the count is remembered (by message
id and last change), so fitting costs the same for a chat of 10 or 10 000 messages; the kept messages are
rendered with the chat template once, for the exact prompt.

Dropping: when a chat outgrows the window, whole turns are left out from the start a quarter of the window
at a time: the kept part starts at the first turn past a multiple of a quarter window of (counted) history,
the fewest quarters that make the rest fit. So the prompt's beginning stays the same for many later
questions and the per-chat prompt cache is reused instead of the whole window being read again at every
question; and the choice depends on the chat alone, so a cache kept on disk still matches after a kernel
restart. The system prompt is always kept, and so is the last turn; when even that does not fit, the
request is refused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ..errors import ContextWindowError
from ..runtimes import Runtime

MAX_COUNTS = 50_000  # remembered message counts, least recently used forgotten first
SLACK = 4  # drop a 1/SLACK of the window more than needed


@dataclass
class Fit:
    tokens: list[int] | None  # the exact prompt (None for runtimes that tokenize on their side)
    messages: list[dict]  # the messages the prompt was made of, system prompt first
    size: int  # its length in tokens (estimated where ``tokens`` is None)
    dropped: int  # how many stored messages were left out
    newly_dropped: bool  # more were left out than for the previous question


def turns(history: list[dict]) -> list[list[dict]]:
    """Split history into turns, each starting at a user message; a turn is never split."""
    out: list[list[dict]] = []
    for m in history:
        if m["role"] == "user" or not out:
            out.append([])
        out[-1].append(m)
    return out


def as_template_message(m: dict) -> dict:
    out: dict[str, Any] = {"role": m["role"], "content": m["content"]}
    if m.get("attachments"):
        out["images"] = m["attachments"]  # vision runtimes place and count them; text templates ignore the key
    if m.get("tool_calls"):
        out["tool_calls"] = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in m["tool_calls"]
        ]
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
        out["name"] = m.get("tool_name")
    return out


class ContextFitter:
    """Remembers message token counts and, per chat, where the kept part of the history starts."""

    def __init__(self) -> None:
        self._counts: OrderedDict[tuple, int] = OrderedDict()
        self._starts: dict[int, int] = {}  # chat id -> id of the first kept message
        self._lock = threading.Lock()

    def forget(self, chat_id: int | None = None) -> None:
        with self._lock:
            if chat_id is None:
                self._starts.clear()
            else:
                self._starts.pop(chat_id, None)

    def _count(self, runtime: Runtime, message: dict) -> int:
        key = (runtime.name, id(runtime), message.get("id"), message.get("updated_at"), len(message["content"]))
        with self._lock:
            if key in self._counts:
                self._counts.move_to_end(key)
                return self._counts[key]
        count = runtime.message_tokens(as_template_message(message))
        with self._lock:
            self._counts[key] = count
            while len(self._counts) > MAX_COUNTS:
                self._counts.popitem(last=False)
        return count

    def fit(self, chat_id: int, runtime: Runtime, head: list[dict], history: list[dict],
            tools: list[dict] | None, window: int, reserve: int, *, continuing: bool = False) -> Fit:
        """The latest turns that fit in ``window`` with ``reserve`` tokens left to answer; ``continuing``: the
        last message is an answer cut short, which the prompt carries on instead of starting a new one."""
        parts = turns(history)
        if not parts:
            messages = list(head)
            tokens = self._render(runtime, messages, tools, False)
            size = len(tokens) if tokens is not None else runtime.count_tokens(messages, tools)
            return Fit(tokens, messages, size, 0, False)
        costs = [sum(self._count(runtime, m) for m in turn) for turn in parts]
        suffix = [0] * (len(parts) + 1)
        for i in range(len(parts) - 1, -1, -1):
            suffix[i] = suffix[i + 1] + costs[i]
        base = runtime.count_tokens(head, tools) if head or tools else 0
        budget = window - reserve
        with self._lock:
            remembered = self._starts.get(chat_id)
        previous = next((i for i, t in enumerate(parts) if remembered is not None and t[0]["id"] >= remembered), 0)
        start = self._quarter_start(costs, suffix, base, budget, window)
        while True:
            messages = head + [as_template_message(m) for turn in parts[start:] for m in turn]
            tokens = self._render(runtime, messages, tools, continuing)
            size = len(tokens) if tokens is not None else base + suffix[start]
            if size <= budget:
                break
            if start == len(parts) - 1:
                raise ContextWindowError(
                    f"The prompt needs {size} tokens but the context window is {window}: nothing was stored. "
                    "Shorten it, or raise context_window with `ancia.models.set_params(context_window=...)`.")
            start += 1
        with self._lock:
            if start:
                self._starts[chat_id] = parts[start][0]["id"]
            else:
                self._starts.pop(chat_id, None)
        dropped = sum(len(t) for t in parts[:start])
        return Fit(tokens, messages, size, dropped, start > previous)

    @staticmethod
    def _quarter_start(costs: list[int], suffix: list[int], base: int, budget: int, window: int) -> int:
        """The first kept turn: past the fewest whole quarter windows of history that leave the rest fitting."""
        quarter, dropped, start = max(1, window // SLACK), 0, 0
        for quarters in range(len(costs) * SLACK + 1):
            while start < len(costs) - 1 and dropped < quarters * quarter:
                dropped += costs[start]
                start += 1
            if base + suffix[start] <= budget or start == len(costs) - 1:
                return start
        return len(costs) - 1

    @staticmethod
    def _render(runtime: Runtime, messages: list[dict], tools: list[dict] | None,
                continuing: bool) -> list[int] | None:
        if not runtime.local:
            return None
        return runtime.continuation_tokens(messages, tools) if continuing else runtime.prompt_tokens(messages, tools)
