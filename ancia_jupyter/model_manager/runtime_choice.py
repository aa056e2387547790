"""Which runtime runs a model on this machine, and why, in words a user can act on.

MLX is the engine for Apple Silicon (Metal). Elsewhere llama.cpp is many times faster than MLX on the CPU,
so ``auto`` picks it whenever it is installed and the model has a GGUF; MLX on the CPU is the fallback.
A user can force a runtime per model (stored with the settings); images always need mlx-vlm and a server
model always answers over HTTP.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from dataclasses import dataclass

from ..errors import InvalidValueError
from .catalog import ModelSpec

CHOICES = ("auto", "mlx", "llama_cpp")
INSTALL_HINT = ("llama.cpp is not installed, so models run on MLX on the CPU, about ten times slower: "
                "`pip install 'ancia-jupyter[llamacpp]'` (builds llama.cpp: needs a C/C++ compiler and cmake) "
                "and restart the kernel.")


@dataclass(frozen=True)
class Choice:
    runtime: str  # a name in runtimes.RUNTIMES
    reason: str
    hint: str | None = None  # a faster runtime this machine could have


def apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def check_choice(spec: ModelSpec, forced: str) -> str:
    """A runtime a user may force for this model; refused in one line otherwise."""
    if forced not in CHOICES:
        raise InvalidValueError(f"A runtime is one of {', '.join(CHOICES)} (got {forced!r}).")
    if forced != "auto" and (spec.remote or spec.vision):
        raise InvalidValueError(f"{spec.id} always runs on {'its server' if spec.remote else 'mlx-vlm'}; "
                                "only 'auto' applies.")
    if forced == "llama_cpp" and spec.source_for("gguf") is None:
        raise InvalidValueError(f"{spec.id} has no GGUF file, so llama.cpp cannot run it.")
    return forced


def choose(spec: ModelSpec, forced: str = "auto", *, on_apple_silicon: bool | None = None,
           has_llama_cpp: bool | None = None) -> Choice:
    if spec.remote:
        return Choice("openai", f"served by {spec.source.location} (OpenAI-compatible API)")
    if spec.vision:
        return Choice("mlx_vlm", "images need MLX (mlx-vlm)")
    apple = apple_silicon() if on_apple_silicon is None else on_apple_silicon
    llama = llama_cpp_installed() if has_llama_cpp is None else has_llama_cpp
    gguf = spec.source_for("gguf") is not None
    if forced == "mlx":
        return Choice("mlx_lm", "set for this model (`ancia.models.set_runtime`)")
    if forced == "llama_cpp" and gguf:
        return Choice("llama_cpp", "set for this model (`ancia.models.set_runtime`)",
                      None if llama else INSTALL_HINT)
    if apple and (spec.source_for("mlx") is not None or gguf):
        return Choice("mlx_lm", "Apple Silicon: MLX runs on the GPU (Metal)")
    if gguf and llama:
        return Choice("llama_cpp", "llama.cpp is the fast runtime on this machine's CPU")
    if gguf or spec.source_for("mlx") is not None:
        why = "no GGUF file for llama.cpp" if not gguf else "llama.cpp is not installed"
        return Choice("mlx_lm", f"MLX on the CPU ({why})", INSTALL_HINT if gguf and not llama else None)
    raise InvalidValueError(f"{spec.id} has no source this machine can run.")
