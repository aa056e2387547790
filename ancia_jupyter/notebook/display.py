"""What the magics show and act on in a notebook: Markdown output, tables, and the code or JSON of an answer.

The live views of an answer (Markdown growing in place, plain text) are in ``rendering``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..rendering import MarkdownStream, TextStream, consume, show_stream, show_text
from ..response import tool_block

__all__ = ["MarkdownStream", "TextStream", "consume", "show_stream", "show_text", "tool_block", "first_code_block",
           "first_json", "show_markdown", "table"]

CODE_BLOCK = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


# -- acting on an answer, and tables --------------------------------------------------------------

def first_code_block(text: str, language: str | None = None) -> str | None:
    """The body of the first fenced code block (in ``language`` if given); an unclosed one runs to the end."""
    for match in CODE_BLOCK.finditer(text):
        if language is None or match[1].lower() == language:
            return match[2]
    return None


def first_json(text: str) -> Any:
    """The answer's JSON: its first ``json`` block, else its first block, else the answer itself."""
    block = first_code_block(text, "json")
    candidate = block if block is not None else first_code_block(text)
    candidate = (candidate if candidate is not None else text).strip()
    try:
        return json.loads(candidate)
    except ValueError as exc:
        start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
        if start > 0:  # "Here it is: {...}"
            try:
                return json.JSONDecoder().raw_decode(candidate, start)[0]
            except ValueError:
                pass
        raise ValueError(str(exc)) from None


def show_markdown(text: str) -> None:
    """Markdown for notebooks, the same text for terminals."""
    from IPython.display import display

    display({"text/markdown": text, "text/plain": text}, raw=True)


def table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value))
        text = "✓" if value is True else "" if value is None or value is False else str(value)
        return " ".join(text.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(title for _, title in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(key)) for key, _ in columns) + " |" for row in rows]
    return "\n".join(lines)
