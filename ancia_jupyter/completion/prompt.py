"""The completion's prompt: the notebook above the cell, the live objects it names, the cell up to the cursor,
and, for a model that fills in the middle, the rest of the cell.

The text reads as one Python file in the percent format (``# %%`` before each cell), laid out so that
successive prompts share the longest start: the cells above first (they change least), then the live
objects, then the cell as typed. A keystroke changes only the end, moving to the next cell extends the
start, and the prompt cache reads only what changed. Cells that do not fit the token budget are dropped
from the top, and where the first kept cell stands is remembered: it moves only when the prompt no longer
fits, and then far enough to leave room, so the start of the prompt stays put while the user types.

A model with fill-in-the-middle tokens (the catalog's, else Qwen2.5-Coder's names found in its vocabulary)
reads ``<prefix> before <suffix> after <middle>``; any other model reads the text before the cursor alone.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..model_manager.catalog import QWEN_FIM, Fim
from ..runtimes import Runtime
from .request import CompletionRequest

CELL_MARK = "# %%\n"
PROMPT_TOKENS = 1536  # the most prompt tokens a completion reads, whatever the model's window
SUFFIX_LINES = 30  # lines after the cursor a fill-in-the-middle model reads
REFILL = 0.6  # when the cells above overflow, the first kept cell moves so they take this share of their room


@dataclass(frozen=True)
class Prompt:
    tokens: list[int]
    text: str  # what the model reads, control tokens written out
    fim: bool


def fim_tokens(runtime: Runtime, fim: Fim | None) -> tuple[int, int, int] | None:
    """The ids of the model's fill-in-the-middle tokens, or None when its vocabulary lacks one of them."""
    names = fim or QWEN_FIM
    ids = [runtime.special_token(t) for t in (names.prefix, names.suffix, names.middle)]
    return (ids[0], ids[1], ids[2]) if all(i is not None for i in ids) else None  # type: ignore[return-value]


class PromptWriter:
    """Writes prompts for one model and remembers where the kept cells start (see the module's docstring)."""

    def __init__(self, runtime: Runtime, fim: Fim | None, budget: int) -> None:
        self.runtime = runtime
        self.budget = budget
        self.fim = fim_tokens(runtime, fim)
        self.names = fim or QWEN_FIM
        self._start: int | None = None  # the notebook index of the first cell kept
        self._sizes: OrderedDict[str, int] = OrderedDict()  # tokens of a cell's text, by text

    def write(self, request: CompletionRequest, live: str) -> Prompt:
        tokens_of: Callable[[str], list[int]] = self.runtime.text_tokens
        suffix = "\n".join(request.suffix.split("\n")[:SUFFIX_LINES]) if self.fim else ""
        cell = CELL_MARK + live + request.prefix
        fixed = len(tokens_of(cell)) + (len(tokens_of(suffix)) + 3 if self.fim else 0)
        if fixed > self.budget:  # one huge cell: only its end before the cursor
            cell = self._tail(cell, fixed - self.budget)
        above = self._cells_above(request, max(0, self.budget - fixed))
        before = "".join(CELL_MARK + text.rstrip("\n") + "\n\n" for text in above) + cell
        if self.fim is None:
            return Prompt(tokens_of(before), before, False)
        prefix_id, suffix_id, middle_id = self.fim
        tokens = [prefix_id, *tokens_of(before), suffix_id, *tokens_of(suffix), middle_id]
        text = f"{self.names.prefix}{before}{self.names.suffix}{suffix}{self.names.middle}"
        return Prompt(tokens, text, True)

    def _cells_above(self, request: CompletionRequest, room: int) -> list[str]:
        """The cells above that fit in ``room`` tokens, from a first cell that stays put while they fit."""
        first = request.first_index
        sizes = [self._size(CELL_MARK + text.rstrip("\n") + "\n\n") for text in request.cells]
        kept = self._start is not None and first <= self._start <= first + len(sizes)
        start = self._start if kept and self._start is not None else first
        if sum(sizes[start - first:]) > room:  # move down until they fill only part of the room, or fit at all
            fits = [i for i in range(len(sizes) + 1) if sum(sizes[i:]) <= room * REFILL]
            fits = fits or [i for i in range(len(sizes) + 1) if sum(sizes[i:]) <= room]
            start = first + fits[0]
        self._start = start
        return list(request.cells[start - first:])

    def _size(self, text: str) -> int:
        size = self._sizes.get(text)
        if size is None:
            size = self._sizes[text] = len(self.runtime.text_tokens(text))
            if len(self._sizes) > 512:
                self._sizes.popitem(last=False)
        return size

    def _tail(self, text: str, over: int) -> str:
        """``text`` less about ``over`` tokens from its start, cut at a line."""
        keep = max(200, len(text) - over * 4)
        tail = text[-keep:]
        return tail[tail.find("\n") + 1:] if "\n" in tail[:-1] else tail
