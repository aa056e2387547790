"""Plugins: tools from a registry document, installed per user without pip.

A registry is a JSON document (an http(s) URL or a file; the package ships ``default_registry.json``)
listing plugins with a wheel URL and its sha256. A wheel is downloaded, checked against the sha256,
unzipped into ``<data dir>/plugins/<id>/`` and loaded through its ``ancia_jupyter.plugins`` entry
points, the same door the built-in tools use. Nothing touches site-packages, so it works on a shared
JupyterHub; an update unpacks beside the old version and swaps it in with a rename. This module is
``ancia.plugins`` itself.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import importlib.metadata
import io
import json
import os
import re
import shutil
import sys
import tempfile
import types
import uuid
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlsplit

from .errors import InvalidValueError, NotFoundError, OfflineError, PluginError

ENTRY_POINT_GROUP = "ancia_jupyter.plugins"
DEFAULT_REGISTRY = Path(__file__).with_name("default_registry.json")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MAX_DOCUMENT_BYTES = 5_000_000
MAX_WHEEL_BYTES = 50_000_000
MAX_UNPACKED_BYTES = 200_000_000
TIMEOUT = 30.0  # seconds for a whole download


def _app() -> Any:
    from .app import get_app

    return get_app()


def _remote(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def _read(app: Any, location: str, what: str, limit: int) -> bytes:
    """Bytes of a local file or an http(s) URL; in offline mode a URL is refused before any socket opens."""
    if not _remote(location):
        path = Path(urlsplit(location).path if location.startswith("file://") else location).expanduser()
        try:
            if path.stat().st_size > limit:
                raise PluginError(f"{what} at {path} is larger than {limit} bytes.")
            return path.read_bytes()
        except OSError as exc:
            raise PluginError(f"Could not read {what} at {path}: {exc}") from None
    if app.settings()["offline"]:
        raise OfflineError(f"Offline mode is on, so {what} at {location} was not downloaded. "
                           "Turn it off with `ancia.settings.update(offline=False)`, or use a registry file.")
    import httpx

    from .tools.http_deadline import Deadline, client

    deadline = Deadline(TIMEOUT)  # the whole download, redirects included: a slow server cannot stall it
    try:
        with deadline, client(deadline, follow_redirects=True, max_redirects=5) as http, \
                http.stream("GET", location) as response:
            response.raise_for_status()
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise PluginError(f"{what} at {location} is larger than {limit} bytes.")
                deadline.left()
            return bytes(data)
    except (httpx.HTTPError, TimeoutError) as exc:
        why = f"it took more than {TIMEOUT:g} s" if deadline.ran_out(exc) else str(exc)
        raise PluginError(f"Could not download {what} from {location}: {why}") from None


def registry_location(app: Any | None = None) -> str:
    """The registry in use: the setting ``plugin_registry_url``, ``ANCIA_PLUGIN_REGISTRY_URL``, or the
    default one shipped with the package."""
    return (app or _app()).settings()["plugin_registry_url"] or str(DEFAULT_REGISTRY)


def _entries(app: Any) -> builtins.list[dict]:
    location = registry_location(app)
    raw = _read(app, location, "the plugin registry", MAX_DOCUMENT_BYTES)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise PluginError(f"The plugin registry at {location} is not valid JSON: {exc}") from None
    items = document.get("plugins") if isinstance(document, dict) else None
    if not isinstance(items, builtins.list):
        raise PluginError(f"The plugin registry at {location} has no \"plugins\" list.")
    out = []
    for item in items:
        ok = (isinstance(item, dict) and isinstance(item.get("id"), str) and ID_RE.match(item["id"])
              and isinstance(item.get("version"), str) and isinstance(item.get("wheel_url"), str)
              and isinstance(item.get("sha256"), str) and re.fullmatch(r"[0-9a-fA-F]{64}", item["sha256"]))
        if not ok:
            raise PluginError(f"The plugin registry at {location} has a malformed entry: {str(item)[:200]}. "
                              "Each needs id, version, wheel_url and sha256 (64 hex digits).")
        wheel = item["wheel_url"]
        if _remote(location):
            wheel = urljoin(location, wheel)
        elif not _remote(wheel) and not Path(wheel).is_absolute():
            wheel = str(Path(urlsplit(location).path if location.startswith("file://") else location)
                        .expanduser().parent / wheel)
        out.append({"id": item["id"], "version": item["version"],
                    "description": str(item.get("description", "")),
                    "network": bool(item.get("network", False)), "wheel_url": wheel,
                    "sha256": item["sha256"].lower()})
    return out


def _entry(app: Any, plugin_id: str) -> dict:
    for entry in _entries(app):
        if entry["id"] == plugin_id:
            return entry
    raise NotFoundError(f"No plugin {plugin_id!r} in the registry {registry_location(app)}; "
                        "`ancia.plugins.registry()` lists what it offers.")


def _row(app: Any, plugin_id: str) -> dict:
    for row in app.store.plugins():
        if row["id"] == plugin_id:
            return row
    raise NotFoundError(f"The plugin {plugin_id!r} is not installed; "
                        "`ancia.plugins.list()` shows those that are.")


def _unpack(data: bytes, dest: Path) -> None:
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


def _forget_modules(path: Path) -> None:
    """Drop the plugin's dir from sys.path and its modules from sys.modules, so a new version reloads."""
    root = str(path)
    while root in sys.path:
        sys.path.remove(root)
    sys.path_importer_cache.pop(root, None)
    prefix = os.path.abspath(root) + os.sep
    for name, module in builtins.list(sys.modules.items()):
        paths = getattr(module, "__path__", None) or []
        location = getattr(module, "__file__", None) or next(iter(paths), None)
        if isinstance(location, str) and os.path.abspath(location).startswith(prefix):
            del sys.modules[name]
    importlib.invalidate_caches()


def _load(registry: Any, plugin_id: str, path: Path) -> str | None:
    """Load one plugin's tools into ``registry``; on failure record the error, disable the plugin, and
    return the error.

    Anything the plugin's code raises counts, ``SystemExit`` and ``KeyboardInterrupt`` included: were one
    let through, every later start (which loads the enabled plugins) would raise it again, and the app
    that ``uninstall`` needs could never start.
    """
    from .tools.calling import error_text
    from .tools.registry import importing_plugin

    if str(path) not in sys.path:
        sys.path.append(str(path))  # appended: a plugin can never shadow an installed module
    importlib.invalidate_caches()
    try:
        with registry.loading(f"plugin:{plugin_id}"), importing_plugin():
            found = 0
            for dist in importlib.metadata.distributions(path=[str(path)]):
                for point in dist.entry_points.select(group=ENTRY_POINT_GROUP):
                    found += 1
                    target = point.load()
                    if isinstance(target, types.ModuleType):
                        listed = getattr(target, "TOOLS", None) or [
                            v for v in vars(target).values() if callable(v) and hasattr(v, "__ancia_tool__")]
                        for func in listed:
                            registry.register(func)
                    elif callable(target):
                        target(registry)
                    else:
                        raise PluginError(f"entry point {point.name!r} is neither register(registry) "
                                          "nor a module")
            if not found:
                raise PluginError(f"the wheel declares no {ENTRY_POINT_GROUP!r} entry point")
    except BaseException as exc:  # the plugin's failure, whatever it raised: recorded, not re-raised
        _forget_modules(path)
        error = error_text(exc)
        registry.app.store.upsert_plugin(plugin_id, enabled=0, error=error)
        return error
    return None


def load_installed(registry: Any) -> None:
    """Load every enabled installed plugin into a new registry (the app starting)."""
    for row in registry.app.store.plugins():
        if row["enabled"]:
            path = Path(row["path"] or "")
            if not path.is_dir():
                registry.app.store.upsert_plugin(row["id"], enabled=0,
                                                 error=f"its files are missing ({path})")
                continue
            _load(registry, row["id"], path)


def _install(app: Any, entry: dict) -> dict:
    data = _read(app, entry["wheel_url"], f"the wheel of {entry['id']}", MAX_WHEEL_BYTES)
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise PluginError(f"The wheel of {entry['id']} {entry['version']} does not match the registry's "
                          "sha256 "
                          f"(expected {entry['sha256']}, got {digest}); nothing was installed.")
    root = app.data_dir / "plugins"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=f".new-{entry['id']}-", dir=root))
    try:
        _unpack(data, staging)
        if not builtins.list(importlib.metadata.distributions(path=[str(staging)])):
            raise PluginError("The download is not a wheel: it has no .dist-info; nothing was installed.")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = root / entry["id"]
    app.tools.remove_source(f"plugin:{entry['id']}")
    _forget_modules(final)
    if final.exists():  # swap: the old version moves aside, the new one takes its name, the old one goes
        old = root / f".old-{entry['id']}-{uuid.uuid4().hex[:8]}"
        os.rename(final, old)
        try:
            os.rename(staging, final)
        except OSError:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, final)
    # recorded off until it has loaded: a load that never returns (the process dies) must not leave a
    # plugin that every start loads again
    app.store.upsert_plugin(entry["id"], version=entry["version"], enabled=0, path=str(final), sha256=digest,
                            error="it did not finish loading")
    error = _load(app.tools, entry["id"], final)
    if not error:
        app.store.upsert_plugin(entry["id"], enabled=1, error=None)
    else:
        raise PluginError(f"{entry['id']} {entry['version']} was installed but failed to load, "
                          "so it is disabled: "
                          f"{error}. Fix the plugin, or `ancia.plugins.uninstall({entry['id']!r})`.")
    return _info(app, entry["id"])


def _info(app: Any, plugin_id: str) -> dict:
    row = _row(app, plugin_id)
    tools = [t["name"] for t in app.tools.list() if t["source"] == f"plugin:{plugin_id}"]
    return {"id": row["id"], "version": row["version"], "enabled": bool(row["enabled"]),
            "error": row["error"],
            "path": row["path"], "sha256": row["sha256"], "tools": tools}


# -- ancia.plugins ---------------------------------------------------------------------------------


def list() -> builtins.list[dict]:
    """Installed plugins: version, enabled, the error if one failed to load, and their tools."""
    app = _app()
    return [_info(app, row["id"]) for row in app.store.plugins()]


def registry() -> builtins.list[dict]:
    """What the registry offers, with the installed version of each (``None`` if not installed)."""
    app = _app()
    installed = {row["id"]: row["version"] for row in app.store.plugins()}
    return [{**e, "installed": installed.get(e["id"])} for e in _entries(app)]


def install(plugin_id: str) -> dict:
    """Download, verify (sha256) and load a plugin from the registry; its tools are then available."""
    app = _app()
    if any(row["id"] == plugin_id for row in app.store.plugins()):
        raise PluginError(f"{plugin_id!r} is already installed; `ancia.plugins.update({plugin_id!r})` "
                          "fetches the registry's version.")
    return _install(app, _entry(app, plugin_id))


def update(plugin_id: str | None = None) -> builtins.list[dict]:
    """Install the registry's version of one plugin (or of all) where it differs; returns what changed."""
    app = _app()
    rows = [_row(app, plugin_id)] if plugin_id else app.store.plugins()
    entries = {e["id"]: e for e in _entries(app)}
    changed = []
    for row in rows:
        entry = entries.get(row["id"])
        if entry is None:
            if plugin_id:
                raise PluginError(f"{plugin_id!r} is no longer in the registry {registry_location(app)}.")
            continue
        if entry["version"] != row["version"] or entry["sha256"] != row["sha256"]:
            _install(app, entry)
            changed.append({"id": row["id"], "from": row["version"], "to": entry["version"]})
    return changed


def uninstall(plugin_id: str) -> None:
    """Remove a plugin: its tools, its files, its record; also when it is broken or its files are gone."""
    app = _app()
    row = _row(app, plugin_id)
    app.tools.remove_source(f"plugin:{plugin_id}")
    root = app.data_dir / "plugins"
    path = Path(row["path"] or root / plugin_id)
    _forget_modules(path)
    if path.resolve().parent == root.resolve():  # only ever a folder ancia made for a plugin
        shutil.rmtree(path, ignore_errors=True)
    app.store.delete_plugin(plugin_id)


def enable(plugin_id: str) -> dict:
    """Turn a plugin back on and load its tools; a load failure raises ``PluginError`` and keeps it off."""
    app = _app()
    row = _row(app, plugin_id)
    path = Path(row["path"] or "")
    error = _load(app.tools, plugin_id, path) if row["path"] and path.is_dir() else \
        f"its files are missing ({row['path']})"
    if error:
        app.store.upsert_plugin(plugin_id, enabled=0, error=error)
        raise PluginError(f"{plugin_id} failed to load, so it stays disabled: {error}. "
                          f"`ancia.plugins.uninstall({plugin_id!r})` removes it.")
    app.store.upsert_plugin(plugin_id, enabled=1, error=None)
    return _info(app, plugin_id)


def disable(plugin_id: str) -> dict:
    """Turn a plugin off: its tools go away until it is enabled again (its files stay)."""
    app = _app()
    row = _row(app, plugin_id)
    app.tools.remove_source(f"plugin:{plugin_id}")
    if row["path"]:
        _forget_modules(Path(row["path"]))
    app.store.upsert_plugin(plugin_id, enabled=0)
    return _info(app, plugin_id)


def set_registry_url(url: str | None) -> str:
    """Use another registry (an http(s) URL or a file path); ``None`` goes back to the default."""
    if url is not None and (not isinstance(url, str) or not url.strip()):
        raise InvalidValueError("A registry is an http(s) URL or a file path (or None for the default).")
    app = _app()
    app.update_settings(plugin_registry_url=url.strip() if url else None)
    return registry_location(app)


plugins = sys.modules[__name__]  # ``ancia.plugins`` is this module, however it was first imported
