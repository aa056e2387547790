"""The chat panel in a notebook's output area: an anywidget that wires the chat UI to a ``PanelSession``.

Its front end is built from ``static/`` (``widget.js``, the anywidget entry, imports ``chat-ui.js``, the chat
UI the JupyterLab sidebar bundles too; ``chat.css``) by the same bundler as the sidebar, into
``bundle/panel.js`` and ``bundle/panel.css`` (``npm run build:panel``; ``pip install`` runs it). anywidget reads
them when the first panel is made.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import traitlets

from .panel_session import PanelSession

STATIC = Path(__file__).parent / "static"  # the front end's sources
BUNDLE = Path(__file__).parent / "bundle"  # what the build makes of them

if not (BUNDLE / "panel.js").is_file():
    raise FileNotFoundError(
        f"The chat panel's front end is not built ({BUNDLE / 'panel.js'} is missing): run `pip install -e .` "
        "or `npm run build:panel` in the ancia-jupyter checkout.")


class ChatPanel(anywidget.AnyWidget):
    """A complete chat client in the output area; every panel in a kernel shares its chats and model."""

    _esm = BUNDLE / "panel.js"
    _css = BUNDLE / "panel.css"
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
