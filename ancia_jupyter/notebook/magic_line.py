"""Reading a ``%ancia`` line: its options split from the question, a trailing ``?`` kept from IPython's
help, quotes and values as a person would mean them.

A question is free text, so it is never given to argparse: only the options in front of it are.
"""

from __future__ import annotations

import ast
import re
import shlex
from typing import Any

QUESTION_LINE = re.compile(r"^(\s*)%ancia\s+(.*\?)\s*$")
TOKEN = re.compile(r"""(?:"[^"]*"|'[^']*'|\S)+""")


def split_options(line: str, parser: Any) -> tuple[str, str]:
    """``--model x --context a b -- the question`` → (options, question), the question kept verbatim.

    An option taking several values (``--context``) runs until ``--`` or the next option."""
    nargs = {s: a.nargs for a in parser._actions for s in a.option_strings}
    tokens = list(TOKEN.finditer(line))
    i = 0
    while i < len(tokens):
        token = tokens[i][0]
        if token == "--":
            return line[: tokens[i].start()], line[tokens[i].end():].strip()
        if not token.startswith("--"):
            break
        i += 1
        name = token.split("=", 1)[0]
        if "=" in token or name not in nargs:  # a value attached, or an unknown option argparse will name
            continue
        if nargs[name] == "+":
            while i < len(tokens) and not tokens[i][0].startswith("--"):
                i += 1
        elif nargs[name] != 0:
            i += 1
    start = tokens[i].start() if i < len(tokens) else len(line)
    return line[:start], line[start:].strip()


def question_lines(lines: list[str]) -> list[str]:
    """IPython reads a line ending in ``?`` as a request for help on its last word, and questions end that
    way: turn ``%ancia … ?`` into the magic call IPython would otherwise have made (an input transformer)."""
    if not lines or lines[0].lstrip().startswith("%%"):
        return lines
    out = []
    for line in lines:
        match = QUESTION_LINE.match(line)
        out.append(f"{match[1]}get_ipython().run_line_magic('ancia', {match[2]!r})\n" if match else line)
    return out


def unquote(text: str | None) -> str | None:
    if text and len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def split_words(text: str) -> list[str]:
    """A subcommand's arguments, quotes honoured where they balance."""
    try:
        return shlex.split(text)
    except ValueError:  # an apostrophe in a question
        return text.split()


def parse_value(text: str) -> Any:
    """``0.3`` → 0.3, ``True`` → True; anything else stays text for the API to judge."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
