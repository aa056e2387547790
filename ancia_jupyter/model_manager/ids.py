"""Model ids name folders in the model cache, so every id is checked here, once, before it becomes a path.

An id that could walk out of the cache (``.``, ``..``, ``a/../..``, an absolute path) is refused, and a
path built from an id is checked again to be a direct child of the cache, so nothing outside it is ever
written or removed, whatever reached the database.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidValueError
from ..paths import models_dir

ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ID_RULE = "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit"


def is_valid_model_id(model_id: object) -> bool:
    return isinstance(model_id, str) and ID_RE.fullmatch(model_id) is not None


def check_model_id(model_id: object) -> str:
    if not is_valid_model_id(model_id):
        raise InvalidValueError(f"{model_id!r} is not a valid model id: use {ID_RULE}.")
    return str(model_id)


def cache_path(model_id: str) -> Path:
    """The folder of a model in the cache; refused unless it sits directly inside the cache."""
    root = models_dir()
    path = root / check_model_id(model_id)
    if path.parent != root or path.name != model_id:
        raise InvalidValueError(f"{model_id!r} is not a valid model id: use {ID_RULE}.")
    return path
