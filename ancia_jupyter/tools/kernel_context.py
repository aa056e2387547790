"""The kernel's variables as context: ``ancia.chat(prompt, context=["df"])`` and ``kernel.variables``.

The model cannot see the notebook, so the user can hand it a description of chosen variables: type,
shape, dtypes, a DataFrame's head, a short repr. Only well-known attributes of well-known types are read
(numpy, pandas) and reprs are cut short; no other user code runs. The tool is off unless the user turns
on the setting ``kernel_context`` (or the chat option), because variables can hold private data.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ..errors import InvalidValueError, ToolError

REPR_CHARS = 600
HEAD_ROWS = 5
MAX_LISTED = 100
_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def _namespace() -> dict[str, Any]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        raise InvalidValueError("Kernel context needs an IPython kernel (a Jupyter notebook or IPython).")
    return shell.user_ns


def _hidden() -> set[str]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return set(getattr(shell, "user_ns_hidden", {}) or {}) | _IPYTHON_NAMES


def _type_name(value: Any) -> str:
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    import reprlib

    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist, short.maxdict = limit, limit, 20, 20
    try:
        text = short.repr(value)
    except Exception as exc:  # a broken __repr__ is the object's problem, not the chat's
        text = f"<repr failed: {type(exc).__name__}>"
    return text if len(text) <= limit else text[:limit] + " …"


def _kind(value: Any) -> str | None:
    module = type(value).__module__.split(".")[0]
    name = type(value).__name__
    if module == "pandas" and name in ("DataFrame", "Series"):
        return f"pandas.{name}"
    if module == "numpy" and name == "ndarray":
        return "numpy"
    return None


def summary(value: Any) -> str:
    """One line: type and size (shape, length), without running the object's own code."""
    kind = _kind(value)
    if kind in ("numpy", "pandas.DataFrame", "pandas.Series"):
        return f"{_type_name(value)}, shape {tuple(value.shape)}"
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return f"{_type_name(value)}, length {len(value)}"
    return _type_name(value)


def variable_section(name: str, value: Any) -> str:
    """A Markdown section about one variable, attached beside the prompt or returned by the tool.

    Not ``interpolate.describe``, which writes a value inline into the prompt's own sentence: this one is
    a section with a heading and a list, reads attributes of numpy and pandas objects only, and goes
    through ``reprlib`` so that a broken or huge ``__repr__`` cannot break the chat.
    """
    lines = [f"### `{name}`", f"- type: `{_type_name(value)}`"]
    kind = _kind(value)
    if kind == "pandas.DataFrame":
        lines.append(f"- shape: {value.shape[0]} rows × {value.shape[1]} columns")
        dtypes = ", ".join(f"{col}: {dtype}" for col, dtype in list(value.dtypes.items())[:50])
        lines.append(f"- columns and dtypes: {dtypes}")
        head = value.head(HEAD_ROWS).to_string(max_cols=20, max_colwidth=40)
        lines += ["- head:", "```", head, "```"]
    elif kind == "pandas.Series":
        if value.name is not None:
            lines.append(f"- name: {_short_repr(value.name, 80)}")
        lines += [f"- length: {len(value)}", f"- dtype: {value.dtype}", "- head:", "```",
                  value.head(HEAD_ROWS).to_string(max_rows=HEAD_ROWS), "```"]
    elif kind == "numpy":
        lines += [f"- shape: {tuple(value.shape)}", f"- dtype: {value.dtype}"]
        import numpy

        with numpy.printoptions(threshold=50, edgeitems=3):
            lines += ["- values:", "```", _short_repr_text(repr(value)), "```"]
    else:
        if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
            lines.append(f"- length: {len(value)}")
        lines += ["- value:", "```", _short_repr(value), "```"]
    return "\n".join(lines)


def _short_repr_text(text: str) -> str:
    return text if len(text) <= REPR_CHARS else text[:REPR_CHARS] + " …"


def describe_variables(names: list[str]) -> str:
    """A Markdown block describing each named kernel variable, to attach to a prompt."""
    if isinstance(names, str):
        names = [names]
    namespace = _namespace()
    missing = [n for n in names if n not in namespace]
    if missing:
        raise InvalidValueError(f"No variable named {', '.join(repr(n) for n in missing)} in the kernel: "
                                "define it first, or check the spelling.")
    parts = ["## Variables from the notebook kernel"] + [variable_section(n, namespace[n]) for n in names]
    return "\n\n".join(parts)


def variables(name: str | None = None) -> str:
    """List the notebook's variables (name, type, size), or describe one variable in detail.

    Args:
        name: A variable to inspect; leave it out to list them all.
    """
    try:
        namespace = _namespace()
    except InvalidValueError as exc:
        raise ToolError(str(exc)) from None
    if name is not None:
        if name not in namespace:
            raise ToolError(f"No variable named {name!r}; call this tool without a name to list them.")
        return variable_section(name, namespace[name])
    hidden = _hidden()
    rows = [f"- `{n}`: {summary(v)}" for n, v in namespace.items()
            if not n.startswith("_") and n not in hidden and not isinstance(v, types.ModuleType)]
    if not rows:
        return "The notebook has no variables yet."
    extra = f"\n(and {len(rows) - MAX_LISTED} more)" if len(rows) > MAX_LISTED else ""
    return "\n".join(rows[:MAX_LISTED]) + extra


def register(registry: Any) -> None:
    registry.register(variables, name="kernel.variables", requires="kernel_context")
