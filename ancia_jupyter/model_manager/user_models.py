"""The models a user registers under an id of their own: an MLX directory, a ``.gguf`` file, or a model
behind an OpenAI-compatible server.

Each is checked once, when registered, and kept as a row in the store's ``local_models`` table; ``local_spec``
turns such a row back into a ``ModelSpec`` like the catalog's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidValueError, ModelError
from ..runtimes.server_url import credentials_error
from ..store.database import Store
from . import files as model_files
from .catalog import CATALOG_BY_ID, ModelSpec, Source, default_params
from .ids import check_model_id


def register_model(store: Store, model_id: str, path: str | Path, *, title: str | None = None,
                   vision: bool = False, remote_model: str | None = None, api_key_env: str | None = None) -> None:
    """Add a model under an id of your choice: a directory in MLX format, a ``.gguf`` file, or the URL
    of an OpenAI-compatible server (``remote_model`` names the model there; ``api_key_env`` the
    environment variable that holds its key, which is read when needed and never stored)."""
    check_model_id(model_id)
    if model_id in CATALOG_BY_ID:
        raise InvalidValueError(f"{model_id!r} is a catalog model; pick another id.")
    if isinstance(path, str) and path.lower().startswith(("http://", "https://")):
        url, remote_model, api_key_env = check_server(path, remote_model, api_key_env)
        store.add_local_model(model_id, url, "openai", title=title, remote_model=remote_model,
                              api_key_env=api_key_env)
        return
    if remote_model is not None or api_key_env is not None:
        raise InvalidValueError("remote_model and api_key_env go with a server URL (http:// or https://).")
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
    store.add_local_model(model_id, str(source), fmt, title=title, vision=vision)


def check_server(url: str, remote_model: str | None, api_key_env: str | None) -> tuple[str, str, str | None]:
    """The stored form of a server model; refused in one line when a part is missing or malformed."""
    parts = urlsplit(url.strip())
    refused = credentials_error(url)
    if refused:
        raise InvalidValueError(refused)  # before anything that could show the URL
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValueError(f"{url!r} is not a server URL: use http(s)://host:port/v1.")
    if not isinstance(remote_model, str) or not remote_model.strip():
        raise InvalidValueError("A server model needs remote_model=..., the model's name on that server.")
    if api_key_env is not None and (not isinstance(api_key_env, str) or not api_key_env.isidentifier()):
        raise InvalidValueError(f"api_key_env must name an environment variable, like TEAM_LLM_KEY "
                                f"(got {api_key_env!r}); the key itself is never stored.")
    return url.strip().rstrip("/"), remote_model.strip(), api_key_env


def endpoint(spec: ModelSpec) -> Any:
    """Where a server model answers: what its runtime loads instead of a folder."""
    from ..runtimes.openai_compat import Endpoint

    return Endpoint(url=spec.source.location, model=str(spec.source.file), api_key_env=spec.api_key_env)


def local_spec(row: dict) -> ModelSpec:
    """A model the user registered: a directory in MLX format, a ``.gguf`` file, or a server."""
    title = row["title"] or row["id"]
    if row["format"] == "openai":
        return ModelSpec(id=row["id"], title=title, api_key_env=row.get("api_key_env"),
                         sources=(Source("remote", row["path"], file=row.get("remote_model"), format="openai"),),
                         context_length=131072, default_params=default_params())
    path = Path(row["path"])
    context_length = model_files.context_length(row["format"], path)
    return ModelSpec(id=row["id"], title=title, sources=(Source("local", row["path"], format=row["format"]),),
                     vision=bool(row["vision"]), disk_mb=model_files.size_mb(path) if path.exists() else 0,
                     context_length=context_length,
                     default_params=default_params(context_window=min(4096, context_length),
                                                   max_tokens=min(1024, context_length // 2)))
