"""From what a user typed to a prompt: ``{name}``, ``{In[3]}``, ``{Out[3]}`` and ``{Err[3]}`` replaced by
what they refer to, and the options of a ``%ancia`` line split from its question.

A prompt written in a cell often talks about the notebook around it: a DataFrame, an earlier cell, the
error it raised. Interpolation puts that text into the prompt, summarised so that a large value does not
fill the context window. Only references that name something are replaced; any other brace (``{}``,
``{"a": 1}``, ``{x:.2f}``) is left as it is, and ``{{name}}`` writes a literal ``{name}``.
"""

from __future__ import annotations

import ast
import re
import shlex
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from IPython.core.error import UsageError

MAX_CHARS = 2000  # the most any one reference adds to a prompt
HEAD_ROWS = 5

REFERENCE = re.compile(
    r"\{\{(?P<escaped>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|(?:In|Out|Err)\[\d+\])\}\}"
    r"|\{(?P<cell>In|Out|Err)\[(?P<number>\d+)\]\}"
    r"|\{(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\}"
)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def truncate(text: str, limit: int = MAX_CHARS) -> str:
    """Keep the start of a long text and say how much was left out, so the model knows it is partial."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def describe(value: Any, limit: int = MAX_CHARS) -> str:
    """A value as prompt text: strings as they are, tables and arrays summarised, anything else its repr."""
    if isinstance(value, str):
        return truncate(value, limit)
    kind = type(value).__name__
    shape = getattr(value, "shape", None)
    if shape is not None and callable(getattr(value, "head", None)):  # pandas DataFrame or Series
        lines = [f"{kind} with shape {tuple(shape)}"]
        dtypes = getattr(value, "dtypes", None)
        if hasattr(value, "columns") and dtypes is not None:
            lines += ["dtypes:", str(dtypes)]
        elif getattr(value, "dtype", None) is not None:
            lines.append(f"dtype: {value.dtype}")
        lines += [f"first {HEAD_ROWS} rows:", str(value.head(HEAD_ROWS))]
        return truncate("\n".join(lines), limit)
    if shape is not None and getattr(value, "dtype", None) is not None:  # numpy, mlx, torch arrays
        return truncate(f"{kind} with shape {tuple(shape)} and dtype {value.dtype}:\n{value!r}", limit)
    return truncate(repr(value), limit)


def interpolate(prompt: str, namespace: Mapping[str, Any], inputs: Sequence[str] | Mapping[int, str],
                outputs: Mapping[int, Any], errors: Mapping[int, str]) -> str:
    """Replace every reference in ``prompt``; an unknown one raises ``UsageError`` naming it."""

    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "{" + match["escaped"] + "}"
        if match["cell"]:
            return _cell(match["cell"], int(match["number"]), inputs, outputs, errors)
        return describe(_lookup(match["name"], namespace))

    return REFERENCE.sub(replace, prompt)


def _lookup(name: str, namespace: Mapping[str, Any]) -> Any:
    first, *attributes = name.split(".")
    if first not in namespace:
        raise UsageError(f"{{{name}}}: there is no variable {first!r} in the notebook. Define it, write "
                         f"{{{{{name}}}}} for literal braces, or pass --no-interpolate.")
    value = namespace[first]
    for attribute in attributes:
        try:
            value = getattr(value, attribute)
        except AttributeError:
            raise UsageError(f"{{{name}}}: {type(value).__name__} has no attribute {attribute!r}.") from None
    return value


def _cell(kind: str, number: int, inputs: Sequence[str] | Mapping[int, str], outputs: Mapping[int, Any],
          errors: Mapping[int, str]) -> str:
    if kind == "In":
        known = 0 < number < len(inputs) if isinstance(inputs, Sequence) else number in inputs
        if not known:
            raise UsageError(f"{{In[{number}]}}: no cell {number} has run in this kernel.")
        return truncate(inputs[number])
    if kind == "Out":
        if number not in outputs:
            raise UsageError(f"{{Out[{number}]}}: cell {number} has no output.")
        return describe(outputs[number])
    if number not in errors:
        raise UsageError(f"{{Err[{number}]}}: cell {number} raised no error.")
    return errors[number]


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
        return text if len(text) <= 4 * MAX_CHARS else "…" + text[-4 * MAX_CHARS:]

    def last(self) -> int | None:
        return max(self.errors) if self.errors else None


# -- reading the magic's line ---------------------------------------------------------------------------

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
