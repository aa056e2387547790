"""What one generation round reads: the tool descriptions the model is shown and the chat fitted to the
context window. Built on the answer's thread from the store; the model worker only ever gets the tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..runtimes import Runtime
from ..store.database import Store
from .context_fit import ContextFitter, Fit
from .host import ToolCatalog


@dataclass
class Prompt:
    fit: Fit
    images: list[dict]  # the attachments of the last question
    notices: list[tuple[str, str]] = field(default_factory=list)  # (text, code)


def tool_schemas(registry: ToolCatalog, names: Sequence[str] | bool | None, runtime: Runtime,
                 chat_id: int) -> list[dict] | None:
    """The descriptions of the tools this answer may call: those named, or every enabled one (None)."""
    if names is False or not runtime.supports_tools:
        return None
    chosen = list(names) if isinstance(names, (list, tuple)) else None
    return registry.schemas(chosen, chat_id=chat_id) or None


def fit_tools(runtime: Runtime, tools: list[dict] | None, window: int, chosen: bool) -> tuple[list[dict] | None,
                                                                                            str | None]:
    """Tool descriptions go with every prompt: when they would take more than half of the context window,
    answer without them (a small window is better spent on the conversation). Say so only when the caller
    chose the tools; the default set is best effort."""
    if not tools:
        return tools, None
    probe = [{"role": "user", "content": "?"}]
    cost = runtime.count_tokens(probe, tools) - runtime.count_tokens(probe, None)
    if cost <= window // 2:
        return tools, None
    notice = (f"Left out the tools: their descriptions take {cost} tokens, more than half of the context window "
              f"of {window}. Choose fewer tools, or raise context_window with "
              "`ancia.models.set_params(context_window=...)`.") if chosen else None
    return None, notice


def build_prompt(store: Store, fitter: ContextFitter, runtime: Runtime, chat_id: int, system: str | None,
                 tools: list[dict] | None, params: dict, *, continuing: bool = False) -> Prompt:
    """The chat as the model reads it next: the system prompt, then as many of the latest turns as fit;
    ``continuing``: the last message is an answer cut short, which the model carries on."""
    history = [m for m in store.history(chat_id)
               if m["status"] != "error" and not (m["role"] == "assistant" and m["status"] == "partial"
                                                  and not m["content"] and not m["tool_calls"])]
    head = [{"role": "system", "content": system}] if system else []
    window = params["context_window"]
    fit = fitter.fit(chat_id, runtime, head, history, tools, window, min(params["max_tokens"], 64),
                     continuing=continuing)
    prompt = Prompt(fit, [])
    if fit.newly_dropped:
        prompt.notices.append((f"Left out the {fit.dropped} oldest message(s) to fit the context window of "
                               f"{window} tokens (they stay in the chat).", "context_trimmed"))
    users = [m for m in history if m["role"] == "user"]
    prompt.images = users[-1]["attachments"] if users else []
    return prompt
