"""From what a user typed to a prompt: ``{name}``, ``{In[3]}``, ``{Out[3]}`` and ``{Err[3]}`` replaced by
what they refer to.

A prompt written in a cell often talks about the notebook around it: a DataFrame, an earlier cell, the
error it raised. Interpolation puts that text into the prompt, summarised so that a large value does not
fill the context window. Only references that name something are replaced; any other brace (``{}``,
``{"a": 1}``, ``{x:.2f}``) is left as it is, and ``{{name}}`` writes a literal ``{name}``.
"""

from __future__ import annotations

import re
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
