"""``ancia_jupyter.api`` for the magics, imported on first use so that ``%load_ext`` stays instant (the API
makes the app, which opens the store and the model manager); typed as the module itself."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .. import api
else:

    class _LazyApi:
        def __getattr__(self, name: str) -> Any:
            return getattr(importlib.import_module("ancia_jupyter.api"), name)

    api = _LazyApi()

__all__ = ["api"]
