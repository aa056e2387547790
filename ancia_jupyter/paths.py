"""Where ancia keeps its files: one private directory per user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def data_dir() -> Path:
    """The per-user data directory: ``ANCIA_DATA_DIR``, else ``ANCIA_BACKEND_DATA_DIR`` (the name the
    original Ancia app's server read, so a machine set up for it finds its data here too), else the
    platform's user data dir."""
    configured = os.environ.get("ANCIA_DATA_DIR") or os.environ.get("ANCIA_BACKEND_DATA_DIR")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("ancia-jupyter", appauthor=False))


def models_dir() -> Path:
    """Converted and downloaded model files; ``ANCIA_MODELS_DIR`` lets several data dirs share one cache."""
    configured = os.environ.get("ANCIA_MODELS_DIR")
    return Path(configured).expanduser() if configured else data_dir() / "models"


def private_dir(path: Path) -> Path:
    """Create ``path`` readable by its owner only, and tighten it if it was found looser."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` (empty) with mode 0600, or take group and other access away from an existing one."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, FILE_MODE)
    os.close(fd)
    _tighten(path)
    return path


def _tighten(path: Path) -> None:
    """Take group and other access away; never add any, so a folder made read-only stays read-only."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        path.chmod(mode & 0o700)
