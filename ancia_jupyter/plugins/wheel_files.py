"""A plugin's files on disk: a downloaded wheel checked, unzipped safely, and swapped into its folder.

Plugins live in ``<data dir>/plugins/<id>/``, never in site-packages, so installing works on a shared
JupyterHub without pip. A new version is unpacked beside the old one and swapped in with renames, so a
failed download or a bad wheel leaves the installed version as it was.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import PluginError

MAX_WHEEL_BYTES = 50_000_000
MAX_UNPACKED_BYTES = 200_000_000


def check_digest(data: bytes, entry: dict) -> str:
    """The wheel's sha256, which must be the one the registry lists."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise PluginError(f"The wheel of {entry['id']} {entry['version']} does not match the registry's "
                          "sha256 "
                          f"(expected {entry['sha256']}, got {digest}); nothing was installed.")
    return digest


def unpack(data: bytes, dest: Path) -> None:
    """Unzip a wheel, refusing paths that escape ``dest``, links, and zip bombs."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = 0
            for info in archive.infolist():
                parts = PurePosixPath(info.filename).parts
                name = info.filename
                if name.startswith("/") or ".." in parts or "\\" in name or ":" in name:
                    raise PluginError(f"The wheel has an unsafe path {name!r}; nothing was installed.")
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise PluginError(f"The wheel has a link {info.filename!r}; nothing was installed.")
                total += info.file_size
                if total > MAX_UNPACKED_BYTES:
                    raise PluginError("The wheel unpacks to more than 200 MB; nothing was installed.")
            archive.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise PluginError(f"The download is not a wheel (zip) file: {exc}") from None
    for data_dir in dest.glob("*.data"):  # a wheel's purelib/platlib trees belong at its root
        for scheme in ("purelib", "platlib"):
            if (data_dir / scheme).is_dir():
                for child in (data_dir / scheme).iterdir():
                    shutil.move(str(child), str(dest / child.name))
        shutil.rmtree(data_dir)


def stage(data: bytes, root: Path, plugin_id: str) -> Path:
    """Unpack a wheel into a new folder beside the installed plugins; nothing stays if it is not a wheel."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{plugin_id}-", dir=root))
    try:
        unpack(data, staging)
        if not list(importlib.metadata.distributions(path=[str(staging)])):
            raise PluginError("The download is not a wheel: it has no .dist-info; nothing was installed.")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def swap_in(staging: Path, final: Path) -> None:
    """Put a staged version in place: the old one moves aside, the new one takes its name, the old goes."""
    if not final.exists():
        os.rename(staging, final)
        return
    old = final.parent / f".old-{final.name}-{uuid.uuid4().hex[:8]}"
    os.rename(final, old)
    try:
        os.rename(staging, final)
    except OSError:
        os.rename(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove(path: Path, root: Path) -> None:
    """Delete a plugin's folder, and only ever a folder ancia made for a plugin (directly under ``root``)."""
    if path.resolve().parent == root.resolve():
        shutil.rmtree(path, ignore_errors=True)
