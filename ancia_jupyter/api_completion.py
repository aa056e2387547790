"""``ancia.complete``: inline code completion from the kernel, the same service the editor's ghost text uses.

Thin: the service (``completion/service.py``) belongs to the kernel's app and goes with it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the service pulls in the model manager: ``import ancia_jupyter`` stays light
    from .completion.service import Completions


def completion_service() -> Completions:
    """The kernel app's completion service."""
    from .app import get_app

    return get_app().completions


def user_namespace() -> Mapping[str, Any]:
    """The notebook's variables (the IPython user namespace), or nothing outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell.user_ns if shell is not None else {}


def complete(prefix: str, suffix: str = "", *, cells: Sequence[str] = (), mode: str = "line",
             namespace: Mapping[str, Any] | None = None) -> str:
    """What the completion model suggests at a cursor between ``prefix`` and ``suffix`` (the cell's text before
    and after it): one line, or one block with ``mode="block"``; "" when it has nothing to add.

    ``cells``: the code cells above, in order, for context. The live objects named near the cursor (a
    DataFrame's columns, a function's signature) are read from ``namespace``, by default the notebook's
    variables. The model is the setting ``completion_model``, else the chat model.
    """
    from .completion.request import CompletionRequest

    request = CompletionRequest(prefix, suffix, tuple(cells), None, mode)  # type: ignore[arg-type]
    found = completion_service().complete(request, namespace=user_namespace() if namespace is None else namespace)
    return found.text
