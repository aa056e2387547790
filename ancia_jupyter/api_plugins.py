"""``ancia.plugins``: tools from a plugin registry, installed per user without pip.

Thin: each call finds the kernel's app and asks its plugin manager (``plugins/manager.py``).
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plugins.manager import PluginManager


def _plugins() -> PluginManager:
    from .app import get_app  # here, not at the top: the app is heavy and importing ancia stays light

    return get_app().plugins


class Plugins:
    """``ancia.plugins``: what the registry offers, what is installed, and each plugin's state."""

    def registry_location(self) -> str:
        """The registry in use: the setting ``plugin_registry_url``, ``ANCIA_PLUGIN_REGISTRY_URL``, or the
        default one shipped with the package."""
        return _plugins().registry_location()

    def list(self) -> builtins.list[dict]:
        """Installed plugins: version, enabled, the error if one failed to load, and their tools."""
        return _plugins().list()

    def registry(self) -> builtins.list[dict]:
        """What the registry offers, with the installed version of each (``None`` if not installed)."""
        return _plugins().registry()

    def install(self, plugin_id: str) -> dict:
        """Download, verify (sha256) and load a plugin from the registry; its tools are then available."""
        return _plugins().install(plugin_id)

    def update(self, plugin_id: str | None = None) -> builtins.list[dict]:
        """Install the registry's version of one plugin (or of all) where it differs; returns what changed."""
        return _plugins().update(plugin_id)

    def uninstall(self, plugin_id: str) -> None:
        """Remove a plugin: its tools, its files, its record; also when it is broken or its files are gone."""
        _plugins().uninstall(plugin_id)

    def enable(self, plugin_id: str) -> dict:
        """Turn a plugin back on and load its tools; a load failure raises ``PluginError`` and keeps it off."""
        return _plugins().enable(plugin_id)

    def disable(self, plugin_id: str) -> dict:
        """Turn a plugin off: its tools go away until it is enabled again (its files stay)."""
        return _plugins().disable(plugin_id)

    def set_registry_url(self, url: str | None) -> str:
        """Use another registry (an http(s) URL or a file path); ``None`` goes back to the default."""
        return _plugins().set_registry_url(url)


plugins = Plugins()

__all__ = ["Plugins", "plugins"]
