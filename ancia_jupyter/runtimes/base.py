"""What the engine needs from a model runtime, and nothing more.

A runtime turns chat messages into prompt tokens with the model's chat template and streams an answer
for them. Prompt caches are plain values the engine keeps per chat; a runtime only knows how to reuse
one. MLX text (mlx-lm) and vision (mlx-vlm) runtimes implement this; an HTTP or llama.cpp runtime can
join without touching the engine.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError


@dataclass
class ToolCallRequest:
    """A call the model asked for; ``error`` is set when its text could not be parsed."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    raw: str = ""


@dataclass
class Chunk:
    """One step of a runtime's stream: visible text, or the tool calls that ended a turn."""

    text: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    finish_reason: str | None = None  # "stop", "length", "stopped", "tool_calls"
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generation_tokens: int = 0
    prompt_tps: float = 0.0
    generation_tps: float = 0.0


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many tokens two token lists share from their start: what a prompt cache can reuse."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _turn_opening(first: list[int], later: list[int]) -> list[int]:
    """What a user turn's opening is, as it ends every earlier turn: the tokens the opening of a chat's first
    question and of a later one end with alike (the template's end of a turn and header of a user turn)."""
    shared = next((n for n in range(min(len(first), len(later))) if first[-1 - n] != later[-1 - n]),
                  min(len(first), len(later)))
    return first[len(first) - shared:]


# The most tokens of a question read early, in one job of the model worker: a longer one is read by its
# answer, a slice at a time, between other chats' tokens and where a Stop lands.
EARLY_QUESTION = 32


@dataclass
class PromptCache:
    """The KV state of one conversation and the exact tokens it holds."""

    tokens: list[int] = field(default_factory=list)
    state: Any = None
    nbytes: int = 0
    disk_read: bool = False  # the chat's copy on disk was looked for: from then on this cache is newer
    on_disk: tuple[Path, list[int]] | None = None  # the file last saved for the chat, and the tokens it holds


class Runtime(ABC):
    name: str = "runtime"
    vision: bool = False
    local: bool = True  # tokenizes here: ``prompt_tokens`` is exact; False for a server that does it

    @abstractmethod
    def load(self, path: Path) -> None: ...

    def configure(self, settings: Mapping[str, Any]) -> None:  # noqa: B027 - most runtimes need none
        """Take the user's settings that bear on this runtime; called before every answer, so a change
        applies to the next request without a reload."""

    def open_context(self, window: int) -> None:  # noqa: B027 - a runtime that makes its context per answer
        """Make the context a chat of ``window`` tokens needs, right after the load, so the first question
        does not wait for it. A context that does not fit is left for the first question to explain."""

    @abstractmethod
    def unload(self) -> None: ...

    @abstractmethod
    def prompt_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """The tokens of ``messages`` rendered with the chat template, ready for an assistant turn."""

    def count_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> int:
        return len(self.prompt_tokens(messages, tools))

    def text_tokens(self, text: str) -> list[int]:
        """The tokens of plain text as the model reads it inside a message (no special tokens added)."""
        raise ModelError(f"Answers on the {self.name} runtime cannot be continued: ask a follow-up instead.")

    def special_token(self, text: str) -> int | None:
        """The id of the one control token ``text`` names (``<|fim_prefix|>``, say), or None when the model's
        vocabulary has no such token: inline completion asks, to know whether a model fills in the middle."""
        return None

    def continuation_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """The prompt that carries on the last message, an answer cut short: the conversation before it
        ready for an assistant turn, then that answer's text so far, with no end-of-turn after it."""
        return self.prompt_tokens(messages[:-1], tools) + self.text_tokens(messages[-1].get("content") or "")

    @staticmethod
    def message_text(message: dict) -> str:
        """The text one message puts in a prompt, tool calls included, for counting with a tokenizer."""
        text = message.get("content") or ""
        if message.get("tool_calls"):
            text += json.dumps([c["function"] for c in message["tool_calls"]])
        return text

    def message_tokens(self, message: dict) -> int:
        """About what one message adds to a prompt; counted once per message to fit long chats fast."""
        try:
            return len(self.prompt_tokens([message]))
        except Exception:  # a template that wants a whole conversation
            return len(message.get("content") or "") // 3 + 8

    def next_turn_tokens(self, messages: list[dict], tools: list[dict] | None = None) -> list[int]:
        """The start of the prompt the chat's next question will have: the conversation so far, then the chat
        template's opening of a user turn, up to where the question's own words begin."""
        one = self.prompt_tokens([*messages, {"role": "user", "content": "A"}], tools)
        other = self.prompt_tokens([*messages, {"role": "user", "content": "B"}], tools)
        return one[:common_prefix(one, other)]

    def warm(self, cache: PromptCache) -> None:  # noqa: B027 - a runtime whose caches need no placing
        """Place ``cache``'s KV state where the model reads it, now, while its chat's next prompt is still
        being built; best effort (the question places it itself when this could not)."""

    reads_ahead = False  # whether ``prefill`` reads a prompt into a cache without answering it

    def read_ahead(self, cache: PromptCache, messages: list[dict], tools: list[dict] | None, window: int) -> int:
        """Read the opening of the chat's next question (``next_turn_tokens`` of ``messages``, the chat with
        its last answer) into ``cache`` while nobody waits, so that question reads only its own words; how
        many tokens were read. Nothing is read for a chat within 64 tokens of its window: it is fitted
        again at its next question."""
        if not self.reads_ahead:
            return 0
        tokens = self.next_turn_tokens(messages, tools)
        if len(tokens) < 2 or len(tokens) + 64 >= window:
            return 0
        return self.prefill(cache, tokens)

    def read_question(self, cache: PromptCache, question: str, window: int) -> int:
        """Read a question's own words and the answer turn's opening into ``cache`` while its prompt is still
        being fitted, when the cache's cells end where a question starts (the chat was read ahead): the
        prompt is then most likely those cells and these tokens, so the answer finds all but its last token
        read. How many tokens were read; a guess the prompt proves wrong costs only the time it took (the
        answer keeps the prefix they share)."""
        if not self.reads_ahead or not question:
            return 0
        start = self.next_turn_tokens([])
        opening = _turn_opening(start, self.next_turn_tokens([{"role": "user", "content": "A"},
                                                               {"role": "assistant", "content": "B"}]))
        held = self.held_tokens(cache)
        if not opening or held[-len(opening):] != opening:
            return 0
        full = self.prompt_tokens([{"role": "user", "content": question}])
        tail = full[len(start):]  # the question's words, its turn's end and the answer turn's opening
        tokens = held + tail[:-1]  # the answer reads the last token itself: its logits give the first token
        if full[:len(start)] != start or not 2 <= len(tail) <= EARLY_QUESTION or len(tokens) + 64 >= window:
            return 0
        return self.prefill(cache, tokens)

    def held_tokens(self, cache: PromptCache) -> list[int]:
        """The tokens ``cache``'s KV state holds, wherever the runtime keeps it."""
        return list(cache.tokens)

    def prefill(self, cache: PromptCache, tokens: list[int]) -> int:
        """Read ``tokens`` into ``cache`` (keeping the prefix it already holds); how many were read."""
        return 0

    @abstractmethod
    def stream(self, prompt: list[int], params: dict[str, Any], *, cache: PromptCache | None = None,
               tools: list[dict] | None = None, images: list[Any] | None = None,
               should_stop: Callable[[], bool] = lambda: False,
               messages: list[dict] | None = None) -> Iterator[Chunk]:
        """Stream an answer; the last chunk has ``finish_reason`` and the usage figures. ``messages`` are
        what ``prompt`` was rendered from (a runtime that is not ``local`` gets an empty prompt and uses
        them)."""

    @property
    def supports_tools(self) -> bool:
        return False

    # -- prompt caches on disk: a chat's KV state kept across kernel restarts ----------------------------

    cache_suffix = ".kv"  # the file name ending ``save_cache`` writes

    def identity(self) -> str | None:
        """What a prompt cache saved to disk must match to be used again (the runtime and its model file as
        it is now), or None when this runtime keeps no cache on disk."""
        return None

    def save_cache(self, cache: PromptCache, path: Path) -> list[int] | None:
        """Write ``cache``'s KV state and tokens to ``path``; the tokens written, or None when there was
        nothing to write."""
        return None

    def load_cache(self, path: Path) -> PromptCache | None:
        """A cache written by ``save_cache``, or None when ``path`` does not hold one this runtime reads."""
        return None


def file_identity(runtime: str, path: Path) -> str:
    """A model file's (or folder's) identity for its prompt caches on disk: a changed file is another model."""
    import hashlib

    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(json.dumps([runtime, str(path), stats]).encode()).hexdigest()[:20]
