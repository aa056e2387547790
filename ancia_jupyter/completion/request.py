"""What a completion is asked for and what it gives back, as plain values every front end shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..errors import InvalidValueError

Mode = Literal["line", "block"]
MODES: tuple[str, ...] = ("line", "block")
MAX_TEXT = 200_000  # characters of one cell's text, or of all the cells above together, read at most


@dataclass(frozen=True)
class CompletionRequest:
    """The cell being typed in, split at the cursor, and the code cells above it (nearest last).

    ``cell_index`` is the cell's place in the notebook (None: right after ``cells``); it keeps the cells that
    fit in the prompt stable as the user moves between cells, so the prompt cache stays useful.
    """

    prefix: str
    suffix: str = ""
    cells: tuple[str, ...] = ()
    cell_index: int | None = None
    mode: Mode = "line"

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not isinstance(self.suffix, str):
            raise InvalidValueError("A completion needs the cell's text as strings: prefix (before the cursor) "
                                    "and suffix (after it).")
        if self.mode not in MODES:
            raise InvalidValueError(f"mode must be 'line' or 'block' (got {self.mode!r}).")
        if not all(isinstance(c, str) for c in self.cells):
            raise InvalidValueError("cells must be a list of the code cells' texts.")
        if self.cell_index is not None and (isinstance(self.cell_index, bool) or not isinstance(self.cell_index, int)
                                            or self.cell_index < len(self.cells)):
            raise InvalidValueError("cell_index must be the cell's index in the notebook, at least len(cells).")
        if len(self.prefix) + len(self.suffix) > MAX_TEXT or sum(len(c) for c in self.cells) > MAX_TEXT:
            raise InvalidValueError(f"A completion reads at most {MAX_TEXT} characters of the cell and as many of "
                                    "the cells above.")

    @property
    def first_index(self) -> int:
        """The notebook index of ``cells[0]``."""
        return (len(self.cells) if self.cell_index is None else self.cell_index) - len(self.cells)


@dataclass(frozen=True)
class Completion:
    """A suggestion as it grows: ``reason`` is None until the last one, which says why it ended (``line``,
    ``block``: cut there; ``stop``: the model ended; ``length``: the token limit; ``cancelled``: a newer
    request came or it was cancelled; ``empty``: nothing worth showing; ``busy``: the kernel runs a cell)."""

    text: str
    reason: str | None = None
    model_id: str | None = None
    prompt_tokens: int = 0
    read_tokens: int = 0  # prompt tokens read for this request; the rest came from the prompt cache
    generated_tokens: int = 0
    first_text_s: float | None = None  # from the request to the first text of the suggestion
    seconds: float = 0.0
    fim: bool = False  # whether the model read the text after the cursor (fill-in-the-middle)
    prompt: str = field(default="", repr=False)  # the text the model read, for the curious (and the tests)
