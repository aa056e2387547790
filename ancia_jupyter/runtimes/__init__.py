"""Model runtimes behind one interface (see ``base.Runtime``); each is imported only when used."""

from __future__ import annotations

from importlib import import_module

from ..errors import ModelError
from .base import Chunk, PromptCache, Runtime, ToolCallRequest

RUNTIMES = {
    "mlx_lm": ("ancia_jupyter.runtimes.mlx_text", "MLXTextRuntime"),
    "mlx_vlm": ("ancia_jupyter.runtimes.mlx_vision", "MLXVisionRuntime"),
    "llama_cpp": ("ancia_jupyter.runtimes.llama_cpp", "LlamaCppRuntime"),
    "openai": ("ancia_jupyter.runtimes.openai_compat", "OpenAIRuntime"),
}
EXTRAS = {"mlx_vlm": "vision", "llama_cpp": "llamacpp"}  # the package extra that installs each


def create_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise ModelError(f"Unknown runtime {name!r}; known runtimes: {', '.join(RUNTIMES)}.")
    module, cls = RUNTIMES[name]
    try:
        return getattr(import_module(module), cls)()
    except ImportError as exc:
        extra = EXTRAS.get(name)
        hint = f" Install it with `pip install 'ancia-jupyter[{extra}]'` and restart the kernel." if extra else ""
        raise ModelError(f"The {name} runtime is not installed ({exc}).{hint}") from exc


__all__ = ["Chunk", "PromptCache", "Runtime", "ToolCallRequest", "create_runtime", "RUNTIMES"]
