"""The model manager: which models exist, which runtime runs each and where its files are, the memory-fit
check, per-model parameters, and the one resident model. The models a user adds are ``user_models``.

Only one model is loaded at a time, on the model worker thread (see ``worker.py``); downloads and
conversions run on the caller's thread (``prepare``), so the worker keeps answering meanwhile.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import how_to_go_online
from ..engine.worker import Worker
from ..errors import InvalidValueError, MemoryFitError, ModelError, NotFoundError, OfflineError
from ..runtimes import Runtime, create_runtime
from ..store.database import Store
from . import files as model_files
from .catalog import CATALOG, CATALOG_BY_ID, PARAM_BOUNDS, ModelSpec
from .ids import check_model_id, is_valid_model_id
from .runtime_choice import Choice, check_choice, choose
from .user_models import check_server, endpoint, local_spec, register_model

__all__ = ["MB", "ModelManager", "available_memory_mb", "check_params", "check_server", "endpoint", "local_spec"]

MB = 1024 * 1024


def available_memory_mb() -> int:
    """What a model may use: unified memory's recommended working set on macOS, free RAM elsewhere."""
    if sys.platform == "darwin":
        try:
            import mlx.core as mx

            return int(mx.device_info()["max_recommended_working_set_size"] // MB)
        except Exception:
            pass
    import psutil

    return int(psutil.virtual_memory().available // MB)


def check_params(spec: ModelSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Validate parameter values; raise naming the field and its allowed range."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name not in PARAM_BOUNDS:
            raise InvalidValueError(f"Unknown parameter {name!r}; parameters are: {', '.join(PARAM_BOUNDS)}.")
        kind, low, high = PARAM_BOUNDS[name]
        if name == "context_window":
            high = spec.context_length
        ok_type = isinstance(value, (int, float)) if kind is float else isinstance(value, int)
        if isinstance(value, bool) or not ok_type:
            raise InvalidValueError(f"{name} must be {'a number' if kind is float else 'an integer'} "
                                    f"in [{low}, {high}] (got {value!r}).")
        if not low <= value <= high:
            raise InvalidValueError(f"{name} must be in [{low}, {high}] (got {value!r}).")
        out[name] = kind(value)
    return out


class ModelManager:
    def __init__(self, store: Store, worker: Worker, settings: Callable[[], dict]) -> None:
        self.store = store
        self.worker = worker
        self._settings = settings
        self.runtime: Runtime | None = None
        self.loaded_id: str | None = None
        self.state = "not_loaded"  # not_loaded, loading, ready
        self.last_used = time.monotonic()
        self.listeners: list[Callable[[str], None]] = []
        self._pull_lock = threading.Lock()

    # -- what exists ------------------------------------------------------------------------------

    def specs(self) -> list[ModelSpec]:
        return [*CATALOG, *[local_spec(row) for row in self.store.local_models()
                            if row["id"] not in CATALOG_BY_ID and is_valid_model_id(row["id"])]]

    def spec(self, model_id: str | None) -> ModelSpec:
        model_id = check_model_id(model_id) if model_id else self.selected()
        for spec in self.specs():
            if spec.id == model_id:
                return spec
        ids = ", ".join(s.id for s in self.specs())
        raise NotFoundError(f"Unknown model {model_id!r}. Known models: {ids}.")

    def choice(self, spec: ModelSpec) -> Choice:
        """The runtime that runs ``spec`` here, and why."""
        return choose(spec, self._settings()["model_runtimes"].get(spec.id, "auto"))

    def set_runtime(self, model_id: str, runtime: str) -> dict:
        """Force a runtime for one model (``mlx`` or ``llama_cpp``), or go back to ``auto``; kept."""
        spec = self.spec(model_id)
        check_choice(spec, runtime)
        forced = {k: v for k, v in self._settings()["model_runtimes"].items() if k != spec.id}
        if runtime != "auto":
            forced[spec.id] = runtime
        self.store.set_settings({"model_runtimes": forced or None})
        return self.info(spec.id)

    def is_downloaded(self, spec: ModelSpec) -> bool:
        return model_files.is_present(spec, self.choice(spec).runtime)

    def memory_mb(self, spec: ModelSpec) -> int:
        if spec.remote:
            return 0
        if spec.memory_mb:
            return spec.memory_mb
        return int(spec.disk_mb * 1.25) + 256

    def fits(self, spec: ModelSpec) -> bool:
        if spec.remote:
            return True
        resident = self.memory_mb(self.spec(self.loaded_id)) if self.loaded_id else 0
        return self.memory_mb(spec) <= available_memory_mb() + resident

    def status(self, spec: ModelSpec, present: bool | None = None) -> str:
        """``present``: whether its files are there, when the caller knows already."""
        if spec.id == self.loaded_id and self.state == "ready":
            return "loaded"
        if spec.remote:
            return "remote"
        return "downloaded" if (self.is_downloaded(spec) if present is None else present) else "available"

    def list(self) -> list[dict]:
        settings = self._settings()
        rows = []
        for s in self.specs():
            runtime = choose(s, settings["model_runtimes"].get(s.id, "auto")).runtime
            path = model_files.path_for(s, runtime)
            present = model_files.is_present(s, runtime)
            rows.append({"id": s.id, "title": s.title, "status": self.status(s, present),
                         "selected": s.id == settings["selected_model"],
                         "size_mb": model_files.size_mb(path) if present and path else s.disk_mb,
                         "memory_mb": self.memory_mb(s), "fits": self.fits(s), "vision": s.vision,
                         "runtime": runtime})
        return rows

    def info(self, model_id: str | None) -> dict:
        spec = self.spec(model_id)
        choice = self.choice(spec)
        path = model_files.path_for(spec, choice.runtime)
        present = model_files.is_present(spec, choice.runtime)
        return {**spec.to_dict(), "status": self.status(spec, present), "fits": self.fits(spec),
                "memory_mb": self.memory_mb(spec), "path": str(path) if path and present else None,
                "params": self.params(spec.id), "selected": spec.id == self.selected(),
                "runtime": choice.runtime, "runtime_reason": choice.reason, "runtime_hint": choice.hint}

    def selected(self) -> str:
        return self._settings()["selected_model"]

    def select(self, model_id: str) -> str:
        spec = self.spec(model_id)
        self.store.set_settings({"selected_model": spec.id})
        return spec.id

    # -- params -------------------------------------------------------------------------------------

    def params(self, model_id: str | None = None) -> dict[str, Any]:
        spec = self.spec(model_id)
        return {**spec.default_params, **self.store.get_params(spec.id)}

    def set_params(self, model_id: str | None = None, **changes: Any) -> dict[str, Any]:
        spec = self.spec(model_id)
        merged = {**self.params(spec.id), **check_params(spec, changes)}
        if merged["max_tokens"] >= merged["context_window"]:
            raise InvalidValueError(f"max_tokens ({merged['max_tokens']}) must be less than context_window "
                                    f"({merged['context_window']}).")
        stored = {**self.store.get_params(spec.id), **{k: merged[k] for k in changes}}
        self.store.set_params(spec.id, stored)
        return self.params(spec.id)

    def reset_params(self, model_id: str | None = None) -> dict[str, Any]:
        spec = self.spec(model_id)
        self.store.set_params(spec.id, {})
        return self.params(spec.id)

    # -- files --------------------------------------------------------------------------------------

    def register(self, model_id: str, path: str | Path, *, title: str | None = None, vision: bool = False,
                 remote_model: str | None = None, api_key_env: str | None = None) -> dict:
        """Add a model under an id of your choice (see ``user_models.register_model``); its info."""
        register_model(self.store, model_id, path, title=title, vision=vision, remote_model=remote_model,
                       api_key_env=api_key_env)
        return self.info(model_id)

    def unregister(self, model_id: str) -> None:
        if not is_valid_model_id(model_id) and any(r["id"] == model_id for r in self.store.local_models()):
            self.store.remove_local_model(model_id)  # an id from before ids were checked: forget it, touch no file
            return
        spec = self.spec(model_id)
        if spec.source.kind not in ("local", "remote"):
            raise InvalidValueError(f"{model_id!r} is a catalog model; only your own models can be unregistered.")
        self.delete_cache(model_id)
        self.store.remove_local_model(model_id)

    def pull(self, model_id: str | None = None) -> Path | None:
        """Fetch (and convert if the runtime needs it) a model's files into the model cache; a no-op when
        present. Returns where the runtime reads them (None for a server model)."""
        spec = self.spec(model_id)
        runtime = self.choice(spec).runtime
        if model_files.is_present(spec, runtime):
            return model_files.path_for(spec, runtime)
        with self._pull_lock:  # two answers asking for one model fetch it once
            return model_files.fetch(spec, runtime, self._settings()["offline"])

    def delete_cache(self, model_id: str) -> bool:
        """Free the disk space of fetched or converted files; a user's own files are never deleted."""
        spec = self.spec(check_model_id(model_id))
        if self.loaded_id == spec.id:
            self.unload()
        return model_files.remove(spec)

    # -- the resident model ---------------------------------------------------------------------------

    def prepare(self, model_id: str | None = None, *, force: bool = False) -> ModelSpec:
        """What loading needs before the model worker: the memory check and any download or conversion,
        run on the caller's thread so that the worker keeps answering other chats meanwhile."""
        spec = self.spec(model_id)
        if self.loaded_id != spec.id or self.runtime is None:
            self._check_allowed(spec, force)
            self.pull(spec.id)
        return spec

    def _check_allowed(self, spec: ModelSpec, force: bool) -> None:
        if spec.remote:
            from ..runtimes.openai_compat import is_loopback_url

            if self._settings()["offline"] and not is_loopback_url(spec.source.location):
                raise OfflineError(f"{spec.id} answers from {spec.source.location} and offline mode is on. "
                                   f"{how_to_go_online()}, or use a server on this machine (localhost).")
            return
        if not force and not self.fits(spec):
            raise MemoryFitError(
                f"{spec.title} needs about {self.memory_mb(spec)} MB but this machine has "
                f"{available_memory_mb()} MB free. Close other programs, pick a smaller model, or pass "
                "force=True to load it anyway.")

    def load(self, model_id: str | None = None, *, force: bool = False) -> Runtime:
        """Load on the model worker, after any answer queued there (which may itself be loading a model). The
        checks and any download happen before, on the caller's thread (``prepare``): the worker only loads."""
        if not self.worker.on_worker:
            self.prepare(model_id, force=force)
            return self.worker.call(lambda: self.load(model_id, force=force))
        spec = self.spec(model_id)
        if self.loaded_id == spec.id and self.runtime is not None:
            self.last_used = time.monotonic()
            return self.runtime
        choice = self.choice(spec)
        if not model_files.is_present(spec, choice.runtime):
            raise ModelError(f"{spec.id} is not fetched for {choice.runtime}: `ancia.models.pull({spec.id!r})`.")
        path = model_files.path_for(spec, choice.runtime)
        self._set_state("loading")
        if self.runtime is not None:  # one resident model: free the old one first
            self.runtime.unload()
            self.runtime, self.loaded_id = None, None
        try:
            runtime = create_runtime(choice.runtime)
            runtime.load(path if path is not None else endpoint(spec))  # None: a server model
        except BaseException:
            self._set_state("not_loaded")
            raise
        self.runtime, self.loaded_id = runtime, spec.id
        self.last_used = time.monotonic()
        self._set_state("ready")
        return runtime

    def unload(self) -> bool:
        """Free the resident model, on the model worker after any queued answer."""
        if not self.worker.on_worker:
            return self.worker.call(self.unload)
        if self.runtime is None:
            return False
        runtime, self.runtime, self.loaded_id = self.runtime, None, None
        runtime.unload()
        self._set_state("not_loaded")
        return True

    def _set_state(self, state: str) -> None:
        self.state = state
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:
                pass
