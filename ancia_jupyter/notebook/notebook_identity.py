"""Which notebook this kernel runs: what ties a notebook to its chat (``Conversations.current_chat``).

Jupyter Server starts a notebook's kernel with ``JPY_SESSION_NAME`` set to the notebook's path, so the
magics, the panel and the sidebar of one notebook agree on it without asking the browser. A kernel started
otherwise (a console, a script, a test) runs no notebook: None.
"""

from __future__ import annotations

import os


def kernel_notebook() -> str | None:
    """The path of the notebook this kernel was started for, or None."""
    return os.environ.get("JPY_SESSION_NAME") or None
