"""The errors this kernel's cells raised, kept so that ``{Err[3]}`` and ``%ancia fix`` can show them.

IPython keeps a cell's input and output but not its error, so a ``post_run_cell`` hook records each
traceback as the user saw it, without colours.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

from IPython.core.error import UsageError

MAX_CHARS = 8000  # the end of a longer traceback is kept: that is where the error is
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class CellErrors:
    """The errors this kernel's cells raised, by execution count, recorded by a ``post_run_cell`` hook.

    ``{Err[3]}`` and ``%ancia fix`` read it. A ``UsageError`` (a mistyped magic) and Ctrl-C are not
    recorded: they need no explaining, and ``%ancia fix`` should find the last real error.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.errors: dict[int, str] = {}
        self.code: dict[int, str] = {}

    @classmethod
    def install(cls, shell: Any) -> CellErrors:
        """One recorder per shell, however often the extension is loaded again."""
        existing = getattr(shell, "_ancia_cell_errors", None)
        if isinstance(existing, cls):
            return existing
        recorder = cls(shell)
        shell.events.register("post_run_cell", recorder.post_run_cell)
        shell._ancia_cell_errors = recorder
        return recorder

    def post_run_cell(self, result: Any) -> None:
        error = result.error_in_exec or result.error_before_exec
        if error is None or isinstance(error, (UsageError, KeyboardInterrupt)):
            return
        count = result.execution_count
        if count is None:
            return
        self.code[count] = result.info.raw_cell if result.info is not None else ""
        self.errors[count] = self.format(error)

    def format(self, error: BaseException) -> str:
        """The traceback as the user saw it, without colours, its end kept if it is long."""
        try:
            if isinstance(error, SyntaxError):
                lines = traceback.format_exception_only(type(error), error)
            else:
                lines = self.shell.InteractiveTB.structured_traceback(type(error), error, error.__traceback__)
            text = ANSI.sub("", "\n".join(lines))
        except Exception:  # noqa: BLE001 - any traceback is better than none
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        text = "\n".join(line for line in text.splitlines() if not (line and set(line) == {"-"})).strip()
        return text if len(text) <= MAX_CHARS else "…" + text[-MAX_CHARS:]

    def last(self) -> int | None:
        return max(self.errors) if self.errors else None
