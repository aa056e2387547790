"""How the model's raw text becomes the suggestion shown at the cursor: one line or one block, never what
follows the cursor again, never the line before the cursor again.

``shape`` looks at all the text so far each time a token comes, so a suggestion may shrink as it grows (a
closing bracket the cell already has is dropped once it is written); ``done`` says the rest can be
stopped: the line or the block is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_BLOCK_LINES = 12
_MARKER = re.compile(r"<\|[a-z_]+\|>|^# ?%%|^# In\[", re.MULTILINE)  # a control token written as text, a cell mark
_PAIRS = {")": "(", "]": "[", "}": "{"}


@dataclass(frozen=True)
class Shaped:
    text: str
    done: bool
    reason: str | None = None  # "line" or "block" when cut there, else None


def shape(raw: str, prefix: str, suffix: str, mode: str, final: bool = False) -> Shaped:
    """The suggestion in ``raw`` for a cursor between ``prefix`` and ``suffix``; ``final``: the model has
    ended, so its last line is whole."""
    line_before = prefix.rsplit("\n", 1)[-1]
    line_after, _, rest_after = suffix.partition("\n")
    text, done, reason = raw, False, None
    marker = _MARKER.search(text)
    if marker:
        text, done = text[:marker.start()], True
    text = _without_repeated_line(text, line_before)
    cut = _line_end(text) if mode == "line" else _block_end(text + "\n" if final else text, line_before)
    if cut is not None and cut < len(text):
        text, done, reason = text[:cut], True, mode
    if not line_after.strip():  # the cursor ends its line: the model may go on to write the cell's next line
        kept = _before_repeated_suffix(text, next((ln.strip() for ln in rest_after.split("\n") if ln.strip()), ""))
        text, done = kept, done or kept != text
    text = _without_suffix_overlap(text, line_before, line_after)
    return Shaped(text.rstrip() if text.strip() else "", done, reason)


def _without_repeated_line(text: str, line_before: str) -> str:
    """A model that starts the cursor's line over again: the part it repeats is dropped."""
    typed = line_before.strip()
    if len(typed) >= 4 and text.lstrip(" \t").startswith(typed):
        return text.lstrip(" \t")[len(typed):]
    return text


def _line_end(text: str) -> int | None:
    """Where one line ends: the first newline after some text (a suggestion may start on the next line)."""
    seen_text = False
    for i, char in enumerate(text):
        if char == "\n" and seen_text:
            return i
        seen_text = seen_text or not char.isspace()
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _block_end(text: str, line_before: str) -> int | None:
    """Where one block ends: the rest of the cursor's line, then the lines indented deeper than it (as deep,
    from an empty line); a blank line after some text, a line back at its level or ``MAX_BLOCK_LINES``
    lines end it. Only whole lines are judged: the last one may not have its indentation yet."""
    from_blank = not line_before.strip()
    base = _indent(line_before)
    lines = text.split("\n")
    written = bool(lines[0].strip())
    end = len(lines[0])  # where the newline after the line looked at stands
    for count, line in enumerate(lines[1:-1], start=1):
        if not line.strip():
            if written:
                return end
        elif (_indent(line) >= base) if from_blank else (_indent(line) > base):
            written = True
        else:
            return end
        if count >= MAX_BLOCK_LINES:
            return end + 1 + len(line)
        end += 1 + len(line)
    return None


def _before_repeated_suffix(text: str, next_line: str) -> str:
    """Text that goes on to write the cell's next line again is cut before that line."""
    if not next_line:
        return text
    lines = text.split("\n")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == next_line:
            return "\n".join(lines[:i])
    return text


def _without_suffix_overlap(text: str, line_before: str, line_after: str) -> str:
    """When the text ends with the start of what follows the cursor on its line (a closing bracket or quote
    the editor put there), keep the version whose line reads best balanced; ties keep the model's text."""
    if not line_after:
        return text
    last = text.rsplit("\n", 1)[-1]
    head = line_before if "\n" not in text else ""
    overlaps = [k for k in range(len(line_after), 0, -1) if last.endswith(line_after[:k])]
    if not overlaps:
        return text
    best, best_score = 0, _imbalance(head + last + line_after)
    for k in overlaps:
        score = _imbalance(head + last[:-k] + line_after)
        if score < best_score:
            best, best_score = k, score
    return text[:-best] if best else text


def _imbalance(line: str) -> tuple[int, int, int]:
    """How badly a line's brackets and quotes pair: (closers with no opener, quotes left open, openers left)."""
    stack: list[str] = []
    extra, quote, i = 0, "", 0
    while i < len(line):
        char = line[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#":
            break
        elif char in "([{":
            stack.append(char)
        elif char in _PAIRS:
            if stack and stack[-1] == _PAIRS[char]:
                stack.pop()
            else:
                extra += 1
        i += 1
    return extra, int(bool(quote)), len(stack)
