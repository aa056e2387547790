"""What ``%load_ext ancia_jupyter`` does: register the magics and the sidebar's comm target, name once the
original app's server settings that mean nothing here, and load the selected model in the background when
``ANCIA_ENABLE_MODEL_EAGER_LOAD=1`` (``import ancia_jupyter`` in a kernel starts that load too). Nothing
heavy runs here."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from ..config import env_flag

# The original Ancia app ran a server; here everything runs inside the kernel, so these do nothing.
SERVER_ONLY = ("ANCIA_BACKEND_HOST", "ANCIA_BACKEND_PORT", "ANCIA_CORS_ALLOW_ORIGINS")

_eager: threading.Thread | None = None
_eager_lock = threading.Lock()
_named_server_only = False


def load(ipython: Any) -> None:
    from .magics import AnciaMagics

    ipython.register_magics(AnciaMagics)
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        from .comm import register_comm_target
        from .completion_comm import register_completion_target

        register_completion_target(ipython)  # before the sidebar's target announces that ancia is here
        register_comm_target()
    name_server_only()
    if env_flag("ANCIA_ENABLE_MODEL_EAGER_LOAD"):
        start_eager_load()


def name_server_only() -> None:
    """Say once per process which server settings of the original app are set, and why they do nothing."""
    global _named_server_only
    found = [name for name in SERVER_ONLY if os.environ.get(name)]
    if found and not _named_server_only:
        _named_server_only = True
        verbs = "is set but does" if len(found) == 1 else "are set but do"
        print(f"ancia: {', '.join(found)} {verbs} nothing here: "
              "ancia runs inside the kernel, so there is no server to bind or to reach from a browser.",
              file=sys.stderr)


def start_eager_load() -> None:
    """Load the selected model on a thread of its own, unless a load started this way is still running
    (``import ancia_jupyter`` in a kernel, then ``%load_ext``, load it once)."""
    global _eager
    with _eager_lock:
        if _eager is not None and _eager.is_alive():
            return
        _eager = threading.Thread(target=_eager_load, name="ancia-eager-load", daemon=True)
        _eager.start()


def _eager_load() -> None:
    try:
        from ..api import models

        models.load()
    except Exception as exc:  # reported, never raised into the kernel's startup
        print(f"ancia: could not load the selected model: {exc}", file=sys.stderr)


def unload(ipython: Any) -> None:
    """``%unload_ext``: the sidebars' sessions close (they say ancia was unloaded), then the app."""
    from ..app import close_app

    if getattr(ipython, "kernel", None) is not None:
        from .comm import unregister_comm_target
        from .completion_comm import unregister_completion_target

        unregister_completion_target(ipython)
        unregister_comm_target()
    close_app()
