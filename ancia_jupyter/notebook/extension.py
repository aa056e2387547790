"""What ``%load_ext ancia_jupyter`` does: register the magics and the sidebar's comm target, and load
the selected model in the background when ``ANCIA_ENABLE_MODEL_EAGER_LOAD=1``. Nothing heavy runs here."""

from __future__ import annotations

import threading
from typing import Any

from ..config import env_flag


def load(ipython: Any) -> None:
    from .magics import AnciaMagics

    ipython.register_magics(AnciaMagics)
    kernel = getattr(ipython, "kernel", None)
    if kernel is not None:
        from .comm import register_comm_target

        register_comm_target()
    if env_flag("ANCIA_ENABLE_MODEL_EAGER_LOAD"):
        threading.Thread(target=_eager_load, name="ancia-eager-load", daemon=True).start()


def _eager_load() -> None:
    from ..api import models

    try:
        models.load()
    except Exception as exc:  # reported, never raised into the kernel's startup
        print(f"ancia: could not load the selected model: {exc}")


def unload(ipython: Any) -> None:
    """``%unload_ext``: the sidebars' sessions close (they say ancia was unloaded), then the app."""
    from ..app import close_app

    if getattr(ipython, "kernel", None) is not None:
        from .comm import unregister_comm_target

        unregister_comm_target()
    close_app()
