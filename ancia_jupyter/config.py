"""User settings: defaults, validation, and the environment variables that override them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import InvalidValueError

DEFAULT_MODEL_ID = "smollm2-135m-instruct"  # the catalog's embedded model, which needs nothing but this package
DEFAULT_SYSTEM_PROMPT = (
    "You are Ancia, a helpful assistant inside a Jupyter notebook. Answer concisely and use Markdown; "
    "put code in fenced code blocks."
)


@dataclass(frozen=True)
class Setting:
    default: Any
    check: Callable[[Any], bool]
    allowed: str


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_text(v: Any) -> bool:
    return isinstance(v, str)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


SETTINGS: dict[str, Setting] = {
    "selected_model": Setting(DEFAULT_MODEL_ID, lambda v: isinstance(v, str) and bool(v), "a model id"),
    # The model that reads a question with images when the model picked cannot and none is named; None: the
    # smallest vision model that is downloaded (ancia.models.vision_model() tells which).
    "vision_model": Setting(None, lambda v: v is None or (isinstance(v, str) and bool(v)), "a model id, or None"),
    # The model that completes code in cells as you type (inline completion); None: the chat model. A code model
    # with fill-in-the-middle (qwen2.5-coder-*) reads the text after the cursor too.
    "completion_model": Setting(None, lambda v: v is None or (isinstance(v, str) and bool(v)),
                                "a model id, or None for the chat model"),
    "offline": Setting(False, _is_bool, "True or False"),
    "keep_alive": Setting(
        300, lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= -1,
        "seconds of no use before the model is unloaded: an integer ≥ 0, or -1 to keep it loaded",
    ),
    "allow_private_network": Setting(False, _is_bool, "True or False"),
    "kernel_context": Setting(False, _is_bool, "True or False"),
    # The assistant may read the notebook, add cells and run code there (notebook_tools.py), each run approved.
    "notebook_agent": Setting(False, _is_bool, "True or False"),
    "plugin_registry_url": Setting(None, lambda v: v is None or (_is_text(v) and bool(v)),
                                   "an http(s) URL or a file path, or None for the default"),
    "system_prompt": Setting(DEFAULT_SYSTEM_PROMPT, _is_text, "a string"),
    "tool_timeout": Setting(
        30.0, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v <= 600,
        "seconds, a number in (0, 600]",
    ),
    "model_runtimes": Setting(
        {}, lambda v: isinstance(v, dict) and all(isinstance(k, str) and x in ("mlx", "llama_cpp")
                                                  for k, x in v.items()),
        "a mapping of model id to 'mlx' or 'llama_cpp' (set it with `ancia.models.set_runtime`)",
    ),
    "max_tool_rounds": Setting(
        5, lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 20, "an integer in [0, 20]",
    ),
    "trusted_tools": Setting(
        [], lambda v: isinstance(v, list) and all(isinstance(x, str) and x for x in v),
        "a list of tool names (set it with `ancia.tools.trust(name)`)",
    ),
    "max_tool_calls": Setting(
        8, lambda v: _is_int(v) and 1 <= v <= 64, "the most tool calls one answer's turn may make: an integer in "
        "[1, 64]",
    ),
    "prompt_lookup": Setting(
        "auto", lambda v: _is_bool(v) or v == "auto",
        "'auto' (draft the next tokens from the prompt for answers that copy it: %ancia fix, code for a cell, "
        "an edited question answered again, a continued answer; where llama.cpp's batches compute exactly what "
        "single tokens do, so drafting changes no word), True (every answer; on MLX every greedy one) or False "
        "(none)",
    ),
    "prompt_cache_disk_mb": Setting(
        1024, lambda v: _is_int(v) and 0 <= v <= 1024 * 1024, "megabytes of chats' prompt caches kept on disk "
        "(a long chat answers at once after a kernel restart): an integer ≥ 0, 0 to keep none",
    ),
    # A model on a server: how long an answer may take, and how much one event line and one answer may hold.
    "server_first_byte_timeout": Setting(
        120.0, lambda v: _is_number(v) and 0 < v <= 3600, "seconds until a server's first byte: a number in "
        "(0, 3600]",
    ),
    "server_answer_timeout": Setting(
        900.0, lambda v: _is_number(v) and 0 < v <= 86400, "seconds a whole server answer may take: a number in "
        "(0, 86400]",
    ),
    "server_max_event_bytes": Setting(
        4 * 1024 * 1024, lambda v: _is_int(v) and 1024 <= v <= 256 * 1024 * 1024,
        "bytes one server event line may hold: an integer in [1024, 268435456]",
    ),
    "server_max_answer_chars": Setting(
        2_000_000, lambda v: _is_int(v) and 1000 <= v <= 100_000_000,
        "characters one server answer may hold: an integer in [1000, 100000000]",
    ),
}


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def offline_forced() -> bool:
    """Offline mode set by the environment cannot be turned off from inside the kernel."""
    return env_flag("ANCIA_OFFLINE")


def how_to_go_online() -> str:
    """The one step that turns offline mode off, for every message that refuses because of it."""
    if offline_forced():
        return ("Offline mode comes from the environment variable ANCIA_OFFLINE: unset it and restart the "
                "kernel")
    return "Turn it off with `ancia.settings.update(offline=False)`"


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """Check every change before any is stored, so a bad value changes nothing."""
    for key, value in changes.items():
        if key not in SETTINGS:
            raise InvalidValueError(f"Unknown setting {key!r}. Settings are: {', '.join(SETTINGS)}.")
        if not SETTINGS[key].check(value):
            raise InvalidValueError(f"Setting {key!r} must be {SETTINGS[key].allowed} (got {value!r}).")
    if changes.get("offline") is False and offline_forced():
        raise InvalidValueError("Offline mode cannot be turned off here: the environment variable "
                                "ANCIA_OFFLINE is set. Unset it and restart the kernel.")
    return changes


def resolve(stored: dict[str, Any]) -> dict[str, Any]:
    """Defaults, then what the user stored, then the environment (``ANCIA_OFFLINE``, registry URL)."""
    values = {key: setting.default for key, setting in SETTINGS.items()}
    values.update({k: v for k, v in stored.items() if k in SETTINGS})
    if offline_forced():
        values["offline"] = True
    if values["plugin_registry_url"] is None and os.environ.get("ANCIA_PLUGIN_REGISTRY_URL"):
        values["plugin_registry_url"] = os.environ["ANCIA_PLUGIN_REGISTRY_URL"]
    return values
