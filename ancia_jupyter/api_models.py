"""``ancia.models`` and ``ancia.settings``: the catalog and your own models, loading, params and settings.

Thin: each call finds the kernel's app and asks its model manager.
"""

from __future__ import annotations

import builtins
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from .app import get_app
from .model_manager.progress import Download, Progress, TqdmBar, watching

__all__ = ["Download", "Models", "Progress", "Settings", "size_text"]


class Models:
    """``ancia.models``: the catalog, what is downloaded and loaded, and per-model params."""

    def list(self) -> builtins.list[dict]:
        return get_app().models.list()

    def info(self, model_id: str) -> dict:
        return get_app().models.info(model_id)

    def select(self, model_id: str) -> str:
        return get_app().models.select(model_id)

    def selected(self) -> str:
        return get_app().models.selected()

    def load(self, model_id: str | None = None, *, force: bool = False, progress: bool | Progress = False) -> dict:
        """Load a model, downloading it first if needed; ``progress`` as for ``pull`` (off by default)."""
        models = get_app().models
        spec = models.spec(model_id)
        with _showing(progress, spec.id):
            models.load(spec.id, force=force)
        return models.info(spec.id)

    def unload(self) -> bool:
        """Free the loaded model once the answers in progress have finished."""
        return get_app().models.unload()

    def pull(self, model_id: str | None = None, *, progress: bool | Progress = True) -> str | None:
        """Fetch a model's files for the runtime that will run it; None for a server model. A download shows
        its size, progress and speed: a bar by default (a widget in a notebook, text elsewhere); a callable
        ``progress`` is told each report (``Download``: ``total``, ``done``, ``speed``); False shows nothing."""
        models = get_app().models
        spec = models.spec(model_id)
        with _showing(progress, spec.id):
            path = models.pull(spec.id)
        return str(path) if path is not None else None

    def delete_cache(self, model_id: str) -> bool:
        """Delete a model's downloaded or converted files (never your own); whether anything was deleted.
        ``cache_size(model_id)``, asked first, says how much space that frees."""
        return get_app().models.delete_cache(model_id)

    def cache_size(self, model_id: str) -> int:
        """Bytes of a model's downloaded or converted files: what ``delete_cache`` would free."""
        return get_app().models.cache_size(model_id)

    def vision_model(self) -> dict:
        """What an attach-image button needs in one call: ``id``, the model that reads a question with
        images when none is named (the picked model if it sees, else the setting ``vision_model``, else the
        smallest downloaded vision model), or None; and ``hint``, one line saying where images go or what
        to pull."""
        choice = get_app().models.vision_choice()
        return {"id": choice.model, "hint": choice.hint}

    def tool_ability(self, model_id: str | None = None) -> dict:
        """Whether a model (the picked one by default) can call tools, known without loading it: ``usable``
        (None: not known until it is loaded), ``reason`` and ``advice``, one line for the user."""
        ability = get_app().models.tool_ability(model_id)
        return {"id": ability.model_id, "usable": ability.usable, "reason": ability.reason,
                "advice": ability.advice}

    def register(self, model_id: str, path: str, *, title: str | None = None, vision: bool = False,
                 remote_model: str | None = None, api_key_env: str | None = None) -> dict:
        """Add your own model: an MLX directory, a ``.gguf`` file, or an OpenAI-compatible server's URL
        (``register("team-llm", "http://host:8000/v1", remote_model="...", api_key_env="TEAM_LLM_KEY")``)."""
        return get_app().models.register(model_id, path, title=title, vision=vision, remote_model=remote_model,
                                         api_key_env=api_key_env)

    def set_runtime(self, model_id: str, runtime: str) -> dict:
        """Run a model on ``"mlx"`` or ``"llama_cpp"`` whatever this machine is, or ``"auto"`` (kept)."""
        return get_app().models.set_runtime(model_id, runtime)

    def unregister(self, model_id: str) -> None:
        get_app().models.unregister(model_id)

    def params(self, model_id: str | None = None) -> dict:
        return get_app().models.params(model_id)

    def set_params(self, model_id: str | None = None, **params: Any) -> dict:
        return get_app().models.set_params(model_id, **params)

    def reset_params(self, model_id: str | None = None) -> dict:
        return get_app().models.reset_params(model_id)


def _showing(progress: bool | Progress, model_id: str) -> AbstractContextManager[None]:
    """Show the downloads of ``model_id`` while the block runs: a tqdm bar for True, nothing for False."""
    if progress is False:
        return nullcontext()
    return watching(TqdmBar() if progress is True else progress, model_id)


def size_text(size: int) -> str:
    """Bytes as a person reads them (binary units, as the model sizes are shown): ``90.2 MB``."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class Settings:
    """``ancia.settings``: stored settings, with environment overrides applied."""

    def get(self) -> dict:
        return get_app().settings()

    def update(self, **changes: Any) -> dict:
        return get_app().update_settings(**changes)
