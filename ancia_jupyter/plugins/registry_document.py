"""The registry document: where it is, fetching it and the wheels it lists, and checking its entries.

A registry is a JSON document at an http(s) URL or in a file (the package ships ``default_registry.json``)
listing plugins with a wheel URL and its sha256. A wheel's relative URL is resolved against the
registry's own location, so a folder with the document and its wheels can be copied anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from ..config import how_to_go_online
from ..errors import NotFoundError, OfflineError, PluginError

DEFAULT_REGISTRY = Path(__file__).parent.parent / "default_registry.json"
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
MAX_DOCUMENT_BYTES = 5_000_000
TIMEOUT = 30.0  # seconds for a whole download


def _remote(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


def _local_path(location: str) -> Path:
    return Path(urlsplit(location).path if location.startswith("file://") else location).expanduser()


def read(settings: dict[str, Any], location: str, what: str, limit: int) -> bytes:
    """Bytes of a local file or an http(s) URL; in offline mode a URL is refused before any socket opens."""
    if not _remote(location):
        path = _local_path(location)
        try:
            if path.stat().st_size > limit:
                raise PluginError(f"{what} at {path} is larger than {limit} bytes.")
            return path.read_bytes()
        except OSError as exc:
            raise PluginError(f"Could not read {what} at {path}: {exc}") from None
    if settings["offline"]:
        raise OfflineError(f"Offline mode is on, so {what} at {location} was not downloaded. "
                           f"{how_to_go_online()}, or use a registry file.")
    import httpx  # only when something is downloaded: importing ancia.plugins stays cheap

    from ..http_deadline import Deadline, ProxySettingError, client

    deadline = Deadline(TIMEOUT)  # the whole download, redirects included: a slow server cannot stall it
    try:
        with deadline, client(deadline, follow_redirects=True, max_redirects=5) as http, \
                http.stream("GET", location) as response:
            if response.status_code >= 400:  # one line; httpx's own message has two
                raise PluginError(f"Could not download {what} from {location}: it answered "
                                  f"{response.status_code} {response.reason_phrase}.")
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise PluginError(f"{what} at {location} is larger than {limit} bytes.")
                deadline.left()
            return bytes(data)
    except ProxySettingError as exc:
        raise PluginError(f"Could not download {what} from {location}: {exc}") from None
    except (httpx.HTTPError, TimeoutError) as exc:
        why = f"it took more than {TIMEOUT:g} s" if deadline.ran_out(exc) else str(exc)
        raise PluginError(f"Could not download {what} from {location}: {why}") from None


def location(settings: dict[str, Any]) -> str:
    """The registry in use: the setting ``plugin_registry_url``, ``ANCIA_PLUGIN_REGISTRY_URL``, or the
    default one shipped with the package."""
    return settings["plugin_registry_url"] or str(DEFAULT_REGISTRY)


def entries(settings: dict[str, Any]) -> list[dict]:
    """Every plugin the registry offers, checked, each with its wheel's location made absolute."""
    where = location(settings)
    raw = read(settings, where, "the plugin registry", MAX_DOCUMENT_BYTES)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise PluginError(f"The plugin registry at {where} is not valid JSON: {exc}") from None
    items = document.get("plugins") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise PluginError(f"The plugin registry at {where} has no \"plugins\" list.")
    out = []
    for item in items:
        ok = (isinstance(item, dict) and isinstance(item.get("id"), str) and ID_RE.match(item["id"])
              and isinstance(item.get("version"), str) and isinstance(item.get("wheel_url"), str)
              and isinstance(item.get("sha256"), str) and re.fullmatch(r"[0-9a-fA-F]{64}", item["sha256"]))
        if not ok:
            raise PluginError(f"The plugin registry at {where} has a malformed entry: {str(item)[:200]}. "
                              "Each needs id, version, wheel_url and sha256 (64 hex digits).")
        wheel = item["wheel_url"]
        if _remote(where):
            wheel = urljoin(where, wheel)
        elif not _remote(wheel) and not Path(wheel).is_absolute():
            wheel = str(_local_path(where).parent / wheel)
        out.append({"id": item["id"], "version": item["version"],
                    "description": str(item.get("description", "")),
                    "network": bool(item.get("network", False)), "wheel_url": wheel,
                    "sha256": item["sha256"].lower()})
    return out


def entry(settings: dict[str, Any], plugin_id: str) -> dict:
    """The registry's entry for one plugin; ``NotFoundError`` says where to look."""
    for found in entries(settings):
        if found["id"] == plugin_id:
            return found
    raise NotFoundError(f"No plugin {plugin_id!r} in the registry {location(settings)}; "
                        "`ancia.plugins.registry()` lists what it offers.")
