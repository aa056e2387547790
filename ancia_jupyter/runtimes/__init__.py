"""Model runtimes behind one interface (see ``base.Runtime``); each is imported only when used."""

from __future__ import annotations

from importlib import import_module

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime, ToolCallRequest

RUNTIMES = {
    "mlx_lm": ("ancia_jupyter.runtimes.mlx_text", "MLXTextRuntime"),
    "mlx_vlm": ("ancia_jupyter.runtimes.mlx_vision", "MLXVisionRuntime"),
}


def create_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise ModelError(f"Unknown runtime {name!r}; known runtimes: {', '.join(RUNTIMES)}.")
    module, cls = RUNTIMES[name]
    return getattr(import_module(module), cls)()


__all__ = ["Chunk", "PromptCache", "Runtime", "ToolCallRequest", "create_runtime", "RUNTIMES"]
