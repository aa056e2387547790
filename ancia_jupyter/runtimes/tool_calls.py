"""Tool calls in a model's text: where they start and end, and what they ask for.

Every runtime that reads a local model's output uses mlx-lm's rules, so one model family behaves the same
whatever runs it: the parser is inferred from the chat template (and the vocabulary) exactly as mlx-lm's
tokenizer wrapper does, the text is split into answer and tool-call segments by mlx-lm's text state machine,
and each tool-call segment is read by the family's own ``mlx_lm.tool_parsers`` module. Text that cannot be
read becomes a ``ToolCallRequest`` carrying an error, so the model is told and can try again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from .base import ToolCallRequest


class ToolSyntax:
    """How a model marks tool calls and thinking in its text, for runtimes without an MLX tokenizer.

    Has the attributes mlx-lm's ``make_text_state_machine`` reads from a tokenizer wrapper, inferred by
    mlx-lm's own functions from the chat template and the vocabulary (token text -> id)."""

    def __init__(self, chat_template: str | None, vocab: Mapping[str, int],
                 encode: Callable[..., list[int]]) -> None:
        from mlx_lm import tokenizer_utils

        probe = SimpleNamespace(chat_template=chat_template, get_vocab=lambda: vocab, encode=encode)
        parser = tokenizer_utils._infer_tool_parser(probe)
        module = import_module(f"mlx_lm.tool_parsers.{parser}") if parser else None
        self.tool_parser: Callable[..., Any] | None = module.parse_tool_call if module else None
        self.tool_call_start: str | None = module.tool_call_start if module else None
        self.tool_call_end: str | None = module.tool_call_end if module else None
        self.think_start, self.think_end, _, _ = tokenizer_utils._infer_thinking(probe)
        self.structural_markers: tuple[str, ...] = tuple(tokenizer_utils._infer_structural_markers(probe))
        self.response_transitions: dict[str, list[tuple[str, str]]] = {}

    @property
    def has_tool_calling(self) -> bool:
        return self.tool_call_start is not None

    @property
    def has_thinking(self) -> bool:
        return self.think_start is not None


class ToolCallSplitter:
    """Splits streamed text into the answer (returned by ``feed``) and tool-call texts (collected).

    ``syntax`` is an mlx-lm tokenizer wrapper or a ``ToolSyntax``: anything ``make_text_state_machine``
    accepts. Control markers are stripped; a marker split across tokens is held back until it is known."""

    def __init__(self, syntax: Any) -> None:
        from mlx_lm.generate import make_text_state_machine

        self._machine = make_text_state_machine(syntax)
        self._state = self._machine.make_state()
        self._current = ""
        self.tool_texts: list[str] = []

    def feed(self, text: str) -> str:
        self._state, segments = self._machine.split(self._state, text)
        shown = ""
        for segment_state, segment in segments:
            if segment_state == "tool":
                self._current += segment
            else:
                if self._current:
                    self.tool_texts.append(self._current)
                    self._current = ""
                shown += segment
        return shown

    def finish(self) -> str:
        """At the natural end of an answer: the answer text still held back; a call left open is kept."""
        self._state, rest, _ = self._machine.flush(self._state)
        shown = ""
        if self._current or self._state[0] == "tool":
            self._current += rest
        else:
            shown = rest
        if self._current.strip():
            self.tool_texts.append(self._current)
        self._current = ""
        return shown


def parse_tool_calls(parser: Callable[..., Any], text: str, tools: list[dict] | None) -> list[ToolCallRequest]:
    """The calls in one tool-call text, read by the model family's ``parser``; unreadable ones carry an error."""
    try:
        parsed = parser(text, tools)
    except Exception as exc:
        return [ToolCallRequest(id=uuid.uuid4().hex[:12], name="", raw=text,
                                error=f"The tool call could not be parsed ({exc}).")]
    calls = []
    for item in parsed if isinstance(parsed, list) else [parsed]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            calls.append(ToolCallRequest(id=uuid.uuid4().hex[:12], name="", raw=text,
                                         error="The tool call has no function name."))
            continue
        arguments = item.get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except ValueError as exc:
                calls.append(ToolCallRequest(id=uuid.uuid4().hex[:12], name=item["name"], raw=text,
                                             error=f"The tool call's arguments are not valid JSON ({exc})."))
                continue
        calls.append(ToolCallRequest(id=str(item.get("id") or uuid.uuid4().hex[:12]), name=item["name"],
                                     arguments=arguments if isinstance(arguments, dict) else {}, raw=text))
    return calls
