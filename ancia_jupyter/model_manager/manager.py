"""The model manager: which models exist, which runtime runs each and where its files are, the memory-fit
check and per-model parameters. The models a user adds are ``user_models``; what is loaded belongs to
``resident.py`` (one local model on the model worker, connections to server models), which this manager
asks after the checks and downloads that run on the caller's thread (``prepare``).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..changes import Change, ChatDeleted, HistoryChanged, Reset, SettingsChanged
from ..config import how_to_go_online
from ..errors import InvalidValueError, MemoryFitError, ModelError, NotFoundError, OfflineError
from ..paths import data_dir
from ..runtimes import Chunk, Runtime, create_runtime
from ..runtimes.memory import MB, available_memory_mb
from ..store.database import Store
from . import files as model_files
from .abilities import ToolAbility, VisionChoice, tool_ability, vision_choice
from .catalog import CATALOG, CATALOG_BY_ID, PARAM_BOUNDS, ModelSpec
from .completion_slot import HeldCompletion
from .disk_caches import DiskCaches
from .ids import cache_path, check_model_id, is_valid_model_id
from .resident import Reservation, ResidentModel, StateListener
from .runtime_choice import Choice, check_choice, choose
from .user_models import check_server, endpoint, local_spec, register_model

__all__ = ["MB", "ModelManager", "available_memory_mb", "check_params", "check_server", "endpoint", "local_spec"]

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
    def __init__(self, store: Store, settings: Callable[[], dict],
                 on_state: StateListener = lambda state, model: None) -> None:
        self.store = store
        self._settings = settings
        self.resident = ResidentModel(lambda: settings()["keep_alive"], on_state,
                                      DiskCaches(data_dir(), lambda: settings()["prompt_cache_disk_mb"],
                                                 store.has_chat))
        self._pull_lock = threading.Lock()
        store.changes.subscribe(self._drop_stale_caches)

    def _drop_stale_caches(self, change: Change) -> None:
        """A chat's prompt cache goes when its history changes or it goes. (Changing a model's params keeps
        them: a prompt's KV state does not depend on how the next tokens are sampled.)"""
        if isinstance(change, (HistoryChanged, ChatDeleted)):
            self.resident.caches.forget_chat(change.chat_id)
        elif isinstance(change, Reset):
            self.resident.caches.forget_chat(None)
        elif isinstance(change, SettingsChanged) and "prompt_cache_disk_mb" in change.keys:
            self.resident.caches.trim_disk()

    @property
    def loaded_id(self) -> str | None:
        """The resident local model's id."""
        return self.resident.model_id

    @property
    def runtime(self) -> Runtime | None:
        return self.resident.runtime

    @property
    def state(self) -> str:
        return self.resident.state

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
        info = self.info(spec.id)
        if self.loaded_id == spec.id and self.runtime is not None and self.runtime.name != info["runtime"]:
            self.unload(spec.id)  # the next answer loads it on the runtime now chosen
            info = self.info(spec.id)
        return info

    def is_downloaded(self, spec: ModelSpec) -> bool:
        return model_files.is_present(spec, self.choice(spec).runtime)

    def memory_mb(self, spec: ModelSpec) -> int:
        if spec.remote:
            return 0
        if spec.memory_mb:
            return spec.memory_mb
        return int(spec.disk_mb * 1.25) + 256

    def fits(self, spec: ModelSpec, *, beside: bool = False) -> bool:
        """Whether ``spec`` fits in place of the chat model, or (``beside``) next to it in place of the
        completion model: the memory free is what both loaded models leave, less the one replaced."""
        if spec.remote:
            return True
        replaced = self.resident.completion.model_id if beside else self.loaded_id
        freed = self.memory_mb(self.spec(replaced)) if replaced else 0
        return self.memory_mb(spec) <= available_memory_mb() + freed

    def status(self, spec: ModelSpec, present: bool | None = None) -> str:
        """``present``: whether its files are there, when the caller knows already."""
        if (spec.id == self.loaded_id and self.state == "ready" or spec.id in self.resident.servers
                or spec.id == self.resident.completion.model_id):
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
                "runtime": choice.runtime, "runtime_reason": choice.reason, "runtime_hint": choice.hint,
                "tools": self.tool_ability(spec.id).usable}  # None: not known until it is loaded

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

    def cache_size(self, model_id: str) -> int:
        """Bytes ``delete_cache`` would free: what the cache holds for the model (a link counts as itself)."""
        spec = self.spec(check_model_id(model_id))
        paths = [cache_path(spec.id), model_files.gguf_cache_path(spec.id)]
        files = [p for p in paths if p.is_symlink() or p.is_file()]
        files += [f for p in paths if p.is_dir() and not p.is_symlink() for f in p.rglob("*")
                  if f.is_symlink() or f.is_file()]
        return sum(f.lstat().st_size for f in files)

    def delete_cache(self, model_id: str) -> bool:
        """Free the disk space of fetched or converted files; a user's own files are never deleted."""
        spec = self.spec(check_model_id(model_id))
        if self.loaded_id == spec.id:
            self.unload(spec.id)
        return model_files.remove(spec)

    # -- what a model can do, known without loading it ----------------------------------------------------

    def vision_choice(self) -> VisionChoice:
        """The model a question with images goes to when none is named, or what to do to have one."""
        return vision_choice(self.specs(), self.spec(None), self._settings()["vision_model"], self.is_downloaded)

    def tool_ability(self, model_id: str | None = None) -> ToolAbility:
        """Whether a model (the picked one by default) can call tools, without loading it."""
        spec = self.spec(model_id)
        return tool_ability(spec, self.runtime if self.loaded_id == spec.id else None)

    # -- the resident model ---------------------------------------------------------------------------

    def prepare(self, model_id: str | None = None, *, force: bool = False, beside: bool = False) -> ModelSpec:
        """What loading needs before the model worker: the memory check and any download or conversion,
        run on the caller's thread so that the worker keeps answering other chats meanwhile. A server model
        is checked against offline mode at every call, loaded or not. ``beside``: as the completion model,
        next to the chat model."""
        spec = self.spec(model_id)
        loaded = self.resident.completion.model_id if beside else self.loaded_id if self.runtime is not None else None
        if spec.remote or loaded != spec.id:
            self._check_allowed(spec, force, beside)
            self.pull(spec.id)
        return spec

    def _check_allowed(self, spec: ModelSpec, force: bool, beside: bool = False) -> None:
        if spec.remote:
            from ..runtimes.openai_compat import is_loopback_url

            if self._settings()["offline"] and not is_loopback_url(spec.source.location):
                raise OfflineError(f"{spec.id} answers from {spec.source.location} and offline mode is on. "
                                   f"{how_to_go_online()}, or use a server on this machine (localhost).")
            return
        if not force and not self.fits(spec, beside=beside):
            raise MemoryFitError(
                f"{spec.title} needs about {self.memory_mb(spec)} MB but this machine has "
                f"{available_memory_mb()} MB free. Close other programs, pick a smaller model, or pass "
                "force=True to load it anyway.")

    def _opener(self, spec: ModelSpec) -> Callable[[], Runtime]:
        """What makes ``spec``'s runtime, on whichever thread loads it (the worker, or the caller's for a
        server, whose check is network I/O)."""
        choice = self.choice(spec)

        def open_runtime() -> Runtime:
            if not model_files.is_present(spec, choice.runtime):
                raise ModelError(f"{spec.id} is not fetched for {choice.runtime}: "
                                 f"`ancia.models.pull({spec.id!r})`.")
            path = model_files.path_for(spec, choice.runtime)
            runtime = create_runtime(choice.runtime)
            runtime.load(path if path is not None else endpoint(spec))  # None: a server model
            runtime.open_context(self.params(spec.id)["context_window"])
            return runtime

        return open_runtime

    def load(self, model_id: str | None = None, *, force: bool = False) -> Runtime:
        """Load a model: the checks and any download here, then the load itself on the model worker (a
        server model: a check of its server, on this thread). Counts as use for the idle unload."""
        spec = self.prepare(model_id, force=force)
        if spec.remote:
            runtime = self.resident.connect(spec.id, self._opener(spec))
        else:
            runtime = self.resident.load(spec.id, self._opener(spec))
        self.resident.schedule_idle_unload()
        return runtime

    def reserve(self) -> Reservation:
        """Count an answer from the moment it is asked for: unloading waits for it (see ``hold``)."""
        return self.resident.reserve()

    @contextmanager
    def hold(self, model_id: str, reservation: Reservation | None = None) -> Iterator[Runtime]:
        """``model_id``'s runtime, loaded if needed (after ``prepare``) and kept loaded while the ``with``
        lasts: what an answer does for its whole length. The answer's ``reservation`` ends as it starts."""
        spec = self.spec(model_id)
        with self.resident.hold(spec.id, self._opener(spec), spec.remote, reservation) as runtime:
            runtime.configure(self._settings())
            yield runtime

    def warm(self, model_id: str, runtime: Runtime, chat_id: int, question: str | None = None,
             window: int = 0) -> None:
        """Start placing the chat's prompt cache, and reading the question, while its prompt is built (see
        ``ChatCaches.warm``)."""
        self.resident.caches.warm(model_id, runtime, chat_id, question, window)

    def generate(self, model_id: str, runtime: Runtime, chat_id: int, prompt: builtins.list[int],
                 params: dict[str, Any],
                 **options: Any) -> Iterator[Chunk]:
        """Stream an answer of a held model (see ``ResidentModel.generate``)."""
        return self.resident.generate(model_id, runtime, chat_id, prompt, params, **options)

    # -- the model that completes code in cells ---------------------------------------------------------

    def completion_model(self) -> str:
        """The model inline completion uses: the setting ``completion_model``, else the chat model (picked)."""
        return self._settings()["completion_model"] or self.selected()

    @contextmanager
    def hold_completion(self) -> Iterator[HeldCompletion]:
        """The completion model, loaded if needed, kept for one completion. The chat model completes when it is
        the completion model and no answer holds another one; any other model is loaded beside it (the
        completion slot), after a memory check that counts the chat model as staying."""
        spec = self.spec(self.completion_model())
        if spec.remote or spec.vision:
            raise ModelError(f"{spec.id} cannot complete code: inline completion needs a local text model "
                             "(`ancia.settings.update(completion_model=...)`).")
        resident = self.resident
        beside = spec.id != self.loaded_id and (spec.id != self.selected() or resident.held_for_another(spec.id))
        self.prepare(spec.id, beside=beside)
        if beside:
            hold = resident.completion.hold(spec.id, self._opener(spec))
        else:
            resident.completion.unload()  # the chat model completes: no second model stays for it
            hold = resident.hold(spec.id, self._opener(spec), remote=False)
        with hold as runtime:
            yield HeldCompletion(spec.id, runtime, spec.fim, self.params(spec.id)["context_window"],
                                 resident.completion)

    def unload(self, model_id: str | None = None) -> bool:
        """Free the loaded model (or only ``model_id``) once the answers using it are done; the completion
        model too."""
        return self.resident.unload(model_id)

    def close(self) -> None:
        self.resident.close()
