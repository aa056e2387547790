"""Errors a user can act on: each message says what went wrong and what to do next."""

from __future__ import annotations


class AnciaError(Exception):
    """Base of every error ancia raises on purpose."""


class NotFoundError(AnciaError, KeyError):
    """An id (chat, message, model, tool, plugin) that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelError(AnciaError):
    """A model that cannot be fetched, converted or loaded."""


class MemoryFitError(ModelError):
    """A model that would not fit in the memory this machine has free."""


class OfflineError(AnciaError):
    """A network action refused because offline mode is on."""


class PluginError(AnciaError):
    """A plugin that cannot be installed, updated or loaded."""


class ToolError(AnciaError):
    """A tool that cannot be called (unknown, disabled, bad arguments)."""


class InvalidValueError(AnciaError, ValueError):
    """A setting, parameter or argument outside what is allowed; nothing was stored."""


class ContextWindowError(InvalidValueError):
    """A request that cannot fit in the model's context window even alone; nothing is kept of it."""


class StoreError(AnciaError):
    """The database file cannot be opened, read or written; the message names it and what to do."""
