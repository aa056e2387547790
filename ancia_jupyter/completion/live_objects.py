"""The live objects a cell refers to, as comment lines the completion model reads just before the cell.

Only names that appear near the cursor and are bound in the kernel are described, each in one line: a
DataFrame's columns and dtypes, an array's shape, a function's signature, a dict's keys, an object's
attributes. Like ``kernel.variables`` (``tools/kernel_context.py``) it reads well-known attributes of
well-known types and cuts every repr short; it never calls ``dir()``, ``__getattr__`` or a user's ``__repr__``
on an arbitrary object, only the signature and the instance and class dictionaries. The lines come in the
order the names first appear, so they change only when a new name is typed or an object changes, and the
prompt cache keeps everything before them.
"""

from __future__ import annotations

import inspect
import keyword
import re
import types
from collections.abc import Mapping
from typing import Any

from ..tools.kernel_context import summary

MAX_NAMES = 6
LINES_BEFORE, LINES_AFTER = 15, 5  # "near the cursor": this many lines of the cell before it and after it
MAX_LISTED = 30  # columns, attributes or keys named per object
LINE_CHARS = 400
HEADER = "# Live objects in the kernel:\n"
_NAME = re.compile(r"(?<![\w.])([A-Za-z_]\w*)")


def names_near(prefix: str, suffix: str) -> list[str]:
    """Identifiers in the lines around the cursor, in the order they first appear (not after a dot)."""
    before = "\n".join(prefix.split("\n")[-LINES_BEFORE:])
    after = "\n".join(suffix.split("\n")[:LINES_AFTER])
    seen: dict[str, None] = {}
    for match in _NAME.finditer(_without_strings(before + after)):
        name = match.group(1)
        if not keyword.iskeyword(name) and not name.startswith("_"):
            seen.setdefault(name, None)
    return list(seen)


def _without_strings(code: str) -> str:
    """The code with the insides of string literals blanked, so words in them are not taken for names."""
    return re.sub(r"(['\"])(?:\\.|(?!\1).)*\1?", lambda m: m.group(1) * 2, code)


def describe_near(prefix: str, suffix: str, namespace: Mapping[str, Any]) -> str:
    """Comment lines describing the live objects named near the cursor ("" when there are none)."""
    lines = []
    for name in names_near(prefix, suffix):
        if name not in namespace:
            continue
        try:
            line = describe(name, namespace[name])
        except Exception:  # an object that breaks while being described is left out, never the completion
            continue
        lines.append(_one_line(f"# {line}"))
        if len(lines) >= MAX_NAMES:
            break
    return HEADER + "".join(f"{line}\n" for line in lines) if lines else ""


def describe(name: str, value: Any) -> str:
    """One line about a live object, as ``name: what it is``."""
    kind = f"{type(value).__module__.split('.')[0]}.{type(value).__name__}"
    if kind == "pandas.DataFrame":
        rows, cols = value.shape
        columns = ", ".join(f"{c!s} ({t})" for c, t in list(value.dtypes.items())[:MAX_LISTED])
        more = f", … ({cols - MAX_LISTED} more)" if cols > MAX_LISTED else ""
        return f"{name}: pandas.DataFrame, {rows} rows × {cols} columns: {columns}{more}"
    if kind == "pandas.Series":
        label = f" {str(value.name)[:60]!r}" if value.name is not None else ""
        return f"{name}: pandas.Series{label}, length {len(value)}, dtype {value.dtype}"
    if kind == "numpy.ndarray":
        return f"{name}: numpy.ndarray, shape {tuple(value.shape)}, dtype {value.dtype}"
    if isinstance(value, types.ModuleType):
        return f"{name}: module {value.__name__}"
    if isinstance(value, type):
        return f"{name}{_signature(value)}: class; attributes: {_listed(_class_attributes(value))}"
    if callable(value) and isinstance(value, (types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                                              types.BuiltinMethodType)):
        doc = (inspect.getdoc(value) or "").strip().split("\n")[0][:120]
        return f"{name}{_signature(value)}" + (f": {doc}" if doc else "")
    if isinstance(value, dict):
        keys = [repr(k)[:40] for k in list(value)[:MAX_LISTED]]
        return f"{name}: dict, length {len(value)}; keys: {', '.join(keys)}"
    if isinstance(value, (str, bytes, int, float, complex, bool, list, tuple, set, frozenset)) or value is None:
        return f"{name}: {summary(value)}"
    attributes = _class_attributes(type(value)) | _instance_attributes(value)
    return f"{name}: {summary(value)}; attributes: {_listed(attributes)}"


def _signature(value: Any) -> str:
    try:
        return str(inspect.signature(value))
    except (TypeError, ValueError):
        return "(…)"


def _class_attributes(cls: type) -> set[str]:
    """Public names the class and its bases define (their dictionaries only: no ``__dir__``)."""
    names: set[str] = set()
    for klass in cls.__mro__[:-1]:  # not ``object``
        names.update(n for n in vars(klass) if not n.startswith("_"))
    return names


def _instance_attributes(value: Any) -> set[str]:
    try:
        own = object.__getattribute__(value, "__dict__")
    except Exception:  # slots, or a class that hides its dictionary
        return set()
    return {n for n in own if isinstance(n, str) and not n.startswith("_")} if isinstance(own, dict) else set()


def _listed(names: set[str]) -> str:
    ordered = sorted(names)
    more = f", … ({len(ordered) - MAX_LISTED} more)" if len(ordered) > MAX_LISTED else ""
    return ", ".join(ordered[:MAX_LISTED]) + more if ordered else "none"


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= LINE_CHARS else text[:LINE_CHARS - 1] + "…"
