"""Per-chat prompt caches: turn N of a chat reads only its new tokens.

Bounded by count and bytes, least recently used dropped first. A cache is a plain value the engine hands
to the runtime; it is tied to one loaded model (the key), so a reload or a model change starts afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..runtimes import PromptCache

CACHE_BUDGET_BYTES = 2 * 1024**3
CACHE_MAX_CHATS = 16


class PromptCaches:
    def __init__(self, max_chats: int = CACHE_MAX_CHATS, budget_bytes: int = CACHE_BUDGET_BYTES) -> None:
        self._caches: OrderedDict[int, tuple[tuple, PromptCache]] = OrderedDict()
        self._lock = threading.Lock()
        self.max_chats = max_chats
        self.budget_bytes = budget_bytes

    def take(self, chat_id: int, key: tuple) -> PromptCache:
        with self._lock:
            entry = self._caches.pop(chat_id, None)
        return entry[1] if entry and entry[0] == key else PromptCache()

    def get(self, chat_id: int, key: tuple) -> PromptCache:
        """The chat's cache, left in place (made empty when there is none for ``key``): ``take`` returns the
        same one."""
        with self._lock:
            entry = self._caches.get(chat_id)
            if entry is None or entry[0] != key:
                entry = self._caches[chat_id] = (key, PromptCache())
            return entry[1]

    def put(self, chat_id: int, key: tuple, cache: PromptCache) -> None:
        with self._lock:
            self._caches[chat_id] = (key, cache)
            while len(self._caches) > self.max_chats or (
                len(self._caches) > 1 and sum(c.nbytes for _, c in self._caches.values()) > self.budget_bytes
            ):
                self._caches.popitem(last=False)

    def drop(self, chat_id: int | None = None) -> None:
        """Forget one chat's cache, or every cache."""
        with self._lock:
            if chat_id is None:
                self._caches.clear()
            else:
                self._caches.pop(chat_id, None)

    def __contains__(self, chat_id: int) -> bool:
        return chat_id in self._caches
