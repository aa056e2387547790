"""The chat panel in a notebook's output area: an anywidget that wires the chat UI to a ``PanelSession``.

anywidget loads ``_esm`` from a ``blob:`` URL, where relative imports cannot resolve, so the UI's ES modules
(``static/*.js``, kept as separate files the JupyterLab sidebar imports too) are joined here into one module
when this file is imported. The join understands only the forms the UI's modules use:
``import { a, b as c } from "./file.js";`` and ``export function|const|class name``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .session import PanelSession

STATIC = Path(__file__).parent / "static"
_IMPORT = re.compile(r"""^import\s*\{([^}]*)\}\s*from\s*["']\./([\w.-]+\.js)["'];?[ \t]*$""",
                     re.MULTILINE)
_EXPORT = re.compile(r"^export\s+((?:async\s+)?function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)",
                     re.MULTILINE)


def _bindings(names: str) -> str:
    parts = []
    for item in names.split(","):
        item = item.strip()
        if item:
            source, _, alias = item.partition(" as ")
            parts.append(f"{source.strip()}: {alias.strip()}" if alias else source)
    return "{ " + ", ".join(parts) + " }"


def _imports(source: str) -> str:
    return _IMPORT.sub(lambda m: f"const {_bindings(m.group(1))} = __ancia_modules[{m.group(2)!r}];", source)


def bundle(entry: str = "widget.js", root: Path = STATIC) -> str:
    """One ES module: every module ``entry`` imports (depth first, each once) wrapped in a function scope,
    then ``entry`` itself, whose ``export default`` stays the module's export."""
    order: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in stack:
            raise ValueError(f"Circular import between the chat UI's modules: {' -> '.join(stack + (name,))}")
        source = (root / name).read_text(encoding="utf-8")
        for match in _IMPORT.finditer(source):
            visit(match.group(2), stack + (name,))
        order.append(name)

    visit(entry, ())
    parts = ["const __ancia_modules = {};"]
    for name in order[:-1]:
        source = (root / name).read_text(encoding="utf-8")
        exported = [m.group(2) for m in _EXPORT.finditer(source)]
        body = _EXPORT.sub(lambda m: f"{m.group(1)} {m.group(2)}", _imports(source))
        parts.append(f"// ---- {name}\n__ancia_modules[{name!r}] = (() => {{\n{body}\n"
                     f"return {{ {', '.join(exported)} }};\n}})();")
    parts.append(f"// ---- {entry}\n" + _imports((root / entry).read_text(encoding="utf-8")))
    joined = "\n".join(parts)
    leftover = re.search(r"""^\s*import\s.*from\s*["']\.""", joined, re.MULTILINE)
    if leftover:
        raise ValueError(f"The chat UI has an import this join cannot follow: {leftover.group(0).strip()}")
    return joined


class ChatPanel(anywidget.AnyWidget):
    """A complete chat client in the output area; every panel in a kernel shares its chats and model."""

    _esm = bundle()
    _css = (STATIC / "chat.css").read_text(encoding="utf-8")
    height = traitlets.Unicode("620px").tag(sync=True)

    def __init__(self, *, chat: int | None = None, height: str = "620px", **kwargs: Any) -> None:
        super().__init__(height=height, **kwargs)
        self.session = PanelSession(self._push, chat_id=chat)
        self.on_msg(self._receive)

    def _receive(self, widget: Any, content: Any, buffers: list) -> None:
        self.session.handle(content)

    def _push(self, msg: dict) -> None:
        if self.comm is not None:
            self.send(msg)

    def close(self) -> None:
        self.session.close()
        super().close()


def panel(chat: int | None = None, *, height: str = "620px") -> ChatPanel:
    """The chat panel; show it by leaving it last in a cell (``ancia.panel()``, ``%ancia panel``).
    ``chat=`` opens that chat; otherwise the most recent one."""
    return ChatPanel(chat=chat, height=height)
