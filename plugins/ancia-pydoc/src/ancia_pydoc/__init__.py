"""Python documentation for the model: an ancia-jupyter plugin (``python.doc``, ``python.package``).

A small model guesses at signatures; this lets it look them up in the kernel it is helping, offline: the
signature and docstring of any importable object (what ``help()`` shows, cut short), and what is installed
(version, summary, dependencies). Looking an object up may import its module, as ``help()`` does; modules
that act when imported (open a browser, start a program) are never imported.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import importlib.metadata
import inspect
import re
import sys
from typing import Any

__version__ = "1.0.0"

DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# Modules whose import does something beyond defining things: never imported on the model's behalf.
ACTS_ON_IMPORT = frozenset({"antigravity", "this", "__hello__", "__phello__", "idlelib", "turtledemo"})
MAX_DOC_CHARS = 12_000
MAX_MEMBERS = 60
MAX_VALUE_CHARS = 300
MAX_MATCHES = 20


class Refused(ValueError):
    """A module that is not imported on the model's behalf."""


def _import(name: str) -> Any:
    """A module by name: the one already imported, else imported unless importing it would act."""
    if name in sys.modules:
        return sys.modules[name]
    parts = name.split(".")
    if parts[0] in ACTS_ON_IMPORT or "__main__" in parts:
        raise Refused(f"{name} is not imported for documentation: importing it runs a program.")
    return importlib.import_module(name)


def locate(name: str) -> Any:
    """The object a dotted name stands for: a builtin, or the longest importable module prefix and then
    attributes (``pandas.DataFrame.groupby``)."""
    if not isinstance(name, str) or not DOTTED.match(name.strip()):
        raise ValueError("Give a dotted Python name, such as json.dumps or pandas.DataFrame.groupby.")
    parts = name.strip().split(".")
    if len(parts) == 1 and hasattr(builtins, parts[0]) and parts[0] not in sys.modules:
        return getattr(builtins, parts[0])
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = _import(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            if module_name == missing or module_name.startswith(missing + "."):
                continue  # no module by that name: try a shorter prefix, the rest being attributes
            raise ValueError(f"Importing {module_name} failed: {exc}") from None
        except Refused:
            raise
        except Exception as exc:  # its own import raised: said, not raised through the chat
            raise ValueError(f"Importing {module_name} failed: {type(exc).__name__}: {exc}") from None
        for attribute in parts[cut:]:
            try:
                found = getattr(found, attribute)
            except AttributeError:
                raise ValueError(f"{'.'.join(parts[:cut])} has no attribute {attribute!r} "
                                 f"(looking up {name}).") from None
        return found
    raise ValueError(f"No importable module named {parts[0]!r}; python.package lists what is installed.")


def _kind(obj: Any) -> str:
    for kind, test in (("module", inspect.ismodule), ("class", inspect.isclass), ("method", inspect.ismethod),
                       ("function", inspect.isfunction), ("builtin function", inspect.isbuiltin)):
        if test(obj):
            return kind
    return "callable" if callable(obj) else type(obj).__name__


def doc(name: str, max_chars: int = 3000) -> dict[str, Any]:
    """Look up the documentation of a Python object by its dotted name: its signature, its docstring and,
    for modules and classes, its public members.

    Args:
        name: A dotted name, such as json.dumps, pandas.DataFrame.groupby or len.
        max_chars: The most characters of the docstring to return (100 to 12000).
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or not 100 <= max_chars <= MAX_DOC_CHARS:
        raise ValueError(f"max_chars is a whole number from 100 to {MAX_DOC_CHARS}.")
    obj = locate(name)
    kind = _kind(obj)
    try:
        signature = str(inspect.signature(obj)) if callable(obj) else None
    except (TypeError, ValueError):  # many builtins have none
        signature = None
    text = inspect.getdoc(obj) or ""
    if kind not in ("module", "class", "method", "function", "builtin function", "callable"):
        text = ""  # an instance: its class's docstring says nothing of it; its value does
    out: dict[str, Any] = {"name": name.strip(), "kind": kind, "signature": signature,
                           "module": getattr(obj, "__module__", None) if kind != "module" else obj.__name__}
    if kind == "module":
        out["file"] = getattr(obj, "__file__", None)
        version = getattr(obj, "__version__", None)
        out["version"] = version if isinstance(version, str) else None
    if kind in ("module", "class"):
        names = getattr(obj, "__all__", None) if kind == "module" else None
        if not isinstance(names, (list, tuple)):
            names = [n for n in dir(obj) if not n.startswith("_")]
        out["members"] = [str(n) for n in names][:MAX_MEMBERS]
        if len(names) > MAX_MEMBERS:
            out["members"].append(f"… and {len(names) - MAX_MEMBERS} more")
    if not text and kind not in ("module", "class") and not callable(obj):
        value = repr(obj)
        out["value"] = value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS] + "…"
    out["doc"] = text if len(text) <= max_chars else text[:max_chars] + f"… ({len(text)} characters in all)"
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def package(name: str) -> dict[str, Any]:
    """Look up an installed Python package (a distribution, as pip names it): its version, summary, the
    Python it needs and what it depends on. A partial name lists the installed packages that match.

    Args:
        name: The package's name, such as pandas or scikit-learn, or a part of it.
    """
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ValueError("Give a package name, such as pandas or scikit-learn.")
    wanted = _normal(name.strip())
    installed: dict[str, importlib.metadata.Distribution] = {}
    for each in importlib.metadata.distributions():
        each_name = each.metadata["Name"]
        if each_name:
            installed.setdefault(_normal(each_name), each)
    dist = installed.get(wanted)
    if dist is None:
        close = sorted(n for n in installed if wanted in n) or difflib.get_close_matches(wanted, installed, 5)
        matches = [_summary(installed[n]) for n in close[:MAX_MATCHES]]
        return {"found": False, "name": name, "matches": matches,
                "note": f"No package named {name!r} is installed" + ("; similar names are listed." if matches
                                                                     else ".")}
    meta = dist.metadata
    top_level = (dist.read_text("top_level.txt") or "").split()
    requires = dist.requires or []
    return {**_summary(dist), "found": True, "requires_python": meta["Requires-Python"],
            "license": _short(meta["License-Expression"] or meta["License"]),
            "home_page": meta["Home-page"], "project_urls": (meta.get_all("Project-URL") or [])[:10],
            "requires": requires[:40], "import_names": top_level[:20]}


def _summary(dist: importlib.metadata.Distribution) -> dict[str, Any]:
    return {"name": dist.metadata["Name"], "version": dist.version, "summary": _short(dist.metadata["Summary"])}


def _short(text: str | None) -> str | None:
    if not text:
        return None
    line = " ".join(text.split())
    return line if len(line) <= MAX_VALUE_CHARS else line[:MAX_VALUE_CHARS] + "…"


def register(registry: Any) -> None:
    """Called by ancia-jupyter when the plugin loads: the tools work offline and need no approval."""
    registry.register(doc, name="python.doc")
    registry.register(package, name="python.package")
